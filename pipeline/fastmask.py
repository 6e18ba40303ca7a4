"""Cheaper twins of the mask stage's full-resolution passes, each giving today's result.

Why: per 768x1024 photo the mask stage spends ~10 ms of CPU in mask geometry and flags and the
composite (issue 18), nearly all of it in passes over the whole photo-sized label map although
the person covers a fraction of it: main_person's closing and connected components (~4 ms),
label_fractions' bincount (~2 ms), the composite's boolean-index fill (~2 ms). Here each pass
runs on the bounding box of the non-background pixels (or of the mask), which provably holds
every pixel the result depends on, so the results are bit-equal to pipeline.masks' functions
(tests/test_fastmask.py compares them on generated people at 768x1024 and 1536x2048):

* main_person: closing + largest 8-connected component on the body's box grown by twice the
  closing radius (outside it the closing is 0 everywhere: main_person's docstring proves it),
  region labels in uint16 (half the memory traffic of int32; an overflow falls back to int32);
* make_mask: styles ``rect`` and ``crop`` (no size-relative constants) on the body's box;
  ``parse`` and ``ootd`` are delegated to pipeline.masks unchanged (their reach is relative
  to the full height);
* label_fractions: the histogram of the body's box, the rest of the map being background;
  label_fractions_from_working counts the working-size map instead, each pixel weighted by
  how many times the nearest-neighbour upsampling repeats it (1/3 to 1/7 of the pixels);
* composite: the fill written with cv2.copyTo inside the mask's box, optionally in place.

The full-size label map stays the input (the parse PNG and the mask need it anyway); nothing
here changes a mask edge or a flag. Only pipeline.masks' public names are used. Not made
cheaper: masks.quality_flags (its bincount over the person's pixels costs the same on a crop)
and the parse/ootd styles' full-size dilations.
"""
from __future__ import annotations

import cv2
import numpy as np

from . import masks
from .labels import BACKGROUND, NUM_LABELS

Box = tuple[int, int, int, int]  # x0, y0, x1, y1; x1 and y1 exclusive (masks.mask_bbox's order)

# Styles whose mask lies inside the main person's garment pixels' bounding boxes and whose
# geometry has no size-relative constant: computing them on a crop is exact.
CROPPABLE_STYLES = ("rect", "crop")


def body_box(labels: np.ndarray) -> Box | None:
    """(x0, y0, x1, y1) of the non-background pixels; None when there are none.

    Why: every person, garment and mask pixel of the rect/crop styles lies inside it, so the
    functions below can work on this box instead of the whole map (one cheap cv2 pass).
    """
    labels = _labels(labels)
    x, y, w, h = cv2.boundingRect(_non_background(labels))
    if w == 0 or h == 0:
        return None
    return x, y, x + w, y + h


def main_person(labels: np.ndarray, box: Box | None | str = "auto") -> np.ndarray:
    """Today's masks.main_person(labels), bit-equal, at a fraction of the cost.

    Why it is exact: the closing is a dilation then an erosion by a square of radius r, with
    OpenCV's default borders (outside the image counts as 0 for the dilation, 1 for the erosion).
    Let B be the body's box and C = B grown by 2r (clipped to the image). The dilation is 0 at
    every pixel farther than r from B, so it is the same whether computed on C or on the whole
    map, and 0 outside C. An erosion output pixel whose window stays inside C (or leaves only
    through the image border) reads the same values in both. One whose window leaves C
    through C's inner side lies farther than 2r - r = r from B, where the dilation, hence the
    closing, is 0 in both. So the closing on C equals today's there and is 0 outside C, and
    so are its 8-connected regions. C starts on even coordinates so OpenCV's 2x2-block
    labelling scans it like the full map (the same region wins an exact area tie).

    box: body_box(labels) when the caller has it, "auto" to compute it here.
    """
    labels = _labels(labels)
    if isinstance(box, str):
        box = body_box(labels)
    person = np.zeros(labels.shape, bool)
    if box is None:
        return person
    height, width = labels.shape
    radius = _scaled_radius(masks.PERSON_CLOSING, height)
    margin = _closing_margin(radius)
    x0, y0, x1, y1 = box
    x0, y0 = max(0, x0 - margin) & ~1, max(0, y0 - margin) & ~1
    x1, y1 = min(width, x1 + margin), min(height, y1 + margin)
    body = _non_background(labels[y0:y1, x0:x1])
    if radius > 0:
        kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
        body = cv2.morphologyEx(body, cv2.MORPH_CLOSE, kernel)
    person[y0:y1, x0:x1] = _largest_component(body)
    return person


def _non_background(labels: np.ndarray) -> np.ndarray:
    """uint8 0/1 of the non-background pixels (numpy: cv2.compare with a scalar misreads 1x1 maps)."""
    return (labels != BACKGROUND).view(np.uint8)


def _closing_margin(radius: int) -> int:
    return 2 * radius


