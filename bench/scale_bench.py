"""Driver memory at scale: peak RSS of the driver process for runs of growing size.

    python bench/scale_bench.py --rows 1000 10000

Generates small synthetic photos (a few distinct figures, copied), runs the real CLI with a
local Ray on them (tiny parser, --pose none), samples the driver's VmRSS/VmHWM from /proc while
it runs, then reruns on the finished OUT to time a resume that has nothing left to do.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def make_photos(folder: Path, rows: int, width: int, height: int, distinct: int = 50) -> None:
    from PIL import Image

    from pipeline.testing.synthetic import make_person

    folder.mkdir(parents=True, exist_ok=True)
    originals = []
    for index in range(min(distinct, rows)):
        path = folder / f"{index // 1000:03d}" / f"p{index:06d}.jpg"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(make_person(index, width, height).image).save(path, quality=85)
        originals.append(path.read_bytes())
    for index in range(len(originals), rows):
        path = folder / f"{index // 1000:03d}" / f"p{index:06d}.jpg"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(originals[index % len(originals)])


def _status_kib(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_measured(args: list[str]) -> tuple[float, int, str]:
    """(seconds, driver peak RSS in KiB, stderr tail) of one CLI run."""
    env = dict(os.environ, RAY_DATA_DISABLE_PROGRESS_BARS="1", PYTHONPATH=str(ROOT))
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _status_kib(process.pid, "VmHWM") or 0)
        time.sleep(0.25)
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"run failed ({process.returncode}): {stderr[-2000:]}")
    return time.monotonic() - started, peak, stderr


def time_manifest_read(rows: int, per_part: int = 64) -> None:
    """Resume's start-up cost alone: read the ids of a manifest of `rows` rows in parts of `per_part`."""
    import resource

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.sinks import read_manifest

    out = Path(tempfile.mkdtemp(prefix="manifest-bench-"))
    try:
        (out / "manifest").mkdir()
        for part in range(0, rows, per_part):
            ids = [f"folder{part // 10000:05d}/photo_{row:08d}" for row in range(part, min(rows, part + per_part))]
            pq.write_table(pa.table({"id": ids, "status": ["ok"] * len(ids)}),
                           out / "manifest" / f"part-{part:09d}.parquet")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        ids = read_manifest(str(out), columns=["id"]).column("id").combine_chunks()
        seconds = time.monotonic() - started
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(f"manifest of {len(ids)} rows in {-(-rows // per_part)} parts: ids read in {seconds:.1f} s, "
              f"peak RSS +{grown:.0f} MiB")
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the generated photos and outputs")
    parser.add_argument("--manifest-rows", type=int, default=None,
                        help="only time reading the ids of a synthetic manifest of this many rows")
    options = parser.parse_args()
    if options.manifest_rows:
        time_manifest_read(options.manifest_rows)
        return

    from conftest import CACHE, build_tiny_parser

    tiny_parser = build_tiny_parser(CACHE / "tiny-segformer-atr18")
    work = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    print(f"{'rows':>7} {'seconds':>8} {'images/s':>9} {'driver peak RSS':>16} {'resume (nothing to do)':>23}")
    try:
        for rows in options.rows:
            photos, out = work / f"photos-{rows}", work / f"out-{rows}"
            make_photos(photos, rows, options.width, options.height)
            args = ["run", str(photos), "--output", str(out), "--parser", str(tiny_parser), "--pose", "none",
                    "--num-cpus", str(options.num_cpus), "--width", str(options.width),
                    "--height", str(options.height)]
            seconds, peak, _ = run_measured(args)
            resume_seconds, _, _ = run_measured(args)
            print(f"{rows:>7} {seconds:>8.1f} {rows / seconds:>9.1f} {peak / 1024:>13.0f} MiB "
                  f"{resume_seconds:>21.1f} s", flush=True)
            if not options.keep:
                shutil.rmtree(photos)
                shutil.rmtree(out)
    finally:
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
