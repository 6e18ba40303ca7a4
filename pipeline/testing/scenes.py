"""Synthetic photos with no person in them, for measuring the ``no_person`` flag.

``make_scene(seed, width, height, kind=...)`` draws one RGB uint8 scene of a class in
``SCENE_KINDS``; the seed fixes everything, and the same seed at another size draws the same
scene scaled (only the pixel noise differs). The classes:

* ``product``   - products on a white or light seamless background: cups, bottles, shoes, bags,
  boxes, folded stacks of clothes and garments laid flat (a T-shirt, trousers, a dress: a garment
  without a body is not a person), one to three of them, with soft shadows;
* ``room``      - interiors: walls, wooden or carpeted floors, windows, frames, sofas, chairs,
  tables, lamps, plants, shelves of books;
* ``landscape`` - skies, sun, clouds, mountain ridges, hills, fields, lakes, trees, rocks;
* ``animal``    - animals drawn as blobs (a body, a head, legs, a tail, ears; four-legged ones
  from the side and upright sitting ones) on grass, floors or studio backgrounds;
* ``document``  - text pages (headings, paragraphs, tables, a logo, a photo block, a signature),
  flat or photographed at a slant on a desk.

They are made not to be trivially easy: the colours come from the same pickers as the synthetic
people's (skin tones, hair colours, clothes colours and fabric patterns appear on cups, sofas,
pigs and walls), surfaces carry textures, and the photo gets the same uneven light, blur and
sensor noise as ``pipeline.testing.synthetic.make_person``.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.testing.synthetic import _HAIR_COLOURS, _garment_material, _Material, _pattern, _random_colour, _skin_tone

__all__ = ["Scene", "SCENE_KINDS", "make_scene"]

SCENE_KINDS = ("product", "room", "landscape", "animal", "document")

_SHIFT = 4
_ONE = 1 << _SHIFT


@dataclass
class Scene:
    """One synthetic photo without a person."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    kind: str          # one of SCENE_KINDS
    seed: int


def make_scene(seed: int, width: int = 768, height: int = 1024, *, kind: str | None = None) -> Scene:
    """Draw one person-free scene, fixed by ``seed`` (and ``kind``; without it the seed picks it)."""
    if kind is None:
        kind = SCENE_KINDS[int(np.random.default_rng([int(seed), 0x5CE]).integers(len(SCENE_KINDS)))]
    if kind not in SCENE_KINDS:
        raise ValueError(f"unknown scene kind {kind!r} (expected one of {', '.join(SCENE_KINDS)})")
    if width < 1 or height < 1:
        raise ValueError(f"scene size must be positive, got {width}x{height}")
    index = SCENE_KINDS.index(kind)
    rng = np.random.default_rng([int(seed), index, 0x5CE9E])
    noise_rng = np.random.default_rng([int(seed), index, 0x7015E])  # draws whose count depends on the size
    painter = _Painter(height, width, rng, noise_rng)
    _DRAW[kind](painter)
    return Scene(image=painter.finish(), kind=kind, seed=int(seed))


# ---------------------------------------------------------------------------------------------
# Painting: shapes in relative coordinates (x as a fraction of the width, y of the height),
# filled with a colour or a material pattern, optionally shaded.


