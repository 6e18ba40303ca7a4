"""Inpainting-mask geometry: a canonical label map (and keypoints) in, a 0/255 mask out.

Pure numpy/OpenCV functions from arrays to arrays; no I/O, no models. Every length is a fraction
of the label map's height, written below as pixels at 512 px height (the size OOTDiffusion's
agnostic mask was tuned at), so one figure gives the same mask at any resolution. The caller
upsamples the label map to the photo's size (nearest neighbour) before calling: mask edges then
follow the parse at photo resolution instead of being blown-up staircase edges of a small mask.

Styles (docs/masks.md shows each on the same figure):

* ``rect``  - the seed tool's mask: the bounding rectangle of each garment label, united; shoes never.
* ``ootd``  - OOTDiffusion's / IDM-VTON's agnostic mask: dilated garments and arm bands minus
  protected labels, holes filled, largest region.
* ``parse`` - the garment labels dilated by a margin, protected labels removed; no pose needed.
* ``crop``  - the filled bounding box of the garment pixels (the sink cuts the photo to it).
"""
from __future__ import annotations

import cv2
import numpy as np

from pipeline.labels import (
    BACKGROUND,
    BAG,
    DRESS,
    FACE,
    GARMENTS,
    HAIR,
    HAT,
    LEFT_ARM,
    LEFT_LEG,
    LEFT_SHOE,
    NUM_LABELS,
    OOTD_GARMENTS,
    PANTS,
    PASSTHROUGH_CATEGORY,
    RIGHT_ARM,
    RIGHT_LEG,
    RIGHT_SHOE,
    SCARF,
    SKIRT,
    SUNGLASSES,
    UPPER_CLOTHES,
    normalize_category,
)

STYLES = ("rect", "ootd", "parse", "crop")
OOTD_VARIANTS = ("hd", "dc")
# The order quality_flags reports in: what the parse says, then the mask, then the pose.
FLAGS = ("no_person", "no_garment", "category_mismatch", "mask_tiny", "mask_huge", "no_pose_person",
         "multi_person")

REFERENCE_HEIGHT = 512
# n passes of a 5x5 square kernel equal one square kernel of radius 2n: one pass at any scale.
GARMENT_REACH = 10  # ootd garments: 5 passes
ARM_REACH = 8  # ootd arm bands: 4 passes
PARSE_MARGIN = 10  # parse style: the same reach as ootd's garments, so the two styles agree on edges
ARM_WIDTH = {"hd": 60.0, "dc": 45.0}  # OOTDiffusion's VITON-HD and DressCode models
WRIST_EXTENSION = 1.2  # the band runs past the wrist to elbow + 1.2 (wrist - elbow)
# Bridges parser gaps (a thin background seam at a belt or an arm) so one body stays one region.
PERSON_CLOSING = 4
TINY_AREA, HUGE_AREA = 0.01, 0.80

# no_person (is_no_person, person_evidence): the parse shows a person when its largest head
# region (face, hair, hat, sunglasses) sits on a body. All measured on the label map resized
# (nearest) down to NO_PERSON_GRID_HEIGHT rows, as shares of the image or ratios to the head,
# so the rule is the same at any resolution. Chosen on the bundled parser's parses of generated
# people and generated non-person scenes, tuning seeds only (bench/no_person_eval.py --split
# tuning): each threshold lies just outside the range of 1,400 tuning people (none flagged),
# which flag 97-98% of each class of 400 tuning scenes. Held-out rates: docs/masks.md.
NO_PERSON_GRID_HEIGHT = 384
# (in brackets: the range of the 1,400 tuning people)
NO_PERSON_MIN_FACE = 0.003  # face pixels of the head region / all pixels (>= 0.0035)
NO_PERSON_MIN_FACE_SOLIDITY = 0.5  # face pixels / their convex hull: one compact blob (>= 0.56)
NO_PERSON_MIN_BODY_BELOW = 4.0  # garment and limb pixels of the body below the head, in head areas (>= 4.2)
NO_PERSON_MIN_ARMS = 0.06  # arm (hands included) pixels of the body, in head areas (>= 0.069)
NO_PERSON_MAX_GARMENTS = 15.0  # garment pixels of the body, in head areas: too small a head for them (<= 13.5)
NO_PERSON_MAX_PIECES = 23  # label pieces (>= 0.2% of the body each) of the body: not a patchwork (<= 22)
NO_PERSON_MAX_HEAD_OFFSET = 0.8  # torso centre off the head's centre, in head widths (<= 0.73)
NO_PERSON_MIN_TALL = 0.9  # the body's height / width (>= 0.97)
_HEAD_LABELS = (HAT, HAIR, SUNGLASSES, FACE)
_BODY_GARMENTS = (UPPER_CLOTHES, SKIRT, PANTS, DRESS)
_ARMS = (LEFT_ARM, RIGHT_ARM)
_LIMBS = (LEFT_ARM, RIGHT_ARM, LEFT_LEG, RIGHT_LEG)

