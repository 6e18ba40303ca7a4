"""How often the ``no_person`` flag fires on generated people and on generated non-person scenes.

    python bench/no_person_eval.py --split heldout --n 100 --people 300 --json no_person.json

Draws N scenes of each class of pipeline.testing.scenes (product, room, landscape, animal,
document) and P people of pipeline.testing.synthetic, stretches each photo to the working size
(576x768, cv2 INTER_LINEAR, as the pipeline feeds the parser), parses it with the bundled parser
(pipeline/assets/parser, or --parser) and applies pipeline.masks.is_no_person to the label map.
Prints the flagged share per scene class and for the people, and the person_evidence
measurements (median and 5th/95th percentiles) per group.

``--headless N`` adds N of the same people cut just under the chin: no head, so the rule
flags them (a known limit, reported and not a target).

Seeds: scenes and people use the same seed numbers (the generators differ):

* ``--split tuning``  - seeds 2,000,000 on: the only seeds the thresholds in pipeline/masks.py
  (NO_PERSON_*) were chosen on (400 scenes per class, 1,400 people: ``--n 400 --people 1400``).
  ``--dump FILE.npz`` keeps the label maps for that analysis.
* ``--split heldout`` - seeds 3,500,000 on: never used to choose anything; the numbers reported
  in bench/RESULTS.md and docs/masks.md come from here. (Seeds 3,000,000 on held out a first
  set of thresholds; after that run they were widened on 1,000 more tuning people, so that range
  is spent and no longer reported as untouched.)

Both ranges are disjoint from the parser's training (person seeds 0..7999), its validation
(900,000 on) and bench/eval_parser.py (1,000,000 on). Scenes cycle through three photo shapes
(768x1024 portrait, 1024x1024 square, 1024x768 landscape: product shots are often square and
landscapes wide, and the pipeline stretches them all to 576x768); people are 768x1024.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPLITS = {"tuning": 2_000_000, "heldout": 3_500_000}
WORKING_SIZE = (576, 768)  # width, height
SCENE_SHAPES = ((768, 1024), (1024, 1024), (1024, 768))
TARGETS = {"scenes_flagged_min": 0.95, "people_flagged_max": 0.02}


def photos(group: str, first_seed: int, n: int):
    """(seed, RGB uint8 photo) of one group: 'person', 'headless' or a scene kind."""
    from pipeline.testing.scenes import make_scene
    from pipeline.testing.synthetic import make_person

    for i in range(n):
        seed = first_seed + i
        if group == "person":
            yield seed, make_person(seed, 768, 1024).image
        elif group == "headless":  # the same people cut just under the chin (not a target: a known limit)
            sample = make_person(seed, 768, 1024)
            neck = sample.keypoints[1, 1]
            top = int(neck - 0.02 * 1024) if np.isfinite(neck) else 0
            yield seed, np.ascontiguousarray(sample.image[max(0, top):])
        else:
            width, height = SCENE_SHAPES[i % len(SCENE_SHAPES)]
            yield seed, make_scene(seed, width, height, kind=group).image


def _stats(values) -> dict:
    """5th percentile, median and 95th percentile of the finite values (head_offset is inf without a torso)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"p5": None, "median": None, "p95": None}
    return {"p5": round(float(np.percentile(values, 5)), 5), "median": round(float(np.median(values)), 5),
            "p95": round(float(np.percentile(values, 95)), 5)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parser", default=str(Path(__file__).resolve().parents[1] / "pipeline" / "assets" / "parser"))
    parser.add_argument("--split", choices=sorted(SPLITS), default="heldout")
    parser.add_argument("--n", type=int, default=80, help="scenes per class")
    parser.add_argument("--people", type=int, default=None, help="people (default: 2 x --n)")
    parser.add_argument("--headless", type=int, default=0,
                        help="also this many people cropped under the chin (reported, not a target)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the numbers here too")
    parser.add_argument("--dump", type=Path,
                        help="save the label maps at the rule's grid (384 rows; npz, one array per group)")
    args = parser.parse_args(argv)

    import cv2
    import torch

    from pipeline import masks
    from pipeline.parser import SegformerParser
    from pipeline.testing.scenes import SCENE_KINDS

    torch.set_num_threads(args.threads)
    model = SegformerParser(args.parser)
    first_seed = SPLITS[args.split]
    people = 2 * args.n if args.people is None else args.people
    groups = [("person", people)] + [(kind, args.n) for kind in SCENE_KINDS] + [("headless", args.headless)]
    started = time.time()
    seconds_parse = 0.0
    result = {"parser": args.parser, "split": args.split, "groups": {}}
    dumped = {}
    for group, n in groups:
        flagged, evidence, maps, flagged_seeds = [], [], [], []
        stream = photos(group, first_seed, n)
        while chunk := list(itertools.islice(stream, args.batch)):
            batch = np.stack([cv2.resize(image, WORKING_SIZE, interpolation=cv2.INTER_LINEAR) for _, image in chunk])
            t = time.time()
            labels = model.parse(batch)
            seconds_parse += time.time() - t
            for (seed, _), label_map in zip(chunk, labels):
                flag = masks.is_no_person(label_map)
                flagged.append(flag)
                evidence.append(masks.person_evidence(label_map))
                if flag:
                    flagged_seeds.append(seed)
                if args.dump:  # at the rule's own grid: what person_evidence measures, 1/4 of the bytes
                    grid_width = max(1, round(label_map.shape[1] * masks.NO_PERSON_GRID_HEIGHT / label_map.shape[0]))
                    maps.append(cv2.resize(label_map, (grid_width, masks.NO_PERSON_GRID_HEIGHT),
                                           interpolation=cv2.INTER_NEAREST))
        if not n:
            continue
        share = float(np.mean(flagged))
        entry = {"n": n, "seeds": f"{first_seed}..{first_seed + n - 1}", "flagged": int(np.sum(flagged)),
                 "flagged_share": round(share, 4)}
        if group in ("person", "headless"):
            entry["flagged_seeds"] = flagged_seeds
        else:
            entry["missed_seeds"] = [seed for seed, flag in zip(range(first_seed, first_seed + n), flagged) if not flag]
        entry["evidence"] = {key: _stats([e[key] for e in evidence]) for key in evidence[0]}
        result["groups"][group] = entry
        print(f"{group:10s} n={n:4d} flagged {entry['flagged']:4d} = {100 * share:5.1f}%   "
              f"({time.time() - started:.0f} s)", flush=True)
        if args.dump:
            dumped[group] = np.stack(maps)
    scenes = [g for g in result["groups"] if g in SCENE_KINDS]
    if scenes:
        total = sum(result["groups"][g]["n"] for g in scenes)
        hits = sum(result["groups"][g]["flagged"] for g in scenes)
        result["scenes_flagged_share"] = round(hits / total, 4)
        result["scenes_flagged_min_class_share"] = min(result["groups"][g]["flagged_share"] for g in scenes)
    if "person" in result["groups"]:
        result["people_flagged_share"] = result["groups"]["person"]["flagged_share"]
    result["thresholds"] = {name: getattr(masks, name) for name in dir(masks) if name.startswith("NO_PERSON_")}
    result["ms_parse_per_image"] = round(1000 * seconds_parse / max(1, sum(n for _, n in groups)), 1)
    result["seconds"] = round(time.time() - started, 1)
    result["command"] = "python bench/no_person_eval.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if scenes and "person" in result["groups"]:
        result["targets_met"] = bool(result["scenes_flagged_min_class_share"] >= TARGETS["scenes_flagged_min"]
                                     and result["people_flagged_share"] <= TARGETS["people_flagged_max"])
    print(f"scenes flagged {100 * result.get('scenes_flagged_share', float('nan')):.1f}% "
          f"(lowest class {100 * result.get('scenes_flagged_min_class_share', float('nan')):.1f}%), "
          f"people flagged {100 * result.get('people_flagged_share', float('nan')):.1f}%; "
          f"targets (each class >= 95%, people <= 2%) met: {result.get('targets_met')}")
    if "headless" in result["groups"]:
        print(f"people cut under the chin (no head: a known limit, not a target) flagged "
              f"{100 * result['groups']['headless']['flagged_share']:.1f}%")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.dump:
        np.savez_compressed(args.dump, **dumped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
