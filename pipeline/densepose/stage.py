"""The DensePose model stage: the main person's part-index map (and, for DressCode, U/V) per photo.

Unlike the parser and the pose network, DensePose reads the photo as detectron2's predictor does
(the photo itself, short side resized to 800), not the stretched working image: the stage decodes
each row's bytes (the `data` column every stage carries) in the actor. What leaves the actor is
small: the main person's box, score, the number of persons, and the part map (uint8) cropped to
where the person's box lies in the photo, with its origin; U/V (float16, same crop) only when the
layout needs them. The mask stage pastes the crop into a photo-sized map (pipeline/densepose_maps.py).

The main person: the highest-scoring detection with a score of at least MAIN_PERSON_MIN_SCORE
(0.8, the score IDM-VTON's apply_net shows persons at); `densepose_persons` counts the detections
at or above it. A photo with none gets an all-zero map and the flag `no_densepose_person`.

Runs in fp32 whatever --precision says: the box regression and U/V are what the trainers read,
and parity with detectron2 is measured in fp32 (bench/RESULTS.md, DensePose).
"""
from __future__ import annotations

import numpy as np

from ..modelstage import ModelStage

TYPICAL_PHOTO = (1024, 768)  # (height, width) of the probe's photos: what the trainers' datasets hold
EMPTY_PARTS = np.zeros((0, 0), np.uint8)
EMPTY_UV = np.zeros((0, 0, 0), np.float16)


class DensePoseStage(ModelStage):
    name = "densepose"

    @property
    def memory_seed(self) -> tuple[int, int]:
        """--no-probe: fixed and per-photo bytes, measured for the full-size model on photos of the
        typical size (model.memory_seed; every photo is resized to about the same input)."""
        from .model import memory_seed

        return memory_seed(*TYPICAL_PHOTO)

    def load(self, source: str, *, device: str, precision: str, max_batch_size: int, uv: bool = False, **_):
        from .checkpoint import load_checkpoint
        from .zoo import resolve

        self.uv = bool(uv)
        return load_checkpoint(resolve(source)).to(device).eval()

    def inputs(self, batch: dict, rows: np.ndarray) -> list:
        from ..codecs import decode_full

        return [decode_full(batch["data"][row])[0] for row in rows]

    def probe_inputs(self, count: int) -> list:
        return [np.zeros((*TYPICAL_PHOTO, 3), np.uint8)] * count

    def infer(self, photos) -> list:
        import torch

        from .charts import MAIN_PERSON_MIN_SCORE

        photos = list(photos)
        # On a CPU one photo per forward pass: the convolutions already fill the cores and a padded
        # batch only adds work (batch 1 measured faster than 2 and 4; bench/RESULTS.md, DensePose).
        groups = [photos] if str(self.device) != "cpu" else [[photo] for photo in photos]
        results = []
        with torch.inference_mode():
            for group in groups:
                results += self.model.predict(group, densepose="main", score_threshold=MAIN_PERSON_MIN_SCORE)
        return [main_person_crop(result, self.uv) for result in results]

    def concat(self, results: list) -> list:
        return [item for chunk in results for item in chunk]

    def empty_columns(self, images) -> dict:
        count = len(images)
        parts, uv = np.empty(count, dtype=object), np.empty(count, dtype=object)
        for row in range(count):
            parts[row], uv[row] = EMPTY_PARTS, EMPTY_UV
        return {
            "densepose_persons": np.zeros(count, np.int16),
            "densepose_box": np.full((count, 4), -1.0, np.float32),
            "densepose_score": np.full(count, np.nan, np.float32),
            "densepose_origin": np.zeros((count, 2), np.int32),
            "densepose_parts": parts,
            "densepose_uv": uv,
        }

    def store(self, columns: dict, rows: np.ndarray, result) -> None:
        for row, found in zip(rows, result):
            for name, value in found.items():
                columns[name][row] = value


def main_person_crop(result, with_uv: bool) -> dict:
    """One photo's stage columns from the model's result (see the module docstring)."""
    from .charts import MAIN_PERSON_MIN_SCORE, chart_result, int_box, main_person

    persons = int(np.count_nonzero(result.scores >= MAIN_PERSON_MIN_SCORE))
    found = {"densepose_persons": persons}
    person = main_person(result, MAIN_PERSON_MIN_SCORE)
    if person is None:
        return found
    where = int(np.nonzero(result.chart_index == person)[0][0])
    labels, uv = chart_result(result.charts[where:where + 1], result.boxes[person])
    # The box's integer frame (DensePose truncates it) clipped to the photo, as part_index_map pastes it.
    height, width = result.image_size
    x, y, _, _ = int_box(result.boxes[person])
    box_height, box_width = labels.shape
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + box_width, width), min(y + box_height, height)
    if x1 <= x0 or y1 <= y0:
        return found
    found.update({
        "densepose_box": np.asarray(result.boxes[person], np.float32),
        "densepose_score": np.float32(result.scores[person]),
        "densepose_origin": np.array([x0, y0], np.int32),
        "densepose_parts": labels.numpy()[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.uint8),
    })
    if with_uv:
        found["densepose_uv"] = uv.numpy()[:, y0 - y:y1 - y, x0 - x:x1 - x].astype(np.float16)
    return found
