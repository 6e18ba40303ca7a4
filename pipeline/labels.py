"""Canonical label set (ATR-18), garment tables per category, and mapping of model labels.

Every parser's output is mapped onto one label set at model load, so the mask geometry and the
manifest never depend on which checkpoint produced a parse.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .schema import VtonError

CANONICAL = (
    "background", "hat", "hair", "sunglasses", "upper_clothes", "skirt", "pants", "dress",
    "belt", "left_shoe", "right_shoe", "face", "left_leg", "right_leg", "left_arm", "right_arm",
    "bag", "scarf",
)
LABEL = {name: index for index, name in enumerate(CANONICAL)}
NUM_LABELS = len(CANONICAL)

BACKGROUND = LABEL["background"]
HAT, HAIR, SUNGLASSES = LABEL["hat"], LABEL["hair"], LABEL["sunglasses"]
UPPER_CLOTHES, SKIRT, PANTS, DRESS = (LABEL[n] for n in ("upper_clothes", "skirt", "pants", "dress"))
BELT, LEFT_SHOE, RIGHT_SHOE, FACE = (LABEL[n] for n in ("belt", "left_shoe", "right_shoe", "face"))
LEFT_LEG, RIGHT_LEG, LEFT_ARM, RIGHT_ARM = (LABEL[n] for n in ("left_leg", "right_leg", "left_arm", "right_arm"))
BAG, SCARF = LABEL["bag"], LABEL["scarf"]

CATEGORIES = ("upper_body", "lower_body", "dresses", "other")
GARMENT_CATEGORIES = CATEGORIES[:3]
PASSTHROUGH_CATEGORY = "other"

# Garments that define the mask in the rect, parse and crop styles (docs/masks.md, Styles).
GARMENTS = {
    "upper_body": (UPPER_CLOTHES,),
    "lower_body": (SKIRT, PANTS),
    "dresses": (DRESS, UPPER_CLOTHES, SKIRT, PANTS),
}
# OOTDiffusion's agnostic mask treats a wider set as changeable.
OOTD_GARMENTS = {
    "upper_body": (UPPER_CLOTHES, DRESS),
    "lower_body": (SKIRT, PANTS, LEFT_LEG, RIGHT_LEG),
    "dresses": (DRESS, UPPER_CLOTHES, SKIRT, PANTS),
}


def normalize_category(value) -> str:
    """Return the canonical category for a user or manifest value; ValueError names a bad one."""
    if value is None:
        raise ValueError("missing category")
    text = str(value).strip().lower()
    if text not in CATEGORIES:
        raise ValueError(f"unknown category {str(value)!r} (expected one of {', '.join(CATEGORIES)})")
    return text


# A colour per canonical label for the palette PNGs of parse maps (the ATR/LIP viewer colours).
PALETTE = np.array([
    (0, 0, 0), (128, 0, 0), (255, 0, 0), (0, 85, 0), (170, 0, 51), (255, 85, 0), (0, 0, 85),
    (0, 119, 221), (85, 85, 0), (0, 85, 85), (85, 51, 0), (52, 86, 128), (0, 128, 0),
    (0, 0, 255), (51, 170, 221), (0, 255, 255), (85, 255, 170), (170, 255, 85),
], dtype=np.uint8)

# Sentinels in a schema table for labels without a sided counterpart: they are split into the
# person's left/right label by the side of the body's centre line the pixel lies on.
_SPLIT_ARM, _SPLIT_LEG, _SPLIT_SHOE = "split:arm", "split:leg", "split:shoe"
_SPLITS = {
    _SPLIT_ARM: (LEFT_ARM, RIGHT_ARM),
    _SPLIT_LEG: (LEFT_LEG, RIGHT_LEG),
    _SPLIT_SHOE: (LEFT_SHOE, RIGHT_SHOE),
}

# Each schema: the model's label names in id order, and what each maps onto.
SCHEMAS: dict[str, tuple[tuple[str, str], ...]] = {
    "atr18": tuple((name, name) for name in CANONICAL),
    "lip20": (
        ("background", "background"), ("hat", "hat"), ("hair", "hair"),
        ("glove", _SPLIT_ARM), ("sunglasses", "sunglasses"), ("upper_clothes", "upper_clothes"),
        ("dress", "dress"), ("coat", "upper_clothes"), ("socks", _SPLIT_LEG), ("pants", "pants"),
        ("jumpsuits", "dress"), ("scarf", "scarf"), ("skirt", "skirt"), ("face", "face"),
        ("left_arm", "left_arm"), ("right_arm", "right_arm"), ("left_leg", "left_leg"),
        ("right_leg", "right_leg"), ("left_shoe", "left_shoe"), ("right_shoe", "right_shoe"),
    ),
    "fashn18": (
        ("background", "background"), ("face", "face"), ("hair", "hair"), ("top", "upper_clothes"),
        ("dress", "dress"), ("skirt", "skirt"), ("pants", "pants"), ("belt", "belt"),
        ("bag", "bag"), ("hat", "hat"), ("scarf", "scarf"), ("glasses", "sunglasses"),
        ("arms", _SPLIT_ARM), ("hands", _SPLIT_ARM), ("legs", _SPLIT_LEG), ("feet", _SPLIT_SHOE),
        ("torso", "background"), ("jewelry", "background"),
    ),
}

# Spellings seen in published checkpoints' id2label, normalized by _normalize_name.
_ALIASES = {
    "upper_clothes": ("upperclothes", "upper", "upper_cloth", "top", "tops", "shirt"),
    "sunglasses": ("glasses", "sun_glasses", "eyeglasses"),
    "left_shoe": ("l_shoe", "leftshoe"), "right_shoe": ("r_shoe", "rightshoe"),
    "left_leg": ("l_leg", "leftleg"), "right_leg": ("r_leg", "rightleg"),
    "left_arm": ("l_arm", "leftarm"), "right_arm": ("r_arm", "rightarm"),
    "pants": ("trousers",), "jumpsuits": ("jumpsuit",), "background": ("bg", "null", "none"),
    "torso": ("torso_skin", "torso-skin"), "socks": ("sock",), "glove": ("gloves",),
}


def _normalize_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def _target_of_name() -> dict[str, str]:
    targets: dict[str, str] = {}
    for schema in SCHEMAS.values():
        for name, target in schema:
            targets.setdefault(name, target)
    targets["upper_clothes"] = "upper_clothes"
    for name, spellings in _ALIASES.items():
        for spelling in spellings:
            targets.setdefault(spelling, targets.get(name, name))
    return targets


_TARGET_OF_NAME = _target_of_name()
_GENERIC_NAME = re.compile(r"^label_?\d+$")


class LabelSchemaError(VtonError, ValueError):
    """A checkpoint's labels cannot be mapped onto the canonical set."""