# Labels a try-on model must reproduce untouched whatever the category.
ALWAYS_PROTECTED = (HAT, SUNGLASSES, FACE, LEFT_SHOE, RIGHT_SHOE, BAG)
# ...and the clothes (and arms) the category does not replace.
CATEGORY_PROTECTED = {
    "upper_body": (SKIRT, PANTS),
    "lower_body": (UPPER_CLOTHES, LEFT_ARM, RIGHT_ARM),
    "dresses": (),
}
# COCO-18 (shoulder, elbow, wrist) of each arm, with the parse label of the same (person's) side.
ARM_CHAINS = (((2, 3, 4), RIGHT_ARM), ((5, 6, 7), LEFT_ARM))
ARM_CATEGORIES = ("upper_body", "dresses")

# category_mismatch: the garment that defines the asked category against the garments of the
# categories it could be confused with. Garments worn together (a shirt over pants) are not
# rivals, or every full-length photo of a shirt would be flagged.
_DEFINING = {"upper_body": (UPPER_CLOTHES,), "lower_body": (SKIRT, PANTS), "dresses": (DRESS,)}
_RIVALS = {
    "upper_body": ((DRESS,),),
    "lower_body": ((DRESS,),),
    "dresses": ((UPPER_CLOTHES,), (SKIRT, PANTS)),
}


# ----------------------------------------------------------------------------- public API

def make_mask(labels, keypoints, category, style="rect", *, ootd_variant="hd", person=None,
              no_person=False) -> np.ndarray:
    """Inpainting mask of ``category`` for one label map: HxW uint8, 255 = repaint.

    labels: HxW canonical (ATR-18) label map. keypoints: float32 (18, 3) x, y, score in the
    label map's pixels, NaN for a missing keypoint, or None when pose is off (only ``ootd``
    reads them). category: upper_body, lower_body or dresses; ``other`` raises ValueError
    (the caller passes such rows through). style: one of STYLES. ootd_variant: ``hd`` (arm
    band 60/512 of the height) or ``dc`` (45/512). person: main_person(labels), when the
    caller already has it. no_person: True for a row flagged no_person (is_no_person(labels)):
    its mask is empty, whatever the parse holds.

    Only the main (largest) person's garments are masked; other people's pixels stay out of
    the ``ootd`` and ``parse`` masks.
    """
    labels = _check_labels(labels)
    keypoints = _check_keypoints(keypoints)
    category = _garment_category(category)
    if ootd_variant not in OOTD_VARIANTS:
        raise ValueError(f"unknown ootd_variant {ootd_variant!r} (expected one of {', '.join(OOTD_VARIANTS)})")
    style_function = style_of(style)
    if labels.size == 0 or no_person:
        return np.zeros(labels.shape, np.uint8)
    person = main_person(labels) if person is None else np.asarray(person, bool)
    mask = style_function(labels, keypoints, category, person, ootd_variant=ootd_variant)
    return _u8(np.asarray(mask) > 0) * np.uint8(255)


def style_of(style: str):
    """The function of a mask style: a name in STYLE_FUNCTIONS or a `package.module:name` reference.

    A style function takes (labels, keypoints, category, person, *, ootd_variant) as make_mask
    validated them and returns an HxW mask (bool, or nonzero = repaint).
    """
    from pipeline.plugins import PluginError, resolve

    try:
        found = resolve(str(style), STYLE_FUNCTIONS, "mask style")
    except PluginError as error:
        raise ValueError(str(error)) from None
    if not callable(found):
        raise ValueError(f"mask style {style!r} is not a function")
    return found


