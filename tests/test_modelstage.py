"""The model-stage base: a row the model fails on alone becomes an error row; the others go on."""
from __future__ import annotations

import numpy as np

from pipeline.parser import ParseStage
from pipeline.schema import ERROR, PENDING


def test_a_parse_batch_with_one_poisoned_row(tiny_parser_dir):
    stage = ParseStage(str(tiny_parser_dir), batch_size=8, width=48, height=64)
    real = stage.model.parse
    images = np.random.default_rng(0).integers(0, 255, (6, 64, 48, 3), dtype=np.uint8)
    images[3] = 7  # the row the model cannot take

    def parse(chunk):
        if (chunk == 7).all(axis=(1, 2, 3)).any():
            raise RuntimeError("this image breaks the model")
        return real(chunk)

    stage.model.parse = parse
    batch = {"image": images, "status": np.array([PENDING] * 5 + [ERROR], dtype=object),
             "error": np.array([""] * 5 + ["cannot decode: x"], dtype=object)}
    out = stage(batch)
    assert list(out["status"]) == [PENDING, PENDING, PENDING, ERROR, PENDING, ERROR]
    assert out["error"][3] == "parse stage failed: RuntimeError: this image breaks the model"
    assert out["error"][5] == "cannot decode: x"
    ok = [0, 1, 2, 4]
    assert np.array_equal(out["labels"][ok], real(images[ok]))
    assert (out["ms_parse"][ok] > 0).all() and out["ms_parse"][5] == 0
