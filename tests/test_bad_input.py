"""Every kind of bad input in one run through Ray: one manifest row each, specific errors, exit 0."""
from __future__ import annotations

import csv
import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from test_e2e import run_cli

from pipeline.testing.synthetic import make_person


def _jpeg(pixels: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bad_input_run(tmp_path_factory, tiny_parser_dir):
    root = tmp_path_factory.mktemp("bad")
    photos = root / "photos"
    photos.mkdir()
    person = make_person(7, 120, 160).image
    files = {
        "zero.jpg": b"",
        "truncated.jpg": _jpeg(person)[:600],
        "text.jpg": b"this is a text file, not a photo\n",
        "one.png": None,
    }
    for name, data in files.items():
        if data is not None:
            (photos / name).write_bytes(data)
    Image.new("RGB", (1, 1), (200, 10, 10)).save(photos / "one.png")
    rgba = np.dstack([person, np.full(person.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(photos / "alpha.png")
    Image.fromarray(person).convert("P", palette=Image.Palette.ADAPTIVE).save(photos / "palette.png")
    Image.fromarray(person[..., 0].astype(np.uint16) * 257).save(photos / "deep.png")
    Image.fromarray(person).convert("L").save(photos / "gray.jpg")
    Image.fromarray(person).convert("CMYK").save(photos / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: displayed rotated 90 degrees clockwise
    (photos / "rotated.jpg").write_bytes(_jpeg(np.ascontiguousarray(np.rot90(person)), exif=exif))
    Image.new("1", (30000, 30000)).save(photos / "bomb.png")
    frames = [Image.fromarray(person), Image.fromarray(255 - person)]
    frames[0].save(photos / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    Image.fromarray(person).save(photos / "photo.webp")
    (photos / "Zoë and Ann's photo.jpg").write_bytes(_jpeg(person))
    outside = root / "elsewhere"
    outside.mkdir()
    (outside / "far.jpg").write_bytes(_jpeg(person))
    manifest = photos / "manifest.csv"
    cells = [(name, "upper_body") for name in (
        "zero.jpg", "truncated.jpg", "text.jpg", "one.png", "alpha.png", "palette.png", "deep.png",
        "gray.jpg", "cmyk.jpg", "rotated.jpg", "bomb.png", "animated.gif", "photo.webp", "missing.jpg",
        "Zoë and Ann's photo.jpg")]
    cells += [("", "upper_body"), ("../elsewhere/far.jpg", "lower_body"), (str(outside / "far.jpg"), "dresses"),
              ("gray.jpg", " Lower_Body "), ("alpha.png", "shoes"), ("alpha.png", "other")]
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "category"])
        writer.writerows(cells)
    out = root / "out"
    result = run_cli("run", str(manifest), "--output", str(out), "--parser", str(tiny_parser_dir),
                     "--pose", "none", "--num-cpus", "2", "--width", "96", "--height", "128")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = pq.read_table(out / "manifest").to_pylist()
    by_source = {}  # the first row of each source: the upper_body rows listed first
    for row in sorted(rows, key=lambda r: r["category"] != "upper_body"):
        by_source.setdefault(row["source"].replace(str(root), "ROOT"), row)
    return root, out, by_source, rows


def test_one_row_per_input_row(bad_input_run):
    _, _, _, rows = bad_input_run
    assert len(rows) == 21
    assert len({row["id"] for row in rows}) == 21


@pytest.mark.parametrize("name, message", [
    ("zero.jpg", "empty file"), ("truncated.jpg", "truncated"), ("text.jpg", "not an image"),
    ("bomb.png", "image too large"), ("missing.jpg", "file not found"),
])
def test_bad_files_are_specific_errors(bad_input_run, name, message):
    _, _, by_source, _ = bad_input_run
    row = by_source[f"ROOT/photos/{name}"]
    assert row["status"] == "error" and message in row["error"]
    assert row["mask_path"] is None and row["masked_path"] is None


@pytest.mark.parametrize("name, size", [
    ("one.png", (1, 1)), ("alpha.png", (120, 160)), ("palette.png", (120, 160)), ("deep.png", (120, 160)),
    ("cmyk.jpg", (120, 160)), ("rotated.jpg", (120, 160)), ("animated.gif", (120, 160)),
    ("photo.webp", (120, 160)), ("Zoë and Ann's photo.jpg", (120, 160)),
])
def test_usable_files_are_ok_at_their_oriented_size(bad_input_run, name, size):
    _, out, by_source, _ = bad_input_run
    row = by_source[f"ROOT/photos/{name}"]
    assert row["status"] == "ok", row["error"]
    assert (row["width"], row["height"]) == size
    for column in ("mask_path", "parse_path", "masked_path"):
        assert Image.open(out / row[column]).size == size, column


def test_exif_rotation_is_honoured_in_the_composite(bad_input_run):
    root, out, by_source, _ = bad_input_run
    row = by_source["ROOT/photos/rotated.jpg"]
    upright = np.asarray(Image.open(out / row["masked_path"]).convert("RGB"), dtype=np.int16)
    mask = np.asarray(Image.open(out / row["mask_path"])) > 0
    expected = make_person(7, 120, 160).image.astype(np.int16)
    assert np.abs(upright - expected)[~mask].mean() < 12


def test_manifest_rows_with_bad_cells(bad_input_run):
    _, _, by_source, rows = bad_input_run
    [empty] = [row for row in rows if row["source"] == ""]
    assert empty["status"] == "error" and "empty path" in empty["error"]
    [unknown] = [row for row in rows if row["category"] == "shoes"]
    assert unknown["status"] == "error" and "'shoes'" in unknown["error"]
    [passthrough] = [row for row in rows if row["category"] == "other"]
    assert passthrough["status"] == "skipped" and passthrough["mask_path"] is None
    gray = [row for row in rows if row["source"].endswith("gray.jpg")]
    assert sorted(row["category"] for row in gray) == ["lower_body", "upper_body"]
    assert all(row["status"] == "ok" for row in gray) and len({row["id"] for row in gray}) == 2


def test_paths_outside_the_manifest_folder_are_read_but_outputs_stay_in_out(bad_input_run):
    root, out, by_source, _ = bad_input_run
    far = by_source["ROOT/elsewhere/far.jpg"]
    assert far["status"] == "ok"
    assert not far["id"].startswith("/") and ".." not in far["id"].split("/")
    written = {p.resolve() for p in root.rglob("*") if p.is_file()}
    inside = {p.resolve() for p in out.rglob("*") if p.is_file()}
    inputs = {p.resolve() for p in (root / "photos").iterdir()} | {(root / "elsewhere" / "far.jpg").resolve()}
    assert written - inside - inputs == set()
    for row in by_source.values():
        for column in ("mask_path", "masked_path", "parse_path"):
            if row[column]:
                assert (out / row[column]).resolve().is_relative_to(out.resolve())
