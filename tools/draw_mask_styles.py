"""Draw the pictures of docs/masks.md: every mask style on the same synthetic person.

    python tools/draw_mask_styles.py            # writes docs/img/masks_*.png

The person is pipeline.testing.synthetic's figure for a fixed seed, with its true label map and
keypoints (no model runs), so the pictures show the geometry alone. Each style's picture has
one panel per category: the photo with the mask area filled gray 127 (OOTDiffusion's fill)
and the mask's outline.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline import masks  # noqa: E402
from pipeline.labels import GARMENT_CATEGORIES, PALETTE  # noqa: E402
from pipeline.testing.synthetic import make_person  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# COCO-18 limbs drawn over the parse in the figure picture.
LIMBS = ((1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
         (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
OUTLINE = (255, 64, 160)


def masked_panel(image, mask, caption, scale):
    """The photo, mask area filled gray 127 and outlined, shrunk by ``scale``, with a caption."""
    out = image.copy()
    out[mask > 0] = 127
    contours, _ = cv2.findContours((mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, OUTLINE, thickness=max(1, round(3 / scale)))
    return captioned(out, caption, scale)


def captioned(image, caption, scale):
    height, width = image.shape[:2]
    panel = Image.fromarray(image).resize((round(width * scale), round(height * scale)), Image.LANCZOS)
    draw = ImageDraw.Draw(panel)
    font = ImageFont.load_default(size=16)
    left, top, right, bottom = draw.textbbox((6, 4), caption, font=font)
    draw.rectangle((left - 4, top - 3, right + 4, bottom + 3), fill=(255, 255, 255))
    draw.text((6, 4), caption, fill=(0, 0, 0), font=font)
    return np.asarray(panel)


def row(panels):
    gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
    parts = [part for panel in panels for part in (panel, gap)][:-1]
    return np.concatenate(parts, axis=1)


def figure_panels(person, scale):
    """The photo, its label map, and the keypoints over the label map."""
    parse = PALETTE[person.labels]
    skeleton = parse.copy()
    points = person.keypoints
    radius = max(2, round(4 / scale))
    for a, b in LIMBS:
        if np.isfinite(points[[a, b], :2]).all():
            cv2.line(skeleton, tuple(map(round, points[a, :2])), tuple(map(round, points[b, :2])),
                     (255, 255, 255), max(1, round(2 / scale)), cv2.LINE_AA)
    for x, y, _ in points[np.isfinite(points[:, 0])]:
        cv2.circle(skeleton, (round(x), round(y)), radius, (255, 255, 0), -1, cv2.LINE_AA)
    return [captioned(person.image, "photo", scale), captioned(parse, "parse (ATR-18)", scale),
            captioned(skeleton, "keypoints (COCO-18)", scale)]


def ootd_option_panels(person, scale):
    """upper_body ootd: hd, dc, pose off, and the person's left wrist missing."""
    labels, points = person.labels, person.keypoints
    no_wrist = points.copy()
    no_wrist[7] = np.nan
    cases = (("hd (default)", points, "hd"), ("dc", points, "dc"), ("pose off", None, "hd"),
             ("left wrist missing", no_wrist, "hd"))
    return [masked_panel(person.image, masks.make_mask(labels, kp, "upper_body", "ootd", ootd_variant=v),
                         caption, scale) for caption, kp, v in cases]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--seed", type=int, default=5, help="pipeline.testing.synthetic seed of the person")
    parser.add_argument("--size", type=int, nargs=2, default=(576, 768), metavar=("W", "H"),
                        help="drawing size (the pipeline's default working size)")
    parser.add_argument("--panel-height", type=int, default=384)
    args = parser.parse_args(argv)
    width, height = args.size
    person = make_person(args.seed, width, height, category="upper_body")
    scale = args.panel_height / height
    args.out.mkdir(parents=True, exist_ok=True)
    pictures = {"figure": figure_panels(person, scale), "ootd_options": ootd_option_panels(person, scale)}
    for style in masks.STYLES:
        pictures[style] = [
            masked_panel(person.image, masks.make_mask(person.labels, person.keypoints, category, style),
                         f"{style}: {category}", scale)
            for category in GARMENT_CATEGORIES]
    for name, panels in pictures.items():
        path = args.out / f"masks_{name}.png"
        # A 128-colour palette keeps the pictures small; the photo is flat enough to take it.
        Image.fromarray(row(panels)).quantize(128, dither=Image.Dither.NONE).save(path, optimize=True)
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
