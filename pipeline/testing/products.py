"""Synthetic in-shop garment photos with their true garment region, for measuring cloth masks.

``make_product(seed, width, height, kind=None)`` draws one product photo: a garment laid flat or
on a ghost mannequin, on a studio background, and returns it with the boolean garment region the
photo was composited from (``ProductSample``). The seed fixes everything; ``kind`` (one of
``PRODUCT_KINDS``) fixes which difficulty the photo stresses, and without it the seed picks one.

What is drawn:

* garments: t-shirts, collared shirts, long-sleeved tops, tank tops, dresses, skirts, trousers and
  shorts, as closed outlines of a few control points smoothed into curves (each corner
  rounded by a quadratic curve), flat-lay (sleeves out, a small tilt) or ghost mannequin (sleeves hanging, a
  cylindrical body shading, the inside of the back neck showing darker);
* garment colours: white and near-white, black, greys, saturated and muted colours, patterns
  (stripes, checks, a printed all-over texture, a heather grain), with fabric shading: low-frequency
  folds, creases, seams and hems drawn as faint darker lines, and a darker rim where the fabric
  curves away at the outline (what makes a white garment visible on white in a real shot);
* prints: logos and text on the chest (letters, filled shapes, rings), in any colour, including
  the background's colour (the mask must not get holes there);
* backgrounds: pure white, off-white or light grey with a gradient and vignette, coloured studio
  backgrounds (pastel to deep, sometimes the garment's own hue);
* soft shadows: a blurred, offset drop shadow and a contact shadow hugging the outline, which
  darken the background (a shadow is background, not garment);
* the camera: a slight defocus, sensor noise and a JPEG round trip (quality 72-95).

The mask is the garment's outline at pixel centres (rendered at twice the size; a pixel is
garment when more than half of its four sub-pixels are); the photo blends garment and background
by that sub-pixel coverage, so edges are anti-aliased like a real photo's.

Kinds (each photo can combine features; the kind says which one it is built around):

* ``white_on_white`` - a white or near-white garment (sometimes light grey or cream) on a pure
  white background, separable only by the fabric's shading and its outline;
* ``light_gray``     - an off-white or light grey background with a gradient; any garment,
  light ones often;
* ``coloured``       - a coloured studio background; any garment, sometimes tone-on-tone;
* ``soft_shadow``    - a strong soft drop shadow and contact shadow on a light background;
* ``logo``           - a garment with a large printed logo or text on the chest, any background.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["PRODUCT_KINDS", "GARMENT_TYPES", "ProductSample", "make_product"]

PRODUCT_KINDS = ("white_on_white", "light_gray", "coloured", "soft_shadow", "logo")
GARMENT_TYPES = ("tshirt", "shirt", "longsleeve", "tank", "dress", "skirt", "trousers", "shorts")

_SS = 2  # supersampling of the outline
_SHIFT = 4  # fixed-point bits for cv2.fillPoly


@dataclass
class ProductSample:
    """One synthetic product photo and its true garment region."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    mask: np.ndarray   # (H, W) bool, True = garment
    kind: str          # one of PRODUCT_KINDS
    garment: str = ""  # one of GARMENT_TYPES
    seed: int = 0


# --------------------------------------------------------------------------- outlines


def _fixed(points: np.ndarray) -> np.ndarray:
    """Float pixel coordinates as cv2's fixed-point int32 points (``shift=_SHIFT``)."""
    return np.ascontiguousarray(np.round(np.asarray(points, np.float64) * (1 << _SHIFT)).astype(np.int32))


