"""Decode stage: bytes -> RGB at the working size, with one row's failure being that row's error."""
from __future__ import annotations

import io
import resource
import struct
import time
import zlib

import numpy as np
import pytest
from conftest import spy_on_jpeg_draft
from PIL import Image, ImageDraw, ImageOps

from pipeline.decode import DecodeError, decode_batch, decode_photo, open_photo

WIDTH, HEIGHT = 24, 32  # a small working size (width x height)
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def save(path, image, fmt=None, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt or path.suffix.lstrip(".").upper().replace("JPG", "JPEG"), **options)
    path.write_bytes(buffer.getvalue())
    return str(path)


def batch_of(sources, statuses=None, errors=None):
    count = len(sources)
    return {
        "id": np.array([f"row{i}" for i in range(count)], dtype=object),
        "source": np.array(list(sources), dtype=object),
        "status": np.array(statuses or ["pending"] * count, dtype=object),
        "error": np.array(errors or [""] * count, dtype=object),
    }


def decode_one(source, width=WIDTH, height=HEIGHT, **kwargs):
    out = decode_batch(batch_of([source]), width, height, **kwargs)
    return {name: value[0] for name, value in out.items()}


def ok(row):
    assert row["status"] == "pending" and row["error"] == "", row["error"]
    return row


def scene(width, height):
    """A smooth picture with a few shapes (what photos look like to a DCT)."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], -1)
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.rectangle([width // 4, height // 4, width // 2, height // 2], fill=(200, 30, 30))
    draw.ellipse([width // 2, height // 2, width * 7 // 8, height * 7 // 8], fill=(20, 200, 60))
    return image


def exif_with_orientation(value):
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def bomb_png(width, height, rows=64):
    """A 1-bit PNG whose header claims width x height; IDAT holds only the first rows."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    pixels = zlib.compress((b"\x00" * (1 + (width + 7) // 8)) * rows, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


# ---- good photos -----------------------------------------------------------------------------

def test_good_jpeg_is_decoded_to_the_working_size(tmp_path):
    source = save(tmp_path / "a.jpg", scene(60, 80), quality=95)
    batch = batch_of([source, source])
    out = decode_batch(batch, WIDTH, HEIGHT)
    assert out["image"].shape == (2, HEIGHT, WIDTH, 3) and out["image"].dtype == np.uint8
    assert out["width"].tolist() == [60, 60] and out["height"].tolist() == [80, 80]
    assert out["width"].dtype == np.int32 and out["ms_decode"].dtype == np.float32
    assert out["status"].tolist() == ["pending", "pending"] and out["error"].tolist() == ["", ""]
    assert out["data"][0] == open(source, "rb").read()  # compressed bytes travel, not pixels
    assert out["id"].tolist() == ["row0", "row1"]
    expected = np.asarray(scene(60, 80).resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR), dtype=int)
    assert np.abs(out["image"][0].astype(int) - expected).mean() < 6
    assert (out["ms_decode"] > 0).all()


def test_working_size_stretches_without_keeping_aspect(tmp_path):
    image = Image.new("RGB", (100, 10), BLUE)
    ImageDraw.Draw(image).rectangle([50, 0, 99, 9], fill=RED)  # right half red
    row = ok(decode_one(save(tmp_path / "wide.png", image), 20, 40))
    assert row["image"].shape == (40, 20, 3)
    assert (row["width"], row["height"]) == (100, 10)
    assert tuple(row["image"][20, 2]) == BLUE and tuple(row["image"][20, 17]) == RED


@pytest.mark.parametrize("suffix, options", [
    (".webp", {"lossless": True}), (".bmp", {}), (".tif", {}), (".tiff", {"compression": "tiff_lzw"}), (".png", {}),
])
def test_other_formats(tmp_path, suffix, options):
    image = Image.new("RGB", (WIDTH, HEIGHT), (10, 120, 230))
    fmt = {".tif": "TIFF", ".tiff": "TIFF"}.get(suffix)
    row = ok(decode_one(save(tmp_path / f"x{suffix}", image, fmt, **options)))
    assert (row["image"] == (10, 120, 230)).all()


def test_lossy_webp(tmp_path):
    row = ok(decode_one(save(tmp_path / "x.webp", scene(48, 64), quality=90)))
    assert (row["width"], row["height"]) == (48, 64) and row["image"].shape == (HEIGHT, WIDTH, 3)


