"""Throughput on this machine: the Ray pipeline against the seed tool's per-image loop, and against
its own slowest stage, on the same generated photos and the same models, in one run.

    python bench/throughput.py --images 300 --num-cpus 2 --json throughput.json

Three measurements, one after another (the load average before each is recorded):

1. stages alone: decode, parse, pose, mask and write, each over all the photos before the next
   starts, in this process, without Ray, with the batch sizes and torch threads the pipeline gives
   them (pipeline.dataflow's batches, pipeline.resources.plan_model_stages' threads). Per stage:
   images/s, wall and CPU milliseconds per image. Then the two model stages as the pipeline runs
   them on CPU: their whole pool (plan_model_stages' actors, each a process with its torch
   threads) over shares of the decoded photos, timed from a common start after model loading.
2. the pipeline: a child process runs `pipeline.dataflow.run` (what `python -m pipeline run`
   calls) on the photo folder with --num-cpus, style rect, the same models. Wall time of the
   child (interpreter start, imports, Ray startup, actors, model loading, the run, Ray
   shutdown), Ray's startup alone, the time to the first finished manifest part (actors start,
   models load, the stages fill), and the steady rate from there to the last part before the
   end-of-run flush.
3. the seed tool's way: a child process, one photo after another: read and decode (EXIF,
   RGB, stretch to the working size), transformers' SegformerImageProcessor + the model at batch
   1, logits upsampled and argmax, controlnet_aux's OpenposeDetector.detect_poses on the working
   image (body only; controlnet_aux's own Body loading the same body_pose_model.pth), the rect
   mask, upsampled to the photo and composited, the masked photo and the mask saved. It writes
   less than the pipeline (no parse map, keypoint JSON or manifest).

Ratios printed: (a) pipeline images/s (wall, Ray startup included) over the seed loop's images/s
(its loop only, model loading excluded: in its favour); (b) the pipeline's images/s (dataset run,
Ray startup excluded) over the slowest stage's images/s alone (a model stage with its whole pool;
a CPU task stage from one process, a lower bound). Also printed: the pipeline over the CPU-work
bound, cores / (the stages' CPU seconds per photo): on a CPU-only machine the stages share the same
cores, so the pipeline cannot beat it, and (b) cannot exceed the slowest stage's share of the CPU
work.

Models: --parser (default pipeline/assets/parser, the small trained parser) and --pose (default:
the OpenPose body network with random weights, seed 0, saved in the released key layout in the
work folder). Random pose weights find no people, so controlnet_aux's post-processing is cheaper
than with the real weights (see bench/RESULTS.md, Pose): the ratio (a) is conservative.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CATEGORY = "upper_body"


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=300, help="generated photos (default 300)")
    ap.add_argument("--photo-size", default="768x1024", help="generated photo size WxH (default 768x1024)")
    ap.add_argument("--work-size", default="576x768", help="working size WxH (default 576x768)")
    ap.add_argument("--num-cpus", type=int, default=2, help="CPUs of the pipeline's local Ray (default 2)")
    ap.add_argument("--parser", default=None, help="SegFormer folder (default pipeline/assets/parser)")
    ap.add_argument("--pose", default=None, help="folder with body_pose_model.pth (default: random weights)")
    ap.add_argument("--baseline-images", type=int, default=None, help="photos the seed loop does (default all)")
    ap.add_argument("--skip", default="", help="comma list of stages,pipeline,baseline to leave out")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "vton-throughput"),
                    help="scratch folder (photos are kept and reused; default TMPDIR/vton-throughput)")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--role", default="main", choices=("main", "pipeline", "baseline"), help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def _size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def prepare_photos(folder: Path, n: int, size: tuple[int, int]) -> list[Path]:
    """n generated person photos as JPEGs (kept across runs: same seeds, same files)."""
    from pipeline.testing.synthetic import write_dataset

    stamp = folder / f".done-{n}-{size[0]}x{size[1]}"
    if not stamp.exists():
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(folder.with_name(folder.name + "-truth"), ignore_errors=True)
        write_dataset(folder, n, seed=3_000_000, width=size[0], height=size[1])
        stamp.write_text("")
    return sorted(folder.glob("*.jpg"))


def prepare_pose(folder: Path) -> Path:
    """The OpenPose body network with random weights (seed 0), in the released key layout."""
    import torch

    from pipeline.pose import BODY_FILE, _bodypose_model_class

    target = folder / BODY_FILE
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        state = {k.split(".", 1)[1]: v for k, v in _bodypose_model_class()().state_dict().items()}
        torch.save(state, folder / "tmp.pth")
        os.replace(folder / "tmp.pth", target)
    return folder


def load() -> float:
    return round(os.getloadavg()[0], 2)


# --------------------------------------------------------------------------------------------
# 1. Stages alone


def stages_alone(paths: list[Path], parser: str, pose: str, work_size, num_cpus: int, out: Path) -> dict:
    """Each stage over all photos in turn, without Ray, as the pipeline configures it."""
    import torch

    from pipeline.compose import MaskStage
    from pipeline.config import RunConfig
    from pipeline.dataflow import CPU_BATCH, DECODE_BATCH, MASK_BATCH
    from pipeline.decode import decode_batch
    from pipeline.parser import ParseStage
    from pipeline.pose import PoseStage
    from pipeline.resources import plan_model_stages
    from pipeline.sinks import WriteStage
    from pipeline.sources import list_rows

    width, height = work_size
    write_batch = RunConfig(input="", output="").rows_per_part  # one manifest part per write batch
    plan = plan_model_stages(num_cpus, 0, stages=2, rows=len(paths))
    threads_before = torch.get_num_threads()
    common = dict(device="cpu", precision="fp32", torch_threads=plan.torch_threads, width=width, height=height)
    parse = ParseStage(parser, **common)
    pose_stage = PoseStage(pose, **common)
    shutil.rmtree(out, ignore_errors=True)
    write = WriteStage(str(out), {"parser": parser, "pose_model": pose, "style": "rect"})
    mask = MaskStage(style="rect", fill="green")
    table = list_rows(str(paths[0].parent), CATEGORY)
    rows = {name: np.asarray(table.column(name).to_pylist(), dtype=object)
            for name in ("id", "source", "category", "status", "error")}
    n = len(rows["id"])
    stages = [("decode", lambda b: decode_batch(b, width=width, height=height), DECODE_BATCH),
              ("parse", parse, CPU_BATCH), ("pose", pose_stage, CPU_BATCH), ("mask", mask, MASK_BATCH),
              ("write", write, write_batch)]
    # Warm-up on the first rows (first-call allocations, lazy imports), not counted.
    warm = {k: v[:CPU_BATCH] for k, v in rows.items()}
    for _name, stage, _ in stages[:-1]:
        warm = stage(warm)
    result = {"torch_threads": plan.torch_threads, "actors": plan.actors,
              "batches": {s: b for s, _, b in stages}, "stages": {}, "pools": {}}
    batches = [{k: v[i:i + DECODE_BATCH] for k, v in rows.items()} for i in range(0, n, DECODE_BATCH)]
    for name, stage, size in stages:
        merged = {k: _concat(k, [b[k] for b in batches]) for k in batches[0]}
        if name == "parse":
            decoded = merged  # the decode stage's output, for the pool runs below
        batches = [{k: v[i:i + size] for k, v in merged.items()} for i in range(0, n, size)]
        before = load()
        w0, c0 = time.perf_counter(), time.process_time()
        batches = [stage(b) for b in batches]
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        result["stages"][name] = {"images_per_s": n / wall, "wall_ms_per_image": 1e3 * wall / n,
                                  "cpu_ms_per_image": 1e3 * cpu / n, "load_before": before}
        print(f"  {name:<6} alone: {n / wall:7.2f} img/s  {1e3 * wall / n:8.1f} ms/image wall  "
              f"{1e3 * cpu / n:8.1f} ms/image CPU  (load {before})", flush=True)
    for name in ("parse", "pose"):
        pool = result["pools"][name] = pool_alone(name, decoded, parser if name == "parse" else pose,
                                                   plan.actors, plan.torch_threads, width, height, out.parent)
        print(f"  {name:<6} pool alone ({plan.actors} actors x {plan.torch_threads} threads, as in the pipeline): "
              f"{pool['images_per_s']:7.2f} img/s  (load {pool['load_before']})", flush=True)
    statuses = np.concatenate([b["status"] for b in batches])
    result["status"] = {str(s): int((statuses == s).sum()) for s in set(statuses.tolist())}
    # The stage alone as the pipeline runs it: model stages with their whole pool; the CPU tasks
    # from one process (a lower bound: the pipeline spreads them over every core).
    alone = {s: result["pools"].get(s, v)["images_per_s"] for s, v in result["stages"].items()}
    result["alone_images_per_s"] = alone
    result["slowest"] = min(alone, key=alone.get)
    torch.set_num_threads(threads_before)
    return result


def pool_alone(name: str, decoded: dict, source: str, actors: int, threads: int, width: int, height: int,
               work: Path, timeout_s: float = 3600) -> dict:
    """A model stage alone with the pipeline's pool: `actors` processes of `threads` torch threads,
    each over its share of the decoded photos, timed from a common start after loading and warm-up.
    """
    import multiprocessing
    import queue

    images_file = work / f"decoded-{width}x{height}.npy"
    np.save(images_file, decoded["image"])
    context = multiprocessing.get_context("spawn")
    shares = [share for share in np.array_split(np.arange(len(decoded["image"])), actors) if share.size]
    start, results = context.Barrier(len(shares)), context.Queue()
    before = load()
    workers = [context.Process(target=_pool_worker, daemon=True,
                               args=(name, str(images_file), share[0], share[-1] + 1, source, threads, width,
                                     height, start, results, timeout_s))
               for share in shares]
    timings = []
    try:
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + timeout_s
        while len(timings) < len(workers):
            try:
                timings.append(results.get(timeout=1.0))
            except queue.Empty:
                # A worker killed outright (out of memory, a crash) reports nothing: stop waiting.
                dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} pool: a worker died (exit codes {dead})" if dead
                                       else f"{name} pool: no result after {timeout_s:.0f} s") from None
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join()
        images_file.unlink(missing_ok=True)
    if any("error" in t for t in timings):
        raise RuntimeError(f"{name} pool worker failed: {[t['error'] for t in timings if 'error' in t]}")
    wall = max(t["end"] for t in timings) - min(t["start"] for t in timings)
    n = sum(t["images"] for t in timings)
    return {"images_per_s": n / wall, "wall_s": wall, "actors": len(workers), "torch_threads": threads,
            "cpu_ms_per_image": 1e3 * sum(t["cpu_s"] for t in timings) / n, "load_before": before}


def _pool_worker(name, images_file, first, end, source, threads, width, height, start, results, timeout_s):
    try:
        sys.path.insert(0, str(REPO))
        from pipeline.dataflow import CPU_BATCH
        from pipeline.schema import PENDING

        if name == "parse":
            from pipeline.parser import ParseStage as Stage
        else:
            from pipeline.pose import PoseStage as Stage
        images = np.load(images_file, mmap_mode="r")[first:end]
        stage = Stage(source, device="cpu", precision="fp32", torch_threads=threads, width=width, height=height)
        batches = [{"image": np.ascontiguousarray(images[i:i + CPU_BATCH]),
                    "status": np.full(len(images[i:i + CPU_BATCH]), PENDING, dtype=object),
                    "error": np.full(len(images[i:i + CPU_BATCH]), "", dtype=object)}
                   for i in range(0, len(images), CPU_BATCH)]
        stage(batches[0])  # warm-up, not counted
        start.wait(timeout=timeout_s)
        began, cpu = time.time(), time.process_time()
        for batch in batches:
            stage(batch)
        results.put({"start": began, "end": time.time(), "images": len(images), "cpu_s": time.process_time() - cpu})
    except Exception as error:  # reported to the parent, which raises
        start.abort()
        results.put({"error": f"{type(error).__name__}: {error}"})


def _concat(name, parts):
    if parts[0].dtype == object:
        out = np.empty(sum(len(p) for p in parts), dtype=object)
        out[:] = [v for p in parts for v in p]
        return out
    return np.concatenate(parts)


# --------------------------------------------------------------------------------------------
# 2. The pipeline (child process)


def child_pipeline(args) -> dict:
    started = time.perf_counter()
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from pipeline import dataflow
    from pipeline.config import RunConfig

    config = RunConfig(input=str(Path(args.work) / "photos"), output=str(Path(args.work) / "out-pipeline"),
                       category=CATEGORY, style="rect", parser=args.parser, pose=args.pose,
                       width=_size(args.work_size)[0], height=_size(args.work_size)[1],
                       num_cpus=args.num_cpus, progress="lines")
    imported = time.perf_counter()
    dataflow.init_ray(config)
    ray_ready = time.perf_counter()
    marks, left = [], {}
    epoch_ready = time.time()

    def on_progress(progress):
        marks.append((time.perf_counter(), progress.done))
        for name, times in progress.last_left.items():  # when each row left each stage
            left.setdefault(name, []).extend((np.asarray(times) - epoch_ready).tolist())

    summary = dataflow.run(config, overwrite=True, on_progress=on_progress)
    finished = time.perf_counter()
    return {"import_s": imported - started, "ray_init_s": ray_ready - imported, "run_s": finished - ray_ready,
            "marks": [(t - ray_ready, d) for t, d in marks], "summary": summary,
            "left": {name: sorted(times) for name, times in left.items()}}


TIMELINE_SHARES = (0.01, 0.1, 0.25, 0.5, 0.75, 1.0)


def timeline(left: dict) -> dict:
    """Seconds after Ray's start-up at which each share of the rows had left each stage."""
    table = {}
    for name in ("left_decode", "left_parse", "left_pose", "left_mask", "left_write"):
        times = left.get(name)
        if times:
            table[name[len("left_"):]] = {f"{share:.0%}": round(times[max(0, int(round(share * len(times))) - 1)], 2)
                                          for share in TIMELINE_SHARES}
    return table


