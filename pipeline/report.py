"""The HTML report of a run: `python -m pipeline report OUT [--sample N]`.

Writes OUT/report/index.html (self-contained: inline CSS and JS, thumbnails in report/thumbs/,
no network), OUT/report/contact_sheet.png, and nothing else. Problem rows come first: errors,
then flagged rows, then a seeded random sample of the rest. Rows are chosen from the Parquet
manifest (two reads: a few light columns for all rows, then every column for the chosen rows);
folders are never listed except manifest/ itself.

Rows of a trainer layout (--layout vitonhd, dresscode: the manifest's `exported` lists the files
written for the row, relative to OUT) also show those files: small thumbnails of the images
(palette PNGs in their colours), links to the rest (JSON), each labelled by its folder.
"""
from __future__ import annotations

import argparse
import hashlib
import html
import io
import json
import math
import os
import posixpath
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as ds
from PIL import Image, ImageDraw, ImageFont, ImageOps

from pipeline import storage
from pipeline.labels import PALETTE
from pipeline.schema import COCO18_LIMBS
from pipeline.sinks import MANIFEST_DIR
from pipeline.storage import OutputFolder

THUMB_HEIGHT = 160
THUMB_MAX_WIDTH = 320
PROBLEM_LIMIT = 1000  # error rows, and flagged rows, shown at most (each)
CONTACT_LIMIT = 64  # tiles on the contact sheet
CONTACT_COLUMNS = 8
LIGHT_COLUMNS = ("id", "status", "category", "flags")
ROW_COLUMNS = (
    "id", "source", "category", "status", "error", "width", "height", "mask_path", "masked_path",
    "parse_path", "pose_path", "crop_path", "mask_bbox", "mask_area", "keypoints", "persons", "flags",
    "parser", "pose_model", "style", "exported", "export_name",
)
# A trainer layout's files (the manifest's `exported`, paths relative to OUT): small thumbnails of
# its images, links to the rest, each labelled by its folder.
EXPORT_THUMB_HEIGHT = 96
EXPORT_THUMB_MAX_WIDTH = 128
EXPORT_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
# OpenPose's colours, one per COCO-18 limb.
POSE_COLOURS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
                (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
                (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))
STATUS_COLOURS = {"error": (220, 50, 47), "skipped": (140, 140, 140), "ok": (60, 160, 80)}
FLAGGED_COLOUR = (230, 150, 20)
THUMB_KINDS = ("photo", "overlay", "parse", "pose")


class Store(OutputFolder):
    """OUT as the report reads it: missing files are None, not errors."""

    def read(self, relative: str) -> bytes | None:
        try:
            return self.read_bytes(relative)
        except (OSError, ValueError):
            return None

    def read_source(self, source: str) -> bytes | None:
        """The original photo where the manifest says it is (a URI, or a local path)."""
        try:
            return storage.read_bytes(source)
        except (OSError, ValueError):
            return None

    def write(self, relative: str, data: bytes) -> None:
        self.write_bytes(relative, data)

    def prune(self, relative: str, keep: set[str]) -> None:
        """Delete the files in a folder of the report that this build did not write."""
        for path in self.list_files(relative):
            if posixpath.basename(path) not in keep:
                self.delete(path)

    def manifest(self):
        """The manifest as a pyarrow dataset (manifest/*.parquet)."""
        files = [self.path(p) for p in self.list_files(MANIFEST_DIR) if p.endswith(".parquet")]
        if not files:
            raise FileNotFoundError(f"no manifest in {self.uri(MANIFEST_DIR)}/*.parquet: run the pipeline first")
        return ds.dataset(files, format="parquet", filesystem=self.fs)


