"""Canonical labels, mapping of model label sets onto them, and category names."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.labels import (
    BACKGROUND,
    CANONICAL,
    DRESS,
    FACE,
    HAIR,
    LABEL,
    LEFT_ARM,
    LEFT_LEG,
    LEFT_SHOE,
    NUM_LABELS,
    PANTS,
    RIGHT_ARM,
    RIGHT_LEG,
    RIGHT_SHOE,
    SUNGLASSES,
    UPPER_CLOTHES,
    LabelSchemaError,
    mapping_for,
    normalize_category,
)

# id2label as published ATR checkpoints spell it (e.g. mattmdjaga/segformer_b2_clothes).
ATR_NAMES = ["Background", "Hat", "Hair", "Sunglasses", "Upper-clothes", "Skirt", "Pants", "Dress",
             "Belt", "Left-shoe", "Right-shoe", "Face", "Left-leg", "Right-leg", "Left-arm", "Right-arm",
             "Bag", "Scarf"]
# LIP-20 (CIHP-20 shares the names).
LIP_NAMES = ["Background", "Hat", "Hair", "Glove", "Sunglasses", "Upper-clothes", "Dress", "Coat", "Socks",
             "Pants", "Jumpsuits", "Scarf", "Skirt", "Face", "Left-arm", "Right-arm", "Left-leg",
             "Right-leg", "Left-shoe", "Right-shoe"]
# fashn-ai/fashn-human-parser.
FASHN_NAMES = ["background", "face", "hair", "top", "dress", "skirt", "pants", "belt", "bag", "hat", "scarf",
               "glasses", "arms", "hands", "legs", "feet", "torso", "jewelry"]


def id2label(names):
    return {i: name for i, name in enumerate(names)}


def test_canonical_order_is_atr18():
    assert len(CANONICAL) == NUM_LABELS == 18
    assert CANONICAL[0] == "background" and CANONICAL[4] == "upper_clothes" and CANONICAL[17] == "scarf"
    assert (LEFT_SHOE, RIGHT_SHOE, FACE, LEFT_LEG, RIGHT_LEG, LEFT_ARM, RIGHT_ARM) == (9, 10, 11, 12, 13, 14, 15)


def test_atr_spelling_maps_by_name_onto_itself():
    mapping = mapping_for(id2label(ATR_NAMES))
    assert mapping.schema == "names"
    assert mapping.lookup.tolist() == list(range(18))
    assert mapping.splits == ()
    labels = np.arange(18, dtype=np.uint8).reshape(3, 6)
    out = mapping.apply(labels)
    assert out.dtype == np.uint8 and out.shape == labels.shape
    np.testing.assert_array_equal(out, labels)


def test_atr_names_with_string_keys_in_any_order_are_read_by_numeric_id():
    # config.json stores id2label with string keys; "10" must come after "9", not after "1".
    shuffled = {str(i): name for i, name in reversed(list(enumerate(ATR_NAMES)))}
    mapping = mapping_for(shuffled)
    assert mapping.lookup.tolist() == list(range(18))


@pytest.mark.parametrize("spelling",
                         ["Upper-clothes", "upper_clothes", "UPPER CLOTHES", " Upper clothes ", "upperclothes"])
def test_name_spellings_are_normalized(spelling):
    names = list(ATR_NAMES)
    names[4] = spelling
    assert mapping_for(id2label(names)).lookup[4] == UPPER_CLOTHES


def test_lip20_names_map_by_the_documented_rule():
    mapping = mapping_for(id2label(LIP_NAMES))
    lookup = mapping.lookup
    assert lookup[LIP_NAMES.index("Coat")] == UPPER_CLOTHES
    assert lookup[LIP_NAMES.index("Jumpsuits")] == DRESS
    assert lookup[LIP_NAMES.index("Upper-clothes")] == UPPER_CLOTHES
    assert lookup[LIP_NAMES.index("Pants")] == PANTS
    assert lookup[LIP_NAMES.index("Sunglasses")] == SUNGLASSES
    assert lookup[LIP_NAMES.index("Left-arm")] == LEFT_ARM
    assert lookup[LIP_NAMES.index("Right-shoe")] == RIGHT_SHOE
    glove, socks = LIP_NAMES.index("Glove"), LIP_NAMES.index("Socks")
    assert set(mapping.splits) == {(glove, LEFT_ARM, RIGHT_ARM), (socks, LEFT_LEG, RIGHT_LEG)}


def _person(width=20, height=10, face_columns=(8, 12)):
    """A model label map with a face block (the body's centre) and background elsewhere."""
    labels = np.zeros((height, width), dtype=np.uint8)
    labels[0:3, face_columns[0]:face_columns[1]] = 13  # LIP face
    return labels


def test_lip20_glove_and_socks_split_by_side_of_the_body():
    mapping = mapping_for(id2label(LIP_NAMES))
    glove, socks = LIP_NAMES.index("Glove"), LIP_NAMES.index("Socks")
    labels = _person()
    labels[4, 2] = glove   # image left of the centre: the person's RIGHT (photo from the front)
    labels[4, 17] = glove  # image right: the person's LEFT
    labels[8, 3] = socks
    labels[8, 16] = socks
    out = mapping.apply(labels)
    assert out[4, 2] == RIGHT_ARM and out[4, 17] == LEFT_ARM
    assert out[8, 3] == RIGHT_LEG and out[8, 16] == LEFT_LEG
    assert out[0, 9] == FACE and out[9, 0] == BACKGROUND
    assert 255 not in out


def test_fashn18_names_map_and_torso_is_background():
    mapping = mapping_for(id2label(FASHN_NAMES))
    lookup = mapping.lookup
    assert lookup[FASHN_NAMES.index("top")] == UPPER_CLOTHES
    assert lookup[FASHN_NAMES.index("glasses")] == SUNGLASSES
    assert lookup[FASHN_NAMES.index("torso")] == BACKGROUND
    assert lookup[FASHN_NAMES.index("hair")] == HAIR
    split_ids = {model_id for model_id, _, _ in mapping.splits}
    assert split_ids == {FASHN_NAMES.index(n) for n in ("arms", "hands", "legs", "feet")}


def _fashn_person(width, body_columns):
    """fashn label map: a torso over body_columns, one arm/hand/leg/foot on each side of it."""
    f = FASHN_NAMES.index
    labels = np.zeros((12, width), dtype=np.uint8)
    x0, x1 = body_columns
    labels[2:8, x0:x1] = f("torso")
    labels[0:2, x0 + 1:x1 - 1] = f("face")
    labels[2:6, x0 - 2:x0] = f("arms")
    labels[2:6, x1:x1 + 2] = f("arms")
    labels[6, x0 - 2] = labels[6, x1 + 1] = f("hands")
    labels[8:11, x0:x0 + 2] = f("legs")
    labels[8:11, x1 - 2:x1] = f("legs")
    labels[11, x0] = labels[11, x1 - 1] = f("feet")
    return labels


def test_fashn18_unsided_parts_split_by_the_bodys_centre_not_the_images():
    mapping = mapping_for(id2label(FASHN_NAMES))
    # The person stands in the image's left half: the body's centre line is at x = 15, the
    # image's at 50. Parts right of 15 are the person's left even though they lie left of 50.
    labels = _fashn_person(100, (10, 20))
    out = mapping.apply(labels)
    assert out[3, 8] == RIGHT_ARM and out[3, 21] == LEFT_ARM
    assert out[6, 8] == RIGHT_ARM and out[6, 21] == LEFT_ARM  # hands
    assert out[9, 10] == RIGHT_LEG and out[9, 19] == LEFT_LEG
    assert out[11, 10] == RIGHT_SHOE and out[11, 19] == LEFT_SHOE
    assert out[4, 15] == BACKGROUND  # torso skin
    assert out[0, 14] == FACE
    assert 255 not in out


def test_fashn18_split_in_a_batch_uses_each_maps_own_centre():
    mapping = mapping_for(id2label(FASHN_NAMES))
    left_person = _fashn_person(60, (8, 18))
    right_person = _fashn_person(60, (40, 50))
    out = mapping.apply(np.stack([left_person, right_person]))
    assert out.shape == (2, 12, 60)
    assert out[0, 3, 19] == LEFT_ARM and out[0, 3, 6] == RIGHT_ARM
    # In the second map column 19 is far left of that body's centre (45): no arm there, and
    # its arms split around 45.
    assert out[1, 3, 51] == LEFT_ARM and out[1, 3, 38] == RIGHT_ARM
    assert out[1, 3, 19] == BACKGROUND


def test_generic_names_are_refused_with_a_hint_to_declare_the_schema():
    with pytest.raises(LabelSchemaError) as caught:
        mapping_for({i: f"LABEL_{i}" for i in range(18)})
    message = str(caught.value)
    assert "generic" in message and "--labels" in message
    assert "atr18" in message and "lip20" in message and "fashn18" in message


def test_explicit_schema_maps_by_position_whatever_the_names():
    generic20 = {i: f"LABEL_{i}" for i in range(20)}
    mapping = mapping_for(generic20, "lip20")
    assert mapping.schema == "lip20"
    assert mapping.lookup[7] == UPPER_CLOTHES  # coat
    assert mapping.lookup[10] == DRESS  # jumpsuits
    assert {m for m, _, _ in mapping.splits} == {3, 8}
    atr = mapping_for({i: f"LABEL_{i}" for i in range(18)}, "atr18")
    assert atr.lookup.tolist() == list(range(18))
    fashn = mapping_for({i: f"LABEL_{i}" for i in range(18)}, "fashn18")
    assert fashn.lookup[3] == UPPER_CLOTHES and fashn.lookup[16] == BACKGROUND


def test_explicit_schema_of_the_wrong_length_is_refused():
    with pytest.raises(LabelSchemaError) as caught:
        mapping_for({i: f"LABEL_{i}" for i in range(18)}, "lip20")
    assert "20" in str(caught.value) and "18" in str(caught.value)


def test_unknown_schema_name_is_refused():
    with pytest.raises(LabelSchemaError, match="unknown label schema 'cihp'"):
        mapping_for(id2label(ATR_NAMES), "cihp")


def test_unknown_names_are_refused_listing_the_labels():
    names = ["background", "cape", "hair", "Tentacle"]
    with pytest.raises(LabelSchemaError) as caught:
        mapping_for(id2label(names))
    message = str(caught.value)
    assert "'cape'" in message and "'Tentacle'" in message
    assert "'hair'" in message  # the whole label list is shown
    assert "--labels" in message


def test_label_constants_match_names():
    for name, index in LABEL.items():
        assert CANONICAL[index] == name


@pytest.mark.parametrize("value, expected", [
    ("upper_body", "upper_body"), (" Upper_Body ", "upper_body"), ("LOWER_BODY", "lower_body"),
    ("Dresses\t", "dresses"), ("other", "other"),
])
def test_normalize_category(value, expected):
    assert normalize_category(value) == expected


@pytest.mark.parametrize("value", ["shoes", "upper body", "", "dress"])
def test_normalize_category_refuses_unknown_values_naming_them(value):
    with pytest.raises(ValueError) as caught:
        normalize_category(value)
    assert repr(value) in str(caught.value)
    assert "upper_body" in str(caught.value)


def test_normalize_category_refuses_none():
    with pytest.raises(ValueError, match="missing category"):
        normalize_category(None)