def steady_rate(marks: list, flush_s: float = 1.0) -> float | None:
    """Rows/s between the first finished write batch and the last one before the end-of-run flush.

    marks: (seconds, rows done) per finished batch. Rows wait in the write stage until a whole
    manifest part (64 rows) is ready, and the last parts all finish together when the model
    stages drain, so batches within `flush_s` of the last one are left out.
    """
    kept = [m for m in marks if m[0] <= marks[-1][0] - flush_s] if marks else []
    if len(kept) < 2 or kept[-1][0] <= kept[0][0]:
        return None
    return (kept[-1][1] - kept[0][1]) / (kept[-1][0] - kept[0][0])


def run_pipeline(args) -> dict:
    result_path = Path(args.work) / "pipeline-result.json"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_DATA_DISABLE_PROGRESS_BARS"] = "1"
    command = [sys.executable, str(Path(__file__).resolve()), "--role", "pipeline", "--result", str(result_path),
               "--work", args.work, "--parser", args.parser, "--pose", args.pose, "--num-cpus", str(args.num_cpus),
               "--work-size", args.work_size]
    before = load()
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=str(REPO), capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"pipeline child failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result = json.loads(result_path.read_text())
    n = result["summary"]["this_run"]["rows"]
    marks = result.pop("marks")
    steady = steady_rate(marks)
    left = result.pop("left")
    # The first manifest part is on disk when the write stage finishes its first batch (the
    # driver may hear of it later).
    first = min(left["left_write"]) if left.get("left_write") else (marks[0][0] if marks else None)
    result.update(wall_s=wall, images=n, load_before=before, images_per_s_wall=n / wall,
                  images_per_s_without_ray_startup=n / result["run_s"], images_per_s_steady=steady,
                  first_batch_after_s=marks[0][0] if marks else None, first_part_written_s=first,
                  first_part_share_of_run=first / result["run_s"] if first else None, timeline=timeline(left))
    return result