def _round_corners(points: np.ndarray, radius: float, steps: int = 6) -> np.ndarray:
    """A closed polygon with each corner replaced by a quadratic curve starting ``radius`` before it.

    The cut never takes more than 40% of an edge, so short edges (a cuff, a strap) keep a straight part.
    """
    p = np.asarray(points, np.float64)
    prev, nxt = np.roll(p, 1, axis=0), np.roll(p, -1, axis=0)
    out = []
    t = np.linspace(0, 1, steps)[:, None]
    for a, b, c in zip(prev, p, nxt):
        ab, cb = a - b, c - b
        la, lc = np.linalg.norm(ab), np.linalg.norm(cb)
        if la < 1e-9 or lc < 1e-9:
            continue
        r = min(radius, 0.4 * la, 0.4 * lc)
        s0, s1 = b + ab / la * r, b + cb / lc * r
        out.append((1 - t) ** 2 * s0 + 2 * (1 - t) * t * b + t ** 2 * s1)
    return np.concatenate(out, axis=0)


def _mirror(right: list[tuple[float, float]]) -> np.ndarray:
    """A symmetric closed outline from its right half, listed from the top centre to the bottom centre."""
    r = np.asarray(right, dtype=np.float64)
    left = r[::-1].copy()
    left[:, 0] *= -1
    # drop the centre points duplicated by the mirror
    if abs(r[0, 0]) < 1e-9:
        left = left[:-1]
    if abs(r[-1, 0]) < 1e-9:
        left = left[1:]
    return np.concatenate([r, left], axis=0)


def _sleeve(shoulder, armpit, angle_deg, length, cuff):
    """The two outer points of a sleeve leaving the body between shoulder and armpit."""
    a = np.deg2rad(angle_deg)
    d = np.array([np.cos(a), np.sin(a)])
    n = np.array([-d[1], d[0]])  # pointing down-inwards for a sleeve going right and down
    top = np.asarray(shoulder) + d * length
    bottom = top + n * cuff
    return tuple(top), tuple(bottom)


def _top_half(rng, kind: str, ghost: bool) -> tuple[list, list, dict]:
    """The right half of an upper-body garment (unit body width, y down): the points from the top centre
    down to the armpit, the points of the body's hem, and landmarks."""
    neck_w = rng.uniform(0.13, 0.2)
    back_dip = rng.uniform(0.0, 0.03)
    length = rng.uniform(1.1, 1.45)
    flare = rng.uniform(-0.03, 0.06)
    shoulder_drop = rng.uniform(0.05, 0.1)
    shoulder_x = 0.5 + rng.uniform(-0.02, 0.05)
    armpit_y = rng.uniform(0.3, 0.42)
    hem_curve = rng.uniform(-0.02, 0.04)
    if kind == "tank":
        strap_w = rng.uniform(0.07, 0.13)
        neck_w = rng.uniform(0.12, 0.2)
        armpit_y = rng.uniform(0.35, 0.48)
        x0 = neck_w + strap_w
        upper = [(0.0, back_dip + 0.02), (neck_w, 0.0), (x0, 0.0), (x0 + 0.015, armpit_y * 0.3),
                 (x0 + (0.5 - x0) * 0.45, armpit_y * 0.72), (x0 + (0.5 - x0) * 0.8, armpit_y * 0.93),
                 (0.5, armpit_y)]
    else:
        sleeve_len = rng.uniform(0.25, 0.4) if kind == "tshirt" else rng.uniform(0.8, 1.05)
        if ghost:
            angle = rng.uniform(50, 68) if kind == "tshirt" else rng.uniform(62, 80)
        else:
            angle = rng.uniform(15, 45) if kind == "tshirt" else rng.uniform(35, 72)
        cuff = rng.uniform(0.17, 0.24) if kind == "tshirt" else rng.uniform(0.1, 0.15)
        shoulder = (shoulder_x, shoulder_drop)
        top, bottom = _sleeve(shoulder, (0.5, armpit_y), angle, sleeve_len, cuff)
        if kind == "shirt":  # the collar stands above the shoulders
            upper = [(0.0, back_dip - 0.01), (0.035, -0.05), (neck_w + 0.02, -0.04), (neck_w + 0.03, 0.0)]
        else:
            upper = [(0.0, back_dip), (neck_w, 0.0)]
        # a hanging sleeve meets the body lower: keep its underside outside the body
        bottom = (max(bottom[0], 0.54), bottom[1])
        armpit_y = max(armpit_y, min(bottom[1] - 0.08, 0.55))
        upper += [shoulder, top, bottom, (0.5, armpit_y)]
    if kind == "shirt":  # shirttail: the sides higher than the centre
        hem = [(0.5 + flare, length - 0.08), (0.3, length), (0.0, length + 0.03)]
    else:
        hem = [(0.5 + flare, length), (0.0, length + hem_curve)]
    return upper, hem, {"neck_w": neck_w, "back_dip": back_dip, "armpit_y": armpit_y, "hem_y": length}