class _Painter:
    def __init__(self, height: int, width: int, rng, noise_rng):
        self.h, self.w = height, width
        self.s = height / 1024  # pixels of a 1024-high picture -> pixels here
        self.rng, self.noise_rng = rng, noise_rng
        self.image = np.zeros((height, width, 3), np.float32)
        self._mask = np.zeros((height, width), np.uint8)

    # -- coordinates
    def px(self, points) -> np.ndarray:
        """Relative (x, y) points -> cv2 fixed-point pixel coordinates."""
        p = np.asarray(points, np.float64).reshape(-1, 2) * (self.w, self.h)
        return np.round(p * _ONE).astype(np.int32).reshape(-1, 1, 2)

    # -- masks (a shared scratch buffer: each shape is painted before the next is drawn)
    def _blank(self) -> np.ndarray:
        self._mask[:] = 0
        return self._mask

    def poly_mask(self, points) -> np.ndarray:
        mask = self._blank()
        cv2.fillPoly(mask, [self.px(points)], 1, cv2.LINE_AA, _SHIFT)
        return mask

    def ellipse_mask(self, centre, axes, angle=0.0, start=0, end=360, thickness=-1) -> np.ndarray:
        """Axes as fractions of the height (so circles stay round whatever the aspect)."""
        mask = self._blank()
        c = tuple(int(v) for v in self.px(centre).ravel())
        a = tuple(max(1, int(round(v * self.h * _ONE))) for v in axes)
        t = -1 if thickness < 0 else max(1, int(round(thickness * self.h)))
        cv2.ellipse(mask, c, a, float(angle), start, end, 1, t, cv2.LINE_AA, _SHIFT)
        return mask

    def line_mask(self, points, thickness) -> np.ndarray:
        mask = self._blank()
        cv2.polylines(mask, [self.px(points)], False, 1, max(1, int(round(thickness * self.h))), cv2.LINE_AA, _SHIFT)
        return mask

    # -- filling
    def fill(self, mask, paint, shade=None, alpha=1.0):
        """Paint where ``mask``: a colour (3,) or a _Material; shade: None, ('x'|'y', depth) for a
        cylinder-like shading across the shape's box, or ('grad', depth) for a top-to-bottom fade."""
        rows = np.flatnonzero(mask.any(1))
        if rows.size == 0:
            return
        cols = np.flatnonzero(mask.any(0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        if isinstance(paint, _Material):
            colours = _pattern(paint, (y0, y1, x0, x1), self.h, self.noise_rng).astype(np.float32)
        else:
            colours = np.broadcast_to(np.asarray(paint, np.float32), (y1 - y0, x1 - x0, 3)).copy()
        if shade is not None:
            axis, depth = shade
            if axis == "x":
                t = np.linspace(-1, 1, x1 - x0, dtype=np.float32)[None, :, None]
                colours *= 1 - depth * (t ** 2) + 0.15 * depth * (t < -0.3) * (t + 0.3)
            else:
                t = np.linspace(0, 1, y1 - y0, dtype=np.float32)[:, None, None]
                colours *= 1 + depth * (0.5 - t)
        weight = mask[y0:y1, x0:x1, None].astype(np.float32) * alpha
        view = self.image[y0:y1, x0:x1]
        view += (colours - view) * weight

    def poly(self, points, paint, shade=None, alpha=1.0):
        self.fill(self.poly_mask(points), paint, shade, alpha)

    def ellipse(self, centre, axes, paint, angle=0.0, shade=None, alpha=1.0, **kw):
        self.fill(self.ellipse_mask(centre, axes, angle, **kw), paint, shade, alpha)

    def rect(self, x0, y0, x1, y1, paint, shade=None, alpha=1.0):
        self.poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], paint, shade, alpha)

    def line(self, points, thickness, paint, alpha=1.0):
        self.fill(self.line_mask(points, thickness), paint, None, alpha)

    def shadow(self, centre, axes, strength=0.35, blur=0.02):
        """A soft dark ellipse (a contact shadow under an object)."""
        mask = self.ellipse_mask(centre, axes).astype(np.float32)
        mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, blur * self.h))
        self.image *= (1 - strength * mask)[..., None]

    def gradient(self, top, bottom, y0=0.0, y1=1.0):
        a, b = int(round(y0 * self.h)), int(round(y1 * self.h))
        if b <= a:
            return
        t = np.linspace(0, 1, b - a, dtype=np.float32)[:, None, None]
        self.image[a:b] = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t

    def texture(self, strength, scale=0.01, y0=0.0, y1=1.0, stretch=(1.0, 1.0)):
        """Multiplicative smooth noise (grain of paper, grass, plaster) over a band of rows."""
        a, b = int(round(y0 * self.h)), int(round(y1 * self.h))
        if b <= a:
            return
        cell = max(1.0, scale * self.h)
        gh = max(2, int((b - a) / (cell * stretch[1])) + 2)
        gw = max(2, int(self.w / (cell * stretch[0])) + 2)
        noise = self.noise_rng.standard_normal((gh, gw)).astype(np.float32)
        noise = cv2.resize(noise, (self.w, b - a), interpolation=cv2.INTER_CUBIC)
        self.image[a:b] *= (1 + strength * noise)[..., None]

    def finish(self) -> np.ndarray:
        """The camera: uneven light, white balance, optics blur, sensor noise (as make_person)."""
        rng, h, w = self.rng, self.h, self.w
        image = self.image
        light = cv2.resize(rng.uniform(0.85, 1.12, (3, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        image *= light[..., None]
        image *= rng.uniform(0.94, 1.06, 3).astype(np.float32)
        image = cv2.GaussianBlur(image, (0, 0), max(0.4, rng.uniform(0.4, 1.0) * h / 1024))
        noise = self.noise_rng.standard_normal((h, w), dtype=np.float32)
        image += noise[..., None] * rng.uniform(1, 5)
        return np.clip(image, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Colours.


def _colour(rng) -> np.ndarray:
    """A surface colour: clothes-like most of the time, a skin tone or hair colour sometimes."""
    kind = rng.uniform()
    if kind < 0.2:
        return _skin_tone(rng)
    if kind < 0.3:
        return np.clip(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] + rng.normal(0, 8, 3), 0, 255)
    return _random_colour(rng)


def _paint(rng, pattern_share=0.35):
    """A colour, or (sometimes) a fabric-like material with stripes, checks, dots, grain or a fade."""
    if rng.uniform() < pattern_share:
        return _garment_material(rng)
    return _colour(rng)


def _shade(colour, factor) -> np.ndarray:
    base = colour.colour if isinstance(colour, _Material) else colour
    return np.clip(np.asarray(base, np.float32) * factor, 0, 255)


def _wood(rng) -> _Material:
    base = rng.choice([(150, 105, 65), (190, 150, 105), (110, 70, 40), (215, 185, 140), (90, 60, 40)])
    base = np.clip(np.asarray(base, float) + rng.normal(0, 10, 3), 0, 255)
    return _Material(base, "stripes", np.clip(base * rng.uniform(0.75, 0.9), 0, 255),
                     period=rng.uniform(0.008, 0.03), angle=float(rng.choice([0.0, 90.0])), strength=0.1)


# ---------------------------------------------------------------------------------------------
# Products on white.


def _products(p: _Painter):
    rng = p.rng
    white = rng.uniform(228, 255) + rng.normal(0, 4, 3)
    if rng.uniform() < 0.2:  # a pastel or light grey seamless instead of white
        white = np.clip(_random_colour(rng) * 0.25 + 200, 0, 255)
    p.gradient(white, white * rng.uniform(0.82, 0.97))
    if rng.uniform() < 0.4:  # the seamless's floor line
        y = rng.uniform(0.55, 0.8)
        p.gradient(white * 0.96, white * 0.85, y, 1.0)
    count = int(rng.choice([1, 1, 2, 3]))
    slots = np.sort(rng.uniform(0.15, 0.85, count)) if count > 1 else [rng.uniform(0.35, 0.65)]
    scale = {1: rng.uniform(0.7, 1.3), 2: rng.uniform(0.55, 0.85), 3: rng.uniform(0.45, 0.7)}[count]
    for cx in slots:
        kind = rng.choice(["cup", "bottle", "shoe", "bag", "folded", "flat_top", "flat_pants", "flat_dress", "box"],
                          p=[0.13, 0.13, 0.12, 0.12, 0.12, 0.14, 0.08, 0.08, 0.08])
        base = rng.uniform(0.6, 0.85)  # where the object stands
        _PRODUCTS[kind](p, float(cx), float(base), float(scale))
    p.texture(0.015, 0.05)


def _cup(p, cx, base, k):
    rng = p.rng
    w, h = 0.13 * k * rng.uniform(0.8, 1.3), 0.17 * k * rng.uniform(0.7, 1.3)
    colour = _paint(rng, 0.25)
    taper = rng.uniform(0.0, 0.25) * w
    ww = w * p.h / p.w  # width as a fraction of the picture's width
    tw = taper * p.h / p.w
    p.shadow((cx, base), (w * 0.7, 0.015 * k), 0.3)
    handle_side = rng.choice([-1, 1])
    p.ellipse((cx + handle_side * ww * 0.55, base - h * 0.55), (h * 0.22, h * 0.28), _shade(colour, 0.9),
              thickness=0.018 * k)
    p.poly([(cx - ww / 2, base - h), (cx + ww / 2, base - h), (cx + ww / 2 - tw, base), (cx - ww / 2 + tw, base)],
           colour, shade=("x", 0.35))
    p.ellipse((cx, base - h), (w / 2, 0.02 * k), _shade(colour, 0.6))
    drink = rng.choice([(60, 35, 20), (235, 225, 210)]) * np.ones(3)
    p.ellipse((cx, base - h + 0.004 * k), (w / 2 * 0.9, 0.014 * k), drink)


def _bottle(p, cx, base, k):
    rng = p.rng
    w, h = 0.09 * k * rng.uniform(0.8, 1.4), 0.36 * k * rng.uniform(0.8, 1.2)
    ww = w * p.h / p.w
    colour = _paint(rng, 0.15)
    p.shadow((cx, base), (w * 0.8, 0.012 * k), 0.3)
    neck_w = ww * rng.uniform(0.25, 0.45)
    shoulder = base - h * rng.uniform(0.6, 0.75)
    p.poly([(cx - ww / 2, base), (cx - ww / 2, shoulder), (cx - neck_w / 2, shoulder - h * 0.12),
            (cx - neck_w / 2, base - h), (cx + neck_w / 2, base - h), (cx + neck_w / 2, shoulder - h * 0.12),
            (cx + ww / 2, shoulder), (cx + ww / 2, base)], colour, shade=("x", 0.4))
    p.rect(cx - neck_w / 2 * 1.1, base - h - 0.03 * k, cx + neck_w / 2 * 1.1, base - h + 0.01 * k, _colour(rng),
           shade=("x", 0.3))
    if rng.uniform() < 0.8:  # a label band
        y = base - h * rng.uniform(0.2, 0.45)
        p.rect(cx - ww / 2, y - h * 0.12, cx + ww / 2, y + h * 0.12, _paint(rng, 0.3), shade=("x", 0.3))


def _shoe(p, cx, base, k):
    rng = p.rng
    L = 0.3 * k * rng.uniform(0.85, 1.15)
    H = 0.11 * k * rng.uniform(0.8, 1.3)
    sx = L * p.h / p.w
    d = rng.choice([-1, 1])
    colour = _paint(rng, 0.2)
    p.shadow((cx, base), (L * 0.55, 0.012 * k), 0.35)
    x0, x1 = cx - d * sx / 2, cx + d * sx / 2
    upper = [(x0, base - 0.02 * k), (x0, base - H), (x0 + d * sx * 0.35, base - H * 0.95),
             (x0 + d * sx * 0.55, base - H * 0.55), (x1 - d * sx * 0.05, base - H * 0.4), (x1, base - 0.03 * k)]
    if rng.uniform() < 0.3:  # a boot
        upper[1] = (x0, base - H * 2.2)
        upper[2] = (x0 + d * sx * 0.35, base - H * 2.2)
    p.poly(upper, colour, shade=("y", 0.3))
    p.poly([(x0, base - 0.025 * k), (x1, base - 0.03 * k), (x1, base), (x0, base)],
           rng.choice([(240, 240, 235), (30, 28, 25), (180, 140, 90)]) * np.ones(3))
    for i in range(int(rng.integers(0, 5))):  # laces
        t = 0.38 + 0.05 * i
        p.ellipse((x0 + d * sx * t, base - H * (0.9 - 0.09 * i)), (0.006 * k, 0.006 * k), _shade(colour, 0.5))


def _bag(p, cx, base, k):
    rng = p.rng
    w, h = 0.26 * k * rng.uniform(0.8, 1.3), 0.2 * k * rng.uniform(0.8, 1.3)
    ww = w * p.h / p.w
    colour = _paint(rng, 0.3)
    p.shadow((cx, base), (w * 0.6, 0.015 * k), 0.3)
    p.ellipse((cx, base - h), (w * 0.3, h * rng.uniform(0.4, 0.8)), _shade(colour, 0.7), start=180, end=360,
              thickness=0.014 * k)
    top = ww * rng.uniform(0.7, 0.95)
    p.poly([(cx - top / 2, base - h), (cx + top / 2, base - h), (cx + ww / 2, base), (cx - ww / 2, base)], colour,
           shade=("y", 0.25))
    if rng.uniform() < 0.6:  # a flap
        p.poly([(cx - top / 2, base - h), (cx + top / 2, base - h), (cx + top / 2 * 0.95, base - h * 0.55),
                (cx - top / 2 * 0.95, base - h * 0.55)], _shade(colour, 0.85))
        p.ellipse((cx, base - h * 0.55), (0.01 * k, 0.01 * k), np.array([200, 180, 90.0]))


def _folded(p, cx, base, k):
    rng = p.rng
    w = 0.3 * k * rng.uniform(0.8, 1.2)
    ww = w * p.h / p.w
    y = base
    for _ in range(int(rng.integers(1, 5))):
        th = 0.05 * k * rng.uniform(0.7, 1.5)
        m = _garment_material(rng)
        p.shadow((cx, y), (w * 0.55, 0.01 * k), 0.25)
        p.poly([(cx - ww / 2, y), (cx - ww / 2, y - th * 0.8), (cx - ww / 2 + 0.01, y - th),
                (cx + ww / 2 - 0.01, y - th), (cx + ww / 2, y - th * 0.8), (cx + ww / 2, y)], m, shade=("y", 0.3))
        y -= th
    if rng.uniform() < 0.5:  # a shirt folded face up: its collar on top
        m = _garment_material(rng)
        p.poly([(cx - ww / 2, y), (cx + ww / 2, y), (cx + ww / 2, y - 0.02 * k), (cx - ww / 2, y - 0.02 * k)], m)
        p.poly([(cx - ww * 0.12, y - 0.02 * k), (cx, y + 0.03 * k), (cx + ww * 0.12, y - 0.02 * k)], _shade(m, 0.7))


def _flat_top(p, cx, base, k):
    """A T-shirt, shirt or jumper laid flat: the strongest 'upper_clothes' there is without a body."""
    rng = p.rng
    m = _garment_material(rng)
    H = 0.42 * k * rng.uniform(0.85, 1.2)
    W = H * rng.uniform(0.75, 0.95)
    sx = p.h / p.w
    top = base - H
    bw, sw = W / 2 * sx, W / 2 * sx * rng.uniform(1.2, 1.9)  # body and sleeve reach
    sleeve_len = rng.uniform(0.25, 0.9)
    neck = bw * 0.35
    pts = [(cx - neck, top), (cx - bw * 0.95, top + H * 0.04), (cx - sw, top + H * 0.1 + H * sleeve_len * 0.4),
           (cx - sw + bw * 0.3, top + H * 0.15 + H * sleeve_len * 0.45), (cx - bw, top + H * 0.3),
           (cx - bw, base), (cx + bw, base), (cx + bw, top + H * 0.3),
           (cx + sw - bw * 0.3, top + H * 0.15 + H * sleeve_len * 0.45),
           (cx + sw, top + H * 0.1 + H * sleeve_len * 0.4),
           (cx + bw * 0.95, top + H * 0.04), (cx + neck, top)]
    p.shadow((cx, base - H / 2), (W * 0.55, H * 0.55), 0.12, 0.03)
    p.poly(pts, m, shade=("y", 0.15))
    p.ellipse((cx, top), (neck / sx, 0.035 * k), _shade(m, 0.6), start=0, end=180)


def _flat_pants(p, cx, base, k):
    rng = p.rng
    m = _garment_material(rng)
    H = 0.5 * k * rng.uniform(0.8, 1.1)
    if rng.uniform() < 0.3:
        H *= 0.5  # shorts
    sx = p.h / p.w
    W = 0.2 * k * sx * rng.uniform(0.9, 1.2)
    top = base - H
    p.poly([(cx - W, top), (cx + W, top), (cx + W * 1.15, base), (cx + W * 0.1, base), (cx, top + H * 0.3),
            (cx - W * 0.1, base), (cx - W * 1.15, base)], m, shade=("y", 0.15))
    p.rect(cx - W, top, cx + W, top + 0.025 * k, _shade(m, 0.8))


def _flat_dress(p, cx, base, k):
    rng = p.rng
    m = _garment_material(rng)
    H = 0.5 * k * rng.uniform(0.85, 1.15)
    sx = p.h / p.w
    W = 0.1 * k * sx
    flare = W * rng.uniform(1.5, 2.6)
    top = base - H
    p.poly([(cx - W * 0.8, top), (cx - W * 0.4, top), (cx, top + H * 0.06), (cx + W * 0.4, top), (cx + W * 0.8, top),
            (cx + W, top + H * 0.3), (cx + W * 0.9, top + H * 0.4), (cx + flare, base), (cx - flare, base),
            (cx - W * 0.9, top + H * 0.4), (cx - W, top + H * 0.3)], m, shade=("y", 0.15))


def _box(p, cx, base, k):
    rng = p.rng
    w, h = 0.18 * k * rng.uniform(0.6, 1.5), 0.22 * k * rng.uniform(0.5, 1.6)
    ww, dd = w * p.h / p.w, 0.03 * k
    colour = _paint(rng, 0.2)
    p.shadow((cx, base), (w * 0.6, 0.012 * k), 0.3)
    p.rect(cx - ww / 2, base - h, cx + ww / 2, base, colour)
    p.poly([(cx - ww / 2, base - h), (cx + ww / 2, base - h), (cx + ww / 2 + dd, base - h - dd),
            (cx - ww / 2 + dd, base - h - dd)], _shade(colour, 1.15))
    p.poly([(cx + ww / 2, base - h), (cx + ww / 2 + dd, base - h - dd), (cx + ww / 2 + dd, base - dd),
            (cx + ww / 2, base)], _shade(colour, 0.7))
    if rng.uniform() < 0.7:
        p.rect(cx - ww * 0.35, base - h * 0.7, cx + ww * 0.35, base - h * 0.45, _colour(rng))


_PRODUCTS = {"cup": _cup, "bottle": _bottle, "shoe": _shoe, "bag": _bag, "folded": _folded,
             "flat_top": _flat_top, "flat_pants": _flat_pants, "flat_dress": _flat_dress, "box": _box}


# ---------------------------------------------------------------------------------------------
# Rooms.


def _room(p: _Painter):
    rng = p.rng
    wall = _colour(rng) * rng.uniform(0.7, 1.0) + rng.uniform(0, 60)
    wall = np.clip(wall, 0, 255)
    floor_y = rng.uniform(0.55, 0.8)
    p.gradient(wall, wall * rng.uniform(0.8, 1.0), 0, floor_y)
    p.texture(0.02, 0.02, 0, floor_y)
    floor = _wood(rng) if rng.uniform() < 0.6 else _paint(rng, 0.5)
    p.rect(0, floor_y, 1, 1, floor, shade=("y", -0.3))
    p.rect(0, floor_y - 0.012, 1, floor_y, _shade(wall, 0.8))  # skirting board
    if rng.uniform() < 0.6:  # a window
        x0, w = rng.uniform(0.05, 0.6), rng.uniform(0.2, 0.35)
        y0, h = rng.uniform(0.08, 0.2), rng.uniform(0.25, 0.35)
        frame = _colour(rng)
        p.rect(x0 - 0.015, y0 - 0.012, x0 + w + 0.015, y0 + h + 0.012, frame)
        p.rect(x0, y0, x0 + w, y0 + h, np.array(rng.choice([(150, 190, 235), (200, 215, 230), (120, 150, 110)]),
                                                  float), shade=("y", 0.3))
        p.rect(x0 + w / 2 - 0.006, y0, x0 + w / 2 + 0.006, y0 + h, frame)
        p.rect(x0, y0 + h / 2 - 0.005, x0 + w, y0 + h / 2 + 0.005, frame)
        if rng.uniform() < 0.6:  # curtains
            c = _paint(rng, 0.5)
            p.rect(x0 - 0.06, y0 - 0.03, x0 + 0.03, floor_y - 0.02, c, shade=("x", 0.3))
            p.rect(x0 + w - 0.03, y0 - 0.03, x0 + w + 0.06, floor_y - 0.02, c, shade=("x", 0.3))
    for _ in range(int(rng.integers(0, 3))):  # frames on the wall
        x, y, w, h = rng.uniform(0.05, 0.8), rng.uniform(0.08, 0.3), rng.uniform(0.08, 0.2), rng.uniform(0.06, 0.15)
        p.rect(x - 0.01, y - 0.008, x + w + 0.01, y + h + 0.008, _colour(rng))
        p.rect(x, y, x + w, y + h, _garment_material(rng))
    items = list(rng.choice(["sofa", "chair", "table", "lamp", "plant", "shelf", "rug"], int(rng.integers(2, 5)),
                            replace=False))
    if "rug" in items:  # on the floor, under everything else
        items.remove("rug")
        p.ellipse((rng.uniform(0.3, 0.7), floor_y + (1 - floor_y) * 0.5), ((1 - floor_y) * 0.3, (1 - floor_y) * 0.25),
                  _garment_material(rng))
    for item in items:
        _FURNITURE[item](p, float(rng.uniform(0.15, 0.85)), float(floor_y + rng.uniform(0.03, 0.15)))


def _sofa(p, cx, base, k=1.0):
    rng = p.rng
    w = rng.uniform(0.5, 0.8) * p.h / p.w * 0.75
    h = rng.uniform(0.2, 0.3)
    m = _paint(rng, 0.4)
    p.shadow((cx, base), (w * p.w / p.h * 0.55, 0.015), 0.35)
    p.rect(cx - w / 2, base - h, cx + w / 2, base - h * 0.4, _shade(m, 0.85), shade=("y", 0.2))  # back
    p.rect(cx - w / 2, base - h * 0.45, cx + w / 2, base - h * 0.1, m, shade=("y", 0.3))  # seat
    for side in (-1, 1):
        p.rect(cx + side * w / 2 - 0.04 * (side > 0), base - h * 0.7, cx + side * w / 2 + 0.04 * (side < 0),
               base - h * 0.1, _shade(m, 0.9), shade=("x", 0.3))
        p.rect(cx + side * w * 0.45 - 0.008, base - h * 0.1, cx + side * w * 0.45 + 0.008, base, (40, 30, 25))
    for i in range(int(rng.integers(0, 4))):  # cushions
        x = cx - w * 0.35 + i * w * 0.23
        p.ellipse((x, base - h * 0.55), (0.04, 0.05), _paint(rng, 0.6), angle=rng.uniform(-20, 20))


def _chair(p, cx, base, k=1.0):
    rng = p.rng
    w, h = rng.uniform(0.1, 0.18), rng.uniform(0.3, 0.45)
    m = _wood(rng) if rng.uniform() < 0.6 else _paint(rng, 0.3)
    seat = base - h * 0.45
    for x in (cx - w / 2, cx + w / 2 - 0.012):
        p.rect(x, seat, x + 0.012, base, _shade(m, 0.8))
    p.rect(cx - w / 2, seat - 0.02, cx + w / 2, seat, m)
    p.rect(cx - w / 2, base - h, cx - w / 2 + 0.014, seat, _shade(m, 0.85))
    p.rect(cx - w / 2, base - h, cx + w / 2, base - h + 0.05, m)
    if rng.uniform() < 0.5:
        p.rect(cx - w / 2, base - h + 0.07, cx + w / 2, base - h + 0.1, m)


def _table(p, cx, base, k=1.0):
    rng = p.rng
    w, h = rng.uniform(0.25, 0.45), rng.uniform(0.12, 0.22)
    m = _wood(rng)
    p.rect(cx - w / 2, base - h, cx + w / 2, base - h + 0.025, m)
    for x in (cx - w / 2 + 0.01, cx + w / 2 - 0.025):
        p.rect(x, base - h + 0.025, x + 0.015, base, _shade(m, 0.75))
    for _ in range(int(rng.integers(0, 3))):  # things on it
        x = cx + rng.uniform(-w / 3, w / 3)
        kind = rng.choice(["cup", "bottle", "box"])
        _PRODUCTS[str(kind)](p, float(x), float(base - h), 0.35)


def _lamp(p, cx, base, k=1.0):
    rng = p.rng
    h = rng.uniform(0.3, 0.5)
    p.rect(cx - 0.004, base - h, cx + 0.004, base, (60, 55, 50))
    p.ellipse((cx, base), (0.03, 0.008), np.array([60, 55, 50.0]))
    shade_c = np.clip(_colour(rng) * 0.5 + 120, 0, 255)
    p.poly([(cx - 0.05, base - h), (cx + 0.05, base - h), (cx + 0.035, base - h - 0.08), (cx - 0.035, base - h - 0.08)],
           shade_c, shade=("x", 0.2))


def _plant(p, cx, base, k=1.0):
    rng = p.rng
    pot = _colour(rng)
    ph = rng.uniform(0.06, 0.1)
    for _ in range(int(rng.integers(6, 14))):
        a = rng.uniform(-70, 70)
        length = rng.uniform(0.06, 0.16)
        tip = (cx + np.sin(np.deg2rad(a)) * length * p.h / p.w, base - ph - np.cos(np.deg2rad(a)) * length)
        mid = ((cx + tip[0]) / 2, (base - ph + tip[1]) / 2)
        green = np.clip(np.array([50, 120, 45]) * rng.uniform(0.6, 1.3) + rng.normal(0, 10, 3), 0, 255)
        p.ellipse(mid, (length / 2, length / 6), green, angle=a - 90)
    p.poly([(cx - 0.05, base - ph), (cx + 0.05, base - ph), (cx + 0.035, base), (cx - 0.035, base)], pot,
           shade=("x", 0.3))


def _shelf(p, cx, base, k=1.0):
    rng = p.rng
    w, h = rng.uniform(0.2, 0.35), rng.uniform(0.35, 0.55)
    wood = _wood(rng)
    p.rect(cx - w / 2, base - h, cx + w / 2, base, _shade(wood, 0.6))
    rows = int(rng.integers(2, 5))
    for r in range(rows):
        y1 = base - h + (r + 1) * h / rows
        p.rect(cx - w / 2, y1 - 0.012, cx + w / 2, y1, wood)
        x = cx - w / 2 + 0.008
        while x < cx + w / 2 - 0.03:  # books
            bw = rng.uniform(0.01, 0.025)
            bh = h / rows * rng.uniform(0.5, 0.85)
            p.rect(x, y1 - 0.012 - bh, x + bw, y1 - 0.012, _colour(rng), shade=("x", 0.2))
            x += bw + rng.uniform(0.0, 0.01)


_FURNITURE = {"sofa": _sofa, "chair": _chair, "table": _table, "lamp": _lamp, "plant": _plant, "shelf": _shelf}


# ---------------------------------------------------------------------------------------------
# Landscapes.


def _ridge(rng, y, roughness, n=24):
    """Points of a mountain or hill outline across the picture, closed along the bottom."""
    xs = np.linspace(-0.05, 1.05, n)
    ys = y + np.cumsum(rng.normal(0, roughness, n))
    ys -= (ys.mean() - y)
    return [(x, yy) for x, yy in zip(xs, ys)] + [(1.05, 1.05), (-0.05, 1.05)]


def _landscape(p: _Painter):
    rng = p.rng
    sky = rng.choice(["day", "dusk", "grey"], p=[0.55, 0.25, 0.2])
    top, low = {"day": ((70, 120, 200), (190, 215, 240)), "dusk": ((60, 60, 120), (245, 160, 90)),
                "grey": ((150, 155, 165), (210, 210, 212))}[str(sky)]
    horizon = rng.uniform(0.3, 0.65)
    p.gradient(np.array(top, float) + rng.normal(0, 10, 3), np.array(low, float) + rng.normal(0, 10, 3),
               0, horizon + 0.2)
    if rng.uniform() < 0.5:  # the sun or the moon
        p.ellipse((rng.uniform(0.1, 0.9), rng.uniform(0.05, horizon - 0.05)), (rng.uniform(0.02, 0.05),) * 2,
                  np.array([255, 240, 200.0]) if sky != "dusk" else np.array([255, 200, 120.0]))
    for _ in range(int(rng.integers(0, 7))):  # clouds
        cx, cy = rng.uniform(0, 1), rng.uniform(0.03, horizon * 0.8)
        for _ in range(int(rng.integers(2, 6))):
            mask = p.ellipse_mask((cx + rng.uniform(-0.1, 0.1), cy + rng.uniform(-0.02, 0.02)),
                                  (rng.uniform(0.03, 0.09), rng.uniform(0.015, 0.04))).astype(np.float32)
            mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, 0.01 * p.h))
            p.fill(mask, np.array([245, 245, 248.0]) if sky != "grey" else np.array([185, 185, 190.0]), alpha=0.85)
    haze = np.array(low, float)
    layers = int(rng.integers(1, 4))
    for i in range(layers):  # far to near ridges
        far = (layers - i) / layers
        colour = np.array(rng.choice([(90, 100, 120), (110, 90, 80), (70, 95, 70), (140, 130, 120)]), float)
        colour = colour * (1 - 0.5 * far) + haze * 0.5 * far
        p.poly(_ridge(rng, horizon - 0.12 * far * rng.uniform(0.5, 1.5), 0.012 * (1 + far)), colour, shade=("y", 0.2))
    ground = rng.choice(["grass", "field", "desert", "snow"], p=[0.45, 0.2, 0.2, 0.15])
    gcol = {"grass": (80, 135, 60), "field": (190, 170, 80), "desert": (215, 180, 130),
            "snow": (235, 238, 245)}[str(ground)]
    gcol = np.clip(np.array(gcol, float) + rng.normal(0, 12, 3), 0, 255)
    p.poly(_ridge(rng, horizon + 0.05, 0.004), gcol, shade=("y", -0.3))
    if rng.uniform() < 0.35:  # a lake
        y = rng.uniform(horizon + 0.08, 0.85)
        p.ellipse((rng.uniform(0.3, 0.7), y), (rng.uniform(0.25, 0.5), rng.uniform(0.03, 0.08)),
                  np.clip(np.array(top, float) * 0.8 + 20, 0, 255), shade=("y", 0.3))
    if rng.uniform() < 0.4:  # a path
        x = rng.uniform(0.3, 0.7)
        p.poly([(x - 0.01, horizon + 0.06), (x + 0.01, horizon + 0.06), (x + rng.uniform(0.1, 0.3), 1.0),
                (x - rng.uniform(0.1, 0.3), 1.0)], np.clip(gcol * 0.6 + 70, 0, 255))
    p.texture(0.06, 0.006, horizon, 1.0, stretch=(2.0, 0.7))
    trees = int(rng.integers(0, 9))
    for y in np.sort(rng.uniform(horizon + 0.04, 0.95, trees)):  # far (small) to near (big) trees
        _tree(p, float(rng.uniform(0, 1)), float(y), float(0.3 + 1.5 * (y - horizon)))
    for _ in range(int(rng.integers(0, 4))):  # rocks
        y = rng.uniform(horizon + 0.1, 0.98)
        r = 0.05 * (y - horizon) * rng.uniform(0.5, 1.5)
        p.ellipse((rng.uniform(0, 1), y), (r * 1.4, r),
                  np.clip(np.array([120, 115, 110]) * rng.uniform(0.6, 1.3), 0, 255),
                  shade=("y", 0.4), start=180, end=360)


def _tree(p, cx, base, k):
    rng = p.rng
    h = 0.3 * k * rng.uniform(0.7, 1.3)
    trunk = np.clip(np.array([90, 65, 45]) * rng.uniform(0.6, 1.3), 0, 255)
    green = np.clip(np.array([45, 100, 45]) * rng.uniform(0.6, 1.4) + rng.normal(0, 10, 3), 0, 255)
    if rng.uniform() < 0.2:  # autumn
        green = np.array(rng.choice([(200, 120, 40), (170, 60, 30), (220, 180, 60)]), float)
    tw = 0.012 * k * p.h / p.w
    p.rect(cx - tw, base - h * 0.45, cx + tw, base, trunk)
    if rng.uniform() < 0.5:  # a conifer
        for i in range(3):
            y = base - h * (0.25 + 0.25 * i)
            w = (0.08 - 0.02 * i) * k * p.h / p.w
            p.poly([(cx - w, y), (cx + w, y), (cx, y - h * 0.4)], _shade(green, 1 - 0.05 * i))
    else:
        for _ in range(int(rng.integers(3, 7))):
            p.ellipse((cx + rng.uniform(-0.05, 0.05) * k, base - h * rng.uniform(0.55, 0.85)),
                      (0.06 * k * rng.uniform(0.6, 1.2), 0.05 * k * rng.uniform(0.6, 1.2)),
                      _shade(green, rng.uniform(0.8, 1.15)))


# ---------------------------------------------------------------------------------------------
# Animals drawn as blobs.


def _animal_colour(rng) -> np.ndarray:
    kind = rng.uniform()
    if kind < 0.25:  # pinkish / skin-like (pigs, hairless cats)
        return np.clip(_skin_tone(rng) * np.array([1.0, 0.9, 0.95]) + np.array([10, 0, 10]), 0, 255)
    if kind < 0.6:  # fur: the hair palette (black, browns, ginger, grey, blond)
        return np.clip(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] + rng.normal(0, 10, 3), 0, 255)
    if kind < 0.75:
        return np.clip(np.array([235, 230, 220]) + rng.normal(0, 10, 3), 0, 255)
    return _random_colour(rng)  # a cartoon animal


