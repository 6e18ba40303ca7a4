"""pipeline.clothmask.cloth_mask on generated product photos (pipeline.testing.products).

The IoU floors sit below what bench/cloth_mask_eval.py measures on the held-out seeds (100,000 on;
bench/RESULTS.md, Cloth masks): per kind mean >= 0.95, every photo >= 0.8.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.clothmask import cloth_mask
from pipeline.testing.products import PRODUCT_KINDS, make_product

HELD_OUT = 100_000  # bench/cloth_mask_eval.py --split heldout
PER_KIND = 8


def _iou(mask: np.ndarray, truth: np.ndarray) -> float:
    union = np.logical_or(mask, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(mask, truth).sum() / union)


def test_generator_is_deterministic_and_follows_its_arguments():
    a = make_product(7, 384, 512, kind="logo")
    b = make_product(7, 384, 512, kind="logo")
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert a.image.shape == (512, 384, 3) and a.image.dtype == np.uint8
    assert a.mask.shape == (512, 384) and a.mask.dtype == bool
    assert a.kind == "logo" and a.seed == 7
    c = make_product(8, 384, 512, kind="logo")
    assert not np.array_equal(a.image, c.image)
    # without a kind the seed picks one, the same every time
    assert make_product(3, 96, 128).kind == make_product(3, 96, 128).kind in PRODUCT_KINDS
    # the garment is a sizeable region inside the frame, with background around it
    share = a.mask.mean()
    assert 0.05 < share < 0.8
    with pytest.raises(ValueError):
        make_product(1, kind="nope")


def test_mask_is_uint8_0_255_of_the_photo_size():
    sample = make_product(HELD_OUT, 600, 800, kind="coloured")
    mask = cloth_mask(sample.image)
    assert mask.shape == (800, 600) and mask.dtype == np.uint8
    assert set(np.unique(mask).tolist()) <= {0, 255}
    assert _iou(mask > 127, sample.mask) > 0.9


@pytest.mark.parametrize("kind", PRODUCT_KINDS)
def test_held_out_product_photos(kind):
    ious = []
    for seed in range(HELD_OUT, HELD_OUT + PER_KIND):
        sample = make_product(seed, kind=kind)
        ious.append(_iou(cloth_mask(sample.image) > 127, sample.mask))
    assert np.mean(ious) >= 0.95, (kind, np.round(ious, 3))
    assert min(ious) >= 0.8, (kind, np.round(ious, 3))


def test_a_garment_touching_no_border_is_found():
    sample = make_product(HELD_OUT + 50, kind="white_on_white")
    edge = np.zeros(sample.mask.shape, bool)
    edge[:3] = edge[-3:] = True
    edge[:, :3] = edge[:, -3:] = True
    assert not (sample.mask & edge).any()
    mask = cloth_mask(sample.image) > 127
    assert not (mask & edge).any()
    assert _iou(mask, sample.mask) > 0.9
    # and a plain drawn one: a grey blob in the middle of a white frame
    img = np.full((300, 200, 3), 250, np.uint8)
    cv2.ellipse(img, (100, 150), (60, 90), 0, 0, 360, (120, 120, 125), -1, cv2.LINE_AA)
    truth = np.zeros((300, 200), np.uint8)
    cv2.ellipse(truth, (100, 150), (60, 90), 0, 0, 360, 1, -1)
    assert _iou(cloth_mask(img) > 127, truth > 0) > 0.95


def test_a_coloured_garment_touching_one_border_is_found():
    sample = make_product(HELD_OUT + 60, kind="coloured")
    bottom = int(np.nonzero(sample.mask)[0].max()) - 40  # cut the photo through the garment
    image, truth = np.ascontiguousarray(sample.image[:bottom]), sample.mask[:bottom]
    assert truth[-1].any()
    assert _iou(cloth_mask(image) > 127, truth) > 0.9


def test_empty_backdrops_give_an_almost_empty_mask():
    rng = np.random.default_rng(0)
    white = np.full((1024, 768, 3), 255, np.uint8)
    noisy = np.clip(248 + rng.normal(0, 2, (512, 384, 3)), 0, 255).astype(np.uint8)
    yy = np.linspace(0, 1, 400, dtype=np.float32)[:, None, None]
    gradient = np.clip(np.float32([200, 170, 230]) * (0.85 + 0.2 * yy) + np.zeros((400, 300, 3), np.float32), 0, 255)
    for img in (white, noisy, gradient.astype(np.uint8)):
        mask = cloth_mask(img)
        assert mask.shape == img.shape[:2]
        assert (mask > 0).mean() < 0.01


def test_grey_float_and_tiny_inputs():
    sample = make_product(HELD_OUT + 70, 384, 512, kind="coloured")
    grey = cv2.cvtColor(sample.image, cv2.COLOR_RGB2GRAY)
    for img in (grey, grey[..., None]):
        mask = cloth_mask(img)
        assert mask.shape == grey.shape and mask.dtype == np.uint8
        assert _iou(mask > 127, sample.mask) > 0.9
    as_float = sample.image.astype(np.float32) / 255.0
    assert _iou(cloth_mask(as_float) > 127, sample.mask) > 0.9
    rgba = np.concatenate([sample.image, np.full((512, 384, 1), 255, np.uint8)], axis=2)
    assert _iou(cloth_mask(rgba) > 127, sample.mask) > 0.9
    # small photos are worked on enlarged; a few pixels still give a mask of their size
    tiny = cv2.resize(sample.image, (48, 64), interpolation=cv2.INTER_AREA)
    truth = cv2.resize(sample.mask.astype(np.float32), (48, 64), interpolation=cv2.INTER_AREA) >= 0.5
    assert _iou(cloth_mask(tiny) > 127, truth) > 0.7
    for shape in ((1, 1, 3), (5, 3, 3), (2, 40, 3)):
        mask = cloth_mask(np.full(shape, 200, np.uint8))
        assert mask.shape == shape[:2] and mask.dtype == np.uint8
    with pytest.raises(ValueError):
        cloth_mask(np.zeros((4, 4, 2), np.uint8))


def test_max_side_masks_a_shrunk_copy_at_the_photo_size():
    sample = make_product(HELD_OUT + 80, kind="coloured")  # 768x1024
    full = cloth_mask(sample.image)
    shrunk = cloth_mask(sample.image, max_side=512)
    assert shrunk.shape == full.shape and shrunk.dtype == np.uint8
    assert set(np.unique(shrunk).tolist()) <= {0, 255}
    assert _iou(shrunk > 127, sample.mask) > 0.9
    assert _iou(shrunk > 127, full > 127) > 0.95
    # a photo no longer than max_side, or max_side below the working size's floor, is not shrunk
    assert np.array_equal(cloth_mask(sample.image, max_side=1024), full)
    small = np.ascontiguousarray(sample.image[::2, ::2])
    assert np.array_equal(cloth_mask(small, max_side=100), cloth_mask(small, max_side=384))