# --------------------------------------------------------------------------------------------
# 3. The seed tool's way (child process)


def child_baseline(args) -> dict:
    started = time.perf_counter()
    import warnings

    warnings.simplefilter("ignore")
    import cv2
    import torch
    import torch.nn.functional as F
    from controlnet_aux.open_pose import OpenposeDetector
    from controlnet_aux.open_pose.body import Body
    from PIL import Image, ImageOps
    from transformers import SegformerForSemanticSegmentation, SegformerImageProcessor
    from transformers.utils import logging as transformers_logging

    from pipeline.labels import mapping_for
    from pipeline.masks import make_mask
    from pipeline.pose import BODY_FILE

    transformers_logging.disable_progress_bar()
    width, height = _size(args.work_size)
    processor = SegformerImageProcessor.from_pretrained(args.parser)
    model = SegformerForSemanticSegmentation.from_pretrained(args.parser).eval()
    mapping = mapping_for(model.config.id2label)
    detector = OpenposeDetector(Body(os.path.join(args.pose, BODY_FILE)))
    out = Path(args.work) / "out-baseline"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    paths = sorted((Path(args.work) / "photos").glob("*.jpg"))[: args.baseline_images]
    loaded = time.perf_counter()
    persons = 0
    for path in paths:
        photo = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        work = photo.resize((width, height), Image.Resampling.BILINEAR)
        inputs = processor(images=work, return_tensors="pt")
        with torch.no_grad():
            logits = model(**inputs).logits
        logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        labels = mapping.apply(logits.argmax(dim=1)[0].numpy().astype(np.uint8))
        poses = detector.detect_poses(np.asarray(work))
        keypoints = np.full((18, 3), np.nan, np.float32)
        if poses:
            persons += len(poses)
            for i, point in enumerate(poses[0].body.keypoints[:18]):
                if point is not None:
                    keypoints[i] = (point.x * width, point.y * height, point.score)
        mask = make_mask(labels, keypoints, CATEGORY, "rect")
        full = cv2.resize(mask, photo.size, interpolation=cv2.INTER_NEAREST)
        masked = np.asarray(photo).copy()
        masked[full > 0] = (0, 255, 0)
        Image.fromarray(masked).save(out / f"{path.stem}_masked.jpg", quality=95)
        Image.fromarray(full).save(out / f"{path.stem}_mask.png")
    finished = time.perf_counter()
    return {"images": len(paths), "startup_s": loaded - started, "loop_s": finished - loaded,
            "persons": persons, "torch_threads": torch.get_num_threads()}


