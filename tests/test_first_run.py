"""A new user's first runs: models checked fast and together against an unreachable hub, the demo
parser's warning, quiet logs, summary.json across a no-op resume, and files the tool wrote itself."""
from __future__ import annotations

import http.server
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_e2e import ROOT, run_cli

from pipeline.registry import DEFAULT_PARSER, DEFAULT_POSE, PROBE_TIMEOUT_S

SAMPLES = ROOT / "pipeline" / "assets" / "samples"
BUNDLED_PARSER = ROOT / "pipeline" / "assets" / "parser"


class RefusingHub(http.server.BaseHTTPRequestHandler):
    """A hub that answers every request at once with 503, and counts them."""

    requests: list[str] = []

    def do_HEAD(self):  # noqa: N802 - http.server's naming
        self.requests.append(self.path)
        self.send_response(503)
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_hub():
    RefusingHub.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusingHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", RefusingHub.requests
    server.shutdown()


@pytest.fixture
def silent_hub():
    """A hub that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def _photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(SAMPLES / "synthetic_01_upper_body.jpg", folder / "a.jpg")
    return folder


def _hub_env(tmp_path: Path, endpoint: str) -> dict:
    return {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "empty-cache"), "HF_HUB_OFFLINE": "0",
            "HF_HUB_DISABLE_TELEMETRY": "1"}


def _error_line(result) -> str:
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    return line


def test_a_refusing_hub_costs_one_request_per_model(tmp_path, refusing_hub):
    endpoint, requests = refusing_hub
    result = run_cli("run", str(_photos(tmp_path)), "--output", str(tmp_path / "out"),
                     env=_hub_env(tmp_path, endpoint))
    line = _error_line(result)
    assert DEFAULT_PARSER in line and DEFAULT_POSE in line and "HTTP 503" in line and "fetch-models" in line
    assert sorted(requests) == sorted([f"/{DEFAULT_PARSER}/resolve/main/config.json",
                                       f"/{DEFAULT_POSE}/resolve/main/body_pose_model.pth"])
    assert not (tmp_path / "out").exists()


def test_a_silent_hub_ends_within_the_probe_timeout(tmp_path, silent_hub):
    endpoint, accepted = silent_hub
    started = time.monotonic()
    result = run_cli("run", str(_photos(tmp_path)), "--output", str(tmp_path / "out"),
                     env=_hub_env(tmp_path, endpoint))
    seconds = time.monotonic() - started
    line = _error_line(result)
    assert DEFAULT_PARSER in line and DEFAULT_POSE in line and f"within {PROBE_TIMEOUT_S:g} s" in line
    assert len(accepted) == 2  # one connection per model, no retries
    assert seconds < 60, seconds  # the probes run in parallel: about the timeout plus start-up
    assert not (tmp_path / "out").exists()
    print(f"silent hub: the run ended after {seconds:.1f} s")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """A folder of three sample photos and a file masked_image wrote next to them, run as the demo
    runs (bundled parser, pose off), then run again with nothing left to do."""
    from pipeline import masked_image

    folder = tmp_path_factory.mktemp("demo-photos")
    for name in ("synthetic_01_upper_body.jpg", "synthetic_02_lower_body.jpg", "synthetic_03_dresses.jpg"):
        shutil.copy(SAMPLES / name, folder / name)
    written = masked_image("upper_body", folder / "synthetic_01_upper_body.jpg", parser=str(BUNDLED_PARSER),
                           pose="none", device="cpu")
    out = tmp_path_factory.mktemp("demo-out") / "out"
    args = ("run", str(folder), "--output", str(out), "--parser", str(BUNDLED_PARSER), "--pose", "none",
            "--num-cpus", "2")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    return Path(written), out, first, summary, json.loads((out / "summary.json").read_text())


def test_the_demo_prints_one_warning_and_no_error_lines(demo_run):
    _, out, first, _, _ = demo_run
    lines = (first.stdout + first.stderr).splitlines()
    assert not [line for line in lines if " E " in line or "Traceback" in line], lines
    warnings = [line for line in lines if "warning" in line.lower()]
    assert len(warnings) == 1 and "demo parser trained on drawn people" in warnings[0], lines
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["warnings"] == ["demo parser trained on drawn people; use a real checkpoint for photos"]


def test_summary_survives_a_resume_with_nothing_to_do(demo_run):
    _, _, _, before, after = demo_run
    assert before["rows"] == after["rows"] == 4 and before["status"] == after["status"]
    assert after["this_run"]["rows"] == 0 and after["this_run"]["resumed_from"] == 4
    for key in ("device", "precision", "ms_per_row"):
        assert after[key] == before[key] and after[key], key


def test_a_file_the_tool_wrote_is_a_skipped_row_with_its_flag(demo_run):
    written, out, _, _, _ = demo_run
    rows = {row["id"]: row for row in pq.read_table(out / "manifest").to_pylist()}
    row = rows[written.stem]
    assert row["status"] == "skipped" and row["flags"] == ["tool_output"]
    assert row["masked_path"] is None and row["mask_path"] is None and row["error"] is None
    assert not list((out / "masked").glob(f"{written.stem}*"))
    others = [r for r in rows.values() if r["id"] != written.stem]
    assert len(others) == 3 and {r["status"] for r in others} == {"ok"}


def test_masked_image_refuses_its_own_output(demo_run):
    from pipeline import masked_image

    written = demo_run[0]
    with pytest.raises(ValueError, match="masked image this tool wrote"):
        masked_image("upper_body", written, written.with_name("again.jpg"), parser=str(BUNDLED_PARSER),
                     pose="none", device="cpu")


def test_the_console_script_shows_its_own_name():
    vton_masks = shutil.which("vton-masks")
    if vton_masks is None:
        pytest.fail("the vton-masks console script is not installed (tools/install.sh installs it)")
    import subprocess

    result = subprocess.run([vton_masks, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("usage: vton-masks")
