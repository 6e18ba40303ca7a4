"""The parser's own preprocessing (resize, rescale, normalize on the device) against the checkpoint's
`SegformerImageProcessor`, the reference the checkpoint was trained with.

High-frequency images (1-px checkerboard and stripes, per-pixel noise) make a resize by another
method (nearest, bilinear without antialiasing, bicubic) land far outside the tolerance; the
tests check that margin too. Two checkpoints: the bundled parser (240x320, ImageNet mean/std,
shrinking from the working size) and a tiny one with its own size and mean/std (enlarging).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import build_tiny_parser
from transformers import SegformerImageProcessor

from pipeline.parser import SegformerParser

BUNDLED_PARSER = Path(__file__).resolve().parents[1] / "pipeline" / "assets" / "parser"
TINY_SIZE = (176, 232)  # width, height
TINY_MEAN, TINY_STD = (0.3, 0.6, 0.45), (0.5, 0.18, 0.3)
LEVELS = 1.5  # tolerance in input levels (PIL rounds its resize to uint8, torch does not)


def high_frequency(width: int, height: int, seed: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(seed).integers(0, 60, (height, width))
    red = np.where((x + y) % 2 == 0, 220, 25) + noise // 4
    green = np.where(x % 2 == 0, 190, 50) + (y * 40 // height)
    blue = np.where(y % 3 == 0, 30, 170) + noise
    return np.stack([red, green, blue], -1).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_parser_own_stats(tmp_path_factory) -> Path:
    """A random tiny SegFormer whose processor has another size and mean/std than the defaults."""
    folder = build_tiny_parser(tmp_path_factory.mktemp("parsers") / "tiny-own-stats", size=TINY_SIZE)
    SegformerImageProcessor(size={"height": TINY_SIZE[1], "width": TINY_SIZE[0]}, image_mean=list(TINY_MEAN),
                            image_std=list(TINY_STD)).save_pretrained(folder)
    return folder


def reference(folder: Path, images: np.ndarray) -> np.ndarray:
    processor = SegformerImageProcessor.from_pretrained(str(folder))
    return processor(images=list(images), return_tensors="np")["pixel_values"]


def tolerance(folder: Path) -> float:
    processor = SegformerImageProcessor.from_pretrained(str(folder))
    return LEVELS * processor.rescale_factor / min(processor.image_std)


def other_resizes(parser: SegformerParser, images: np.ndarray) -> dict[str, np.ndarray]:
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    size = parser.input_size
    resized = {
        "nearest": F.interpolate(pixels, size=size, mode="nearest"),
        "bicubic": F.interpolate(pixels, size=size, mode="bicubic", align_corners=False, antialias=True),
        "bgr": F.interpolate(pixels.flip(1), size=size, mode="bilinear", align_corners=False, antialias=True),
    }
    if size[0] < images.shape[1] and size[1] < images.shape[2]:  # antialiasing only acts when shrinking
        resized["bilinear without antialias"] = F.interpolate(pixels, size=size, mode="bilinear",
                                                              align_corners=False)
    return {name: (value * parser._multiplier + parser._offset).numpy() for name, value in resized.items()}


def check(folder: Path, images: np.ndarray, model_size: tuple[int, int]) -> None:
    parser = SegformerParser(str(folder), device="cpu", precision="fp32")
    assert parser.input_size == (model_size[1], model_size[0])  # (height, width)
    with torch.inference_mode():
        ours = parser.preprocess(images)
    assert isinstance(ours, torch.Tensor) and ours.dtype == torch.float32
    ours = ours.cpu().numpy()
    expected = reference(folder, images)
    assert ours.shape == expected.shape == (len(images), 3, model_size[1], model_size[0])
    limit = tolerance(folder)
    difference = np.abs(ours - expected)
    worst = np.unravel_index(difference.argmax(), difference.shape)
    assert difference.max() <= limit, (
        f"pixel_values off the processor's by {difference.max():.4f} at {worst} (limit {limit:.4f}; "
        f"mean {difference.mean():.4f})")
    # The images tell the resize methods (and the channel order) apart: each misses the limit,
    # nearest neighbour by far.
    others = other_resizes(parser, images)
    for name, value in others.items():
        assert np.abs(value - expected).max() > 2 * limit, name
    assert np.abs(others["nearest"] - expected).max() > 20 * limit


def test_bundled_parser_matches_its_image_processor():
    if not (BUNDLED_PARSER / "config.json").exists():
        pytest.fail("the bundled parser is missing from pipeline/assets/parser")
    # 300x400 working size: the parser shrinks it to 240x320 (not an integer factor).
    images = np.stack([high_frequency(300, 400, seed) for seed in (1, 2)])
    check(BUNDLED_PARSER, images, (240, 320))


def test_tiny_parser_with_its_own_size_and_statistics(tiny_parser_own_stats):
    processor = SegformerImageProcessor.from_pretrained(str(tiny_parser_own_stats))
    assert tuple(processor.image_mean) == TINY_MEAN and tuple(processor.image_std) == TINY_STD
    # 150x200 working size: the parser enlarges it to 176x232.
    images = np.stack([high_frequency(150, 200, seed) for seed in (3, 4, 5)])
    check(tiny_parser_own_stats, images, TINY_SIZE)


def test_tiny_parser_shrinking_a_full_working_size(tiny_parser_own_stats):
    images = high_frequency(576, 768, 6)[None]  # the default working size, shrunk 3.3x
    check(tiny_parser_own_stats, images, TINY_SIZE)
