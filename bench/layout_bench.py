"""Trainer layout export time: `--layout vitonhd` against the native layout on the same photos.

    python bench/layout_bench.py --images 300 --json layout_bench.json
    python bench/layout_bench.py --images 8          # smoke run

Target (issue 15): a 300-photo vitonhd export with --pose-from keypoints takes at most 1.3x the
time of the native layout on the same photos and keypoints (one run, side by side).

Data: --images generated people (pipeline.testing.synthetic.make_person, 768x1024, category
upper_body, JPEG quality 90), each with a generated garment photo
(pipeline.testing.products.make_product, 768x1024, JPEG quality 90) and its true keypoints as an
OpenPose JSON file (pipeline.pose_files.to_openpose_json); manifest.csv has the columns path,
category (upper_body) and garment. The data folder (--data-dir, default a temporary folder) is
reused when it already holds the same number of images.

Runs: `python -m pipeline run manifest.csv --output OUT --layout L --pose-from keypoints/
--parser pipeline/assets/parser --num-cpus N`, native first, then vitonhd, one after the other,
each into a fresh OUT. Timed: the wall of each child process (interpreter start, imports, Ray
startup, model loading, the run, Ray shutdown). The load average (os.getloadavg) is recorded
before each run: on a shared machine, other work changes both times.

Printed: both walls, images/s, the ratio vitonhd / native against the 1.3x target, and the mean
per-row stage milliseconds (ms_* columns of each manifest). Also each run's CPU seconds (user +
system time of the CLI's process tree, Ray's workers included, read from /proc every 0.5 s): on a
shared machine the walls move with other work, the CPU seconds much less, so their ratio says
what the code costs. And the CPU seconds other processes used meanwhile (the machine's busy time
from /proc/stat, less the run's own): how much other work competed with each run.
--repeat N runs N pairs, alternating which layout goes first, and takes the median ratio. With
--profile N, the vitonhd layout's export is also profiled in this process on N rows (cProfile
over VitonHDLayout.export with the bundled parser's labels): the functions that cost the most,
in ms per row.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

BUNDLED_PARSER = REPO / "pipeline" / "assets" / "parser"
SIZE = (768, 1024)
TARGET = 1.3


def make_data(folder: Path, images: int) -> Path:
    """Photos, garments, keypoint files and manifest.csv in folder; returns the manifest's path."""
    from pipeline.pose_files import to_openpose_json
    from pipeline.testing.products import make_product
    from pipeline.testing.synthetic import make_person

    manifest = folder / "manifest.csv"
    stamp = folder / "images.txt"
    if manifest.is_file() and stamp.is_file() and stamp.read_text().strip() == str(images):
        return manifest
    for sub in ("photos", "garments", "keypoints"):
        shutil.rmtree(folder / sub, ignore_errors=True)
        (folder / sub).mkdir(parents=True)
    rows = []
    for index in range(images):
        sample = make_person(1000 + index, *SIZE, category="upper_body")
        stem = f"p{index:05d}"
        Image.fromarray(sample.image).save(folder / "photos" / f"{stem}.jpg", quality=90)
        document = to_openpose_json([sample.keypoints], 0, canvas_size=SIZE)
        (folder / "keypoints" / f"{stem}.json").write_text(json.dumps(document))
        product = make_product(5000 + index, *SIZE)
        Image.fromarray(product.image).save(folder / "garments" / f"g{index:05d}.jpg", quality=90)
        rows.append({"path": f"photos/{stem}.jpg", "category": "upper_body", "garment": f"garments/g{index:05d}.jpg"})
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "category", "garment"])
        writer.writeheader()
        writer.writerows(rows)
    stamp.write_text(str(images))
    return manifest