def _outline(rng, garment: str, ghost: bool) -> tuple[np.ndarray, dict]:
    """A closed garment outline in garment units (body width 1, y down) and its landmarks."""
    info: dict = {"garment": garment}
    if garment in ("tshirt", "shirt", "longsleeve", "tank"):
        upper, hem, lm = _top_half(rng, garment, ghost)
        right = upper + hem
        info.update(lm)
    elif garment == "dress":
        upper, _, lm = _top_half(rng, "tank" if rng.uniform() < 0.5 else "tshirt", ghost)
        info.update(lm)
        waist_y = max(rng.uniform(0.6, 0.8), lm["armpit_y"] + 0.2)
        waist = rng.uniform(0.4, 0.47)
        hem_half = rng.uniform(0.55, 1.0)
        hem_y = rng.uniform(1.8, 2.6)
        right = upper + [(waist, waist_y), (waist + 0.35 * (hem_half - waist), (waist_y + hem_y) / 2),
                         (hem_half, hem_y), (hem_half * 0.5, hem_y + rng.uniform(0.0, 0.05)),
                         (0.0, hem_y + rng.uniform(0.0, 0.06))]
        info.update(hem_y=hem_y, waist_y=waist_y)
    elif garment == "skirt":
        band = rng.uniform(0.06, 0.1)
        hem_half = rng.uniform(0.5, 0.95)
        length = rng.uniform(0.7, 1.5)
        right = [(0.0, 0.0), (0.5, 0.0), (0.5, band), (0.5 + 0.4 * (hem_half - 0.5), length * 0.45),
                 (hem_half, length), (hem_half * 0.5, length + rng.uniform(0.0, 0.04)),
                 (0.0, length + rng.uniform(0.0, 0.05))]
        info.update(band=band, hem_y=length)
    else:  # trousers, shorts
        long = garment == "trousers"
        band = rng.uniform(0.06, 0.09)
        hip_y = rng.uniform(0.25, 0.35)
        crotch_y = rng.uniform(0.38, 0.55)
        length = rng.uniform(2.1, 2.8) if long else rng.uniform(0.75, 1.0)
        outer = rng.uniform(0.42, 0.62) if long else rng.uniform(0.55, 0.7)
        inner = rng.uniform(0.03, 0.2) if long else rng.uniform(0.05, 0.15)
        inner = min(inner, outer - 0.25)
        right = [(0.0, 0.0), (0.5, 0.0), (0.5, band), (0.53, hip_y),
                 (0.5 + (outer - 0.5) * 0.6, (crotch_y + length) / 2), (outer, length),
                 (inner, length), (inner * 0.8 + 0.02, (crotch_y + length) / 2), (0.0, crotch_y)]
        info.update(band=band, hem_y=length, crotch_y=crotch_y)
    poly = _mirror(right)
    return _round_corners(poly, rng.uniform(0.012, 0.04)), info


# --------------------------------------------------------------------------- colours and textures


