"""The arrays virtual try-on trainers read, made from ours: numpy, OpenCV and Pillow's drawing; no I/O, no Ray.

What each function reproduces comes from the trainers' public loaders and preprocessing scripts
(VITON-HD, HR-VITON, StableVITON, IDM-VTON, LaDI-VTON; DressCode) and from OpenPose; the file
layout that writes these arrays is not here. Inside the pipeline a row has a canonical ATR-18
label map (pipeline/labels.py) and COCO-18 keypoints (x, y, score, NaN rows missing;
pipeline/schema.py) in photo pixels. The trainers want:

* one frame for every file of a row: 768x1024 (W x H), 3:4, because several loaders resize
  nothing (HR-VITON's agnostic canvas, IDM-VTON's cloth and DensePose) and VITON-HD's keypoints
  are absolute pixels of that frame (``fit_frame`` and ``apply_*``);
* VITON-HD's ``image-parse-v3``: 20 LIP/CIHP ids in which id 10 is neck / torso skin
  (``to_lip``, ``ATR_TO_LIP``, ``LIP_PALETTE``);
* HR-VITON's ``image-parse-agnostic-v3.2`` (``parse_agnostic``) and the cloth-agnostic photo with
  its gray region, the ``agnostic-v3.2`` / ``agnostic-mask`` pair (``img_agnostic``);
* OpenPose BODY_25 keypoints, as JSON and as a rendered skeleton (``to_body25``,
  ``openpose_body25_json``, ``render_body25``);
* DressCode's keypoints (COCO-18 in a 384x512 frame), label maps (ATR-18 ids) and skeleton
  images (``dresscode_keypoints_json``, ``dresscode_label_map``, ``render_dresscode_skeleton``).

The reference scripts draw their shapes with Pillow's ImageDraw, and so does this module, with
the same calls (lines with a width, ellipses, polygons and rectangles with their outline): the
pixels are the ones the scripts give with the installed Pillow. Which Pillow version made the
released files is not known; edge pixels of a shape can differ between Pillow versions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw

from pipeline.labels import FACE, NUM_LABELS
from pipeline.schema import NUM_KEYPOINTS, VtonError

__all__ = [
    "FRAME", "PHOTO_PAD", "Fit", "fit_frame", "apply_image", "apply_labels", "apply_keypoints",
    "LIP_NAMES", "LIP_NECK", "ATR_TO_LIP", "LIP_PALETTE", "to_lip", "neck_region",
    "parse_agnostic", "parse_arm_bands", "AgnosticPoseError", "img_agnostic", "AGNOSTIC_GRAY",
    "BODY25_NAMES", "COCO18_TO_BODY25", "BODY25_PAIRS", "BODY25_COLOURS", "to_body25", "from_body25",
    "openpose_body25_json", "render_body25",
    "DRESSCODE_FRAME", "DRESSCODE_PALETTE", "DRESSCODE_COLOURS", "dresscode_keypoints_json",
    "dresscode_label_map", "render_dresscode_skeleton",
]

# ---------------------------------------------------------------------------------------------
# The export frame
# ---------------------------------------------------------------------------------------------

FRAME = (768, 1024)  # (width, height) of VITON-HD's and DressCode's released images
# Photos are padded white: the datasets are studio shots on white or light backgrounds (VITON-HD,
# DressCode, most shop photos), so white bars read as more of the same backdrop, where black or
# gray bars would be a new straight edge for a generator to learn. Label maps and masks pad with
# 0 (background, nothing to repaint).
PHOTO_PAD = (255, 255, 255)


@dataclass(frozen=True)
class Fit:
    """How a photo sits in the export frame: scaled by ``scale`` (one factor for both axes, so
    nothing is distorted) to ``size``, its top-left corner at ``offset``; the rest is padding.
    Every file of a row (photo, labels, masks, keypoints) must go through the same Fit."""

    photo_size: tuple[int, int]  # (width, height) of the photo
    frame: tuple[int, int]       # (width, height) of the export frame
    scale: float                 # frame pixels per photo pixel
    size: tuple[int, int]        # (width, height) of the scaled photo inside the frame
    offset: tuple[int, int]      # (x, y) of its top-left corner in the frame


def fit_frame(photo_size, frame=FRAME) -> Fit:
    """The largest undistorted fit of a (width, height) photo into the frame, centred (the odd
    pixel of padding goes right/bottom). A photo of the frame's aspect fills it exactly."""
    w, h = (int(v) for v in photo_size)
    fw, fh = (int(v) for v in frame)
    if min(w, h, fw, fh) <= 0:
        raise ValueError(f"sizes must be positive: photo {photo_size}, frame {frame}")
    scale = min(fw / w, fh / h)
    size = (min(fw, max(1, round(w * scale))), min(fh, max(1, round(h * scale))))
    offset = ((fw - size[0]) // 2, (fh - size[1]) // 2)
    return Fit((w, h), (fw, fh), float(scale), size, offset)


def _check_fits(array: np.ndarray, fit: Fit) -> None:
    if array.shape[:2] != (fit.photo_size[1], fit.photo_size[0]):
        raise ValueError(f"array of shape {array.shape} does not match the Fit's photo size {fit.photo_size} (w, h)")


def _place(resized: np.ndarray, fit: Fit, pad) -> np.ndarray:
    if fit.size == fit.frame:  # fills the frame: no padding, nothing to copy
        return resized
    fw, fh = fit.frame
    out = np.empty((fh, fw) + resized.shape[2:], resized.dtype)
    out[...] = np.asarray(pad, dtype=resized.dtype)
    x, y = fit.offset
    out[y:y + fit.size[1], x:x + fit.size[0]] = resized
    return out


def apply_image(img: np.ndarray, fit: Fit, pad=PHOTO_PAD) -> np.ndarray:
    """A photo (H, W) or (H, W, C) in the frame: area-averaged when shrinking, bilinear when
    enlarging (cv2's pixel-centre alignment), padded with ``pad`` (a value or one per channel).
    A photo that already has the frame's size is returned as it is, not copied (treat the result
    as read-only, or copy it)."""
    img = np.asarray(img)
    _check_fits(img, fit)
    if img.ndim == 3 and np.ndim(pad) == 1 and len(pad) != img.shape[2]:
        raise ValueError(f"pad {pad} has {len(pad)} values for an image of {img.shape[2]} channels")
    interpolation = cv2.INTER_AREA if fit.scale < 1 else cv2.INTER_LINEAR
    resized = img if fit.size == fit.photo_size else cv2.resize(np.ascontiguousarray(img), fit.size,
                                                                interpolation=interpolation)
    if img.ndim == 3 and resized.ndim == 2:  # cv2 drops a single channel
        resized = resized[..., None]
    return _place(resized, fit, pad)


def apply_labels(labels: np.ndarray, fit: Fit) -> np.ndarray:
    """A label map or mask (uint8 or bool, H x W) in the frame: nearest neighbour with pixel
    centres aligned (cv2.INTER_NEAREST_EXACT, the same geometry as apply_image and
    apply_keypoints), so no new ids appear; padded with 0 (background, or "keep" for a mask). As
    with apply_image, a map that already has the frame's size comes back uncopied."""
    labels = np.asarray(labels)
    _check_fits(labels, fit)
    as_bool = labels.dtype == bool
    src = np.ascontiguousarray(labels.view(np.uint8) if as_bool else labels)
    resized = src if fit.size == fit.photo_size else cv2.resize(src, fit.size, interpolation=cv2.INTER_NEAREST_EXACT)
    out = _place(resized, fit, 0)
    return out.view(bool) if as_bool else out


def apply_keypoints(kp: np.ndarray, fit: Fit) -> np.ndarray:
    """Keypoints (..., K, 2 or 3) in photo pixels -> frame pixels; scores unchanged, NaN stays NaN.

    Pixel centres map as cv2.resize maps them: x' = (x + 0.5) * size_w / photo_w - 0.5 + offset_x
    (and so for y), so a keypoint stays on the pixel it marked in the resized photo.
    """
    out = np.array(kp, dtype=np.float32, copy=True)
    for axis in (0, 1):
        ratio = fit.size[axis] / fit.photo_size[axis]
        out[..., axis] = (out[..., axis] + 0.5) * ratio - 0.5 + fit.offset[axis]
    return out


# ---------------------------------------------------------------------------------------------
# VITON-HD's parse: LIP/CIHP ids with neck / torso skin at 10
# ---------------------------------------------------------------------------------------------

# What each id means in VITON-HD's image-parse-v3 (LIP's class list, except id 10: LIP's
# "jumpsuits" is CIHP's torso skin there; the loaders' comment reads "10 is neck").
LIP_NAMES = (
    "background", "hat", "hair", "glove", "sunglasses", "upper_clothes", "dress", "coat", "socks",
    "pants", "neck", "scarf", "skirt", "face", "left_arm", "right_arm", "left_leg", "right_leg",
    "left_shoe", "right_shoe",
)
LIP_NECK = 10

# Canonical ATR-18 id -> LIP-20 id. Sides agree: ATR's and LIP's "left" is the person's left
# (the image's right in a frontal photo). LIP's glove (3), coat (7) and socks (8) are never
# written: ATR has no such classes (a glove or sock is parsed as the arm or leg under it, a coat
# as upper clothes) -- and id 10 comes from to_lip's neck rule, not from this table.
ATR_TO_LIP = np.array([
    0,   # background   -> background
    1,   # hat          -> hat
    2,   # hair         -> hair
    4,   # sunglasses   -> sunglasses (LIP 4; the loaders paste it back with the face)
    5,   # upper_clothes-> upper clothes
    12,  # skirt        -> skirt
    9,   # pants        -> pants
    6,   # dress        -> dress
    9,   # belt         -> pants: LIP/CIHP have no belt; it sits on the waistband, and as pants it
         #                 stays in the agnostic photo (a "lower" label) like the bottoms it holds up
    18,  # left_shoe    -> left shoe
    19,  # right_shoe   -> right shoe
    13,  # face         -> face (ATR's face includes the neck; to_lip moves the neck to 10)
    16,  # left_leg     -> left leg (bare leg, socks included)
    17,  # right_leg    -> right leg
    14,  # left_arm     -> left arm (hands included, as in LIP)
    15,  # right_arm    -> right arm
    0,   # bag          -> background: LIP/CIHP have no bag class and annotate carried things
         #                 as background; VITON-HD's 13-channel regrouping then has no stray class
    11,  # scarf        -> scarf (VITON-HD's "noise" channel, with glove)
], dtype=np.uint8)
assert len(ATR_TO_LIP) == NUM_LABELS
_ATR_TO_LIP_TABLE = np.zeros(256, np.uint8)  # for cv2.LUT, ~7x faster than indexing at 768x1024
_ATR_TO_LIP_TABLE[:NUM_LABELS] = ATR_TO_LIP

# The palette of the released image-parse-v3 PNGs (mode P): LIP's viewer colours as they were
# saved there (254 where LIP_JPPNet writes 255, 169 for 170, 220 for 221), then a gray ramp.
# Loaders read indices only; the colours make the files look like the released ones.
LIP_PALETTE = np.array([(i, i, i) for i in range(256)], dtype=np.uint8)
LIP_PALETTE[:20] = [
    (0, 0, 0), (128, 0, 0), (254, 0, 0), (0, 85, 0), (169, 0, 51), (254, 85, 0), (0, 0, 85),
    (0, 119, 220), (85, 85, 0), (0, 85, 85), (85, 51, 0), (52, 86, 128), (0, 128, 0), (0, 0, 254),
    (51, 169, 220), (0, 254, 254), (85, 254, 169), (169, 254, 85), (254, 254, 0), (254, 169, 0),
]

# The neck rule's constants (neck_region), tuned on generated people of seeds 0..59 and measured
# on others (tests/test_tryon_formats.py).
NECK_SEARCH = 0.75         # the neck's width is taken above this share of the way from the face's
                           # widest row to the neck keypoint (below, a neckline or the shoulders start)
NECK_SEARCH_BOTTOM = 0.7   # without keypoints: this share of the way to the face component's bottom
NECK_PERCENTILE = 10       # the neck's width: this percentile of the row widths there (the narrowest
                           # rows, but not one ragged row of a real parse)
NECK_WIDTH_SLACK = 0.03    # a row within 3% (at least 1 px) of that width is neck wide
NECK_MIN_WIDTH = 0.15      # a neck under 15% of the face's width is a chin tip: no neck visible
JAW_FIT_FROM = 0.3         # the jaw outline is fitted on the rows from this share of the way from the
                           # widest row down to the chin line (the ears lie above it)


def _present(kp: np.ndarray) -> np.ndarray:
    """bool per keypoint row: x, y finite and the score not <= 0 (OpenPose's 0, 0, 0)."""
    kp = np.asarray(kp, np.float64)
    ok = np.isfinite(kp[..., :2]).all(-1)
    if kp.shape[-1] > 2:
        ok &= ~(kp[..., 2] <= 0)
    return ok


def _check_atr(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"a label map is (H, W), got shape {labels.shape}")
    if labels.dtype != np.uint8:
        labels = labels.astype(np.uint8)
    if labels.size and labels.max() >= NUM_LABELS:
        raise ValueError(f"label id {int(labels.max())} is not a canonical ATR-18 id (0..{NUM_LABELS - 1})")
    return labels


def _check_coco(keypoints) -> np.ndarray | None:
    if keypoints is None:
        return None
    kp = np.asarray(keypoints, np.float64)
    if kp.shape not in ((NUM_KEYPOINTS, 2), (NUM_KEYPOINTS, 3)):
        raise ValueError(f"COCO-18 keypoints are (18, 3) x, y, score, got shape {kp.shape}")
    return kp


def neck_region(labels_atr: np.ndarray, keypoints=None) -> np.ndarray:
    """bool (H, W): the neck / torso skin of a canonical ATR-18 map, which ATR labels face.

    VITON-HD's parse has it as id 10 (CIHP's torso skin) and its agnostic photo does not paste
    it back, so it has to be told apart from the face. The rule, on the person's face component
    (the face pixels under the nose keypoint, else the largest):

    1. Row widths of the component. The widest row (above the neck keypoint) is the cheeks.
    2. The neck's width is the NECK_PERCENTILE percentile of the widths from there down to
       NECK_SEARCH of the way to the neck keypoint (COCO 1; else the shoulders' midpoint; else
       NECK_SEARCH_BOTTOM of the way to the component's bottom). The chin line is the first row
       below the widest one that is no wider than the neck (+ NECK_WIDTH_SLACK).
    3. The component's pixels from the chin line down are neck, less the chin's tip: an ellipse
       fitted to the face's left and right edges between JAW_FIT_FROM of the way down and the
       chin line closes the jaw, and what it covers below the chin line stays face.
    4. Other face pieces that start below the chin line, overlap the face's columns and start
       above the neck keypoint's mirror of the chin line are neck too (skin a neckline shows, cut
       off from the neck by a scarf or strap).

    No neck when the face has no rows below its widest, or the neck would be narrower than
    NECK_MIN_WIDTH of the face (a chin tip: a scarf or collar hides the neck).

    Why: a face seen from the front is widest at the cheekbones and narrows along the jaw to the
    neck, which keeps about one width down to the shoulders; the width profile falls, then levels
    off where the jaw meets the neck, and the jaw's curve continued closes the chin in front of
    the neck. On generated people (pipeline/testing/synthetic.py draws the true neck) it finds
    the neck with the IoU tests/test_tryon_formats.py measures. A parser that labels the neck
    background gets no neck here: those pixels stay background, which VITON-HD's loaders fold
    id 10 into anyway; only the agnostic photo differs (neither is pasted back).
    """
    labels = _check_atr(labels_atr)
    kp = _check_coco(keypoints)
    face = (labels == FACE).view(np.uint8)
    out = np.zeros(labels.shape, bool)
    if not face.any():
        return out
    # Components are found in the face pixels' bounding box only (the same components, a fraction
    # of the work at 768x1024); stats are moved back to map coordinates, and `components(x, y, w, h)`
    # reads the labels of a box given in them.
    fx, fy, fw, fh = cv2.boundingRect(face)
    count, crop, stats, _ = cv2.connectedComponentsWithStats(face[fy:fy + fh, fx:fx + fw], connectivity=8)
    stats[:, cv2.CC_STAT_LEFT] += fx
    stats[:, cv2.CC_STAT_TOP] += fy

    def components(x, y, w, h):
        return crop[y - fy:y - fy + h, x - fx:x - fx + w]

    present = _present(kp) if kp is not None else np.zeros(NUM_KEYPOINTS, bool)
    main = 0
    if present[0]:
        x, y = (int(round(v)) for v in kp[0, :2])
        if fy <= y < fy + fh and fx <= x < fx + fw:
            main = int(components(x, y, 1, 1)[0, 0])
    if main == 0:
        main = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x0, y0 = stats[main, cv2.CC_STAT_LEFT], stats[main, cv2.CC_STAT_TOP]
    cw, ch = stats[main, cv2.CC_STAT_WIDTH], stats[main, cv2.CC_STAT_HEIGHT]
    piece = components(x0, y0, cw, ch) == main
    widths = piece.sum(1)
    if present[1]:
        neck_y = kp[1, 1]
    elif present[2] and present[5]:
        neck_y = (kp[2, 1] + kp[5, 1]) / 2
    else:
        neck_y = None
    widest = int(np.argmax(widths if neck_y is None else widths[:max(1, int(neck_y) - y0 + 1)]))
    reach = (ch - 1 - widest) * NECK_SEARCH_BOTTOM if neck_y is None else NECK_SEARCH * (neck_y - y0 - widest)
    stop = min(ch - 1, int(widest + reach))
    if stop <= widest:
        return out
    below = widths[widest + 1:stop + 1]
    neck_width = float(np.percentile(below, NECK_PERCENTILE))
    if neck_width < NECK_MIN_WIDTH * widths[widest]:
        return out
    chin = widest + 1 + int(np.argmax(below <= neck_width + max(1.0, NECK_WIDTH_SLACK * neck_width)))
    out[y0 + chin:y0 + ch, x0:x0 + cw] = piece[chin:] & ~_jaw_closure(piece, widest, chin)[chin:]
    # Other face pieces below the chin line, within the face's columns: skin a neckline shows.
    chin_y = y0 + chin
    bottom = labels.shape[0] if neck_y is None else neck_y + (neck_y - chin_y)
    for other in range(1, count):
        if other == main:
            continue
        ox, oy, ow, oh = (int(stats[other, k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP,
                                                          cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
        if oy >= chin_y and oy <= bottom and ox < x0 + cw and ox + ow > x0:
            out[oy:oy + oh, ox:ox + ow] |= components(ox, oy, ow, oh) == other
    return out


def _jaw_closure(piece: np.ndarray, widest: int, chin: int) -> np.ndarray:
    """bool like piece: the chin below the chin line, where the face's outline continued would
    close it (in front of the neck, labelled alike). The outline is the face's left and right
    edges on the rows of the lower JAW_FIT_FROM..1 of the way from its widest row to the chin
    line (clear of the ears); an ellipse fitted to them is the jaw. Nothing when the fit is not
    a plausible jaw (too few rows, a centre off the face or below the chin, a size unlike it)."""
    out = np.zeros(piece.shape, bool)
    first = widest + int(math.ceil(JAW_FIT_FROM * (chin - widest)))
    rows = [y for y in range(first, chin) if piece[y].any()]
    if len(rows) < 3:
        return out
    points = []
    for y in rows:
        columns = np.flatnonzero(piece[y])
        points += [(columns[0], y), (columns[-1], y)]
    (cx, cy), (d1, d2), angle = cv2.fitEllipse(np.array(points, np.float32))
    face_width = piece[widest].sum()
    if not (np.isfinite([cx, cy, d1, d2]).all() and cy < chin and 0 <= cx < piece.shape[1]
            and 0.5 * face_width <= min(d1, d2) and max(d1, d2) <= 3.0 * face_width):
        return out
    jaw = np.zeros(piece.shape, np.uint8)
    cv2.ellipse(jaw, ((cx, cy), (d1, d2), angle), 1, -1, cv2.LINE_8)
    out[chin:] = jaw[chin:].view(bool)
    return out


def to_lip(labels_atr: np.ndarray, keypoints=None) -> np.ndarray:
    """uint8 (H, W) LIP-20 ids as VITON-HD's image-parse-v3 holds them: ATR_TO_LIP, then id 10
    (neck / torso skin) on neck_region's pixels. keypoints: COCO-18 (18, 3) in the map's pixels
    (None: the neck is found from the labels alone, less reliably)."""
    labels = np.ascontiguousarray(_check_atr(labels_atr))
    lip = cv2.LUT(labels, _ATR_TO_LIP_TABLE) if labels.size else ATR_TO_LIP[labels]
    lip[neck_region(labels, keypoints)] = LIP_NECK
    return lip

# ---------------------------------------------------------------------------------------------
# Drawing: Pillow's ImageDraw, as the reference scripts draw
# ---------------------------------------------------------------------------------------------

_COORDINATE_LIMIT = float(1 << 24)


def _pil_int(v: float) -> int:
    # Pillow's C drawing casts coordinates to int: truncation toward zero. Clipped so a wild
    # keypoint cannot overflow OpenCV's int32 coordinates.
    return int(max(-(1 << 24), min(1 << 24, v)))


def _xy(point) -> tuple[float, float]:
    """A point for ImageDraw, clipped so that a wild keypoint cannot overflow its int coordinates."""
    return (min(_COORDINATE_LIMIT, max(-_COORDINATE_LIMIT, float(point[0]))),
            min(_COORDINATE_LIMIT, max(-_COORDINATE_LIMIT, float(point[1]))))


class _Shapes:
    """A bool (H, W) mask drawn with Pillow's ImageDraw and the reference scripts' calls: lines
    with a width, ellipses, polygons and rectangles filled with their outline in the same colour.
    Pillow itself, so the edge pixels are the ones the scripts' own runs give (with this Pillow)."""

    def __init__(self, shape):
        self.image = Image.new("L", (int(shape[1]), int(shape[0])), 0)
        self.draw = ImageDraw.Draw(self.image)

    def line(self, p, q, width: int) -> None:
        self.draw.line([_xy(p), _xy(q)], fill=1, width=int(width))

    def ellipse(self, x, y, rx, ry) -> None:
        self.draw.ellipse((*_xy((x - rx, y - ry)), *_xy((x + rx, y + ry))), fill=1, outline=1)

    def polygon(self, points) -> None:
        self.draw.polygon([_xy(p) for p in points], fill=1, outline=1)

    def rectangle(self, x0, y0, x1, y1) -> None:
        self.draw.rectangle((*_xy((x0, y0)), *_xy((x1, y1))), fill=1, outline=1)

    def mask(self) -> np.ndarray:
        return np.asarray(self.image).view(bool)


@lru_cache(maxsize=16)
def _id_table(ids: tuple[int, ...]) -> np.ndarray:
    table = np.zeros(256, np.uint8)
    table[list(ids)] = 1
    table.flags.writeable = False
    return table


def _isin(labels: np.ndarray, ids: tuple[int, ...]) -> np.ndarray:
    """bool like labels: np.isin(labels, ids); for a uint8 map a 256-entry cv2.LUT (np.isin sorts
    and searches: ~30x slower at 768x1024)."""
    if labels.dtype == np.uint8 and labels.ndim == 2 and labels.size:
        return cv2.LUT(np.ascontiguousarray(labels), _id_table(ids)).view(bool)
    return np.isin(labels, ids)


def _missing25(pose: np.ndarray, i: int) -> bool:
    # The reference scripts' test on OpenPose JSON: a joint at exactly (0, 0) is missing.
    return pose[i, 0] == 0.0 and pose[i, 1] == 0.0


# ---------------------------------------------------------------------------------------------
# HR-VITON's parse agnostic (image-parse-agnostic-v3.2)
# ---------------------------------------------------------------------------------------------

PARSE_AGNOSTIC_R = 10
# (arm label, BODY_25 chain): the chain starts at the other shoulder, so its first segment is the
# shoulder line.
PARSE_AGNOSTIC_ARMS = ((14, (2, 5, 6, 7)), (15, (5, 2, 3, 4)))
_UPPER_AND_NECK = (5, 6, 7, LIP_NECK)


def parse_arm_bands(keypoints_coco, shape) -> dict[int, np.ndarray]:
    """{arm label: bool band} of HR-VITON's get_parse_agnostic: along the chain, for each segment
    whose two ends are present, a line 10r wide and a disc at its end (radius 15r, 4r at the
    chain's last joint, the wrist), r = 10. A segment with a missing end is skipped and the
    chain's "previous" joint stays where it was (so a missing first joint draws nothing)."""
    pose = to_body25(keypoints_coco)[:, :2].astype(np.float64)
    r = PARSE_AGNOSTIC_R
    bands = {}
    for label, chain in PARSE_AGNOSTIC_ARMS:
        band = _Shapes(shape)
        previous = chain[0]
        for joint in chain[1:]:
            if _missing25(pose, previous) or _missing25(pose, joint):
                continue
            band.line(pose[previous], pose[joint], r * 10)
            radius = r * 4 if joint == chain[-1] else r * 15
            band.ellipse(*pose[joint], radius, radius)
            previous = joint
        bands[label] = band.mask()
    return bands


def parse_agnostic(lip: np.ndarray, keypoints_coco) -> np.ndarray:
    """uint8 (H, W): HR-VITON's get_parse_agnostic on a LIP-20 map (to_lip's) and COCO-18
    keypoints in its pixels: upper clothes (5), dress (6), coat (7) and neck (10) become
    background everywhere; left/right arm (14/15) pixels become background inside that arm's
    band (parse_arm_bands); every other pixel is the input's. The reference indexes BODY_25
    joints in OpenPose JSON; the keypoints are converted here (to_body25), missing ones being the
    (0, 0) it tests for. The canvas is the map's own size (the reference fixes 768x1024, the
    export frame)."""
    lip = np.asarray(lip)
    if lip.ndim != 2:
        raise ValueError(f"a label map is (H, W), got shape {lip.shape}")
    remove = _isin(lip, _UPPER_AND_NECK)
    for label, band in parse_arm_bands(keypoints_coco, lip.shape).items():
        remove |= band & (lip == label)
    out = np.array(lip, dtype=np.uint8, copy=True)
    np.putmask(out, remove, 0)
    return out


# ---------------------------------------------------------------------------------------------
# VITON-HD's cloth-agnostic photo (agnostic-v3.2 / agnostic-mask)
# ---------------------------------------------------------------------------------------------

AGNOSTIC_GRAY = 128  # PIL's "gray"
AGNOSTIC_R = 20
AGNOSTIC_HEAD = (4, 13)                     # sunglasses, face: pasted back
AGNOSTIC_LOWER = (9, 12, 16, 17, 18, 19)    # pants, skirt, legs, shoes: pasted back


class AgnosticPoseError(VtonError, ValueError):
    """The pose lacks a shoulder or a hip: VITON-HD's agnostic needs both of each (it scales the
    hips to the shoulder width and draws the shoulder line unconditionally), so the row gets no
    agnostic photo, mask or parse-agnostic-dependent file."""


def img_agnostic(photo_rgb: np.ndarray, lip: np.ndarray, keypoints_coco) -> tuple[np.ndarray, np.ndarray]:
    """(agnostic uint8 (H, W, 3), region bool (H, W)): VITON-HD's get_img_agnostic.

    On a copy of the photo, with r = 20 and BODY_25 joints (converted from COCO-18 here), gray
    (128, 128, 128) fills: the shoulder line 2-5 (10r wide) and discs of radius 5r at both
    shoulders; each present arm segment 2-3, 3-4, 5-6, 6-7 (10r wide) with a 5r disc at its end;
    after moving the hips symmetrically about their midpoint until they are as far apart as the
    shoulders: 3r x 6r half-axis ellipses at both hips, lines 2-9 and 5-12 (6r wide), 9-12 (12r
    wide) and the polygon 2-5-12-9; a square of half-side 7r around the neck joint 1. Then the
    photo's pixels come back wherever the parse says sunglasses or face (4, 13) or pants, skirt,
    legs, shoes (9, 12, 16-19). Hair, arms, neck and background are not restored. ``region`` is
    exactly the gray area (the agnostic-mask, 255 = repaint), whatever colour the photo had there.

    Deviation: a missing neck joint (which the reference would draw at (0, 0)) is taken as the
    shoulders' midpoint, where OpenPose puts it. Raises AgnosticPoseError without both shoulders
    and both hips, or with the hips on one point.
    """
    photo = np.asarray(photo_rgb)
    lip = np.asarray(lip)
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ValueError(f"photo must be uint8 (H, W, 3), got {photo.dtype} {photo.shape}")
    if lip.shape != photo.shape[:2]:
        raise ValueError(f"parse {lip.shape} and photo {photo.shape[:2]} differ in size")
    kp = _check_coco(keypoints_coco)
    pose = to_body25(kp)[:, :2].astype(np.float64)
    lacking = [name for name, joint in (("right shoulder", 2), ("left shoulder", 5), ("right hip", 9),
                                        ("left hip", 12)) if _missing25(pose, joint)]
    if lacking:
        raise AgnosticPoseError(f"no agnostic image: the pose lacks the {', '.join(lacking)}")
    shoulder_width = np.linalg.norm(pose[5] - pose[2])
    hip_width = np.linalg.norm(pose[12] - pose[9])
    if hip_width == 0:
        raise AgnosticPoseError("no agnostic image: both hips are on one point")
    if _missing25(pose, 1):
        pose[1] = (pose[2] + pose[5]) / 2
    middle = (pose[9] + pose[12]) / 2
    pose[9] = middle + (pose[9] - middle) / hip_width * shoulder_width
    pose[12] = middle + (pose[12] - middle) / hip_width * shoulder_width

    r = AGNOSTIC_R
    gray = _Shapes(lip.shape)

    def disc(i, rx, ry):
        gray.ellipse(*pose[i], rx, ry)

    # arms
    gray.line(pose[2], pose[5], r * 10)
    for i in (2, 5):
        disc(i, r * 5, r * 5)
    for i in (3, 4, 6, 7):
        if _missing25(pose, i - 1) or _missing25(pose, i):
            continue
        gray.line(pose[i - 1], pose[i], r * 10)
        disc(i, r * 5, r * 5)
    # torso
    for i in (9, 12):
        disc(i, r * 3, r * 6)
    gray.line(pose[2], pose[9], r * 6)
    gray.line(pose[5], pose[12], r * 6)
    gray.line(pose[9], pose[12], r * 12)
    gray.polygon([pose[2], pose[5], pose[12], pose[9]])
    # neck
    x, y = pose[1]
    gray.rectangle(x - r * 7, y - r * 7, x + r * 7, y + r * 7)

    region = gray.mask() & ~_isin(lip, AGNOSTIC_HEAD + AGNOSTIC_LOWER)
    agnostic = np.ascontiguousarray(photo).copy()
    # cv2's masked copy: a numpy boolean assignment on the (H, W, 3) photo costs several times more.
    cv2.copyTo(_gray_photo(photo.shape), region.view(np.uint8), agnostic)
    return agnostic, region


@lru_cache(maxsize=4)
def _gray_photo(shape) -> np.ndarray:
    gray = np.full(shape, AGNOSTIC_GRAY, np.uint8)
    gray.flags.writeable = False
    return gray


# ---------------------------------------------------------------------------------------------
# OpenPose BODY_25
# ---------------------------------------------------------------------------------------------

BODY25_NAMES = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
# COCO-18 index -> BODY_25 index: the first eight agree, the rest move up one because BODY_25
# inserts MidHip at 8; BODY_25's feet (19..24) have no COCO source.
COCO18_TO_BODY25 = np.array([0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18], dtype=np.int64)
BODY25_MIDHIP, BODY25_RHIP, BODY25_LHIP = 8, 9, 12

# OpenPose's BODY_25 render pairs (limb = (a, b), drawn in b's colour) and colours (RGB).
BODY25_PAIRS = ((1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11), (8, 12),
                (12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (14, 19), (19, 20), (14, 21),
                (11, 22), (22, 23), (11, 24))
BODY25_COLOURS = np.array([
    (255, 0, 85), (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (255, 0, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (255, 0, 170), (170, 0, 255), (255, 0, 255), (85, 0, 255), (0, 0, 255), (0, 0, 255),
    (0, 0, 255), (0, 255, 255), (0, 255, 255), (0, 255, 255),
], dtype=np.float32)
RENDER_THRESHOLD = 0.05  # OpenPose's --render_threshold default
RENDER_ALPHA = 0.6       # OpenPose's --alpha_pose default


def to_body25(kp_coco) -> np.ndarray:
    """float32 (25, 3) BODY_25 x, y, score from COCO-18 (18, 2 or 3; NaN or score <= 0 missing).

    Missing joints, and those BODY_25 has but COCO-18 lacks (the six foot points), are 0, 0, 0,
    as OpenPose writes them. MidHip (8), which OpenPose's BODY_25 net predicts itself, is the
    hips' midpoint when both hips are present, with the smaller of their scores (a derived point
    is only as sure as its weaker source); otherwise it is missing. A keypoint given without a
    score gets 1.
    """
    kp = np.asarray(kp_coco, np.float64)
    if kp.shape not in ((NUM_KEYPOINTS, 2), (NUM_KEYPOINTS, 3)):
        raise ValueError(f"COCO-18 keypoints are (18, 3) x, y, score, got shape {kp.shape}")
    out = np.zeros((25, 3), np.float32)
    present = _present(kp)
    scores = kp[:, 2] if kp.shape[1] == 3 else np.ones(NUM_KEYPOINTS)
    scores = np.where(np.isfinite(scores), scores, 1.0)
    for coco, body in enumerate(COCO18_TO_BODY25):
        if present[coco]:
            out[body] = (kp[coco, 0], kp[coco, 1], scores[coco])
    right, left = 8, 11  # COCO-18 hips
    if present[right] and present[left]:
        out[BODY25_MIDHIP, :2] = (kp[right, :2] + kp[left, :2]) / 2
        out[BODY25_MIDHIP, 2] = min(scores[right], scores[left])
    return out


def from_body25(kp25) -> np.ndarray:
    """float32 (18, 3) COCO-18 from BODY_25 (25, 3): the inverse of to_body25 (MidHip and feet are
    dropped); a joint at 0, 0 or with score <= 0 becomes a NaN row."""
    kp = np.asarray(kp25, np.float64)
    if kp.shape != (25, 3):
        raise ValueError(f"BODY_25 keypoints are (25, 3), got shape {kp.shape}")
    out = kp[COCO18_TO_BODY25].astype(np.float32)
    missing = ~_present(out) | ((out[:, 0] == 0) & (out[:, 1] == 0))
    out[missing] = np.nan
    return out


# OpenPose's person keys in its own order; the face and hands are left empty (we detect neither;
# OpenPose writes them empty too when run without --face/--hand), the 3-D ones always are.
_OPENPOSE_EMPTY_KEYS = ("face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d",
                        "pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d",
                        "hand_right_keypoints_3d")


def openpose_body25_json(people_coco, canvas) -> dict:
    """OpenPose's --write_json document for BODY_25, from COCO-18 people in frame pixels.

    people_coco: (18, 3) arrays (or an (N, 18, 3) array; None or empty for no person), the person
    the row is about first -- loaders read people[0]. canvas: (width, height) of the frame; a
    joint outside it is written missing, since OpenPose finds none there. A person without any
    joint is left out, so a photo without people gives ``"people": []`` as OpenPose writes it.
    Each person: ``person_id`` [-1], ``pose_keypoints_2d`` 75 floats (x, y, score; missing 0, 0,
    0), and OpenPose's other keys as empty lists.
    """
    width, height = (float(v) for v in canvas)
    if people_coco is None:
        people_coco = []
    people_coco = np.asarray(people_coco, np.float64)
    if people_coco.size == 0:
        people_coco = np.zeros((0, NUM_KEYPOINTS, 3))
    if people_coco.ndim == 2:
        people_coco = people_coco[None]
    people = []
    for person in people_coco:
        person = np.array(person, copy=True)
        if person.shape[1] == 2:
            person = np.concatenate([person, np.ones((NUM_KEYPOINTS, 1))], axis=1)
        with np.errstate(invalid="ignore"):
            outside = ~((person[:, 0] >= 0) & (person[:, 0] < width) & (person[:, 1] >= 0) & (person[:, 1] < height))
        person[outside] = np.nan
        kp25 = to_body25(person)
        if not kp25[:, 2].any():
            continue
        flat = []
        for x, y, score in kp25.astype(np.float64):
            flat += [round(x, 3), round(y, 3), round(score, 6)]
        entry = {"person_id": [-1], "pose_keypoints_2d": flat}
        entry.update({key: [] for key in _OPENPOSE_EMPTY_KEYS})
        people.append(entry)
    return {"version": 1.3, "people": people}


def render_body25(kp25, size) -> np.ndarray:
    """uint8 (H, W, 3) RGB: OpenPose's GPU renderer with --disable_blending, on black.

    kp25: (25, 3) or (N, 25, 3) in the pixels of size = (width, height). For each person, every
    pair of BODY25_PAIRS whose two scores exceed 0.05 is a filled ellipse along the limb (half
    the limb's length by lineWidth = min(W, H) / 120 times the person's scale), and every joint
    above 0.05 a disc of radius min(W, H) / 100 times that scale; the scale is (bbox width + bbox
    height) / 400 of the joints above 0.05, clamped to [0.33, 1]. Each shape is blended over what
    is there, out = 0.4 * out + 0.6 * colour, limbs in their second joint's colour, limbs first
    and then joints, person after person. Pixel (x, y) is tested at its integer coordinates.

    Why the GPU renderer: HR-VITON's Preprocessing.md runs openpose.bin without --render_pose,
    whose default (-1) is the GPU renderer in a CUDA build; which renderer made the released
    openpose_img files is not confirmed by any source. Hands and face (the released files were
    made with --hand) are not drawn: we have no hand keypoints.
    """
    width, height = (int(v) for v in size)
    kp = np.asarray(kp25, np.float64)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.shape[1:] != (25, 3):
        raise ValueError(f"BODY_25 keypoints are (25, 3) or (N, 25, 3), got shape {kp.shape}")
    # Only the boxes of the shapes drawn are ever touched or converted: np.zeros maps its pages
    # lazily, and touching all of a 768x1024 float canvas costs more than the drawing.
    image = np.zeros((height, width, 3), np.float32)
    drawn = []  # (r0, r1, c0, c1) of every shape shaded
    radius = min(width, height) / 100.0
    line_width = min(width, height) / 120.0
    alpha = RENDER_ALPHA
    for person in kp:
        on = np.isfinite(person).all(1) & (person[:, 2] > RENDER_THRESHOLD)
        if not on.any():
            continue
        xs, ys = person[on, 0], person[on, 1]
        scale = min(1.0, max(0.33, ((xs.max() - xs.min()) + (ys.max() - ys.min())) / 400.0))
        # OpenPose only shades pixels within 50 px of the joints' box.
        bx0, bx1 = max(0, math.ceil(xs.min() - 50)), min(width - 1, math.floor(xs.max() + 50))
        by0, by1 = max(0, math.ceil(ys.min() - 50)), min(height - 1, math.floor(ys.max() + 50))
        if bx0 > bx1 or by0 > by1:
            continue
        b_sq = (scale * line_width) ** 2
        for a, b in BODY25_PAIRS:
            if not (on[a] and on[b]):
                continue
            (xa, ya), (xb, yb) = person[a, :2], person[b, :2]
            xp, yp = (xa + xb) / 2, (ya + yb) / 2
            a_sq = (xa - xp) ** 2 + (ya - yp) ** 2
            if a_sq == 0:  # OpenPose divides by zero here: a zero-length limb shades nothing
                continue
            reach = math.sqrt(max(a_sq, b_sq))
            angle = math.atan2(yb - ya, xb - xa)
            cos, sin = math.cos(angle), math.sin(angle)
            # Only the ellipse's own axis-aligned box (+1 px against rounding) can pass the test
            # below, not the whole square of side 2 * reach: a thin limb's box is far smaller.
            half_w = math.sqrt(a_sq * cos * cos + b_sq * sin * sin) + 1
            half_h = math.sqrt(a_sq * sin * sin + b_sq * cos * cos) + 1
            c0 = max(bx0, math.floor(xp - reach), math.floor(xp - half_w))
            c1 = min(bx1, math.ceil(xp + reach), math.ceil(xp + half_w))
            r0 = max(by0, math.floor(yp - reach), math.floor(yp - half_h))
            r1 = min(by1, math.ceil(yp + reach), math.ceil(yp + half_h))
            if c0 > c1 or r0 > r1:
                continue
            dx = np.arange(c0, c1 + 1)[None, :] - xp
            dy = np.arange(r0, r1 + 1)[:, None] - yp
            along = cos * dx + sin * dy
            across = sin * dx - cos * dy
            inside = along ** 2 / a_sq + across ** 2 / b_sq <= 1.0
            view = image[r0:r1 + 1, c0:c1 + 1]
            view[inside] = (1 - alpha) * view[inside] + alpha * BODY25_COLOURS[b]
            drawn.append((r0, r1, c0, c1))
        r_sq = (scale * radius) ** 2
        for j in np.flatnonzero(on):
            x, y = person[j, :2]
            reach = math.sqrt(r_sq)
            c0, c1 = max(bx0, math.floor(x - reach)), min(bx1, math.ceil(x + reach))
            r0, r1 = max(by0, math.floor(y - reach)), min(by1, math.ceil(y + reach))
            if c0 > c1 or r0 > r1:
                continue
            d2 = (np.arange(c0, c1 + 1)[None, :] - x) ** 2 + (np.arange(r0, r1 + 1)[:, None] - y) ** 2
            inside = d2 <= r_sq
            view = image[r0:r1 + 1, c0:c1 + 1]
            view[inside] = (1 - alpha) * view[inside] + alpha * BODY25_COLOURS[j]
            drawn.append((r0, r1, c0, c1))
    out = np.zeros((height, width, 3), np.uint8)
    for r0, r1, c0, c1 in drawn:  # overlapping boxes are converted twice, to the same values
        # cv2 rounds half to even and saturates as np.clip(np.rint(...)) does, in one pass; the
        # values are never negative, so its absolute value changes nothing.
        out[r0:r1 + 1, c0:c1 + 1] = cv2.convertScaleAbs(image[r0:r1 + 1, c0:c1 + 1])
    return out


# ---------------------------------------------------------------------------------------------
# DressCode
# ---------------------------------------------------------------------------------------------

DRESSCODE_FRAME = (384, 512)  # (width, height) of keypoints/<id>_2.json: its loader scales by W/384, H/512
# label_maps/<id>_4.png palette: SCHP's bit-interleaved (VOC) colours for ids 0..17, then the gray
# ramp the released files carry.
DRESSCODE_PALETTE = np.array([(i, i, i) for i in range(256)], dtype=np.uint8)
DRESSCODE_PALETTE[:18] = [
    (0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128), (0, 128, 128),
    (128, 128, 128), (64, 0, 0), (192, 0, 0), (64, 128, 0), (192, 128, 0), (64, 0, 128), (192, 0, 128),
    (64, 128, 128), (192, 128, 128), (0, 64, 0), (128, 64, 0),
]
# The 18 colours of the COCO-18 skeleton drawing of pytorch-openpose (the code DressCode's
# keypoint files come from; see dresscode_keypoints_json): colour i for limb i and for joint i.
DRESSCODE_COLOURS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)
# Its limbs, 0-based, in drawing order: the 17 it draws (it lists two more, ear-shoulder, and skips them).
DRESSCODE_LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
                   (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
DRESSCODE_STICK, DRESSCODE_JOINT_RADIUS = 4, 4  # pixels at DRESSCODE_FRAME's height


def dresscode_keypoints_json(kp_coco, photo_size) -> dict:
    """DressCode's keypoints/<id>_2.json: ``{"keypoints": 18 x [x, y, score, id]}``, COCO-18 order.

    kp_coco: (18, 3) in the pixels of a photo of photo_size = (width, height); x and y are
    written in the 384x512 frame DressCode's loader assumes (x * 384 / width, y * 512 / height),
    rounded to whole pixels (the files hold pytorch-openpose's integer peak positions) and kept
    inside it. The 4th value is pytorch-openpose's running peak id: with one peak per joint,
    the joint's rank among the present joints (0, 1, ...; it shifts past a missing joint). A
    missing joint is [-1, -1, 0, -1], as in the released files.
    """
    kp = _check_coco(kp_coco)
    w, h = (float(v) for v in photo_size)
    fw, fh = DRESSCODE_FRAME
    present = _present(kp)
    rows = []
    peak = 0
    for i in range(NUM_KEYPOINTS):
        if not present[i]:
            rows.append([-1.0, -1.0, 0.0, -1.0])
            continue
        x = float(min(fw - 1, max(0, round(kp[i, 0] * fw / w))))
        y = float(min(fh - 1, max(0, round(kp[i, 1] * fh / h))))
        score = float(kp[i, 2]) if kp.shape[1] == 3 and np.isfinite(kp[i, 2]) else 1.0
        rows.append([x, y, round(score, 6), float(peak)])
        peak += 1
    return {"keypoints": rows}


def dresscode_label_map(labels_atr: np.ndarray) -> np.ndarray:
    """uint8 (H, W) of DressCode's label_maps/<id>_4.png: its ids are SCHP's ATR-18 classes in
    the very order of our canonical labels (0 background ... 11 head/face ... 17 scarf), so the
    map is ours, checked; save it in mode P with DRESSCODE_PALETTE. The neck stays face (11), as
    ATR labels it."""
    return _check_atr(labels_atr).copy()


def render_dresscode_skeleton(kp_coco, size) -> np.ndarray:
    """uint8 (H, W, 3) RGB skeleton for DressCode's skeletons/<id>_5.jpg, on black.

    No source says how the released skeletons were drawn; their keypoints come from
    pytorch-openpose, so this is its draw_bodypose: first a disc of radius 4 per present joint in
    the joint's colour, then per limb (DRESSCODE_LIMBS, both ends present) an ellipse of half the
    limb's length by 4 (centre, half-length and angle cut to integers as it does) blended 0.4 old
    + 0.6 colour. Widths scale with the height (4 px at 512). The colours are applied as RGB,
    the convention ControlNet's openpose images use; pytorch-openpose draws them on a BGR image,
    so a file it saved with cv2 would show them channel-swapped (unconfirmed for DressCode).
    kp_coco: (18, 3) in the pixels of size = (width, height).
    """
    kp = _check_coco(kp_coco)
    width, height = (int(v) for v in size)
    scale = height / DRESSCODE_FRAME[1]
    stick = max(1, round(DRESSCODE_STICK * scale))
    joint_radius = max(1, round(DRESSCODE_JOINT_RADIUS * scale))
    canvas = np.zeros((height, width, 3), np.uint8)
    present = _present(kp)
    for i in range(NUM_KEYPOINTS):
        if present[i]:
            cv2.circle(canvas, (_pil_int(kp[i, 0]), _pil_int(kp[i, 1])), joint_radius, DRESSCODE_COLOURS[i], -1)
    for i, (a, b) in enumerate(DRESSCODE_LIMBS):
        if not (present[a] and present[b]):
            continue
        (xa, ya), (xb, yb) = kp[a, :2], kp[b, :2]
        length = math.hypot(xa - xb, ya - yb)
        angle = math.degrees(math.atan2(ya - yb, xa - xb))
        polygon = cv2.ellipse2Poly((_pil_int((xa + xb) / 2), _pil_int((ya + yb) / 2)),
                                   (int(length / 2), stick), int(angle), 0, 360, 1)
        c0, r0 = np.maximum(polygon.min(0), 0)
        c1, r1 = np.minimum(polygon.max(0) + 1, (width, height))
        if c0 >= c1 or r0 >= r1:
            continue
        limb = np.zeros((r1 - r0, c1 - c0), np.uint8)
        cv2.fillConvexPoly(limb, polygon - (c0, r0), 1)
        inside = limb.view(bool)
        view = canvas[r0:r1, c0:c1]
        blended = 0.4 * view[inside].astype(np.float32) + 0.6 * np.array(DRESSCODE_COLOURS[i], np.float32)
        view[inside] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return canvas