def _tree_cpu(root: int, seen: dict[int, float], names: dict[int, str] | None = None) -> None:
    """Adds to `seen` (pid -> CPU seconds) every process under `root` with its user + system time
    so far, read from /proc, and to `names` its latest process title (Ray retitles a worker with the
    task or actor it runs). Polled during a run: Ray's workers are not children the CLI waits for,
    so they never reach its rusage; a process's last half second before it exits is missed."""
    parents, times = {}, {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in times:
            seen[pid] = max(seen.get(pid, 0.0), times[pid])
            if names is not None:
                names[pid] = _process_group(pid, names.get(pid))
        stack.extend(children.get(pid, []))


def _process_group(pid: int, previous: str | None) -> str:
    """What a process of the run is, for the CPU breakdown: the CLI (driver), a model actor, a
    task worker (decode, keypoint files, masks, write: Ray reuses one worker for all of them), or
    Ray's own services (GCS, raylet, agents, monitors). A worker keeps the first role it is seen in."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return previous or "gone"
    if previous in ("model actor", "task worker", "driver"):
        return previous
    if "-m pipeline" in command:
        return "driver"
    if command.startswith("ray::"):
        title = command.split()[0]
        if "Agent" in title or "Tracker" in title or title.startswith("ray::_"):  # Ray's and Ray Data's own actors
            return "ray services"
        if title == "ray::IDLE":
            return previous or "idle worker"
        return "model actor" if "MapWorker" in title or "Stage" in title or "Chain" in title else "task worker"
    if "default_worker.py" in command:
        return previous or "idle worker"
    return "ray services"


def _busy_cpu_s() -> float:
    """CPU seconds every process of the machine has used since boot (/proc/stat: all but idle and
    iowait). Its growth during a run, less the run's own CPU seconds, is other work's CPU time."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def run_layout(manifest: Path, out: Path, layout: str, num_cpus: int) -> dict:
    """One CLI run into a fresh OUT; its wall, load average before, and manifest numbers."""
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, RAY_DATA_DISABLE_PROGRESS_BARS="1", PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "pipeline", "run", str(manifest), "--output", str(out), "--layout", layout,
               "--pose-from", str(manifest.parent / "keypoints"), "--parser", str(BUNDLED_PARSER),
               "--num-cpus", str(num_cpus)]
    load = os.getloadavg()
    busy = _busy_cpu_s()
    start = time.perf_counter()
    with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        cpu_seen: dict[int, float] = {}
        names: dict[int, str] = {}
        while process.poll() is None:
            _tree_cpu(process.pid, cpu_seen, names)
            time.sleep(0.5)
        stdout, stderr = process.communicate()
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    wall = time.perf_counter() - start
    cpu = sum(cpu_seen.values())
    groups: dict[str, list] = {}
    for pid, seconds in cpu_seen.items():
        group = groups.setdefault(names.get(pid, "gone"), [0, 0.0])
        group[0] += 1
        group[1] += seconds
    other_cpu = max(0.0, _busy_cpu_s() - busy - cpu)
    if result.returncode != 0:
        raise SystemExit(f"{layout} run failed ({result.returncode}):\n{result.stderr[-3000:]}")
    import pyarrow.parquet as pq

    table = pq.read_table(out / "manifest")
    status = table.column("status").to_pylist()
    stages = {}
    for name in table.column_names:
        values = np.asarray(table.column(name).to_pylist(), dtype=float) if name.startswith("ms_") else None
        if values is not None and np.isfinite(values).any():  # a stage that did not run (all NaN) is left out
            stages[name[3:]] = float(np.nanmean(values))
    return {"layout": layout, "wall_s": round(wall, 2), "cpu_s": round(cpu, 1), "other_cpu_s": round(other_cpu, 1),
            "loadavg_before": [round(v, 2) for v in load], "loadavg_after": [round(v, 2) for v in os.getloadavg()],
            "rows": table.num_rows, "ok": status.count("ok"), "errors": status.count("error"),
            "images_per_s": round(table.num_rows / wall, 3),
            "mean_stage_ms": {k: round(v, 1) for k, v in stages.items()},
            "cpu_by_process": {name: {"processes": n, "cpu_s": round(s, 1)} for name, (n, s) in sorted(groups.items())}}


