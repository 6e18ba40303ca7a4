"""Precision of the parse stage: bf16 autocast agrees with fp32, the precision flag reaches the
network, and the opt-in torch.compile is wired through (its speed and its agreement with eager are
measured by bench/gpu_check.py on a GPU: compiling on this CPU takes minutes).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.parser import ParseStage, SegformerParser
from pipeline.resources import resolve_precision
from pipeline.testing.synthetic import make_person

TRAINED_PARSER = Path(__file__).resolve().parents[1] / "pipeline" / "assets" / "parser"
WIDTH, HEIGHT = 576, 768  # the working size the parser sees in a run
FIRST_SEED = 2_000_000  # apart from the parser's training (0..) and evaluation (1,000,000..) seeds


def photos(n: int) -> np.ndarray:
    return np.stack([make_person(FIRST_SEED + i, WIDTH, HEIGHT).image for i in range(n)])


@pytest.mark.skipif(not (TRAINED_PARSER / "config.json").exists(),
                    reason="the small trained parser is not in pipeline/assets/parser")
def test_bf16_parse_maps_agree_with_fp32_on_the_trained_parser():
    images = photos(8)
    parser = SegformerParser(str(TRAINED_PARSER), device="cpu", precision="fp32")
    reference = parser.parse(images)
    parser.precision = "bf16"
    labels = parser.parse(images)
    same = labels == reference
    per_photo = same.reshape(len(images), -1).mean(1)
    assert same.mean() >= 0.99, f"bf16 agrees with fp32 on {same.mean():.4f} of pixels (per photo {per_photo})"
    # Disagreements are label edges moved by a pixel, not regions: no photo is far off.
    assert per_photo.min() >= 0.97, per_photo


def test_the_precision_reaches_the_network(tiny_parser_dir):
    images = photos(1)[:, ::6, ::6]  # 96x128: the tiny parser's own size
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        parser = SegformerParser(str(tiny_parser_dir), device="cpu", precision=precision)
        with torch.inference_mode():
            logits = parser._forward(parser.preprocess(images))
        assert logits.dtype == dtype
        labels = parser.parse(images)
        assert labels.dtype == np.uint8 and labels.shape == images.shape[:3]


def test_auto_precision_is_fp32_on_the_cpu_and_a_flag_overrides_it():
    assert resolve_precision("cpu") == "fp32"
    assert resolve_precision("cpu", "bf16") == "bf16"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("cpu", "int8")


def test_compile_is_opt_in_and_wraps_the_network(tiny_parser_dir):
    eager = SegformerParser(str(tiny_parser_dir), device="cpu")
    assert not eager.compiled and eager._network is eager.model
    stage = ParseStage(str(tiny_parser_dir), device="cpu", compile=True, batch_size=2)
    parser = stage.parser
    assert parser.compiled and parser._network is not parser.model
    assert parser._network._orig_mod is parser.model  # torch.compile's wrapper around the same weights


def test_compile_flag_reaches_the_run_config():
    from pipeline.cli import build_parser
    from pipeline.config import RunConfig

    args = build_parser().parse_args(["run", "photos", "--output", "out", "--compile"])
    assert RunConfig.from_args(args).compile is True
    args = build_parser().parse_args(["run", "photos", "--output", "out"])
    assert RunConfig.from_args(args).compile is False
