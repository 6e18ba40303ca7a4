"""Do two versions of the code write the same native outputs? Runs both on the same generated photos,
one after the other, and compares decoded pixels (masks, parses, masked photos, crops), pose JSON
and every manifest value but the timings.

    python tools/compare_runs.py --base HEAD~1            # the previous commit against the work tree
    python tools/compare_runs.py --base v1 --head v2 --photos 40

Each version is extracted with `git archive` (the work tree for --head WORKTREE, the default) and
run as `python -m pipeline run` with that tree first on PYTHONPATH, with the base's bundled parser and
two settings: (a) ootd style with keypoints from files (--pose-from, the generator's true
keypoints) on a manifest of mixed categories (other included); (b) crop style, gray fill, pose
off. Exit status 0 when every output is equal.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = ("upper_body", "lower_body", "dresses", "upper_body", "other")
SETTINGS = {
    "ootd-pose-from": ["--style", "ootd", "--pose-from", "{keypoints}"],
    "crop-gray-no-pose": ["--style", "crop", "--fill", "gray", "--pose", "none"],
}


def make_photos(folder: Path, count: int) -> None:
    from PIL import Image

    from pipeline.pose_files import to_openpose_json
    from pipeline.testing.synthetic import make_person

    (folder / "photos").mkdir(parents=True)
    (folder / "keypoints").mkdir()
    with open(folder / "photos" / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "category"])
        for index in range(count):
            sample = make_person(5000 + index, 768, 1024)
            name = f"person_{index:03d}"
            extension = ".png" if index % 7 == 3 else ".jpg"
            Image.fromarray(sample.image).save(folder / "photos" / f"{name}{extension}", quality=90)
            document = to_openpose_json([sample.keypoints], 0, canvas_size=(768, 1024))
            (folder / "keypoints" / f"{name}.json").write_text(json.dumps(document))
            writer.writerow([f"{name}{extension}", CATEGORIES[index % len(CATEGORIES)]])


def extract(revision: str, target: Path) -> Path:
    target.mkdir(parents=True)
    if revision == "WORKTREE":
        files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                               check=True, capture_output=True).stdout.decode().split("\0")
        for name in filter(None, files):
            if (ROOT / name).is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, target / name)
    else:
        archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def run(tree: Path, data: Path, out: Path, options: list[str], num_cpus: int) -> float:
    options = [o.format(keypoints=data / "keypoints") for o in options]
    env = dict(os.environ, PYTHONPATH=str(tree), RAY_DATA_DISABLE_PROGRESS_BARS="1")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pipeline", "run", str(data / "photos" / "manifest.csv"),
                             "--output", str(out), "--parser", str(data / "parser"),
                             "--num-cpus", str(num_cpus), *options], cwd=tree, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"run in {tree} failed:\n{result.stderr[-3000:]}")
    return time.monotonic() - started


def _same_value(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    return a == b


def _decoded(path: Path):
    if path.suffix == ".json":
        return json.loads(path.read_text())
    from PIL import Image

    with Image.open(path) as image:
        return image.mode, np.asarray(image)


def compare(base: Path, head: Path) -> list[str]:
    import pyarrow.parquet as pq

    differences = []
    rows = {name: sorted(pq.read_table(out / "manifest").to_pylist(), key=lambda r: r["id"]) for name, out in
            (("base", base), ("head", head))}
    if [r["id"] for r in rows["base"]] != [r["id"] for r in rows["head"]]:
        return ["the manifests hold different ids"]
    files = 0
    for old, new in zip(rows["base"], rows["head"]):
        for column in sorted(set(old) | set(new)):
            if column.startswith("ms_"):
                continue
            if not _same_value(old.get(column), new.get(column)):
                differences.append(f"{old['id']}: {column}: {old.get(column)!r} != {new.get(column)!r}")
        for column in [c for c in old if c.endswith("_path") and old[c]]:
            a, b = _decoded(base / old[column]), _decoded(head / new[column])
            files += 1
            same = a == b if isinstance(a, (dict, list)) else (a[0] == b[0] and np.array_equal(a[1], b[1]))
            if not same:
                differences.append(f"{old['id']}: {column} {old[column]}: decoded content differs")
    print(f"  {len(rows['base'])} manifest rows, {files} files compared")
    return differences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD~1", help="git revision of the reference (default HEAD~1)")
    parser.add_argument("--head", default="WORKTREE", help="git revision to check, or WORKTREE (default)")
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="compare-runs-"))
    try:
        make_photos(scratch / "data", args.photos)
        trees = {name: extract(revision, scratch / name)
                 for name, revision in (("base", args.base), ("head", args.head))}
        # One parser folder for both (the manifest records its path): the base's bundled parser.
        shutil.copytree(trees["base"] / "pipeline" / "assets" / "parser", scratch / "data" / "parser")
        failed = False
        for setting, options in SETTINGS.items():
            seconds = {name: run(tree, scratch / "data", scratch / f"out-{setting}-{name}", options, args.num_cpus)
                       for name, tree in trees.items()}
            print(f"{setting}: base {args.base} {seconds['base']:.1f} s, head {args.head} {seconds['head']:.1f} s")
            differences = compare(scratch / f"out-{setting}-base", scratch / f"out-{setting}-head")
            for line in differences[:20]:
                print("  DIFFERENT", line)
            print(f"  {'equal' if not differences else f'{len(differences)} differences'}")
            failed |= bool(differences)
        return 1 if failed else 0
    finally:
        if args.keep:
            print(f"scratch kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
