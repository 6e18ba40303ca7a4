"""Evaluate a SegFormer parser on fresh synthetic people (seeds never used in training).

    python bench/eval_parser.py --parser pipeline/assets/parser --n 240

Each sample is drawn at the photo size (default 768x1024), saved as JPEG, decoded and stretched
to the working size (576x768) by the pipeline's own decode, parsed by pipeline.parser's
SegformerParser (the checkpoint's processor size, mean and std; logits upsampled to the working
size; labels mapped by the checkpoint's id2label names) and compared with the ground-truth label
map resized to the working size (nearest). Reports:

* per-label IoU over the whole set (intersection and union summed over all samples), and the
  mean over the labels present in the ground truth;
* per-category garment-mask IoU: pipeline.masks.make_mask(style) on the parse vs the same style
  on the ground-truth label map (with the ground-truth keypoints), mean over samples;
* probes of the bugs this parser is meant to catch (BGR input, mirrored left/right labels):
  the same numbers must drop clearly.

Training uses seeds 0 .. 3,999 (and 900,000+ for its validation); this uses 1,000,000 on.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.labels import CANONICAL, GARMENT_CATEGORIES, LABEL, NUM_LABELS  # noqa: E402
from pipeline.testing.synthetic import make_person  # noqa: E402

WORKING_SIZE = (576, 768)
GARMENT_LABELS = ("upper_clothes", "skirt", "pants", "dress")
_MIRROR = np.arange(NUM_LABELS, dtype=np.uint8)
for _a, _b in (("left_shoe", "right_shoe"), ("left_leg", "right_leg"), ("left_arm", "right_arm")):
    _MIRROR[LABEL[_a]], _MIRROR[LABEL[_b]] = LABEL[_b], LABEL[_a]


def _decode(jpeg: bytes) -> np.ndarray:
    try:
        from pipeline.decode import decode_photo
    except ImportError:  # the same steps: draft, bilinear stretch
        from PIL import Image

        image = Image.open(io.BytesIO(jpeg))
        image.draft("RGB", WORKING_SIZE)
        return np.asarray(image.convert("RGB").resize(WORKING_SIZE, Image.Resampling.BILINEAR, reducing_gap=None))
    return np.asarray(decode_photo(jpeg, WORKING_SIZE))


def _mask_function(style: str):
    try:
        from pipeline.masks import make_mask
    except ImportError:
        make_mask = None
    if make_mask is not None:
        return lambda labels, keypoints, category: make_mask(labels, keypoints, category, style) > 0

    from pipeline.labels import GARMENTS

    def rect(labels, keypoints, category):  # fallback: the garments' bounding box
        where = np.isin(labels, GARMENTS[category])
        mask = np.zeros(labels.shape, bool)
        if where.any():
            ys, xs = np.nonzero(where)
            mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
        return mask
    return rect


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


class Tally:
    def __init__(self, styles):
        self.inter = np.zeros(NUM_LABELS, np.int64)
        self.union = np.zeros(NUM_LABELS, np.int64)
        self.truth_area = np.zeros(NUM_LABELS, np.int64)
        self.masks = {style: {c: [] for c in GARMENT_CATEGORIES} for style in styles}

    def add(self, pred, truth):
        inter = np.bincount(truth[pred == truth].ravel(), minlength=NUM_LABELS)
        area_p = np.bincount(pred.ravel(), minlength=NUM_LABELS)
        area_t = np.bincount(truth.ravel(), minlength=NUM_LABELS)
        self.inter += inter
        self.union += area_p + area_t - inter
        self.truth_area += area_t

    def summary(self) -> dict:
        present = self.truth_area > 0
        iou = {name: round(float(self.inter[i] / self.union[i]), 4) for i, name in enumerate(CANONICAL) if present[i]}
        out = {"label_iou": iou, "mean_iou": round(float(np.mean(list(iou.values()))), 4)}
        for style, per_category in self.masks.items():
            out[f"mask_iou_{style}"] = {c: round(float(np.mean(v)), 4) for c, v in per_category.items() if v}
            out[f"mask_iou_{style}_min"] = {c: round(float(np.min(v)), 4) for c, v in per_category.items() if v}
        return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parser", default=str(Path(__file__).resolve().parents[1] / "pipeline" / "assets" / "parser"))
    parser.add_argument("--n", type=int, default=240)
    parser.add_argument("--seed", type=int, default=1_000_000)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--styles", default="parse,rect")
    parser.add_argument("--no-probes", action="store_true")
    parser.add_argument("--json", type=Path, help="write the numbers here too")
    args = parser.parse_args(argv)

    import torch
    from PIL import Image

    from pipeline.parser import SegformerParser

    torch.set_num_threads(args.threads)
    model = SegformerParser(args.parser)
    styles = [s for s in args.styles.split(",") if s]
    masks = {s: _mask_function(s) for s in styles}
    tallies = {"main": Tally(styles)}
    if not args.no_probes:
        tallies.update({"bgr": Tally(()), "mirrored_sides": Tally(())})
    started = time.time()
    seconds_parse = 0.0
    categories = list(GARMENT_CATEGORIES)
    for start in range(0, args.n, args.batch):
        batch = []
        for i in range(start, min(args.n, start + args.batch)):
            sample = make_person(args.seed + i, args.width, args.height, category=categories[i % 3])
            buffer = io.BytesIO()
            Image.fromarray(sample.image).save(buffer, "JPEG", quality=args.quality)
            truth = np.asarray(Image.fromarray(sample.labels).resize(WORKING_SIZE, Image.Resampling.NEAREST))
            keypoints = sample.keypoints.copy()
            keypoints[:, 0] *= WORKING_SIZE[0] / args.width
            keypoints[:, 1] *= WORKING_SIZE[1] / args.height
            batch.append((_decode(buffer.getvalue()), truth, keypoints, sample.category))
        images = np.stack([b[0] for b in batch])
        t = time.time()
        predicted = model.parse(images)
        seconds_parse += time.time() - t
        for pred, (_, truth, keypoints, category) in zip(predicted, batch):
            tallies["main"].add(pred, truth)
            for style, fn in masks.items():
                tallies["main"].masks[style][category].append(
                    _iou(fn(pred, keypoints, category), fn(truth, keypoints, category)))
            if "mirrored_sides" in tallies:
                tallies["mirrored_sides"].add(_MIRROR[pred], truth)
        if "bgr" in tallies:
            for pred, (_, truth, _, _) in zip(model.parse(images[..., ::-1].copy()), batch):
                tallies["bgr"].add(pred, truth)
    result = {
        "parser": args.parser,
        "samples": args.n, "seeds": f"{args.seed}..{args.seed + args.n - 1}",
        "photo_size": f"{args.width}x{args.height}",
        "jpeg_quality": args.quality, "categories": "cycled upper_body, lower_body, dresses",
        **tallies["main"].summary(),
        "ms_parse_per_image": round(1000 * seconds_parse / args.n, 1), "threads": args.threads,
        "seconds": round(time.time() - started, 1),
    }
    for name in ("bgr", "mirrored_sides"):
        if name in tallies:
            probe = tallies[name].summary()
            result[f"probe_{name}"] = {"mean_iou": probe["mean_iou"],
                                       **{k: v for k, v in probe["label_iou"].items()
                                          if k in GARMENT_LABELS or "left" in k or "right" in k}}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    garments_ok = all(result["label_iou"].get(g, 1.0) >= 0.85 for g in GARMENT_LABELS)
    masks_ok = all(v >= 0.9 for v in result.get(f"mask_iou_{styles[0]}", {}).values()) if styles else True
    print(f"targets: garment labels >= 0.85: {garments_ok}; mean IoU >= 0.7: {result['mean_iou'] >= 0.7}; "
          f"{styles[0] if styles else ''} masks >= 0.9: {masks_ok}")


if __name__ == "__main__":
    main()
