"""GPU check: the model stages' throughput, peak memory against the memory model, precision
agreement and torch.compile, on one GPU, calling the stages directly (no Ray).

    python bench/gpu_check.py --json gpu_check.json      # on a GPU machine (see bench/GPU_CHECK.md)
    python bench/gpu_check.py --device cpu --quick       # the CPU path in seconds (the CI smoke test)

Sections (--sections, default all of them):

env        python, torch, the card's name, capability, memory, bf16 support.
parse      SegFormer-B5 with random weights from the B5 config (nvidia/mit-b5 shapes, 18 ATR
           labels), the model input at 512x512 (the default checkpoint's preprocessing) and at
           576x768 (the working size, no resize): batch sizes x precisions, images/s of
           SegformerParser.parse (uint8 host images in, canonical label maps out: upload,
           normalize, forward, upsample, argmax, download), peak allocated memory, and the
           memory model (pipeline.batching.probe at batches 1 and 4 on zeros, as the stage
           runs it) against the measured peak at every batch.
pose       PoseEstimator (random OpenPose body weights, saved in the released key layout) at the
           working size: the same sweep and memory comparison; then the post-processing alone on
           maps synthesized from 1-3 known skeletons per image (random weights find nobody), wall
           and CPU ms per image: the part association runs on the CPU, one image after another.
chain      decode -> ParseStage (B5 at the first --parse-sizes, 512x512) -> PoseStage -> MaskStage -> WriteStage on
           generated 768x1024 JPEG photos, one stage after another per batch, with the batch
           sizes the stages derive from the GPU's memory: images/s of the GPU part
           (parse + pose) and of the whole chain, and the CPU seconds per image of every stage
           (how many CPU cores keep one GPU fed).
agreement  the small trained parser (pipeline/assets/parser) on generated photos: the share of
           pixels whose label in bf16 / fp16 equals fp32's (target >= 99%).
compile    SegFormer-B5 at 512x512 with and without torch.compile at one batch size: compile
           time, images/s, agreement with eager.

What runs where: random weights time the same as real ones (the networks are the same); the
pose post-processing finds few or no people on random heatmaps, so it is lighter than with the
real weights (see bench/RESULTS.md, Pose). Modules the machine lacks (controlnet_aux for the
body network's definition, pyarrow for the write stage) are taken from wheels in --wheels
(default .whl/), unpacked into a temporary folder: nothing is installed.
"""
from __future__ import annotations

import argparse
import gc
import glob
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GIB = 1024 ** 3
SECTIONS = ("env", "parse", "pose", "chain", "agreement", "compile")

# SegFormer encoder shapes (transformers' SegformerConfig arguments), from the nvidia/mit-b* configs.
ARCHS = {
    "b5": dict(depths=[3, 6, 40, 3], hidden_sizes=[64, 128, 320, 512], decoder_hidden_size=768,
               num_attention_heads=[1, 2, 5, 8], sr_ratios=[8, 4, 2, 1], mlp_ratios=[4, 4, 4, 4]),
    "b2": dict(depths=[3, 4, 6, 3], hidden_sizes=[64, 128, 320, 512], decoder_hidden_size=768,
               num_attention_heads=[1, 2, 5, 8], sr_ratios=[8, 4, 2, 1], mlp_ratios=[4, 4, 4, 4]),
    "b0": dict(depths=[2, 2, 2, 2], hidden_sizes=[32, 64, 160, 256], decoder_hidden_size=256,
               num_attention_heads=[1, 2, 5, 8], sr_ratios=[8, 4, 2, 1], mlp_ratios=[4, 4, 4, 4]),
}
# Module -> wheel name prefix, for modules a bare GPU machine may lack.
WHEELS = {"controlnet_aux": "controlnet_aux", "pyarrow": "pyarrow", "PIL": "pillow"}


