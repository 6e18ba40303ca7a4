"""CPU milliseconds per photo of the CPU stages (decode, mask, write): today's code path and the
new one (pipeline/codecs.py + pipeline/fastmask.py) side by side in the same run, plus a codec floor.

    python bench/cpu_cost.py                     # 768x1024 and 1536x2048, 8 photos x 7 repetitions
    python bench/cpu_cost.py --quick             # smoke run: 2 photos x 2 repetitions
    python bench/cpu_cost.py --json cpu_cost.json --photos 16 --reps 9

Photos: generated people (pipeline.testing.synthetic.make_person) at each size, saved as JPEG
quality 90. The label map the mask stage receives is the ground truth at the working size
(nearest neighbour, what a perfect parser returns), or with --labels parser the bundled parser's
output on today's working-size decode (computed once, not timed). Keypoints: the ground truth.

Items, per photo, in the order the pipeline runs them:

* decode stage: the photo's oriented size (both: pipeline.decode.open_photo + oriented_size) and
  the working-size decode (today: decode_photo(data, size); new: codecs.decode_working);
* mask stage: full-size decode (decode_photo(data) / codecs.decode_full), the label map upsampled
  with nearest neighbour (same code in both), mask geometry and flags (main_person, make_mask,
  mask_bbox, mask area, label_fractions, quality_flags: pipeline.masks / pipeline.fastmask, with
  masks.quality_flags in both), the composite (compose.composite / fastmask.composite in place),
  the masked JPEG (compose.encode_photo / codecs.encode_jpeg), the mask PNG (compose.encode_png /
  codecs.encode_png) and the parse PNG (compose.encode_parse / codecs.encode_png with the palette);
* write stage: the three files written to a temporary folder (same code in both).

Timing: CPU time of this process (time.process_time_ns: every thread's CPU counts) around each
item. Each repetition runs today's chain, the new chain and the floor for a photo one after the
other, the order rotating between repetitions, so load from other processes hits all three alike;
per item the median over repetitions of a photo, then the mean over photos. cv2 runs with
--cv2-threads threads (default 1: a Ray CPU task owns one core).

The floor, for information: the least codec work a photo needs with the fastest codecs installed,
decode the JPEG once at full size (simplejpeg) + encode the masked JPEG (simplejpeg) + encode the
mask PNG (codecs.encode_png; its deflate, zlib-ng when installed, is printed as png_deflate;
--png-deflate zlib forces the standard zlib). "GPU images/s one core can feed" is
1000 / (decode + mask + write ms per photo).
"""
from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from pipeline import codecs, fastmask, masks  # noqa: E402
from pipeline.compose import FILLS  # noqa: E402
from pipeline.decode import MAX_PIXELS, decode_photo, open_photo, oriented_size  # noqa: E402
from pipeline.labels import PALETTE  # noqa: E402
from pipeline.testing.synthetic import make_person  # noqa: E402

# -- "today": the mask stage's encoders and composite as they were before issue 18 (Pillow), kept
# here as the baseline the new path (pipeline/codecs.py, pipeline/fastmask.py) is measured against.

def _pillow_encode(image: Image.Image, extension: str = ".png") -> bytes:
    buffer = io.BytesIO()
    if extension == ".jpg":
        image.save(buffer, format="JPEG", quality=95)
    else:
        image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def encode_png(pixels: np.ndarray) -> bytes:
    return _pillow_encode(Image.fromarray(pixels))


def encode_photo(pixels: np.ndarray, extension: str) -> bytes:
    return _pillow_encode(Image.fromarray(pixels), extension)


def encode_parse(labels: np.ndarray) -> bytes:
    image = Image.fromarray(labels).convert("P")
    image.putpalette(PALETTE.reshape(-1).tolist())
    return _pillow_encode(image)


def composite(photo: np.ndarray, mask: np.ndarray, fill: str) -> np.ndarray:
    out = photo.copy()
    out[mask > 0] = FILLS[fill]
    return out

