"""Resume after kill -9, SIGTERM, the run lock, and the error-rate guard, through the real CLI."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, run_cli
from PIL import Image

from pipeline.testing.synthetic import make_person

PHOTOS = 48


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("resume-photos")
    for index in range(PHOTOS):
        Image.fromarray(make_person(100 + index, 96, 128).image).save(folder / f"p{index:03d}.jpg", quality=85)
    return folder


def start_cli(*args: str) -> subprocess.Popen:
    env = dict(os.environ, RAY_DATA_DISABLE_PROGRESS_BARS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_manifest_rows(out: Path, process: subprocess.Popen, at_least: int = 1, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts = list((out / "manifest").glob("*.parquet")) if (out / "manifest").exists() else []
        if len(parts) >= at_least:
            return
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.2)
    raise AssertionError("no manifest part appeared in time")


def settled_rows(out: Path, quiet: float = 5.0, timeout: float = 90) -> int:
    """The manifest's row count once no part has landed for `quiet` seconds. Why: after the driver is
    killed, a Ray worker that was writing a part still finishes it (parts are written atomically),
    so a count taken at once can be one part short of what the rerun finds."""
    deadline = time.monotonic() + timeout
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = len(pq.read_table(out / "manifest")) if (out / "manifest").exists() else 0
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return count
        time.sleep(0.5)
    raise AssertionError("the manifest kept changing after the run was killed")


def run_args(photos: Path, out: Path, parser: Path, *extra: str, pose: str = "none") -> list[str]:
    # Small manifest parts, so a stop in the middle leaves some rows done and some not.
    return ["run", str(photos), "--output", str(out), "--parser", str(parser), "--pose", pose,
            "--num-cpus", "2", "--width", "96", "--height", "128", "--rows-per-part", "8", *extra]


def assert_complete(out: Path) -> None:
    ids = pq.read_table(out / "manifest", columns=["id"]).column("id").to_pylist()
    assert sorted(ids) == [f"p{i:03d}" for i in range(PHOTOS)]  # every row exactly once
    assert not (out / ".tmp").exists() or list((out / ".tmp").iterdir()) == []
    for path in (out / "masks").iterdir():
        Image.open(path).load()  # no partial file under a final name


def interrupted_run_args(photos: Path, out: Path, parser: Path, pose: Path) -> list[str]:
    # The full-size pose network (~0.25 s per photo on a CPU core) paces the run: parts land about
    # a second apart, so a stop right after the first one always finds rows still pending. Without
    # it the tiny parser finishes every row within a poll interval of the first part.
    return run_args(photos, out, parser, pose=str(pose))


def test_kill_9_then_rerun_completes_every_row_once(photos, tmp_path, tiny_parser_dir, tiny_pose_dir):
    out = tmp_path / "out"
    args = interrupted_run_args(photos, out, tiny_parser_dir, tiny_pose_dir)
    process = start_cli(*args)
    wait_for_manifest_rows(out, process)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = settled_rows(out)
    assert 0 < before < PHOTOS
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resuming: {before} rows already in the manifest" in result.stderr
    assert_complete(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == PHOTOS and summary["this_run"]["rows"] == PHOTOS - before


def test_sigterm_stops_with_a_partial_summary_and_a_rerun_finishes(photos, tmp_path, tiny_parser_dir,
                                                                    tiny_pose_dir):
    out = tmp_path / "out"
    args = interrupted_run_args(photos, out, tiny_parser_dir, tiny_pose_dir)
    process = start_cli(*args)
    wait_for_manifest_rows(out, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_by"] == "SIGTERM" and summary["complete"] is False
    assert summary["rows"] == len(pq.read_table(out / "manifest")) < PHOTOS
    assert not (out / ".lock").exists()
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_complete(out)
    assert json.loads((out / "summary.json").read_text())["complete"] is True


def test_a_live_run_holds_the_lock_and_a_dead_one_does_not(photos, tmp_path, tiny_parser_dir):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(json.dumps({"host": os.uname().nodename, "pid": holder.pid,
                                               "heartbeat": time.time()}))
        refused = run_cli(*run_args(photos, out, tiny_parser_dir))
        assert refused.returncode == 1 and f"pid {holder.pid}" in refused.stderr
    finally:
        holder.kill()
        holder.wait()
    result = run_cli(*run_args(photos, out, tiny_parser_dir, "--limit", "4"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(pq.read_table(out / "manifest")) == 4


def test_retry_errors_redoes_only_error_rows(photos, tmp_path, tiny_parser_dir):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (folder / name).write_bytes((photos / "p000.jpg").read_bytes())
    (folder / "c.jpg").write_bytes(b"broken")
    out = tmp_path / "out"
    assert run_cli(*run_args(folder, out, tiny_parser_dir)).returncode == 0
    (folder / "c.jpg").write_bytes((photos / "p001.jpg").read_bytes())
    again = run_cli(*run_args(folder, out, tiny_parser_dir))
    assert again.returncode == 0 and json.loads((out / "summary.json").read_text())["status"] == {"error": 1, "ok": 2}
    retried = run_cli(*run_args(folder, out, tiny_parser_dir, "--retry-errors"))
    assert retried.returncode == 0, retried.stderr[-3000:]
    rows = pq.read_table(out / "manifest").to_pylist()
    assert sorted((r["id"], r["status"]) for r in rows) == [("a", "ok"), ("b", "ok"), ("c", "ok")]


def test_a_run_whose_first_rows_mostly_fail_stops(tmp_path, tiny_parser_dir):
    folder = tmp_path / "broken"
    folder.mkdir()
    for index in range(12):
        (folder / f"x{index:02d}.jpg").write_text("not an image")
    result = run_cli(*run_args(folder, tmp_path / "out", tiny_parser_dir, "--error-rate-window", "8"))
    assert result.returncode == 1
    assert "of the first" in result.stderr and "max-error-rate" in result.stderr