# --------------------------------------------------------------------------------------------
# Setup


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes and batches (a SegFormer-B0 config instead of B5): checks that it runs")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    ap.add_argument("--arch", default=None, choices=sorted(ARCHS), help="SegFormer size (default b5; b0 with --quick)")
    ap.add_argument("--parse-sizes", default=None, help="model input sizes WxH (default 512x512,576x768)")
    ap.add_argument("--parse-batches", default=None, help="default 1,8,32,64,128,256")
    ap.add_argument("--pose-batches", default=None, help="default 1,8,32,64,128")
    ap.add_argument("--precisions", default=None,
                    help="default fp32,bf16,fp16 on CUDA (bf16 if supported), fp32,bf16 on CPU")
    ap.add_argument("--work-size", default=None, help="the pipeline's working size WxH (default 576x768)")
    ap.add_argument("--chain-images", type=int, default=None, help="photos through the chain (default 512)")
    ap.add_argument("--photo-size", default=None, help="generated photo size WxH (default 768x1024)")
    ap.add_argument("--agreement-parser", default=str(REPO / "pipeline" / "assets" / "parser"),
                    help="the small trained parser (default pipeline/assets/parser)")
    ap.add_argument("--agreement-images", type=int, default=None, help="default 64")
    ap.add_argument("--compile", dest="compile", action="store_true", default=None,
                    help="run the compile section on the CPU too (default: only on CUDA; minutes on a CPU)")
    ap.add_argument("--no-compile", dest="compile", action="store_false", help="skip the compile section")
    ap.add_argument("--compile-batch", type=int, default=64)
    ap.add_argument("--min-seconds", type=float, default=None,
                    help="time each point for at least this long (default 1.0; 0 with --quick)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--wheels", default=str(REPO / ".whl"), help="folder of wheels for missing modules")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one, removed)")
    ap.add_argument("--json", default=None, help="write all results here")
    args = ap.parse_args(argv)
    cuda = args.device.startswith("cuda")
    quick = args.quick
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}")
    def pick(value, full, small):
        return value if value is not None else (small if quick else full)

    args.arch = pick(args.arch, "b5", "b0")
    args.parse_sizes = _sizes(pick(args.parse_sizes, "512x512,576x768", "128x128,96x128"))
    args.parse_batches = _ints(pick(args.parse_batches, "1,8,32,64,128,256", "1,2"))
    args.pose_batches = _ints(pick(args.pose_batches, "1,8,32,64,128", "1,2"))
    args.work_size = _sizes(pick(args.work_size, "576x768", "96x128"))[0]
    args.photo_size = _sizes(pick(args.photo_size, "768x1024", "192x256"))[0]
    args.chain_images = pick(args.chain_images, 512, 4)
    args.agreement_images = pick(args.agreement_images, 64, 2)
    args.min_seconds = pick(args.min_seconds, 1.0, 0.0)
    if args.precisions is None:
        args.precisions = None  # decided once torch is imported (bf16 support)
    else:
        args.precisions = [p.strip() for p in args.precisions.split(",")]
    if args.compile is None:
        args.compile = cuda
    if not args.compile and "compile" in args.sections:
        args.sections.remove("compile")
    return args


def _ints(text: str) -> list[int]:
    return [int(v) for v in str(text).split(",") if v.strip()]


def _sizes(text: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in s.lower().split("x")) for s in str(text).split(",") if s.strip()]


def use_wheels(folder: str, modules=tuple(WHEELS)) -> list[str]:
    """Puts wheels of missing modules on sys.path (unpacked into a temporary folder); returns notes."""
    notes = []
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for module in modules:
        try:
            if importlib.util.find_spec(module) is not None:
                continue
        except (ImportError, ValueError):
            pass
        prefix = WHEELS[module]
        candidates = [w for w in sorted(glob.glob(os.path.join(folder, f"{prefix}-*.whl")))
                      if "-none-any" in w or f"-{tag}-" in w]
        if not candidates:
            notes.append(f"{module}: not installed and no {prefix}-*.whl for {tag} in {folder}")
            continue
        target = tempfile.mkdtemp(prefix=f"wheel-{prefix}-")
        with zipfile.ZipFile(candidates[-1]) as wheel:
            wheel.extractall(target)
        sys.path.insert(0, target)
        importlib.invalidate_caches()
        notes.append(f"{module}: from {os.path.basename(candidates[-1])}")
    return notes


