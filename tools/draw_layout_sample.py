"""Draw the pictures of docs/layouts.md: every file one exported sample gets, side by side.

    python tools/draw_layout_sample.py                    # docs/img/layout_{vitonhd,dresscode}_sample.png
    python tools/draw_layout_sample.py --layouts vitonhd --seed 3

One generated person (pipeline.testing.synthetic.make_person, 768x1024, upper_body) and one
generated upper-body garment photo (pipeline.testing.products.make_product) go through the real CLI:
`python -m pipeline run manifest.csv --layout L --pose-from keypoints/ --parser
pipeline/assets/parser` (the bundled demo parser, the person's true keypoints written as
OpenPose JSON). The files the manifest's `exported` lists for the row are then tiled in a fixed
order, each captioned with its folder and name; JSON files are shown as text.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipeline.pose_files import to_openpose_json  # noqa: E402
from pipeline.testing.products import make_product  # noqa: E402
from pipeline.testing.synthetic import make_person  # noqa: E402

BUNDLED_PARSER = ROOT / "pipeline" / "assets" / "parser"
SIZE = (768, 1024)
TILE = (192, 256)
CAPTION = 38
MAX_BYTES = 400_000
UPPER_GARMENTS = ("tshirt", "shirt", "longsleeve", "tank")
# Tile order: the person's files, then the garment's.
ORDER = {
    "vitonhd": ("image", "image-parse-v3", "openpose_img", "openpose_json", "agnostic-v3.2", "agnostic-mask",
                "image-parse-agnostic-v3.2", "cloth", "cloth-mask"),
    "dresscode": ("images/_0", "label_maps", "skeletons", "keypoints", "images/_1", "masks"),
}


def make_input(folder: Path, seed: int) -> Path:
    person = make_person(seed, *SIZE, category="upper_body")
    product_seed = seed  # the first product from the seed on that is an upper-body garment
    while (product := make_product(product_seed, *SIZE)).garment not in UPPER_GARMENTS:
        product_seed += 1
    (folder / "keypoints").mkdir(parents=True)
    Image.fromarray(person.image).save(folder / "person.jpg", quality=90)
    Image.fromarray(product.image).save(folder / "garment.jpg", quality=90)
    (folder / "keypoints" / "person.json").write_text(
        json.dumps(to_openpose_json([person.keypoints], 0, canvas_size=SIZE)))
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "category", "garment"])
        writer.writerow(["person.jpg", "upper_body", "garment.jpg"])
    return manifest


def run_cli(manifest: Path, out: Path, layout: str) -> list[str]:
    """Run the CLI; the row's exported paths (relative to OUT)."""
    import pyarrow.parquet as pq

    env = dict(os.environ, RAY_DATA_DISABLE_PROGRESS_BARS="1", PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "pipeline", "run", str(manifest), "--output", str(out), "--layout", layout,
               "--pose-from", str(manifest.parent / "keypoints"), "--parser", str(BUNDLED_PARSER),
               "--num-cpus", "2", "--batch-size", "1"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{layout} run failed:\n{result.stderr[-3000:]}")
    row = pq.read_table(out / "manifest").to_pylist()[0]
    if row["status"] != "ok":
        raise SystemExit(f"{layout}: the row is {row['status']}: {row.get('error')}")
    print(f"{layout}: {row['export_name']} flags {row['flags']}")
    return list(row["exported"])


def _key(layout: str, path: str) -> str:
    folder = path.split("/")[-2]
    if layout == "dresscode" and folder == "images":
        return f"images/_{Path(path).stem.rsplit('_', 1)[-1]}"
    return folder


def text_tile(data: bytes, font) -> Image.Image:
    """The start of a JSON file, as text on a light tile."""
    document = json.loads(data)
    text = json.dumps(document, separators=(", ", ": "))
    tile = Image.new("RGB", TILE, (245, 245, 240))
    draw = ImageDraw.Draw(tile)
    lines = textwrap.wrap(text, 30)[:21]
    draw.multiline_text((5, 5), "\n".join(lines), fill=(40, 40, 40), font=font, spacing=2)
    return tile


def image_tile(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    resample = Image.NEAREST if image.mode == "P" else Image.LANCZOS  # label maps: no blended ids
    image = image.resize(TILE, resample).convert("RGB")
    return image


def draw_sheet(out: Path, layout: str, exported: list[str]) -> Image.Image:
    font = ImageFont.load_default(size=13)
    small = ImageFont.load_default(size=10)
    order = ORDER[layout]
    files = sorted(exported, key=lambda p: order.index(_key(layout, p)) if _key(layout, p) in order else 99)
    gap = 6
    width = len(files) * (TILE[0] + gap) + gap
    sheet = Image.new("RGB", (width, TILE[1] + CAPTION + 2 * gap), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for index, path in enumerate(files):
        data = (out / path).read_bytes()
        tile = text_tile(data, small) if path.endswith(".json") else image_tile(data)
        x = gap + index * (TILE[0] + gap)
        sheet.paste(tile, (x, gap))
        draw.rectangle((x - 1, gap - 1, x + TILE[0], gap + TILE[1]), outline=(200, 200, 200))
        folder, name = path.split("/")[-2], path.split("/")[-1]
        draw.text((x + 2, gap + TILE[1] + 4), folder, fill=(0, 0, 0), font=font)
        draw.text((x + 2, gap + TILE[1] + 21), name, fill=(90, 90, 90), font=small)
    return sheet


def save_small(sheet: Image.Image, path: Path) -> int:
    """PNG under MAX_BYTES: full colour if it fits, else fewer colours."""
    for colours in (None, 256, 128, 64):
        image = sheet if colours is None else sheet.quantize(colours, dither=Image.Dither.NONE)
        buffer = io.BytesIO()
        image.save(buffer, "PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES:
            break
    path.write_bytes(buffer.getvalue())
    return buffer.tell()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--layouts", nargs="+", default=["vitonhd", "dresscode"], choices=sorted(ORDER))
    parser.add_argument("--output-dir", default=str(ROOT / "docs" / "img"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="layout-sample-") as work:
        manifest = make_input(Path(work) / "input", args.seed)
        for layout in args.layouts:
            out = Path(work) / f"out-{layout}"
            exported = run_cli(manifest, out, layout)
            target = Path(args.output_dir) / f"layout_{layout}_sample.png"
            size = save_small(draw_sheet(out, layout, exported), target)
            print(f"{target}: {len(exported)} files, {size / 1000:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
