"""Every failure a user can cause prints one line `error: ...` and exits 1, never a traceback,
and a run that cannot start leaves no output folder behind."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from PIL import Image
from test_e2e import run_cli


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (64, 96), (200, 120, 90)).save(folder / "a.jpg")
    return folder


def one_error_line(result) -> str:
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


def test_output_that_is_an_existing_file(photos, tmp_path, tiny_parser_dir):
    target = tmp_path / "taken"
    target.write_text("a file, not a folder")
    line = one_error_line(run_cli("run", str(photos), "--output", str(target), "--parser", str(tiny_parser_dir),
                                  "--pose", "none"))
    assert "taken" in line and "not a folder" in line
    assert target.read_text() == "a file, not a folder"


def test_output_under_a_folder_that_cannot_be_created(photos, tmp_path, tiny_parser_dir):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    line = one_error_line(run_cli("run", str(photos), "--output", str(blocker / "sub" / "out"),
                                  "--parser", str(tiny_parser_dir), "--pose", "none"))
    assert "cannot create --output" in line


def test_a_second_run_while_another_holds_the_lock(photos, tmp_path, tiny_parser_dir):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (out / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid,
                                               "heartbeat": 0}))
        line = one_error_line(run_cli("run", str(photos), "--output", str(out), "--parser", str(tiny_parser_dir),
                                      "--pose", "none"))
    finally:
        holder.kill()
    assert f"pid {holder.pid}" in line and "another run" in line
    assert not (out / "run.json").exists()


def test_a_parser_folder_without_a_config(photos, tmp_path):
    folder = tmp_path / "my-parser"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    line = one_error_line(run_cli("run", str(photos), "--output", str(tmp_path / "out"), "--parser", str(folder),
                                  "--pose", "none"))
    assert "my-parser" in line and "config.json" in line
    assert "network" not in line and "HF_HUB_OFFLINE" not in line  # a local folder: the hub is not the way out
    assert not (tmp_path / "out").exists()


def test_every_missing_model_in_one_message(photos, tmp_path):
    line = one_error_line(run_cli("run", str(photos), "--output", str(tmp_path / "out"),
                                  "--parser", str(tmp_path / "no-parser"), "--pose", str(tmp_path / "no-pose")))
    assert "no-parser" in line and "no-pose" in line and "2 models" in line
    assert not (tmp_path / "out").exists()
