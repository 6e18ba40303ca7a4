"""The trainer layouts: `--layout vitonhd` and `--layout dresscode` (docs/layouts.md).

Each writes the folders a family of try-on trainers opens, with the arrays of
pipeline/tryon_formats.py, every file of a row in one export frame (--export-size, default
768x1024: the photo fitted without distortion and padded white, labels and masks padded 0,
keypoints moved with it). Names come from the row's input order (`seq`), never from its path:
VITON-HD `{seq:05d}_00`, DressCode `{seq:06d}` plus its `_0`/`_1`/`_2`/`_4`/`_5` suffixes. The
pairs files are made at the end of every run from the whole manifest (`finish`), so a resume
rewrites them whole.

With `--densepose`, both layouts also write the main person's DensePose image as IDM-VTON renders
it (`image-densepose/`, pipeline/densepose_maps.py), and DressCode its `dense/` part map and U/V.

Rows left out of the pairs files (their files are written): `no_person` (the parse shows nobody),
a row without a garment, and for VITON-HD `no_agnostic` (the pose lacks both shoulders or both
hips, so there is no agnostic photo, mask or parse-agnostic).
"""
from __future__ import annotations

import json

import numpy as np

from . import codecs
from . import tryon_formats as tf
from .densepose_maps import fit_uv, render_parts, uv_npz
from .layouts import ExportContext, Layout
from .schema import OK, VtonError

JPEG_QUALITY = 95
# Cloth masks are made on the garment photo shrunk to this long side and enlarged back to the
# frame: ~30% less CPU per row than at 768x1024, for held-out mean IoU 0.982 instead of 0.986
# (bench/cloth_mask_eval.py --max-side 512; bench/RESULTS.md, Cloth masks, "The export's masks").
CLOTH_MASK_SIDE = 512
SPLITS = ("train", "test")
DRESSCODE_CATEGORIES = ("upper_body", "lower_body", "dresses")
# Flags that keep an ok row out of the pairs files.
NOT_PAIRED = {"vitonhd": ("no_person", "no_agnostic"), "dresscode": ("no_person",)}


def _jpeg(pixels: np.ndarray) -> bytes:
    return codecs.encode_jpeg(pixels, JPEG_QUALITY)


def _json(document) -> bytes:
    return json.dumps(document).encode()


def _people_in_frame(context: ExportContext, fit: tf.Fit) -> np.ndarray:
    """(N, 18, 3) keypoints in the frame; none for a no_person row (its JSON holds no people)."""
    if context.people is None or context.no_person:
        return np.zeros((0, 18, 3), np.float32)
    people = np.asarray(context.people, np.float32).reshape(-1, 18, 3)
    return tf.apply_keypoints(people, fit)


def _photo_file(pixels_in_frame: np.ndarray, fit: tf.Fit, own_jpeg: bytes | None) -> bytes:
    """A photo's JPEG in the frame: the photo's own bytes when it fills the frame as it is (no
    resizing, no padding) and they may stand for its pixels (codecs.reusable_jpeg), else encoded."""
    if own_jpeg is not None and tuple(fit.photo_size) == tuple(fit.frame):
        return own_jpeg
    return _jpeg(pixels_in_frame)


def _garment(context: ExportContext) -> tuple[bytes, np.ndarray] | None:
    """(cloth JPEG, cloth mask uint8 0/255), both in the frame; None without a garment."""
    if context.garment is None:
        return None
    name = context.row.get("garment")
    try:
        kept = _kept_garment_mask(context.garment, context.export_size)
        if kept is not None:
            return context.garment, kept
        rgb, decoder = codecs.decode_full(context.garment)
    except Exception as error:  # any decoder failure is this row's error, naming the garment
        raise VtonError(f"garment {name!r} cannot be decoded: {type(error).__name__}: {error}") from None
    from .clothmask import cloth_mask

    own_jpeg = context.garment if codecs.reusable_jpeg(context.garment, decoder) else None
    fit = tf.fit_frame((rgb.shape[1], rgb.shape[0]), context.export_size)
    if fit.scale < 1:
        # A garment photo larger than the frame is shrunk first and masked at the size it is
        # written at: the mask costs about its pixel count, and the full-size mask's detail would
        # be lost to the shrinking anyway. Unpadded, so the frame's border is still the backdrop.
        rgb = tf.apply_image(rgb, tf.Fit(fit.photo_size, fit.size, fit.scale, fit.size, (0, 0)))
        fit = tf.fit_frame(fit.size, context.export_size)
        own_jpeg = None
    mask = cloth_mask(rgb, max_side=CLOTH_MASK_SIDE)
    return _photo_file(tf.apply_image(rgb, fit), fit, own_jpeg), tf.apply_labels(mask, fit)


