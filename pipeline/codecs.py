"""Fast image codecs for the CPU stages: libjpeg-turbo (simplejpeg) for JPEGs, a minimal PNG writer
for masks and label maps, Pillow (pipeline.decode) for everything else.

Why: on a GPU node the decode and mask stages are CPU-bound (issue 18). Per 768x1024 photo, today's
decode to the working size spends most of its time in Pillow's bilinear resize after a full-size
decode (Pillow's draft() only scales by 1/2, 1/4, 1/8: 768 -> 576 is none of them); libjpeg-turbo
scales by n/8 inside the IDCT, so 768x1024 -> 576x768 (6/8) and 1536x2048 -> 576x768 (3/8) come out
of the decoder at the working size with no resize at all. The PNG outputs (masks, parse maps) are
long runs of a few values: deflate's RLE strategy on unfiltered rows keeps them lossless, smaller
than today's files and several times cheaper than Pillow's adaptive row filters.

Every decode returns ``(pixels, decoder_name)``: ``"simplejpeg"`` when libjpeg-turbo decoded the
photo, ``"pillow"`` when the photo went through pipeline.decode.decode_photo (not a JPEG, a CMYK
JPEG, or anything simplejpeg refused). Errors keep today's messages: the photo is opened (and
size-checked) by pipeline.decode.open_photo first, and any failure of simplejpeg falls back to
Pillow, whose DecodeError messages are the ones the manifest already uses.
"""
from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
from PIL import Image

from .decode import MAX_PIXELS, decode_photo, open_photo

try:  # libjpeg-turbo in the wheel; without it every photo takes the Pillow path
    import simplejpeg
except ImportError:  # pragma: no cover - simplejpeg is a dependency
    simplejpeg = None

try:  # zlib-ng is ~7x faster than the system zlib at the same output; optional
    from zlib_ng import zlib_ng as _deflate
    PNG_DEFLATE = "zlib-ng"
except ImportError:
    _deflate = zlib
    PNG_DEFLATE = "zlib"

FAST, PILLOW = "simplejpeg", "pillow"
JPEG_QUALITY = 95
# Pillow's JPEG encoder subsamples chroma 2x2 (4:2:0) at every quality unless told otherwise;
# simplejpeg's default is 4:4:4 (~30% larger files). Matching Pillow keeps sizes and quality comparable.
JPEG_SUBSAMPLING = "420"
PNG_LEVEL = 1

# Pillow's JPEG modes that libjpeg-turbo converts to RGB itself (YCbCr and RGB JPEGs are "RGB",
# grayscale ones "L"). CMYK/YCCK ("CMYK") cannot be converted by TurboJPEG: Pillow handles them.
_FAST_MODES = ("RGB", "L")
# MPO (phone cameras' multi-picture files) is a JPEG whose first image is the photo.
_FAST_FORMATS = ("JPEG", "MPO")
_ORIENTATION = 0x0112


def one_cv2_thread() -> None:
    """OpenCV in this process on one thread (its default is a pool of one thread per core).

    Why: the CPU tasks (decode, masks) each hold one CPU that Ray reserved, and Ray runs as many
    as there are CPUs, beside the model actors: the pool's extra threads find no idle core and
    only add CPU time. In 300-photo runs on 2 CPUs the vitonhd layout's task workers spent ~4 s
    (~9%) less CPU with one thread; the native layout's changed within the runs' noise
    (bench/RESULTS.md, Trainer layout export time).
    """
    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)


# ------------------------------------------------------------------------------------- decoding

def decode_working(data: bytes, size: tuple[int, int], max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, str]:
    """Bytes -> (upright RGB uint8 (height, width, 3) at ``size`` = (width, height), decoder name).

    Why: the decode stage only needs the working size. For a JPEG, libjpeg-turbo decodes at the
    smallest n/8 scale that is still >= the target in both dimensions (done in the IDCT, cheaper
    than decoding full size), then the rest of the way with today's resize (Pillow BILINEAR,
    reducing_gap=None), which is skipped when the scale hits the target exactly (768x1024 at 6/8,
    1536x2048 at 3/8). This is a different low-pass filter than today's full decode + bilinear:
    smooth content agrees within about 1-2 levels, fine patterns (periods under ~12 source
    pixels) keep more contrast than today (tests/test_codecs.py measures both; parse maps agree
    on >= 99.9% of pixels). EXIF orientation is applied as today (Pillow reads the tag; the
    array is transposed). Other formats, CMYK JPEGs and any photo simplejpeg refuses take today's
    path, pipeline.decode.decode_photo, unchanged.
    """
    width, height = int(size[0]), int(size[1])
    image = open_photo(data, max_pixels)  # today's checks and error messages (empty, not an image, too large)
    if _fast_candidate(image):
        try:
            orientation = _orientation(image)
            swap = orientation in (5, 6, 7, 8)
            stored_width, stored_height = (height, width) if swap else (width, height)
            pixels = simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=stored_width,
                                            min_height=stored_height, strict=True)
            pixels = orient(pixels, orientation)
            if pixels.shape[:2] != (height, width):
                pixels = resize_bilinear(pixels, (width, height))
            return pixels, FAST
        except Exception:  # a decoder refusal, a bad tag: today's path decides (and words the error)
            pass
    return np.asarray(decode_photo(data, (width, height), max_pixels)), PILLOW