def quality_flags(labels, keypoints, persons, category, mask, *, person=None, no_person=None) -> list[str]:
    """Quality flags of one row, in FLAGS order (docs/masks.md explains each).

    no_person: is_no_person(labels), from the parse alone, with or without pose (pass
    ``no_person=`` when the caller already has it); such a row's mask should be empty.
    no_garment, category_mismatch: counted on the main person's pixels. mask_tiny / mask_huge:
    the mask covers under 1% / over 80% of the image. no_pose_person: the parse shows a person
    but keypoints were given and none is present (or persons == 0): the pose model found nobody;
    omitted when keypoints is None (pose off) and when no_person is set. multi_person:
    persons > 1; omitted when persons is None.
    """
    labels = _check_labels(labels)
    keypoints = _check_keypoints(keypoints)
    category = _garment_category(category)
    person = main_person(labels) if person is None else np.asarray(person, bool)
    counts = np.bincount(labels[person], minlength=256)
    found = set()
    if is_no_person(labels) if no_person is None else no_person:
        found.add("no_person")
    if counts[list(GARMENTS[category])].sum() == 0:
        found.add("no_garment")
    defining = counts[list(_DEFINING[category])].sum()
    if any(counts[list(rival)].sum() > defining for rival in _RIVALS[category]):
        found.add("category_mismatch")
    mask = np.asarray(mask)
    area = np.count_nonzero(mask) / mask.size if mask.size else 0.0
    if area < TINY_AREA:
        found.add("mask_tiny")
    if area > HUGE_AREA:
        found.add("mask_huge")
    if "no_person" not in found and keypoints is not None and (persons == 0 or not _present(keypoints).any()):
        found.add("no_pose_person")
    if persons is not None and persons > 1:
        found.add("multi_person")
    return [flag for flag in FLAGS if flag in found]