def _kept_garment_mask(data: bytes, frame: tuple[int, int]) -> np.ndarray | None:
    """The cloth mask of a garment photo whose own bytes are its cloth file (a reusable JPEG of
    the frame's size, codecs.reusable_jpeg), None for any other garment.

    Why: only the mask needs its pixels then, and only at CLOTH_MASK_SIDE, where cloth_mask would
    shrink them to anyway; libjpeg-turbo decodes them at that size in the IDCT (4/8 for 768x1024):
    1.3 ms instead of 2.3 ms for a full decode and a shrink of a generated product photo. The
    DCT's averaging is not INTER_AREA's, so edge pixels can differ; held-out mean IoU 0.9827
    against 0.9822 (bench/RESULTS.md, Cloth masks, "The export's masks").
    """
    from .clothmask import cloth_mask, enlarge_mask

    size = codecs.reusable_jpeg_size(data)
    if size is None or size != tuple(frame) or max(size) <= CLOTH_MASK_SIDE:
        return None
    factor = CLOTH_MASK_SIDE / max(size)
    small, decoder = codecs.decode_working(data, (max(1, round(size[0] * factor)), max(1, round(size[1] * factor))))
    if decoder != codecs.FAST:  # Pillow decoded it: the stream is not known whole, so the bytes are not kept
        return None
    return enlarge_mask(cloth_mask(small), size)


def _cloth_files(context: ExportContext, base: str, name: str) -> dict[str, bytes]:
    """VITON-HD's cloth/ and cloth-mask/ files of the row (none without a garment)."""
    garment = _garment(context)
    if garment is None:
        return {}
    cloth, cloth_mask = garment
    return {f"{base}cloth/{name}.jpg": cloth, f"{base}cloth-mask/{name}.jpg": _jpeg(cloth_mask)}


def _pairs_rows(manifest, layout: str) -> list[dict]:
    """The manifest rows that go into the pairs files, in input order."""
    wanted = ("status", "flags", "garment", "export_name", "split", "category", "seq")
    names = [name for name in wanted if name in manifest.column_names]
    if len(names) < len(wanted):
        return []
    rows = manifest.select(names).to_pylist()
    skip = NOT_PAIRED[layout]
    kept = [row for row in rows if row["status"] == OK and row["garment"] and row["export_name"]
            and not any(flag in skip for flag in (row["flags"] or []))]
    return sorted(kept, key=lambda row: row["seq"])


def _lines(pairs) -> bytes:
    return "".join(f"{person} {cloth}\n" for person, cloth in pairs).encode()


class TrainerLayout(Layout):
    """What the trainer layouts share: no native files, keypoints required, sequential names
    (`name_format` of the row's input order), never derived from the photo's path."""

    kinds = ()
    needs_keypoints = True
    name_format = "{:05d}"

    def path(self, row: dict, kind: str, extension: str) -> None:
        return None  # no native files

    def export_name(self, row: dict) -> str | None:
        seq = row.get("seq")
        return None if seq is None else self.name_format.format(int(seq))