def decode_full(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, str]:
    """Bytes -> (upright RGB uint8 (height, width, 3) at the photo's own size, decoder name).

    Why: the mask stage decodes the photo again at full size for the composite (full-size pixels
    never travel between stages). For the JPEGs simplejpeg reads, its output is bit-equal to
    today's np.asarray(decode_photo(data)) (the same libjpeg-turbo, accurate IDCT and fancy
    upsampling; tests/test_codecs.py checks it) at ~2/3 of the CPU: no PIL image, no extra
    copy. The array is writable, so the composite can be drawn in place. Others: Pillow, as today.
    """
    image = open_photo(data, max_pixels)
    if _fast_candidate(image):
        try:
            orientation = _orientation(image)
            pixels = simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
            return orient(pixels, orientation), FAST
        except Exception:
            pass
    pixels = np.asarray(decode_photo(data, None, max_pixels))
    return (pixels if pixels.flags.writeable else pixels.copy()), PILLOW


def reusable_jpeg(data: bytes, decoder: str) -> bool:
    """Whether a photo's own bytes can be written where its pixels would be encoded as a JPEG: a
    JPEG (not MPO) that libjpeg-turbo decoded (``decoder`` is FAST: the whole stream is valid),
    with three channels (Pillow's mode RGB: not gray, not CMYK) and no EXIF rotation, so any
    reader gets the pixels this decode gave, at the same size.

    Why: re-encoding a photo that needs no resizing costs ~4 ms per 768x1024 photo and loses
    quality a second time; the original bytes are the better file. Reads the header only.
    """
    return decoder == FAST and reusable_jpeg_size(data) is not None


def reusable_jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The (width, height) of a photo whose header makes it a reusable JPEG (reusable_jpeg, less
    the decode), None otherwise. Reads the header only.

    Why: a caller that writes the bytes unchanged can then decode the pixels at the size it needs
    (decode_working) instead of full size; its decoder must still be FAST for the bytes to be used.
    """
    if not data:
        return None
    try:
        image = open_photo(data)
        reusable = image.format == "JPEG" and image.mode == "RGB" and _orientation(image) == 1
    except Exception:  # an unreadable header: encode the pixels instead
        return None
    return tuple(image.size) if reusable else None


def _fast_candidate(image: Image.Image) -> bool:
    return simplejpeg is not None and image.format in _FAST_FORMATS and image.mode in _FAST_MODES


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation tag as Pillow's exif_transpose reads it (1 when absent).

    Why Pillow: getexif() parses the header Image.open already read (no pixel decoding) and
    falls back to an XMP tiff:Orientation like exif_transpose does, so both paths turn alike.
    """
    return image.getexif().get(_ORIENTATION, 1)


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a stored-orientation array upright: the numpy/OpenCV twin of Pillow's exif_transpose.

    Why OpenCV: cv2.flip/transpose/rotate write a contiguous result in one pass (a numpy view
    would need a copy anyway). Orientation values outside 2..8 leave the array as it is, like
    Pillow does.
    """
    if orientation == 2:
        return cv2.flip(pixels, 1)
    if orientation == 3:
        return cv2.rotate(pixels, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(pixels, 0)
    if orientation == 5:  # Pillow TRANSPOSE: mirror along the main diagonal
        return _contiguous(cv2.transpose(pixels), pixels)
    if orientation == 6:  # Pillow ROTATE_270: a quarter turn clockwise
        return cv2.rotate(pixels, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:  # Pillow TRANSVERSE: mirror along the anti-diagonal
        return cv2.flip(_contiguous(cv2.transpose(pixels), pixels), -1)
    if orientation == 8:  # Pillow ROTATE_90: a quarter turn counter-clockwise
        return cv2.rotate(pixels, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return pixels


def _contiguous(result: np.ndarray, source: np.ndarray) -> np.ndarray:
    # cv2 returns (w, h) for a single-channel (h, w, 1) array: keep the channel axis.
    return result.reshape(result.shape[:2] + source.shape[2:])


def resize_bilinear(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Today's working-size resize (Pillow BILINEAR, reducing_gap=None) on an array.

    Why Pillow: it is the exact filter decode_photo applies, so where the DCT scale cannot reach
    the target the last step is the same as today's (OpenCV's bilinear does not antialias).
    """
    image = Image.fromarray(np.ascontiguousarray(pixels))
    return np.asarray(image.resize(tuple(size), Image.Resampling.BILINEAR, reducing_gap=None))


