"""Test-only plug-ins, one per CONTRIBUTING.md recipe, referenced from the CLI as `tests.toy_plugins:NAME`.

Not models or styles anyone should use: they make known outputs, so a test can tell that the
pipeline ran each of them in its Ray workers.
"""
from __future__ import annotations

import numpy as np

from pipeline.layouts import Layout
from pipeline.modelstage import ModelStage
from pipeline.registry import ModelFamily
from pipeline.schema import NUM_KEYPOINTS

# A standing person in fractions of the image (x, y), COCO-18 order.
SKELETON = np.array([
    (0.50, 0.10), (0.50, 0.20), (0.40, 0.21), (0.36, 0.36), (0.34, 0.50), (0.60, 0.21), (0.64, 0.36),
    (0.66, 0.50), (0.44, 0.52), (0.44, 0.72), (0.44, 0.92), (0.56, 0.52), (0.56, 0.72), (0.56, 0.92),
    (0.48, 0.08), (0.52, 0.08), (0.46, 0.09), (0.54, 0.09),
], dtype=np.float32)


# -- recipe "add a mask style" ------------------------------------------------------------------

def left_half(labels, keypoints, category, person, **_):
    """Repaint the left half of the image, whatever the parse says."""
    mask = np.zeros(labels.shape, bool)
    mask[:, : labels.shape[1] // 2] = True
    return mask


# -- recipe "add a pose model" ------------------------------------------------------------------

class ToyPoseStage(ModelStage):
    """Finds one person standing in the middle of every image, with score 0.5."""

    name = "pose"

    def load(self, source, *, device, precision, max_batch_size):
        return source  # a real stage builds its network here

    def infer(self, images):
        n, height, width = images.shape[:3]
        person = np.concatenate([SKELETON * [width, height], np.full((NUM_KEYPOINTS, 1), 0.5, np.float32)], 1)
        return np.repeat(person[None], n, axis=0)

    def empty_columns(self, images):
        return {"people": np.full((len(images), 8, NUM_KEYPOINTS, 3), np.nan, np.float32),
                "persons": np.zeros(len(images), np.int16)}

    def store(self, columns, rows, result):
        columns["people"][rows, 0] = result
        columns["persons"][rows] = 1


def check_toy(source: str) -> None:
    if source != "toy":
        from pipeline.schema import ModelLoadError

        raise ModelLoadError(f"the toy pose model only knows the source 'toy', got {source!r}")


def fetch_toy(source: str) -> str:
    return source


TOY_POSE = ModelFamily(role="pose", name="toy", stage="tests.toy_plugins:ToyPoseStage",
                       check="tests.toy_plugins:check_toy", fetch="tests.toy_plugins:fetch_toy", default_source="toy")


# -- recipe "add an output layout" --------------------------------------------------------------

class FlatLayout(Layout):
    """Every file of every row in one folder: flat/<id>.<kind><ext>."""

    name = "flat"
    folders = ("flat",)

    def path(self, row, kind, extension):
        if kind == "parse":
            return None  # a layout may leave a kind out
        return f"flat/{row['id']}.{kind}{extension}"
