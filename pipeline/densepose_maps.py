"""DensePose maps in the mask stage: the crop pasted into the photo's frame, the palette PNG of our
own layout and the image the trainers read. Kept out of pipeline/densepose/ (whose package needs
torch) so that the mask tasks import no model code.

IDM-VTON (gradio_demo/apply_net.py `show ... dp_segm`, and its densepose/vis code) renders each
person's part index I (0..24) as `I * 255/24` in float32, truncated to uint8, through OpenCV's
PARULA colormap, opaque (alpha 1, not in place: the canvas starts black), and leaves I = 0 black;
its app then flips BGR to RGB. `render_parts` does the same for the main person's map. The
palette of `densepose/<id>.png` uses the same colours, so that file looks like the trainers'
image while its pixel values stay the part index.
"""
from __future__ import annotations

import io

import cv2
import numpy as np

NUM_PARTS = 24  # DensePoseDataRelative.N_PART_LABELS: the body's 24 chart parts; 0 is background
# The quality flag of a row whose photo has no person scoring at least the stage's threshold (its
# part map is all zero); like no_pose_person, left out when the parse says no_person already.
NO_DENSEPOSE_PERSON = "no_densepose_person"
# The flag of a row whose DensePose main person (highest score) is not the pose's main person
# (largest skeleton): in a photo of several people the trainers' DensePose image would show
# somebody else than the parse, the keypoints and the mask are about.
DENSEPOSE_OTHER_PERSON = "densepose_other_person"
# same_person: the box is widened by this share of its size on each side (DensePose boxes hug the
# body, keypoints such as wrists and ankles sit on its edge), and at least MIN_INSIDE of the pose
# person's found keypoints, and at least MIN_FOUND of them, must lie in it.
BOX_MARGIN = 0.1
MIN_INSIDE = 0.5
MIN_FOUND = 4


def _part_colours() -> np.ndarray:
    """uint8 (25, 3) RGB: the colour IDM-VTON draws each part index in (index 0: black)."""
    index = np.arange(NUM_PARTS + 1, dtype=np.float32)
    scaled = (index * (255.0 / NUM_PARTS)).clip(0, 255).astype(np.uint8)
    colours = cv2.applyColorMap(scaled.reshape(-1, 1), cv2.COLORMAP_PARULA).reshape(-1, 3)[:, ::-1].copy()
    colours[0] = 0
    return colours


PART_COLOURS = _part_colours()
PALETTE = np.zeros((256, 3), np.uint8)
PALETTE[:NUM_PARTS + 1] = PART_COLOURS


def render_parts(parts: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB of a part map as IDM-VTON's image-densepose draws it."""
    parts = np.asarray(parts, np.uint8)
    if parts.size and int(parts.max()) > NUM_PARTS:
        raise ValueError(f"part indices lie in 0..{NUM_PARTS}, got {int(parts.max())}")
    return PART_COLOURS[parts]


def same_person(box, keypoints) -> bool | None:
    """Whether DensePose's main-person box (x0, y0, x1, y1) holds the pose's main person (keypoints
    (18, 3) in the same pixels, NaN missing); None when there is nothing to compare (no box, or
    fewer than MIN_FOUND keypoints)."""
    box = np.asarray(box, np.float64)
    points = np.asarray(keypoints, np.float64).reshape(-1, 3)[:, :2]
    points = points[np.isfinite(points).all(axis=1)]
    if box.shape != (4,) or box[2] <= box[0] or box[3] <= box[1] or len(points) < MIN_FOUND:
        return None
    margin_x, margin_y = (box[2] - box[0]) * BOX_MARGIN, (box[3] - box[1]) * BOX_MARGIN
    inside = ((points[:, 0] >= box[0] - margin_x) & (points[:, 0] <= box[2] + margin_x)
              & (points[:, 1] >= box[1] - margin_y) & (points[:, 1] <= box[3] + margin_y))
    return bool(inside.mean() >= MIN_INSIDE)


def paste(parts: np.ndarray, origin, size: tuple[int, int], uv: np.ndarray | None = None):
    """The photo-sized part map (uint8 (H, W)) and, when given, U/V (float32 (2, H, W)) from a crop."""
    height, width = size
    full = np.zeros((height, width), np.uint8)
    full_uv = None if uv is None else np.zeros((2, height, width), np.float32)
    if parts.size:
        x0, y0 = int(origin[0]), int(origin[1])
        crop_height, crop_width = parts.shape
        full[y0:y0 + crop_height, x0:x0 + crop_width] = parts
        if full_uv is not None and uv.size:
            full_uv[:, y0:y0 + crop_height, x0:x0 + crop_width] = uv
    return full, full_uv


def fit_uv(uv: np.ndarray, fit) -> np.ndarray:
    """float32 (2, H, W) U/V in a trainer layout's export frame (tryon_formats.Fit): nearest
    neighbour, the geometry of the part map's apply_labels, so that U/V stay on their part's
    pixels; padded with 0 like the background."""
    from .tryon_formats import apply_labels

    channels_last = np.ascontiguousarray(np.asarray(uv, np.float32).transpose(1, 2, 0))
    return np.ascontiguousarray(apply_labels(channels_last, fit).transpose(2, 0, 1))


def uv_npz(uv: np.ndarray, parts: np.ndarray) -> bytes:
    """DressCode's `dense/<id>_5_uv.npz`: one array `uv`, float32 (2, H, W) (U, then V), which its
    loader passes to torchvision's resize as it is. U/V are kept only on the part map's pixels (0
    elsewhere) and clipped to [0, 1], the charts' coordinate range: the head regresses them without a
    squashing function, so a weak or untrained model strays outside it (detectron2's own IUV image
    clamps them the same way)."""
    kept = np.where(np.asarray(parts)[None] > 0, np.clip(np.asarray(uv, np.float32), 0.0, 1.0), np.float32(0))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, uv=kept.astype(np.float32, copy=False))
    return buffer.getvalue()
