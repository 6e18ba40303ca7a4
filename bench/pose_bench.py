"""Pose stage vs controlnet_aux's per-image OpenposeDetector.detect_poses: images per second.

Same machine, same images, same network object and weights for both (random weights unless
--model is given; fine for timing). Two measurements, one run each after a warm-up:

A. end to end on photos: PoseEstimator.estimate (batched) vs detect_poses per image. With random
   weights the heatmaps hold few peaks and no people, so the post-processing is lighter than on
   real weights, for both sides.
B. post-processing only, on network outputs synthesized from known skeletons (1-3 people per
   image, some parts missing) fed to both post-processors, plus the network alone; the projected
   end-to-end ratio (network + post with people) is what a real-weights run would see. B also
   reports keypoint parity (within 2 px at the detect resolution).

    python bench/pose_bench.py                      # CPU, 2 threads, 8 images at 576x768
    python bench/pose_bench.py --device cuda --precision bf16 --images 64 --batch-size 32

The GPU mode needs controlnet_aux installed (the network definition comes from it; the
reference path too); --no-reference times this stage alone.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pipeline import pose_post as pp  # noqa: E402
from pipeline.pose import PoseEstimator, _bodypose_model_class, load_body_net  # noqa: E402
from pipeline.testing import pose_maps as pm  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="folder/.pth/hub id; default: random weights")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--size", default="576x768", help="detect size, WIDTHxHEIGHT")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (both sides)")
    ap.add_argument("--no-reference", action="store_true", help="skip controlnet_aux")
    ap.add_argument("--json", default=None, help="also write the results here")
    return ap.parse_args(argv)


def sync(device):
    import torch
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


class MapsNet:
    """Stands in for the body network in controlnet_aux's Body: returns one image's maps."""

    def __init__(self, device):
        import torch
        self.anchor = torch.zeros(1, device=device)
        self.maps = None

    def parameters(self):
        return iter([self.anchor])

    def __call__(self, x):
        pafs, heat = self.maps
        return pafs[None].to(x.device), heat[None].to(x.device)


def photos(n, height, width, seed=0):
    import cv2
    rng = np.random.default_rng(seed)
    out = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        noise = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
        out[i] = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    return out


def main(argv=None):
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    device = torch.device(args.device)
    if args.model:
        net = load_body_net(args.model, "cpu")
    else:
        torch.manual_seed(0)
        net = _bodypose_model_class()().eval()
    ours = PoseEstimator(copy.deepcopy(net), device=device, precision=args.precision,
                         batch_size=args.batch_size)
    images = photos(args.images, height, width)
    result = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
              else f"cpu x{args.threads} threads", "precision": args.precision, "images": args.images,
              "size": f"{width}x{height}", "batch_size": args.batch_size,
              "weights": args.model or "random", "torch": torch.__version__}

    reference = body = None
    if not args.no_reference:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from controlnet_aux.open_pose import OpenposeDetector
            from controlnet_aux.open_pose.body import Body
        body = Body.__new__(Body)
        body.model = net.to(device)                 # the same weights, fp32 like controlnet_aux
        reference = OpenposeDetector(body)

    # ---- A: end to end on photos -------------------------------------------------------------
    ours.estimate(images[: args.batch_size])        # warm-up (cudnn, caches)
    sync(device)
    t = time.perf_counter()
    out = ours.estimate(images)
    sync(device)
    ours_s = time.perf_counter() - t
    result["A_ours_img_per_s"] = args.images / ours_s
    result["A_ours_persons"] = int(out.persons.sum())
    if reference is not None:
        reference.detect_poses(images[0])
        t = time.perf_counter()
        ref_persons = sum(len(reference.detect_poses(img)) for img in images)
        sync(device)
        ref_s = time.perf_counter() - t
        result["A_ref_img_per_s"] = args.images / ref_s
        result["A_ref_persons"] = ref_persons
        result["A_ratio"] = ref_s / ours_s

    # ---- B: post-processing with people, and the network alone ----------------------------------
    rng = np.random.default_rng(1)
    scenes = [pm.synthetic_scene(1 + i % 3, height, width, rng) for i in range(args.images)]
    maps = [pm.synthesize_maps(s, height, width) for s in scenes]
    pafs = torch.from_numpy(np.stack([m[0] for m in maps])).to(device)
    heat = torch.from_numpy(np.stack([m[1] for m in maps])).to(device)
    dm = pp.DeviceMaps()
    pp.postprocess(pafs[:1], heat[:1], height, width, dm)
    sync(device)
    t = time.perf_counter()
    ours_people = []
    for s in range(0, args.images, args.batch_size):
        ours_people += pp.postprocess(pafs[s:s + args.batch_size], heat[s:s + args.batch_size], height, width, dm)
    sync(device)
    ours_post = (time.perf_counter() - t) / args.images
    batch = ours.preprocess(images)
    ours._forward(batch[: args.batch_size])
    sync(device)
    t = time.perf_counter()
    for s in range(0, args.images, args.batch_size):
        ours._forward(batch[s:s + args.batch_size])
    sync(device)
    ours_net = (time.perf_counter() - t) / args.images
    result.update(B_ours_post_ms=ours_post * 1e3, B_ours_net_ms=ours_net * 1e3,
                  B_ours_img_per_s=1 / (ours_post + ours_net))
    if reference is not None:
        stub = MapsNet(device)
        body.model, real_net = stub, body.model
        blank = np.zeros((height, width, 3), np.uint8)
        ref_people, t0 = [], time.perf_counter()
        for pa, he in zip(pafs, heat):
            stub.maps = (pa.cpu(), he.cpu())
            candidate, subset = body(blank)
            ref_people.append(pp.people_from_subset(candidate, subset))
        ref_post = (time.perf_counter() - t0) / args.images
        body.model = real_net
        # controlnet_aux's network call: one image per forward, fp32.
        data = torch.from_numpy(batch[:1]).to(device)
        with torch.no_grad():
            real_net(data)
            sync(device)
            t = time.perf_counter()
            for i in range(args.images):
                out1, out2 = real_net(torch.from_numpy(batch[i:i + 1]).to(device))
                out1.cpu(), out2.cpu()
            sync(device)
        ref_net = (time.perf_counter() - t) / args.images
        close = total = 0
        same_count = 0
        for a, b in zip(ours_people, ref_people):
            same_count += len(a) == len(b)
            if len(a) == len(b) and len(a):
                both = np.isfinite(a[:, :, 0]) & np.isfinite(b[:, :, 0])
                d = np.hypot(*(a[:, :, :2] - b[:, :, :2])[both].T)
                close += int((d <= 2).sum())
                total += int(both.sum()) + int((np.isfinite(a[:, :, 0]) != np.isfinite(b[:, :, 0])).sum())
            else:
                total += int(np.isfinite(b[:, :, 0]).sum())
        result.update(B_ref_post_ms=ref_post * 1e3, B_ref_net_ms=ref_net * 1e3,
                      B_ref_img_per_s=1 / (ref_post + ref_net), B_post_ratio=ref_post / ours_post,
                      B_projected_ratio=(ref_post + ref_net) / (ours_post + ours_net),
                      B_parity_within_2px=close / max(total, 1), B_same_person_count=same_count / args.images,
                      B_persons=int(sum(len(p) for p in ours_people)))

    width_key = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:<{width_key}}  {v:.3f}" if isinstance(v, float) else f"{k:<{width_key}}  {v}")
    if "A_ratio" in result:
        print(f"\nend to end (random weights): {result['A_ratio']:.2f}x controlnet_aux; "
              f"post-processing with people: {result['B_post_ratio']:.1f}x; projected end to end with "
              f"people: {result['B_projected_ratio']:.2f}x; parity {100 * result['B_parity_within_2px']:.1f}% "
              "of keypoints within 2 px")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
