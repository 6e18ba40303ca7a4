"""The synthetic person generator: deterministic, and its ground truth agrees with itself."""
from __future__ import annotations

import csv
import time

import numpy as np
import pytest
from PIL import Image

from pipeline.labels import (
    BAG,
    BELT,
    DRESS,
    FACE,
    HAIR,
    HAT,
    LEFT_ARM,
    LEFT_LEG,
    LEFT_SHOE,
    NUM_LABELS,
    PANTS,
    RIGHT_ARM,
    RIGHT_LEG,
    RIGHT_SHOE,
    SCARF,
    SKIRT,
    SUNGLASSES,
    UPPER_CLOTHES,
)
from pipeline.testing.synthetic import KEYPOINT_NAMES, load_truth, make_person, write_dataset

W, H = 384, 512  # small for speed; the geometry does not depend on the size
SEEDS = range(24)


@pytest.fixture(scope="module")
def samples():
    return [make_person(s, W, H) for s in SEEDS]


def test_shapes_and_types(samples):
    for s in samples:
        assert s.image.shape == (H, W, 3) and s.image.dtype == np.uint8
        assert s.labels.shape == (H, W) and s.labels.dtype == np.uint8
        assert s.labels.max() < NUM_LABELS
        assert s.keypoints.shape == (18, 3) and s.keypoints.dtype == np.float32
        visible = ~np.isnan(s.keypoints[:, 0])
        assert np.all(s.keypoints[visible, 2] == 1.0)
        assert np.all(np.isnan(s.keypoints[~visible]))  # a missing keypoint is a whole NaN row
        assert s.category in ("upper_body", "lower_body", "dresses")
    assert len(KEYPOINT_NAMES) == 18


def test_deterministic():
    a, b = make_person(7, W, H), make_person(7, W, H)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    assert a.category == b.category
    c = make_person(8, W, H)
    assert not np.array_equal(a.labels, c.labels)


def test_same_scene_at_another_resolution():
    small, large = make_person(3, W, H), make_person(3, 2 * W, 2 * H)
    assert small.category == large.category
    agree = (large.labels[1::2, 1::2] == small.labels).mean()
    assert agree > 0.98
    both = ~np.isnan(small.keypoints[:, 0]) & ~np.isnan(large.keypoints[:, 0])
    np.testing.assert_allclose(large.keypoints[both, :2], 2 * small.keypoints[both, :2], atol=0.01)


def test_categories_and_garments(samples):
    assert {s.category for s in samples} == {"upper_body", "lower_body", "dresses"}
    for s in samples:
        present = set(np.unique(s.labels).tolist())
        assert {FACE, HAIR} <= present | {HAT}
        if s.category == "dresses":
            assert DRESS in present and not present & {UPPER_CLOTHES, PANTS, SKIRT}
        else:
            assert UPPER_CLOTHES in present and DRESS not in present
            assert len(present & {PANTS, SKIRT}) == 1
    for category in ("upper_body", "lower_body", "dresses"):
        for seed in range(3):
            assert make_person(seed, W, H, category=category).category == category
    with pytest.raises(ValueError):
        make_person(0, W, H, category="other")


def _labels_near(labels, x, y, radius):
    h, w = labels.shape
    x, y = int(round(x)), int(round(y))
    window = labels[max(0, y - radius):min(h, y + radius + 1), max(0, x - radius):min(w, x + radius + 1)]
    return set(np.unique(window).tolist())