def mask_bbox(mask) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the mask's nonzero pixels, x1 and y1 exclusive; None for an empty mask."""
    mask = np.asarray(mask)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def label_fractions(labels) -> np.ndarray:
    """float32 (18,): the share of the image's pixels per canonical label (ids >= 18 count nowhere)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros(NUM_LABELS, np.float32)
    counts = np.bincount(labels.ravel(), minlength=NUM_LABELS)[:NUM_LABELS]
    return (counts / labels.size).astype(np.float32)


def main_person(labels) -> np.ndarray:
    """bool HxW: the largest connected region of non-background pixels (after a small closing).

    The closing (PERSON_CLOSING/512 of the height) joins a body the parser cut with a thin
    background seam; two people standing apart stay apart. All False when there is no person.
    """
    labels = _check_labels(labels)
    body = labels != BACKGROUND
    if not body.any():
        return np.zeros(labels.shape, bool)
    radius = _scaled_radius(PERSON_CLOSING, labels.shape[0])
    body = cv2.morphologyEx(_u8(body), cv2.MORPH_CLOSE, _square(radius)).view(bool)
    return _largest_component(body)


def is_no_person(labels) -> bool:
    """True when the parse shows no person: the row gets the flag ``no_person`` and an empty mask.

    The one definition of no_person, for every stage and layout, with or without pose: a row
    flagged no_person keeps status ok, and its mask is empty (``make_mask(..., no_person=True)``
    returns zeros; quality_flags reports it first). A person is a head on a body (person_evidence
    measures it): the parse must hold a head region (face, hair, hat, sunglasses) with at least
    NO_PERSON_MIN_FACE of the image in face pixels forming one compact blob, sitting centred on a
    taller-than-wide body with garments and limbs below the head, some arm or hand pixels, not
    more garment than a head of that size wears, and a parse not cut into a patchwork of
    pieces. Any check failing means no person (thresholds: the NO_PERSON_* constants; how they
    were chosen and the measured rates: docs/masks.md). A photo cropped below the chin has no
    head and is flagged too.

    Works on the label map at any size (resized down to NO_PERSON_GRID_HEIGHT rows first):
    the working-size map and its upsampling to the photo give the same answer up to sampling.
    """
    evidence = person_evidence(labels)
    return not (
        evidence["face"] >= NO_PERSON_MIN_FACE
        and evidence["face_solidity"] >= NO_PERSON_MIN_FACE_SOLIDITY
        and evidence["body_below"] >= NO_PERSON_MIN_BODY_BELOW
        and evidence["arms"] >= NO_PERSON_MIN_ARMS
        and evidence["garments"] <= NO_PERSON_MAX_GARMENTS
        and evidence["pieces"] <= NO_PERSON_MAX_PIECES
        and evidence["head_offset"] <= NO_PERSON_MAX_HEAD_OFFSET
        and evidence["tall"] >= NO_PERSON_MIN_TALL
    )


def person_evidence(labels) -> dict[str, float]:
    """What is_no_person measures, on the label map resized (nearest) down to NO_PERSON_GRID_HEIGHT rows.

    The head is the largest 8-connected region of head labels (face, hair, hat, sunglasses); the
    body is the 8-connected region of non-background pixels that holds it. Head areas below are
    that head region's pixel count.

    * face: the head region's face pixels / all pixels (0 without a head);
    * face_solidity: those face pixels / the area of their convex hull (the hull joins pixel
      centres, so a solid blob reads slightly above 1);
    * head: the head region's pixels / all pixels;
    * body_below: garment (upper_clothes, skirt, pants, dress) and limb pixels of the body below
      the head's lowest row, in head areas;
    * arms: arm pixels (hands included) of the body, in head areas; limbs: arms and legs;
    * garments: garment pixels of the body, in head areas;
    * pieces: 8-connected pieces of each label inside the body, counting those of at least
      0.2% of the body's pixels;
    * head_offset: horizontal distance between the head's centre and the centre of the garment,
      arm and scarf pixels in the two head heights below it, in head widths (inf when none);
    * tall: the body's bounding-box height / width.
    """
    labels = _check_labels(labels)
    evidence = {"face": 0.0, "face_solidity": 0.0, "head": 0.0, "body_below": 0.0, "arms": 0.0, "limbs": 0.0,
                "garments": 0.0, "pieces": 0, "head_offset": float("inf"), "tall": 0.0}
    if labels.size == 0:
        return evidence
    height, width = labels.shape
    grid = labels
    if height > NO_PERSON_GRID_HEIGHT:  # never up: a smaller map already is its own grid
        grid_width = max(1, int(round(width * NO_PERSON_GRID_HEIGHT / height)))
        grid = cv2.resize(labels, (grid_width, NO_PERSON_GRID_HEIGHT), interpolation=cv2.INTER_NEAREST)
    grid = np.ascontiguousarray(grid)
    # Plain labelling plus a histogram costs a fraction of connectedComponentsWithStats (the
    # stage's budget is a few ms per photo); the statistics kept are the same numbers.
    count, regions = _components(_isin(grid, _HEAD_LABELS))
    if count <= 1:
        return evidence
    head = regions != 0 if count == 2 else regions == 1 + int(np.argmax(_histogram(regions, count)[1:]))
    head_x, head_y, head_width, head_height = cv2.boundingRect(_u8(head))
    head_moments = cv2.moments(_u8(head[head_y:head_y + head_height, head_x:head_x + head_width]), binaryImage=True)
    head_area = int(head_moments["m00"])
    head_centre = head_x + head_moments["m10"] / head_area
    face = head & (grid == FACE)
    face_area = np.count_nonzero(face)
    evidence["head"] = head_area / grid.size
    evidence["face"] = face_area / grid.size
    if face_area:
        hull = cv2.contourArea(cv2.convexHull(cv2.findNonZero(_u8(face))))
        evidence["face_solidity"] = face_area / max(hull, 1.0)
    count, regions = _components(grid != BACKGROUND)
    body = regions != 0 if count == 2 else regions == int(np.argmax(np.bincount(regions[head], minlength=count)))
    body_labels = cv2.bitwise_and(grid, grid, mask=_u8(body))
    counts = np.bincount(grid[body], minlength=256)  # body pixels only: counts[0] is 0
    evidence["arms"] = counts[list(_ARMS)].sum() / head_area
    evidence["limbs"] = counts[list(_LIMBS)].sum() / head_area
    evidence["garments"] = counts[list(_BODY_GARMENTS)].sum() / head_area
    below = head_y + head_height
    evidence["body_below"] = np.count_nonzero(_isin(body_labels[below:], _BODY_GARMENTS + _LIMBS)) / head_area
    torso = _isin(body_labels[below:below + 2 * head_height], _BODY_GARMENTS + _ARMS + (SCARF,))
    if torso.any():
        torso_moments = cv2.moments(_u8(torso), binaryImage=True)
        torso_centre = torso_moments["m10"] / torso_moments["m00"]
        evidence["head_offset"] = abs(torso_centre - head_centre) / head_width
    box_x, box_y, box_width, box_height = cv2.boundingRect(_u8(body))
    evidence["tall"] = box_height / box_width
    # Pieces: on the body's box, and only labels with enough pixels for one piece (the cost).
    smallest = 0.002 * counts[1:].sum()
    box = body_labels[box_y:box_y + box_height, box_x:box_x + box_width]
    pieces = 0
    for label in np.flatnonzero(counts[1:NUM_LABELS] >= smallest) + 1:
        label_x, label_y, label_width, label_height = cv2.boundingRect(_u8(box == label))
        piece = _u8(box[label_y:label_y + label_height, label_x:label_x + label_width] == label)
        # A label in one piece (the usual case) needs no labelling: counting outer borders (the
        # top level of RETR_CCOMP's hierarchy, one per 8-connected piece) is ~4x cheaper, and the
        # piece's area, counts[label], is already known to be enough.
        _, hierarchy = cv2.findContours(piece, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        if np.count_nonzero(hierarchy[0][:, 3] == -1) == 1:
            pieces += 1
        else:
            _, _, piece_stats, _ = cv2.connectedComponentsWithStats(piece, connectivity=8)
            pieces += int(np.count_nonzero(piece_stats[1:, cv2.CC_STAT_AREA] >= smallest))
    evidence["pieces"] = pieces
    return {key: int(value) if key == "pieces" else float(value) for key, value in evidence.items()}


# ----------------------------------------------------------------------------- styles

def rect_mask(labels, category, person) -> np.ndarray:
    """bool: per garment label its bounding rectangle (main person only), united; shoe pixels out.

    Rectangles may cover other protected pixels (a bag in front of the shirt): the seed tool's
    behaviour, kept so its users get the masks they know.
    """
    mask = np.zeros(labels.shape, bool)
    for label in GARMENTS[category]:
        box = mask_bbox((labels == label) & person)
        if box is not None:
            x0, y0, x1, y1 = box
            mask[y0:y1, x0:x1] = True
    mask[_isin(labels, (LEFT_SHOE, RIGHT_SHOE))] = False
    return mask


def crop_mask(labels, category, person) -> np.ndarray:
    """bool: the filled bounding box of all the category's garment pixels (main person only)."""
    mask = np.zeros(labels.shape, bool)
    box = mask_bbox(_isin(labels, GARMENTS[category]) & person)
    if box is not None:
        x0, y0, x1, y1 = box
        mask[y0:y1, x0:x1] = True
    return mask


