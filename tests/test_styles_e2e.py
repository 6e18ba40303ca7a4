"""Each mask style, and keypoints from files, end to end through Ray in this process (one Ray start)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.config import RunConfig
from pipeline.testing.synthetic import make_person


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("styles")
    for index in range(4):
        Image.fromarray(make_person(40 + index, 96, 128).image).save(root / f"s{index}.jpg", quality=90)
    return root


def run_pipeline(local_ray, folder: Path, out: Path, parser: Path, **options) -> list[dict]:
    from pipeline.dataflow import run

    config = RunConfig(input=str(folder), output=str(out), parser=str(parser), width=96, height=128,
                       progress="lines", **options)
    summary = run(config)
    assert summary["complete"] and summary["rows"] == len(list(folder.glob("*.jpg")))
    return sorted(pq.read_table(out / "manifest").to_pylist(), key=lambda row: row["id"])


@pytest.mark.parametrize("style", ["rect", "ootd", "parse", "crop"])
def test_each_style_runs_end_to_end(local_ray, folder, tmp_path, tiny_parser_dir, tiny_pose_dir, style):
    pose = str(tiny_pose_dir) if style == "ootd" else "none"
    rows = run_pipeline(local_ray, folder, tmp_path / "out", tiny_parser_dir, style=style, pose=pose,
                        category="dresses")
    for row in rows:
        assert row["status"] == "ok" and row["style"] == style
        mask = np.asarray(Image.open(tmp_path / "out" / row["mask_path"]))
        assert mask.shape == (128, 96)
        if style == "crop" and row["mask_bbox"] is not None:
            x0, y0, x1, y1 = row["mask_bbox"]
            assert Image.open(tmp_path / "out" / row["crop_path"]).size == (x1 - x0, y1 - y0)
            assert mask[y0:y1, x0:x1].all() and np.count_nonzero(mask) == (x1 - x0) * (y1 - y0)
        else:
            assert row["crop_path"] is None
        assert (row["pose_path"] is not None) == (pose != "none")


def test_keypoints_from_files_round_trip(local_ray, folder, tmp_path, tiny_parser_dir):
    # Our own pose JSON, written as a model would have: known keypoints for all but one photo.
    keypoints_dir = tmp_path / "keypoints"
    keypoints_dir.mkdir()
    expected = {}
    for index in range(3):
        truth = make_person(40 + index, 96, 128).keypoints
        people = np.nan_to_num(truth, nan=0.0)
        (keypoints_dir / f"s{index}.json").write_text(json.dumps(
            {"people": [{"pose_keypoints_2d": people.reshape(-1).tolist()}], "canvas_width": 96,
             "canvas_height": 128}))
        expected[f"s{index}"] = truth
    rows = run_pipeline(local_ray, folder, tmp_path / "out", tiny_parser_dir, pose="none",
                        pose_from=str(keypoints_dir), style="ootd")
    for row in rows:
        assert row["status"] == "ok"
        if row["id"] in expected:
            got = np.asarray(row["keypoints"], np.float32).reshape(18, 3)
            truth = expected[row["id"]]
            found = ~np.isnan(truth[:, 0])
            assert np.allclose(got[found, :2], truth[found, :2], atol=0.01)
            assert np.isnan(got[~found, 0]).all()
            assert "no_keypoints_file" not in row["flags"] and row["persons"] == 1
        else:
            assert "no_keypoints_file" in row["flags"]
            assert row["pose_model"] == f"files:{keypoints_dir}"