def _animal(p: _Painter):
    rng = p.rng
    where = rng.choice(["grass", "floor", "studio"])
    if where == "grass":
        p.gradient(np.array([150, 190, 230.0]), np.array([200, 220, 240.0]), 0, 0.35)
        p.gradient(np.array([90, 150, 60.0]) * rng.uniform(0.7, 1.2), np.array([60, 110, 40.0]) * rng.uniform(0.7, 1.2),
                   0.35, 1.0)
        p.texture(0.08, 0.005, 0.35, 1.0, stretch=(0.5, 1.5))
    elif where == "floor":
        wall = np.clip(_colour(rng) * 0.6 + 80, 0, 255)
        p.gradient(wall, wall * 0.9, 0, 0.5)
        p.rect(0, 0.5, 1, 1, _wood(rng) if rng.uniform() < 0.6 else _paint(rng, 0.5))
    else:
        c = _colour(rng) * 0.4 + 140
        p.gradient(c, c * 0.8)
    count = int(rng.choice([1, 1, 1, 2, 3]))
    for i in range(count):
        k = rng.uniform(0.5, 1.1) / (1 + 0.35 * (count - 1))
        cx = (i + 0.5) / count + rng.uniform(-0.08, 0.08)
        base = rng.uniform(0.7, 0.92)
        kind = rng.choice(["four_legs", "sitting", "bird"], p=[0.5, 0.3, 0.2])
        colour = _animal_colour(rng)
        spots = _shade(colour, rng.uniform(0.3, 0.6)) if rng.uniform() < 0.3 else None
        {"four_legs": _four_legs, "sitting": _sitting, "bird": _bird}[str(kind)](p, float(cx), float(base), float(k),
                                                                                colour, spots)


