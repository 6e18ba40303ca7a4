"""pipeline/fastmask.py gives today's results (pipeline.masks, compose.composite), bit for bit.

Generated people at 768x1024 and 1536x2048 with their label maps as the mask stage gets them (the
working-size map upsampled with nearest neighbour), the same maps with parser-like speckle, and
hand-made maps for the edges: nobody in the photo, bodies touching the image border, equal-area
regions, more regions than uint16 labels hold.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline import fastmask, masks
from pipeline.labels import NUM_LABELS
from pipeline.testing.synthetic import make_person

WORKING = (576, 768)
STYLES = masks.STYLES
GREEN = (0, 255, 0)


def upsampled(labels: np.ndarray, size) -> tuple[np.ndarray, np.ndarray]:
    """(working-size map, photo-size map) as the mask stage has them."""
    working = cv2.resize(labels, WORKING, interpolation=cv2.INTER_NEAREST)
    return working, cv2.resize(working, size, interpolation=cv2.INTER_NEAREST)


def speckled(labels: np.ndarray, seed: int, share=0.002) -> np.ndarray:
    """Parser-like noise: isolated pixels and small blobs of random labels anywhere."""
    rng = np.random.default_rng(seed)
    noisy = labels.copy()
    spots = rng.random(labels.shape) < share
    noisy[spots] = rng.integers(1, NUM_LABELS, int(spots.sum()))
    for _ in range(6):
        y, x = rng.integers(0, labels.shape[0]), rng.integers(0, labels.shape[1])
        cv2.circle(noisy, (int(x), int(y)), int(rng.integers(2, 12)), int(rng.integers(1, NUM_LABELS)), -1)
    return noisy


def today_composite(photo, mask, colour):
    try:
        from pipeline.compose import FILLS, composite
    except ImportError:  # compose.py being refactored: its definition, verbatim
        out = photo.copy()
        out[mask > 0] = colour
        return out
    fill = next(name for name, value in FILLS.items() if tuple(value) == tuple(colour))
    return composite(photo, mask, fill)


def assert_same_as_today(labels, working, keypoints, category, photo=None):
    size = (labels.shape[1], labels.shape[0])
    person = masks.main_person(labels)
    box = fastmask.body_box(labels)
    fast_person = fastmask.main_person(labels, box)
    assert np.array_equal(fast_person, person)
    assert np.array_equal(fastmask.main_person(labels), person)  # box found inside
    assert np.array_equal(fastmask.label_fractions(labels, box), masks.label_fractions(labels))
    if working is not None:
        assert np.array_equal(fastmask.label_fractions_from_working(working, size), masks.label_fractions(labels))
    for style in STYLES:
        for points in (keypoints, None):
            mask = masks.make_mask(labels, points, category, style, person=person)
            fast = fastmask.make_mask(labels, points, category, style, person=fast_person, box=box)
            assert fast.dtype == mask.dtype and np.array_equal(fast, mask), style
            assert np.array_equal(fastmask.make_mask(labels, points, category, style), mask), style
            region = fastmask.mask_region(style, box)
            bbox = masks.mask_bbox(mask)
            assert fastmask.mask_bbox(fast, region) == bbox
            if photo is not None and style in ("rect", "ootd"):
                expected = today_composite(photo, mask, GREEN)
                assert np.array_equal(fastmask.composite(photo, fast, GREEN, region=bbox), expected)
                assert np.array_equal(fastmask.composite(photo, fast, GREEN), expected)
                own = photo.copy()
                assert fastmask.composite(own, fast, GREEN, region=region, inplace=True) is own
                assert np.array_equal(own, expected)


@pytest.mark.parametrize("seed", range(8))
def test_generated_people_768x1024(seed):
    sample = make_person(seed, 768, 1024)
    working, labels = upsampled(sample.labels, (768, 1024))
    assert_same_as_today(labels, working, sample.keypoints, sample.category, sample.image)


@pytest.mark.parametrize("seed", range(2))
def test_generated_people_1536x2048(seed):
    sample = make_person(seed, 1536, 2048)
    working, labels = upsampled(sample.labels, (1536, 2048))
    assert_same_as_today(labels, working, sample.keypoints, sample.category, sample.image)


@pytest.mark.parametrize("seed", range(4))
def test_parser_like_speckle(seed):
    sample = make_person(seed + 20, 768, 1024)
    working = speckled(cv2.resize(sample.labels, WORKING, interpolation=cv2.INTER_NEAREST), seed)
    labels = cv2.resize(working, (768, 1024), interpolation=cv2.INTER_NEAREST)
    assert_same_as_today(labels, working, sample.keypoints, sample.category)


def test_speckle_at_1536x2048():
    sample = make_person(31, 1536, 2048)
    working = speckled(cv2.resize(sample.labels, WORKING, interpolation=cv2.INTER_NEAREST), 31, share=0.01)
    labels = cv2.resize(working, (1536, 2048), interpolation=cv2.INTER_NEAREST)
    assert_same_as_today(labels, working, sample.keypoints, sample.category)


def test_nobody_in_the_photo():
    labels = np.zeros((1024, 768), np.uint8)
    working = np.zeros((768, 576), np.uint8)
    assert fastmask.body_box(labels) is None
    assert_same_as_today(labels, working, None, "upper_body", np.full((1024, 768, 3), 90, np.uint8))


@pytest.mark.parametrize("height,width", [(1024, 768), (97, 61), (300, 301)])
def test_bodies_touching_the_border_and_odd_sizes(height, width):
    """The closing grows toward the image border (outside counts as 1 for the erosion): the
    person can reach past the body's box there. Random blobs, many touching the edges."""
    rng = np.random.default_rng(height)
    for trial in range(6):
        labels = np.zeros((height, width), np.uint8)
        for _ in range(int(rng.integers(1, 7))):
            centre = (int(rng.integers(-5, width + 5)), int(rng.integers(-5, height + 5)))
            axes = (int(rng.integers(1, max(2, width // 4))), int(rng.integers(1, max(2, height // 3))))
            cv2.ellipse(labels, centre, axes, float(rng.uniform(0, 180)), 0, 360, int(rng.integers(1, NUM_LABELS)), -1)
        labels[rng.random(labels.shape) < 0.001] = 4
        assert_same_as_today(labels, None, None, ("upper_body", "lower_body", "dresses")[trial % 3])


def test_equal_area_regions_pick_the_same_one():
    labels = np.zeros((1024, 768), np.uint8)
    labels[101:301, 51:201] = 4  # two equal rectangles far apart, odd offsets
    labels[601:801, 451:601] = 4
    labels[700:720, 500:520] = 6
    assert_same_as_today(labels, None, None, "upper_body")


def test_more_regions_than_uint16_labels_hold():
    """Height 63: the closing radius rounds to 0, so 80,000 isolated pixels stay 80,000 regions."""
    labels = np.zeros((63, 5000), np.uint8)
    labels[::2, ::2] = 4
    labels[10:30, 100:200] = 4  # the largest
    assert np.array_equal(fastmask.main_person(labels), masks.main_person(labels))


@pytest.mark.parametrize("working_size,photo_size", [
    ((576, 768), (768, 1024)), ((576, 768), (1536, 2048)), ((576, 768), (1000, 1333)),
    ((576, 768), (577, 769)), ((576, 768), (500, 600)), ((576, 768), (3000, 4000)), ((61, 97), (3000, 20)),
])
def test_label_fractions_from_the_working_map(working_size, photo_size):
    rng = np.random.default_rng(photo_size[0])
    working = cv2.resize(rng.integers(0, 24, (12, 9), dtype=np.uint8), working_size, interpolation=cv2.INTER_NEAREST)
    working[rng.random(working.shape) < 0.01] = 200  # ids past the canonical 18 count nowhere
    labels = cv2.resize(working, photo_size, interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(fastmask.label_fractions_from_working(working, photo_size), masks.label_fractions(labels))
    assert np.array_equal(fastmask.label_fractions(labels), masks.label_fractions(labels))
    empty = np.zeros_like(working)
    assert np.array_equal(fastmask.label_fractions_from_working(empty, photo_size),
                          masks.label_fractions(cv2.resize(empty, photo_size, interpolation=cv2.INTER_NEAREST)))


def test_bad_arguments_raise_like_today():
    labels = make_person(1, 96, 128).labels
    for kwargs in ({"category": "other"}, {"style": "bogus"}, {"ootd_variant": "xx"}):
        arguments = dict(category="upper_body", style="rect", ootd_variant="hd") | kwargs
        with pytest.raises(ValueError) as today:
            masks.make_mask(labels, None, arguments["category"], arguments["style"],
                            ootd_variant=arguments["ootd_variant"])
        with pytest.raises(ValueError) as fast:
            fastmask.make_mask(labels, None, arguments["category"], arguments["style"],
                               ootd_variant=arguments["ootd_variant"])
        assert str(fast.value) == str(today.value)
    empty = np.zeros((128, 96), np.uint8)
    with pytest.raises(ValueError, match="no mask"):
        fastmask.make_mask(empty, None, "other", "rect")


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (40, 7), (5, 300)])
def test_label_fractions_from_working_for_photos_smaller_than_the_working_map(size):
    working = np.random.default_rng(3).integers(0, 20, (64, 48), dtype=np.uint8)
    full = cv2.resize(working, size, interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(fastmask.label_fractions_from_working(working, size), masks.label_fractions(full))


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (4, 1), (2, 2)])
def test_tiny_maps(shape):
    labels = np.full(shape, 4, np.uint8)
    labels.flat[0] = 0
    assert fastmask.body_box(labels) == masks.mask_bbox(labels != 0)
    assert np.array_equal(fastmask.main_person(labels), masks.main_person(labels))
    for style in ("rect", "crop"):
        assert np.array_equal(fastmask.make_mask(labels, None, "upper_body", style),
                              masks.make_mask(labels, None, "upper_body", style))
