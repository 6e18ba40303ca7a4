"""Train the small bundled SegFormer human parser (pipeline/assets/parser) on synthetic people.

CI never trains; this script made the committed checkpoint and documents how. It runs on a CPU:

    python tools/train_parser.py --data /tmp/parser-train --minutes 55 --threads 1 \
        --out pipeline/assets/parser

1. Pre-generates the training set once (seeds 0 .. N-1 of pipeline.testing.synthetic; evaluation uses
   seeds from 1,000,000 on, so they never overlap) along the pipeline's own input path: the photo
   is drawn at a random size and aspect, saved as JPEG, decoded (with JPEG draft scaling) and
   stretched to the working size 576x768 with PIL bilinear, then resized to the processor size
   with torch's antialiased bilinear (what pipeline/parser.py does). Stored as uint8 .npy files.
2. Trains SegformerForSemanticSegmentation from a small config with AdamW, a warm-up and a
   one-cycle (cosine) learning rate driven by the wall-clock budget, and class weights for the
   small labels; augments with mirroring (left/right labels swapped) and, rarely, grayscale.
   With --init FOLDER it warm-starts from a saved checkpoint (same config and processor) instead:
   e.g. --init pipeline/assets/parser --lr 1e-3 --warmup 0.02 --floor 0 continues training with a
   short warm-up and a cosine to zero over the new budget.
3. Saves config.json (ATR-18 names as published checkpoints spell them), model.safetensors and
   preprocessor_config.json (the processor size trained at) with save_pretrained, so
   from_pretrained(folder) loads it.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.labels import CANONICAL, LABEL, NUM_LABELS  # noqa: E402

WORKING_SIZE = (576, 768)  # width, height
INPUT_SIZE = (240, 320)    # width, height: the processor size the model is trained at
ATR18_NAMES = ("Background", "Hat", "Hair", "Sunglasses", "Upper-clothes", "Skirt", "Pants", "Dress", "Belt",
               "Left-shoe", "Right-shoe", "Face", "Left-leg", "Right-leg", "Left-arm", "Right-arm", "Bag",
               "Scarf")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# Mirroring swaps the person's sides.
_FLIP = np.arange(NUM_LABELS, dtype=np.int64)
for _a, _b in (("left_shoe", "right_shoe"), ("left_leg", "right_leg"), ("left_arm", "right_arm")):
    _FLIP[LABEL[_a]], _FLIP[LABEL[_b]] = LABEL[_b], LABEL[_a]


def model_config():
    """The small SegFormer: ~0.78 M parameters (3.1 MB in fp32), logits at 1/4 of the input."""
    from transformers import SegformerConfig

    return SegformerConfig(
        num_channels=3, num_encoder_blocks=4, depths=[2, 2, 2, 2], sr_ratios=[8, 4, 2, 1],
        hidden_sizes=[16, 32, 64, 128], patch_sizes=[7, 3, 3, 3], strides=[4, 2, 2, 2],
        num_attention_heads=[1, 1, 2, 4], mlp_ratios=[4, 4, 4, 4], decoder_hidden_size=64,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, drop_path_rate=0.05,
        classifier_dropout_prob=0.05, num_labels=NUM_LABELS,
        id2label=dict(enumerate(ATR18_NAMES)), label2id={n: i for i, n in enumerate(ATR18_NAMES)},
    )


def to_input(photo_jpeg: bytes, input_size=INPUT_SIZE) -> np.ndarray:
    """A photo's JPEG bytes -> uint8 HxWx3 at the processor size, along the pipeline's path."""
    import torch
    import torch.nn.functional as F
    from PIL import Image

    image = Image.open(io.BytesIO(photo_jpeg))
    image.draft("RGB", WORKING_SIZE)
    image = image.convert("RGB").resize(WORKING_SIZE, Image.Resampling.BILINEAR, reducing_gap=None)
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float()
    pixels = F.interpolate(pixels, size=(input_size[1], input_size[0]), mode="bilinear", align_corners=False,
                           antialias=True)
    return pixels[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def generate(folder: Path, n: int, first_seed: int = 0, input_size=INPUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Pre-generate (or load) n training samples as images (n, h, w, 3) and labels (n, h, w)."""
    from PIL import Image

    from pipeline.testing.synthetic import make_person

    folder.mkdir(parents=True, exist_ok=True)
    tag = f"{first_seed}-{n}-{input_size[0]}x{input_size[1]}"
    images_path, labels_path = folder / f"images-{tag}.npy", folder / f"labels-{tag}.npy"
    if images_path.exists() and labels_path.exists():
        return np.load(images_path, mmap_mode="r"), np.load(labels_path, mmap_mode="r")
    w, h = input_size
    images = np.zeros((n, h, w, 3), np.uint8)
    labels = np.zeros((n, h, w), np.uint8)
    started = time.time()
    for i in range(n):
        seed = first_seed + i
        rng = np.random.default_rng([seed, 17])
        height = int(rng.integers(640, 1281))
        width = int(height * rng.uniform(0.68, 0.82))
        sample = make_person(seed, width, height)
        buffer = io.BytesIO()
        Image.fromarray(sample.image).save(buffer, "JPEG", quality=int(rng.integers(60, 96)))
        images[i] = to_input(buffer.getvalue(), input_size)
        labels[i] = np.asarray(Image.fromarray(sample.labels).resize((w, h), Image.Resampling.NEAREST))
        if (i + 1) % 250 == 0:
            print(f"generated {i + 1}/{n} in {time.time() - started:.0f}s", flush=True)
    np.save(images_path.with_suffix(".tmp.npy"), images)
    np.save(labels_path.with_suffix(".tmp.npy"), labels)
    images_path.with_suffix(".tmp.npy").rename(images_path)
    labels_path.with_suffix(".tmp.npy").rename(labels_path)
    return images, labels