# ------------------------------------------------------------------------------------- encoding

def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """RGB (or 2-D gray) uint8 -> JPEG bytes with libjpeg-turbo's TurboJPEG API.

    Why: ~20% less CPU than Pillow's save at the same quality and the same 4:2:0 subsampling.
    TurboJPEG uses the fast integer DCT below quality 96 (Pillow the accurate one): about 0.1-0.2
    dB lower PSNR and <1% larger files at quality 95 (tests/test_codecs.py bounds it at 0.5 dB).
    Falls back to Pillow (today's encoder and settings) if simplejpeg refuses the array.
    """
    pixels = np.ascontiguousarray(rgb)
    if simplejpeg is not None and pixels.dtype == np.uint8:
        try:
            if pixels.ndim == 2:
                return simplejpeg.encode_jpeg(pixels[..., None], int(quality), colorspace="GRAY",
                                              colorsubsampling="Gray")
            if pixels.ndim == 3 and pixels.shape[2] == 3:
                return simplejpeg.encode_jpeg(pixels, int(quality), colorspace="RGB",
                                              colorsubsampling=JPEG_SUBSAMPLING)
        except Exception:
            pass
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()


def encode_png(array: np.ndarray, palette: np.ndarray | None = None, filtered: bool = True) -> bytes:
    """uint8 array -> lossless PNG bytes.

    2-D arrays (masks: mode L; label maps with ``palette``: mode P, pixel values = palette
    indices, PLTE = the palette's rows as given) go through a minimal writer: unfiltered rows,
    deflate level 1 with the RLE strategy (zlib-ng when installed, else zlib). Why: masks and
    label maps are runs of a few values; RLE finds them as well as a full match search does
    (files smaller than Pillow's compress_level=1) without Pillow's per-row adaptive filter
    choice, which is most of its cost. RGB(A) photos keep Pillow's PNG encoder at
    compress_level=1 (today's settings): photos need the row filters.

    ``filtered=False`` sends an RGB (H, W, 3) uint8 array through the same minimal writer (colour
    type 2, unfiltered rows, RLE): for drawings that are long runs of a few flat colours on black,
    such as the rendered OpenPose skeleton, where it is lossless like Pillow's encoder at a
    fraction of its CPU (tests/test_codecs.py), the file somewhat larger. Other arrays ignore it.
    """
    pixels = np.ascontiguousarray(array)
    if pixels.dtype == bool:
        pixels = pixels.view(np.uint8)
    if pixels.ndim == 2 and pixels.dtype == np.uint8 and pixels.size:
        if palette is None:
            return _png_8bit(pixels, colour_type=0)
        return _png_8bit(pixels, colour_type=3, palette=_palette_bytes(palette))
    if (not filtered and palette is None and pixels.ndim == 3 and pixels.shape[2] == 3
            and pixels.dtype == np.uint8 and pixels.size):
        return _png_8bit(pixels, colour_type=2)
    image = Image.fromarray(pixels)
    if palette is not None:
        image = image.convert("P") if image.mode == "L" else image
        image.putpalette(np.asarray(palette, np.uint8).reshape(-1).tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_LEVEL)
    return buffer.getvalue()


def _palette_bytes(palette) -> bytes:
    colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    if not 1 <= len(colours) <= 256:
        raise ValueError(f"a PNG palette holds 1..256 colours, got {len(colours)}")
    return colours.tobytes()


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _png_8bit(pixels: np.ndarray, colour_type: int, palette: bytes | None = None) -> bytes:
    """An 8-bit gray (type 0), RGB (type 2, pixels (H, W, 3)) or palette (type 3) PNG: one IDAT,
    filter 0 on every row."""
    height, width = pixels.shape[:2]
    row_bytes = pixels[0].size
    rows = np.empty((height, row_bytes + 1), np.uint8)
    rows[:, 0] = 0  # filter type None
    rows[:, 1:] = pixels.reshape(height, row_bytes)
    compressor = _deflate.compressobj(PNG_LEVEL, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    idat = compressor.compress(rows) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    parts = [_PNG_SIGNATURE, _chunk(b"IHDR", header)]
    if palette is not None:
        parts.append(_chunk(b"PLTE", palette))
    parts += [_chunk(b"IDAT", idat), _chunk(b"IEND", b"")]
    return b"".join(parts)
