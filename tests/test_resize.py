"""The decode stage's stretch to the working size uses the documented method: Pillow's bilinear
(antialiased when shrinking, reducing_gap=None), applied after the JPEG draft.

The photos are high-frequency patterns (1-px stripes, checkerboards) and the working sizes are not
an exact eighth of the photo, so the resize really runs and another method (nearest, box, bicubic,
a two-step reduce) misses the 1-level tolerance; each test checks that too, so a pattern that
stopped telling the methods apart would fail instead of passing quietly.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import spy_on_jpeg_draft
from PIL import Image, ImageOps

from pipeline.decode import decode_batch, decode_photo

BILINEAR = Image.Resampling.BILINEAR
OTHER_METHODS = (Image.Resampling.NEAREST, Image.Resampling.BOX, Image.Resampling.BICUBIC)


def stripes(width: int, height: int) -> np.ndarray:
    """R: a 1-px checkerboard, G: 1-px vertical stripes, B: 1-px horizontal stripes plus a ramp."""
    y, x = np.mgrid[0:height, 0:width]
    red = np.where((x + y) % 2 == 0, 230, 20)
    green = np.where(x % 2 == 0, 200, 40)
    blue = np.where(y % 2 == 0, 60, 0) + x * 190 // max(1, width - 1)
    return np.stack([red, green, blue], -1).astype(np.uint8)


def blocks(width: int, height: int, side: int = 4) -> np.ndarray:
    """Checkerboards of `side`-px squares: a quarter-scale JPEG draft turns them into 1-px ones."""
    y, x = np.mgrid[0:height, 0:width]
    red = np.where((y // side + x // side) % 2 == 0, 230, 30)
    green = np.where((x // side) % 2 == 0, 220, 40)
    blue = np.where((y // side) % 2 == 0, 210, 60)
    return np.stack([red, green, blue], -1).astype(np.uint8)


def encoded(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def resized(image: Image.Image, size: tuple[int, int], method=BILINEAR) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize(size, method, reducing_gap=None), dtype=int)


def assert_close_to_reference(got: np.ndarray, image: Image.Image, size: tuple[int, int]) -> None:
    reference = resized(image, size)
    assert got.shape == reference.shape == (size[1], size[0], 3)
    difference = np.abs(got.astype(int) - reference)
    assert difference.max() <= 1, (f"off Pillow's bilinear by up to {difference.max()} levels "
                                   f"(mean {difference.mean():.2f})")
    # The photo tells the methods apart: each other one misses the tolerance above by far, and
    # nearest neighbour (the bug this guards against) is off on average, not only at a few pixels.
    for method in OTHER_METHODS:
        assert np.abs(resized(image, size, method) - reference).max() > 2, method
    assert np.abs(resized(image, size, Image.Resampling.NEAREST) - reference).mean() > 20
    if max(image.size[0] / size[0], image.size[1] / size[1]) >= 2:  # Pillow's two-step reduce is seen too
        two_step = np.asarray(image.convert("RGB").resize(size, BILINEAR, reducing_gap=1.0), dtype=int)
        assert np.abs(two_step - reference).max() > 2


@pytest.mark.parametrize("photo_size, working", [
    ((640, 800), (128, 160)),   # shrink 5x: one step, no reduce() first (reducing_gap=None)
    ((301, 397), (128, 160)),   # shrink 2.35x / 2.48x: antialiased bilinear
    ((97, 131), (72, 96)),      # shrink 1.35x
    ((37, 53), (96, 128)),      # enlarge 2.6x / 2.4x
], ids=["shrink-5x", "shrink", "shrink-slightly", "enlarge"])
def test_png_is_stretched_with_pillow_bilinear(photo_size, working):
    pixels = stripes(*photo_size)
    data = encoded(pixels, "PNG")
    image = Image.fromarray(pixels)
    assert_close_to_reference(np.asarray(decode_photo(data, working)), image, working)


def test_decode_batch_uses_the_same_resize(tmp_path):
    pixels = stripes(250, 330)
    path = tmp_path / "stripes.png"
    path.write_bytes(encoded(pixels, "PNG"))
    batch = {"id": np.array(["a"], dtype=object), "source": np.array([str(path)], dtype=object),
             "status": np.array(["pending"], dtype=object), "error": np.array([""], dtype=object)}
    out = decode_batch(batch, 112, 144)
    assert out["status"][0] == "pending", out["error"][0]
    assert (out["width"][0], out["height"][0]) == (250, 330)
    assert_close_to_reference(out["image"][0], Image.fromarray(pixels), (112, 144))


def exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


@pytest.mark.parametrize("orientation", [1, 6])
def test_jpeg_draft_then_bilinear_resize(monkeypatch, orientation):
    """A JPEG four times the working size and a bit: DCT scaling to a quarter, then the resize."""
    shown = (1000, 1400)  # width, height as displayed
    working = (220, 300)  # not an eighth, a quarter or a half of the photo
    stored = blocks(*shown)
    if orientation == 6:  # stored turned a quarter counter-clockwise; EXIF 6 turns it back
        stored = np.ascontiguousarray(np.rot90(stored, k=1))
    data = encoded(stored, "JPEG", quality=95, subsampling=0, exif=exif_orientation(orientation))

    drafted = spy_on_jpeg_draft(monkeypatch)
    got = np.asarray(decode_photo(data, working))
    monkeypatch.undo()
    # The draft decoded a quarter of the stored size (an eighth would be smaller than the working
    # size), so the stretch from 250x350 to 220x300 is left to the resize.
    assert drafted == [(250, 350) if orientation == 1 else (350, 250)]

    reference_input = Image.open(io.BytesIO(data))
    reference_input.draft("RGB", working if orientation == 1 else working[::-1])
    reference_input = ImageOps.exif_transpose(reference_input)
    assert reference_input.size == (250, 350)
    assert_close_to_reference(got, reference_input, working)
