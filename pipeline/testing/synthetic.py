"""Synthetic person photos with known answers: a front-facing figure on a varied background.

Every sample carries its ground truth: the canonical ATR-18 label map and COCO-18 keypoints.
The tests, the benchmarks and the small bundled parser (tools/train_parser.py) use it, so a
wrong normalization, swapped channels, a transposed resize or a misaligned upsampling shows up
as a drop in IoU instead of passing silently.

The figure faces the camera: the person's left (ATR ``left_arm``, COCO keypoint 5) appears on
the image's right. A seed fixes the scene; the same seed at another resolution draws the same
scene scaled (only the pixel noise differs).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.labels import (
    BAG,
    BELT,
    DRESS,
    FACE,
    HAIR,
    HAT,
    LEFT_ARM,
    LEFT_LEG,
    LEFT_SHOE,
    PANTS,
    RIGHT_ARM,
    RIGHT_LEG,
    RIGHT_SHOE,
    SCARF,
    SKIRT,
    SUNGLASSES,
    UPPER_CLOTHES,
)
from pipeline.schema import COCO18_NAMES

__all__ = ["Sample", "make_person", "write_dataset", "load_truth", "KEYPOINT_NAMES"]

KEYPOINT_NAMES = COCO18_NAMES

# Materials: what a pixel looks like (a label can hold several: a face holds eyes and lips).
_M_BG, _M_SKIN, _M_HAIR, _M_TOP, _M_BOTTOM, _M_DRESS, _M_SHOES, _M_HAT, _M_BAG, _M_BELT, \
    _M_SCARF, _M_GLASSES, _M_DARK, _M_LIPS = range(14)
_N_MATERIALS = 14

_SHIFT = 4  # cv2 fixed-point bits for sub-pixel drawing
_ONE = 1 << _SHIFT


@dataclass
class Sample:
    """One synthetic photo and its ground truth."""

    image: np.ndarray      # (H, W, 3) uint8 RGB
    labels: np.ndarray     # (H, W) uint8 canonical ATR-18
    keypoints: np.ndarray  # (18, 3) float32 x, y, score (1 visible); NaN rows when off-image
    category: str          # upper_body, lower_body or dresses
    seed: int
    # (H, W) bool: the visible neck skin (and the skin a round or V neckline shows) between the head
    # and the top garment, what a CIHP/LIP parser calls torso skin (VITON-HD's parse id 10). It is
    # labelled face in `labels`, as in ATR; always a subset of labels == FACE. None only for a
    # Sample built by hand.
    neck: np.ndarray | None = None


# ---------------------------------------------------------------------------------------------
# Drawing: every primitive goes to the label map and the material map at once.


class _Canvas:
    def __init__(self, height: int, width: int):
        self.labels = np.zeros((height, width), dtype=np.uint8)
        self.material = np.zeros((height, width), dtype=np.uint8)
        # Which pixels a neck primitive labelled last: None until the neck is drawn (start_neck);
        # from then on each labelled primitive sets its pixels (1 while drawing the neck, else 0).
        # It only records: labels and material never depend on it.
        self.neck: np.ndarray | None = None
        self._neck_value = 0

    def start_neck(self):
        self.neck = np.zeros_like(self.labels)
        self._neck_value = 1

    def end_neck(self):
        self._neck_value = 0

    @staticmethod
    def _fixed(points) -> np.ndarray:
        return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)

    def poly(self, points, label: int | None, material: int):
        pts = self._fixed(points)
        if label is not None:
            cv2.fillPoly(self.labels, [pts], int(label), cv2.LINE_8, _SHIFT)
            if self.neck is not None:
                cv2.fillPoly(self.neck, [pts], self._neck_value, cv2.LINE_8, _SHIFT)
        cv2.fillPoly(self.material, [pts], int(material), cv2.LINE_8, _SHIFT)

    def ellipse(self, centre, axes, angle: float, label: int | None, material: int):
        c = tuple(int(round(v * _ONE)) for v in centre)
        a = tuple(max(1, int(round(v * _ONE))) for v in axes)
        if label is not None:
            cv2.ellipse(self.labels, c, a, float(angle), 0, 360, int(label), -1, cv2.LINE_8, _SHIFT)
            if self.neck is not None:
                cv2.ellipse(self.neck, c, a, float(angle), 0, 360, self._neck_value, -1, cv2.LINE_8, _SHIFT)
        cv2.ellipse(self.material, c, a, float(angle), 0, 360, int(material), -1, cv2.LINE_8, _SHIFT)

    def limb(self, p, q, wp: float, wq: float, label: int | None, material: int, caps=(True, True)):
        """A tapered segment from p (full width wp) to q (full width wq) with round caps."""
        p, q = np.asarray(p, float), np.asarray(q, float)
        d = q - p
        n = np.hypot(*d)
        if n < 1e-6:
            self.ellipse(p, (wp / 2, wp / 2), 0, label, material)
            return
        perp = np.array([-d[1], d[0]]) / n
        self.poly([p + perp * wp / 2, q + perp * wq / 2, q - perp * wq / 2, p - perp * wp / 2], label, material)
        if caps[0]:
            self.ellipse(p, (wp / 2, wp / 2), 0, label, material)
        if caps[1]:
            self.ellipse(q, (wq / 2, wq / 2), 0, label, material)


# ---------------------------------------------------------------------------------------------
# Colours and textures.


def _skin_tone(rng) -> np.ndarray:
    # Along light to dark skin (R > G > B throughout), with a little jitter.
    light = np.array([246, 214, 190], float)
    mid = np.array([198, 143, 105], float)
    dark = np.array([92, 58, 40], float)
    t = rng.uniform(0, 1)
    base = light + (mid - light) * (t / 0.5) if t < 0.5 else mid + (dark - mid) * ((t - 0.5) / 0.5)
    return np.clip(base + rng.normal(0, 6, 3), 0, 255)


_HAIR_COLOURS = np.array([
    (25, 20, 18), (45, 32, 24), (72, 50, 34), (110, 75, 45), (165, 120, 70), (215, 180, 120),
    (140, 60, 30), (160, 155, 150), (60, 45, 40),
], float)


def _random_colour(rng, avoid=()) -> np.ndarray:
    """A garment colour (HSV sampled), not too close to the colours in `avoid`."""
    for _ in range(20):
        kind = rng.uniform()
        if kind < 0.25:  # neutrals: black, white, greys, beige
            v = rng.choice([rng.uniform(15, 60), rng.uniform(200, 250), rng.uniform(90, 180)])
            tint = rng.normal(0, 8, 3)
            colour = np.clip(v + tint, 0, 255)
        else:
            h = rng.uniform(0, 180)
            s = rng.uniform(60, 255)
            v = rng.uniform(50, 245)
            colour = cv2.cvtColor(np.uint8([[[h, s, v]]]), cv2.COLOR_HSV2RGB)[0, 0].astype(float)
        if all(np.abs(colour - np.asarray(a)).sum() > 90 for a in avoid):
            return colour
    return colour


@dataclass
class _Material:
    colour: np.ndarray
    pattern: str = "solid"  # solid, stripes, checks, dots, grain, fade
    colour2: np.ndarray | None = None
    period: float = 0.02    # fraction of image height
    angle: float = 0.0
    strength: float = 0.0


def _garment_material(rng, avoid=()) -> _Material:
    colour = _random_colour(rng, avoid)
    pattern = rng.choice(["solid", "solid", "solid", "stripes", "checks", "dots", "grain", "fade"])
    colour2 = _random_colour(rng, (colour,)) if pattern in ("stripes", "checks", "dots") else None
    if colour2 is not None and rng.uniform() < 0.5:  # a subtler pattern: a shade of the base colour
        colour2 = np.clip(colour * rng.uniform(0.55, 0.8), 0, 255)
    return _Material(colour, str(pattern), colour2, period=rng.uniform(0.006, 0.03),
                     angle=rng.choice([0.0, 90.0, 45.0, -45.0, rng.uniform(0, 180)]),
                     strength=rng.uniform(0.05, 0.2))


def _pattern(m: _Material, box, height: int, rng) -> np.ndarray:
    """The colours of material `m`'s pattern over the crop `box` (y0, y1, x0, x1), float32 HxWx3."""
    y0, y1, x0, x1 = box
    colour = m.colour.astype(np.float32)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    period = max(2.0, m.period * height)
    if m.pattern in ("stripes", "checks", "dots"):
        a = np.deg2rad(m.angle)
        u = (xx * np.cos(a) + yy * np.sin(a)) / period
        if m.pattern == "stripes":
            second = (u % 1.0) < 0.45
        elif m.pattern == "checks":
            v = (-xx * np.sin(a) + yy * np.cos(a)) / period
            second = ((np.floor(u) + np.floor(v)) % 2) == 1
        else:
            v = (-xx * np.sin(a) + yy * np.cos(a)) / period
            second = np.hypot(u % 1.0 - 0.5, v % 1.0 - 0.5) < 0.25
        return np.where(second[..., None], m.colour2.astype(np.float32), colour)
    if m.pattern == "grain":  # denim/knit-like fine noise
        noise = rng.standard_normal((y1 - y0, x1 - x0), dtype=np.float32)
        noise = cv2.GaussianBlur(noise, (0, 0), max(0.5, height / 1024))
        return colour * (1 + m.strength * 2.5 * noise[..., None])
    t = (yy - y0) / max(1, y1 - y0)  # fade: a vertical gradient
    return colour * (1 - m.strength * 1.5 * (t[..., None] - 0.5))