def _largest_component(body: np.ndarray) -> np.ndarray:
    """bool: the largest 8-connected region of a 0/non-0 uint8 image (masks._largest_component)."""
    # Plain labelling and a histogram: the same areas as connectedComponentsWithStats at a
    # fraction of its cost (16-bit labels keep calcHist on its fast path; its float32 counts are
    # exact up to 2**24 pixels per region).
    try:  # uint16 labels: OpenCV raises (never wraps) past 65535 regions
        count, components = cv2.connectedComponents(body, connectivity=8, ltype=cv2.CV_16U)
        areas = None if count <= 2 else cv2.calcHist([components], [0], None, [count], [0, count]).ravel()
    except cv2.error:
        count, components = cv2.connectedComponents(body, connectivity=8, ltype=cv2.CV_32S)
        areas = None if count <= 2 else np.bincount(components.ravel(), minlength=count)
    if count <= 1:
        return np.zeros(body.shape, bool)
    if count == 2:
        return body != 0
    largest = 1 + int(np.argmax(areas[1:]))
    return components == largest


def make_mask(labels, keypoints, category, style="rect", *, ootd_variant="hd", person=None,
              box: Box | None | str = "auto") -> np.ndarray:
    """Today's masks.make_mask, bit-equal; the rect and crop styles run on the body's box.

    Why: a rect mask is the union of the main person's garment rectangles minus shoe pixels,
    a crop mask the box of the main person's garments: both lie inside the body's box and use
    no size-relative constant, so the same function on the crop, pasted back, is the same mask
    for the box's share of the cost (a third to four fifths). parse and ootd reach a fraction of
    the full height around the garments (and ootd draws arm bands from keypoints): they run
    full-size in pipeline.masks.
    Arguments and errors are masks.make_mask's (validation happens there in every case).
    """
    if style not in CROPPABLE_STYLES:
        return masks.make_mask(labels, keypoints, category, style, ootd_variant=ootd_variant, person=person)
    labels = _labels(labels)
    if isinstance(box, str):
        box = body_box(labels)
    if person is None:
        person = main_person(labels, box)
    mask = np.zeros(labels.shape, np.uint8)
    if box is None:  # no person: an empty mask, after the same argument checks as today
        masks.make_mask(labels[:0, :0], keypoints, category, style, ootd_variant=ootd_variant,
                        person=np.zeros((0, 0), bool))
        return mask
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = masks.make_mask(labels[y0:y1, x0:x1], keypoints, category, style,
                                         ootd_variant=ootd_variant, person=np.asarray(person, bool)[y0:y1, x0:x1])
    return mask


def mask_region(style: str, box: Box | None) -> Box | None | str:
    """A box known to hold every nonzero pixel of ``style``'s mask ("auto": the whole map).

    Why: lets mask_bbox and composite skip the rest of the map for the rect and crop styles.
    """
    return box if style in CROPPABLE_STYLES else "auto"


def mask_bbox(mask: np.ndarray, region: Box | None | str = "auto") -> Box | None:
    """masks.mask_bbox(mask), reading only ``region`` (mask_region's answer) when given."""
    if region is None:
        return None
    if isinstance(region, str):
        return masks.mask_bbox(mask)
    x0, y0, x1, y1 = region
    inner = masks.mask_bbox(mask[y0:y1, x0:x1])
    if inner is None:
        return None
    return inner[0] + x0, inner[1] + y0, inner[2] + x0, inner[3] + y0


def label_fractions(labels: np.ndarray, box: Box | None | str = "auto") -> np.ndarray:
    """Today's masks.label_fractions(labels), bit-equal: float32 (18,) shares per label.

    Why: outside the body's box every pixel is background, so only the box is counted (the
    background's count is the rest of the map). The histogram reads the uint8 map as uint16
    pairs: np.bincount then walks half as many (wider) elements, and the 65536 pair bins fold
    back into 256 per-byte counts. Counts are exact integers, divided as today.
    """
    labels = _labels(labels)
    if labels.size == 0:
        return np.zeros(NUM_LABELS, np.float32)
    if isinstance(box, str):
        box = body_box(labels)
    counts = np.zeros(256, np.int64)
    if box is not None:
        x0, y0, x1, y1 = box
        counts += _byte_histogram(labels[y0:y1, x0:x1])
    counts[BACKGROUND] += labels.size - counts.sum()
    return (counts[:NUM_LABELS] / labels.size).astype(np.float32)


def _byte_histogram(pixels: np.ndarray) -> np.ndarray:
    """int64 (256,): how many times each byte value occurs in a 2-D uint8 array."""
    if pixels.shape[1] % 2:  # an odd width: the last column on its own
        last = np.bincount(pixels[:, -1], minlength=256)
        pixels = pixels[:, :-1]
    else:
        last = 0
    if pixels.size == 0:
        return np.zeros(256, np.int64) + last
    pairs = np.bincount(np.ascontiguousarray(pixels).view(np.uint16).ravel(), minlength=65536).reshape(256, 256)
    # Each uint16 holds two pixels; whichever byte order, one is the row index, one the column.
    return pairs.sum(axis=0) + pairs.sum(axis=1) + last


