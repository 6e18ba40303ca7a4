"""CONTRIBUTING.md's three recipes, followed once each by a test-only plug-in (tests/toy_plugins.py):
a mask style, a pose model and an output layout, named as `module:name` on the CLI and run
end to end through Ray, whose workers import them by those names."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from test_e2e import ROOT, run_cli
from toy_plugins import SKELETON

from pipeline.testing.synthetic import make_person

PHOTOS = 4


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    photos = tmp_path_factory.mktemp("photos")
    for index in range(PHOTOS):
        Image.fromarray(make_person(100 + index, 96, 128).image).save(photos / f"p{index}.png")
    out = tmp_path_factory.mktemp("out")
    # The bundled parser sees these drawn people (a random-weight one would find nobody: no_person,
    # an empty mask, and the style would not show).
    result = run_cli("run", str(photos), "--output", str(out), "--parser", str(ROOT / "pipeline" / "assets" / "parser"),
                     "--style", "tests.toy_plugins:left_half", "--layout", "tests.toy_plugins:FlatLayout",
                     "--pose-family", "tests.toy_plugins:TOY_POSE", "--pose", "toy", "--num-cpus", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_plugins_run_in_the_ray_workers(toy_run):
    rows = pq.read_table(toy_run / "manifest").to_pylist()
    assert len(rows) == PHOTOS and {row["status"] for row in rows} == {"ok"}
    assert not (toy_run / "masks").exists() and not (toy_run / "parse").exists()
    for row in rows:
        # the layout: every file in flat/, parse left out
        assert row["mask_path"] == f"flat/{row['id']}.mask.png"
        assert row["pose_path"] == f"flat/{row['id']}.pose.json" and row["parse_path"] is None
        # the style: the left half, whatever the parse
        mask = np.asarray(Image.open(toy_run / row["mask_path"]))
        assert mask.shape == (128, 96) and (mask[:, :48] == 255).all() and (mask[:, 48:] == 0).all()
        # the pose model: its one person, in photo pixels
        people = json.loads((toy_run / row["pose_path"]).read_text())["people"]
        keypoints = np.asarray(people[0]["pose_keypoints_2d"]).reshape(18, 3)
        assert len(people) == 1 and row["persons"] == 1
        assert np.allclose(keypoints[:, :2], SKELETON * [96, 128], atol=0.2)


def test_a_plugin_that_cannot_be_imported_stops_the_run_at_start(tmp_path, tiny_parser_dir):
    Image.fromarray(make_person(1, 96, 128).image).save(tmp_path / "p.png")
    result = run_cli("run", str(tmp_path), "--output", str(tmp_path / "out"), "--parser", str(tiny_parser_dir),
                     "--pose", "none", "--layout", "tests.no_such_module:Layout")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no_such_module" in result.stderr and not (tmp_path / "out").exists()