def parse_mask(labels, category, person) -> np.ndarray:
    """bool: the garment labels dilated by PARSE_MARGIN/512 of the height, protected pixels out."""
    garments = _isin(labels, GARMENTS[category]) & person
    mask = _dilate(garments, _scaled_radius(PARSE_MARGIN, labels.shape[0]))
    return mask & ~protected_pixels(labels, category, person)


def ootd_mask(labels, keypoints, category, person, arm_width) -> np.ndarray:
    """bool: OOTDiffusion's agnostic mask (run/utils_ootd.py get_mask_location), scale-free.

    Differences from the reference, on purpose: a chain with a missing shoulder or elbow skips
    that segment instead of drawing to the image corner (arm_bands says what stands in for
    it); no neck term (ATR has no neck label); other people's pixels are protected;
    holes are filled except where protected pixels lie (a bag or hand held in front of the
    body stays visible); band points are not wrapped through uint16 (a wrist pushed past the
    left edge swept the band across the image); no 1 px border is lost to the hole fill.
    """
    height = labels.shape[0]
    garments = _isin(labels, OOTD_GARMENTS[category]) & person
    mask = _dilate(garments, _scaled_radius(GARMENT_REACH, height))
    protected = protected_pixels(labels, category, person)
    if category in ARM_CATEGORIES:
        bands, hands = arm_bands(labels, keypoints, person, arm_width * height / REFERENCE_HEIGHT)
        mask |= _dilate(bands, _scaled_radius(ARM_REACH, height))
        protected |= hands
    mask &= ~protected
    # Filling can close over protected pixels (a hand in front of the belly): they stay out.
    mask = _fill_holes(mask) & ~protected
    return _largest_component(mask)