def label_fractions_from_working(working: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """masks.label_fractions of the working-size map upsampled to ``size`` = (width, height) with
    cv2.resize(..., INTER_NEAREST), bit-equal, without reading the upsampled map.

    Why: the photo-sized map repeats each working row and column a whole number of times
    (1 or 2 at 768x1024, 2 or 3 at 1536x2048); counting the working map's pixels weighted by
    those repeats gives the same integer counts from 1/2 to 1/7 of the pixels. The repeats come
    from cv2.resize itself (an index ramp upsampled the same way), so they follow OpenCV's
    rounding. Each pixel's label (18+ folded into one bucket) and its row and column repeat
    classes are packed into one byte and histogrammed once; only the body's box is counted.
    """
    working = _labels(working)
    width, height = int(size[0]), int(size[1])
    total = width * height
    if total == 0:
        return np.zeros(NUM_LABELS, np.float32)
    if working.size == 0:
        raise ValueError("an empty working map cannot be upsampled")
    if width < working.shape[1] or height < working.shape[0]:  # a photo smaller than the working map:
        return label_fractions(cv2.resize(working, (width, height), interpolation=cv2.INTER_NEAREST))  # cheap
    row_repeats = np.bincount(_nearest_index(working.shape[0], height), minlength=working.shape[0])
    col_repeats = np.bincount(_nearest_index(working.shape[1], width), minlength=working.shape[1])
    counts = np.zeros(NUM_LABELS + 1, np.int64)  # the last bucket: ids 18..255
    box = body_box(working)
    if box is not None:
        x0, y0, x1, y1 = box
        row_values, row_class = np.unique(row_repeats[y0:y1], return_inverse=True)
        col_values, col_class = np.unique(col_repeats[x0:x1], return_inverse=True)
        classes = len(row_values) * len(col_values)
        if classes * (NUM_LABELS + 1) > 256:  # not seen with OpenCV's nearest; exact anyway
            full = cv2.resize(working, (width, height), interpolation=cv2.INTER_NEAREST)
            return label_fractions(full)
        fold = (np.minimum(np.arange(256), NUM_LABELS) * classes).astype(np.uint8)
        codes = cv2.LUT(working[y0:y1, x0:x1], fold)
        codes += (row_class.astype(np.uint8)[:, None] * np.uint8(len(col_values))
                  + col_class.astype(np.uint8)[None, :])
        histogram = _byte_histogram(codes)[:classes * (NUM_LABELS + 1)]
        weights = np.outer(row_values, col_values).ravel()
        counts = (histogram.reshape(NUM_LABELS + 1, classes) * weights).sum(axis=1)
    counts[BACKGROUND] += total - counts.sum()
    return (counts[:NUM_LABELS] / total).astype(np.float32)


_INDEX_CACHE: dict[tuple[int, int], np.ndarray] = {}


def _nearest_index(source: int, target: int) -> np.ndarray:
    """For each of ``target`` output positions, the source position cv2's INTER_NEAREST reads."""
    key = (source, target)
    if key not in _INDEX_CACHE:
        if len(_INDEX_CACHE) > 64:
            _INDEX_CACHE.clear()
        ramp = np.arange(source, dtype=np.int32).reshape(1, source)
        _INDEX_CACHE[key] = cv2.resize(ramp, (target, 1), interpolation=cv2.INTER_NEAREST).ravel()
    return _INDEX_CACHE[key]


def composite(photo: np.ndarray, mask: np.ndarray, colour, *, region: Box | None | str = "auto",
              inplace: bool = False) -> np.ndarray:
    """compose.composite: the photo with the mask's pixels (mask > 0) set to ``colour`` (RGB).

    Why: today's photo.copy() plus a boolean-index assignment costs ~2 ms per 768x1024 photo;
    cv2.copyTo inside a box that holds the mask, written into the photo itself (inplace=True,
    when the caller no longer needs the original: decode_full returns a writable array), costs
    ~0.2-0.6 ms. region: any box holding every mask pixel (mask_bbox's or mask_region's
    answer), None for an empty mask, "auto" to find the mask's box here.
    """
    out = photo if inplace and photo.flags.writeable else photo.copy()
    box = mask_bbox(mask) if isinstance(region, str) else region
    if box is None:
        return out
    x0, y0, x1, y1 = box
    target = out[y0:y1, x0:x1]
    fill = np.empty_like(target)
    fill[...] = np.asarray(colour, np.uint8)
    cv2.copyTo(fill, _u8(mask[y0:y1, x0:x1]), target)
    return out


def _u8(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    return mask.view(np.uint8) if mask.dtype == bool else mask


def _labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2-D label map, got shape {labels.shape}")
    if labels.dtype != np.uint8:
        if labels.size and (labels.min() < 0 or labels.max() > 255):
            raise ValueError("labels must lie in 0..255")
        labels = labels.astype(np.uint8)
    return labels


def _scaled_radius(pixels_at_512, height) -> int:
    # masks' rule (its helper is private): lengths are fractions of the height at 512 px.
    return int(round(pixels_at_512 * height / masks.REFERENCE_HEIGHT))