def _hsv(h, s, v) -> np.ndarray:
    return cv2.cvtColor(np.uint8([[[h, s, v]]]), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _garment_colour(rng, white: bool = False) -> np.ndarray:
    if white:
        pick = rng.uniform()
        if pick < 0.6:  # white
            return np.full(3, rng.uniform(238, 252), np.float32) + rng.normal(0, 1.5, 3).astype(np.float32)
        if pick < 0.85:  # cream, ivory
            return _hsv(rng.uniform(15, 35), rng.uniform(10, 35), rng.uniform(232, 250))
        return np.full(3, rng.uniform(215, 235), np.float32)  # very light grey
    pick = rng.uniform()
    if pick < 0.15:
        return np.full(3, rng.uniform(225, 252), np.float32)  # white
    if pick < 0.3:
        return np.full(3, rng.uniform(12, 45), np.float32) + rng.normal(0, 3, 3).astype(np.float32)  # black
    if pick < 0.42:
        return np.full(3, rng.uniform(70, 200), np.float32) + rng.normal(0, 4, 3).astype(np.float32)  # greys
    if pick < 0.8:
        return _hsv(rng.uniform(0, 180), rng.uniform(120, 255), rng.uniform(70, 245))  # saturated
    return _hsv(rng.uniform(0, 180), rng.uniform(25, 120), rng.uniform(60, 235))  # muted, pastel


def _smooth_field(rng, h, w, cells, amplitude) -> np.ndarray:
    """Low-frequency noise in [-amplitude, amplitude]-ish, float32 HxW."""
    gh, gw = max(2, int(cells * h / max(h, w)) + 2), max(2, int(cells * w / max(h, w)) + 2)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC) * amplitude


def _texture(rng, h, w, colour, scale) -> tuple[np.ndarray, str]:
    """The garment's fabric colours over the whole frame (float32 HxWx3) and the pattern's name."""
    pick = rng.uniform()
    base = np.full((h, w, 3), colour, np.float32)
    if pick < 0.55:
        return base.copy(), "solid"
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.uniform() < 0.5:
        other = _garment_colour(rng)
    else:
        other = np.clip(colour * rng.uniform(0.5, 0.85) + rng.uniform(-10, 10), 0, 255).astype(np.float32)
    period = scale * rng.uniform(0.03, 0.12)
    if pick < 0.7:  # stripes
        a = np.deg2rad(rng.choice([0.0, 90.0, rng.uniform(0, 180)]))
        u = (xx * np.cos(a) + yy * np.sin(a)) / period
        sel = (u % 1.0) < rng.uniform(0.2, 0.6)
        return np.where(sel[..., None], other, base), "stripes"
    if pick < 0.82:  # checks / plaid: two stripe families blended
        u = (xx / period) % 1.0 < 0.5
        v = (yy / (period * rng.uniform(0.8, 1.25))) % 1.0 < 0.5
        mix = 0.5 * u.astype(np.float32) + 0.5 * v.astype(np.float32)
        return base * (1 - mix[..., None]) + other * mix[..., None], "checks"
    if pick < 0.93:  # all-over print: blobs of two or three colours
        out = base.copy()
        colours = [other, _garment_colour(rng)]
        n = int(rng.integers(40, 160))
        for _ in range(n):
            c = colours[int(rng.integers(len(colours)))]
            cx, cy = int(rng.integers(w)), int(rng.integers(h))
            ax, ay = int(scale * rng.uniform(0.006, 0.03)) + 1, int(scale * rng.uniform(0.006, 0.03)) + 1
            cv2.ellipse(out, (cx, cy), (ax, ay), float(rng.uniform(0, 180)), 0, 360, tuple(float(x) for x in c), -1,
                        cv2.LINE_AA)
        return out, "print"
    # heather / denim grain
    noise = rng.standard_normal((h, w)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), max(0.6, scale / 1500))
    return base * (1 + rng.uniform(0.04, 0.12) * noise[..., None]), "grain"