def _eyes(p, centre, r, k):
    rng = p.rng
    for dx in (-1, 1):
        p.ellipse((centre[0] + dx * r * 0.4 * p.h / p.w, centre[1] - r * 0.1), (0.012 * k, 0.012 * k),
                  np.array([20, 18, 15.0]))
    if rng.uniform() < 0.7:  # a nose
        p.ellipse((centre[0], centre[1] + r * 0.3), (0.014 * k, 0.01 * k), np.array([40, 30, 30.0]))


def _four_legs(p, cx, base, k, colour, spots):
    rng = p.rng
    L, H = 0.45 * k * rng.uniform(0.8, 1.3), 0.16 * k * rng.uniform(0.8, 1.3)
    sx = p.h / p.w
    leg_h = H * rng.uniform(0.6, 1.4)
    body_y = base - leg_h - H / 2
    d = rng.choice([-1, 1])
    p.shadow((cx, base), (L * 0.5, 0.015 * k), 0.3)
    for t in (-0.38, -0.28, 0.28, 0.38):  # legs
        x = cx + t * L * sx
        p.line([(x, body_y), (x + rng.uniform(-0.01, 0.01), base)], 0.035 * k, _shade(colour, 0.9))
    p.line([(cx - d * L / 2 * sx, body_y - H * 0.1),
            (cx - d * (L / 2 + 0.12 * k) * sx, body_y - H * rng.uniform(-0.3, 0.8))],
           0.02 * k, _shade(colour, 0.85))  # tail
    p.ellipse((cx, body_y), (L / 2, H / 2), colour, shade=("y", 0.3))
    if spots is not None:
        for _ in range(int(rng.integers(2, 7))):
            p.ellipse((cx + rng.uniform(-0.35, 0.35) * L * sx, body_y + rng.uniform(-0.3, 0.3) * H),
                      (rng.uniform(0.02, 0.05) * k,) * 2, spots)
    hr = H * rng.uniform(0.45, 0.7)
    head = (cx + d * (L / 2) * sx, body_y - H * rng.uniform(0.3, 0.9))
    for dx in (-1, 1):  # ears
        ex = head[0] + dx * hr * 0.6 * sx
        p.poly([(ex - 0.02 * k * sx, head[1] - hr * 0.5), (ex + 0.02 * k * sx, head[1] - hr * 0.5),
                (ex + dx * 0.01 * sx, head[1] - hr * 1.3)], _shade(colour, 0.8))
    p.ellipse(head, (hr, hr * 0.9), colour, shade=("y", 0.2))
    p.ellipse((head[0] + d * hr * 0.7 * sx, head[1] + hr * 0.3), (hr * 0.45, hr * 0.3), _shade(colour, 1.1))  # snout
    _eyes(p, head, hr, k)


