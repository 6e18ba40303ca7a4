"""CPU smoke runs of bench/gpu_check.py and bench/throughput.py at tiny sizes.

They check that the scripts run end to end and report what they should; the numbers they print
on this machine mean nothing (bench/RESULTS.md has the real runs).
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ASSET_PARSER = REPO / "pipeline" / "assets" / "parser"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(args: list[str], timeout: int = 240) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_gpu_check_cpu_quick(tmp_path, tiny_parser_dir):
    parser = ASSET_PARSER if (ASSET_PARSER / "config.json").exists() else tiny_parser_dir
    out = tmp_path / "gpu_check.json"
    done = _run(["bench/gpu_check.py", "--device", "cpu", "--quick", "--threads", "1",
                 "--agreement-parser", str(parser), "--work", str(tmp_path / "work"), "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["env"]["device"] == "cpu"
    parse = result["parse"]["rows"]
    assert {(r["size"], r["precision"], r["batch"]) for r in parse} == {
        (s, p, b) for s in ("128x128", "96x128") for p in ("fp32", "bf16") for b in (1, 2)}
    assert all(r["images_per_s"] > 0 for r in parse)
    assert {r["precision"] for r in result["pose"]["rows"]} == {"fp32", "bf16"}
    chain = result["chain"]
    assert chain["status"] == {"ok": 4}
    assert set(chain["wall_ms_per_image"]) == {"decode", "parse", "pose", "mask", "write"}
    assert chain["parse_batch"] == 4 and chain["parse_memory_model"] is None  # CPU: the default, no probe
    assert 0.0 < result["agreement"]["bf16"]["agreement"] <= 1.0
    assert "compile" not in result  # only on CUDA unless --compile
    assert "target:" in done.stdout


def test_gpu_check_compares_the_memory_model_with_measured_peaks():
    from pipeline.batching import GIB, MemoryModel

    gpu_check = _load("gpu_check")
    rows = gpu_check.compare_memory(MemoryModel(1 * GIB, 0.5 * GIB, "probe"), [(4, 3.0 * GIB), (8, 5.5 * GIB)])
    assert rows[0]["predicted_gib"] == pytest.approx(3.0) and rows[0]["error_pct"] == pytest.approx(0.0)
    assert rows[1]["predicted_gib"] == pytest.approx(5.0)
    assert rows[1]["error_pct"] == pytest.approx(100 * (5.0 - 5.5) / 5.5)
    targets = gpu_check.targets({"env": {"device": "cuda"}, "parse": {"rows": [], "memory_models": [
        {"size": "512x512", "precision": "bf16", "max_abs_error_pct": 12.0}]},
        "agreement": {"fp16": {"agreement": 0.995}}}, "b5")
    assert [t["met"] for t in targets] == [False, True]


def test_gpu_check_takes_missing_modules_from_wheels(tmp_path, monkeypatch):
    """The GPU machine lacks controlnet_aux (and maybe pyarrow): their wheels are unpacked, not installed."""
    gpu_check = _load("gpu_check")
    wheel = tmp_path / "vtonfakemod-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("vtonfakemod/__init__.py", "VALUE = 42\n")
    monkeypatch.setitem(gpu_check.WHEELS, "vtonfakemod", "vtonfakemod")
    monkeypatch.setattr(sys, "path", list(sys.path))
    notes = gpu_check.use_wheels(str(tmp_path), ["vtonfakemod"])
    assert notes == ["vtonfakemod: from vtonfakemod-0.1-py3-none-any.whl"]
    assert importlib.import_module("vtonfakemod").VALUE == 42
    sys.modules.pop("vtonfakemod", None)
    monkeypatch.setitem(gpu_check.WHEELS, "vtonfakemissing", "vtonfakemissing")
    assert "no vtonfakemissing-*.whl" in gpu_check.use_wheels(str(tmp_path), ["vtonfakemissing"])[0]


def test_throughput_tiny(tmp_path, tiny_parser_dir, tiny_pose_dir):
    out = tmp_path / "throughput.json"
    done = _run(["bench/throughput.py", "--images", "2", "--photo-size", "192x256", "--work-size", "96x128",
                 "--work", str(tmp_path / "work"), "--parser", str(tiny_parser_dir), "--pose", str(tiny_pose_dir),
                 "--json", str(out)])
    result = json.loads(out.read_text())
    assert set(result["stages"]["stages"]) == {"decode", "parse", "pose", "mask", "write"}
    assert result["stages"]["status"] == {"ok": 2}
    pools = result["stages"]["pools"]
    assert set(pools) == {"parse", "pose"} and all(p["images_per_s"] > 0 and p["actors"] >= 1 for p in pools.values())
    assert result["stages"]["slowest"] in result["stages"]["alone_images_per_s"]
    assert result["pipeline"]["summary"]["status"] == {"ok": 2}
    assert result["pipeline"]["ray_init_s"] > 0 and result["pipeline"]["wall_s"] > result["pipeline"]["run_s"]
    assert result["baseline"]["images"] == 2
    assert len(list((tmp_path / "work" / "out-baseline").glob("*_masked.jpg"))) == 2
    ratios = result["ratios"]
    assert ratios["a_pipeline_vs_seed_loop"] > 0 and ratios["b_pipeline_vs_slowest_stage"] > 0
    assert 0 < ratios["pipeline_vs_cpu_bound"] and result["cpu_bound_images_per_s"] > 0
    assert "(a) pipeline / seed loop" in done.stdout and "(b) pipeline / slowest stage" in done.stdout


def test_a_failing_pool_worker_fails_the_pool_measurement_and_cleans_up(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.syspath_prepend(str(REPO / "bench"))  # spawned workers import the module by this name
    throughput = importlib.import_module("throughput")
    decoded = {"image": np.zeros((3, 64, 48, 3), np.uint8)}
    with pytest.raises(RuntimeError, match="pool worker failed: .*ModelLoadError"):
        throughput.pool_alone("pose", decoded, str(tmp_path / "no-such-model"), actors=2, threads=1,
                              width=48, height=64, work=tmp_path, timeout_s=120)
    assert list(tmp_path.iterdir()) == []  # the decoded photos' file is gone