def select_rows(status: np.ndarray, flagged: np.ndarray, sample: int, seed: int = 0,
                problem_limit: int = PROBLEM_LIMIT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the rows to show: (errors, flagged non-errors, sample of the rest).

    Errors and flagged rows are all kept, up to problem_limit each (a seeded random subset where
    there are more, so many errors never hide the flagged rows); the rest are a seeded random
    sample of `sample` rows.
    """
    rng = np.random.default_rng(seed)
    is_error = status == "error"

    def pick(candidates: np.ndarray, count: int) -> np.ndarray:
        count = max(0, min(count, candidates.size))
        if count == candidates.size:
            return candidates
        return np.sort(rng.choice(candidates, size=count, replace=False))

    errors = pick(np.flatnonzero(is_error), problem_limit)
    flags = pick(np.flatnonzero(flagged & ~is_error), problem_limit)
    rest = pick(np.flatnonzero(~flagged & ~is_error), sample)
    return errors, flags, rest


def _counts(values) -> dict[str, int]:
    result = {}
    for item in pc.value_counts(values).to_pylist():
        key = item["values"]
        result["(none)" if key is None else str(key)] = int(item["counts"])
    return dict(sorted(result.items(), key=lambda kv: (-kv[1], kv[0])))


def _manifest_summary(dataset, rows: int, flagged: int) -> dict:
    """Summary numbers computed from the manifest, for runs without summary.json."""
    summary = {"rows": rows, "flagged rows": flagged}
    timing = [name for name in dataset.schema.names if name.startswith("ms_")]
    if timing:
        ok = dataset.to_table(columns=["status", *timing]).filter(pc.equal(pc.field("status"), "ok"))
        summary["mean_ms_per_ok_row"] = {
            name[3:]: (None if ok.num_rows == 0 else pc.mean(ok[name]).as_py()) for name in timing}
    return summary


# ---------------------------------------------------------------------------- thumbnails


def _open_image(data: bytes | None, target: tuple[int, int] | None = None):
    """Decode (JPEG at a reduced DCT scale when a target is known), EXIF-orient, or None."""
    if not data:
        return None
    try:
        image = Image.open(io.BytesIO(data))
        if target and image.format == "JPEG":
            image.draft("RGB", (max(target), max(target)))
        image = ImageOps.exif_transpose(image)
        image.load()
        return image
    except Exception:  # noqa: BLE001 - unreadable images become a placeholder, not a failure
        return None


def _fit(width, height) -> tuple[int, int]:
    if not width or not height or width <= 0 or height <= 0:
        return (THUMB_HEIGHT * 3 // 4, THUMB_HEIGHT)
    scale = min(THUMB_HEIGHT / height, THUMB_MAX_WIDTH / width)
    return (max(1, round(width * scale)), max(1, round(height * scale)))


def _keypoints(values, width, height, size) -> list[tuple[float, float] | None]:
    if values is None or len(values) < 54 or not width or not height:
        return []
    points = np.array([np.nan if v is None else v for v in values[:54]], dtype=np.float64).reshape(18, 3)
    sx, sy = size[0] / width, size[1] / height
    result = []
    for x, y, score in points:
        missing = not (math.isfinite(x) and math.isfinite(y)) or (x == 0 and y == 0 and not score)
        result.append(None if missing else (x * sx, y * sy))
    return result


def _draw_pose(base, points) -> None:
    draw = ImageDraw.Draw(base)
    for colour, (a, b) in zip(POSE_COLOURS, COCO18_LIMBS):
        if points[a] and points[b]:
            draw.line([points[a], points[b]], fill=colour, width=3)
    for colour, point in zip(POSE_COLOURS, points):
        if point:
            x, y = point
            draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=colour)


def _parse_rgb(image):
    if image.mode == "P":
        return image.convert("RGB")
    labels = np.asarray(image.convert("L"))
    return Image.fromarray(PALETTE[np.minimum(labels, len(PALETTE) - 1)])


def _export_thumb(data: bytes | None):
    """A small RGB thumbnail of an exported image, or None; palette (P) images keep their colours."""
    image = _open_image(data, (EXPORT_THUMB_MAX_WIDTH, EXPORT_THUMB_HEIGHT))
    if image is None:
        return None
    try:
        resample = Image.NEAREST if image.mode == "P" else Image.BILINEAR  # label maps: no blended ids
        if image.mode not in ("P", "RGB", "L"):
            image = image.convert("RGBA").convert("RGB") if image.mode in ("LA", "PA") else image.convert("RGB")
        width, height = image.size
        scale = min(EXPORT_THUMB_HEIGHT / height, EXPORT_THUMB_MAX_WIDTH / width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return image.resize(size, resample).convert("RGB")
    except Exception:  # noqa: BLE001 - an odd mode becomes a link, not a failure
        return None


def export_label(path: str) -> str:
    """The caption of an exported file: its folder (image, image-parse-v3, agnostic-mask, ...)."""
    folder = posixpath.basename(posixpath.dirname(str(path)))
    return folder or posixpath.basename(str(path))


def make_export_thumbs(store: Store, row: dict, key: str) -> list[dict]:
    """Thumbnails of the row's exported images in report/thumbs/; one entry per exported path."""
    items = []
    for index, path in enumerate(row.get("exported") or []):
        path = str(path)
        item = {"path": path, "label": export_label(path), "thumb": None, "missing": False}
        if path.lower().endswith(EXPORT_IMAGE_EXTENSIONS):
            data = store.read(path)
            item["missing"] = data is None
            image = _export_thumb(data)
            if image is not None:
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=85)
                name = f"thumbs/{key}_x{index:02d}.jpg"
                store.write(f"report/{name}", buffer.getvalue())
                item["thumb"] = (name, image.size[0], image.size[1])
        items.append(item)
    return items


