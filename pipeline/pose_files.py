"""Keypoint files: writing OpenPose JSON, and reading the keypoints datasets ship with.

Readers (``--pose-from DIR`` uses these instead of running the model):

* OpenPose JSON, ``{"people": [{"pose_keypoints_2d": [x, y, score, ...]}, ...]}`` (our own
  ``pose/<id>.json``, VITON-HD's ``openpose_json/<name>_keypoints.json``, OpenPose's
  ``--write_json`` output). 54 values are COCO-18; 75 are BODY_25, converted to COCO-18 by
  dropping MidHip and the six foot points. A part is missing when its score is <= 0 (OpenPose
  writes 0, 0, 0) or a value is not finite. ``people[0]`` is the main person (OpenPose sorts
  nothing; our files and the datasets' loaders take people[0]).
  Pixel frame: the file's ``canvas_width``/``canvas_height`` when present (our files write the
  photo's size there; ControlNet's pose editor does the same); otherwise, if every present
  coordinate lies in [0, 1], normalized coordinates (OpenPose's ``--keypoint_scale 3/4``);
  otherwise the photo's own pixels (VITON-HD's files are in the pixels of its 768x1024 photos).
* DressCode ``keypoints/<name>_2.json``: ``{"keypoints": [[x, y, score, id], ...]}``, COCO-18
  (rows placed by their id column when it holds 0..17). Pixel frame: a fixed 384x512 canvas, as
  DressCode's own loader reads them (``x * width / 384``, ``y * height / 512``), i.e. half the
  resolution of its 768x1024 photos. A part is missing unless x > 0 and y > 0 (the loader
  draws only points > 1 at 768 wide) and values are finite.

A file's frame is mapped to the photo by plain scaling (``x * photo_w / frame_w``), as the
datasets' loaders do.
"""
from __future__ import annotations

import json
import math
import os
import time
from functools import lru_cache

import numpy as np

from pipeline.schema import NUM_KEYPOINTS, VtonError

NUM_PARTS = NUM_KEYPOINTS
# COCO-18 index -> BODY_25 index (BODY_25 adds MidHip at 8 and six foot points at 19..24).
BODY25_TO_COCO18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
DRESSCODE_FRAME = (384, 512)             # width, height
KEYPOINT_DIRS = ("openpose_json", "keypoints", "pose", "openpose")
IMAGE_DIRS = ("image", "images", "img", "imgs")
NO_FILE_FLAG = "no_keypoints_file"


class KeypointsFileError(VtonError, ValueError):
    """A keypoint file that exists but cannot be read as keypoints; names the file and why."""


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def _flat(kp: np.ndarray, decimals: int) -> list:
    kp = np.asarray(kp, np.float64).reshape(NUM_PARTS, 3)
    out = []
    for x, y, s in kp:
        if not (math.isfinite(x) and math.isfinite(y)):
            out += [0, 0, 0]
        else:
            out += [round(float(x), decimals), round(float(y), decimals),
                    round(float(s), 4) if math.isfinite(s) else 0]
    return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), equal_nan=True))


def to_openpose_json(people, main_index_or_keypoints=0, *, include_all: bool = True,
                     canvas_size=None, decimals: int = 2) -> dict:
    """OpenPose-format dict: ``{"version": 1.3, "people": [{"pose_keypoints_2d": [...]}, ...]}``.

    people: sequence of (18, 3) arrays (x, y, score, NaN missing) in the pixels the file should
    hold (the photo's). main_index_or_keypoints: index of the main person in ``people``, or the
    main person's (18, 3) keypoints themselves (listed first; an equal entry in ``people`` is not
    repeated), or None to keep ``people``'s order. The main person comes first; the others follow
    when include_all. Missing parts are 0, 0, 0; a main person with no part found is left out, so
    an image without people gives ``"people": []`` (OpenPose's own output for that case).
    canvas_size: (width, height) written as canvas_width/canvas_height, so readers know the frame.
    """
    people = [np.asarray(p, np.float32).reshape(NUM_PARTS, 3) for p in (people if people is not None else [])]
    if main_index_or_keypoints is None:
        ordered = people
    elif isinstance(main_index_or_keypoints, (int, np.integer)):
        i = int(main_index_or_keypoints)
        if people and not -len(people) <= i < len(people):
            raise IndexError(f"main index {i} out of range for {len(people)} people")
        ordered = [people[i]] + [p for j, p in enumerate(people) if j != i % len(people)] if people else []
    else:
        main = np.asarray(main_index_or_keypoints, np.float32).reshape(NUM_PARTS, 3)
        rest = list(people)
        for j, p in enumerate(rest):
            if _same(p, main):
                del rest[j]
                break
        ordered = [main] + rest
    if not include_all:
        ordered = ordered[:1]
    ordered = [p for p in ordered if np.isfinite(p[:, 0]).any()]
    doc = {"version": 1.3,
           "people": [{"pose_keypoints_2d": _flat(p, decimals)} for p in ordered]}
    if canvas_size is not None:
        doc["canvas_width"], doc["canvas_height"] = int(canvas_size[0]), int(canvas_size[1])
    return doc


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------

