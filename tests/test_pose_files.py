"""Keypoint files: OpenPose JSON out, dataset keypoints in (ours, VITON-HD, DressCode)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.pose_files import (
    BODY25_TO_COCO18,
    KeypointsFileError,
    find_keypoints_file,
    keypoints_for_row,
    load_keypoints_file,
    to_openpose_json,
)


def person(offset=0.0, missing=()):
    kp = np.stack([np.arange(18) * 10.0 + 100 + offset, np.arange(18) * 20.0 + 50 + offset,
                   np.linspace(0.3, 0.9, 18)], 1).astype(np.float32)
    kp[list(missing)] = np.nan
    return kp


def write(path, doc):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


# --------------------------------------------------------------------------------------------
# to_openpose_json
# --------------------------------------------------------------------------------------------

def test_openpose_json_format_main_first_and_missing_as_zeros():
    a, b = person(0, missing=(4, 17)), person(300)
    doc = to_openpose_json([a, b], 1, canvas_size=(768, 1024))
    assert doc["version"] == 1.3 and doc["canvas_width"] == 768 and doc["canvas_height"] == 1024
    assert len(doc["people"]) == 2
    first, second = (np.array(p["pose_keypoints_2d"]).reshape(18, 3) for p in doc["people"])
    np.testing.assert_allclose(first, b, atol=1e-2)                  # main person first
    assert (second[[4, 17]] == 0).all()
    np.testing.assert_allclose(second[:4], a[:4], atol=1e-2)
    json.dumps(doc, allow_nan=False)                                 # no NaN in the JSON

    only = to_openpose_json([a, b], 1, include_all=False)
    assert len(only["people"]) == 1 and "canvas_width" not in only


def test_openpose_json_with_keypoints_as_main_and_no_people():
    a, b = person(0), person(300)
    doc = to_openpose_json([a, b], b.copy())
    assert len(doc["people"]) == 2                                   # b not repeated
    np.testing.assert_allclose(np.array(doc["people"][0]["pose_keypoints_2d"]).reshape(18, 3), b, atol=1e-2)
    doc = to_openpose_json([], np.full((18, 3), np.nan, np.float32))
    assert doc["people"] == []
    assert to_openpose_json([], 0)["people"] == []


def test_round_trip_through_our_own_file(tmp_path):
    a, b = person(0, missing=(3,)), person(250)
    path = write(tmp_path / "pose" / "sub" / "row.json", to_openpose_json([a, b], 0, canvas_size=(600, 800)))
    kp = load_keypoints_file(path, (600, 800))
    assert kp.dtype == np.float32 and kp.shape == (18, 3)
    np.testing.assert_allclose(kp, a, atol=1e-2)
    assert np.isnan(kp[3]).all()
    assert load_keypoints_file(path, (600, 800), all_people=True).shape == (2, 18, 3)
    # The same file for a photo read at twice the size: the canvas gives the frame.
    np.testing.assert_allclose(load_keypoints_file(path, (1200, 1600))[:, :2], a[:, :2] * 2, atol=2e-2)


# --------------------------------------------------------------------------------------------
# Reading dataset files
# --------------------------------------------------------------------------------------------

def test_viton_hd_body25_file_in_photo_pixels(tmp_path):
    coco = person(0, missing=(10,))
    body25 = np.zeros((25, 3))
    for c, b in enumerate(BODY25_TO_COCO18):
        body25[b] = np.nan_to_num(coco[c], nan=0.0)
    body25[8] = (123, 456, 0.8)                                      # MidHip: dropped
    body25[19:] = (1, 2, 0.5)                                        # feet: dropped
    path = write(tmp_path / "00006_00_keypoints.json",
                 {"version": 1.3, "people": [{"pose_keypoints_2d": body25.ravel().tolist(),
                                              "face_keypoints_2d": []}]})
    kp = load_keypoints_file(path, (768, 1024))
    np.testing.assert_allclose(kp, coco, atol=1e-5)
    assert np.isnan(kp[10]).all()


def test_normalized_openpose_coordinates(tmp_path):
    kp = person(0)
    norm = kp.copy()
    norm[:, 0] /= 1000.0
    norm[:, 1] /= 1000.0
    path = write(tmp_path / "n.json", {"people": [{"pose_keypoints_2d": norm.ravel().tolist()}]})
    out = load_keypoints_file(path, (500, 400))
    np.testing.assert_allclose(out[:, 0], kp[:, 0] / 1000 * 500, rtol=1e-5)
    np.testing.assert_allclose(out[:, 1], kp[:, 1] / 1000 * 400, rtol=1e-5)


def test_dresscode_file_at_half_resolution(tmp_path):
    kp = person(0)
    rows = [[float(x), float(y), float(s), i] for i, (x, y, s) in enumerate(kp / [2, 2, 1])]
    rows[5] = [0.0, 0.0, 0.0, 5]                                     # missing
    rows[12] = [-1.0, -1.0, 0.0, 12]                                 # missing, other spelling
    shuffled = rows[9:] + rows[:9]                                   # placed by the id column
    path = write(tmp_path / "keypoints" / "020714_2.json", {"keypoints": shuffled})
    out = load_keypoints_file(path, (768, 1024))
    expected = kp.copy()
    expected[[5, 12]] = np.nan
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_empty_people_and_bad_files(tmp_path):
    empty = write(tmp_path / "e.json", {"version": 1.3, "people": []})
    assert np.isnan(load_keypoints_file(empty, (10, 10))).all()
    cases = {
        "notjson.json": "{nope",
        "list.json": "[1, 2]",
        "other.json": json.dumps({"landmarks": []}),
        "short.json": json.dumps({"people": [{"pose_keypoints_2d": [1, 2, 3]}]}),
        "dc.json": json.dumps({"keypoints": [[1, 2, 3, 0]]}),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(KeypointsFileError, match=name):
            load_keypoints_file(tmp_path / name, (10, 10))
    assert issubclass(KeypointsFileError, ValueError)


# --------------------------------------------------------------------------------------------
# Finding a row's file
# --------------------------------------------------------------------------------------------

def test_find_our_own_pose_folder(tmp_path):
    target = write(tmp_path / "pose" / "shoots" / "a_b.json", {"people": []})
    assert find_keypoints_file(tmp_path / "pose", "shoots/a_b", "a b") == str(target)


def test_find_viton_hd_layout(tmp_path):
    target = write(tmp_path / "test" / "openpose_json" / "00006_00_keypoints.json", {"people": []})
    # DIR is the dataset root; the row id keeps the image folder.
    assert find_keypoints_file(tmp_path, "test/image/00006_00", "00006_00") == str(target)
    # DIR is the openpose_json folder itself; matched by file stem.
    assert find_keypoints_file(tmp_path / "test" / "openpose_json", "00006_00", "00006_00") == str(target)
    # DIR is the split folder, rows are image/<name>.
    assert find_keypoints_file(tmp_path / "test", "image/00006_00", "00006_00") == str(target)


def test_find_dresscode_layout(tmp_path):
    target = write(tmp_path / "dresses" / "keypoints" / "020714_2.json", {"keypoints": []})
    assert find_keypoints_file(tmp_path, "dresses/images/020714_0", "020714_0") == str(target)
    assert find_keypoints_file(tmp_path / "dresses" / "keypoints", "x/y", "020714_0") == str(target)
    assert find_keypoints_file(tmp_path / "dresses", "images/020714_0", "020714_0") == str(target)


def test_missing_file_is_a_flag_not_an_error(tmp_path):
    assert find_keypoints_file(tmp_path, "a/b", "b") is None
    assert keypoints_for_row(tmp_path, "a/b", "b", (100, 100)) == (None, None, "no_keypoints_file")
    a, b = person(0), person(50)
    write(tmp_path / "c.json", to_openpose_json([a, b], 0, canvas_size=(100, 100)))
    kp, persons, flag = keypoints_for_row(tmp_path, "c", "c", (100, 100))
    assert persons == 2 and flag is None
    np.testing.assert_allclose(kp, a, atol=1e-2)
    (tmp_path / "d.json").write_text("{broken")
    with pytest.raises(KeypointsFileError):
        keypoints_for_row(tmp_path, "d", "d", (100, 100))


def test_pose_from_files_stage(tmp_path):
    from pipeline.pose import MAX_PEOPLE, PoseFromFilesStage
    from pipeline.schema import ERROR, PENDING

    a = person(0)
    write(tmp_path / "pose" / "x.json", to_openpose_json([a], 0, canvas_size=(600, 800)))
    (tmp_path / "pose" / "bad.json").write_text("{")
    batch = {"id": np.array(["x", "y", "bad"], dtype=object),
             "source": np.array(["/data/x.jpg", "/data/y.jpg", "/data/bad.jpg"], dtype=object),
             "status": np.array([PENDING] * 3, dtype=object),
             "error": np.array([None] * 3, dtype=object),
             "width": np.array([600, 600, 600], np.int32), "height": np.array([800, 800, 800], np.int32),
             "image": np.zeros((3, 400, 300, 3), np.uint8)}
    out = PoseFromFilesStage(tmp_path / "pose")(batch)
    assert out["people"].shape == (3, MAX_PEOPLE, 18, 3)
    np.testing.assert_allclose(out["people"][0, 0, :, :2], a[:, :2] / 2, atol=1e-2)   # working pixels
    assert out["persons"].tolist() == [1, 0, 0]
    assert list(out["pose_flag"]) == ["", "no_keypoints_file", ""]
    assert out["status"][1] == PENDING
    assert out["status"][2] == ERROR and "bad.json" in out["error"][2]
