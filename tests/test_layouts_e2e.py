"""The trainer layouts end to end: generated people with generated garment photos, through the CLI
(--pose-from the true keypoints, the bundled parser), read back the way the trainers' loaders
read them (docs/layouts.md, pipeline/trainer_layouts.py)."""
from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import run_cli
from PIL import Image, ImageOps

from pipeline.pose_files import to_openpose_json
from pipeline.testing.products import make_product
from pipeline.testing.synthetic import make_person

ROOT = Path(__file__).resolve().parents[1]
BUNDLED_PARSER = ROOT / "pipeline" / "assets" / "parser"
# The narrow random-weight DensePose checkpoint of the parity test: it finds persons, so the
# densepose files are written, but its parts mean nothing (tests/test_densepose_layouts.py checks
# their values in process).
DENSEPOSE = ROOT / "tests" / "fixtures" / "densepose" / "model_tiny.pkl"
PEOPLE = 20  # upper_body people with a garment photo each, exported in both layouts (issue 15 asks for 20);
            # rows after them add the special cases
SIZE = (384, 512)
FRAME = (768, 1024)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """manifest.csv: PEOPLE upper_body rows with garments (two in train), then a row whose garment is
    missing, a lower_body row with a garment, and a row without a garment."""
    folder = tmp_path_factory.mktemp("dataset")
    (folder / "photos").mkdir()
    (folder / "garments").mkdir()
    (folder / "keypoints").mkdir()
    rows = []
    categories = ["upper_body"] * (PEOPLE + 1) + ["lower_body", "upper_body"]
    for index, category in enumerate(categories):
        sample = make_person(100 + index, *SIZE, category=category)
        stem = f"look image {index:02d}"  # a path with 'image' in it: names must not come from paths
        Image.fromarray(sample.image).save(folder / "photos" / f"{stem}.jpg", quality=92)
        document = to_openpose_json([sample.keypoints], 0, canvas_size=SIZE)
        (folder / "keypoints" / f"{stem}.json").write_text(json.dumps(document))
        garment = f"garments/g{index:02d}.jpg"
        if index < PEOPLE or category == "lower_body":
            product = make_product(200 + index, *SIZE)
            Image.fromarray(product.image).save(folder / garment, quality=92)
        elif index == PEOPLE:
            garment = "garments/missing.jpg"  # never written
        else:
            garment = ""
        rows.append({"path": f"photos/{stem}.jpg", "category": category, "garment": garment,
                     "split": "train" if index in (1, 4) else ""})
    with open(folder / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "category", "garment", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return folder


def _run(dataset: Path, out: Path, layout: str, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("run", str(dataset / "manifest.csv"), "--output", str(out), "--layout", layout,
                   "--pose-from", str(dataset / "keypoints"), "--parser", str(BUNDLED_PARSER),
                   "--num-cpus", "2", "--batch-size", "4", *extra)


@pytest.fixture(scope="module")
def vitonhd_run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("vitonhd")
    result = _run(dataset, out, "vitonhd", "--densepose", str(DENSEPOSE))
    assert result.returncode == 0, result.stderr[-3000:]
    return out, {row["seq"]: row for row in pq.read_table(out / "manifest").to_pylist()}


@pytest.fixture(scope="module")
def dresscode_run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("dresscode")
    result = _run(dataset, out, "dresscode", "--densepose", str(DENSEPOSE))
    assert result.returncode == 0, result.stderr[-3000:]
    return out, {row["seq"]: row for row in pq.read_table(out / "manifest").to_pylist()}


def _open(path: Path, mode: str, size=FRAME) -> np.ndarray:
    assert path.is_file(), path
    image = Image.open(path)
    assert image.mode == mode and image.size == size, (path, image.mode, image.size)
    return np.asarray(image)


def _pairs(path: Path) -> list[list[str]]:
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    lines = text.splitlines()
    assert all(line.count(" ") == 1 for line in lines)  # one space: CatVTON splits on " "
    return [line.split(" ") for line in lines]


def test_vitonhd_names_rows_and_errors(vitonhd_run, dataset):
    out, rows = vitonhd_run
    assert sorted(rows) == list(range(PEOPLE + 3))
    for seq, row in rows.items():
        assert row["export_name"] == f"{seq:05d}_00"
        assert row["split"] == ("train" if seq in (1, 4) else "test")
    missing = rows[PEOPLE]
    assert missing["status"] == "error" and "garments/missing.jpg" in missing["error"]
    assert missing["exported"] == [] and not list(out.rglob(f"{missing['export_name']}*"))
    lower = rows[PEOPLE + 1]
    assert lower["status"] == "error" and "upper_body" in lower["error"] and "lower_body" in lower["error"]
    assert not list(out.rglob(f"{lower['export_name']}*"))
    assert not (out / "masks").exists() and not (out / "parse").exists()  # no native kinds


def test_vitonhd_files_read_back_like_the_loaders(vitonhd_run):
    out, rows = vitonhd_run
    ok = [row for row in rows.values() if row["status"] == "ok"]
    assert len(ok) >= PEOPLE - 1
    for row in ok:
        base, name = out / row["split"], row["export_name"]
        assert sorted(row["exported"]) == sorted(
            str(p.relative_to(out).as_posix()) for p in out.rglob(f"{name}*") if p.is_file())
        image = _open(base / "image" / f"{name}.jpg", "RGB")
        assert image.dtype == np.uint8
        parse = _open(base / "image-parse-v3" / f"{name}.png", "P")
        assert parse.max() <= 19
        document = json.loads((base / "openpose_json" / f"{name}_keypoints.json").read_text())
        people = document["people"]
        flags = row["flags"]
        if "no_person" in flags:
            assert people == []
        else:
            pose = np.asarray(people[0]["pose_keypoints_2d"], float).reshape(-1, 3)
            assert pose.shape == (25, 3)
            present = pose[:, 2] > 0
            assert (pose[present, 0] <= FRAME[0]).all() and (pose[present, 1] <= FRAME[1]).all()
            assert present[[2, 5, 9, 12]].all()  # shoulders and hips, BODY_25 order
        densepose = _open(base / "image-densepose" / f"{name}.jpg", "RGB")
        assert densepose.dtype == np.uint8 and densepose[:8, :8].max() < 16  # black off the person
        rendered = _open(base / "openpose_img" / f"{name}_rendered.png", "RGB")
        assert rendered.any() == ("no_person" not in flags)
        if "no_agnostic" in flags:
            assert not (base / "agnostic-v3.2" / f"{name}.jpg").exists()
        else:
            agnostic = _open(base / "agnostic-v3.2" / f"{name}.jpg", "RGB").astype(int)
            mask = _open(base / "agnostic-mask" / f"{name}_mask.png", "L")
            assert set(np.unique(mask)) <= {0, 255} and mask.any()
            assert np.abs(agnostic[mask == 255] - 128).mean() < 4  # the gray region, JPEG-close
            assert _open(base / "image-parse-agnostic-v3.2" / f"{name}.png", "P").max() <= 19
        if row["garment"]:
            _open(base / "cloth" / f"{name}.jpg", "RGB")
            cloth_mask = _open(base / "cloth-mask" / f"{name}.jpg", "L")
            assert (cloth_mask >= 128).sum() > 0.05 * cloth_mask.size
        else:
            assert not (base / "cloth" / f"{name}.jpg").exists()


def test_vitonhd_pairs_and_tagged_json(vitonhd_run):
    out, rows = vitonhd_run
    for split in ("train", "test"):
        pairs = _pairs(out / f"{split}_pairs.txt")
        expected = [row for row in sorted(rows.values(), key=lambda r: r["seq"])
                    if row["split"] == split and row["status"] == "ok" and row["garment"]
                    and not {"no_person", "no_agnostic"} & set(row["flags"])]
        assert [p for p, _ in pairs] == [f"{row['export_name']}.jpg" for row in expected]
        assert pairs  # the generated people have shoulders and hips
        for person, cloth in pairs:
            assert person == cloth  # paired: the row's own garment
            for folder in ("image", "cloth", "cloth-mask", "agnostic-v3.2"):
                assert (out / split / folder / person).is_file()
            assert (out / split / "agnostic-mask" / person.replace(".jpg", "_mask.png")).is_file()
        tagged = json.loads((out / split / f"vitonhd_{split}_tagged.json").read_text())
        records = [record for value in tagged.values() for record in value]
        assert [record["file_name"] for record in records] == [c for _, c in pairs]
        assert all(isinstance(record["tag_info"], list) for record in records)
    paired = _pairs(out / "test_pairs.txt")
    unpaired = _pairs(out / "test_pairs_unpaired.txt")
    assert [p for p, _ in unpaired] == [p for p, _ in paired]
    assert sorted(c for _, c in unpaired) == sorted(c for _, c in paired)
    assert all(p != c for p, c in unpaired)
    none_without_garment = rows[PEOPLE + 2]
    assert none_without_garment["status"] == "ok" and none_without_garment["garment"] is None
    assert f"{none_without_garment['export_name']}.jpg" not in (out / "test_pairs.txt").read_text()


def test_rerun_resumes_with_the_same_names_and_other_layout_is_refused(vitonhd_run, dataset):
    out, rows = vitonhd_run
    before = (out / "test_pairs.txt").read_text()
    (out / "test_pairs.txt").unlink()
    result = _run(dataset, out, "vitonhd", "--densepose", str(DENSEPOSE))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "test_pairs.txt").read_text() == before  # finish runs on a resume with nothing to do
    again = {row["seq"]: row["export_name"] for row in pq.read_table(out / "manifest").to_pylist()}
    assert again == {seq: row["export_name"] for seq, row in rows.items()}
    refused = _run(dataset, out, "dresscode")
    assert refused.returncode == 1
    assert "layout: 'vitonhd' -> 'dresscode'" in refused.stderr and "--overwrite" in refused.stderr


def test_pose_none_with_a_trainer_layout_is_refused_at_start(dataset, tmp_path):
    out = tmp_path / "never"
    result = run_cli("run", str(dataset / "manifest.csv"), "--output", str(out), "--layout", "vitonhd",
                     "--pose", "none", "--parser", str(BUNDLED_PARSER))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs keypoints" in lines[0] and "--pose-from" in lines[0]
    assert not out.exists()


def test_dresscode_files_and_pairs(dresscode_run):
    out, rows = dresscode_run
    missing = rows[PEOPLE]
    assert missing["status"] == "error" and "garments/missing.jpg" in missing["error"]
    assert not list(out.rglob(f"{missing['export_name']}_*"))
    ok = [row for row in rows.values() if row["status"] == "ok"]
    assert rows[PEOPLE + 1]["status"] == "ok" and rows[PEOPLE + 1]["category"] == "lower_body"
    found_densepose = []
    for row in ok:
        base, name = out / row["category"], row["export_name"]
        assert name == f"{row['seq']:06d}"
        _open(base / "images" / f"{name}_0.jpg", "RGB")
        assert (base / "images" / f"{name}_1.jpg").is_file() == bool(row["garment"])
        assert (base / "masks" / f"{name}_1.png").is_file() == bool(row["garment"])
        if row["garment"]:  # as LaDI-VTON reads it: the garment kept, the rest whitened
            cloth = Image.open(base / "images" / f"{name}_1.jpg")
            mask = Image.open(base / "masks" / f"{name}_1.png")
            assert mask.mode == "L" and mask.size == cloth.size == FRAME
            values = np.asarray(mask)
            assert set(np.unique(values)) <= {0, 255} and 0.05 < (values == 255).mean() < 0.9
            inverted = ImageOps.invert(mask.convert("L"))
            whitened = np.asarray(Image.composite(inverted, cloth, inverted).convert("RGB"))
            assert (whitened[values == 0] == 255).all()
            assert np.array_equal(whitened[values == 255], np.asarray(cloth)[values == 255])
        assert _open(base / "label_maps" / f"{name}_4.png", "P").max() <= 17
        _open(base / "skeletons" / f"{name}_5.jpg", "RGB")
        parts = _open(base / "dense" / f"{name}_5.png", "L")
        assert parts.max() <= 24
        uv = np.load(base / "dense" / f"{name}_5_uv.npz")["uv"]
        assert uv.dtype == np.float32 and uv.shape == (2, FRAME[1], FRAME[0])
        assert uv.min() >= 0 and uv.max() <= 1 and not uv[:, parts == 0].any()
        _open(base / "image-densepose" / f"{name}_0.jpg", "RGB")
        keypoints = json.loads((base / "keypoints" / f"{name}_2.json").read_text())["keypoints"]
        assert len(keypoints) == 18 and all(len(k) == 4 for k in keypoints)
        found_densepose.append(row["densepose_persons"] > 0 and parts.any())
        present = [k for k in keypoints if k[0] >= 0]
        assert all(0 <= k[0] <= 384 and 0 <= k[1] <= 512 for k in present)  # DressCode's 384x512 frame
    assert any(found_densepose)  # the tiny model finds somebody in some photos: non-empty maps written
    for category in ("upper_body", "lower_body"):
        base = out / category
        train, paired, unpaired = (_pairs(base / name) for name in
                                   ("train_pairs.txt", "test_pairs_paired.txt", "test_pairs_unpaired.txt"))
        for person, cloth in train + paired + unpaired:
            assert (base / "images" / person).is_file() and (base / "images" / cloth).is_file()
            assert person.endswith("_0.jpg") and cloth.endswith("_1.jpg")
        assert all(p[:-6] == c[:-6] for p, c in paired)
        assert [p for p, _ in unpaired] == [p for p, _ in paired]
        if len(paired) > 1:
            assert all(p[:-6] != c[:-6] for p, c in unpaired)
    assert len(_pairs(out / "upper_body" / "train_pairs.txt")) == 2
    # every ok upper_body person with a garment is in a pairs file, with that garment
    upper = [row for row in ok
             if row["category"] == "upper_body" and row["garment"] and "no_person" not in row["flags"]]
    assert len(upper) >= PEOPLE - 1
    listed = _pairs(out / "upper_body" / "train_pairs.txt") + _pairs(out / "upper_body" / "test_pairs_paired.txt")
    assert sorted(p for p, _ in listed) == sorted(f"{row['export_name']}_0.jpg" for row in upper)
