"""Decode stage: bytes -> RGB pixels at the working size, one row's failure being that row's error.

Compressed bytes stay in the batch (`data`): the mask stage decodes the photo again at full
resolution, so full-resolution pixels never travel between stages.
"""
from __future__ import annotations

import io
import time
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import storage
from .schema import ERROR, EXIF_SOFTWARE, PENDING, SKIPPED, TOOL_OUTPUT_FLAG, TOOL_OUTPUT_SOFTWARE, VtonError

# Pillow's own bomb check only warns below 2x its limit (and raises above it); we refuse from the
# header, before decoding, above max_pixels.
MAX_PIXELS = 178_956_970


class DecodeError(VtonError, ValueError):
    """A photo that cannot be used; the message goes into the manifest row's `error`."""


def open_photo(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open and check an image from bytes without decoding its pixels."""
    if not data:
        raise DecodeError("cannot decode: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # max_pixels decides
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise DecodeError(f"cannot decode: not an image file ({_describe_start(data)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DecodeError(f"image too large: {error}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:  # e.g. a file cut inside its header
        raise DecodeError(f"cannot decode: {_explain(error)}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise DecodeError(f"image too large: {width}x{height} = {width * height / 1e6:.0f} Mpx "
                          f"(limit {max_pixels / 1e6:.0f} Mpx)")
    if width < 1 or height < 1:
        raise DecodeError(f"cannot decode: empty image ({width}x{height})")
    return image


def _describe_start(data: bytes) -> str:
    head = data[:16]
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "looks like text"
    return f"starts with bytes {head[:8].hex()}"


def oriented_size(image: Image.Image) -> tuple[int, int]:
    """The photo's (width, height) after EXIF orientation."""
    orientation = image.getexif().get(0x0112, 1)
    width, height = image.size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode to RGB: alpha composited on white, 16-bit scaled down, CMYK/palette converted."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
        image = Image.fromarray(np.clip(pixels / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" or (image.mode in ("L", "RGB") and "transparency" in image.info):
        image = image.convert("RGBA")  # a PNG tRNS colour is alpha too
    if image.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def decode_photo(data: bytes, size: tuple[int, int] | None = None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Bytes -> oriented RGB image, stretched to `size` (width, height) when given.

    For a JPEG larger than `size`, DCT scaling (draft) decodes straight to a smaller size first.
    """
    image = open_photo(data, max_pixels)
    try:
        if size is not None and image.format == "JPEG":
            width, height = oriented_size(image)
            swap = (width, height) != image.size
            target = (size[1], size[0]) if swap else size
            image.draft("RGB", target)
        image.seek(0)  # the first frame of an animation
        image.load()
        image = ImageOps.exif_transpose(image)
        image = to_rgb(image)
    except DecodeError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise DecodeError(f"cannot decode: {_explain(error)}") from None
    if size is not None and image.size != tuple(size):
        image = image.resize(tuple(size), Image.Resampling.BILINEAR, reducing_gap=None)
    return image


def _explain(error: Exception) -> str:
    text = str(error) or type(error).__name__
    if "truncated" in text.lower():
        return f"truncated file ({text})"
    return text


def decode_batch(batch: dict, width: int, height: int, max_pixels: int = MAX_PIXELS) -> dict:
    """Adds `data`, `image` (N, height, width, 3) uint8, `width`/`height` (photo), `skip_reason`
    ("" or TOOL_OUTPUT_FLAG: a file masked_image wrote, skipped), `decoder` (which library made
    the working-size image: "simplejpeg" or "pillow", see pipeline/codecs.py), `ms_decode`."""
    from .codecs import decode_working, one_cv2_thread  # codecs builds on this module

    one_cv2_thread()
    count = len(batch["id"])
    status = np.array(batch["status"], dtype=object)
    # Text everywhere ("" = no error): Ray turns each batch into Arrow on its own, and a column of
    # only nulls in one batch would not merge with a string column from another.
    error = np.array([e if isinstance(e, str) else "" for e in batch["error"]], dtype=object)
    images = np.zeros((count, height, width, 3), dtype=np.uint8)
    photo_width = np.zeros(count, dtype=np.int32)
    photo_height = np.zeros(count, dtype=np.int32)
    data_column = np.empty(count, dtype=object)
    skip_reason = np.full(count, "", dtype=object)
    decoder = np.full(count, "", dtype=object)
    milliseconds = np.zeros(count, dtype=np.float32)
    for row in range(count):
        data_column[row] = b""
        if status[row] not in (PENDING, SKIPPED):
            continue
        started = time.perf_counter()
        try:
            data = _read_source(batch["source"][row])
            data_column[row] = data
            photo_width[row], photo_height[row], software = _photo_size(data, max_pixels)
            if software == TOOL_OUTPUT_SOFTWARE:
                status[row], skip_reason[row], data_column[row] = SKIPPED, TOOL_OUTPUT_FLAG, b""
            elif status[row] == PENDING:  # passthrough rows need their size, not their pixels
                images[row], decoder[row] = decode_working(data, (width, height), max_pixels)
        except DecodeError as bad:
            status[row], error[row] = ERROR, str(bad)
            data_column[row] = b""
        milliseconds[row] = (time.perf_counter() - started) * 1000.0
    out = dict(batch)
    out.update(status=status, error=error, data=data_column, image=images, width=photo_width,
               height=photo_height, skip_reason=skip_reason, decoder=decoder, ms_decode=milliseconds,
               left_decode=np.full(count, time.time()))
    return out


def _photo_size(data: bytes, max_pixels: int) -> tuple[int, int, str | None]:
    """(width, height) after EXIF orientation, and the EXIF Software tag."""
    image = open_photo(data, max_pixels)
    try:
        exif = image.getexif()  # a PNG's EXIF may follow its pixels: this can read them all
        width, height = oriented_size(image)
        return width, height, exif.get(EXIF_SOFTWARE)
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise DecodeError(f"cannot decode: {_explain(error)}") from None


def _read_source(source: str) -> bytes:
    try:
        return storage.read_bytes(source)
    except FileNotFoundError:
        raise DecodeError(f"file not found: {source}") from None
    except IsADirectoryError:
        raise DecodeError(f"not a file: {source}") from None
    except PermissionError:
        raise DecodeError(f"permission denied: {source}") from None
    except OSError as error:
        raise DecodeError(f"cannot read {source}: {error}") from None