def sync(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


def release(device) -> None:
    gc.collect()
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def timed(fn, device, min_seconds: float, min_calls: int = 2, max_calls: int = 200) -> float:
    """Seconds per call of fn, after one warm-up call."""
    fn()
    sync(device)
    calls, start = 0, time.perf_counter()
    while calls < min_calls or (time.perf_counter() - start < min_seconds and calls < max_calls):
        fn()
        calls += 1
    sync(device)
    return (time.perf_counter() - start) / calls


def peak_memory(fn, device) -> tuple[float, float]:
    """(peak allocated, peak reserved) bytes of one call, measured like pipeline.batching.probe."""
    import torch

    sync(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    sync(device)
    return float(torch.cuda.max_memory_allocated(device)), float(torch.cuda.max_memory_reserved(device))


def compare_memory(model, points: list[tuple[int, float]]) -> list[dict]:
    """The memory model's prediction against measured peaks: one row per (batch, bytes) point."""
    rows = []
    for batch, measured in points:
        predicted = model.predict(batch)
        rows.append({"batch": batch, "measured_gib": measured / GIB, "predicted_gib": predicted / GIB,
                     "error_pct": 100.0 * (predicted - measured) / measured})
    return rows


def photos(n: int, width: int, height: int, first_seed: int = 2_000_000) -> np.ndarray:
    """n generated person photos (uint8 RGB) at width x height; seeds apart from the parser's training set."""
    from pipeline.testing.synthetic import make_person

    return np.stack([make_person(first_seed + i, width, height).image for i in range(n)])


def tile(images: np.ndarray, n: int) -> np.ndarray:
    return images[np.arange(n) % len(images)]


def build_segformer(folder: Path, arch: str, sizes) -> dict:
    """A random-weight SegFormer of `arch` saved once, and one checkpoint folder per input size."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    from pipeline.labels import CANONICAL

    base = folder / f"segformer-{arch}"
    if not (base / "config.json").exists():
        torch.manual_seed(0)
        config = SegformerConfig(num_labels=len(CANONICAL), id2label=dict(enumerate(CANONICAL)),
                                 label2id={n: i for i, n in enumerate(CANONICAL)}, **ARCHS[arch])
        SegformerForSemanticSegmentation(config).save_pretrained(base)
    out = {}
    for width, height in sizes:
        target = folder / f"segformer-{arch}-{width}x{height}"
        if not target.exists():
            target.mkdir(parents=True)
            for item in base.iterdir():
                try:
                    os.symlink(item.resolve(), target / item.name)
                except OSError:
                    shutil.copy(item, target / item.name)
            SegformerImageProcessor(size={"height": height, "width": width}).save_pretrained(target)
        out[(width, height)] = target
    return out


def build_pose(folder: Path) -> Path:
    """The OpenPose body network with random weights (seed 0), saved in the released key layout."""
    import torch

    from pipeline.pose import BODY_FILE, _bodypose_model_class

    target = folder / "openpose-random" / BODY_FILE
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        state = {k.split(".", 1)[1]: v for k, v in _bodypose_model_class()().state_dict().items()}
        torch.save(state, target)
    return target.parent


# --------------------------------------------------------------------------------------------
# Sections


def section_env(args, device) -> dict:
    import torch
    import transformers

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "device": str(device), "host": platform.node(),
            "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(card=torch.cuda.get_device_name(device), capability=f"{props.major}.{props.minor}",
                    memory_gib=props.total_memory / GIB, bf16=torch.cuda.is_bf16_supported(),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    driver_free_gib=torch.cuda.mem_get_info(device)[0] / GIB)
    else:
        info.update(card=f"CPU ({platform.processor() or platform.machine()}), {torch.get_num_threads()} torch threads")
    return info


def sweep(name: str, run, images: np.ndarray, batches, device, min_seconds: float,
          probe_run=None, extra: dict | None = None) -> tuple[list[dict], dict | None]:
    """images/s and peak memory of run(batch_images) per batch size; OOM ends the sweep."""
    from pipeline.batching import DEFAULT_BUDGET, is_out_of_memory, memory_budget, probe

    cuda = device.type == "cuda"
    rows, points, model_info = [], [], None
    model = None
    if cuda and probe_run is not None:
        model = probe(probe_run, device)
        budget = memory_budget(device, share=0.5, budget=DEFAULT_BUDGET)
        model_info = {**(extra or {}), "fixed_gib": model.fixed / GIB, "per_image_gib": model.per_image / GIB,
                      "budget_gib_at_share_0.5": budget / GIB,
                      "stage_batch_at_share_0.5": model.largest_batch(budget, cap=64)}
    for batch in batches:
        chunk = tile(images, batch)
        row = {"stage": name, **(extra or {}), "batch": batch}
        try:
            seconds = timed(lambda chunk=chunk: run(chunk), device, min_seconds)
            row.update(images_per_s=batch / seconds, ms_per_batch=seconds * 1e3)
            if cuda:
                allocated, reserved = peak_memory(lambda chunk=chunk: run(chunk), device)
                row.update(peak_gib=allocated / GIB, reserved_gib=reserved / GIB)
                points.append((batch, allocated))
                if model is not None:
                    row.update(compare_memory(model, [(batch, allocated)])[0])
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            row.update(oom=True)
            rows.append(row)
            release(device)
            print_row(row)
            break
        rows.append(row)
        print_row(row)
    if model_info is not None and points:
        errors = [abs(r["error_pct"]) for r in rows if "error_pct" in r]
        model_info["max_abs_error_pct"] = max(errors)
        model_info["max_abs_error_pct_batch_ge_8"] = max([abs(r["error_pct"]) for r in rows
                                                          if "error_pct" in r and r["batch"] >= 8] or [float("nan")])
        print(f"  memory model {model_info['fixed_gib']:.3f} GiB + "
              f"{model_info['per_image_gib'] * 1024:.1f} MiB/image; "
              f"max |error| {model_info['max_abs_error_pct']:.1f}%; the stage would pick batch "
              f"{model_info['stage_batch_at_share_0.5']} at share 0.5 "
              f"(budget {model_info['budget_gib_at_share_0.5']:.1f} GiB)")
    return rows, model_info


def print_row(row: dict) -> None:
    head = f"  {row['stage']:<5} {row.get('size', ''):>8} {row.get('precision', ''):>5} batch {row['batch']:>4}"
    if row.get("oom"):
        print(head + "  out of memory")
        return
    text = head + f"  {row['images_per_s']:9.1f} img/s  {row['ms_per_batch']:9.1f} ms/batch"
    if "peak_gib" in row:
        text += f"  peak {row['peak_gib']:7.3f} GiB (reserved {row['reserved_gib']:7.3f})"
    if "predicted_gib" in row:
        text += f"  predicted {row['predicted_gib']:7.3f} GiB ({row['error_pct']:+5.1f}%)"
    print(text, flush=True)


def section_parse(args, device, precisions, folders) -> dict:
    from pipeline.parser import SegformerParser

    rows, models = [], []
    for (width, height), folder in folders.items():
        parser = SegformerParser(str(folder), labels="atr18", device=str(device), precision="fp32")
        images = photos(8, width, height)
        def zeros(n, height=height, width=width):
            return np.zeros((n, height, width, 3), np.uint8)

        for precision in precisions:
            parser.precision = precision  # autocast reads it on every call
            print(f"parse: SegFormer-{args.arch.upper()} (random weights) {width}x{height} {precision}", flush=True)
            extra = {"model": f"segformer-{args.arch}", "size": f"{width}x{height}", "precision": precision}
            found, info = sweep("parse", parser.parse, images, args.parse_batches, device, args.min_seconds,
                                probe_run=lambda n, parser=parser, zeros=zeros: parser.parse(zeros(n)), extra=extra)
            rows += found
            if info:
                models.append(info)
            release(device)
        parser = None
        release(device)
    return {"rows": rows, "memory_models": models}


def section_pose(args, device, precisions, pose_dir) -> dict:
    from pipeline.pose import PoseEstimator

    width, height = args.work_size
    images = photos(8, width, height)
    rows, models = [], []
    for precision in precisions:
        if precision == "fp16" and device.type == "cpu":
            continue
        estimator = PoseEstimator(str(pose_dir), device=device, precision=precision,
                                  batch_size=max(args.pose_batches))
        print(f"pose: OpenPose body (random weights) {width}x{height} {precision}", flush=True)
        extra = {"model": "openpose-body", "size": f"{width}x{height}", "precision": precision}

        def zeros(n):
            return np.zeros((n, height, width, 3), np.uint8)

        found, info = sweep("pose", estimator.estimate, images, args.pose_batches, device, args.min_seconds,
                            probe_run=lambda n, estimator=estimator, zeros=zeros: estimator.estimate(zeros(n)),
                            extra=extra)
        rows += found
        if info:
            models.append(info)
        estimator = None
        release(device)
    return {"rows": rows, "memory_models": models, "post_with_people": pose_post_with_people(args, device)}


def pose_post_with_people(args, device, images: int = 32) -> dict:
    """Pose post-processing on network outputs synthesized from known skeletons (1-3 people per
    image): random weights find nobody, so this is the part the sweep above under-states."""
    import torch

    from pipeline import pose_post as pp
    from pipeline.testing import pose_maps as pm

    width, height = args.work_size
    images = images if not args.quick else 2
    rng = np.random.default_rng(1)
    maps = [pm.synthesize_maps(pm.synthetic_scene(1 + i % 3, height, width, rng), height, width)
            for i in range(images)]
    pafs = torch.from_numpy(np.stack([m[0] for m in maps])).to(device)
    heat = torch.from_numpy(np.stack([m[1] for m in maps])).to(device)
    device_maps = pp.DeviceMaps()
    with torch.inference_mode():
        pp.postprocess(pafs[:1], heat[:1], height, width, device_maps)  # warm-up
        sync(device)
        w0, c0 = time.perf_counter(), time.process_time()
        people = pp.postprocess(pafs, heat, height, width, device_maps)
        sync(device)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    result = {"images": images, "persons": int(sum(len(p) for p in people)),
              "wall_ms_per_image": 1e3 * wall / images, "cpu_ms_per_image": 1e3 * cpu / images}
    print(f"  post-processing with people (synthesized maps, {result['persons']} persons in {images} images): "
          f"{result['wall_ms_per_image']:.2f} ms/image wall, {result['cpu_ms_per_image']:.2f} ms/image CPU; "
          f"this caps one pose actor at {1e3 / result['wall_ms_per_image']:.0f} img/s", flush=True)
    return result


def section_chain(args, device, precision, parser_dir, pose_dir, work: Path) -> dict:
    """decode -> parse -> pose -> masks -> write on generated JPEGs, one stage after another per batch."""
    from PIL import Image

    from pipeline.compose import MaskStage
    from pipeline.decode import decode_batch
    from pipeline.parser import ParseStage
    from pipeline.pose import PoseStage
    from pipeline.schema import PENDING
    from pipeline.sinks import WriteStage

    width, height = args.work_size
    photo_w, photo_h = args.photo_size
    folder = work / "chain-photos"
    folder.mkdir(parents=True, exist_ok=True)
    distinct = min(16, args.chain_images)
    paths = []
    for i, image in enumerate(photos(distinct, photo_w, photo_h)):
        path = folder / f"person_{i:03d}.jpg"
        Image.fromarray(image).save(path, quality=90)
        paths.append(str(path))
    n = args.chain_images
    ray_batch = 64 if device.type == "cuda" else 4  # Ray's batch for the model stages (--max-batch-size / CPU)
    common = dict(device=str(device), precision=precision, batch_size=None, max_batch_size=64, gpu_share=0.5,
                  probe=True, width=width, height=height)
    started = time.perf_counter()
    parse = ParseStage(str(parser_dir), labels="atr18", **common)
    pose = PoseStage(str(pose_dir), **common)
    setup_s = time.perf_counter() - started
    mask = MaskStage(style="rect", fill="green")
    write = WriteStage(str(work / "chain-out"), {"parser": str(parser_dir), "pose_model": str(pose_dir),
                                                 "style": "rect"})
    stages = [("decode", lambda b: decode_batch(b, width=width, height=height)), ("parse", parse),
              ("pose", pose), ("mask", mask), ("write", write)]
    wall = dict.fromkeys([s for s, _ in stages], 0.0)
    cpu = dict.fromkeys(wall, 0.0)
    statuses = {}

    def rows(start, stop):
        ids = [f"row_{i:06d}" for i in range(start, stop)]
        return {"id": np.array(ids, dtype=object),
                "source": np.array([paths[i % len(paths)] for i in range(start, stop)], dtype=object),
                "category": np.array(["upper_body"] * (stop - start), dtype=object),
                "status": np.array([PENDING] * (stop - start), dtype=object),
                "error": np.array([""] * (stop - start), dtype=object)}

    # One warm-up batch (cuDNN autotuning, first-call allocations), not counted.
    batch = rows(0, min(ray_batch, n))
    for _, stage in stages:
        batch = stage(batch)
    for start in range(0, n, ray_batch):
        batch = rows(start, min(n, start + ray_batch))
        for name, stage in stages:
            w0, c0 = time.perf_counter(), time.process_time()
            batch = stage(batch)
            sync(device)
            wall[name] += time.perf_counter() - w0
            cpu[name] += time.process_time() - c0
        for s in batch["status"]:
            statuses[str(s)] = statuses.get(str(s), 0) + 1
    gpu_s = wall["parse"] + wall["pose"]
    cpu_stage_cpu_s = cpu["decode"] + cpu["mask"] + cpu["write"]
    result = {
        "images": n, "photo_size": f"{photo_w}x{photo_h}", "work_size": f"{width}x{height}",
        "precision": precision, "parse_batch": parse.run.batch_size, "pose_batch": pose.run.batch_size,
        "parse_memory_model": _model_dict(parse.memory_model), "pose_memory_model": _model_dict(pose.memory_model),
        "setup_s": setup_s, "status": statuses,
        "wall_ms_per_image": {k: 1e3 * v / n for k, v in wall.items()},
        "cpu_ms_per_image": {k: 1e3 * v / n for k, v in cpu.items()},
        "gpu_part_images_per_s": n / gpu_s,
        "chain_images_per_s": n / sum(wall.values()),
        # CPU cores the decode, mask and write tasks need to keep up with the GPU part.
        "cpu_cores_per_gpu_for_cpu_stages": cpu_stage_cpu_s / gpu_s,
        # Host CPU the model stages themselves use while they run (their share of a core or more).
        "model_stage_cpu_share": (cpu["parse"] + cpu["pose"]) / gpu_s,
    }
    print(f"chain: {n} photos {photo_w}x{photo_h}, working {width}x{height}, {precision}; batches: "
          f"parse {result['parse_batch']}, pose {result['pose_batch']}; status {statuses}")
    for name in wall:
        print(f"  {name:<6} {result['wall_ms_per_image'][name]:8.2f} ms/image wall  "
              f"{result['cpu_ms_per_image'][name]:8.2f} ms/image CPU")
    print(f"  GPU part (parse + pose) {result['gpu_part_images_per_s']:.1f} img/s; whole chain, one stage after "
          f"another in one process: {result['chain_images_per_s']:.1f} img/s; decode+mask+write need "
          f"{result['cpu_cores_per_gpu_for_cpu_stages']:.1f} CPU cores "
          f"to keep up with one GPU", flush=True)
    return result


def _model_dict(model) -> dict | None:
    if model is None:
        return None
    return {"fixed_gib": model.fixed / GIB, "per_image_gib": model.per_image / GIB, "source": model.source}


def section_agreement(args, device, precisions, parser_dir) -> dict:
    from pipeline.parser import SegformerParser

    if not (Path(parser_dir) / "config.json").exists():
        print(f"agreement: skipped, no trained parser at {parser_dir}")
        return {"skipped": f"no parser at {parser_dir}"}
    width, height = args.work_size
    images = photos(args.agreement_images, width, height)
    parser = SegformerParser(str(parser_dir), device=str(device), precision="fp32")
    batch = 16

    def labels():
        return np.concatenate([parser.parse(images[i:i + batch]) for i in range(0, len(images), batch)])

    reference = labels()
    result = {"parser": str(parser_dir), "images": len(images), "size": f"{width}x{height}"}
    for precision in precisions:
        if precision == "fp32" or (precision == "fp16" and device.type == "cpu"):
            continue
        parser.precision = precision
        same = labels() == reference
        per_image = same.reshape(len(images), -1).mean(1)
        result[precision] = {"agreement": float(same.mean()), "worst_image": float(per_image.min())}
        print(f"agreement: {precision} vs fp32 on {len(images)} photos {width}x{height}: "
              f"{100 * same.mean():.3f}% of pixels (worst photo {100 * per_image.min():.2f}%)", flush=True)
    return result


def section_compile(args, device, precision, parser_dir) -> dict:
    from pipeline.parser import SegformerParser

    width, height = args.parse_sizes[0]
    batch = args.compile_batch if device.type == "cuda" else min(args.compile_batch, 2)
    images = tile(photos(8, width, height), batch)
    eager = SegformerParser(str(parser_dir), labels="atr18", device=str(device), precision=precision)
    eager_s = timed(lambda: eager.parse(images), device, args.min_seconds)
    expected = eager.parse(images)
    eager = None
    release(device)
    compiled = SegformerParser(str(parser_dir), labels="atr18", device=str(device), precision=precision,
                               compile=True)
    started = time.perf_counter()
    got = compiled.parse(images)
    sync(device)
    first_s = time.perf_counter() - started
    compiled_s = timed(lambda: compiled.parse(images), device, args.min_seconds)
    result = {"model": f"segformer-{args.arch}", "size": f"{width}x{height}", "precision": precision, "batch": batch,
              "eager_images_per_s": batch / eager_s, "compiled_images_per_s": batch / compiled_s,
              "speedup": eager_s / compiled_s, "first_call_s": first_s,
              "agreement_with_eager": float((got == expected).mean())}
    print(f"compile: SegFormer-{args.arch.upper()} {width}x{height} {precision} batch {batch}: eager "
          f"{result['eager_images_per_s']:.1f} img/s, compiled {result['compiled_images_per_s']:.1f} img/s "
          f"({result['speedup']:.2f}x); first call {first_s:.1f} s; labels equal to eager on "
          f"{100 * result['agreement_with_eager']:.2f}% of pixels", flush=True)
    compiled = None
    release(device)
    return result


def targets(results: dict, arch: str) -> list[dict]:
    out = []
    parse = results.get("parse", {}).get("rows", [])
    best = [r["images_per_s"] for r in parse if r.get("size") == "512x512" and r.get("precision") == "bf16"
            and "images_per_s" in r]
    if best and arch == "b5" and results["env"]["device"].startswith("cuda"):
        out.append({"target": "SegFormer-B5 512x512 bf16 >= 1000 images/s", "value": max(best),
                    "met": max(best) >= 1000})
    for section in ("parse", "pose"):
        for info in results.get(section, {}).get("memory_models", []):
            out.append({"target": f"{section} {info['size']} {info['precision']}: memory model within 10% of "
                                  "the measured peak", "value": info["max_abs_error_pct"],
                        "met": info["max_abs_error_pct"] <= 10.0})
    agreement = results.get("agreement", {})
    for precision in ("bf16", "fp16"):
        if precision in agreement:
            value = agreement[precision]["agreement"]
            out.append({"target": f"parse maps in {precision} agree with fp32 on >= 99% of pixels",
                        "value": value, "met": value >= 0.99})
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    notes = use_wheels(args.wheels, ("controlnet_aux", "pyarrow", "PIL"))
    for note in notes:  # before anything imports the package, which needs pyarrow
        print(f"wheel: {note}", flush=True)
    import torch

    from pipeline.resources import resolve_precision

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch sees no GPU; use --device cpu --quick for the CPU path")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if args.precisions is None:
        if device.type == "cuda":
            args.precisions = ["fp32"] + (["bf16"] if torch.cuda.is_bf16_supported() else []) + ["fp16"]
        else:
            args.precisions = ["fp32", "bf16"]
    auto = resolve_precision(str(device), "auto")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    results = {"args": {k: v for k, v in vars(args).items() if k not in ("json",)}, "wheels": notes}
    try:
        results["env"] = section_env(args, device)
        print("env: " + ", ".join(f"{k} {v}" for k, v in results["env"].items()), flush=True)
        need_segformer = {"parse", "chain", "compile"} & set(args.sections)
        folders = build_segformer(work, args.arch, args.parse_sizes) if need_segformer else {}
        pose_dir = build_pose(work) if {"pose", "chain"} & set(args.sections) else None
        if "parse" in args.sections:
            results["parse"] = section_parse(args, device, args.precisions,
                                             {s: folders[s] for s in args.parse_sizes})
        if "pose" in args.sections:
            results["pose"] = section_pose(args, device, args.precisions, pose_dir)
        if "chain" in args.sections:
            results["chain"] = section_chain(args, device, auto, folders[args.parse_sizes[0]], pose_dir, work)
        if "agreement" in args.sections:
            results["agreement"] = section_agreement(args, device, args.precisions, args.agreement_parser)
        if "compile" in args.sections:
            results["compile"] = section_compile(args, device, auto, folders[args.parse_sizes[0]])
        results["targets"] = targets(results, args.arch)
        for t in results["targets"]:
            print(f"target: {'MET   ' if t['met'] else 'MISSED'} {t['target']}: {t['value']:.4g}")
    finally:
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1, default=str)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