def _sitting(p, cx, base, k, colour, spots):
    """An upright sitting animal (a cat, a dog, a penguin, a bear): a tall body with a head on top."""
    rng = p.rng
    H = 0.45 * k * rng.uniform(0.8, 1.3)
    W = H * rng.uniform(0.35, 0.6)
    sx = p.h / p.w
    p.shadow((cx, base), (W * 0.7, 0.015 * k), 0.3)
    p.line([(cx + W * 0.4 * sx, base - 0.01), (cx + W * 0.9 * sx, base - H * rng.uniform(0.05, 0.4))], 0.025 * k,
           _shade(colour, 0.85))  # tail
    p.ellipse((cx, base - H * 0.35), (W / 2, H * 0.38), colour, shade=("y", 0.25))
    belly = np.clip(colour * 0.4 + 150, 0, 255) if rng.uniform() < 0.5 else colour
    p.ellipse((cx, base - H * 0.3), (W * 0.28, H * 0.25), belly)
    for dx in (-1, 1):  # front paws
        p.ellipse((cx + dx * W * 0.18 * sx, base - 0.01), (W * 0.12, 0.02 * k), _shade(colour, 0.9))
    if spots is not None:
        for _ in range(int(rng.integers(2, 6))):
            p.ellipse((cx + rng.uniform(-0.3, 0.3) * W * sx, base - H * rng.uniform(0.1, 0.6)),
                      (rng.uniform(0.015, 0.04) * k,) * 2, spots)
    hr = W * rng.uniform(0.35, 0.5)
    head = (cx + rng.uniform(-0.1, 0.1) * W * sx, base - H * 0.78)
    ears = rng.choice(["pointed", "round", "floppy", "none"])
    for dx in (-1, 1):
        ex = head[0] + dx * hr * 0.65 * sx
        if ears == "pointed":
            p.poly([(ex - 0.025 * k * sx, head[1] - hr * 0.4), (ex + 0.025 * k * sx, head[1] - hr * 0.4),
                    (ex, head[1] - hr * 1.4)], _shade(colour, 0.85))
        elif ears == "round":
            p.ellipse((ex, head[1] - hr * 0.75), (hr * 0.3, hr * 0.3), _shade(colour, 0.85))
        elif ears == "floppy":
            p.ellipse((head[0] + dx * hr * 0.95 * sx, head[1] + hr * 0.2), (hr * 0.22, hr * 0.6), _shade(colour, 0.6))
    p.ellipse(head, (hr, hr * 0.92), colour, shade=("y", 0.2))
    _eyes(p, head, hr, k)