def _background(rng, height: int, width: int, noise_rng) -> np.ndarray:
    kind = rng.choice(["studio", "room", "blobs", "panels", "clutter"], p=[0.25, 0.2, 0.2, 0.15, 0.2])
    c1 = _random_colour(rng)
    c2 = _random_colour(rng)
    if kind == "studio":
        t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        bg = np.broadcast_to(c1 * (1 - 0.3 * t) + c2 * 0.3 * t, (height, width, 3)).astype(np.float32)
    elif kind == "room":
        horizon = int(height * rng.uniform(0.55, 0.92))
        bg = np.empty((height, width, 3), np.float32)
        bg[:horizon] = c1
        t = np.linspace(0.8, 1.1, height - horizon, dtype=np.float32)[:, None, None]
        bg[horizon:] = c2 * t
    elif kind == "blobs":
        gh, gw = rng.integers(3, 9), rng.integers(3, 9)
        grid = rng.uniform(20, 235, (gh, gw, 3)).astype(np.float32)
        bg = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    elif kind == "panels":
        bg = np.empty((height, width, 3), np.float32)
        edges = np.sort(rng.uniform(0, 1, rng.integers(2, 7)))
        xs = [0, *(int(e * width) for e in edges), width]
        for a, b in zip(xs[:-1], xs[1:]):
            bg[:, a:b] = _random_colour(rng)
    else:
        bg = np.empty((height, width, 3), np.float32)
        bg[:] = c1
        s = height / 1024
        for _ in range(rng.integers(4, 14)):
            colour = tuple(float(v) for v in _random_colour(rng))
            x, y = rng.uniform(0, width), rng.uniform(0, height)
            if rng.uniform() < 0.5:
                w, h = rng.uniform(40, 400) * s, rng.uniform(40, 400) * s
                cv2.rectangle(bg, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1)
            else:
                cv2.circle(bg, (int(x), int(y)), int(rng.uniform(20, 200) * s), colour, -1)
        bg = cv2.GaussianBlur(bg, (0, 0), rng.uniform(0.5, 6) * s)
    if rng.uniform() < 0.3:  # texture on the background too
        noise = cv2.resize(noise_rng.standard_normal((height // 4 + 1, width // 4 + 1), dtype=np.float32),
                           (width, height), interpolation=cv2.INTER_LINEAR)
        bg = bg * (1 + 0.08 * noise[..., None])
    return np.ascontiguousarray(bg, dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# The figure.


def _rot(v, degrees):
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _pose(rng, width: int, height: int):
    """Figure geometry in pixels: a dict of named points and sizes."""
    crop = rng.uniform() < 0.15
    fig_h = height * (rng.uniform(0.95, 1.35) if crop else rng.uniform(0.6, 0.95))
    u = fig_h / 7.5  # head units
    top = (height * rng.uniform(0.01, 0.06) if crop
           else rng.uniform(0.01 * height, max(0.02 * height, height - fig_h - 0.01 * height)))
    cx = width / 2 + rng.uniform(-0.14, 0.14) * width
    lean = rng.normal(0, 2.5)  # degrees, the whole figure about the hip centre
    g = {"u": u, "top": top, "cx": cx}
    female = rng.uniform() < 0.5
    sw = u * (rng.uniform(0.78, 0.9) if female else rng.uniform(0.88, 1.02))
    hw = u * (rng.uniform(0.5, 0.6) if female else rng.uniform(0.44, 0.52))
    ys = top + 1.5 * u
    yh = top + 3.9 * u
    P = {}
    P["r_sho"] = np.array([cx - sw, ys + rng.normal(0, 0.03) * u])
    P["l_sho"] = np.array([cx + sw, ys + rng.normal(0, 0.03) * u])
    P["neck"] = (P["r_sho"] + P["l_sho"]) / 2
    P["r_hip"] = np.array([cx - hw, yh])
    P["l_hip"] = np.array([cx + hw, yh])
    head_shift = rng.normal(0, 0.05) * u
    P["head"] = np.array([cx + head_shift, top + 0.55 * u])
    g["head_axes"] = (u * rng.uniform(0.36, 0.42), u * rng.uniform(0.5, 0.56))
    g["head_tilt"] = rng.normal(0, 4)
    # Arms: side -1 is the person's right (image left).
    for side, name in ((-1, "r"), (1, "l")):
        mode = rng.uniform()
        if mode < 0.6:      # hanging, a little away from the body
            a1, bend = rng.uniform(4, 28), rng.uniform(-25, 20)
        elif mode < 0.8:    # hand on hip
            a1, bend = rng.uniform(30, 50), -rng.uniform(80, 115)
        else:               # out to the side, sometimes raised
            a1, bend = rng.uniform(30, 95), rng.uniform(-40, 30)
        la, lf = 1.45 * u, 1.2 * u
        sho = P[f"{name}_sho"]
        d1 = np.array([side * np.sin(np.deg2rad(a1)), np.cos(np.deg2rad(a1))])
        elbow = sho + la * d1
        a2 = a1 + bend
        d2 = np.array([side * np.sin(np.deg2rad(a2)), np.cos(np.deg2rad(a2))])
        wrist = elbow + lf * d2
        P[f"{name}_elb"], P[f"{name}_wri"] = elbow, wrist
        g[f"{name}_hand_dir"] = _rot(d2, side * rng.uniform(-15, 15))
    # Legs.
    stance = rng.uniform(0, 11)
    for side, name in ((-1, "r"), (1, "l")):
        b1 = stance * rng.uniform(0.6, 1.2) + rng.normal(0, 1.5)
        b2 = b1 + rng.normal(-2, 3)
        hip = P[f"{name}_hip"]
        knee = hip + 1.75 * u * np.array([side * np.sin(np.deg2rad(b1)), np.cos(np.deg2rad(b1))])
        ankle = knee + 1.65 * u * np.array([side * np.sin(np.deg2rad(b2)), np.cos(np.deg2rad(b2))])
        P[f"{name}_knee"], P[f"{name}_ank"] = knee, ankle
    # Face points.
    hx, hy = P["head"]
    eye_dx = g["head_axes"][0] * rng.uniform(0.38, 0.46)
    P["r_eye"] = np.array([hx - eye_dx, hy - 0.02 * u])
    P["l_eye"] = np.array([hx + eye_dx, hy - 0.02 * u])
    P["nose"] = np.array([hx, hy + 0.14 * u])
    P["mouth"] = np.array([hx, hy + 0.3 * u])
    P["r_ear"] = np.array([hx - g["head_axes"][0] * 0.98, hy + 0.04 * u])
    P["l_ear"] = np.array([hx + g["head_axes"][0] * 0.98, hy + 0.04 * u])
    # Head tilt about the head centre, then the lean about the hip centre.
    for k in ("r_eye", "l_eye", "nose", "mouth", "r_ear", "l_ear"):
        P[k] = P["head"] + _rot(P[k] - P["head"], g["head_tilt"])
    pivot = np.array([cx, yh])
    for k in list(P):
        P[k] = pivot + _rot(P[k] - pivot, lean)
    g["lean"] = lean
    g["waist_w"] = u * (rng.uniform(0.5, 0.58) if female else rng.uniform(0.58, 0.66))
    g["sw"], g["hw"], g["female"] = sw, hw, female
    return P, g


def _keypoints(P, width: int, height: int) -> np.ndarray:
    order = ("nose", "neck", "r_sho", "r_elb", "r_wri", "l_sho", "l_elb", "l_wri", "r_hip", "r_knee",
             "r_ank", "l_hip", "l_knee", "l_ank", "r_eye", "l_eye", "r_ear", "l_ear")
    out = np.full((18, 3), np.nan, dtype=np.float32)
    for i, k in enumerate(order):
        x, y = P[k]
        if 0 <= x < width and 0 <= y < height:
            out[i] = (x, y, 1.0)
    return out


def make_person(seed: int, width: int = 768, height: int = 1024, *, category: str | None = None) -> Sample:
    """Draw one person photo with its ATR-18 label map and COCO-18 keypoints, fixed by `seed`.

    `category` forces the outfit: ``dresses`` draws a dress, ``upper_body``/``lower_body`` draw
    upper clothes with pants or a skirt. Without it the outfit (and, for two-piece outfits, which
    of the two categories the sample is) follows from the seed.
    """
    if category not in (None, "upper_body", "lower_body", "dresses"):
        raise ValueError(f"unknown category {category!r} (expected upper_body, lower_body or dresses)")
    rng = np.random.default_rng([int(seed), 0x7e57])
    # Scene-level choices are drawn in a fixed order so that a seed means the same scene whatever
    # the resolution.
    dress = rng.uniform() < 0.33
    two_piece_category = "upper_body" if rng.uniform() < 0.5 else "lower_body"
    if category is not None:
        dress = category == "dresses"
        if not dress:
            two_piece_category = category
    cat = "dresses" if dress else two_piece_category
    skirt = (not dress) and rng.uniform() < 0.35

    P, g = _pose(rng, width, height)
    u, cx = g["u"], g["cx"]
    canvas = _Canvas(height, width)
    lean = g["lean"]
    pivot = np.array([cx, g["top"] + 3.9 * u])

    def L(x, y):  # a point in upright figure coordinates -> leaned pixels
        return pivot + _rot(np.array([x, y], float) - pivot, lean)

    top_y = g["top"]
    skin = _skin_tone(rng)
    hair_colour = np.clip(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] + rng.normal(0, 6, 3), 0, 255)
    noise_rng = np.random.default_rng([int(seed), 0x4015e])  # draws whose count depends on the size
    bg = _background(rng, height, width, noise_rng)
    bg_mean = bg[::16, ::16].reshape(-1, 3).mean(0)
    avoid = (skin, bg_mean)
    materials = {
        _M_SKIN: _Material(skin, "fade", strength=rng.uniform(0.03, 0.1)),
        _M_HAIR: _Material(hair_colour, "grain", strength=rng.uniform(0.04, 0.1)),
        _M_TOP: _garment_material(rng, avoid),
        _M_BOTTOM: _garment_material(rng, avoid),
        _M_DRESS: _garment_material(rng, avoid),
        _M_SHOES: _Material(_random_colour(rng, (skin,)) * rng.uniform(0.4, 1.0)),
        _M_HAT: _garment_material(rng, (hair_colour, skin)),
        _M_BAG: _garment_material(rng, avoid),
        _M_BELT: _Material(np.array(rng.choice([(30, 22, 18), (90, 55, 30), (20, 20, 20), (150, 100, 60)]), float)),
        _M_SCARF: _garment_material(rng, avoid),
        _M_GLASSES: _Material(np.array([20, 20, 24], float) + rng.uniform(0, 25)),
        _M_DARK: _Material(np.clip(hair_colour * 0.6, 0, 80)),
        _M_LIPS: _Material(np.clip(skin * np.array([0.85, 0.55, 0.55]) + np.array([30, 0, 5]), 0, 255)),
    }
    # Keep the two pieces of an outfit apart in colour.
    if np.abs(materials[_M_TOP].colour - materials[_M_BOTTOM].colour).sum() < 90:
        materials[_M_BOTTOM] = _garment_material(rng, (*avoid, materials[_M_TOP].colour))

    long_hair = rng.uniform() < 0.45
    sleeve = rng.choice(["none", "short", "elbow", "long"], p=[0.2, 0.35, 0.1, 0.35])
    if dress:
        sleeve = rng.choice(["none", "short", "long"], p=[0.5, 0.3, 0.2])
    pants_len = rng.choice(["long", "long", "long", "cropped", "shorts"])
    tucked = rng.uniform() < 0.3
    hem_y = top_y + u * rng.uniform(3.55, 4.3)  # top's hem
    waist_y = top_y + u * rng.uniform(3.2, 3.55)  # where bottoms start
    has_hat = rng.uniform() < 0.15
    has_glasses = rng.uniform() < 0.1
    has_bag = rng.uniform() < 0.18
    has_belt = (not skirt and not dress and tucked) or rng.uniform() < 0.08
    has_scarf = rng.uniform() < 0.08
    bag_side = rng.choice([-1, 1])
    skirt_len = rng.uniform(4.6, 6.6)
    skirt_flare = rng.uniform(0.0, 0.35)
    dress_len = rng.uniform(4.8, 7.0)
    neckline = rng.choice(["round", "v", "high"])
    ww = g["waist_w"]

    # 1. Long hair behind the body.
    hx, hy = P["head"]
    ax, ay = g["head_axes"]
    if long_hair:
        hair_len = rng.uniform(1.6, 3.0) * u
        canvas.poly([L(hx - ax * 1.15, hy - 0.2 * u), L(hx + ax * 1.15, hy - 0.2 * u),
                     L(hx + ax * 1.3, top_y + hair_len), L(hx - ax * 1.3, top_y + hair_len)], HAIR, _M_HAIR)
    # 2. Legs and shoes.
    for side, name, leg_label, shoe_label in ((-1, "r", RIGHT_LEG, RIGHT_SHOE), (1, "l", LEFT_LEG, LEFT_SHOE)):
        hip, knee, ank = P[f"{name}_hip"], P[f"{name}_knee"], P[f"{name}_ank"]
        canvas.limb(hip, knee, 0.62 * u, 0.4 * u, leg_label, _M_SKIN)
        canvas.limb(knee, ank, 0.4 * u, 0.24 * u, leg_label, _M_SKIN)
        foot = ank + np.array([side * 0.06 * u, 0.2 * u])
        canvas.ellipse(foot, (0.2 * u, 0.14 * u), side * rng.uniform(0, 25), shoe_label, _M_SHOES)
        canvas.limb(ank + np.array([0, 0.02 * u]), foot, 0.27 * u, 0.26 * u, shoe_label, _M_SHOES)
    # 3. Bottoms.
    hip_outer = g["hw"] + 0.3 * u

    def draw_pants():
        canvas.poly([L(cx - ww * 1.05, waist_y), L(cx + ww * 1.05, waist_y), L(cx + hip_outer, top_y + 3.9 * u),
                     L(cx, top_y + 4.35 * u), L(cx - hip_outer, top_y + 3.9 * u)], PANTS, _M_BOTTOM)
        for name in ("r", "l"):
            hip, knee, ank = P[f"{name}_hip"], P[f"{name}_knee"], P[f"{name}_ank"]
            if pants_len == "shorts":
                end = hip + (knee - hip) * 0.6
                canvas.limb(hip, end, 0.72 * u, 0.6 * u, PANTS, _M_BOTTOM, caps=(True, False))
            else:
                canvas.limb(hip, knee, 0.7 * u, 0.5 * u, PANTS, _M_BOTTOM, caps=(True, False))
                end = ank + (knee - ank) * (0.05 if pants_len == "long" else 0.4)
                canvas.limb(knee, end, 0.5 * u, 0.36 * u, PANTS, _M_BOTTOM, caps=(True, False))

    def draw_skirt(label, material, y_from, length):
        hem = top_y + length * u
        flare = hip_outer + skirt_flare * (hem - top_y - 3.9 * u)
        canvas.poly([L(cx - ww * 1.05, y_from), L(cx + ww * 1.05, y_from), L(cx + hip_outer, top_y + 3.9 * u),
                     L(cx + flare, hem), L(cx - flare, hem), L(cx - hip_outer, top_y + 3.9 * u)], label, material)

    def draw_torso(label, material, hem):
        rs, ls = P["r_sho"], P["l_sho"]
        nk = 0.2 * u
        canvas.poly([L(cx - nk, rs[1] - 0.12 * u), L(cx + nk, ls[1] - 0.12 * u),
                     ls + np.array([0.12 * u, 0.0]), ls + np.array([0.1 * u, 0.55 * u]),
                     L(cx + ww, top_y + 3.0 * u), L(cx + hip_outer * 1.02, hem),
                     L(cx - hip_outer * 1.02, hem), L(cx - ww, top_y + 3.0 * u),
                     rs + np.array([-0.1 * u, 0.55 * u]), rs + np.array([-0.12 * u, 0.0])], label, material)
        canvas.limb(rs, ls, 0.3 * u, 0.3 * u, label, material)

    if dress:
        draw_skirt(DRESS, _M_DRESS, top_y + 3.0 * u, dress_len)
        draw_torso(DRESS, _M_DRESS, top_y + 3.95 * u)
    else:
        if tucked:
            draw_torso(UPPER_CLOTHES, _M_TOP, top_y + 3.7 * u)
        if skirt:
            draw_skirt(SKIRT, _M_BOTTOM, waist_y, skirt_len)
        else:
            draw_pants()
        if not tucked:
            draw_torso(UPPER_CLOTHES, _M_TOP, hem_y)
        if has_belt:
            y = waist_y
            canvas.poly([L(cx - ww * 1.07, y), L(cx + ww * 1.07, y), L(cx + ww * 1.07, y + 0.14 * u),
                         L(cx - ww * 1.07, y + 0.14 * u)], BELT, _M_BELT)
    # 4. Neck (labelled face, as in ATR) and the neckline.
    canvas.start_neck()  # the true neck: these FACE pixels, less what later primitives cover
    neck_top = P["head"] + _rot(np.array([0, 0.35 * u]), g["head_tilt"])
    canvas.limb(neck_top, P["neck"] - np.array([0, 0.08 * u]), 0.3 * u, 0.3 * u, FACE, _M_SKIN, caps=(True, False))
    if neckline == "round":
        canvas.ellipse(P["neck"] - np.array([0, 0.1 * u]), (0.2 * u, 0.14 * u), lean, FACE, _M_SKIN)
    elif neckline == "v":
        n = P["neck"]
        canvas.poly([n + [-0.18 * u, -0.14 * u], n + [0.18 * u, -0.14 * u], n + [0, 0.35 * u]], FACE, _M_SKIN)
    canvas.end_neck()
    if has_scarf:
        n = P["neck"]
        canvas.limb(n + [-0.25 * u, -0.15 * u], n + [0.25 * u, -0.15 * u], 0.28 * u, 0.28 * u, SCARF, _M_SCARF)
        end = n + [rng.uniform(-0.2, 0.2) * u, rng.uniform(0.8, 1.6) * u]
        canvas.limb(n + [0.05 * u, -0.1 * u], end, 0.28 * u, 0.24 * u, SCARF, _M_SCARF)
    # 5. Arms (hands included, as in ATR), then sleeves over them.
    garment_label, garment_mat = (DRESS, _M_DRESS) if dress else (UPPER_CLOTHES, _M_TOP)
    for name, arm_label in (("r", RIGHT_ARM), ("l", LEFT_ARM)):
        sho, elb, wri = P[f"{name}_sho"], P[f"{name}_elb"], P[f"{name}_wri"]
        canvas.limb(sho, elb, 0.34 * u, 0.25 * u, arm_label, _M_SKIN)
        canvas.limb(elb, wri, 0.25 * u, 0.19 * u, arm_label, _M_SKIN)
        d = g[f"{name}_hand_dir"]
        canvas.ellipse(wri + d * 0.28 * u, (0.3 * u, 0.13 * u), np.degrees(np.arctan2(d[1], d[0])), arm_label, _M_SKIN)
        if sleeve == "short":
            end = sho + (elb - sho) * rng.uniform(0.35, 0.6)
            canvas.limb(sho, end, 0.42 * u, 0.36 * u, garment_label, garment_mat, caps=(True, False))
        elif sleeve == "elbow":
            canvas.limb(sho, elb, 0.42 * u, 0.33 * u, garment_label, garment_mat, caps=(True, True))
        elif sleeve == "long":
            canvas.limb(sho, elb, 0.42 * u, 0.33 * u, garment_label, garment_mat)
            canvas.limb(elb, elb + (wri - elb) * 0.93, 0.33 * u, 0.27 * u, garment_label, garment_mat,
                        caps=(False, False))
        else:  # a strap on the shoulder
            canvas.ellipse(sho + np.array([0, -0.02 * u]), (0.16 * u, 0.1 * u), 0, garment_label, garment_mat)
    # 6. Head: face, ears, features, hair on top.
    tilt = g["head_tilt"]
    canvas.ellipse(P["head"], (ax, ay), tilt, FACE, _M_SKIN)
    for ear in (P["r_ear"], P["l_ear"]):
        canvas.ellipse(ear, (0.07 * u, 0.13 * u), tilt, FACE, _M_SKIN)
    hair_mask_top = P["head"] + _rot(np.array([0, -0.12 * u]), tilt)
    hairline = rng.uniform(0.1, 0.32)
    canvas.ellipse(hair_mask_top, (ax * 1.08, ay * (0.85 + hairline * 0.3)), tilt, HAIR, _M_HAIR)
    # The face shows again below the hairline (the hair is a cap).
    face_low = P["head"] + _rot(np.array([0, ay * (0.15 + hairline)]), tilt)
    canvas.ellipse(face_low, (ax * 0.92, ay * (0.85 - hairline)), tilt, FACE, _M_SKIN)
    for eye in (P["r_eye"], P["l_eye"]):
        canvas.ellipse(eye, (0.07 * u, 0.035 * u), tilt, None, _M_DARK)
        canvas.limb(eye + _rot(np.array([-0.08 * u, -0.1 * u]), tilt),
                    eye + _rot(np.array([0.08 * u, -0.11 * u]), tilt),
                    0.03 * u, 0.03 * u, None, _M_DARK)
    canvas.ellipse(P["mouth"], (0.11 * u, 0.035 * u), tilt, None, _M_LIPS)
    if has_glasses:
        for eye in (P["r_eye"], P["l_eye"]):
            canvas.ellipse(eye, (0.12 * u, 0.08 * u), tilt, SUNGLASSES, _M_GLASSES)
        canvas.limb(P["r_eye"], P["l_eye"], 0.03 * u, 0.03 * u, SUNGLASSES, _M_GLASSES, caps=(False, False))
    if has_hat:
        crown = P["head"] + _rot(np.array([0, -0.75 * ay]), tilt)
        canvas.ellipse(crown, (ax * 1.1, ay * 0.55), tilt, HAT, _M_HAT)
        brim_c = P["head"] + _rot(np.array([0, -0.45 * ay]), tilt)
        canvas.ellipse(brim_c, (ax * rng.uniform(1.3, 1.9), 0.09 * u), tilt, HAT, _M_HAT)
    # 7. Bag at one side, with a strap from the opposite shoulder.
    if has_bag:
        name = "l" if bag_side > 0 else "r"
        other = "r" if bag_side > 0 else "l"
        centre = P[f"{name}_hip"] + np.array([bag_side * rng.uniform(0.6, 0.9) * u, rng.uniform(-0.2, 0.4) * u])
        bw, bh = rng.uniform(0.35, 0.6) * u, rng.uniform(0.3, 0.6) * u
        canvas.poly([centre + [-bw, -bh], centre + [bw, -bh], centre + [bw, bh], centre + [-bw, bh]], BAG, _M_BAG)
        canvas.limb(P[f"{other}_sho"] + [bag_side * 0.2 * u, 0], centre + [0, -bh], 0.07 * u, 0.07 * u, BAG, _M_BAG)

    image = _render(canvas, materials, bg, rng, noise_rng, height)
    keypoints = _keypoints(P, width, height)
    return Sample(image=image, labels=canvas.labels, keypoints=keypoints, category=cat, seed=int(seed),
                  neck=canvas.neck.view(bool))


def _render(canvas: _Canvas, materials: dict, bg: np.ndarray, rng, noise_rng, height: int) -> np.ndarray:
    material = canvas.material
    h, w = material.shape
    image = bg  # float32, painted in place
    ys, xs = np.nonzero(material[::4, ::4])
    if ys.size:
        y0, y1 = max(0, ys.min() * 4 - 4), min(h, ys.max() * 4 + 8)
        x0, x1 = max(0, xs.min() * 4 - 4), min(w, xs.max() * 4 + 8)
        crop = material[y0:y1, x0:x1]
        view = image[y0:y1, x0:x1]
        lut = np.zeros((256, 3), np.float32)
        for m, mat in materials.items():
            lut[m] = mat.colour
        np.copyto(view, lut[crop], where=(crop != _M_BG)[..., None])
        present = np.bincount(crop[::2, ::2].ravel(), minlength=_N_MATERIALS)
        for m, count in enumerate(present):
            if m == _M_BG or count == 0 or m not in materials or materials[m].pattern == "solid":
                continue
            mask = crop == m
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            fill = _pattern(materials[m], (y0 + r0, y0 + r1, x0 + c0, x0 + c1), height, noise_rng)
            np.copyto(view[r0:r1, c0:c1], fill, where=mask[r0:r1, c0:c1, None])
        # Soft shading at material edges (folds and outlines a camera would see).
        edges = np.zeros(crop.shape, np.float32)
        edges[:, 1:] += crop[:, 1:] != crop[:, :-1]
        edges[1:, :] += crop[1:, :] != crop[:-1, :]
        edges = cv2.GaussianBlur(np.minimum(edges, 1), (0, 0), max(0.8, 2.0 * height / 1024))
        image[y0:y1, x0:x1] *= (1 - rng.uniform(0.2, 0.6) * np.minimum(edges * 2, 1))[..., None]
    # Uneven light, white balance, optics blur and sensor noise.
    light = cv2.resize(rng.uniform(0.85, 1.12, (3, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    image *= light[..., None]
    image *= rng.uniform(0.94, 1.06, 3).astype(np.float32)
    image = cv2.GaussianBlur(image, (0, 0), max(0.4, rng.uniform(0.4, 1.0) * height / 1024))
    noise_sigma = rng.uniform(1, 5)
    noise = noise_rng.standard_normal((h, w), dtype=np.float32)
    image += noise[..., None] * noise_sigma
    return np.clip(image, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Datasets on disk.


def write_dataset(folder, n: int, seed: int = 0, width: int = 768, height: int = 1024, quality: int = 90,
                  truth_folder=None, categories=None) -> list[dict]:
    """Write `n` samples (seeds seed .. seed+n-1) as `<folder>/<name>.jpg` and a manifest.csv.

    Ground truth goes to `truth_folder` (default: the sibling folder `<folder>-truth`, so a folder
    input of photos holds only photos): `<name>.labels.png` (canonical label ids, L mode) and
    `<name>.json` (keypoints as (18, 3) lists, null for missing, plus category and seed).
    `categories`, if given, is cycled to force the outfit of each sample.
    Returns one dict per sample: name, path, category, seed, labels_path, keypoints_path.
    """
    from PIL import Image

    folder = Path(folder)
    truth = Path(truth_folder) if truth_folder is not None else folder.with_name(folder.name + "-truth")
    folder.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        s = seed + i
        forced = categories[i % len(categories)] if categories else None
        sample = make_person(s, width, height, category=forced)
        name = f"person_{s:06d}"
        path = folder / f"{name}.jpg"
        Image.fromarray(sample.image).save(path, quality=quality)
        labels_path = truth / f"{name}.labels.png"
        Image.fromarray(sample.labels, mode="L").save(labels_path)
        keypoints_path = truth / f"{name}.json"
        kp = [[None if np.isnan(v) else float(v) for v in row] for row in sample.keypoints]
        keypoints_path.write_text(json.dumps({"keypoints": kp, "category": sample.category, "seed": s}))
        records.append({"name": name, "path": str(path), "category": sample.category, "seed": s,
                        "labels_path": str(labels_path), "keypoints_path": str(keypoints_path)})
    with open(folder / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "category"])
        for r in records:
            writer.writerow([Path(r["path"]).name, r["category"]])
    return records


def load_truth(record: dict) -> tuple[np.ndarray, np.ndarray, str]:
    """(labels HxW uint8, keypoints (18, 3) float32 with NaN rows, category) of a written sample."""
    from PIL import Image

    labels = np.asarray(Image.open(record["labels_path"]), dtype=np.uint8)
    data = json.loads(Path(record["keypoints_path"]).read_text())
    keypoints = np.array([[np.nan if v is None else v for v in row] for row in data["keypoints"]], dtype=np.float32)
    return labels, keypoints, data["category"]
