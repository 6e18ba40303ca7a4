"""Full-size DensePose R-CNN (R50-FPN s1x architecture) vs detectron2, step by step, on the same weights.

The released checkpoint cannot be downloaded here, so both sides load the same seeded random weights,
tuned as tools/make_densepose_fixture.py tunes them (so detectron2 finds several persons), written in
detectron2's pkl format and read back by both loaders. Each stage gets detectron2's own inputs (its
proposals for the box head, its boxes for the DensePose branch), like tests/test_densepose_model.py,
but for the full-width model at detectron2's test size (short side 800). Needs detectron2 + DensePose:

    /tmp/d2venv/bin/python bench/densepose_parity.py [--images 3] [--seed 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from make_densepose_fixture import Detectron2Reference, paste_labels, tuned_model  # noqa: E402

from pipeline.densepose import DensePoseConfig, load_checkpoint, part_index_map, save_checkpoint  # noqa: E402
from pipeline.densepose.charts import chart_result  # noqa: E402
from pipeline.testing.synthetic import make_person  # noqa: E402

SIZES = [(1024, 768), (768, 1024), (900, 600), (640, 960)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", default=None, help="reuse a pkl this script (or densepose_speed.py) wrote")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = DensePoseConfig.full()
    images = [make_person(100 + i, width=w, height=h).image for i, (h, w) in enumerate(SIZES[: args.images])]
    t0 = time.perf_counter()
    if args.weights:
        pkl = Path(args.weights)
    else:
        tuned = tuned_model(cfg, images, seed=args.seed)
        pkl = Path(tempfile.mkdtemp()) / "densepose_full_random.pkl"
        save_checkpoint(tuned, pkl, author="bench/densepose_parity.py (random tuned weights)")
        del tuned
    ours = load_checkpoint(pkl)
    ref = Detectron2Reference(cfg, str(pkl))
    ref.check_loaded(ours)
    print(f"weights: seeded random, tuned ({time.perf_counter() - t0:.0f} s); {pkl} {pkl.stat().st_size / 1e6:.0f} MB, "
          "both sides load it through their own loaders")
    rows = []
    with torch.inference_mode():
        for i, img in enumerate(images):
            r = ref.run(img)
            batch = ours.preprocess([img])
            feats = ours.features(batch.tensor, batch.padded_sizes)
            row = {"image": i, "size": list(img.shape[:2]), "resized": list(batch.image_sizes[0]),
                   "resize_equal": tuple(batch.image_sizes[0]) == tuple(r["resized_hw"])}
            boxes, logits = ours.proposals(feats, batch.image_sizes, batch.padded_sizes)[0]
            row["proposals"] = [len(boxes), len(r["proposals"])]
            if len(boxes) == len(r["proposals"]):
                # Rank by rank: proposals whose objectness differs by float rounding can swap places.
                row["proposal_box_max_px"] = float(np.abs(boxes.numpy() - r["proposals"]).max())
                row["objectness_max_diff"] = float(np.abs(logits.numpy() - r["objectness"]).max())
            # Order-free: each of our proposals against detectron2's nearest one (max coordinate difference).
            near = torch.cdist(boxes.float(), torch.from_numpy(r["proposals"]).float(), p=float("inf")).min(dim=1)
            row["proposals_without_d2_match_within_1px"] = int((near.values > 1.0).sum())
            row["proposal_rank_max_shift"] = int((near.indices - torch.arange(len(boxes))).abs().max()) if len(
                boxes) else 0
            det = ours.detect(feats, [torch.from_numpy(r["proposals"])], batch.image_sizes, batch.padded_sizes)[0]
            row["detections_on_d2_proposals"] = [len(det.boxes), len(r["raw_boxes"])]
            if len(det.boxes) == len(r["raw_boxes"]):
                row["box_max_px"] = float(np.abs(det.boxes.numpy() - r["raw_boxes"]).max())
                row["score_max_diff"] = float(np.abs(det.scores.numpy() - r["raw_scores"]).max())
            dp = r["charts"]
            d2_boxes = torch.from_numpy(r["raw_boxes"][r["kept"]])
            charts = ours.densepose_outputs(feats, [d2_boxes], batch.padded_sizes)
            lab = charts.fine_segm.argmax(1) * (charts.coarse_segm.argmax(1) > 0)
            lab_d2 = dp.fine_segm.argmax(1) * (dp.coarse_segm.argmax(1) > 0)
            row["chart_labels_agree_pct"] = float((lab == lab_d2).float().mean() * 100)
            row["u_max_diff"] = float((charts.u - dp.u).abs().max())
            row["v_max_diff"] = float((charts.v - dp.v).abs().max())
            row["segm_max_diff"] = float(max((charts.fine_segm - dp.fine_segm).abs().max(),
                                             (charts.coarse_segm - dp.coarse_segm).abs().max()))
            res = ours.predict([img], densepose="all")[0]
            row["persons"] = [len(res.boxes), len(r["boxes"])]
            row["top_scores_d2"] = [round(float(s), 4) for s in r["scores"][:5]]
            if len(res.boxes) == len(r["boxes"]) and len(res.boxes):
                row["final_box_max_px"] = float(np.abs(res.boxes - r["boxes"]).max())
                want = paste_labels(r["chart_results"][0].labels.numpy().astype(np.uint8), r["boxes_xywh"][0],
                                    img.shape[:2])
                got = part_index_map(res, *img.shape[:2], person=0)
                fg = (got > 0) | (want > 0)
                row["part_map_agree_pct"] = float((got == want).mean() * 100)
                row["part_map_fg_agree_pct"] = float((got[fg] == want[fg]).mean() * 100) if fg.any() else None
                row["part_map_fg_pixels"] = int(fg.sum())
                _, uv = chart_result(res.charts[0:1], res.boxes[0])
                row["uv_in_box_max_diff"] = float((uv - r["chart_results"][0].uv).abs().max())
            rows.append(row)
            print(json.dumps(row))
    ok = all(r["resize_equal"] and r.get("final_box_max_px", 9) <= 1 and r.get("part_map_agree_pct", 0) >= 99.5
             and r["u_max_diff"] <= 1e-3 and r["v_max_diff"] <= 1e-3 for r in rows)
    print("PARITY", "OK" if ok else "FAILED", "(boxes within 1 px, part maps >= 99.5%, U/V within 1e-3)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
