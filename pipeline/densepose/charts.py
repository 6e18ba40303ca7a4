"""From DensePose chart outputs to per-pixel results in the photo: part labels (0..24) and U/V.

This is what DensePose's ``ToChartResultConverter`` (used by ``DensePoseResultExtractor``) does: the raw
S x S predictor maps are resampled bilinearly to the box's integer size (x, y, w, h truncated from the
float box), coarse and fine segmentation are argmaxed, a pixel's part is the fine argmax where the coarse
argmax says foreground (else 0), and U/V are read from the channel of that part. `part_index_map` pastes
one person's labels into an image-sized uint8 map, which is what the pipeline stores.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .model import ChartOutputs, DensePoseResult

# apply_net.py's --min_score default: the score at which DensePose's own tools show a person.
MAIN_PERSON_MIN_SCORE = 0.8


def int_box(box_xyxy) -> tuple[int, int, int, int]:
    """The float box as DensePose converts it: x, y, w, h each truncated toward zero."""
    b = torch.as_tensor(np.asarray(box_xyxy, dtype=np.float32)).clone()
    # Width and height are float32 differences before truncation, as detectron2's BoxMode.convert computes them.
    b[2] -= b[0]
    b[3] -= b[1]
    x, y, w, h = b.long().tolist()
    return x, y, w, h


def chart_result(charts: ChartOutputs, box_xyxy) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels (h, w) int64 and U/V (2, h, w) float32 of one instance inside its box (charts has one entry)."""
    _, _, w, h = int_box(box_xyxy)
    w, h = max(w, 1), max(h, 1)
    coarse = F.interpolate(charts.coarse_segm[:1], (h, w), mode="bilinear", align_corners=False).argmax(dim=1)
    fine = F.interpolate(charts.fine_segm[:1], (h, w), mode="bilinear", align_corners=False).argmax(dim=1)
    labels = (fine * (coarse > 0).long()).squeeze(0)
    u = F.interpolate(charts.u[:1], (h, w), mode="bilinear", align_corners=False)[0]
    v = F.interpolate(charts.v[:1], (h, w), mode="bilinear", align_corners=False)[0]
    uv = torch.zeros((2, h, w), dtype=torch.float32)
    for part in range(1, u.shape[0]):
        sel = labels == part
        uv[0][sel] = u[part][sel]
        uv[1][sel] = v[part][sel]
    return labels, uv


def main_person(result: DensePoseResult, score_threshold: float = MAIN_PERSON_MIN_SCORE) -> int | None:
    """Index (row of result.boxes) of the highest-scoring person with chart outputs and score >= threshold."""
    best = None
    for j, i in enumerate(result.chart_index.tolist()):
        if result.scores[i] >= score_threshold and (best is None or result.scores[i] > result.scores[best[1]]):
            best = (j, i)
    return None if best is None else best[1]


def _paste(labels: np.ndarray, box_xyxy, image_height: int, image_width: int, out: np.ndarray) -> None:
    x, y, _, _ = int_box(box_xyxy)
    h, w = labels.shape
    x1, y1 = min(x + w, image_width), min(y + h, image_height)
    xs, ys = max(x, 0), max(y, 0)
    if x1 > xs and y1 > ys:
        out[ys:y1, xs:x1] = labels[ys - y: y1 - y, xs - x: x1 - x]


def part_index_map(result: DensePoseResult, image_height: int, image_width: int, *, person: int | None = None,
                   score_threshold: float = MAIN_PERSON_MIN_SCORE) -> np.ndarray:
    """uint8 (H, W) map of DensePose parts (1..24, 0 = background) of one person, the main one unless given.

    All zeros when no person qualifies (no chart outputs, or every score below `score_threshold`).
    """
    out = np.zeros((image_height, image_width), dtype=np.uint8)
    if person is None:
        person = main_person(result, score_threshold)
        if person is None:
            return out
    where = np.nonzero(result.chart_index == person)[0]
    if result.charts is None or len(where) == 0:
        raise ValueError(f"person {person} has no chart outputs (run predict with densepose='all' or 'main')")
    labels, _ = chart_result(result.charts[int(where[0]):int(where[0]) + 1], result.boxes[person])
    _paste(labels.numpy().astype(np.uint8), result.boxes[person], image_height, image_width, out)
    return out