def protected_pixels(labels, category, person) -> np.ndarray:
    """bool: pixels no mask may cover: head wear, face, shoes, bag, the clothes the category
    keeps, and every other person."""
    protected = _isin(labels, ALWAYS_PROTECTED + CATEGORY_PROTECTED[category])
    return protected | ((labels != BACKGROUND) & ~person)


def arm_bands(labels, keypoints, person, width) -> tuple[np.ndarray, np.ndarray]:
    """(bands, hands), bool: per arm a band of ``width`` px along shoulder -> elbow -> extended
    wrist, and that arm's parsed pixels outside its band (the hand, which the mask keeps).

    An arm whose wrist or elbow is missing (or all arms when keypoints is None) uses its parsed
    label as the band and has no hand: the reference's missing-wrist rule; without an elbow the
    band cannot be extended past the wrist either. A missing shoulder drops the upper segment
    and the shoulder disc; the parsed arm above the elbow joins the band instead.
    """
    bands = np.zeros(labels.shape, bool)
    hands = np.zeros(labels.shape, bool)
    for chain, arm_label in ARM_CHAINS:
        arm = (labels == arm_label) & person
        band = None if keypoints is None else _arm_band(keypoints[list(chain)], arm, width)
        if band is None:
            bands |= arm
        else:
            bands |= band
            hands |= arm & ~band
    return bands, hands


# ----------------------------------------------------------------------------- helpers

_SHIFT = 4  # OpenCV drawing with 4 fractional bits: sub-pixel keypoints stay sub-pixel
_ONE = 1 << _SHIFT


def _arm_band(chain, arm, width) -> np.ndarray | None:
    """bool band along one arm's (shoulder, elbow, wrist) rows, or None when none can be drawn.

    Like PIL's line(joint="curve") in the reference: flat ends, a round joint at the elbow,
    and a disc of the band's width at the shoulder. A segment with a missing end is skipped.
    """
    shoulder, elbow, wrist = (row[:2].astype(np.float64) if present else None
                              for row, present in zip(chain, _present(chain)))
    if wrist is None or elbow is None:
        return None
    wrist = elbow + WRIST_EXTENSION * (wrist - elbow)
    canvas = np.zeros(arm.shape, np.uint8)
    _draw_segment(canvas, elbow, wrist, width)
    band = canvas.view(bool)
    if shoulder is None:
        # With no upper-arm segment the parsed upper arm stands in for it; protecting it as a
        # "hand" would cut a notch into every sleeve.
        band |= _behind(arm, elbow, wrist)
    else:
        _draw_segment(canvas, shoulder, elbow, width)
        _draw_disc(canvas, elbow, width / 2)
        _draw_disc(canvas, shoulder, width / 2)
    return band if band.any() else None


def _behind(pixels, point, toward) -> np.ndarray:
    """bool: those pixels on the far side of ``point`` as seen from ``toward``."""
    rows, cols = np.nonzero(pixels)
    direction = toward - point
    far = (cols - point[0]) * direction[0] + (rows - point[1]) * direction[1] < 0
    out = np.zeros(pixels.shape, bool)
    out[rows[far], cols[far]] = True
    return out


def _draw_segment(canvas, start, end, width) -> None:
    direction = end - start
    length = np.hypot(*direction)
    if length == 0:
        return
    normal = np.array([-direction[1], direction[0]]) / length * (width / 2)
    corners = np.array([start + normal, end + normal, end - normal, start - normal])
    cv2.fillConvexPoly(canvas, _fixed_point(corners), 1, cv2.LINE_8, _SHIFT)


def _draw_disc(canvas, centre, radius) -> None:
    cv2.circle(canvas, tuple(_fixed_point(centre)), int(round(radius * _ONE)), 1, -1, cv2.LINE_8, _SHIFT)


def _fixed_point(points) -> np.ndarray:
    # Clipped so a wild keypoint cannot overflow OpenCV's int32 coordinates.
    return np.clip(np.round(np.asarray(points) * _ONE), -(1 << 26), 1 << 26).astype(np.int32)