def profile_export(folder: Path, rows: int, top: int = 18) -> list[dict]:
    """cProfile VitonHDLayout.export in this process on `rows` photos: [{function, ms_per_row}]."""
    import cProfile
    import pstats

    import cv2

    from pipeline import codecs
    from pipeline.layouts import ExportContext
    from pipeline.parser import SegformerParser
    from pipeline.pose_files import load_keypoints_file
    from pipeline.trainer_layouts import VitonHDLayout

    layout = VitonHDLayout()
    parser = SegformerParser(str(BUNDLED_PARSER))
    contexts = []
    for index in range(rows):
        photo, _ = codecs.decode_full((folder / "photos" / f"p{index:05d}.jpg").read_bytes())
        height, width = photo.shape[:2]
        working = cv2.resize(photo, (576, 768), interpolation=cv2.INTER_AREA)  # the CLI's working size
        labels = cv2.resize(parser.parse(working[None])[0], (width, height), interpolation=cv2.INTER_NEAREST)
        people = load_keypoints_file(folder / "keypoints" / f"p{index:05d}.json", (width, height), all_people=True)
        row = {"category": "upper_body", "split": "test", "export_name": f"{index:05d}_00", "seq": index,
               "garment": f"garments/g{index:05d}.jpg"}
        contexts.append(ExportContext(
            photo=photo, labels=labels, people=people, no_person=False, export_size=SIZE,
            garment=(folder / "garments" / f"g{index:05d}.jpg").read_bytes(), row=row, flags=[]))
    layout.export(contexts[0])  # warm-up: imports, lazy tables
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for context in contexts:
        layout.export(context)
    profiler.disable()
    wall = (time.perf_counter() - start) * 1000 / rows
    stats = pstats.Stats(profiler)
    result = [{"function": "VitonHDLayout.export (wall, profiled)", "ms_per_row": round(wall, 1)}]
    entries = sorted(stats.stats.items(), key=lambda item: -item[1][3])  # cumulative time
    for (filename, line, name), (_, calls, tottime, cumtime, _) in entries:
        if "pipeline" not in filename or name == "export":
            continue
        where = f"{Path(filename).name}:{line} {name}"
        result.append({"function": where, "calls_per_row": round(calls / rows, 1),
                       "ms_per_row_cumulative": round(cumtime * 1000 / rows, 1),
                       "ms_per_row_own": round(tottime * 1000 / rows, 1)})
        if len(result) > top:
            break
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--data-dir", help="where the generated data is kept (reused; default: a temporary folder)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile the vitonhd export in-process on N rows")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="N pairs of runs, the order alternating (native, vitonhd, vitonhd, native, ...); "
                             "the median ratio is the result")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="layout-bench-"))
    data = Path(args.data_dir) if args.data_dir else work / "data"
    data.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        manifest = make_data(data, args.images)
        print(f"data: {args.images} people + garments + keypoints in {data} ({time.perf_counter() - start:.1f} s)")
        pairs = []
        for index in range(max(1, args.repeat)):
            # Alternating the order spreads a drift in the machine's load over both layouts.
            order = ("native", "vitonhd") if index % 2 == 0 else ("vitonhd", "native")
            runs = {}
            for layout in order:
                runs[layout] = run_layout(manifest, work / f"out-{layout}", layout, args.num_cpus)
                r = runs[layout]
                print(f"{layout:8s} wall {r['wall_s']:7.1f} s  cpu {r['cpu_s']:7.1f} s  other work's cpu "
                      f"{r['other_cpu_s']:6.1f} s  {r['images_per_s']:6.2f} "
                      f"images/s  ok {r['ok']}/{r['rows']}  load before {r['loadavg_before']} after "
                      f"{r['loadavg_after']}  stage ms {r['mean_stage_ms']}", flush=True)
                print("         cpu by process: " + ", ".join(
                    f"{name} {v['cpu_s']} s in {v['processes']}" for name, v in r["cpu_by_process"].items()))
            ratio = runs["vitonhd"]["wall_s"] / runs["native"]["wall_s"]
            cpu_ratio = runs["vitonhd"]["cpu_s"] / max(runs["native"]["cpu_s"], 1e-9)
            print(f"pair {index + 1}: ratio vitonhd / native: wall {ratio:.2f}, cpu {cpu_ratio:.2f}", flush=True)
            pairs.append({"runs": runs, "ratio": round(ratio, 3), "cpu_ratio": round(cpu_ratio, 3)})
        ratio = float(np.median([pair["ratio"] for pair in pairs]))
        cpu_ratio = float(np.median([pair["cpu_ratio"] for pair in pairs]))
        verdict = "met" if ratio <= TARGET else "missed"
        print(f"ratio vitonhd / native: {ratio:.2f} (median of {len(pairs)}; target <= {TARGET}: {verdict}); "
              f"cpu ratio {cpu_ratio:.2f}")
        result = {"images": args.images, "num_cpus": args.num_cpus, "cpu_count": os.cpu_count(),
                  "runs": pairs[0]["runs"], "pairs": pairs, "ratio": round(ratio, 3),
                  "cpu_ratio": round(cpu_ratio, 3), "target": TARGET, "verdict": verdict}
        if args.profile:
            result["profile"] = profile_export(data, min(args.profile, args.images))
            print(f"vitonhd export profiled in-process on {min(args.profile, args.images)} rows (ms per row):")
            for item in result["profile"]:
                print("  " + json.dumps(item))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