WORKING = (576, 768)  # the pipeline's default --width, --height
SIZES = ((768, 1024), (1536, 2048))
JPEG_INPUT_QUALITY = 90
DECODE_ITEMS = ("decode: working-size decode",)
MASK_ITEMS = ("mask: full-size decode", "mask: upsample labels", "mask: geometry + flags", "mask: composite",
              "mask: encode masked JPEG", "mask: encode mask PNG", "mask: encode parse PNG")
WRITE_ITEMS = ("write: 3 files",)
ITEMS = DECODE_ITEMS + MASK_ITEMS + WRITE_ITEMS
FLOOR_ITEMS = ("floor: full-size decode", "floor: encode masked JPEG", "floor: encode mask PNG")


class Photo:
    """One generated photo, its inputs to the stages, and what each chain produced last."""

    def __init__(self, seed: int, size: tuple[int, int], labels_source: str, parser=None):
        sample = make_person(seed, *size)
        buffer = io.BytesIO()
        Image.fromarray(sample.image).save(buffer, format="JPEG", quality=JPEG_INPUT_QUALITY)
        self.seed, self.size, self.data = seed, size, buffer.getvalue()
        self.category, self.keypoints = sample.category, sample.keypoints
        if labels_source == "parser":
            today_working = np.asarray(decode_photo(self.data, WORKING))
            self.working_labels = parser.parse(today_working[None])[0]
        else:
            self.working_labels = cv2.resize(sample.labels, WORKING, interpolation=cv2.INTER_NEAREST)
        self.out: dict[str, dict] = {"today": {}, "new": {}, "floor": {}}


# ------------------------------------------------------------------------------------ the chains

def _decode_size(photo: Photo) -> None:
    oriented_size(open_photo(photo.data, MAX_PIXELS))  # decode_batch's _photo_size: same in both


def _upsample(photo: Photo, state: dict) -> None:
    state["labels"] = cv2.resize(photo.working_labels, photo.size, interpolation=cv2.INTER_NEAREST)


def _write(folder: Path, photo: Photo, state: dict) -> None:
    for name, data in (("mask.png", state["mask_png"]), ("masked.jpg", state["jpeg"]),
                       ("parse.png", state["parse_png"])):
        with open(folder / f"{photo.seed}-{name}", "wb") as handle:
            handle.write(data)


def today_chain(style: str, fill: str, folder: Path):
    colour = FILLS[fill]

    def decode(photo, state):
        _decode_size(photo)
        state["working"] = np.asarray(decode_photo(photo.data, WORKING))

    def full(photo, state):
        state["photo"] = np.asarray(decode_photo(photo.data))

    def geometry(photo, state):
        labels = state["labels"]
        person = masks.main_person(labels)
        mask = masks.make_mask(labels, photo.keypoints, photo.category, style, person=person)
        state["mask"], state["bbox"] = mask, masks.mask_bbox(mask)
        state["area"] = float(np.count_nonzero(mask)) / mask.size
        state["fractions"] = masks.label_fractions(labels)
        # The path before issue 18 had no no_person rule (issue 17 added it to the new path).
        state["flags"] = masks.quality_flags(labels, photo.keypoints, 1, photo.category, mask, person=person,
                                             no_person=False)

    def comp(photo, state):
        state["masked"] = composite(state["photo"], state["mask"], fill)

    return [
        (DECODE_ITEMS[0], decode),
        (MASK_ITEMS[0], full),
        (MASK_ITEMS[1], _upsample),
        (MASK_ITEMS[2], geometry),
        (MASK_ITEMS[3], comp),
        (MASK_ITEMS[4], lambda p, s: s.__setitem__("jpeg", encode_photo(s["masked"], ".jpg"))),
        (MASK_ITEMS[5], lambda p, s: s.__setitem__("mask_png", encode_png(s["mask"]))),
        (MASK_ITEMS[6], lambda p, s: s.__setitem__("parse_png", encode_parse(s["labels"]))),
        (WRITE_ITEMS[0], lambda p, s: _write(folder / "today", p, s)),
    ], colour