def _openpose_person(values, path) -> np.ndarray:
    arr = np.asarray(values, np.float64).ravel()
    if arr.size == NUM_PARTS * 3:
        kp = arr.reshape(NUM_PARTS, 3)
    elif arr.size == 25 * 3:
        kp = arr.reshape(25, 3)[list(BODY25_TO_COCO18)]
    else:
        raise KeypointsFileError(f"{path}: pose_keypoints_2d has {arr.size} values; expected 54 "
                                 "(COCO-18) or 75 (BODY_25)")
    kp = kp.copy()
    missing = ~(np.isfinite(kp).all(1) & (kp[:, 2] > 0))
    kp[missing] = np.nan
    return kp


def _dresscode_person(values, path) -> np.ndarray:
    arr = np.asarray(values, np.float64)
    if arr.ndim == 1:
        if arr.size % 4:
            raise KeypointsFileError(f"{path}: 'keypoints' has {arr.size} values, not rows of 4")
        arr = arr.reshape(-1, 4)
    if arr.ndim != 2 or arr.shape[1] not in (3, 4) or arr.shape[0] < NUM_PARTS:
        raise KeypointsFileError(f"{path}: 'keypoints' should be 18 rows of [x, y, score, id], "
                                 f"got shape {arr.shape}")
    kp = np.full((NUM_PARTS, 3), np.nan)
    ids = arr[:, 3] if arr.shape[1] == 4 else None
    if ids is not None and np.isfinite(ids).all() \
            and sorted(ids[:NUM_PARTS].astype(int).tolist()) == list(range(NUM_PARTS)) \
            and np.all(ids[:NUM_PARTS] == np.round(ids[:NUM_PARTS])):
        rows = arr[:NUM_PARTS][np.argsort(ids[:NUM_PARTS], kind="stable")]
    else:
        rows = arr[:NUM_PARTS]
    kp[:] = rows[:, :3]
    present = np.isfinite(kp).all(1) & (kp[:, 0] > 0) & (kp[:, 1] > 0)
    kp[~present] = np.nan
    return kp


