"""--densepose through the pipeline: the stage, the native files and manifest columns, the start-up
check, the model-zoo fetch. The model is the narrow random-weight checkpoint of the parity test
(tests/fixtures/densepose, made by tools/make_densepose_fixture.py): it finds a few persons with
distinct scores, so the outputs exercise every path, but its parts mean nothing."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import run_cli
from PIL import Image

from pipeline.densepose_maps import NO_DENSEPOSE_PERSON, NUM_PARTS, PALETTE, paste, render_parts
from pipeline.schema import ModelLoadError
from pipeline.testing.synthetic import make_person

ROOT = Path(__file__).resolve().parents[1]
BUNDLED_PARSER = ROOT / "pipeline" / "assets" / "parser"
TINY = ROOT / "tests" / "fixtures" / "densepose" / "model_tiny.pkl"
PEOPLE = 6
SIZE = (384, 512)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for index in range(PEOPLE):
        Image.fromarray(make_person(300 + index, *SIZE).image).save(folder / f"p{index}.jpg", quality=92)
    Image.new("RGB", (300, 400), (245, 245, 245)).save(folder / "blank.jpg")  # nobody for either model
    Image.fromarray(make_person(399, 400, 300).image).save(folder / "wide.png")  # landscape, PNG
    return folder


def _run(photos: Path, out: Path, *extra: str) -> dict:
    result = run_cli("run", str(photos), "--output", str(out), "--parser", str(BUNDLED_PARSER), "--pose", "none",
                     "--num-cpus", "2", "--batch-size", "4", *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    return {row["id"]: row for row in pq.read_table(out / "manifest").to_pylist()}


@pytest.fixture(scope="module")
def runs(photos, tmp_path_factory):
    with_densepose = tmp_path_factory.mktemp("with")
    without = tmp_path_factory.mktemp("without")
    return (with_densepose, _run(photos, with_densepose, "--densepose", str(TINY))), (without, _run(photos, without))


def test_densepose_writes_part_maps_and_manifest_columns(runs, photos):
    (out, rows), _ = runs
    assert len(rows) == PEOPLE + 2 and all(row["status"] == "ok" for row in rows.values())
    found = 0
    for key, row in rows.items():
        source = Image.open(row["source"])
        image = Image.open(out / row["densepose_path"])
        assert row["densepose_path"] == f"densepose/{key}.png"
        assert image.mode == "P" and image.size == source.size  # the photo's frame
        assert np.array_equal(np.asarray(image.getpalette()[:3 * (NUM_PARTS + 1)], np.uint8).reshape(-1, 3),
                              PALETTE[:NUM_PARTS + 1])
        parts = np.asarray(image)
        assert parts.max() <= NUM_PARTS
        assert row["densepose_model"] == str(TINY)
        assert row["ms_densepose"] is not None and row["ms_densepose"] > 0
        if row["densepose_persons"] == 0:
            assert row["densepose_box"] is None and row["densepose_score"] is None
            assert not parts.any()
            assert NO_DENSEPOSE_PERSON in row["flags"] or "no_person" in row["flags"]
            continue
        found += 1
        assert NO_DENSEPOSE_PERSON not in row["flags"]
        assert row["densepose_score"] >= 0.8
        x0, y0, x1, y1 = row["densepose_box"]
        width, height = source.size
        assert -1 <= x0 < x1 <= width + 1 and -1 <= y0 < y1 <= height + 1
        if parts.any():  # every part pixel lies in the main person's box (DensePose truncates it)
            ys, xs = np.nonzero(parts)
            assert xs.min() >= int(x0) - 1 and xs.max() <= x1 + 1 and ys.min() >= int(y0) - 1 and ys.max() <= y1 + 1
    assert found >= 2, "the fixture model should find persons in several photos"


def test_densepose_none_leaves_every_other_output_unchanged(runs):
    (with_out, with_rows), (without_out, without_rows) = runs
    assert with_rows.keys() == without_rows.keys()
    skipped = {"densepose_path", "densepose_model", "densepose_persons", "densepose_box", "densepose_score",
               "flags"} | {name for name in with_rows[next(iter(with_rows))] if name.startswith("ms_")}
    for key, row in with_rows.items():
        other = without_rows[key]
        assert other["densepose_path"] is None and other["densepose_persons"] is None
        for name, value in row.items():
            if name not in skipped:
                assert value == other[name], (key, name)
        assert [f for f in row["flags"] if f != NO_DENSEPOSE_PERSON] == other["flags"]
        for kind in ("mask", "masked", "parse"):
            a = np.asarray(Image.open(with_out / row[f"{kind}_path"]))
            b = np.asarray(Image.open(without_out / other[f"{kind}_path"]))
            assert np.array_equal(a, b), (key, kind)
    assert not (without_out / "densepose").exists()


def test_a_corrupt_checkpoint_stops_the_run_at_start_in_one_line(photos, tmp_path):
    broken = tmp_path / "model.pkl"
    broken.write_bytes(TINY.read_bytes()[: TINY.stat().st_size // 2])
    out = tmp_path / "out"
    result = run_cli("run", str(photos), "--output", str(out), "--parser", str(BUNDLED_PARSER), "--pose", "none",
                     "--densepose", str(broken), "--num-cpus", "1")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error:") and "densepose" in lines[-1].lower(), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_a_missing_zoo_checkpoint_names_the_fetch_command(monkeypatch, tmp_path):
    from pipeline.densepose import zoo

    monkeypatch.setattr(zoo, "cache_folder", lambda: str(tmp_path / "cache"))
    with pytest.raises(ModelLoadError, match="fetch-models --densepose densepose_rcnn_R_50_FPN_s1x"):
        zoo.check_source("densepose_rcnn_R_50_FPN_s1x")


def test_fetch_checks_size_and_sha256_and_leaves_nothing_on_a_bad_download(monkeypatch, tmp_path):
    from pipeline.densepose import zoo

    data = TINY.read_bytes()
    good = zoo.ZooCheckpoint(name="tiny", url=TINY.as_uri(), filename="model_final_tiny.pkl", size=len(data),
                             sha256=hashlib.sha256(data).hexdigest())
    altered = zoo.ZooCheckpoint(name="altered", url=TINY.as_uri(), filename="model_final_tiny.pkl",
                                size=len(data), sha256="0" * 64)
    monkeypatch.setattr(zoo, "cache_folder", lambda: str(tmp_path / "cache"))
    monkeypatch.setattr(zoo, "ZOO", {"tiny": good, "altered": altered})
    path = zoo.fetch("tiny")
    assert Path(path).read_bytes() == data and path == zoo.cached_path(good)
    zoo.check_source("tiny")  # the cached file passes the start-up check (size, hash, loads)
    with pytest.raises(ModelLoadError, match="SHA-256"):
        zoo.fetch("altered")
    assert os.listdir(tmp_path / "cache" / "altered") == []  # no partial file left behind
    Path(path).write_bytes(data[:-1])  # a cached file cut short: the run refuses it at start
    with pytest.raises(ModelLoadError, match="corrupt"):
        zoo.check_source("tiny")


def test_the_registry_default_is_a_zoo_checkpoint():
    from pipeline.densepose.zoo import ZOO
    from pipeline.registry import DEFAULT_DENSEPOSE

    assert DEFAULT_DENSEPOSE in ZOO


def test_render_parts_is_idm_vtons_parula_drawing():
    parts = np.arange(NUM_PARTS + 1, dtype=np.uint8).reshape(5, 5)
    rendered = render_parts(parts)
    # IDM-VTON: I * 255/24 in float32, truncated, PARULA (BGR), background black, then BGR -> RGB.
    scaled = (parts.astype(np.float32) * (255.0 / 24)).astype(np.uint8)
    expected = cv2.applyColorMap(scaled, cv2.COLORMAP_PARULA)[:, :, ::-1].copy()
    expected[parts == 0] = 0
    assert np.array_equal(rendered, expected)
    with pytest.raises(ValueError):
        render_parts(np.full((2, 2), 25, np.uint8))


def test_paste_puts_the_crop_at_its_origin():
    crop = np.array([[1, 2], [3, 4]], np.uint8)
    uv = np.stack([crop / 10, crop / 20]).astype(np.float16)
    parts, full_uv = paste(crop, (3, 1), (4, 6), uv)
    assert parts.shape == (4, 6) and full_uv.shape == (2, 4, 6) and full_uv.dtype == np.float32
    assert np.array_equal(parts[1:3, 3:5], crop) and parts.sum() == crop.sum()
    assert np.allclose(full_uv[:, 1:3, 3:5], uv) and np.count_nonzero(full_uv) == 8
    empty, none_uv = paste(np.zeros((0, 0), np.uint8), (0, 0), (4, 6))
    assert not empty.any() and none_uv is None