def run_baseline(args) -> dict:
    result_path = Path(args.work) / "baseline-result.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--role", "baseline", "--result", str(result_path),
               "--work", args.work, "--parser", args.parser, "--pose", args.pose, "--work-size", args.work_size]
    if args.baseline_images:
        command += ["--baseline-images", str(args.baseline_images)]
    before = load()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=str(REPO), capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"baseline child failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result = json.loads(result_path.read_text())
    result.update(wall_s=wall, load_before=before, images_per_s=result["images"] / result["loop_s"],
                  images_per_s_wall=result["images"] / wall)
    return result


# --------------------------------------------------------------------------------------------


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.role != "main":
        result = child_pipeline(args) if args.role == "pipeline" else child_baseline(args)
        Path(args.result).write_text(json.dumps(result, default=str))
        return result
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    args.parser = args.parser or str(REPO / "pipeline" / "assets" / "parser")
    if not (Path(args.parser) / "config.json").exists():
        raise SystemExit(f"no parser at {args.parser}: pass --parser DIR")
    args.pose = args.pose or str(prepare_pose(work / "openpose-random"))
    args.parser, args.pose = str(Path(args.parser).resolve()), str(Path(args.pose).resolve())
    started = time.perf_counter()
    paths = prepare_photos(work / "photos", args.images, _size(args.photo_size))
    import torch

    results = {"images": len(paths), "photo_size": args.photo_size, "work_size": args.work_size,
               "num_cpus": args.num_cpus, "cpu_count": os.cpu_count(), "parser": args.parser,
               "pose": args.pose, "torch": torch.__version__, "generate_s": time.perf_counter() - started,
               "command": "python bench/throughput.py " + " ".join(a for a in (argv or sys.argv[1:]))}
    print(f"{len(paths)} photos {args.photo_size} in {work / 'photos'}; parser {args.parser}; pose {args.pose}",
          flush=True)
    if "stages" not in skip:
        print("1. stages alone (no Ray, the pipeline's batches and threads):", flush=True)
        results["stages"] = stages_alone(paths, args.parser, args.pose, _size(args.work_size), args.num_cpus,
                                         work / "out-stages")
    if "pipeline" not in skip:
        print(f"2. the pipeline (dataflow.run, --num-cpus {args.num_cpus}) ...", flush=True)
        p = results["pipeline"] = run_pipeline(args)
        print(f"  {p['images']} photos: wall {p['wall_s']:.1f} s ({p['images_per_s_wall']:.2f} img/s) of which Ray "
              f"startup {p['ray_init_s']:.1f} s, imports {p['import_s']:.1f} s; dataset run {p['run_s']:.1f} s "
              f"({p['images_per_s_without_ray_startup']:.2f} img/s); "
              f"first part after {p['first_batch_after_s'] or 0:.1f} s, "
              f"then steady {p['images_per_s_steady'] or 0:.2f} img/s; "
              f"status {p['summary']['status']} (load {p['load_before']})", flush=True)
        print(f"  first manifest part written {p['first_part_written_s'] or 0:.1f} s in, at "
              f"{p['first_part_share_of_run'] or 0:.1%} of the dataset run; rows out per stage, seconds after "
              "Ray's start-up:", flush=True)
        print("  " + "stage".ljust(8) + "".join(share.rjust(8) for share in next(iter(p["timeline"].values()), {})))
        for stage, marks_at in p["timeline"].items():
            print("  " + stage.ljust(8) + "".join(f"{t:8.1f}" for t in marks_at.values()), flush=True)
    if "baseline" not in skip:
        print("3. the seed tool's way (one photo after another) ...", flush=True)
        b = results["baseline"] = run_baseline(args)
        print(f"  {b['images']} photos: loop {b['loop_s']:.1f} s ({b['images_per_s']:.2f} img/s), model loading "
              f"{b['startup_s']:.1f} s, {b['torch_threads']} torch threads (load {b['load_before']})", flush=True)
    ratios = {}
    if "pipeline" in results and "baseline" in results:
        p, b = results["pipeline"], results["baseline"]
        ratios["a_pipeline_vs_seed_loop"] = p["images_per_s_wall"] / b["images_per_s"]
        ratios["a_without_ray_startup"] = p["images_per_s_without_ray_startup"] / b["images_per_s"]
    if "pipeline" in results and "stages" in results:
        p, s = results["pipeline"], results["stages"]
        slowest = s["alone_images_per_s"][s["slowest"]]
        ratios["b_pipeline_vs_slowest_stage"] = p["images_per_s_without_ray_startup"] / slowest
        ratios["b_wall_vs_slowest_stage"] = p["images_per_s_wall"] / slowest
        if p["images_per_s_steady"]:
            ratios["b_steady_vs_slowest_stage"] = p["images_per_s_steady"] / slowest
        cpu = {k: v["cpu_ms_per_image"] for k, v in s["stages"].items()}
        results["cpu_ms_per_image"] = cpu
        # What the machine could do if every core ran stage work and nothing else.
        results["cpu_bound_images_per_s"] = args.num_cpus * 1e3 / sum(cpu.values())
        ratios["pipeline_vs_cpu_bound"] = p["images_per_s_without_ray_startup"] / results["cpu_bound_images_per_s"]
    results["ratios"] = ratios
    if ratios:
        print("ratios:")
        if "a_pipeline_vs_seed_loop" in ratios:
            print(f"  (a) pipeline / seed loop: {ratios['a_pipeline_vs_seed_loop']:.2f}x (pipeline wall with Ray "
                  f"startup; {ratios['a_without_ray_startup']:.2f}x without it)  target >= 3")
        if "b_pipeline_vs_slowest_stage" in ratios:
            print(f"  (b) pipeline / slowest stage alone ({results['stages']['slowest']}): "
                  f"{ratios['b_pipeline_vs_slowest_stage']:.2f} (dataset run); {ratios['b_wall_vs_slowest_stage']:.2f} "
                  f"(wall with Ray startup); {ratios.get('b_steady_vs_slowest_stage', float('nan')):.2f} "
                  "(steady)  target >= 0.8")
            print(f"  pipeline / CPU-work bound ({args.num_cpus} cores / "
                  f"{sum(results['cpu_ms_per_image'].values()):.0f} "
                  f"ms of stage CPU per photo = {results['cpu_bound_images_per_s']:.2f} img/s): "
                  f"{ratios['pipeline_vs_cpu_bound']:.2f} (dataset run)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return results


if __name__ == "__main__":
    main()