def thumb_key(row_id: str) -> str:
    """A file-name-safe key for an id (ids hold subfolders and any unicode)."""
    return hashlib.sha1(str(row_id).encode("utf-8")).hexdigest()[:20]


def make_thumbs(store: Store, row: dict, keep_overlay: bool = False) -> dict:
    """Write the row's thumbnails; returns {kind: (relative name, w, h) or None, ...}."""
    width, height = row.get("width"), row.get("height")
    size = _fit(width, height)
    photo, photo_from = None, None
    if row.get("source"):
        photo, photo_from = _open_image(store.read_source(str(row["source"])), size), "photo"
    if photo is None and row.get("masked_path"):
        photo, photo_from = _open_image(store.read(row["masked_path"]), size), "masked"
    if photo is not None and not (width and height):
        width, height = photo.size
        size = _fit(width, height)
    photo = photo.convert("RGB").resize(size, Image.BILINEAR) if photo is not None else None
    mask = _open_image(store.read(row["mask_path"])) if row.get("mask_path") else None
    parse = _open_image(store.read(row["parse_path"])) if row.get("parse_path") else None

    images = {"photo": photo}
    if mask is not None:
        mask = mask.convert("L").resize(size, Image.BILINEAR)
        base = photo.copy() if photo is not None else Image.new("RGB", size, (0, 0, 0))
        alpha = mask.point(lambda v: v * 55 // 100)
        base.paste(Image.new("RGB", size, (255, 0, 60)), (0, 0), alpha)
        bbox = row.get("mask_bbox")
        if bbox and len(bbox) == 4 and width and height and None not in bbox:
            sx, sy = size[0] / width, size[1] / height
            x0, y0 = bbox[0] * sx, bbox[1] * sy
            # A box narrower than a thumbnail pixel still gets drawn, as a line.
            x1, y1 = max(x0, bbox[2] * sx - 1), max(y0, bbox[3] * sy - 1)
            ImageDraw.Draw(base).rectangle([x0, y0, x1, y1], outline=(255, 230, 0))
        images["overlay"] = base
    else:
        images["overlay"] = None
    images["parse"] = _parse_rgb(parse).resize(size, Image.NEAREST) if parse is not None else None
    points = _keypoints(row.get("keypoints"), width, height, size)
    if row.get("keypoints") is not None:
        base = (Image.blend(photo, Image.new("RGB", size, (0, 0, 0)), 0.55) if photo is not None
                else Image.new("RGB", size, (24, 24, 24)))
        if points:
            _draw_pose(base, points)
        images["pose"] = base
    else:
        images["pose"] = None

    key = thumb_key(row["id"])
    result = {"photo_from": photo_from}
    for kind, image in images.items():
        if image is None:
            result[kind] = None
            continue
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=82)
        name = f"thumbs/{key}_{kind}.jpg"
        store.write(f"report/{name}", buffer.getvalue())
        result[kind] = (name, image.size[0], image.size[1])
    if row.get("exported"):
        result["exported"] = make_export_thumbs(store, row, key)
    if keep_overlay:
        result["tile"] = images["overlay"] or photo
    return result


# ---------------------------------------------------------------------------- contact sheet