def test_png_alpha_is_composited_on_white(tmp_path):
    image = Image.new("RGBA", (2, 2))
    image.putdata([(255, 0, 0, 0), (0, 0, 0, 128), (0, 0, 255, 255), (0, 255, 0, 255)])
    row = ok(decode_one(save(tmp_path / "alpha.png", image), 2, 2))
    pixels = row["image"]
    assert tuple(pixels[0, 0]) == (255, 255, 255)  # fully transparent red: white, not red or black
    assert all(126 <= v <= 128 for v in pixels[0, 1])  # half transparent black: mid gray
    assert tuple(pixels[1, 0]) == BLUE and tuple(pixels[1, 1]) == GREEN


def test_gray_with_alpha_is_composited_on_white(tmp_path):
    image = Image.new("LA", (1, 1), (0, 0))
    row = ok(decode_one(save(tmp_path / "la.png", image), 1, 1))
    assert tuple(row["image"][0, 0]) == (255, 255, 255)


@pytest.mark.parametrize("mode, transparent, kept", [("RGB", (0, 0, 0), (10, 20, 30)), ("L", 0, 77)])
def test_png_transparency_colour_is_composited_on_white(tmp_path, mode, transparent, kept):
    # A tRNS chunk on an RGB or gray PNG: pixels of that colour are transparent.
    image = Image.new(mode, (2, 1), transparent)
    image.putpixel((1, 0), kept)
    row = ok(decode_one(save(tmp_path / "trns.png", image, transparency=transparent), 2, 1))
    assert tuple(row["image"][0, 0]) == (255, 255, 255)
    assert tuple(row["image"][0, 1]) == (kept if mode == "RGB" else (kept,) * 3)


