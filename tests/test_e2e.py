"""End to end through Ray: the CLI on generated photos, one truncated, with small models."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import run_cli
from PIL import Image

from pipeline.testing.synthetic import make_person

ROOT = Path(__file__).resolve().parents[1]
BUNDLED_PARSER = ROOT / "pipeline" / "assets" / "parser"
PHOTOS = 20


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    (folder / "nested").mkdir()
    for index in range(PHOTOS - 1):
        sample = make_person(index, 192, 256)
        target = folder / ("nested" if index % 5 == 0 else ".") / f"person {index:02d}.jpg"
        Image.fromarray(sample.image).save(target, quality=90)
    whole = (folder / "person 01.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "notes.txt").write_text("not a photo, not a row")
    return folder


@pytest.fixture(scope="module")
def finished_run(photo_folder, tmp_path_factory, tiny_parser_dir, tiny_pose_dir):
    out = tmp_path_factory.mktemp("out")
    result = run_cli("run", str(photo_folder), "--output", str(out), "--parser", str(tiny_parser_dir),
                     "--pose", str(tiny_pose_dir), "--num-cpus", "2", "--batch-size", "4")
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_every_row_reaches_the_manifest(finished_run):
    out, result = finished_run
    manifest = pq.read_table(out / "manifest").to_pylist()
    assert len(manifest) == PHOTOS
    by_status = {}
    for row in manifest:
        by_status.setdefault(row["status"], []).append(row)
    assert len(by_status["ok"]) == PHOTOS - 1
    [bad] = by_status["error"]
    assert bad["id"] == "truncated" and "truncated" in bad["error"]
    assert bad["mask_path"] is None and bad["keypoints"] is None
    assert sorted(r["id"] for r in manifest) == sorted(
        ["truncated"] + [f"nested/person_{i:02d}" if i % 5 == 0 else f"person_{i:02d}" for i in range(PHOTOS - 1)])
    assert "done: 20 rows" in result.stdout


def test_every_ok_row_has_its_files(finished_run):
    out, _ = finished_run
    manifest = pq.read_table(out / "manifest").to_pylist()
    ok = [row for row in manifest if row["status"] == "ok"]
    for folder, suffix in (("masks", ".png"), ("masked", ".jpg"), ("parse", ".png"), ("pose", ".json")):
        files = sorted(p.relative_to(out / folder).as_posix() for p in (out / folder).rglob("*") if p.is_file())
        assert files == sorted(row["id"] + suffix for row in ok), folder
    for row in ok:
        assert (row["width"], row["height"]) == (192, 256)
        mask = np.asarray(Image.open(out / row["mask_path"]))
        assert mask.shape == (256, 192) and set(np.unique(mask)) <= {0, 255}
        assert row["mask_area"] == pytest.approx(np.count_nonzero(mask) / mask.size, abs=1e-6)
        parse = Image.open(out / row["parse_path"])
        assert parse.mode == "P" and parse.size == (192, 256)
        masked = np.asarray(Image.open(out / row["masked_path"]))
        assert masked.shape == (256, 192, 3)
        pose = json.loads((out / row["pose_path"]).read_text())
        assert len(pose["people"]) == row["persons"]
        assert len(row["keypoints"]) == 54 and len(row["label_fractions"]) == 18
        assert sum(row["label_fractions"]) == pytest.approx(1.0, abs=1e-4)
        assert row["parser"] and row["pose_model"] and row["style"] == "rect"
    assert not (out / ".tmp").exists() or list((out / ".tmp").iterdir()) == []


def test_summary_is_written_last(finished_run):
    out, _ = finished_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == PHOTOS and summary["status"] == {"error": 1, "ok": PHOTOS - 1}
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["style"] == "rect"
    assert not (out / ".lock").exists()


def test_rerun_resumes_with_nothing_to_do(finished_run, photo_folder, tiny_parser_dir, tiny_pose_dir):
    out, _ = finished_run
    result = run_cli("run", str(photo_folder), "--output", str(out), "--parser", str(tiny_parser_dir),
                     "--pose", str(tiny_pose_dir), "--num-cpus", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(pq.read_table(out / "manifest")) == PHOTOS
    changed = run_cli("run", str(photo_folder), "--output", str(out), "--parser", str(tiny_parser_dir),
                      "--pose", str(tiny_pose_dir), "--style", "parse", "--num-cpus", "2")
    assert changed.returncode != 0 and "style" in changed.stderr


def test_a_missing_model_stops_the_run_at_start(photo_folder, tmp_path):
    result = run_cli("run", str(photo_folder), "--output", str(tmp_path / "out"),
                     "--parser", str(tmp_path / "no-such-model"), "--pose", "none")
    assert result.returncode == 1
    assert "no-such-model" in result.stderr and "--parser" in result.stderr
    assert not (tmp_path / "out" / "manifest").exists()


def test_an_unreachable_hub_id_stops_the_run_at_start(photo_folder, tmp_path):
    result = run_cli("run", str(photo_folder), "--output", str(tmp_path / "out"), "--pose", "none",
                     env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "matei-dorian/segformer-b5-finetuned-human-parsing" in line and "--parser /path/to/folder" in line
    assert not (tmp_path / "out" / "manifest").exists()


def test_bad_arguments_exit_non_zero(tmp_path):
    result = run_cli("run", str(tmp_path / "absent"), "--output", str(tmp_path / "out"), "--pose", "none")
    assert result.returncode == 1 and "does not exist" in result.stderr
    result = run_cli("run", str(tmp_path), "--output", str(tmp_path / "out"), "--category", "shoes")
    assert result.returncode == 2 and "shoes" in result.stderr


def _stage_outputs(source: Path, category: str, parser: str, fill: str = "green") -> dict:
    """The one-row outputs of the stages masked_image runs, for comparing its file with them."""
    from pipeline.api import run_stages

    batch = {"id": np.array(["image"], dtype=object), "source": np.array([str(source)], dtype=object),
             "category": np.array([category], dtype=object), "status": np.array(["pending"], dtype=object),
             "error": np.array([""], dtype=object)}
    out = run_stages(batch, parser=parser, pose=None, device="cpu", precision="fp32", width=576, height=768,
                     style="rect", fill=fill)
    assert out["status"][0] == "ok", out["error"][0]
    mask = np.asarray(Image.open(io.BytesIO(out["mask_bytes"][0])))
    assert 0.05 < np.count_nonzero(mask) / mask.size < 0.6, "the photo needs a real mask for these checks"
    return {"mask": mask > 0, "masked": np.asarray(Image.open(io.BytesIO(out["masked_bytes"][0])).convert("RGB"))}


def _inner(region: np.ndarray, margin: int = 6) -> np.ndarray:
    """The region without a margin along its edges (where JPEG blocks mix both sides)."""
    return cv2.erode(region.astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) > 0


def test_masked_image_writes_its_file(photo_folder, tiny_parser_dir, tmp_path):
    from pipeline import masked_image

    # The bundled parser gives person 02 a real garment mask (the tiny random one does not).
    parser, category = str(BUNDLED_PARSER), make_person(2, 192, 256).category
    source = photo_folder / "person 02.jpg"
    photo = np.asarray(Image.open(source).convert("RGB"))
    target = masked_image(category, source, tmp_path / "masked.png", parser=parser, pose="none", device="cpu")
    assert Path(target) == tmp_path / "masked.png"
    written = Image.open(target)
    assert written.format == "PNG" and written.size == (192, 256)
    pixels = np.asarray(written.convert("RGB"))
    # The file holds the stages' masked photo (a JPEG for a JPEG photo) unchanged: the mask area
    # green, the rest the photo, both up to JPEG's error away from edges.
    stages = _stage_outputs(source, category, parser)
    mask = stages["mask"]
    assert np.array_equal(pixels, stages["masked"])
    inside, outside = _inner(mask), _inner(~mask)
    assert inside.any() and outside.any()
    off_green = np.abs(pixels[inside].astype(int) - (0, 255, 0))
    assert off_green.max() <= 8 and off_green.mean() < 1
    assert np.abs(pixels[outside].astype(int) - photo[outside]).mean() < 2.5
    # A PNG photo gives a lossless result: exactly the fill inside the mask, exactly the photo outside.
    png = tmp_path / "person 02.png"
    Image.fromarray(photo).save(png)
    for fill, colour in (("green", (0, 255, 0)), ("gray", (127, 127, 127))):
        written = masked_image(category, png, tmp_path / f"{fill}.png", parser=parser, pose="none", device="cpu",
                               fill=fill)
        pixels = np.asarray(Image.open(written).convert("RGB"))
        mask = _stage_outputs(png, category, parser, fill)["mask"]
        assert (pixels[mask] == colour).all(), fill
        assert np.array_equal(pixels[~mask], photo[~mask]), fill
    default = masked_image("lower_body", photo_folder / "person 03.jpg", parser=str(tiny_parser_dir),
                           pose="none", device="cpu", preserve_resolution=False, width=96, height=128)
    assert default.endswith("person 03_masked.jpg") and Image.open(default).size == (96, 128)
    os.unlink(default)
    assert masked_image("other", photo_folder / "person 04.jpg") == str(photo_folder / "person 04.jpg")
    with pytest.raises(ValueError):
        masked_image("shoes", photo_folder / "person 04.jpg")
    with pytest.raises(FileNotFoundError):
        masked_image("upper_body", tmp_path / "absent.jpg")


def test_report_of_a_real_run(finished_run):
    from pipeline.report import CONTACT_COLUMNS, FLAGGED_COLOUR, STATUS_COLOURS, THUMB_HEIGHT

    out, _ = finished_run
    result = run_cli("report", str(out), "--sample", "5")
    assert result.returncode == 0, result.stderr[-3000:]
    page = (out / "report" / "index.html").read_text()
    assert "truncated" in page  # the error row is shown, with its message
    # Shown: every error row, every flagged row, then 5 of the other rows; problems first.
    manifest = pq.read_table(out / "manifest").to_pylist()
    errors = sum(row["status"] == "error" for row in manifest)
    flagged = sum(row["status"] != "error" and bool(row["flags"]) for row in manifest)
    shown = errors + flagged + min(5, len(manifest) - errors - flagged)
    assert errors == 1 and page.count('<article class="row') == shown
    colours = [STATUS_COLOURS["error"]] * errors + [FLAGGED_COLOUR] * flagged + [STATUS_COLOURS["ok"]] * (
        shown - errors - flagged)
    # The contact sheet: a grid of `shown` cells, CONTACT_COLUMNS wide, each bordered by its row's
    # status and holding the row's overlay thumbnail (the error row has no image); the cells left
    # over in the last line are empty.
    sheet = np.asarray(Image.open(out / "report" / "contact_sheet.png").convert("RGB"))
    columns = min(CONTACT_COLUMNS, shown)
    lines = -(-shown // columns)
    height, width = sheet.shape[:2]
    assert width % columns == 0 and height % lines == 0, (sheet.shape, columns, lines)
    cell_w, cell_h = width // columns, height // lines
    assert cell_w >= THUMB_HEIGHT * 3 // 4 and cell_h >= THUMB_HEIGHT
    background = sheet[0, 0].copy()  # outside the first cell's border
    assert (background > 200).all()
    for index in range(columns * lines):
        y0, x0 = (index // columns) * cell_h, (index % columns) * cell_w
        cell = sheet[y0:y0 + cell_h, x0:x0 + cell_w]
        if index >= shown:
            assert (cell == background).all(), f"cell {index} should be empty"
            continue
        assert tuple(cell[20, 2]) == colours[index], f"cell {index}: border {tuple(cell[20, 2])}"
        if colours[index] != STATUS_COLOURS["error"]:
            cy, cx = int(cell_h * 0.4), cell_w // 2
            patch = cell[cy - 10:cy + 10, cx - 10:cx + 10]
            assert (patch != background).any(-1).mean() > 0.9, f"cell {index} holds no thumbnail"
