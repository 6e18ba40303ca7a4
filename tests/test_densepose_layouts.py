"""DensePose in the mask stage, in process: the person flags, and the files of the trainer layouts:
VITON-HD's and DressCode's image-densepose JPEG (IDM-VTON's rendering), DressCode's
dense/<id>_5.png and _5_uv.npz, read back the way their loaders read them. Known part maps and
U/V go in; the files must hold them in the export frame (pipeline/trainer_layouts.py,
pipeline/densepose_maps.py)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as TF

from pipeline import codecs
from pipeline import tryon_formats as tf
from pipeline.compose import MaskStage
from pipeline.densepose_maps import (
    DENSEPOSE_OTHER_PERSON,
    NO_DENSEPOSE_PERSON,
    NUM_PARTS,
    PART_COLOURS,
    fit_uv,
    render_parts,
    same_person,
    uv_npz,
)
from pipeline.layouts import ExportContext
from pipeline.testing.synthetic import make_person
from pipeline.trainer_layouts import DressCodeLayout, VitonHDLayout

FRAME = (768, 1024)


def _person_parts(sample) -> tuple[np.ndarray, np.ndarray]:
    """A part map over the person's pixels (bands of parts 1..24 down the body) and U/V that vary
    across it, so that a wrong flip, offset or scale changes the values."""
    height, width = sample.labels.shape
    body = sample.labels > 0
    rows = np.arange(height)[:, None] * NUM_PARTS // height + 1
    parts = np.where(body, np.broadcast_to(rows, (height, width)), 0).astype(np.uint8)
    u = np.broadcast_to(np.linspace(0, 1, width, dtype=np.float32), (height, width))
    v = np.broadcast_to(np.linspace(1, 0, height, dtype=np.float32)[:, None], (height, width))
    uv = np.stack([u, v]) * body
    return parts, uv.astype(np.float32)


def _context(sample, category: str, name: str, densepose=None, uv=None) -> ExportContext:
    return ExportContext(photo=sample.image, labels=sample.labels, people=sample.keypoints[None], no_person=False,
                         garment=None, row={"category": category, "split": "test", "export_name": name, "seq": 0},
                         export_size=FRAME, densepose=densepose, densepose_uv=uv)


def _decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.fixture(params=[(600, 800), (800, 600)], ids=["frame-aspect", "landscape-padded"])
def sample(request):
    return make_person(7, *request.param, category="upper_body")


def test_vitonhd_image_densepose_is_idm_vtons_rendering_in_the_frame(sample):
    parts, _ = _person_parts(sample)
    files = VitonHDLayout().export(_context(sample, "upper_body", "00000_00", parts))
    image = _decode(files["test/image-densepose/00000_00.jpg"])
    assert image.format == "JPEG" and image.mode == "RGB" and image.size == FRAME
    fit = tf.fit_frame((sample.image.shape[1], sample.image.shape[0]), FRAME)
    expected = render_parts(tf.apply_labels(parts, fit)).astype(int)
    got = np.asarray(image).astype(int)
    assert np.abs(got - expected).mean() < 3  # JPEG-close to the exact colours
    background = tf.apply_labels(parts, fit) == 0
    assert got[background].mean() < 4  # black off the person and in the padding
    # each part's mean colour is its PARULA colour
    framed = tf.apply_labels(parts, fit)
    for part in np.unique(framed)[1:]:
        inner = framed == part
        assert np.abs(got[inner].mean(axis=0) - PART_COLOURS[part]).max() < 12, part


def test_without_densepose_no_densepose_files(sample):
    for layout, category in ((VitonHDLayout(), "upper_body"), (DressCodeLayout(), "upper_body")):
        files = layout.export(_context(sample, category, "000000" if layout.name == "dresscode" else "00000_00"))
        assert not [path for path in files if "dense" in path], layout.name


def test_dresscode_dense_files_as_its_loader_reads_them(sample):
    assert DressCodeLayout.needs_densepose_uv and not VitonHDLayout.needs_densepose_uv
    parts, uv = _person_parts(sample)
    files = DressCodeLayout().export(_context(sample, "upper_body", "000000", parts, uv))
    fit = tf.fit_frame((sample.image.shape[1], sample.image.shape[0]), FRAME)

    labels_image = _decode(files["upper_body/dense/000000_5.png"])
    assert labels_image.format == "PNG" and labels_image.mode == "L" and labels_image.size == FRAME
    # the loader: Image.open -> resize((w, h), NEAREST) -> np.array -> one-hot over 25 channels
    labels = np.array(labels_image.resize((384, 512), Image.NEAREST))
    assert labels.dtype == np.uint8 and labels.max() <= NUM_PARTS
    one_hot = torch.zeros(NUM_PARTS + 1, 512, 384).scatter_(0, torch.from_numpy(labels[None]).long(), 1.0)
    assert one_hot.sum(0).eq(1).all()
    assert np.array_equal(np.array(labels_image), tf.apply_labels(parts, fit))  # lossless, in the frame

    archive = np.load(io.BytesIO(files["upper_body/dense/000000_5_uv.npz"]))
    assert archive.files == ["uv"]
    stored = archive["uv"]
    assert stored.dtype == np.float32 and stored.shape == (2, FRAME[1], FRAME[0])
    assert 0 <= stored.min() and stored.max() <= 1
    framed = tf.apply_labels(parts, fit)
    assert not stored[:, framed == 0].any()  # U/V only on the person's parts
    assert np.array_equal(stored, fit_uv(uv, fit))
    # U grows left to right and V bottom to top on the person, as they went in (no flip, no swap)
    person = framed > 0
    columns = np.nonzero(person.any(0))[0]
    right, left = columns[-1], columns[0]
    assert stored[0][person[:, right], right].mean() > stored[0][person[:, left], left].mean()
    # the loader: torch.from_numpy(uv['uv']) -> torchvision resize to (height, width)
    resized = TF.resize(torch.from_numpy(stored), [512, 384], antialias=True)
    assert resized.shape == (2, 512, 384) and resized.dtype == torch.float32

    image = _decode(files["upper_body/image-densepose/000000_0.jpg"])
    assert image.mode == "RGB" and image.size == FRAME
    assert np.abs(np.asarray(image).astype(int) - render_parts(framed).astype(int)).mean() < 3


def test_fit_uv_moves_uv_with_the_part_map():
    uv = np.zeros((2, 4, 3), np.float32)
    uv[0, 1, 2], uv[1, 1, 2] = 0.25, 0.75
    fit = tf.fit_frame((3, 4), (6, 8))
    moved = fit_uv(uv, fit)
    assert moved.shape == (2, 8, 6) and moved.dtype == np.float32
    assert np.array_equal(moved[0, 2:4, 4:6], np.full((2, 2), 0.25, np.float32))
    assert np.array_equal(moved[1, 2:4, 4:6], np.full((2, 2), 0.75, np.float32))
    assert np.count_nonzero(moved) == 8


def test_uv_npz_keeps_uv_on_the_parts_and_in_the_charts_range():
    parts = np.array([[0, 3], [5, 0]], np.uint8)
    uv = np.array([[[0.5, -0.2], [1.4, 0.3]], [[0.9, 0.6], [0.1, 0.8]]], np.float32)
    stored = np.load(io.BytesIO(uv_npz(uv, parts)))["uv"]
    assert stored.dtype == np.float32
    assert np.array_equal(stored, np.array([[[0, 0], [1, 0]], [[0, 0.6], [0.1, 0]]], np.float32))


def test_same_person_compares_the_box_with_the_pose_main_person():
    keypoints = np.full((18, 3), np.nan, np.float32)
    keypoints[:6] = [[100, 100, 1], [110, 150, 1], [90, 150, 1], [130, 150, 1], [100, 300, 1], [105, 380, 1]]
    assert same_person((80, 90, 140, 390), keypoints) is True
    assert same_person((85, 95, 125, 300), keypoints) is True  # wrists and ankles on the edge: the margin
    assert same_person((400, 90, 460, 390), keypoints) is False  # a person standing beside them
    assert same_person((80, 90, 140, 140), keypoints) is False  # only the head inside: 1 of 6
    assert same_person((-1, -1, -1, -1), keypoints) is None  # no DensePose person
    few = keypoints.copy()
    few[3:] = np.nan
    assert same_person((400, 90, 460, 390), few) is None  # 3 keypoints: nothing to compare


def _mask_stage_batch(sample, box, persons: int) -> dict:
    height, width = sample.labels.shape
    _, uv = _person_parts(sample)
    x0, y0, x1, y1 = (int(v) for v in box)
    crop = np.full((y1 - y0, x1 - x0), 5, np.uint8) if persons else np.zeros((0, 0), np.uint8)
    people = np.full((1, 8, 18, 3), np.nan, np.float32)
    people[0, 0] = sample.keypoints
    return {
        "id": np.array(["row0"], dtype=object), "source": np.array(["p.png"], dtype=object),
        "category": np.array(["upper_body"], dtype=object), "status": np.array(["pending"], dtype=object),
        "error": np.array([""], dtype=object), "data": np.array([codecs.encode_png(sample.image)], dtype=object),
        "labels": sample.labels[None], "people": people, "persons": np.array([1], np.int16),
        "densepose_persons": np.array([persons], np.int16),
        "densepose_box": np.array([box if persons else (-1, -1, -1, -1)], np.float32),
        "densepose_score": np.array([0.9 if persons else np.nan], np.float32),
        "densepose_origin": np.array([(x0, y0) if persons else (0, 0)], np.int32),
        "densepose_parts": np.array([crop, None], dtype=object)[:1],
        "densepose_uv": np.array([uv[:, y0:y1, x0:x1].astype(np.float16), None], dtype=object)[:1],
    }


def test_mask_stage_flags_densepose_of_nobody_or_of_another_person():
    sample = make_person(11, 384, 512, category="upper_body")
    ys, xs = np.nonzero(sample.labels)
    own = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    beside = (own[2] + 2, own[1], min(own[2] + 2 + (own[2] - own[0]), 383), own[3])  # a box next to the person
    for box, persons, expected in ((own, 1, None), (beside, 1, DENSEPOSE_OTHER_PERSON),
                                   (own, 0, NO_DENSEPOSE_PERSON)):
        out = MaskStage(style="rect")(_mask_stage_batch(sample, box, persons))
        assert out["status"][0] == "ok", out["error"][0]
        flags = out["flags"][0].split(",")
        densepose_flags = [flag for flag in flags if "densepose" in flag]
        assert densepose_flags == ([expected] if expected else []), (box, persons, flags)
        written = np.asarray(Image.open(io.BytesIO(out["densepose_bytes"][0])))
        assert np.count_nonzero(written) == (box[2] - box[0]) * (box[3] - box[1]) * bool(persons)