def test_palette_png_with_and_without_transparency(tmp_path):
    image = Image.new("P", (3, 1))
    image.putpalette(list(RED + GREEN + BLUE) + [0] * (256 * 3 - 9))
    image.putdata([0, 1, 2])
    plain = ok(decode_one(save(tmp_path / "p.png", image), 3, 1))
    assert [tuple(p) for p in plain["image"][0]] == [RED, GREEN, BLUE]
    transparent = ok(decode_one(save(tmp_path / "pt.png", image, transparency=1), 3, 1))
    assert [tuple(p) for p in transparent["image"][0]] == [RED, (255, 255, 255), BLUE]


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 1000], [32768, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")  # really a 16-bit file
    row = ok(decode_one(str(path), 2, 2))
    gray = row["image"][..., 0].astype(int)
    assert (row["image"][..., 0] == row["image"][..., 1]).all() and (row["image"][..., 1] == row["image"][..., 2]).all()
    assert gray[0, 0] == 0 and gray[1, 1] == 255
    assert abs(gray[1, 0] - 128) <= 1
    assert gray[0, 1] <= 5  # 1000/65535 is dark; clipping would make it white


def test_grayscale_becomes_three_equal_channels(tmp_path):
    row = ok(decode_one(save(tmp_path / "g.png", Image.new("L", (WIDTH, HEIGHT), 77))))
    assert (row["image"] == 77).all()
    row = ok(decode_one(save(tmp_path / "g.jpg", Image.new("L", (WIDTH, HEIGHT), 77), quality=95)))
    assert np.abs(row["image"].astype(int) - 77).max() <= 2


def test_one_bit_image(tmp_path):
    image = Image.new("1", (2, 1), 0)
    image.putpixel((1, 0), 1)
    row = ok(decode_one(save(tmp_path / "bw.png", image), 2, 1))
    assert tuple(row["image"][0, 0]) == (0, 0, 0) and tuple(row["image"][0, 1]) == (255, 255, 255)


def test_cmyk_jpeg(tmp_path):
    source = save(tmp_path / "cmyk.jpg", Image.new("CMYK", (WIDTH, HEIGHT), (0, 255, 255, 0)), quality=95)
    assert Image.open(source).mode == "CMYK"
    row = ok(decode_one(source))
    red, green, blue = row["image"].reshape(-1, 3).mean(0)
    assert red > 230 and green < 25 and blue < 25


def _rotated_jpeg(tmp_path, orientation=6):
    # Stored 64 wide x 32 high, blue with a red top-left block; orientation 6 shows it turned a
    # quarter clockwise: 32 wide x 64 high with the red block at the top right.
    stored = Image.new("RGB", (64, 32), BLUE)
    ImageDraw.Draw(stored).rectangle([0, 0, 15, 15], fill=RED)
    return save(tmp_path / "rotated.jpg", stored, quality=95, exif=exif_with_orientation(orientation))


def _is(pixels, colour):
    return np.abs(pixels.reshape(-1, 3).mean(0) - colour).max() < 40


def test_exif_orientation_6_swaps_size_and_rotates_pixels(tmp_path):
    row = ok(decode_one(_rotated_jpeg(tmp_path), 32, 64))
    assert (row["width"], row["height"]) == (32, 64)
    pixels = row["image"]
    assert pixels.shape == (64, 32, 3)
    assert _is(pixels[2:14, 18:30], RED)      # top right
    assert _is(pixels[2:14, 2:14], BLUE)      # top left
    assert _is(pixels[50:62, 18:30], BLUE)    # bottom right (where orientation 8 would put it)
    assert _is(pixels[50:62, 2:14], BLUE)


def test_exif_orientation_applies_before_stretching_to_the_working_size(tmp_path):
    row = ok(decode_one(_rotated_jpeg(tmp_path), 16, 16))  # JPEG draft reduces the stored image first
    assert (row["width"], row["height"]) == (32, 64)
    pixels = row["image"]
    assert _is(pixels[0:3, 10:15], RED) and _is(pixels[0:3, 1:6], BLUE) and _is(pixels[10:16, 10:15], BLUE)


def test_one_pixel_image(tmp_path):
    row = ok(decode_one(save(tmp_path / "dot.png", Image.new("RGB", (1, 1), (10, 200, 30)))))
    assert (row["width"], row["height"]) == (1, 1)
    assert (row["image"] == (10, 200, 30)).all()


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (WIDTH, HEIGHT), colour) for colour in (RED, GREEN, BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(path).n_frames == 3
    row = ok(decode_one(str(path)))
    assert (row["image"] == RED).all()


# ---- bad photos ------------------------------------------------------------------------------

def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    row = decode_one(str(tmp_path / "empty.jpg"))
    assert row["status"] == "error" and row["error"] == "cannot decode: empty file (0 bytes)"
    assert row["data"] == b"" and (row["image"] == 0).all() and row["width"] == 0


def test_truncated_jpeg_is_that_rows_error_only(tmp_path):
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    good = save(tmp_path / "good.jpg", noise, quality=95)
    data = open(good, "rb").read()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 6 // 10])
    (tmp_path / "header.jpg").write_bytes(data[:120])  # cut inside the header
    out = decode_batch(batch_of([good, str(tmp_path / "cut.jpg"), str(tmp_path / "header.jpg"), good]), WIDTH, HEIGHT)
    assert out["status"].tolist() == ["pending", "error", "error", "pending"]
    assert "truncated" in out["error"][1] and out["error"][1].startswith("cannot decode")
    assert out["error"][2].startswith("cannot decode")
    assert (out["image"][1] == 0).all() and out["data"][1] == b""
    assert out["image"][0].any() and out["image"][3].any() and out["width"][3] == 64


def test_truncated_png_is_that_rows_error(tmp_path):
    # A PNG's EXIF may follow the pixels, so reading its orientation reads the pixels too.
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = open(save(tmp_path / "good.png", noise), "rb").read()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    row = decode_one(str(tmp_path / "cut.png"))
    assert row["status"] == "error" and "truncated" in row["error"]


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("these are not the pixels you are looking for\n")
    row = decode_one(str(tmp_path / "notes.jpg"))
    assert row["status"] == "error"
    assert "not an image" in row["error"] and "looks like text" in row["error"]


def test_binary_junk_named_png(tmp_path):
    (tmp_path / "junk.png").write_bytes(bytes(range(256)) * 4)
    row = decode_one(str(tmp_path / "junk.png"))
    assert row["status"] == "error" and "not an image" in row["error"] and "00010203" in row["error"]


def test_missing_file(tmp_path):
    missing = str(tmp_path / "gone.jpg")
    row = decode_one(missing)
    assert row["status"] == "error" and row["error"] == f"file not found: {missing}"


def test_folder_instead_of_a_file(tmp_path):
    (tmp_path / "dir.jpg").mkdir()
    row = decode_one(str(tmp_path / "dir.jpg"))
    assert row["status"] == "error" and str(tmp_path / "dir.jpg") in row["error"]


def test_decompression_bomb_is_refused_from_the_header(tmp_path):
    data = bomb_png(30000, 30000)
    assert len(data) < 8000
    (tmp_path / "bomb.png").write_bytes(data)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.perf_counter()
    row = decode_one(str(tmp_path / "bomb.png"))
    elapsed = time.perf_counter() - started
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert row["status"] == "error" and row["error"].startswith("image too large")
    assert elapsed < 2.0 and grown_mib < 100  # decoding it would need ~900 MB


def test_pixel_limit_is_max_pixels(tmp_path):
    data = bomb_png(10000, 10000)  # 100 Mpx: above Pillow's warning size, below the default limit
    assert open_photo(data).size == (10000, 10000)
    with pytest.raises(DecodeError, match=r"image too large: 10000x10000 = 100 Mpx \(limit 50 Mpx\)"):
        open_photo(data, max_pixels=50_000_000)
    (tmp_path / "big.png").write_bytes(data)
    row = decode_one(str(tmp_path / "big.png"), max_pixels=50_000_000)
    assert row["status"] == "error" and "limit 50 Mpx" in row["error"]


# ---- rows that are not decoded ---------------------------------------------------------------

def test_error_and_skipped_rows_are_left_alone(tmp_path):
    good = save(tmp_path / "good.png", Image.new("RGB", (30, 40), GREEN))
    batch = batch_of([good, good, "", good],
                     statuses=["error", "skipped", "error", "pending"],
                     errors=["unknown category 'shoes'", "", "empty path in manifest row 3", ""])
    out = decode_batch(batch, WIDTH, HEIGHT)
    assert out["status"].tolist() == ["error", "skipped", "error", "pending"]
    assert out["error"].tolist() == ["unknown category 'shoes'", "", "empty path in manifest row 3", ""]
    # Error rows: not read at all.
    assert out["data"][0] == b"" and out["width"][0] == 0 and not out["image"][0].any()
    assert out["data"][2] == b"" and out["width"][2] == 0
    # Skipped rows: their size and bytes (masked/ holds the photo unchanged), but no pixels.
    assert (out["width"][1], out["height"][1]) == (30, 40)
    assert out["data"][1] == open(good, "rb").read()
    assert not out["image"][1].any()
    assert (out["image"][3] == GREEN).all()


def test_input_batch_is_not_modified(tmp_path):
    batch = batch_of([str(tmp_path / "missing.jpg")])
    decode_batch(batch, WIDTH, HEIGHT)
    assert batch["status"].tolist() == ["pending"] and batch["error"].tolist() == [""]
    assert set(batch) == {"id", "source", "status", "error"}


# ---- JPEG draft (DCT scaling) ----------------------------------------------------------------

@pytest.mark.parametrize("orientation", [1, 6])
def test_jpeg_draft_matches_full_decode_and_resize(tmp_path, monkeypatch, orientation):
    stored = scene(1200, 1600) if orientation == 1 else scene(1600, 1200)
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=90, exif=exif_with_orientation(orientation))
    data = buffer.getvalue()

    drafted = spy_on_jpeg_draft(monkeypatch)
    fast = np.asarray(decode_photo(data, (150, 200)), dtype=int)
    monkeypatch.undo()
    # DCT scaling decoded an eighth of the stored size, never less than the working size.
    assert drafted == [(150, 200) if orientation == 1 else (200, 150)]

    full = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    assert full.size == (1200, 1600)
    reference = np.asarray(full.resize((150, 200), Image.Resampling.BILINEAR), dtype=int)
    assert fast.shape == reference.shape == (200, 150, 3)
    assert np.abs(fast - reference).mean() < 2.0


def test_decode_photo_without_size_keeps_the_oriented_photo(tmp_path):
    data = open(_rotated_jpeg(tmp_path), "rb").read()
    image = decode_photo(data)
    assert image.mode == "RGB" and image.size == (32, 64)
