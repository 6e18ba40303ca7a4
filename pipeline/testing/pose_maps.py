"""Synthetic OpenPose network outputs from known skeletons, for tests and benchmarks only.

A run never imports this module; it lets the pose post-processing be checked against known
answers without trained weights.
"""
from __future__ import annotations

import numpy as np

from pipeline.pose_post import LIMB_SEQ, MAP_IDX, NUM_PARTS, geometry

# A standing person, COCO-18, x relative to the body's centre line and y from the head top, in
# units of the person's height (the person's right side is on the image's left).
TEMPLATE = np.array([
    (0.0, 0.08), (0.0, 0.18), (-0.11, 0.19), (-0.14, 0.34), (-0.15, 0.48), (0.11, 0.19),
    (0.14, 0.34), (0.15, 0.48), (-0.07, 0.50), (-0.08, 0.71), (-0.08, 0.92), (0.07, 0.50),
    (0.08, 0.71), (0.08, 0.92), (-0.025, 0.065), (0.025, 0.065), (-0.05, 0.075), (0.05, 0.075),
])


def skeleton(cx: float, top: float, height: float, rng=None, jitter: float = 0.01,
             missing=()) -> np.ndarray:
    """(18, 3) keypoints of a standing person (x, y, 1; NaN for parts in ``missing``)."""
    xy = TEMPLATE * height + np.array([cx, top])
    if rng is not None and jitter:
        xy = xy + rng.normal(0, jitter * height, xy.shape)
    kp = np.concatenate([xy, np.ones((NUM_PARTS, 1))], 1).astype(np.float32)
    kp[list(missing)] = np.nan
    return kp


def synthesize_maps(people, height: int, width: int, peak: float = 0.9, sigma_cells: float = 1.0,
                    paf_sigma_cells: float = 0.7):
    """Stride-8 network outputs (pafs (38, h8, w8), heatmaps (19, h8, w8)) float32 for people.

    people: (18, 3) arrays in detect pixels of a height x width image (NaN = part absent). Each
    present part is a Gaussian peak; each limb with both ends present gets a unit vector field
    (in detect pixels' direction) around its segment, like OpenPose's training targets.
    """
    g = geometry(height, width)
    h8, w8 = g.map_height, g.map_width
    sx, sy = g.net_width / (8.0 * width), g.net_height / (8.0 * height)
    gy, gx = np.mgrid[0:h8, 0:w8].astype(np.float64)
    heat = np.zeros((19, h8, w8))
    paf = np.zeros((38, h8, w8))
    count = np.zeros((38, h8, w8))
    for kp in people:
        kp = np.asarray(kp, np.float64)
        u = (kp[:, 0] + 0.5) * sx - 0.5                    # detect pixel -> map cell
        v = (kp[:, 1] + 0.5) * sy - 0.5
        for c in range(NUM_PARTS):
            if np.isfinite(u[c]):
                g2 = np.exp(-((gx - u[c]) ** 2 + (gy - v[c]) ** 2) / (2 * sigma_cells ** 2))
                heat[c] = np.maximum(heat[c], peak * g2)
        for (a, b), (pa, pb) in zip(LIMB_SEQ, MAP_IDX):
            a, b = a - 1, b - 1
            if not (np.isfinite(u[a]) and np.isfinite(u[b])):
                continue
            d = kp[b, :2] - kp[a, :2]
            unit = d / max(np.hypot(*d), 1e-3)
            seg = np.array([u[b] - u[a], v[b] - v[a]])
            length2 = max(seg @ seg, 1e-9)
            t = ((gx - u[a]) * seg[0] + (gy - v[a]) * seg[1]) / length2
            t = np.clip(t, 0, 1)
            dist2 = (gx - (u[a] + t * seg[0])) ** 2 + (gy - (v[a] + t * seg[1])) ** 2
            w = np.exp(-dist2 / (2 * paf_sigma_cells ** 2))
            w[w < 0.05] = 0
            paf[pa - 19] += w * unit[0]
            paf[pb - 19] += w * unit[1]
            count[pa - 19] += w > 0
            count[pb - 19] += w > 0
    paf /= np.maximum(count, 1)
    heat[18] = np.clip(1 - heat[:18].max(0), 0, 1)
    return paf.astype(np.float32), heat.astype(np.float32)


# Parts a synthetic person may lack: leaves of the limb tree, or a limb's last two joints, so
# that every present part stays connected to the neck (OpenPose cannot attach the others).
MISSABLE = ((4,), (7,), (10,), (13,), (16,), (17,), (3, 4), (6, 7), (9, 10), (12, 13))


def synthetic_scene(n_people: int, height: int, width: int, rng, n_missing: int = 2) -> list:
    """n_people standing side by side in a height x width image, each lacking up to n_missing
    groups of parts from MISSABLE; for tests and benchmarks."""
    people = []
    margin = 0.08 * width                                # peaks cut by the border move inwards
    slot = (width - 2 * margin) / n_people
    for k in range(n_people):
        h = height * rng.uniform(0.55, 0.85) * (1.0 if n_people == 1 else 0.85)
        h = min(h, slot / 0.36)                          # keep arms inside the slot
        cx = margin + slot * (k + 0.5) + rng.uniform(-0.05, 0.05) * slot
        top = rng.uniform(0.02, max(0.03, 0.97 - 0.95 * h / height)) * height
        groups = rng.choice(len(MISSABLE), size=rng.integers(0, n_missing + 1), replace=False)
        missing = sorted({p for g in groups for p in MISSABLE[g]})
        people.append(skeleton(cx, top, h, rng, missing=missing))
    return people