def _background(rng, kind: str, h: int, w: int, garment_colour: np.ndarray) -> np.ndarray:
    """A studio background, float32 HxWx3."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yn, xn = yy / h - 0.5, xx / w - 0.5
    if kind == "white_on_white" or (kind in ("soft_shadow", "logo") and rng.uniform() < 0.5):
        base = np.full(3, rng.uniform(248, 255), np.float32)
        gradient = rng.uniform(0, 3)
        vignette = rng.uniform(0, 6)
    elif kind == "coloured" or (kind == "logo" and rng.uniform() < 0.5):
        if rng.uniform() < 0.2:  # tone-on-tone: the garment's hue at another value
            hsv = cv2.cvtColor(np.clip(garment_colour, 0, 255).astype(np.uint8)[None, None], cv2.COLOR_RGB2HSV)[0, 0]
            v = float(hsv[2]) + rng.choice([-1, 1]) * rng.uniform(30, 60)
            if not 40 <= v <= 245:
                v = float(hsv[2]) - np.sign(v - 128) * rng.uniform(30, 60)
            base = _hsv(float(hsv[0]), float(hsv[1]) * rng.uniform(0.6, 1.0), float(np.clip(v, 30, 250)))
        else:
            base = _hsv(rng.uniform(0, 180), rng.uniform(30, 200), rng.uniform(110, 245))
        gradient = rng.uniform(5, 25)
        vignette = rng.uniform(5, 30)
    else:  # off-white, light grey
        base = np.full(3, rng.uniform(200, 245), np.float32) + rng.normal(0, 2.5, 3).astype(np.float32)
        gradient = rng.uniform(5, 25)
        vignette = rng.uniform(4, 25)
    a = rng.uniform(0, 2 * np.pi)
    ramp = (xn * np.cos(a) + yn * np.sin(a)) * gradient
    cx, cy = rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15)
    vig = -((xn - cx) ** 2 + (yn - cy) ** 2) * 2 * vignette
    light = ramp + vig
    # a backdrop's faint unevenness (paper sweep, cloth)
    light = light + _smooth_field(rng, h, w, 4, rng.uniform(0.3, 2.0))
    return np.clip(base[None, None, :] + light[..., None] * (base / 255.0 + 0.3)[None, None, :], 0, 255)


def _text(rng) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    words = ["".join(rng.choice(list(letters), size=int(rng.integers(3, 8)))) for _ in range(int(rng.integers(1, 3)))]
    return " ".join(words)


def _draw_print(h, w, rng, centre, size, colours) -> tuple[np.ndarray, np.ndarray]:
    """A chest print: letters, a filled shape, a ring, or a badge with text.

    Returns its colours (uint8 HxWx3) and its coverage (float32 HxW in [0, 1]).
    """
    layer = np.zeros((h, w, 3), np.uint8)
    cover = np.zeros((h, w), np.uint8)
    cx, cy = centre
    pick = rng.uniform()
    c1 = tuple(int(x) for x in np.clip(colours[0], 0, 255))
    c2 = tuple(int(x) for x in np.clip(colours[1], 0, 255))

    def draw(fn, *args, colour, **kw):
        fn(layer, *args, colour, **kw)
        fn(cover, *args, 255, **kw)

    if pick < 0.45:  # text, one or two lines
        font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX,
                               cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX]))
        lines = [_text(rng) for _ in range(int(rng.integers(1, 3)))]
        thick = max(1, int(size * rng.uniform(0.02, 0.07)))
        (tw, th), _ = cv2.getTextSize(max(lines, key=len), font, 1.0, thick)
        fs = size / max(tw, 1)
        y = cy - (len(lines) - 1) * th * fs * 0.8
        for line in lines:
            (lw, lh), _ = cv2.getTextSize(line, font, fs, thick)
            draw(cv2.putText, line, (int(cx - lw / 2), int(y + lh / 2)), font, fs, colour=c1, thickness=thick,
                 lineType=cv2.LINE_AA)
            y += lh * 1.7
    elif pick < 0.65:  # filled shape: a polygon or a star
        r = size / 2
        if rng.uniform() < 0.5:
            n = int(rng.integers(3, 7))
            ang = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, np.pi)
            rad = np.full(n, r)
        else:
            ang = np.linspace(0, 2 * np.pi, 10, endpoint=False) - np.pi / 2
            rad = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1)
        draw(cv2.fillPoly, [_fixed(pts)], colour=c1, lineType=cv2.LINE_AA,
             shift=_SHIFT)
    elif pick < 0.8:  # a ring, sometimes with a dot
        r = int(size / 2)
        draw(cv2.circle, (int(cx), int(cy)), r, colour=c1, thickness=max(2, int(r * 0.25)), lineType=cv2.LINE_AA)
        if rng.uniform() < 0.5:
            draw(cv2.circle, (int(cx), int(cy)), int(r * 0.45), colour=c2, thickness=-1, lineType=cv2.LINE_AA)
    else:  # badge: a filled rectangle with a word in another colour
        hw, hh = size / 2, size * rng.uniform(0.2, 0.45)
        draw(cv2.rectangle, (int(cx - hw), int(cy - hh)), (int(cx + hw), int(cy + hh)), colour=c1, thickness=-1,
             lineType=cv2.LINE_AA)
        font = cv2.FONT_HERSHEY_DUPLEX
        word = _text(rng).split()[0]
        (tw, th), _ = cv2.getTextSize(word, font, 1.0, 2)
        fs = 0.8 * size / max(tw, 1)
        (lw, lh), _ = cv2.getTextSize(word, font, fs, 2)
        draw(cv2.putText, word, (int(cx - lw / 2), int(cy + lh / 2)), font, fs, colour=c2,
             thickness=max(1, int(fs * 2)), lineType=cv2.LINE_AA)
    return layer, cover.astype(np.float32) / 255.0


# --------------------------------------------------------------------------- the photo


def _place(poly: np.ndarray, rng, w: int, h: int, ghost: bool) -> np.ndarray:
    """Tilt, scale and move a garment outline into the frame, with a margin; also the map (A, b): px = A u + b."""
    a = np.deg2rad(rng.uniform(-7, 7)) if not ghost else 0.0
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    poly = poly @ rot.T
    lo, hi = poly.min(0), poly.max(0)
    size = hi - lo
    margin = rng.uniform(0.025, 0.14)
    fill = rng.uniform(0.7, 1.0)
    s = min((1 - 2 * margin) * w / size[0], (1 - 2 * margin) * h / size[1]) * fill
    ext = size * s
    x0 = rng.uniform(margin * w, max(margin * w, w - margin * w - ext[0]))
    y0 = rng.uniform(margin * h, max(margin * h, h - margin * h - ext[1]))
    offset = np.array([x0, y0]) - lo * s
    return poly * s + offset, s, rot * s, offset


def make_product(seed: int, width: int = 768, height: int = 1024, kind: str | None = None) -> ProductSample:
    """Draw one product photo, fixed by ``seed`` (and ``kind``; without it the seed picks one)."""
    if kind is None:
        kind = PRODUCT_KINDS[int(np.random.default_rng([seed, 0x5EED]).integers(len(PRODUCT_KINDS)))]
    if kind not in PRODUCT_KINDS:
        raise ValueError(f"unknown product kind {kind!r}; one of {PRODUCT_KINDS}")
    rng = np.random.default_rng([seed, 0x5EED, PRODUCT_KINDS.index(kind)])
    w, h = int(width), int(height)
    scale = float(max(w, h))

    garment = str(rng.choice(GARMENT_TYPES, p=[0.2, 0.13, 0.12, 0.1, 0.14, 0.1, 0.13, 0.08]))
    if kind == "logo" and garment in ("skirt", "trousers", "shorts"):
        garment = str(rng.choice(["tshirt", "longsleeve", "tank", "dress"]))
    ghost = garment not in ("skirt", "trousers", "shorts") and rng.uniform() < 0.4
    poly, info = _outline(rng, garment, ghost)
    placed, units, rot_s, placed_origin = _place(poly, rng, w, h, ghost)

    # the true region: the outline at twice the size, a pixel is garment when >= 3 of 4 sub-pixels are
    # (coverage > 1/2), and the coverage is the blend weight
    hs, ws = h * _SS, w * _SS
    cover = np.zeros((hs, ws), np.uint8)
    pts = _fixed(placed * _SS)
    cv2.fillPoly(cover, [pts], 255, cv2.LINE_8, _SHIFT)
    alpha = cv2.resize(cover, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    mask = alpha > 0.5

    # colours
    white = kind == "white_on_white" or (kind in ("light_gray", "soft_shadow") and rng.uniform() < 0.3)
    colour = _garment_colour(rng, white=white)
    bg = _background(rng, kind, h, w, colour)
    if white:
        fabric = np.full((h, w, 3), colour, np.float32)
        if rng.uniform() < 0.2:  # a faint white-on-white pattern (seersucker, pinstripe)
            tex, _ = _texture(rng, h, w, colour, scale)
            fabric = 0.85 * fabric + 0.15 * tex
    else:
        fabric, _ = _texture(rng, h, w, colour, scale)

    # fabric shading: folds, a rim darkening at the outline, a ghost mannequin's cylindrical light
    mask_u8 = (alpha > 0.02).astype(np.uint8)
    dist = cv2.distanceTransform(mask_u8, cv2.DIST_L2, 3)
    rim_w = scale * rng.uniform(0.004, 0.015)
    rim = rng.uniform(0.03, 0.12) if white else rng.uniform(0.02, 0.15)
    shade = 1.0 - rim * np.exp(-dist / rim_w)
    shade += _smooth_field(rng, h, w, rng.uniform(4, 10), rng.uniform(0.01, 0.04))
    # creases: a few soft lines, darker on one side
    crease = np.zeros((h, w), np.float32)
    x0, y0 = placed.min(0)
    x1, y1 = placed.max(0)
    for _ in range(int(rng.integers(2, 9))):
        p = (rng.uniform(x0, x1), rng.uniform(y0, y1))
        a = rng.uniform(0, np.pi)
        ln = rng.uniform(0.05, 0.25) * scale
        q = (p[0] + ln * np.cos(a), p[1] + ln * np.sin(a))
        cv2.line(crease, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), float(rng.uniform(0.3, 1.0)),
                 max(1, int(scale * 0.004)), cv2.LINE_AA)
    crease = cv2.GaussianBlur(crease, (0, 0), scale * rng.uniform(0.002, 0.008))
    shade -= crease * rng.uniform(0.05, 0.2)
    if ghost:
        cx = (x0 + x1) / 2
        half = max(1.0, (x1 - x0) / 2)
        xx = (np.arange(w, dtype=np.float32) - cx) / half
        shade *= (1 - rng.uniform(0.04, 0.12) * np.clip(xx, -1, 1) ** 2)[None, :]
    fabric = np.ascontiguousarray(fabric * shade[..., None], dtype=np.float32)

    # details drawn on the fabric: hems, seams, necklines, the inside of a ghost mannequin's neck
    line_col = np.clip(colour * rng.uniform(0.72, 0.9), 0, 255)
    lc = tuple(float(x) for x in line_col)
    lw = max(1, int(scale * 0.0025))

    def to_px(x, y):  # garment units to pixels, as _place mapped the outline
        return placed_origin + rot_s @ np.array([x, y])

    if garment in ("tshirt", "shirt", "longsleeve", "tank", "dress"):
        nw = info["neck_w"]
        front = np.array([to_px(nw * np.cos(t), nw * 0.9 * np.sin(t) + 0.0) for t in np.linspace(0, np.pi, 24)])
        if ghost:
            inner = np.concatenate([front, np.array([to_px(-nw, 0.0), to_px(0, info["back_dip"]), to_px(nw, 0.0)])])
            cv2.fillPoly(fabric, [_fixed(inner)],
                         tuple(float(x) for x in np.clip(colour * rng.uniform(0.55, 0.8), 0, 255)), cv2.LINE_AA,
                         _SHIFT)
        band = max(2, int(scale * rng.uniform(0.004, 0.01)))
        cv2.polylines(fabric, [_fixed(front)], False, lc, band, cv2.LINE_AA,
                      _SHIFT)
        if garment == "shirt":  # placket and buttons
            top, bottom = to_px(0, nw * 0.9), to_px(0, info["hem_y"])
            cv2.line(fabric, tuple(int(v) for v in top), tuple(int(v) for v in bottom), lc, lw, cv2.LINE_AA)
            btn = tuple(float(x) for x in np.clip(rng.choice([colour * 1.05, line_col, [245, 245, 240]]), 0, 255))
            for t in np.linspace(0.15, 0.9, 6):
                p = top + (bottom - top) * t
                cv2.circle(fabric, (int(p[0] + lw * 3), int(p[1])), max(2, int(scale * 0.006)), btn, -1,
                           cv2.LINE_AA)
        if rng.uniform() < 0.5:  # a hem stitch
            hy = info["hem_y"] - 0.04
            a, b = to_px(-0.48, hy), to_px(0.48, hy)
            cv2.line(fabric, tuple(int(v) for v in a), tuple(int(v) for v in b), lc, lw, cv2.LINE_AA)
    else:  # waistband line, fly, a centre crease
        band = info["band"]
        a, b = to_px(-0.5, band), to_px(0.5, band)
        cv2.line(fabric, tuple(int(v) for v in a), tuple(int(v) for v in b), lc, lw * 2, cv2.LINE_AA)
        if garment != "skirt":
            a, b = to_px(0.03, band), to_px(0.03, info["crotch_y"] * 0.8)
            cv2.line(fabric, tuple(int(v) for v in a), tuple(int(v) for v in b), lc, lw, cv2.LINE_AA)

    # a chest print
    if kind == "logo" or (garment in ("tshirt", "longsleeve", "tank", "dress") and rng.uniform() < 0.25):
        size = units * rng.uniform(0.3, 0.6) if kind == "logo" else units * rng.uniform(0.12, 0.3)
        centre = to_px(rng.choice([0.0, 0.0, 0.18]), rng.uniform(0.3, 0.5))
        bgc = bg[int(np.clip(centre[1], 0, h - 1)), int(np.clip(centre[0], 0, w - 1))]
        choices = [bgc, _garment_colour(rng), np.full(3, 250.0), np.full(3, 20.0)]
        c1 = choices[int(rng.integers(len(choices)))]
        c2 = choices[int(rng.integers(len(choices)))]
        layer, pcover = _draw_print(h, w, rng, centre, size, [c1, c2])
        # ink on fabric: the print follows the fabric's shading a little
        ink = layer.astype(np.float32) * (0.5 + 0.5 * shade[..., None])
        fabric = fabric * (1 - pcover[..., None]) + ink * pcover[..., None]

    # shadows on the background
    shadow = np.zeros((h, w), np.float32)
    strong = kind == "soft_shadow"
    if strong or rng.uniform() < 0.45:
        dx, dy = rng.normal(0, 0.015) * scale, rng.uniform(0.0, 0.03) * scale
        if strong:
            dx, dy = rng.normal(0, 0.025) * scale, rng.uniform(0.008, 0.04) * scale
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        drop = cv2.warpAffine(alpha, m, (w, h))
        blur = rng.uniform(0.01, 0.035) if strong else rng.uniform(0.008, 0.03)
        drop = cv2.GaussianBlur(drop, (0, 0), scale * blur)
        shadow = np.maximum(shadow, drop * (rng.uniform(0.2, 0.45) if strong else rng.uniform(0.08, 0.25)))
    if strong or rng.uniform() < 0.35:
        contact = cv2.GaussianBlur(alpha, (0, 0), scale * rng.uniform(0.002, 0.008))
        shadow = np.maximum(shadow, contact * (rng.uniform(0.1, 0.3) if strong else rng.uniform(0.05, 0.15)))
    bg = bg * (1 - shadow[..., None])

    img = fabric * alpha[..., None] + bg * (1 - alpha[..., None])

    # the camera: defocus, noise, JPEG
    sigma = rng.uniform(0.3, 1.0)
    img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0, rng.uniform(0.6, 2.2), img.shape).astype(np.float32)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    ok, enc = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(72, 96))])
    img = np.ascontiguousarray(cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1])
    return ProductSample(image=img, mask=mask, kind=kind, garment=garment, seed=int(seed))