def new_chain(style: str, fill: str, folder: Path):
    colour = FILLS[fill]

    def decode(photo, state):
        _decode_size(photo)
        state["working"], state["decoder_working"] = codecs.decode_working(photo.data, WORKING)

    def full(photo, state):
        state["photo"], state["decoder_full"] = codecs.decode_full(photo.data)

    def geometry(photo, state):
        labels = state["labels"]
        box = fastmask.body_box(labels)
        person = fastmask.main_person(labels, box)
        mask = fastmask.make_mask(labels, photo.keypoints, photo.category, style, person=person, box=box)
        state["mask"] = mask
        state["bbox"] = fastmask.mask_bbox(mask, fastmask.mask_region(style, box))
        state["area"] = float(np.count_nonzero(mask)) / mask.size
        state["fractions"] = fastmask.label_fractions_from_working(photo.working_labels, photo.size)
        # As the mask stage does: the no_person rule on the working-size parse (pipeline/compose.py).
        no_person = masks.is_no_person(photo.working_labels)
        state["flags"] = masks.quality_flags(labels, photo.keypoints, 1, photo.category, mask, person=person,
                                             no_person=no_person)

    def comp(photo, state):  # in place: the full-size decode is this row's own array
        state["masked"] = fastmask.composite(state["photo"], state["mask"], colour, region=state["bbox"],
                                             inplace=True)

    return [
        (DECODE_ITEMS[0], decode),
        (MASK_ITEMS[0], full),
        (MASK_ITEMS[1], _upsample),
        (MASK_ITEMS[2], geometry),
        (MASK_ITEMS[3], comp),
        (MASK_ITEMS[4], lambda p, s: s.__setitem__("jpeg", codecs.encode_jpeg(s["masked"]))),
        (MASK_ITEMS[5], lambda p, s: s.__setitem__("mask_png", codecs.encode_png(s["mask"]))),
        (MASK_ITEMS[6], lambda p, s: s.__setitem__("parse_png", codecs.encode_png(s["labels"], palette=PALETTE))),
        (WRITE_ITEMS[0], lambda p, s: _write(folder / "new", p, s)),
    ], colour


def floor_chain(reference: dict):
    import simplejpeg

    return [
        (FLOOR_ITEMS[0], lambda p, s: s.__setitem__("photo", simplejpeg.decode_jpeg(p.data, colorspace="RGB"))),
        (FLOOR_ITEMS[1], lambda p, s: s.__setitem__(
            "jpeg", simplejpeg.encode_jpeg(reference[p.seed]["masked"], codecs.JPEG_QUALITY, colorspace="RGB",
                                           colorsubsampling=codecs.JPEG_SUBSAMPLING))),
        (FLOOR_ITEMS[2], lambda p, s: s.__setitem__("mask_png", codecs.encode_png(reference[p.seed]["mask"]))),
    ]


def run_chain(chain, photo: Photo, state: dict, times: dict | None) -> None:
    gc.disable()
    try:
        for item, step in chain:
            started = time.process_time_ns()
            step(photo, state)
            if times is not None:
                times.setdefault(item, []).append((time.process_time_ns() - started) / 1e6)
    finally:
        gc.enable()


# ------------------------------------------------------------------------------------ measuring

def check_agreement(photo: Photo) -> dict:
    """The new chain's outputs against today's for one photo (the run's own sanity check)."""
    today, new = photo.out["today"], photo.out["new"]
    working_diff = np.abs(today["working"].astype(np.int16) - new["working"]).mean()
    return {
        "mask_equal": bool(np.array_equal(today["mask"], new["mask"])),
        "flags_equal": today["flags"] == new["flags"],
        "fractions_equal": bool(np.array_equal(today["fractions"], new["fractions"])),
        "bbox_equal": today["bbox"] == new["bbox"],
        "full_decode_equal": bool(np.array_equal(today["photo"], codecs.decode_full(photo.data)[0])),
        "masked_equal": bool(np.array_equal(today["masked"], new["masked"])),
        "parse_png_equal_pixels": bool(np.array_equal(np.asarray(Image.open(io.BytesIO(today["parse_png"]))),
                                                      np.asarray(Image.open(io.BytesIO(new["parse_png"]))))),
        "mask_png_equal_pixels": bool(np.array_equal(np.asarray(Image.open(io.BytesIO(today["mask_png"]))),
                                                     np.asarray(Image.open(io.BytesIO(new["mask_png"]))))),
        "working_mean_abs_diff": float(working_diff),
        "jpeg_bytes": (len(today["jpeg"]), len(new["jpeg"])),
        "png_bytes": (len(today["mask_png"]) + len(today["parse_png"]), len(new["mask_png"]) + len(new["parse_png"])),
    }


