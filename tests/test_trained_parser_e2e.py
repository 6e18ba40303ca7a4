"""The bundled parser, trained on synthetic people, through the full Ray pipeline: masks must match
the ground truth. A wrong normalization, swapped channels, a transposed resize or a misaligned
upsampling all make these fail (random-weight models would not notice)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.config import RunConfig
from pipeline.masks import make_mask
from pipeline.testing.synthetic import make_person

ROOT = Path(__file__).resolve().parents[1]
BUNDLED_PARSER = ROOT / "pipeline" / "assets" / "parser"
WIDTH, HEIGHT = 384, 512
SEEDS = range(900_000, 900_012)  # never used in training (tools/train_parser.py starts at 0)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    import ray

    from pipeline.dataflow import run

    folder = tmp_path_factory.mktemp("trained")
    rows, truth = [], {}
    for seed in SEEDS:
        sample = make_person(seed, WIDTH, HEIGHT)
        name = f"plain_{seed}.jpg"
        Image.fromarray(sample.image).save(folder / name, quality=92)
        rows.append((name, sample.category))
        truth[Path(name).stem] = sample
    # Special photos: EXIF-rotated JPEG, RGBA PNG, grayscale JPEG.
    rotated = make_person(SEEDS[0] + 100, WIDTH, HEIGHT)
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated; displays upright after a 90-degree turn
    Image.fromarray(np.ascontiguousarray(np.rot90(rotated.image, k=-1))).save(folder / "rotated.jpg", quality=92,
                                                                              exif=exif)
    rgba = make_person(SEEDS[0] + 101, WIDTH, HEIGHT)
    Image.fromarray(np.dstack([rgba.image, np.full((HEIGHT, WIDTH), 255, np.uint8)]), "RGBA").save(folder / "rgba.png")
    gray = make_person(SEEDS[0] + 102, WIDTH, HEIGHT)
    Image.fromarray(gray.image).convert("L").save(folder / "gray.jpg", quality=92)
    for name, sample in (("rotated.jpg", rotated), ("rgba.png", rgba), ("gray.jpg", gray)):
        rows.append((name, sample.category))
        truth[Path(name).stem] = sample
    with open(folder / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "category"])
        writer.writerows(rows)
    out = folder / "out"
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        run(RunConfig(input=str(folder / "manifest.csv"), output=str(out), parser=str(BUNDLED_PARSER),
                      pose="none", style="parse", progress="lines"))
    finally:
        ray.shutdown()
    manifest = {row["id"]: row for row in pq.read_table(out / "manifest").to_pylist()}
    return out, manifest, truth


def test_every_photo_is_ok_at_its_upright_size(trained_run):
    out, manifest, truth = trained_run
    assert set(manifest) == set(truth)
    for row_id, row in manifest.items():
        assert row["status"] == "ok", (row_id, row["error"])
        assert (row["width"], row["height"]) == (WIDTH, HEIGHT)


@pytest.mark.parametrize("category", ["upper_body", "lower_body", "dresses"])
def test_masks_match_the_ground_truth_per_category(trained_run, category):
    out, manifest, truth = trained_run
    scores = []
    for row_id, sample in truth.items():
        if sample.category != category or row_id == "gray":
            continue
        expected = make_mask(sample.labels, None, category, "parse")
        got = np.asarray(Image.open(out / manifest[row_id]["mask_path"]))
        scores.append(iou(got, expected))
    assert scores, f"no {category} sample among the seeds"
    assert np.mean(scores) >= 0.85, (category, np.round(scores, 3))


def test_exif_rotated_and_rgba_photos_are_parsed_upright(trained_run):
    out, manifest, truth = trained_run
    for row_id in ("rotated", "rgba"):
        sample = truth[row_id]
        expected = make_mask(sample.labels, None, sample.category, "parse")
        got = np.asarray(Image.open(out / manifest[row_id]["mask_path"]))
        assert iou(got, expected) >= 0.8, row_id


def test_parse_maps_hold_the_right_labels(trained_run):
    out, manifest, truth = trained_run
    agree = []
    for row_id, sample in truth.items():
        if row_id == "gray":
            continue
        parse = np.asarray(Image.open(out / manifest[row_id]["parse_path"]))
        agree.append(np.mean(parse == sample.labels))
    assert np.mean(agree) >= 0.9
