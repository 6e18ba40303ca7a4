"""The masked photo's pixels: the mask area is exactly the fill colour, every other pixel is the photo.

Green is (0, 255, 0) like the original tool, gray (127, 127, 127) like OOTDiffusion (README, --fill).
PNG composites are lossless, so they are compared pixel for pixel. A JPEG composite cannot hold
(0, 255, 0) exactly (libjpeg gives back (0, 255, 1)), so it is compared with the expected composite
encoded with the output file's own quantization tables and chroma subsampling: the same encoder on
the same pixels gives the same decoded pixels, and a fill one level off does not (checked below).

The stage tests run first (fast); the two CLI runs at the end go through Ray.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image, JpegImagePlugin

from pipeline.compose import MaskStage
from pipeline.labels import LABEL
from pipeline.testing.synthetic import make_person

ROOT = Path(__file__).resolve().parents[1]
BUNDLED_PARSER = ROOT / "pipeline" / "assets" / "parser"
EXPECTED_FILL = {"green": (0, 255, 0), "gray": (127, 127, 127)}  # the documented colours, not compose.FILLS
PHOTO_W, PHOTO_H = 120, 160
WORK_W, WORK_H = 60, 80
SHIRT = (slice(30, 55), slice(18, 42))  # rows, columns of the shirt in the working-size label map


# ---------------------------------------------------------------------------- helpers


def encode(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def reencode_like(pixels: np.ndarray, jpeg: bytes) -> np.ndarray:
    """`pixels` through the pipeline's JPEG encoder (libjpeg-turbo, pipeline/codecs.py), decoded;
    the file `jpeg` must have its quantization tables (quality) and 4:2:0 subsampling."""
    from pipeline.codecs import JPEG_QUALITY, encode_jpeg

    model = Image.open(io.BytesIO(jpeg))
    assert model.format == "JPEG"
    data = encode_jpeg(pixels, JPEG_QUALITY)
    reference = Image.open(io.BytesIO(data))
    assert reference.quantization == model.quantization
    assert JpegImagePlugin.get_sampling(reference) == JpegImagePlugin.get_sampling(model) == 2  # 4:2:0
    return decode(data)


def assert_composite(masked: bytes, photo: np.ndarray, mask: np.ndarray, fill: tuple[int, int, int],
                     fmt: str) -> None:
    """`masked` (encoded file) is `photo` with the pixels where `mask` > 0 set to `fill`."""
    inside = mask > 0
    assert inside.any() and (~inside).any(), "the mask must cover part of the photo for this test to mean anything"
    expected = photo.copy()
    expected[inside] = fill
    got = decode(masked)
    assert got.shape == photo.shape
    if fmt == "PNG":
        assert Image.open(io.BytesIO(masked)).format == "PNG"
        wrong_fill = np.unique(got[inside].reshape(-1, 3), axis=0)
        assert wrong_fill.tolist() == [list(fill)], f"masked pixels hold {wrong_fill[:5].tolist()}, not {fill}"
        changed = np.count_nonzero((got != photo).any(-1) & ~inside)
        assert changed == 0, f"{changed} pixels outside the mask differ from the photo"
        return
    reference = reencode_like(expected, masked)
    differ = (reference != got).any(-1)
    assert not differ.any(), (f"{np.count_nonzero(differ & inside)} pixels inside and "
                              f"{np.count_nonzero(differ & ~inside)}"
                              f" outside the mask differ from the expected composite {fill}")
    # The comparison can tell a fill one level off (it would not be worth much otherwise).
    off = photo.copy()
    off[inside] = (fill[0], fill[1] - 1, fill[2])
    assert not np.array_equal(reencode_like(off, masked), got)


def stage_batch(data: bytes, source: str, labels: np.ndarray) -> dict:
    return {
        "id": np.array(["row0"], dtype=object),
        "source": np.array([source], dtype=object),
        "category": np.array(["upper_body"], dtype=object),
        "status": np.array(["pending"], dtype=object),
        "error": np.array([""], dtype=object),
        "data": np.array([data], dtype=object),
        "labels": labels[None],
    }


def working_labels() -> np.ndarray:
    """A plain figure: face, shirt with arms, trousers, on background."""
    labels = np.zeros((WORK_H, WORK_W), np.uint8)
    labels[18:30, 24:36] = LABEL["face"]
    labels[SHIRT] = LABEL["upper_clothes"]
    labels[30:52, 12:18] = LABEL["right_arm"]
    labels[30:52, 42:48] = LABEL["left_arm"]
    labels[55:75, 20:40] = LABEL["pants"]
    return labels


# ---------------------------------------------------------------------------- the mask stage


@pytest.mark.parametrize("fill", ["green", "gray"])
@pytest.mark.parametrize("suffix, fmt", [(".png", "PNG"), (".jpg", "JPEG")])
def test_mask_stage_fills_the_mask_and_keeps_the_photo(fill, suffix, fmt):
    # Noise: every photo pixel is different from its neighbours and (almost) never the fill colour.
    photo = np.random.default_rng(7).integers(0, 256, (PHOTO_H, PHOTO_W, 3), dtype=np.uint8)
    data = encode(photo, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    out = MaskStage(style="rect", fill=fill)(stage_batch(data, f"photos/person{suffix}", working_labels()))
    assert out["status"][0] == "ok", out["error"][0]
    mask = np.asarray(Image.open(io.BytesIO(out["mask_bytes"][0])))
    assert mask.shape == (PHOTO_H, PHOTO_W)
    # The rect mask of upper_body is the shirt's box, at the photo's scale (2x the working size).
    rows, cols = SHIRT
    assert (mask[rows.start * 2:rows.stop * 2, cols.start * 2:cols.stop * 2] == 255).all()
    assert np.count_nonzero(mask) == (rows.stop - rows.start) * (cols.stop - cols.start) * 4
    source_pixels = decode(data)  # what the stage composites on: the photo as decoded
    assert_composite(out["masked_bytes"][0], source_pixels, mask, EXPECTED_FILL[fill], fmt)


def test_an_unknown_fill_is_refused():
    with pytest.raises(ValueError, match="fill"):
        MaskStage(fill="magenta")


# ---------------------------------------------------------------------------- through the CLI


@pytest.fixture(scope="module")
def two_photos(tmp_path_factory) -> Path:
    """A JPEG and a PNG person photo, with their own categories in a manifest."""
    folder = tmp_path_factory.mktemp("fill_photos")
    rows = []
    for name, seed, fmt in (("jpeg_person.jpg", 900_001, "JPEG"), ("png_person.png", 900_002, "PNG")):
        sample = make_person(seed, 144, 192)
        (folder / name).write_bytes(encode(sample.image, fmt, **({"quality": 92} if fmt == "JPEG" else {})))
        rows.append((name, sample.category))
    with open(folder / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "category"])
        writer.writerows(rows)
    return folder


@pytest.mark.parametrize("fill", ["green", "gray"])
def test_cli_masked_photos_hold_the_fill_and_the_photo(two_photos, tmp_path, fill):
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    result = run_cli("run", str(two_photos / "manifest.csv"), "--output", str(out), "--parser", str(BUNDLED_PARSER),
                     "--pose", "none", "--fill", fill, "--num-cpus", "2", "--batch-size", "2",
                     "--width", "240", "--height", "320")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = {row["id"]: row for row in pq.read_table(out / "manifest").to_pylist()}
    assert sorted(manifest) == ["jpeg_person", "png_person"]
    for row_id, suffix, fmt in (("jpeg_person", ".jpg", "JPEG"), ("png_person", ".png", "PNG")):
        row = manifest[row_id]
        assert row["status"] == "ok", row["error"]
        assert row["masked_path"] == f"masked/{row_id}{suffix}"
        photo = decode((two_photos / Path(row["source"]).name).read_bytes())
        mask = np.asarray(Image.open(out / row["mask_path"]))
        assert Image.open(out / row["masked_path"]).format == fmt
        assert_composite((out / row["masked_path"]).read_bytes(), photo, mask, EXPECTED_FILL[fill], fmt)