# Labels a keypoint may lie on (within a few pixels). A bag or an arm can cover the body.
_OCCLUDERS = {BAG, LEFT_ARM, RIGHT_ARM}
_GARMENTS = {UPPER_CLOTHES, DRESS, PANTS, SKIRT, BELT, SCARF}
_EXPECTED = {
    "nose": {FACE, SUNGLASSES}, "neck": {FACE, SCARF} | _GARMENTS,
    "right_shoulder": {RIGHT_ARM} | _GARMENTS | {BAG}, "left_shoulder": {LEFT_ARM} | _GARMENTS | {BAG},
    "right_elbow": {RIGHT_ARM, UPPER_CLOTHES, DRESS, BAG}, "left_elbow": {LEFT_ARM, UPPER_CLOTHES, DRESS, BAG},
    "right_wrist": {RIGHT_ARM, BAG}, "left_wrist": {LEFT_ARM, BAG},
    "right_hip": _GARMENTS | _OCCLUDERS, "left_hip": _GARMENTS | _OCCLUDERS,
    "right_knee": {RIGHT_LEG} | _GARMENTS | _OCCLUDERS, "left_knee": {LEFT_LEG} | _GARMENTS | _OCCLUDERS,
    "right_ankle": {RIGHT_LEG, RIGHT_SHOE, PANTS, DRESS, SKIRT} | _OCCLUDERS,
    "left_ankle": {LEFT_LEG, LEFT_SHOE, PANTS, DRESS, SKIRT} | _OCCLUDERS,
    "right_eye": {FACE, SUNGLASSES}, "left_eye": {FACE, SUNGLASSES},
    "right_ear": {FACE, HAIR, HAT}, "left_ear": {FACE, HAIR, HAT},
}


def test_keypoints_lie_on_their_labels(samples):
    for s in samples:
        for index, name in enumerate(KEYPOINT_NAMES):
            x, y, score = s.keypoints[index]
            if np.isnan(score):
                continue
            near = _labels_near(s.labels, x, y, radius=3)
            assert near & _EXPECTED[name], (s.seed, name, near)


def test_persons_left_is_on_the_image_right(samples):
    for s in samples:
        k = s.keypoints
        for left, right in ((5, 2), (11, 8), (15, 14), (17, 16)):
            if not np.isnan(k[left, 0]) and not np.isnan(k[right, 0]):
                assert k[left, 0] > k[right, 0], (s.seed, left, right)
        xs = np.arange(W)[None, :]
        for left, right in ((LEFT_ARM, RIGHT_ARM), (LEFT_LEG, RIGHT_LEG), (LEFT_SHOE, RIGHT_SHOE)):
            lm, rm = s.labels == left, s.labels == right
            if lm.sum() > 20 and rm.sum() > 20:
                assert (xs * lm).sum() / lm.sum() > (xs * rm).sum() / rm.sum(), (s.seed, left)


def test_colour_cues_are_not_channel_symmetric(samples):
    # Skin is redder than it is blue, so a parser fed BGR sees wrong colours.
    for s in samples[:8]:
        skin = s.image[s.labels == FACE].astype(float)
        assert skin[:, 0].mean() > skin[:, 2].mean() + 10


def test_write_dataset_and_truth(tmp_path):
    photos = tmp_path / "photos"
    records = write_dataset(photos, 4, seed=100, width=W, height=H,
                            categories=["upper_body", "lower_body", "dresses", "upper_body"])
    assert [r["category"] for r in records] == ["upper_body", "lower_body", "dresses", "upper_body"]
    files = sorted(p.name for p in photos.iterdir())
    assert files == sorted([f"person_{100 + i:06d}.jpg" for i in range(4)] + ["manifest.csv"])
    with open(photos / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["path"], r["category"]) for r in rows] == [(f"person_{100 + i:06d}.jpg", records[i]["category"])
                                                          for i in range(4)]
    labels, keypoints, category = load_truth(records[2])
    expected = make_person(102, W, H, category="dresses")
    assert np.array_equal(labels, expected.labels) and category == "dresses"
    np.testing.assert_array_equal(keypoints, expected.keypoints)
    photo = np.asarray(Image.open(records[2]["path"]))
    assert photo.shape == (H, W, 3)
    assert np.abs(photo.astype(int) - expected.image).mean() < 6  # JPEG of the same picture


def test_generation_is_fast():
    make_person(0)
    started = time.perf_counter()
    for seed in range(5):
        make_person(seed)
    assert (time.perf_counter() - started) / 5 < 0.5  # ~60 ms on one core at 768x1024