def class_weights(labels: np.ndarray, power: float = 0.3, cap: float = 5.0) -> np.ndarray:
    counts = np.bincount(np.asarray(labels[: min(len(labels), 1000)]).ravel(), minlength=NUM_LABELS).astype(float)
    freq = counts / counts.sum()
    present = freq > 0
    median = np.median(freq[present])
    weights = np.ones(NUM_LABELS)
    weights[present] = np.clip((median / freq[present]) ** power, 1.0 / cap, cap)
    return weights / weights[present].mean()


def batch_tensors(images, labels, index, rng, grayscale_p=0.05):
    import torch

    x = np.asarray(images[index]).astype(np.float32)
    y = np.asarray(labels[index]).astype(np.int64)
    flip = rng.uniform(size=len(index)) < 0.5
    x[flip] = x[flip, :, ::-1]
    y[flip] = _FLIP[y[flip, :, ::-1]]
    gray = rng.uniform(size=len(index)) < grayscale_p
    if gray.any():
        g = x[gray] @ np.array([0.299, 0.587, 0.114], np.float32)
        x[gray] = g[..., None]
    x = (x / 255.0 - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y)


def iou_table(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-label intersection and union counts."""
    inter = np.bincount(truth[pred == truth].ravel(), minlength=NUM_LABELS)
    area_p = np.bincount(pred.ravel(), minlength=NUM_LABELS)
    area_t = np.bincount(truth.ravel(), minlength=NUM_LABELS)
    return inter, area_p + area_t - inter


def evaluate(model, images, labels, batch=32) -> dict:
    import torch
    import torch.nn.functional as F

    model.eval()
    inter = np.zeros(NUM_LABELS)
    union = np.zeros(NUM_LABELS)
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            index = np.arange(start, min(len(images), start + batch))
            x = np.asarray(images[index]).astype(np.float32)
            x = torch.from_numpy(((x / 255.0 - np.array(MEAN, np.float32)) / np.array(STD, np.float32)))
            x = x.permute(0, 3, 1, 2)
            y = np.asarray(labels[index])
            logits = model(pixel_values=x).logits
            pred = F.interpolate(logits, size=y.shape[1:], mode="bilinear", align_corners=False).argmax(1).numpy()
            i, u = iou_table(pred.astype(np.uint8), y)
            inter += i
            union += u
    model.train()
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return {name: float(v) for name, v in zip(CANONICAL, iou)}


def lr_at(fraction: float, peak: float, warmup: float = 0.06, floor: float = 0.02) -> float:
    """Linear warm-up, then cosine annealing to floor*peak at the end of the budget."""
    if fraction < warmup:
        return peak * (0.05 + 0.95 * fraction / warmup)
    t = min(1.0, (fraction - warmup) / (1 - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def save(model, folder: Path, input_size=INPUT_SIZE):
    from transformers import SegformerImageProcessor

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    SegformerImageProcessor(size={"height": input_size[1], "width": input_size[0]}, image_mean=list(MEAN),
                            image_std=list(STD)).save_pretrained(folder)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path.home() / ".cache" / "vton-parser-train")
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--val-samples", type=int, default=96)
    parser.add_argument("--minutes", type=float, default=55.0, help="wall-clock training budget")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=float, default=0.06, help="warm-up fraction of the budget")
    parser.add_argument("--floor", type=float, default=0.02, help="final lr as a fraction of the peak")
    parser.add_argument("--init", type=Path, default=None,
                        help="warm start: load the weights (and config) of this checkpoint folder")
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--snapshots", type=Path, default=Path("/tmp/parser-snapshots"))
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "pipeline" / "assets" / "parser")
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch
    import torch.nn.functional as F
    from transformers import SegformerForSemanticSegmentation

    torch.set_num_threads(args.threads)
    images, labels = generate(args.data, args.samples, 0)
    val_images, val_labels = generate(args.data, args.val_samples, 900_000)
    if args.generate_only:
        return
    images, labels = np.asarray(images), np.asarray(labels)  # into memory
    weights = class_weights(labels)
    print("class weights:", {n: round(float(w), 2) for n, w in zip(CANONICAL, weights)}, flush=True)
    torch.manual_seed(args.seed)
    if args.init is not None:
        model = SegformerForSemanticSegmentation.from_pretrained(args.init)
        ours, theirs = model_config().to_diff_dict(), model.config.to_diff_dict()
        if any(theirs.get(k) != v for k, v in ours.items()):
            print("warning: --init config differs from model_config()", flush=True)
        print(f"warm start from {args.init}", flush=True)
    else:
        model = SegformerForSemanticSegmentation(model_config())
    model.train()
    print(f"parameters: {sum(p.numel() for p in model.parameters()):,}", flush=True)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.999))
    criterion = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))
    rng = np.random.default_rng(args.seed)
    budget = args.minutes * 60.0
    started = time.time()
    step, seen, epoch = 0, 0, 0
    order = rng.permutation(len(images))
    position = 0
    next_eval = 300.0
    losses = []
    while True:
        elapsed = time.time() - started
        if elapsed >= budget:
            break
        lr = lr_at(elapsed / budget, args.lr, args.warmup, args.floor)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if position + args.batch > len(order):
            order, position, epoch = rng.permutation(len(images)), 0, epoch + 1
        index = np.sort(order[position: position + args.batch])
        position += args.batch
        x, y = batch_tensors(images, labels, index, rng)
        logits = model(pixel_values=x).logits
        logits = F.interpolate(logits, size=y.shape[1:], mode="bilinear", align_corners=False)
        loss = criterion(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        seen += len(index)
        losses.append(loss.item())
        if step % 50 == 0:
            print(f"step {step} epoch {epoch} seen {seen} {elapsed / 60:.1f} min lr {lr:.2e} "
                  f"loss {np.mean(losses[-50:]):.4f} ({seen / max(elapsed, 1e-6):.1f} img/s)", flush=True)
        if elapsed >= next_eval:
            next_eval += 300.0
            iou = evaluate(model, val_images, val_labels)
            present = [v for v in iou.values() if not np.isnan(v)]
            print(f"eval at {elapsed / 60:.1f} min step {step}: mIoU {np.mean(present):.3f} "
                  + json.dumps({k: round(v, 3) for k, v in iou.items() if not np.isnan(v)}), flush=True)
            save(model, args.snapshots / f"step{step:06d}")
    iou = evaluate(model, val_images, val_labels)
    present = [v for v in iou.values() if not np.isnan(v)]
    print(f"final step {step} seen {seen} in {(time.time() - started) / 60:.1f} min: mIoU {np.mean(present):.3f} "
          + json.dumps({k: round(v, 3) for k, v in iou.items() if not np.isnan(v)}), flush=True)
    save(model, args.out)
    print(f"saved {args.out}", flush=True)


if __name__ == "__main__":
    main()