def _bird(p, cx, base, k, colour, spots):
    rng = p.rng
    H = 0.3 * k * rng.uniform(0.8, 1.3)
    sx = p.h / p.w
    d = rng.choice([-1, 1])
    leg_h = H * 0.25
    body = (cx, base - leg_h - H * 0.3)
    for dx in (-0.04, 0.04):
        p.line([(cx + dx * k * sx, body[1]), (cx + dx * k * sx, base)], 0.006 * k, np.array([200, 140, 60.0]))
    p.ellipse(body, (H * 0.45, H * 0.3), colour, angle=d * rng.uniform(-30, 0), shade=("y", 0.3))
    wing = _shade(colour, 0.7) if spots is None else spots
    p.ellipse((body[0] - d * H * 0.05 * sx, body[1]), (H * 0.3, H * 0.15), wing, angle=d * -15)
    head = (body[0] + d * H * 0.38 * sx, body[1] - H * 0.35)
    p.ellipse(head, (H * 0.17, H * 0.17), colour)
    p.poly([(head[0] + d * H * 0.14 * sx, head[1] - H * 0.04), (head[0] + d * H * 0.14 * sx, head[1] + H * 0.05),
            (head[0] + d * H * 0.35 * sx, head[1])], np.array([230, 160, 40.0]))
    p.ellipse((head[0] + d * H * 0.06 * sx, head[1] - H * 0.03), (0.008 * k, 0.008 * k), np.array([15, 15, 15.0]))