def _present(keypoints) -> np.ndarray:
    """bool per row: x and y finite, and score not 0 (OpenPose's 0, 0, 0 means missing too)."""
    xy_finite = np.isfinite(keypoints[:, :2]).all(axis=1)
    return xy_finite & ~(keypoints[:, 2] <= 0)


def _isin(labels, ids) -> np.ndarray:
    table = np.zeros(256, np.uint8)
    table[list(ids)] = 1
    # cv2.LUT is ~10x faster than numpy fancy indexing on photo-sized maps.
    return cv2.LUT(np.ascontiguousarray(labels), table).view(bool)


def _components(mask) -> tuple[int, np.ndarray]:
    """8-connected labelling of a bool mask: (labels found, background included; the label map).

    16-bit labels when the mask cannot hold more pieces than they count (a checkerboard, the
    worst case, has one per 2x2 cell), which keeps _histogram on OpenCV's fast path.
    """
    height, width = mask.shape
    wide = ((height + 1) // 2) * ((width + 1) // 2) >= 2**16 - 1
    return cv2.connectedComponents(_u8(mask), connectivity=8, ltype=cv2.CV_32S if wide else cv2.CV_16U)


def _histogram(values, bins: int) -> np.ndarray:
    """Pixel count per value 0..bins-1 of a label map (cv2.calcHist, ~1.5x np.bincount's speed, where it can)."""
    if values.dtype == np.int32:
        return np.bincount(values.ravel(), minlength=bins)[:bins]
    return cv2.calcHist([values], [0], None, [bins], [0, bins]).ravel().astype(np.int64)


def _u8(mask) -> np.ndarray:
    """A bool mask as the uint8 0/1 array OpenCV wants, without a copy when possible."""
    return np.ascontiguousarray(mask).view(np.uint8)


def _scaled_radius(pixels_at_512, height) -> int:
    return int(round(pixels_at_512 * height / REFERENCE_HEIGHT))


def _square(radius) -> np.ndarray:
    return np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)


def _dilate(mask, radius) -> np.ndarray:
    if radius <= 0 or not mask.any():
        return mask.copy()
    return cv2.dilate(_u8(mask), _square(radius)).view(bool)


def _fill_holes(mask) -> np.ndarray:
    """bool: the mask plus every background area not 4-connected to the image border."""
    outside = np.pad(_u8(mask), 1)
    cv2.floodFill(outside, None, (0, 0), 1)
    return mask | (outside[1:-1, 1:-1] == 0)


def _largest_component(mask) -> np.ndarray:
    """bool: the largest 8-connected region of the mask (empty stays empty)."""
    if not mask.any():
        return np.zeros(mask.shape, bool)
    count, components, stats, _ = cv2.connectedComponentsWithStats(_u8(mask), connectivity=8)
    if count <= 2:
        return mask.copy()
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return components == largest


def _check_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2-D label map, got shape {labels.shape}")
    if labels.dtype != np.uint8:
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must hold integer label ids, got dtype {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() > 255):
            raise ValueError("labels must lie in 0..255")
        labels = labels.astype(np.uint8)
    return labels


def _check_keypoints(keypoints) -> np.ndarray | None:
    if keypoints is None:
        return None
    keypoints = np.asarray(keypoints, np.float32)
    if keypoints.shape != (18, 3):
        raise ValueError(f"keypoints must be (18, 3) x, y, score, got shape {keypoints.shape}")
    return keypoints


def _garment_category(category) -> str:
    category = normalize_category(category)
    if category == PASSTHROUGH_CATEGORY:
        raise ValueError(f"category {category!r} has no mask: the row is passed through")
    return category


STYLE_FUNCTIONS = {
    "rect": lambda labels, keypoints, category, person, **_: rect_mask(labels, category, person),
    "ootd": lambda labels, keypoints, category, person, *, ootd_variant="hd", **_: ootd_mask(
        labels, keypoints, category, person, ARM_WIDTH[ootd_variant]),
    "parse": lambda labels, keypoints, category, person, **_: parse_mask(labels, category, person),
    "crop": lambda labels, keypoints, category, person, **_: crop_mask(labels, category, person),
}