def measure_size(size, args, folder: Path, parser) -> dict:
    photos = [Photo(seed, size, args.labels, parser) for seed in range(args.photos)]
    today, colour = today_chain(args.style, args.fill, folder)
    new, _ = new_chain(args.style, args.fill, folder)
    for name in ("today", "new"):
        (folder / name).mkdir(exist_ok=True)
    reference = {}
    for photo in photos:  # warm-up, untimed; also fills the floor's inputs
        run_chain(today, photo, photo.out["today"], None)
        new_state = {}
        run_chain(new, photo, new_state, None)
        reference[photo.seed] = {"masked": new_state["masked"].copy(), "mask": new_state["mask"]}
    floor = floor_chain(reference)
    chains = {"today": today, "new": new, "floor": floor}
    samples = {name: [dict() for _ in photos] for name in chains}
    order = list(chains)
    for rep in range(args.reps):
        for index, photo in enumerate(photos):
            turn = order[(rep + index) % 3:] + order[:(rep + index) % 3]
            for name in turn:
                state = photo.out[name] = {}
                run_chain(chains[name], photo, state, samples[name][index])
            gc.collect()
    per_item = {}
    for name, chain in chains.items():
        for item, _ in chain:
            per_photo = [float(np.median(samples[name][i][item])) for i in range(len(photos))]
            per_item.setdefault(item, {})[name] = float(np.mean(per_photo))
    rows = [{"item": item, "today_ms": per_item[item]["today"], "new_ms": per_item[item]["new"],
             "ratio": per_item[item]["new"] / per_item[item]["today"]} for item in ITEMS]

    def total(names, chain_name):
        return sum(per_item[item][chain_name] for item in names)

    totals = {}
    for label, names in (("decode", DECODE_ITEMS), ("mask", MASK_ITEMS), ("write", WRITE_ITEMS),
                         ("decode + mask + write", ITEMS)):
        t, n = total(names, "today"), total(names, "new")
        totals[label] = {"today_ms": t, "new_ms": n, "ratio": n / t}
    floor_ms = total(FLOOR_ITEMS, "floor")
    everything = totals["decode + mask + write"]
    agreement = [check_agreement(photo) for photo in photos]
    decoders = Counter()
    for photo in photos:
        decoders[f"working:{photo.out['new']['decoder_working']}"] += 1
        decoders[f"full:{photo.out['new']['decoder_full']}"] += 1
    return {
        "size": f"{size[0]}x{size[1]}", "photos": len(photos), "reps": args.reps,
        "rows": rows, "totals": totals,
        "floor": {"items": {item: per_item[item]["floor"] for item in FLOOR_ITEMS}, "ms": floor_ms,
                  "today_over_floor": everything["today_ms"] / floor_ms,
                  "new_over_floor": everything["new_ms"] / floor_ms},
        "images_per_s_one_core": {"today": 1000.0 / everything["today_ms"], "new": 1000.0 / everything["new_ms"],
                                  "floor": 1000.0 / floor_ms},
        "decoders": dict(decoders),
        "agreement": {
            "masks_equal": all(a["mask_equal"] for a in agreement),
            "flags_equal": all(a["flags_equal"] for a in agreement),
            "fractions_equal": all(a["fractions_equal"] for a in agreement),
            "bbox_equal": all(a["bbox_equal"] for a in agreement),
            "composites_equal": all(a["masked_equal"] for a in agreement),
            "full_decodes_equal": all(a["full_decode_equal"] for a in agreement),
            "png_pixels_equal": all(a["parse_png_equal_pixels"] and a["mask_png_equal_pixels"] for a in agreement),
            "working_mean_abs_diff_max": max(a["working_mean_abs_diff"] for a in agreement),
            "jpeg_bytes_new_over_today": sum(a["jpeg_bytes"][1] for a in agreement)
            / sum(a["jpeg_bytes"][0] for a in agreement),
            "png_bytes_new_over_today": sum(a["png_bytes"][1] for a in agreement)
            / sum(a["png_bytes"][0] for a in agreement),
        },
    }