def contact_sheet(rows: list[dict], tiles: list) -> bytes:
    """A PNG grid of overlay thumbnails with id, status and flags under each, bordered by status."""
    font = ImageFont.load_default()
    cell_w, cell_h, caption = 180, THUMB_HEIGHT + 8, 30
    count = max(1, len(rows))
    columns = min(CONTACT_COLUMNS, count)
    lines = math.ceil(count / columns)
    sheet = Image.new("RGB", (columns * cell_w, lines * (cell_h + caption)), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    if not rows:
        draw.text((8, 8), "no rows", fill=(0, 0, 0), font=font)
    for index, (row, tile) in enumerate(zip(rows, tiles)):
        x0, y0 = (index % columns) * cell_w, (index // columns) * (cell_h + caption)
        colour = STATUS_COLOURS.get(row.get("status"), (0, 0, 0))
        if row.get("flags") and row.get("status") != "error":
            colour = FLAGGED_COLOUR
        draw.rectangle([x0 + 1, y0 + 1, x0 + cell_w - 2, y0 + cell_h - 2], outline=colour, width=3)
        if tile is not None:
            tile = tile.copy()
            tile.thumbnail((cell_w - 8, cell_h - 8))
            sheet.paste(tile, (x0 + (cell_w - tile.size[0]) // 2, y0 + (cell_h - tile.size[1]) // 2))
        else:
            draw.text((x0 + 10, y0 + cell_h // 2), "no image", fill=(90, 90, 90), font=font)
        text_id = _ascii(row.get("id"), 28)
        text_state = _ascii(" ".join([str(row.get("status"))] + list(row.get("flags") or [])), 28)
        draw.text((x0 + 4, y0 + cell_h + 2), text_id, fill=(0, 0, 0), font=font)
        draw.text((x0 + 4, y0 + cell_h + 15), text_state, fill=colour, font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _ascii(value, limit: int) -> str:
    text = str(value).encode("ascii", "replace").decode("ascii")
    return text if len(text) <= limit else text[: limit - 1] + "~"


# ---------------------------------------------------------------------------- HTML


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _flatten(value, prefix="") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        items = []
        for key, inner in value.items():
            items += _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
        return items
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (list, tuple)):
        text = json.dumps(value)[:200]
    else:
        text = "" if value is None else str(value)
    return [(prefix, text)]


def _figure(thumb, caption: str, href: str | None, missing: str) -> str:
    if thumb is None:
        return (f'<figure class="none"><div class="ph">{_e(missing)}</div>'
                f'<figcaption>{_e(caption)}</figcaption></figure>')
    name, w, h = thumb
    img = f'<img src="{_e(quote(name))}" width="{w}" height="{h}" alt="{_e(caption)}" loading="lazy">'
    if href:
        img = f'<a href="{_e(href)}">{img}</a>'
    return f"<figure>{img}<figcaption>{_e(caption)}</figcaption></figure>"


def _link(path) -> str | None:
    return "../" + quote(str(path), safe="/") if path else None


def _export_html(row: dict, items: list[dict]) -> str:
    """The exported files of a trainer layout's row: thumbnails of images, links to the rest."""
    figures = []
    for item in items:
        href, label = _link(item["path"]), item["label"]
        title = f' title="{_e(item["path"])}"'
        if item["thumb"] is not None:
            name, w, h = item["thumb"]
            figures.append(f'<figure{title}><a href="{_e(href)}"><img src="{_e(quote(name))}" width="{w}" '
                           f'height="{h}" alt="{_e(label)}" loading="lazy"></a><figcaption>{_e(label)}'
                           f'</figcaption></figure>')
        else:
            kind = "missing" if item["missing"] else (posixpath.splitext(item["path"])[1][1:] or "file")
            figures.append(f'<figure class="xlink"{title}><a class="ph" href="{_e(href)}">{_e(kind)}</a>'
                           f'<figcaption>{_e(label)}</figcaption></figure>')
    name = f" {row['export_name']}" if row.get("export_name") else ""
    return (f'<div class="exported"><div class="xhead">exported{_e(name)} ({len(items)} files)</div>'
            f'<div class="xfiles">{"".join(figures)}</div></div>')


def _row_html(row: dict, thumbs: dict) -> str:
    flags = list(row.get("flags") or [])
    status = row.get("status") or ""
    classes = f"row st-{_e(status)}" + (" flagged" if flags else "")
    exported = thumbs.get("exported") or []
    figures = [
        (thumbs.get("photo"), thumbs.get("photo_from") or "photo", _link(row.get("masked_path")), "no photo"),
        (thumbs.get("overlay"), "mask", _link(row.get("mask_path")), "no mask"),
        (thumbs.get("parse"), "parse", _link(row.get("parse_path")), "no parse"),
        (thumbs.get("pose"), "pose", _link(row.get("pose_path")), "no pose"),
    ]
    if exported:  # a trainer layout writes no native mask or parse: no placeholders for them
        figures = [figure for figure in figures if figure[0] is not None]
    figures = "".join(_figure(*figure) for figure in figures)
    if not any(thumbs.get(kind) for kind in THUMB_KINDS):
        figures = '<div class="ph small">no images</div>'
    badges = f'<span class="badge s-{_e(status)}">{_e(status)}</span>'
    badges += "".join(f'<span class="badge flag">{_e(flag)}</span>' for flag in flags)
    facts = []
    if row.get("width") and row.get("height"):
        facts.append(f"{row['width']}×{row['height']}")
    if row.get("mask_area") is not None and math.isfinite(row["mask_area"]):
        facts.append(f"mask {row['mask_area']:.1%}")
    if row.get("persons") is not None:
        facts.append(f"persons {row['persons']}")
    for key in ("style", "parser", "pose_model"):
        if row.get(key):
            facts.append(f"{key} {row[key]}")
    error = f'<pre class="error">{_e(row.get("error"))}</pre>' if row.get("error") else ""
    return (
        f'<article class="{classes}" data-id="{_e(row.get("id"))}" data-category="{_e(row.get("category") or "")}" '
        f'data-status="{_e(status)}" data-flags="{_e(json.dumps(flags))}">'
        f'<div class="thumbs">{figures}</div><div class="meta"><h3 class="id" title="{_e(row.get("source"))}">'
        f'{_e(row.get("id"))}</h3><div class="badges"><span class="badge cat">{_e(row.get("category") or "(none)")}'
        f'</span>{badges}</div><div class="facts">{_e(" · ".join(facts))}</div>{error}'
        f'{_export_html(row, exported) if exported else ""}</div></article>')


def _options(element_id: str, label: str, values, extra=()) -> str:
    options = '<option value="">all</option>' + "".join(
        f'<option value="{_e(v)}">{_e(t)}</option>' for v, t in extra)
    options += "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)
    return f'<label>{_e(label)} <select id="{element_id}">{options}</select></label>'


def _table(items: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items)
    return f'<table class="kv">{body}</table>'


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f2;color:#222}
header{padding:12px 20px;background:#fff;border-bottom:1px solid #ddd}h1{font-size:20px;margin:0 0 8px}
h2{font-size:15px;margin:8px 0}.stats{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 8px}
.stat{padding:4px 12px;border-radius:4px;background:#e8e8e8}.stat b{font-size:18px}
.cards{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.card{background:#fafafa;border:1px solid #e2e2e2;padding:4px 10px;max-height:150px;overflow:auto;font-size:12px}
.card h2{font-size:13px;margin:2px 0 4px}table.kv{border-collapse:collapse}
table.kv th{text-align:left;font-weight:500;color:#555;padding:0 12px 0 0}
table.kv td{font-variant-numeric:tabular-nums}
.filters{position:sticky;top:0;z-index:2;background:#fff;padding:8px 20px;border-bottom:1px solid #ddd;display:flex;gap:16px;flex-wrap:wrap;align-items:center}
main{padding:12px 20px}
.row{display:flex;gap:14px;background:#fff;border:1px solid #ddd;border-left:6px solid #3ca050;margin:0 0 10px;padding:8px}
.row[hidden]{display:none}.row.flagged{border-left-color:#e69614}.row.st-error{border-left-color:#dc322f}
.row.st-skipped{border-left-color:#8c8c8c}.thumbs{display:flex;gap:6px}figure{margin:0;text-align:center}
figure img{display:block;background:#222;height:160px;width:auto;max-width:320px}
figcaption{font-size:11px;color:#666}
.ph{height:160px;width:120px;display:flex;align-items:center;justify-content:center;background:#eee;color:#888;font-size:12px}
.ph.small{height:48px}.meta{min-width:0;flex:1}
.id{font-size:14px;margin:0 0 6px;word-break:break-all;font-family:ui-monospace,monospace}
.badge{display:inline-block;font-size:12px;padding:1px 7px;border-radius:9px;margin:0 4px 4px 0;background:#e8e8e8}
.s-error{background:#dc322f;color:#fff}.s-ok{background:#3ca050;color:#fff}
.s-skipped{background:#8c8c8c;color:#fff}.flag{background:#e69614;color:#fff}.facts{color:#555;font-size:12px}
pre.error{white-space:pre-wrap;word-break:break-word;background:#fdecea;border:1px solid #f5c2c0;padding:6px;margin:6px 0 0;font-size:12px}
"""  # noqa: E501  (CSS text: wrapping it would change the page's bytes)
# Only on pages with a trainer layout's rows: a native report's page stays byte for byte the same.
EXPORT_CSS = """
.exported{margin:6px 0 0}.xhead{font-size:12px;color:#555;margin:0 0 2px}.xfiles{display:flex;flex-wrap:wrap;gap:4px}
.xfiles figure img{height:96px;max-width:128px}.xfiles .ph{height:96px;width:72px;font-size:11px;text-decoration:none}
.xfiles figcaption{max-width:128px;overflow-wrap:anywhere}
"""  # noqa: E501

JS = """
(function () {
  "use strict";
  var ids = ["f-category", "f-status", "f-flag", "f-id"];
  var inputs = ids.map(function (id) { return document.getElementById(id); });
  var rows = Array.prototype.map.call(document.querySelectorAll("article.row"), function (el) {
    return {el: el, category: el.getAttribute("data-category"), status: el.getAttribute("data-status"),
            flags: JSON.parse(el.getAttribute("data-flags") || "[]"), id: el.getAttribute("data-id").toLowerCase()};
  });
  var shown = document.getElementById("shown");
  function apply() {
    var category = inputs[0].value, status = inputs[1].value, flag = inputs[2].value;
    var text = inputs[3].value.trim().toLowerCase(), count = 0;
    rows.forEach(function (row) {
      var flagOk = !flag || (flag === "*any" ? row.flags.length > 0 :
                   flag === "*none" ? row.flags.length === 0 : row.flags.indexOf(flag) >= 0);
      var visible = flagOk && (!category || row.category === category) && (!status || row.status === status) &&
                    (!text || row.id.indexOf(text) >= 0);
      row.el.hidden = !visible;
      if (visible) { count += 1; }
    });
    shown.textContent = String(count);
  }
  inputs.forEach(function (input) { input.addEventListener("input", apply); input.addEventListener("change", apply); });
  apply();
})();
"""


def _page(stats, cards, shown_note, rows_html, categories, statuses, flags, extra_css: str = "") -> str:
    stats_html = "".join(f'<div class="stat {_e(css)}"><b>{_e(value)}</b> {_e(label)}</div>'
                         for label, value, css in stats)
    cards_html = "".join(f'<div class="card"><h2>{title}</h2>{_table(items)}</div>' for title, items in cards if items)
    filters = (
        _options("f-category", "category", categories) + _options("f-status", "status", statuses)
        + _options("f-flag", "flag", flags, extra=(("*any", "(any flag)"), ("*none", "(no flags)")))
        + '<label>id <input id="f-id" type="search" placeholder="contains"></label>'
        + f'<span><b id="shown">{len(rows_html)}</b> of {len(rows_html)} shown · {_e(shown_note)}</span>'
        + '<a href="contact_sheet.png">contact sheet</a>')
    csp = ("default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; "
           "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,"><title>Try-on masks report</title>'
        f"<style>{CSS}{extra_css}</style></head><body><header><h1>Try-on masks report</h1>"
        f'<div class="stats">{stats_html}</div><div class="cards">{cards_html}</div></header>'
        f'<nav class="filters">{filters}</nav><main id="rows">{"".join(rows_html)}</main>'
        f"<script>{JS}</script></body></html>")


# ---------------------------------------------------------------------------- entry points


def _choose_rows(dataset, light, sample: int, seed: int, problem_limit: int):
    """Pick rows from the light columns, then read all columns of only those rows."""
    status = np.asarray(light["status"].fill_null("").to_numpy(zero_copy_only=False)).astype(str)
    flagged = np.zeros(light.num_rows, dtype=bool)
    if "flags" in light.column_names:
        flagged = pc.fill_null(pc.list_value_length(light["flags"]), 0).to_numpy(zero_copy_only=False) > 0
    groups = select_rows(status, flagged, sample, seed, problem_limit)
    columns = [name for name in ROW_COLUMNS if name in dataset.schema.names]
    rows, seen = [], set()
    for indices in groups:
        group = dataset.take(indices, columns=columns).to_pylist() if indices.size else []
        for row in sorted(group, key=lambda r: str(r.get("id"))):
            if row.get("id") not in seen:  # a resumed run may hold an id twice; show it once
                seen.add(row.get("id"))
                rows.append(row)
    errors, problems = int((status == "error").sum()), int((flagged | (status == "error")).sum())
    note = (f"{groups[0].size} of {errors} errors, {groups[1].size} of {problems - errors} flagged, "
            f"{groups[2].size} sampled of {light.num_rows - problems} other rows (seed {seed})")
    return rows, int(flagged.sum()), note


def _header(store: Store, dataset, light, flagged: int):
    """The counts at the top, and the cards: run summary, categories, flags, run.json."""
    stats = [("rows", light.num_rows, "")]
    stats += [(name, count, f"s-{name}") for name, count in _counts(light["status"]).items()]
    stats.append(("flagged", flagged, "flag"))
    try:
        summary, summary_from = json.loads(store.read("summary.json")), "summary.json"
    except (TypeError, ValueError):
        summary, summary_from = _manifest_summary(dataset, light.num_rows, flagged), "computed from the manifest"
    cards = [(f"Run summary <small>({_e(summary_from)})</small>", _flatten(summary)[:200])]
    if "category" in light.column_names:
        cards.append(("category", list(_counts(light["category"]).items())))
    if "flags" in light.column_names:
        cards.append(("flags", list(_counts(pc.list_flatten(light["flags"])).items())))
    try:
        run_json = json.loads(store.read("run.json"))
    except (TypeError, ValueError):
        run_json = None
    if run_json is not None:
        if run_json.get("warnings"):  # e.g. the demo parser: shown first, where nobody misses it
            cards.insert(0, ("Warnings", [("warning", text) for text in run_json["warnings"]]))
        cards.append(("run.json", _flatten(run_json)[:200]))
    return stats, cards


def build_report(out: str | Path, sample: int = 500, seed: int = 0, problem_limit: int = PROBLEM_LIMIT) -> Path:
    """Write OUT/report/index.html, its thumbnails and contact_sheet.png; return index.html's path.

    Shown: every error row and every flagged row (up to problem_limit each) and a seeded random
    sample of `sample` other rows, in that order. Summary numbers come from OUT/summary.json when
    present, else from the manifest. For an OUT given as a URI the return value is a URI string.
    """
    store = Store(out)
    dataset = store.manifest()
    light = dataset.to_table(columns=[name for name in LIGHT_COLUMNS if name in dataset.schema.names])
    rows, flagged, note = _choose_rows(dataset, light, sample, seed, problem_limit)
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        thumbs = list(pool.map(lambda item: make_thumbs(store, item[1], item[0] < CONTACT_LIMIT),
                               enumerate(rows)))
    stats, cards = _header(store, dataset, light, flagged)

    def distinct(key):
        return sorted({str(r.get(key)) for r in rows if r.get(key)})

    page = _page(
        stats, cards, note, [_row_html(row, thumb) for row, thumb in zip(rows, thumbs)],
        distinct("category"), distinct("status"), sorted({f for r in rows for f in (r.get("flags") or [])}),
        extra_css=EXPORT_CSS if any(t.get("exported") for t in thumbs) else "")
    store.write("report/index.html", page.encode("utf-8"))
    written = {posixpath.basename(t[kind][0]) for t in thumbs for kind in THUMB_KINDS if t.get(kind)}
    written |= {posixpath.basename(item["thumb"][0]) for t in thumbs for item in t.get("exported") or []
                if item["thumb"]}
    store.prune("report/thumbs", written)  # thumbnails of an earlier build's rows
    tiles = [t.get("tile") for t in thumbs[:CONTACT_LIMIT]]
    store.write("report/contact_sheet.png", contact_sheet(rows[:CONTACT_LIMIT], tiles))
    index = store.path("report/index.html")
    return Path(index) if store.local else store.uri("report/index.html")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="the run's output folder (OUT)")
    parser.add_argument("--sample", type=int, default=500,
                        help="random rows shown besides every error and flagged row (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random sample (default 0)")
    parser.add_argument("--problem-limit", type=int, default=PROBLEM_LIMIT,
                        help=f"error rows, and flagged rows, shown at most (each; default {PROBLEM_LIMIT})")


def run_from_args(args: argparse.Namespace) -> int:
    try:
        index = build_report(args.out, sample=args.sample, seed=args.seed,
                             problem_limit=getattr(args, "problem_limit", PROBLEM_LIMIT))
    except FileNotFoundError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    print(f"report: {index}")
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m pipeline.report")
    add_arguments(_parser)
    raise SystemExit(run_from_args(_parser.parse_args()))
