"""End to end through Ray: the CLI on generated photos, one truncated, with small models."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.testing.synthetic import make_person

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = 20


def run_cli(*args: str, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, RAY_DATA_DISABLE_PROGRESS_BARS="1", PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    (folder / "nested").mkdir()
    for index in range(PHOTOS - 1):
        sample = make_person(index, 192, 256)
        target = folder / ("nested" if index % 5 == 0 else ".") / f"person {index:02d}.jpg"
        Image.fromarray(sample.image).save(target, quality=90)
    whole = (folder / "person 01.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "notes.txt").write_text("not a photo, not a row")
    return folder


@pytest.fixture(scope="module")
def finished_run(photo_folder, tmp_path_factory, tiny_parser_dir, tiny_pose_dir):
    out = tmp_path_factory.mktemp("out")
    result = run_cli("run", str(photo_folder), "--output", str(out), "--parser", str(tiny_parser_dir),
                     "--pose", str(tiny_pose_dir), "--num-cpus", "2", "--batch-size", "4")
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_every_row_reaches_the_manifest(finished_run):
    out, result = finished_run
    manifest = pq.read_table(out / "manifest").to_pylist()
    assert len(manifest) == PHOTOS
    by_status = {}
    for row in manifest:
        by_status.setdefault(row["status"], []).append(row)
    assert len(by_status["ok"]) == PHOTOS - 1
    [bad] = by_status["error"]
    assert bad["id"] == "truncated" and "truncated" in bad["error"]
    assert bad["mask_path"] is None and bad["keypoints"] is None
    assert sorted(r["id"] for r in manifest) == sorted(
        ["truncated"] + [f"nested/person_{i:02d}" if i % 5 == 0 else f"person_{i:02d}" for i in range(PHOTOS - 1)])
    assert "done: 20 rows" in result.stdout


def test_every_ok_row_has_its_files(finished_run):
    out, _ = finished_run
    manifest = pq.read_table(out / "manifest").to_pylist()
    ok = [row for row in manifest if row["status"] == "ok"]
    for folder, suffix in (("masks", ".png"), ("masked", ".jpg"), ("parse", ".png"), ("pose", ".json")):
        files = sorted(p.relative_to(out / folder).as_posix() for p in (out / folder).rglob("*") if p.is_file())
        assert files == sorted(row["id"] + suffix for row in ok), folder
    for row in ok:
        assert (row["width"], row["height"]) == (192, 256)
        mask = np.asarray(Image.open(out / row["mask_path"]))
        assert mask.shape == (256, 192) and set(np.unique(mask)) <= {0, 255}
        assert row["mask_area"] == pytest.approx(np.count_nonzero(mask) / mask.size, abs=1e-6)
        parse = Image.open(out / row["parse_path"])
        assert parse.mode == "P" and parse.size == (192, 256)
        masked = np.asarray(Image.open(out / row["masked_path"]))
        assert masked.shape == (256, 192, 3)
        pose = json.loads((out / row["pose_path"]).read_text())
        assert len(pose["people"]) == row["persons"]
        assert len(row["keypoints"]) == 54 and len(row["label_fractions"]) == 18
        assert sum(row["label_fractions"]) == pytest.approx(1.0, abs=1e-4)
        assert row["parser"] and row["pose_model"] and row["style"] == "rect"
    assert not (out / ".tmp").exists() or list((out / ".tmp").iterdir()) == []


def test_summary_is_written_last(finished_run):
    out, _ = finished_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == PHOTOS and summary["status"] == {"error": 1, "ok": PHOTOS - 1}
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["style"] == "rect"
    assert not (out / ".lock").exists()


def test_rerun_resumes_with_nothing_to_do(finished_run, photo_folder, tiny_parser_dir, tiny_pose_dir):
    out, _ = finished_run
    result = run_cli("run", str(photo_folder), "--output", str(out), "--parser", str(tiny_parser_dir),
                     "--pose", str(tiny_pose_dir), "--num-cpus", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(pq.read_table(out / "manifest")) == PHOTOS
    changed = run_cli("run", str(photo_folder), "--output", str(out), "--parser", str(tiny_parser_dir),
                      "--pose", str(tiny_pose_dir), "--style", "parse", "--num-cpus", "2")
    assert changed.returncode != 0 and "style" in changed.stderr


def test_a_missing_model_stops_the_run_at_start(photo_folder, tmp_path):
    result = run_cli("run", str(photo_folder), "--output", str(tmp_path / "out"),
                     "--parser", str(tmp_path / "no-such-model"), "--pose", "none")
    assert result.returncode == 1
    assert "no-such-model" in result.stderr and "--parser" in result.stderr
    assert not (tmp_path / "out" / "manifest").exists()


def test_an_unreachable_hub_id_stops_the_run_at_start(photo_folder, tmp_path):
    result = run_cli("run", str(photo_folder), "--output", str(tmp_path / "out"), "--pose", "none",
                     env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "matei-dorian/segformer-b5-finetuned-human-parsing" in line and "--parser /path/to/folder" in line
    assert not (tmp_path / "out" / "manifest").exists()


def test_bad_arguments_exit_non_zero(tmp_path):
    result = run_cli("run", str(tmp_path / "absent"), "--output", str(tmp_path / "out"), "--pose", "none")
    assert result.returncode == 1 and "does not exist" in result.stderr
    result = run_cli("run", str(tmp_path), "--output", str(tmp_path / "out"), "--category", "shoes")
    assert result.returncode == 2 and "shoes" in result.stderr


def test_masked_image_writes_its_file(photo_folder, tiny_parser_dir, tmp_path):
    from pipeline import masked_image

    target = masked_image("upper_body", photo_folder / "person 02.jpg", tmp_path / "masked.png",
                          parser=str(tiny_parser_dir), pose="none", device="cpu")
    assert Path(target) == tmp_path / "masked.png"
    assert Image.open(target).size == (192, 256)
    default = masked_image("lower_body", photo_folder / "person 03.jpg", parser=str(tiny_parser_dir),
                           pose="none", device="cpu", preserve_resolution=False, width=96, height=128)
    assert default.endswith("person 03_masked.jpg") and Image.open(default).size == (96, 128)
    os.unlink(default)
    assert masked_image("other", photo_folder / "person 04.jpg") == str(photo_folder / "person 04.jpg")
    with pytest.raises(ValueError):
        masked_image("shoes", photo_folder / "person 04.jpg")
    with pytest.raises(FileNotFoundError):
        masked_image("upper_body", tmp_path / "absent.jpg")


def test_report_of_a_real_run(finished_run):
    out, _ = finished_run
    result = run_cli("report", str(out), "--sample", "5")
    assert result.returncode == 0, result.stderr[-3000:]
    page = (out / "report" / "index.html").read_text()
    assert "truncated" in page  # the error row is shown, with its message
    assert Image.open(out / "report" / "contact_sheet.png").size[0] > 0