def read_keypoints_file(path) -> tuple[np.ndarray, tuple[float, float]]:
    """All people in a keypoint file, in the file's frame: ((P, 18, 3) float64, (frame_w, frame_h)).

    frame (0, 0) means "the photo's own pixels". Raises KeypointsFileError.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        raise KeypointsFileError(f"{path}: not readable as JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise KeypointsFileError(f"{path}: expected a JSON object with 'people' (OpenPose) or "
                                 "'keypoints' (DressCode)")
    if "people" in doc:
        people = doc["people"] or []
        try:
            arr = [_openpose_person(p["pose_keypoints_2d"], path) for p in people]
        except (KeyError, TypeError) as exc:
            raise KeypointsFileError(f"{path}: an entry of 'people' has no pose_keypoints_2d") from exc
        arr = np.stack(arr) if arr else np.zeros((0, NUM_PARTS, 3))
        if doc.get("canvas_width") and doc.get("canvas_height"):
            frame = (float(doc["canvas_width"]), float(doc["canvas_height"]))
        else:
            xy = arr[..., :2][np.isfinite(arr[..., 0])]
            frame = (1.0, 1.0) if xy.size and xy.min() >= 0 and xy.max() <= 1.0 else (0.0, 0.0)
        return arr, frame
    if "keypoints" in doc:
        try:
            arr = _dresscode_person(doc["keypoints"], path)[None]
        except (TypeError, ValueError) as exc:
            if isinstance(exc, KeypointsFileError):
                raise
            raise KeypointsFileError(f"{path}: 'keypoints' is not a numeric table ({exc})") from exc
        return arr, tuple(float(v) for v in DRESSCODE_FRAME)
    raise KeypointsFileError(f"{path}: no 'people' (OpenPose) or 'keypoints' (DressCode) key; "
                             f"found {sorted(doc)[:6]}")


def load_keypoints_file(path, photo_size, all_people: bool = False) -> np.ndarray:
    """Keypoints from a dataset's file in the photo's pixels: float32 (18, 3), NaN missing.

    photo_size: (width, height) of the photo after EXIF orientation. The file's frame is
    determined as described in the module docstring. A file with no person gives all NaN.
    all_people: return every person, (P, 18, 3), main first.
    """
    people, (fw, fh) = read_keypoints_file(path)
    people = people.copy()
    if fw and fh:
        people[..., 0] *= photo_size[0] / fw
        people[..., 1] *= photo_size[1] / fh
    people = people.astype(np.float32)
    if all_people:
        return people
    if len(people) == 0:
        return np.full((NUM_PARTS, 3), np.nan, np.float32)
    return people[0]


@lru_cache(maxsize=256)
def _listing_at(folder: str, mtime_ns: int) -> frozenset:
    try:
        return frozenset(os.listdir(folder))
    except OSError:
        return frozenset()


def _exists(path: str) -> bool:
    """Whether a file exists, from a cached listing of its folder (one stat per lookup instead
    of one per candidate name; the folder's mtime keys the cache, so new files are seen)."""
    folder, name = os.path.split(path)
    try:
        mtime = os.stat(folder).st_mtime_ns
    except OSError:
        return False
    if time.time_ns() - mtime < 2_000_000_000:       # changed just now: mtime ticks are coarse
        return os.path.isfile(path)
    return name in _listing_at(folder, mtime)


def keypoint_file_candidates(folder, row_id: str, stem: str) -> list[str]:
    """Paths tried by :func:`find_keypoints_file`, in order."""
    folder = os.fspath(folder)
    ids = []
    if row_id:
        parts = [p for p in str(row_id).replace("\\", "/").split("/") if p not in ("", ".", "..")]
        if parts:
            ids.append(parts)
            # The dataset's own layout: .../image/<name> next to .../openpose_json/<name>_keypoints.json
            # (VITON-HD), .../images/<name>_0 next to .../keypoints/<name>_2.json (DressCode).
            for k, part in enumerate(parts[:-1]):
                if part.lower() in IMAGE_DIRS:
                    for kd in KEYPOINT_DIRS:
                        ids.append(parts[:k] + [kd] + parts[k + 1:])
    stems = [[stem]] + [[kd, stem] for kd in KEYPOINT_DIRS] if stem else []
    out = []
    for parts in ids + stems:
        base = parts[-1]
        names = [f"{base}.json", f"{base}_keypoints.json"]
        if base.endswith("_0"):
            names.append(f"{base[:-2]}_2.json")
        for name in names:
            path = os.path.join(folder, *parts[:-1], name)
            if path not in out:
                out.append(path)
    return out


def find_keypoints_file(folder, row_id: str, stem: str):
    """The keypoint file for a row, or None. Tried in order (first found wins):

    ``<id>.json``, ``<id>_keypoints.json`` and, for names ending in ``_0``, DressCode's
    ``<name>_2.json``, first for the row id (its subfolders kept), then for the id with an
    image folder (``image``, ``images``, ``img``) swapped for ``openpose_json``, ``keypoints``,
    ``pose`` or ``openpose``, then for the photo's file stem in DIR and in those subfolders.
    Folder listings are cached per process, keyed by the folder's modification time.
    """
    for path in keypoint_file_candidates(folder, row_id, stem):
        if _exists(path):
            return path
    return None


def keypoints_for_row(folder, row_id: str, stem: str, photo_size):
    """(keypoints (18, 3) float32 or None, persons int or None, flag str or None) for one row.

    No keypoint file: (None, None, "no_keypoints_file"), a flag, not an error. A file that exists
    but cannot be read raises KeypointsFileError (make that row an error).
    """
    path = find_keypoints_file(folder, row_id, stem)
    if path is None:
        return None, None, NO_FILE_FLAG
    people = load_keypoints_file(path, photo_size, all_people=True)
    if len(people) == 0:
        return np.full((NUM_PARTS, 3), np.nan, np.float32), 0, None
    return people[0], len(people), None
