"""The trainer layouts' photo JPEGs (VITON-HD image/ and cloth/, DressCode images/_0 and _1): a
photo that already fills the export frame as an upright RGB JPEG is written with its own bytes,
every other photo is fitted and encoded (pipeline/codecs.py reusable_jpeg,
pipeline/trainer_layouts.py _photo_file)."""
from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from PIL import Image

from pipeline import codecs
from pipeline.clothmask import cloth_mask
from pipeline.compose import MaskStage
from pipeline.layouts import ExportContext
from pipeline.schema import VtonError
from pipeline.testing.products import make_product
from pipeline.testing.synthetic import make_person
from pipeline.trainer_layouts import CLOTH_MASK_SIDE, DressCodeLayout, VitonHDLayout, _garment

FRAME = (768, 1024)


def _jpeg(pixels: np.ndarray, mode: str | None = None, orientation: int | None = None, quality: int = 90) -> bytes:
    image = Image.fromarray(pixels)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    if orientation is None:
        image.save(buffer, "JPEG", quality=quality)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(buffer, "JPEG", quality=quality, exif=exif)
    return buffer.getvalue()


def _reusable(data: bytes) -> bool:
    return codecs.reusable_jpeg(data, codecs.decode_full(data)[1])


def test_reusable_jpeg_only_for_upright_rgb_jpegs_that_libjpeg_turbo_decoded():
    pixels = make_person(3, 96, 128).image
    rgb = _jpeg(pixels)
    assert _reusable(rgb)
    assert _reusable(_jpeg(pixels, orientation=1))
    assert not codecs.reusable_jpeg(rgb, codecs.PILLOW)     # decoded by Pillow: the stream is not known whole
    assert not _reusable(_jpeg(pixels, orientation=6))      # stored sideways: the file is not the upright pixels
    assert not _reusable(_jpeg(pixels, mode="L"))           # gray: loaders that skip convert('RGB') get one channel
    assert not _reusable(_jpeg(pixels, mode="CMYK"))
    assert not _reusable(codecs.encode_png(pixels))
    assert not codecs.reusable_jpeg(b"", codecs.FAST)


def _context(photo: bytes, garment: bytes | None, category: str = "upper_body") -> ExportContext:
    pixels, decoder = codecs.decode_full(photo)
    sample = make_person(5, pixels.shape[1], pixels.shape[0], category=category)
    return ExportContext(photo=pixels, labels=sample.labels, people=sample.keypoints[None], no_person=False,
                         garment=garment, export_size=FRAME, row={"category": category, "split": "test",
                                                                  "export_name": "00000_00", "seq": 0,
                                                                  "garment": "g.jpg"},
                         photo_jpeg=photo if codecs.reusable_jpeg(photo, decoder) else None)


def _decoded(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.mode == "RGB" and image.size == FRAME
    return np.asarray(image)


@pytest.mark.parametrize("layout, photo_file, cloth_file", [
    (VitonHDLayout(), "test/image/00000_00.jpg", "test/cloth/00000_00.jpg"),
    (DressCodeLayout(), "upper_body/images/00000_00_0.jpg", "upper_body/images/00000_00_1.jpg"),
])
def test_a_photo_in_the_frame_keeps_its_bytes_and_others_are_fitted(layout, photo_file, cloth_file):
    person = make_person(5, *FRAME, category="upper_body").image
    garment = make_product(8, *FRAME).image
    same = layout.export(_context(_jpeg(person), _jpeg(garment)))
    assert same[photo_file] == _jpeg(person) and same[cloth_file] == _jpeg(garment)

    # Not the frame's size, rotated by EXIF, gray: fitted and encoded, upright, RGB.
    small = make_person(5, 384, 512, category="upper_body").image
    for photo, cloth in ((_jpeg(small), _jpeg(small)),
                         (_jpeg(np.ascontiguousarray(np.rot90(person)), orientation=6),
                          _jpeg(np.ascontiguousarray(np.rot90(garment)), orientation=6)),
                         (_jpeg(person, mode="L"), _jpeg(garment, mode="L"))):
        files = layout.export(_context(photo, cloth))
        assert files[photo_file] != photo and files[cloth_file] != cloth
        expected = codecs.decode_full(photo)[0]
        if expected.shape[:2] == FRAME[::-1]:  # same size: the re-encoded file holds the upright pixels
            assert np.abs(_decoded(files[photo_file]).astype(int) - expected).mean() < 3
        else:
            _decoded(files[photo_file])
        _decoded(files[cloth_file])


def test_the_mask_stage_hands_the_photo_bytes_to_the_layout():
    sample = make_person(9, *FRAME, category="upper_body")
    photo = _jpeg(sample.image)
    people = np.full((1, 8, 18, 3), np.nan, np.float32)
    people[0, 0] = sample.keypoints
    batch = {
        "id": np.array(["row0"], dtype=object), "source": np.array(["p.jpg"], dtype=object),
        "category": np.array(["upper_body"], dtype=object), "status": np.array(["pending"], dtype=object),
        "error": np.array([""], dtype=object), "data": np.array([photo], dtype=object),
        "labels": sample.labels[None], "people": people, "persons": np.array([1], np.int16),
        "seq": np.array([0]), "split": np.array(["test"], dtype=object), "garment": np.array([""], dtype=object),
    }
    out = MaskStage(style="rect", layout="vitonhd")(batch)
    assert out["status"][0] == "ok", out["error"][0]
    assert pickle.loads(out["export_files"][0])["test/image/00000_00.jpg"] == photo


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum()))


def _garment_context(garment: bytes) -> ExportContext:
    return ExportContext(photo=None, labels=None, people=None, no_person=False, garment=garment,
                         row={"garment": "shirt.jpg"}, export_size=FRAME)


def test_a_kept_garment_is_masked_from_a_scaled_decode_not_a_full_one(monkeypatch):
    product = make_product(11, *FRAME)
    data = _jpeg(product.image)
    full_decodes = []
    original = codecs.decode_full
    monkeypatch.setattr(codecs, "decode_full", lambda *a, **k: full_decodes.append(1) or original(*a, **k))
    cloth, mask = _garment(_garment_context(data))
    assert full_decodes == []  # the kept bytes are the cloth file; only the mask's pixels were decoded
    assert cloth == data and mask.shape == FRAME[::-1] and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 255}
    assert _iou(mask > 0, product.mask) > 0.95
    # The full decode's mask (what any other garment gets) agrees but for edge pixels.
    assert _iou(mask > 0, cloth_mask(original(data)[0], max_side=CLOTH_MASK_SIDE) > 0) > 0.98

    # Not kept (gray, so re-encoded as RGB): the full decode, as before.
    cloth, mask = _garment(_garment_context(_jpeg(product.image, mode="L")))
    assert full_decodes == [1] and cloth != data and _iou(mask > 0, product.mask) > 0.9


def test_a_cut_garment_jpeg_of_the_frames_size_is_the_rows_error_naming_it():
    data = _jpeg(make_product(12, *FRAME).image)
    assert codecs.reusable_jpeg_size(data[: len(data) // 2]) == FRAME  # the header still says keep it
    with pytest.raises(VtonError, match="garment 'shirt.jpg' cannot be decoded"):
        _garment(_garment_context(data[: len(data) // 2]))