@dataclass(frozen=True)
class LabelMapping:
    """Maps a model's label ids onto canonical ids; built once per model at load."""

    schema: str  # which table produced it: a SCHEMAS key, or "names" for id2label names
    lookup: np.ndarray  # uint8 (num_model_labels,), canonical id; split labels hold 255
    splits: tuple[tuple[int, int, int], ...]  # (model id, left canonical id, right canonical id)

    def apply(self, model_labels: np.ndarray) -> np.ndarray:
        """Model label map(s) (..., H, W) -> canonical label map(s) of the same shape, uint8."""
        canonical = self.lookup[model_labels]
        if not self.splits:
            return canonical
        if canonical.ndim == 2:
            return self._split_sides(model_labels, canonical)
        return np.stack([self._split_sides(m, c) for m, c in zip(model_labels, canonical)])

    def _split_sides(self, model_labels: np.ndarray, canonical: np.ndarray) -> np.ndarray:
        # Split pixels hold 255 here, so they count as person; the background is whatever maps to 0.
        person_columns = np.nonzero(canonical != BACKGROUND)[1]
        centre = person_columns.mean() if person_columns.size else model_labels.shape[1] / 2
        # The person's left side appears on the image's right for a photo taken from the front.
        on_persons_left = np.arange(model_labels.shape[1])[None, :] >= centre
        for model_id, left, right in self.splits:
            where = model_labels == model_id
            canonical[where & on_persons_left] = left
            canonical[where & ~on_persons_left] = right
        return canonical


def _mapping_from_targets(schema: str, targets: list[str]) -> LabelMapping:
    lookup = np.zeros(len(targets), dtype=np.uint8)
    splits = []
    for model_id, target in enumerate(targets):
        if target in _SPLITS:
            lookup[model_id] = 255
            splits.append((model_id, *_SPLITS[target]))
        else:
            lookup[model_id] = LABEL[target]
    return LabelMapping(schema, lookup, tuple(splits))


def mapping_for(id2label: dict, schema: str = "auto") -> LabelMapping:
    """Build the mapping for a checkpoint's id2label.

    schema "auto" maps by label names and refuses names it does not know; a named schema
    (atr18, lip20, fashn18) maps by position, for checkpoints whose names are generic.
    """
    names = [str(id2label[key]) for key in sorted(id2label, key=int)]
    if schema != "auto":
        if schema not in SCHEMAS:
            raise LabelSchemaError(f"unknown label schema {schema!r} (expected auto, {', '.join(SCHEMAS)})")
        table = SCHEMAS[schema]
        if len(table) != len(names):
            raise LabelSchemaError(
                f"--labels {schema} has {len(table)} labels but the checkpoint has {len(names)}: {names}")
        return _mapping_from_targets(schema, [target for _, target in table])
    normalized = [_normalize_name(name) for name in names]
    if all(_GENERIC_NAME.match(name) for name in normalized):
        raise LabelSchemaError(
            f"the checkpoint's labels are generic ({names[0]}, ..., {names[-1]}); "
            f"declare their schema with --labels {'|'.join(SCHEMAS)}")
    unknown = [name for name, norm in zip(names, normalized) if norm not in _TARGET_OF_NAME]
    if unknown:
        raise LabelSchemaError(
            f"cannot map the checkpoint's labels {unknown} onto the canonical set; its labels are "
            f"{names}; declare the schema with --labels {'|'.join(SCHEMAS)}")
    return _mapping_from_targets("names", [_TARGET_OF_NAME[name] for name in normalized])