# ---------------------------------------------------------------------------------------------
# Text documents.

_WORDS = ("the of and to in is for on with as by at from this that report total date invoice page section "
          "summary results table figure data value item amount price order customer number account terms "
          "notes approved signed quarter revenue growth market plan project status review").split()


def _document(p: _Painter):
    rng = p.rng
    h, w = p.h, p.w
    paper = np.clip(np.array([250, 248, 242.0]) + rng.normal(0, 4, 3) - rng.uniform(0, 20), 0, 255)
    # The page is drawn on its own canvas (A-series proportions) and then placed: full frame, or
    # photographed on a desk at a slant.
    flat = rng.uniform() < 0.5
    ph = h if flat else int(round(h * rng.uniform(0.6, 0.85)))
    pw = w if flat else max(1, int(round(ph / 1.414)))
    page = _Painter(ph, pw, rng, p.noise_rng)
    page.image[:] = paper
    page.texture(0.01, 0.01)
    ink = np.array(rng.choice([(20, 20, 25), (30, 30, 90), (60, 60, 60)]), float)
    accent = _random_colour(rng)
    scale = ph / 1024
    font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
                           cv2.FONT_HERSHEY_TRIPLEX]))
    margin = rng.uniform(0.07, 0.12)
    y = margin + 0.02

    def text(x, y, words, size, colour, thick=1):
        mask = page._blank()
        cv2.putText(mask, " ".join(words), (int(x * pw), int(y * ph)), font, size * scale, 255,
                    max(1, int(round(thick * scale))), cv2.LINE_AA)
        page.fill(mask.astype(np.float32) / 255, colour)

    if rng.uniform() < 0.5:  # a logo
        page.ellipse((1 - margin - 0.05, y), (0.03, 0.03), accent)
    text(margin, y + 0.02, rng.choice(_WORDS, int(rng.integers(2, 5))), rng.uniform(0.9, 1.4), accent, 2)
    y += 0.07
    columns = int(rng.choice([1, 1, 2]))
    col_w = (1 - 2 * margin) / columns
    line_h = rng.uniform(0.022, 0.032)
    for c in range(columns):
        yy = y
        x0 = margin + c * col_w
        while yy < 1 - margin:
            block = rng.choice(["para", "para", "para", "table", "photo", "heading"])
            if block == "heading":
                text(x0, yy + line_h, rng.choice(_WORDS, int(rng.integers(1, 4))), 0.7, accent, 2)
                yy += line_h * 1.6
            elif block == "para":
                for _ in range(int(rng.integers(3, 9))):
                    if yy > 1 - margin:
                        break
                    n = int(rng.integers(4, 11) * col_w / 0.8)
                    text(x0, yy + line_h * 0.8, rng.choice(_WORDS, max(1, n)), 0.5, ink)
                    yy += line_h
                yy += line_h * 0.6
            elif block == "table":
                rows, cols = int(rng.integers(3, 7)), int(rng.integers(2, 5))
                tw = col_w * 0.95
                for r in range(rows + 1):
                    page.rect(x0, yy + r * line_h, x0 + tw, yy + r * line_h + 0.0015, ink)
                for cc in range(cols + 1):
                    page.rect(x0 + cc * tw / cols, yy, x0 + cc * tw / cols + 0.0015, yy + rows * line_h, ink)
                for r in range(rows):
                    for cc in range(cols):
                        cell = [str(int(rng.integers(1, 9999)))] if (r and cc) else [str(rng.choice(_WORDS))]
                        text(x0 + cc * tw / cols + 0.008, yy + r * line_h + line_h * 0.75, cell, 0.42, ink)
                yy += rows * line_h + line_h
            else:
                bh = rng.uniform(0.08, 0.18)
                page.rect(x0, yy, x0 + col_w * 0.9, yy + bh, _garment_material(rng))
                yy += bh + line_h
    if rng.uniform() < 0.5:  # a signature
        pts = [(0.6 + 0.02 * i + rng.uniform(-0.01, 0.01), 0.9 + rng.uniform(-0.015, 0.015)) for i in range(12)]
        page.line(pts, 0.002, np.array([20, 30, 120.0]))
    page_image = page.image
    if flat:
        p.image[:] = page_image
        return
    desk = _wood(rng) if rng.uniform() < 0.6 else _paint(rng, 0.4)
    p.rect(0, 0, 1, 1, desk)
    angle = rng.uniform(-25, 25)
    centre = (w * rng.uniform(0.4, 0.6), h * rng.uniform(0.4, 0.6))
    matrix = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle, 1.0)
    matrix[:, 2] += (centre[0] - pw / 2, centre[1] - ph / 2)
    warped = cv2.warpAffine(page_image, matrix, (w, h), flags=cv2.INTER_LINEAR)
    cover = cv2.warpAffine(np.ones((ph, pw), np.float32), matrix, (w, h), flags=cv2.INTER_LINEAR)
    shadow = cv2.GaussianBlur(cover, (0, 0), max(0.5, 0.01 * h))
    p.image *= (1 - 0.35 * shadow)[..., None]
    p.image += (warped - p.image) * cover[..., None]
    if rng.uniform() < 0.4:  # a pen or a cup next to it
        draw = _PRODUCTS[str(rng.choice(["cup", "bottle"]))]
        draw(p, float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.75, 0.95)), 0.5)


_DRAW = {"product": _products, "room": _room, "landscape": _landscape, "animal": _animal, "document": _document}