class VitonHDLayout(TrainerLayout):
    """VITON-HD / HR-VITON / StableVITON / IDM-VTON: OUT/<split>/<folder>/<name>..., OUT/<split>_pairs.txt."""

    name = "vitonhd"
    folders = (*SPLITS, *(f"{split}_pairs.txt" for split in SPLITS), "test_pairs_unpaired.txt")
    name_format = "{:05d}_00"

    def export(self, context: ExportContext) -> dict[str, bytes]:
        row = context.row
        if row.get("category") != "upper_body":
            raise VtonError(f"the vitonhd layout takes upper_body rows only; this row's category is "
                            f"{row.get('category')!r} (use --layout dresscode for lower_body and dresses)")
        split, name = row["split"], row["export_name"]
        # The garment first: a garment that cannot be read or decoded is the row's error, and
        # nothing of the row is written. One thread: the mask stage runs one task per reserved
        # CPU, and a second thread here made a 300-photo run on 2 CPUs use ~4% more CPU time
        # (bench/RESULTS.md, Trainer layout export time).
        files = _cloth_files(context, f"{split}/", name)
        files.update(self._person_files(context, split, name))
        return files

    def _person_files(self, context: ExportContext, split: str, name: str) -> dict[str, bytes]:
        size = tuple(context.export_size)
        fit = tf.fit_frame((context.photo.shape[1], context.photo.shape[0]), size)
        photo = tf.apply_image(context.photo, fit)
        labels = tf.apply_labels(context.labels, fit)
        people = _people_in_frame(context, fit)
        main = people[0] if len(people) else None
        lip = tf.to_lip(labels, main)
        base = f"{split}/"
        files = {
            f"{base}image/{name}.jpg": _photo_file(photo, fit, context.photo_jpeg),
            f"{base}image-parse-v3/{name}.png": codecs.encode_png(lip, palette=tf.LIP_PALETTE),
            f"{base}openpose_json/{name}_keypoints.json": _json(tf.openpose_body25_json(people, size)),
        }
        if len(people):
            skeleton = tf.render_body25(np.stack([tf.to_body25(person) for person in people]), size)
        else:
            skeleton = np.zeros((size[1], size[0], 3), np.uint8)
        # Unfiltered RGB rows: lossless, the same pixels, ~1/10 of the CPU of Pillow's filtered encoder
        # on a skeleton of flat colours on black (bench/RESULTS.md, Trainer layout export time).
        files[f"{base}openpose_img/{name}_rendered.png"] = codecs.encode_png(skeleton, filtered=False)
        agnostic = None
        if main is not None:
            try:
                agnostic, region = tf.img_agnostic(photo, lip, main)
            except tf.AgnosticPoseError:
                agnostic = None
        if agnostic is None:
            context.flags.append("no_agnostic")
        else:
            files[f"{base}agnostic-v3.2/{name}.jpg"] = _jpeg(agnostic)
            files[f"{base}agnostic-mask/{name}_mask.png"] = codecs.encode_png(region.view(np.uint8) * 255)
            files[f"{base}image-parse-agnostic-v3.2/{name}.png"] = codecs.encode_png(
                tf.parse_agnostic(lip, main), palette=tf.LIP_PALETTE)
        if context.densepose is not None:  # IDM-VTON's picture of the part map, fitted like the labels
            files[f"{base}image-densepose/{name}.jpg"] = _jpeg(render_parts(tf.apply_labels(context.densepose, fit)))
        return files

    def finish(self, out, manifest) -> None:
        rows = _pairs_rows(manifest, self.name)
        present = set(manifest.column("split").to_pylist()) if "split" in manifest.column_names else set()
        for split in SPLITS:
            if split not in present:
                continue
            names = [row["export_name"] for row in rows if row["split"] == split]
            out.write_bytes(f"{split}_pairs.txt", _lines((f"{n}.jpg", f"{n}.jpg") for n in names))
            if split == "test":  # CatVTON's VITON-HD evaluation reads this one: the next row's cloth
                shifted = names[1:] + names[:1]
                unpaired = ((f"{n}.jpg", f"{m}.jpg") for n, m in zip(names, shifted))
                out.write_bytes("test_pairs_unpaired.txt", _lines(unpaired))
            # IDM-VTON's loader iterates the values of the top-level dict; each record names a cloth
            # file and its tags. We have no garment attributes: tag_info is empty, so its captions
            # carry no garment words ("model is wearing ").
            tagged = {"data": [{"file_name": f"{n}.jpg", "tag_info": []} for n in names]}
            out.write_bytes(f"{split}/vitonhd_{split}_tagged.json", _json(tagged))


