"""Mask geometry on hand-made label maps: a figure of rectangles at known places.

Coordinates are written at 512 px height (384 wide) and scaled, so every expectation below can
be checked at any size. At 512 px the figure is (x0, y0, x1, y1, end-exclusive):

    hair 160,25-224,40   face 167,40-217,100   upper_clothes 132,100-252,260
    right_arm 102,105-132,300 (image left)      left_arm 252,105-282,300
    pants 137,260-247,400   legs 142,400-187,470 / 197,400-242,470   shoes down to 490
    bag 282,230-322,290 (touching the left arm)
    keypoints: shoulders (117|267, 115), elbows (.., 200), wrists (.., 270)
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline import masks
from pipeline.labels import (
    BAG,
    DRESS,
    FACE,
    HAIR,
    LEFT_ARM,
    LEFT_LEG,
    LEFT_SHOE,
    PANTS,
    RIGHT_ARM,
    RIGHT_LEG,
    RIGHT_SHOE,
    SCARF,
    SKIRT,
    UPPER_CLOTHES,
)

CATEGORIES = ("upper_body", "lower_body", "dresses")
BOXES = (
    (HAIR, (160, 25, 224, 40)), (FACE, (167, 40, 217, 100)), (UPPER_CLOTHES, (132, 100, 252, 260)),
    (RIGHT_ARM, (102, 105, 132, 300)), (LEFT_ARM, (252, 105, 282, 300)), (PANTS, (137, 260, 247, 400)),
    (RIGHT_LEG, (142, 400, 187, 470)), (LEFT_LEG, (197, 400, 242, 470)),
    (RIGHT_SHOE, (142, 470, 187, 490)), (LEFT_SHOE, (197, 470, 242, 490)), (BAG, (282, 230, 322, 290)),
)
KEYPOINTS = {0: (192, 70), 1: (192, 105), 2: (117, 115), 3: (117, 200), 4: (117, 270),
             5: (267, 115), 6: (267, 200), 7: (267, 270), 8: (165, 260), 11: (219, 260),
             9: (165, 330), 12: (219, 330), 10: (165, 460), 13: (219, 460)}
RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST, LEFT_WRIST = 2, 3, 4, 7


def figure(height=512, width=None, boxes=BOXES, keypoints=KEYPOINTS):
    """(labels, keypoints) of the figure drawn at ``height``; keypoints NaN where not given."""
    scale = height / 512
    width = int(round(384 * scale)) if width is None else width
    labels = np.zeros((height, width), np.uint8)
    for label, box in boxes:
        x0, y0, x1, y1 = (int(round(v * scale)) for v in box)
        labels[y0:y1, x0:x1] = label
    points = np.full((18, 3), np.nan, np.float32)
    for index, (x, y) in keypoints.items():
        points[index] = (x * scale, y * scale, 0.9)
    return labels, points


def box(shape, x0, y0, x1, y1):
    out = np.zeros(shape, bool)
    out[y0:y1, x0:x1] = True
    return out


def protected(labels, category):
    return np.isin(labels, masks.ALWAYS_PROTECTED + masks.CATEGORY_PROTECTED[category])


def mask_of(labels, keypoints, category, style, **options):
    mask = masks.make_mask(labels, keypoints, category, style, **options)
    assert mask.dtype == np.uint8 and mask.shape == labels.shape
    assert set(np.unique(mask)) <= {0, 255}
    return mask > 0


def components(mask):
    return cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1


# ----------------------------------------------------------------------------- rect and crop

def test_rect_is_the_union_of_per_label_rectangles():
    labels, points = figure()
    torso, pants = box(labels.shape, 132, 100, 252, 260), box(labels.shape, 137, 260, 247, 400)
    assert np.array_equal(mask_of(labels, points, "upper_body", "rect"), torso)
    assert np.array_equal(mask_of(labels, points, "lower_body", "rect"), pants)
    dresses = mask_of(labels, points, "dresses", "rect")
    assert np.array_equal(dresses, torso | pants)
    assert not dresses[300, 134]  # inside the garments' common bounding box, outside both rectangles


def test_rect_never_masks_shoes():
    boxes = ((SKIRT, (100, 300, 200, 400)), (LEFT_SHOE, (150, 380, 170, 400)))
    labels, _ = figure(boxes=boxes)
    mask = mask_of(labels, None, "lower_body", "rect")
    assert np.array_equal(mask, box(labels.shape, 100, 300, 200, 400) & (labels != LEFT_SHOE))


def test_crop_is_the_filled_box_of_all_garment_pixels():
    labels, points = figure()
    assert np.array_equal(mask_of(labels, points, "upper_body", "crop"), box(labels.shape, 132, 100, 252, 260))
    dresses = mask_of(labels, points, "dresses", "crop")
    assert np.array_equal(dresses, box(labels.shape, 132, 100, 252, 400))
    assert masks.mask_bbox(dresses.astype(np.uint8) * 255) == (132, 100, 252, 400)


# ----------------------------------------------------------------------------- parse

@pytest.mark.parametrize("height", [512, 1024])
@pytest.mark.parametrize("category, garment_box", [
    ("upper_body", (132, 100, 252, 260)), ("lower_body", (137, 260, 247, 400))])
def test_parse_is_garments_grown_by_the_margin_minus_protected(height, category, garment_box):
    labels, points = figure(height)
    scale = height / 512
    x0, y0, x1, y1 = (v * scale for v in garment_box)
    m = masks.PARSE_MARGIN * scale  # a square grows by the margin on each side
    grown = box(labels.shape, int(x0 - m), int(y0 - m), int(x1 + m), int(y1 + m))
    expected = grown & ~protected(labels, category)
    assert np.array_equal(mask_of(labels, points, category, "parse"), expected)
    # the keypoints play no part
    assert np.array_equal(mask_of(labels, None, category, "parse"), expected)


# ----------------------------------------------------------------------------- ootd

@pytest.mark.parametrize("category", CATEGORIES)
def test_ootd_covers_its_garments_and_is_one_region_without_open_holes(category):
    labels, points = figure()
    mask = mask_of(labels, points, category, "ootd")
    garments = np.isin(labels, masks.OOTD_GARMENTS[category])
    assert mask[garments & ~protected(labels, category)].all()
    assert components(mask) == 1
    # holes only where protected pixels are (none in this figure's mask interior)
    assert np.array_equal(masks._fill_holes(mask), mask)


def test_ootd_upper_body_arm_band_reach_hd_and_dc():
    labels, points = figure()
    hd = mask_of(labels, points, "upper_body", "ootd")
    dc = mask_of(labels, points, "upper_body", "ootd", ootd_variant="dc")
    # right elbow at x=117: half band 30 (hd) / 22.5 (dc), plus 8 px of dilation
    assert hd[200, 80] and not hd[200, 77]
    assert dc[200, 88] and not dc[200, 84] and not dc[200, 80]
    assert dc.sum() < hd.sum()
    # the disc at the shoulder (117, 115) reaches up to 115 - 30 - 8 = 77
    assert hd[80, 117] and not hd[75, 117]
    # the band runs past the wrist to 200 + 1.2 * 70 = 284 (+ 8): beside the hand, not on it
    assert hd[290, 95] and not hd[295, 95]


@pytest.mark.parametrize("category", ["upper_body", "dresses"])
def test_ootd_keeps_hands_outside_the_arm_band(category):
    labels, points = figure()
    mask = mask_of(labels, points, category, "ootd")
    hands = (labels == RIGHT_ARM) | (labels == LEFT_ARM)
    hands[:288] = False  # arm pixels past the extended wrist (y 284)
    assert hands.any() and not mask[hands].any()
    assert mask[250, 117] and mask[250, 267]  # the forearm inside the band is masked


def test_ootd_without_pose_uses_the_parsed_arms():
    labels, _ = figure()
    mask = mask_of(labels, None, "upper_body", "ootd")
    arms = (labels == RIGHT_ARM) | (labels == LEFT_ARM)
    assert mask[arms].all()  # hands included: nothing tells them apart without a wrist
    assert not mask[200, 80]  # no band wider than the arm (102 - 8 = 94 is the reach)
    assert mask[200, 95]


@pytest.mark.parametrize("missing", [RIGHT_WRIST, RIGHT_ELBOW])
def test_ootd_missing_wrist_or_elbow_uses_that_arms_label(missing):
    labels, points = figure()
    points[missing] = np.nan
    mask = mask_of(labels, points, "upper_body", "ootd")
    assert mask[295, 117]  # right hand: part of the parsed arm, masked
    assert not mask[295, 267]  # left hand: outside the left band, kept
    assert not mask[:70, :75].any()  # nothing drawn toward the image corner


def test_ootd_openpose_zero_triplet_counts_as_missing():
    labels, points = figure()
    points[RIGHT_ELBOW] = 0
    mask = mask_of(labels, points, "upper_body", "ootd")
    assert not mask[:70, :75].any()
    assert mask[295, 117]


def test_ootd_missing_shoulder_skips_the_segment_and_keeps_the_upper_arm():
    labels, points = figure()
    points[RIGHT_SHOULDER] = np.nan
    mask = mask_of(labels, points, "upper_body", "ootd")
    assert not mask[:70, :75].any()  # the reference drew shoulder -> (0, 0)
    assert not mask[80, 117]  # no shoulder disc
    assert mask[250, 90]  # elbow -> wrist band still drawn, beyond the arm's own pixels
    assert mask[150, 110]  # upper arm: parsed pixels, not protected as a hand
    assert not mask[295, 117]  # the hand still is


def test_ootd_lower_body_masks_legs_keeps_top_arms_and_shoes():
    labels, points = figure()
    mask = mask_of(labels, points, "lower_body", "ootd")
    legs = (labels == LEFT_LEG) | (labels == RIGHT_LEG)
    assert mask[legs].all()
    keep = np.isin(labels, (UPPER_CLOTHES, LEFT_ARM, RIGHT_ARM, LEFT_SHOE, RIGHT_SHOE, FACE, BAG))
    assert not mask[keep].any()
    assert not mask[:255].any()  # no arm bands for lower_body; the top is protected


def test_ootd_protected_pixel_enclosed_by_the_mask_stays_a_hole():
    boxes = BOXES + ((BAG, (170, 150, 200, 180)),)  # a bag held in front of the shirt
    labels, points = figure(boxes=boxes)
    mask = mask_of(labels, points, "upper_body", "ootd")
    assert not mask[labels == BAG].any()
    assert mask[145, 185] and mask[185, 185]


# ----------------------------------------------------------------------------- all styles

@pytest.mark.parametrize("style", ["ootd", "parse"])
@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("pose", [True, False])
def test_protected_pixels_are_never_masked(style, category, pose):
    labels, points = figure()
    mask = mask_of(labels, points if pose else None, category, style)
    assert mask.any() and not mask[protected(labels, category)].any()


@pytest.mark.parametrize("style", masks.STYLES)
@pytest.mark.parametrize("category", CATEGORIES)
def test_scale_invariance(style, category):
    small_labels, small_points = figure(512)
    large_labels, large_points = figure(1024)
    small = mask_of(small_labels, small_points, category, style)
    large = mask_of(large_labels, large_points, category, style).astype(np.uint8) * 255
    shrunk = cv2.resize(large, small.shape[::-1], interpolation=cv2.INTER_AREA) >= 128
    iou = (small & shrunk).sum() / (small | shrunk).sum()
    assert iou >= 0.98, iou


def test_constants_are_relative_to_height():
    # A fixed 10 px margin at both sizes would fail the invariance above; check the reach doubles.
    for height in (512, 1024):
        labels, _ = figure(height)
        bbox = masks.mask_bbox(masks.make_mask(labels, None, "upper_body", "parse"))
        assert bbox[0] == 122 * height // 512


@pytest.mark.parametrize("style", masks.STYLES)
def test_other_people_are_not_masked(style):
    main, main_points = figure(512)
    other, _ = figure(256)  # a person half the size, standing to the right
    labels = np.zeros((512, 384 + 192), np.uint8)
    labels[:, :384] = main
    labels[:256, 384:] = other
    person = masks.main_person(labels)
    assert person[:, :384].sum() > 0 and not person[:, 384:].any()
    for category in CATEGORIES:
        mask = mask_of(labels, main_points, category, style)
        assert mask.any() and not mask[:, 384 + 40:].any()
        alone = mask_of(main, main_points, category, style)
        assert np.array_equal(mask[:, :384], alone)


def test_a_neighbour_within_reach_is_not_masked():
    neighbour = (UPPER_CLOTHES, (295, 100, 384, 200))  # 13 px right of the left arm: apart
    labels, points = figure(boxes=BOXES + (neighbour,))
    assert not masks.main_person(labels)[150, 300]
    mask = mask_of(labels, points, "upper_body", "ootd")
    assert mask[150, 290]  # the arm band reaches across the gap...
    assert not mask[100:200, 295:].any()  # ...but not onto the other person


def test_main_person_bridges_a_thin_seam_but_not_a_gap():
    labels, _ = figure()
    seam = labels.copy()
    seam[259:261] = 0  # a 2 px background line between shirt and pants
    assert masks.main_person(seam)[300, 190] and masks.main_person(seam)[150, 190]
    apart = labels.copy()
    apart[240:290] = 0  # 50 px: two separate pieces, the larger (upper) one wins
    assert np.count_nonzero(apart[:240]) > np.count_nonzero(apart[290:])
    person = masks.main_person(apart)
    assert person[150, 190] and not person[350, 190]


# ----------------------------------------------------------------------------- degenerate inputs

@pytest.mark.parametrize("style", masks.STYLES)
@pytest.mark.parametrize("category", CATEGORIES)
def test_all_background_gives_an_empty_mask(style, category):
    labels = np.zeros((64, 48), np.uint8)
    points = np.full((18, 3), np.nan, np.float32)
    for keypoints in (points, None):
        mask = masks.make_mask(labels, keypoints, category, style)
        assert mask.shape == labels.shape and not mask.any()
    # nobody in the parse: no_person (the pose flag is not added on top of it)
    assert masks.quality_flags(labels, points, 0, category, mask) == ["no_person", "no_garment", "mask_tiny"]


@pytest.mark.parametrize("style", masks.STYLES)
@pytest.mark.parametrize("value", [0, UPPER_CLOTHES, RIGHT_ARM])
def test_one_pixel_images(style, value):
    labels = np.full((1, 1), value, np.uint8)
    points = np.zeros((18, 3), np.float32)
    points[RIGHT_SHOULDER:RIGHT_WRIST + 1] = (0.2, 0.3, 1.0)  # present, all on one spot
    for keypoints in (points, None):
        for category in CATEGORIES:
            mask = masks.make_mask(labels, keypoints, category, style)
            assert mask.shape == (1, 1)
    # without pose, ootd takes the parsed arm as the arm band
    masked = value == UPPER_CLOTHES or (style == "ootd" and value == RIGHT_ARM)
    assert masks.make_mask(labels, None, "upper_body", style)[0, 0] == (255 if masked else 0)


def test_a_garment_split_in_two():
    boxes = BOXES + ((SCARF, (132, 170, 252, 186)),)  # a scarf across the shirt
    labels, points = figure(boxes=boxes)
    assert np.array_equal(mask_of(labels, points, "upper_body", "rect"), box(labels.shape, 132, 100, 252, 260))
    assert np.array_equal(mask_of(labels, points, "upper_body", "crop"), box(labels.shape, 132, 100, 252, 260))
    ootd = mask_of(labels, points, "upper_body", "ootd")
    assert components(ootd) == 1 and ootd[labels == UPPER_CLOTHES].all()
    # two far-apart pieces of one garment with nothing between: the largest piece wins in ootd
    far = np.zeros((512, 384), np.uint8)
    far[50:150, 50:150] = UPPER_CLOTHES
    far[300:350, 250:300] = UPPER_CLOTHES
    for style in masks.STYLES:
        assert mask_of(far, None, "upper_body", style)[100, 100]
    assert not mask_of(far, None, "upper_body", "ootd")[325, 275]


def test_inputs_are_not_modified():
    labels, points = figure()
    labels_before, points_before = labels.copy(), points.copy()
    for style in masks.STYLES:
        masks.make_mask(labels, points, "dresses", style)
    assert np.array_equal(labels, labels_before)
    assert np.array_equal(points, points_before, equal_nan=True)


@pytest.mark.parametrize("call, message", [
    (lambda m, k: masks.make_mask(m, k, "other", "ootd"), "passed through"),
    (lambda m, k: masks.make_mask(m, k, "hats", "ootd"), "unknown category"),
    (lambda m, k: masks.make_mask(m, k, "upper_body", "blob"), "unknown mask style"),
    (lambda m, k: masks.make_mask(m, k, "upper_body", "ootd", ootd_variant="xl"), "ootd_variant"),
    (lambda m, k: masks.make_mask(m, k[:17], "upper_body", "ootd"), r"\(18, 3\)"),
    (lambda m, k: masks.make_mask(m[None], k, "upper_body", "ootd"), "2-D"),
    (lambda m, k: masks.quality_flags(m, k, 1, "other", m), "passed through"),
])
def test_bad_arguments_raise_value_error(call, message):
    labels, points = figure(64)
    with pytest.raises(ValueError, match=message):
        call(labels, points)


def test_category_spelling_is_normalized():
    labels, points = figure()
    assert np.array_equal(masks.make_mask(labels, points, " Upper_Body ", "rect"),
                          masks.make_mask(labels, points, "upper_body", "rect"))


# ----------------------------------------------------------------------------- flags and stats

def test_flags_clean_figure_and_pose_flags_omitted_without_pose():
    labels, points = figure()
    mask = masks.make_mask(labels, points, "upper_body", "ootd")
    assert masks.quality_flags(labels, points, 1, "upper_body", mask) == []
    empty = np.zeros_like(mask)
    assert masks.quality_flags(labels, None, None, "upper_body", empty) == ["mask_tiny"]
    assert masks.quality_flags(labels, points, 3, "upper_body", empty) == ["mask_tiny", "multi_person"]


def test_flag_no_pose_person_from_keypoints_or_count():
    # the parse shows a person (no no_person) but the pose model found nobody
    labels, points = figure()
    mask = masks.make_mask(labels, points, "upper_body", "ootd")
    assert not masks.is_no_person(labels)
    missing = np.full((18, 3), np.nan, np.float32)
    assert masks.quality_flags(labels, missing, None, "upper_body", mask) == ["no_pose_person"]
    assert masks.quality_flags(labels, np.zeros((18, 3), np.float32), 0, "upper_body", mask) == ["no_pose_person"]


def test_flag_no_person_from_the_parse_with_or_without_pose():
    # a garment alone: no head on a body, so no person whatever the pose stage says
    labels = np.zeros((512, 384), np.uint8)
    labels[100:400, 120:264] = DRESS
    empty = masks.make_mask(labels, None, "dresses", "rect", no_person=True)
    assert not empty.any()
    assert masks.quality_flags(labels, None, None, "dresses", empty) == ["no_person", "mask_tiny"]
    assert masks.quality_flags(labels, figure()[1], 1, "dresses", empty) == ["no_person", "mask_tiny"]


def test_flag_mask_huge():
    labels, points = figure()
    full = np.full(labels.shape, 255, np.uint8)
    assert masks.quality_flags(labels, points, 1, "upper_body", full) == ["mask_huge"]


def test_flag_category_mismatch():
    # a dress: more dress than upper_clothes when upper_body is asked (with hair and arms: a person)
    boxes = ((HAIR, (160, 25, 224, 40)), (FACE, (167, 40, 217, 100)), (UPPER_CLOTHES, (132, 100, 252, 130)),
             (DRESS, (132, 130, 252, 400)), (RIGHT_ARM, (102, 105, 132, 300)), (LEFT_ARM, (252, 105, 282, 300)))
    labels, points = figure(boxes=boxes)
    mask = masks.make_mask(labels, points, "upper_body", "ootd")
    assert masks.quality_flags(labels, points, 1, "upper_body", mask) == ["category_mismatch"]
    mask = masks.make_mask(labels, points, "lower_body", "ootd")
    assert masks.quality_flags(labels, points, 1, "lower_body", mask) == ["no_garment", "category_mismatch",
                                                                          "mask_tiny"]
    mask = masks.make_mask(labels, points, "dresses", "ootd")
    assert masks.quality_flags(labels, points, 1, "dresses", mask) == []
    # a shirt over long pants is an ordinary upper_body photo, though the pants are larger
    long_pants = tuple((label, (137, 260, 247, 470)) if label == PANTS else (label, where)
                       for label, where in BOXES if label not in (LEFT_LEG, RIGHT_LEG))
    plain, points = figure(boxes=long_pants)
    assert (plain == PANTS).sum() > (plain == UPPER_CLOTHES).sum()
    mask = masks.make_mask(plain, points, "upper_body", "ootd")
    assert "category_mismatch" not in masks.quality_flags(plain, points, 1, "upper_body", mask)
    # ...but asked as a dress, a two-piece outfit is a mismatch
    mask = masks.make_mask(plain, points, "dresses", "ootd")
    assert masks.quality_flags(plain, points, 1, "dresses", mask) == ["category_mismatch"]


def test_flags_count_only_the_main_person():
    main, points = figure(512)
    labels = np.zeros((512, 384 + 192), np.uint8)
    labels[:, :384] = main
    labels[50:250, 400:560] = DRESS  # someone else's dress, bigger than nothing but not the main person
    mask = masks.make_mask(labels, points, "upper_body", "ootd")
    assert masks.quality_flags(labels, points, 2, "upper_body", mask) == ["multi_person"]


def test_flag_order_is_the_documented_one():
    missing = np.full((18, 3), np.nan, np.float32)
    labels = np.zeros((64, 48), np.uint8)
    labels[10:50, 10:40] = DRESS
    flags = masks.quality_flags(labels, missing, 2, "upper_body", np.zeros_like(labels))
    assert flags == ["no_person", "no_garment", "category_mismatch", "mask_tiny", "multi_person"]
    assert flags == [flag for flag in masks.FLAGS if flag in flags]
    # a person in a dress asked as upper_body, whom the pose model missed
    dressed, _ = figure(boxes=tuple((DRESS, where) if label == UPPER_CLOTHES else (label, where)
                                    for label, where in BOXES))
    flags = masks.quality_flags(dressed, missing, 2, "upper_body", np.zeros_like(dressed))
    assert flags == ["no_garment", "category_mismatch", "mask_tiny", "no_pose_person", "multi_person"]
    assert flags == [flag for flag in masks.FLAGS if flag in flags]


def test_mask_bbox_is_end_exclusive():
    mask = np.zeros((10, 12), np.uint8)
    assert masks.mask_bbox(mask) is None
    mask[2:5, 3:7] = 255
    assert masks.mask_bbox(mask) == (3, 2, 7, 5)
    mask[:] = 255
    assert masks.mask_bbox(mask) == (0, 0, 12, 10)


def test_label_fractions():
    labels, _ = figure()
    fractions = masks.label_fractions(labels)
    assert fractions.dtype == np.float32 and fractions.shape == (18,)
    assert fractions.sum() == pytest.approx(1.0)
    assert fractions[UPPER_CLOTHES] == pytest.approx(120 * 160 / (384 * 512))
    assert fractions[SKIRT] == 0
    assert masks.label_fractions(np.zeros((0, 0), np.uint8)).sum() == 0
