"""DensePose images/s: this package's batched model vs detectron2's DefaultPredictor one photo at a time, CPU.

Both sides run the full-size R50-FPN s1x architecture with the same weights: seeded RANDOM weights, tuned
as tools/make_densepose_fixture.py tunes them so that detectron2 finds several persons (the released
checkpoint cannot be downloaded here; timings depend on the architecture and on how many persons are
found, not on the weight values). The run checks that both sides keep the same detections (count, boxes
within 1 px), and reports how many persons per photo the DensePose branch ran on: detectron2 runs it on
every detection, ``predict(densepose="main")`` only on the main person; ``densepose="all"`` is timed too
to separate the batching gain from the skipped head work. Both sides run with the same thread count.

Where this package's CPU time goes (fp32, 1024x768 photos, 2 threads): the convolutions are ~75% of it and
run near the cores' fp32 peak (channels_last, FrozenBN folded into the weights); the 3x3 256-channel convs
at P2 (FPN output and RPN) alone are ~0.7 s per photo. The box head's ROIAlign on 1000 proposals is two
small matrix products per box instead of torchvision's single-threaded kernel.

    /tmp/d2venv/bin/python bench/densepose_speed.py [--images 8] [--batch-size 4] [--threads 2] [--repeat 3]
    /tmp/d2venv/bin/python bench/densepose_speed.py --memory   # peak RSS at batch 1 and 4 -> memory seed

Without detectron2 (`--no-reference`) only this package's model is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from make_densepose_fixture import tuned_model  # noqa: E402

from pipeline.densepose import DensePoseConfig, load_checkpoint, save_checkpoint  # noqa: E402
from pipeline.testing.synthetic import make_person  # noqa: E402


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def photos(n: int, h: int, w: int) -> list[np.ndarray]:
    return [make_person(200 + i, width=w, height=h).image for i in range(n)]


def weights(path: Path, images, seed: int, person_shift: float) -> Path:
    """The tuned random weights (made once), with the person logit's bias moved by `person_shift`.

    Lowering that bias is how the bench sets how many persons pass detectron2's 0.05 threshold (the
    DensePose head runs on each of them on detectron2's side), without tuning again.
    """
    if not path.exists():
        save_checkpoint(tuned_model(DensePoseConfig.full(), images[:4], seed=seed), path,
                        author="bench/densepose_speed.py (random tuned weights)")
    if person_shift == 0:
        return path
    shifted = path.with_name(f"{path.stem}_shift{person_shift:+g}.pkl")
    if not shifted.exists():
        model = load_checkpoint(path)
        with torch.no_grad():
            model.roi_heads.box_predictor.cls_score.bias[0] += person_shift
        save_checkpoint(model, shifted, author="bench/densepose_speed.py (random tuned weights, shifted)")
    return shifted


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child_memory(pkl: str, n: int, h: int, w: int, threads: int) -> None:
    """Memory of one process that loads the model and predicts a batch of n photos (main person).

    Loading has its own, higher transient peak (file bytes, unpickled arrays and tensors side by side), so
    the inference peak is taken after resetting the high-water mark (Linux /proc/self/clear_refs).
    """
    import gc

    torch.set_num_threads(threads)
    images = photos(n, h, w)
    model = load_checkpoint(pkl)
    load_peak = _status_kb("VmHWM") * 1024
    gc.collect()
    try:  # hand the loader's freed buffers back to the OS, or RSS hides the inference's own growth
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_kb("VmRSS") * 1024
    model.predict(images, densepose="main")
    peak = _status_kb("VmHWM") * 1024
    print(json.dumps({"n": n, "load_peak": load_peak, "after_load": base, "peak": peak}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--weights", default=str(Path(tempfile.gettempdir()) / "densepose_full_random.pkl"))
    ap.add_argument("--person-shift", type=float, default=0.0,
                    help="added to the person logit's bias (negative: fewer persons per photo)")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--no-all", action="store_true", help="skip the densepose='all' timing")
    ap.add_argument("--repeat", type=int, default=1, help="rounds, each side timed once per round (medians)")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="also time precision='bf16' (not detectron2's outputs)")
    ap.add_argument("--child-memory", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    pkl = Path(args.weights)
    if args.child_memory:
        child_memory(str(pkl), args.child_memory, args.height, args.width, args.threads)
        return 0
    images = photos(args.images, args.height, args.width)
    pkl = weights(pkl, images, args.seed, args.person_shift)
    print(f"CPU: {cpu_model()}; torch {torch.__version__}; {args.threads} threads; {args.images} photos "
          f"{args.height}x{args.width}; weights: RANDOM (seeded, tuned), not the released checkpoint; "
          f"load average at start {os.getloadavg()[0]:.2f}")

    if args.memory:
        rows = []
        for n in (1, 4):
            out = subprocess.run([sys.executable, __file__, "--child-memory", str(n), "--weights", str(pkl),
                                  "--height", str(args.height), "--width", str(args.width),
                                  "--threads", str(args.threads)], capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]))
        per_image = (rows[1]["peak"] - rows[0]["peak"]) / 3
        fixed = rows[0]["peak"] - per_image
        print(f"memory seed at {args.height}x{args.width} (CPU peak RSS during predict, densepose='main'): "
              f"fixed_bytes={fixed:.4g} per_image_bytes={per_image:.4g}; loading peaks at "
              f"{max(r['load_peak'] for r in rows):.4g} bytes")
        return 0

    model = load_checkpoint(pkl)
    pred = bgr = None
    if not args.no_reference:
        from detectron2.engine import DefaultPredictor
        from make_densepose_fixture import detectron2_cfg

        pred = DefaultPredictor(detectron2_cfg(DensePoseConfig.full(), str(pkl)))
        bgr = [np.ascontiguousarray(im[:, :, ::-1]) for im in images]
        pred(bgr[0])  # warm-up

    def rate(fn) -> float:
        t = time.perf_counter()
        fn()
        return len(images) / (time.perf_counter() - t)

    def batched(densepose="main", precision="fp32", size=args.batch_size):
        out = []
        for s in range(0, len(images), size):
            out += model.predict(images[s: s + size], densepose=densepose, precision=precision)
        return out

    with torch.inference_mode():
        # Warm-up at the timed batch shapes: oneDNN builds its kernels per input shape.
        model.predict(images[: args.batch_size], densepose="main")
        model.predict(images[:1], densepose="main")
        if args.bf16:
            model.predict(images[: args.batch_size], densepose="main", precision="bf16")
        ours = batched()
    rounds = []  # one dict of images/s per round; the sides alternate so that load changes hit both
    for _ in range(args.repeat):
        r = {}
        with torch.inference_mode():
            r["ours_main"] = rate(batched)
            r["ours_main_batch1"] = rate(lambda: batched(size=1))
            if args.bf16:
                r["ours_main_bf16"] = rate(lambda: batched(precision="bf16"))
            if not args.no_all:
                r["ours_all"] = rate(lambda: batched("all"))
        if pred is not None:
            r["detectron2"] = rate(lambda: [pred(im) for im in bgr])
        r["load_avg"] = os.getloadavg()[0]
        print(json.dumps({k: round(v, 4) for k, v in r.items()}), flush=True)
        rounds.append(r)
    res = {k: float(np.median([r[k] for r in rounds])) for k in rounds[0] if k != "load_avg"}
    if args.bf16:
        with torch.inference_mode():
            bf = batched(precision="bf16")
        print(f"bf16 persons per photo: {[len(r.boxes) for r in bf]} (fp32: {[len(r.boxes) for r in ours]})")
    persons = [len(r.boxes) for r in ours]
    print(f"persons per photo: {persons}; DensePose head runs: ours (main) {sum(len(r.chart_index) for r in ours)}, "
          f"detectron2 {sum(persons)}")
    if pred is not None:
        d2 = [pred(im)["instances"] for im in bgr]
        same = all(len(a) == len(b.boxes) and (len(a) == 0 or np.abs(a.pred_boxes.tensor.numpy() - b.boxes).max() <= 1)
                   for a, b in zip(d2, ours))
        print(f"same detections on both sides: {same}")
    print(f"medians over {args.repeat} round(s):")
    for k, v in res.items():
        print(f"{k}: {v:.3f} images/s")
    if "detectron2" in res:
        for key, label in (("ours_main", f"main, batch {args.batch_size}"), ("ours_main_batch1", "main, batch 1"),
                           ("ours_main_bf16", f"main, bf16, batch {args.batch_size}"),
                           ("ours_all", f"all, batch {args.batch_size}")):
            if key in res:
                ratios = [r[key] / r["detectron2"] for r in rounds]
                print(f"ratio ours({label}) / detectron2: median {float(np.median(ratios)):.2f}x "
                      f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")
    print(json.dumps({k: round(v, 4) for k, v in res.items()}
                     | {"cpu": cpu_model(), "pid": os.getpid(), "load_avg_end": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