class DressCodeLayout(TrainerLayout):
    """DressCode (and LaDI-VTON / IDM-VTON / CatVTON on it): OUT/<category>/{images,label_maps,...}."""

    name = "dresscode"
    folders = DRESSCODE_CATEGORIES
    name_format = "{:06d}"
    needs_densepose_uv = True  # dense/<id>_5_uv.npz

    def export(self, context: ExportContext) -> dict[str, bytes]:
        row = context.row
        category = row.get("category")
        if category not in DRESSCODE_CATEGORIES:
            raise VtonError(f"the dresscode layout takes {', '.join(DRESSCODE_CATEGORIES)} rows; "
                            f"this row's category is {category!r}")
        garment = _garment(context)
        name, size = row["export_name"], tuple(context.export_size)
        fit = tf.fit_frame((context.photo.shape[1], context.photo.shape[0]), size)
        people = _people_in_frame(context, fit)
        main = people[0] if len(people) else np.full((18, 3), np.nan, np.float32)
        base = f"{category}/"
        files = {
            f"{base}images/{name}_0.jpg": _photo_file(tf.apply_image(context.photo, fit), fit, context.photo_jpeg),
            f"{base}label_maps/{name}_4.png": codecs.encode_png(
                tf.dresscode_label_map(tf.apply_labels(context.labels, fit)), palette=tf.DRESSCODE_PALETTE),
            f"{base}keypoints/{name}_2.json": _json(tf.dresscode_keypoints_json(main, size)),
            f"{base}skeletons/{name}_5.jpg": _jpeg(tf.render_dresscode_skeleton(main, size)),
        }
        if garment is not None:
            # LaDI-VTON's DressCode loader whitens the garment photo's background with
            # masks/<id>_1.png (255 = garment); DressCode's own loader does not open it.
            files[f"{base}images/{name}_1.jpg"] = garment[0]
            files[f"{base}masks/{name}_1.png"] = codecs.encode_png(garment[1])
        if context.densepose is not None:
            # The DressCode loaders open dense/<id>_5.png (part index 0..24, nearest-resized, one-hot
            # over 25 channels) and dense/<id>_5_uv.npz (array "uv", resized by torchvision as a
            # float tensor); IDM-VTON's DressCode loader opens image-densepose/<id>_0.jpg.
            parts = tf.apply_labels(context.densepose, fit)
            files[f"{base}dense/{name}_5.png"] = codecs.encode_png(parts)
            if context.densepose_uv is not None:
                files[f"{base}dense/{name}_5_uv.npz"] = uv_npz(fit_uv(context.densepose_uv, fit), parts)
            files[f"{base}image-densepose/{name}_0.jpg"] = _jpeg(render_parts(parts))
        return files

    def finish(self, out, manifest) -> None:
        rows = _pairs_rows(manifest, self.name)
        present = set(manifest.column("category").to_pylist())
        for category in DRESSCODE_CATEGORIES:
            if category not in present:
                continue
            mine = [row for row in rows if row["category"] == category]
            train = [row["export_name"] for row in mine if row["split"] == "train"]
            test = [row["export_name"] for row in mine if row["split"] == "test"]
            out.write_bytes(f"{category}/train_pairs.txt", _lines((f"{n}_0.jpg", f"{n}_1.jpg") for n in train))
            out.write_bytes(f"{category}/test_pairs_paired.txt",
                            _lines((f"{n}_0.jpg", f"{n}_1.jpg") for n in test))
            # Unpaired: each person with the next test row's garment (input order, wrapping round);
            # a category with one test row pairs it with its own garment.
            shifted = test[1:] + test[:1]
            out.write_bytes(f"{category}/test_pairs_unpaired.txt",
                            _lines((f"{n}_0.jpg", f"{m}_1.jpg") for n, m in zip(test, shifted)))