def print_size(result: dict) -> None:
    print(f"\n== {result['size']} photos (JPEG q{JPEG_INPUT_QUALITY}) -> working {WORKING[0]}x{WORKING[1]}: "
          f"{result['photos']} photos x {result['reps']} reps, CPU ms per photo")
    print(f"{'item':34s} {'today ms':>9s} {'new ms':>9s} {'new/today':>10s}")
    for row in result["rows"]:
        print(f"{row['item']:34s} {row['today_ms']:9.2f} {row['new_ms']:9.2f} {row['ratio']:10.2f}")
    print("-" * 65)
    for label, total in result["totals"].items():
        print(f"{'total ' + label:34s} {total['today_ms']:9.2f} {total['new_ms']:9.2f} {total['ratio']:10.2f}")
    floor = result["floor"]
    parts = ", ".join(f"{k.split(': ')[1]} {v:.2f}" for k, v in floor["items"].items())
    print(f"codec floor {floor['ms']:.2f} ms ({parts}); decode+mask+write over the floor: "
          f"today {floor['today_over_floor']:.2f}x, new {floor['new_over_floor']:.2f}x")
    feed = result["images_per_s_one_core"]
    print(f"GPU images/s one core can feed: today {feed['today']:.1f}, new {feed['new']:.1f} "
          f"(floor {feed['floor']:.1f})")
    agree = result["agreement"]
    print(f"decoders (new path): {result['decoders']}; agreement: masks {agree['masks_equal']}, flags "
          f"{agree['flags_equal']}, label fractions {agree['fractions_equal']}, bbox {agree['bbox_equal']}, "
          f"composites {agree['composites_equal']}, full-size decodes {agree['full_decodes_equal']}, "
          f"PNG pixels {agree['png_pixels_equal']}; working-size "
          f"decode mean |diff| <= {agree['working_mean_abs_diff_max']:.2f} levels; bytes new/today: JPEG "
          f"{agree['jpeg_bytes_new_over_today']:.3f}, PNGs {agree['png_bytes_new_over_today']:.3f}")


def environment(args) -> dict:
    import PIL
    import simplejpeg

    return {
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg(), "cv2": cv2.__version__, "cv2_threads": cv2.getNumThreads(),
        "pillow": PIL.__version__, "simplejpeg": simplejpeg.__version__, "numpy": np.__version__,
        "png_deflate": codecs.PNG_DEFLATE, "style": args.style, "fill": args.fill, "labels": args.labels,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=8, help="generated photos per size (default 8)")
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions per photo (default 7)")
    parser.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES),
                        help="photo sizes, WxH,WxH (default 768x1024,1536x2048)")
    parser.add_argument("--style", default="rect", choices=masks.STYLES)
    parser.add_argument("--fill", default="green", choices=sorted(FILLS))
    parser.add_argument("--labels", default="truth", choices=("truth", "parser"),
                        help="the mask stage's label maps: ground truth at the working size, or the bundled parser's")
    parser.add_argument("--cv2-threads", type=int, default=1, help="cv2.setNumThreads (default 1)")
    parser.add_argument("--png-deflate", default="auto", choices=("auto", "zlib"),
                        help="the new PNG writer's deflate: zlib-ng when installed (auto) or the standard zlib")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 photos x 2 reps")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.photos, args.reps = 2, 2
    cv2.setNumThreads(args.cv2_threads)
    if args.png_deflate == "zlib":
        import zlib

        codecs._deflate, codecs.PNG_DEFLATE = zlib, "zlib"
    sizes = [tuple(int(v) for v in text.lower().split("x")) for text in args.sizes.split(",")]
    model = None
    if args.labels == "parser":
        from pipeline.parser import SegformerParser

        model = SegformerParser(str(REPO / "pipeline" / "assets" / "parser"))
    result = {"env": environment(args), "sizes": []}
    print(f"cpu_cost: {result['env']}")
    with tempfile.TemporaryDirectory(prefix="cpu_cost-") as folder:
        for size in sizes:
            measured = measure_size(size, args, Path(folder), model)
            print_size(measured)
            result["sizes"].append(measured)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
