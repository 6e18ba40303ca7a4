"""Mask stage: full-resolution masks, composites and encoded output files for each row.

The label map comes at the working size; it is upsampled with nearest neighbour to the photo's
own size and the mask geometry runs there, so mask edges are at photo resolution and the
geometry's size-relative constants see the real height. Everything leaves this stage encoded
(PNG/JPEG/JSON bytes), so full-resolution pixels never enter Ray's object store.
"""
from __future__ import annotations

import json
import pickle
import posixpath
import time

import cv2
import numpy as np

from . import codecs, fastmask, masks, storage
from .densepose_maps import DENSEPOSE_OTHER_PERSON, NO_DENSEPOSE_PERSON, same_person
from .densepose_maps import PALETTE as DENSEPOSE_PALETTE
from .densepose_maps import paste as paste_densepose
from .labels import NUM_LABELS, PALETTE
from .layouts import ExportContext, Layout, get_layout
from .pose_files import to_openpose_json
from .schema import ERROR, FILE_KINDS, OK, PENDING, SKIPPED, VtonError

# The row values a layout's export sees (those the batch has).
ROW_VALUES = ("id", "source", "category", "seq", "split", "garment")

FILLS = {"green": (0, 255, 0), "gray": (127, 127, 127)}
JPEG_QUALITY = 95


def photo_extension(source: str) -> str:
    """Composites of JPEG photos stay JPEG; everything else is written as lossless PNG."""
    return ".jpg" if posixpath.splitext(source)[1].lower() in (".jpg", ".jpeg") else ".png"


def encode_png(pixels: np.ndarray) -> bytes:
    return codecs.encode_png(pixels)


def encode_photo(pixels: np.ndarray, extension: str) -> bytes:
    return codecs.encode_jpeg(pixels, JPEG_QUALITY) if extension == ".jpg" else codecs.encode_png(pixels)


def encode_parse(labels: np.ndarray) -> bytes:
    """A palette PNG: pixel values are the canonical label ids, the palette only for viewing."""
    return codecs.encode_png(labels, palette=PALETTE)


def composite(photo: np.ndarray, mask: np.ndarray, fill: str, inplace: bool = False) -> np.ndarray:
    return fastmask.composite(photo, mask, FILLS[fill], inplace=inplace)


def scale_keypoints(keypoints: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """(…, 18, 3) x, y, score from a (width, height) frame to another; NaN stays NaN."""
    scaled = np.array(keypoints, dtype=np.float32, copy=True)
    scaled[..., 0] *= to_size[0] / from_size[0]
    scaled[..., 1] *= to_size[1] / from_size[1]
    return scaled


class MaskStage:
    """Builds each row's outputs; a failure in one row becomes that row's error.

    Files leave encoded and keyed by kind: `<kind>_bytes` and `<kind>_ext` (b"" and "" for a
    file the row does not have); the output layout names them in the write stage. Columns stay
    typed for every row (empty strings/bytes, -1 boxes, NaN fractions) because Ray Data turns
    each batch into Arrow on its own and an all-null column would lose its type.
    """

    DROPPED = ("image", "labels", "data", "people", "pose_flag", "skip_reason",  # large or consumed here
               "densepose_parts", "densepose_uv", "densepose_origin")

    def __init__(self, style: str = "rect", fill: str = "green", ootd_variant: str = "hd",
                 layout: str | Layout = "native", export_size: str | tuple[int, int] = "768x1024",
                 person_check: bool = True):
        if fill not in FILLS:
            raise ValueError(f"unknown fill {fill!r} (expected {', '.join(FILLS)})")
        self.style, self.fill, self.ootd_variant = style, fill, ootd_variant
        self.person_check = bool(person_check)  # --no-person-check: never flag no_person
        self.layout = get_layout(layout) if isinstance(layout, str) else layout
        if isinstance(export_size, str):
            export_size = tuple(int(v) for v in export_size.lower().split("x"))
        self.export_size = tuple(export_size)

    def __call__(self, batch: dict) -> dict:
        count = len(batch["id"])
        status = np.array(batch["status"], dtype=object)
        error = np.array(batch["error"], dtype=object)
        outputs = {}
        for kind in FILE_KINDS:
            outputs[f"{kind}_ext"] = np.full(count, "", dtype=object)
            outputs[f"{kind}_bytes"] = np.full(count, b"", dtype=object)
        outputs["flags"] = np.full(count, "", dtype=object)
        # A layout's own files travel to the write stage as one pickled {path: bytes} per row (b"": none).
        outputs["export_files"] = np.full(count, b"", dtype=object)
        outputs["mask_bbox"] = np.full((count, 4), -1, dtype=np.int32)
        outputs["label_fractions"] = np.full((count, NUM_LABELS), np.nan, dtype=np.float32)
        outputs["mask_area"] = np.full(count, np.nan, dtype=np.float32)
        if "people" in batch:  # keypoints leave this stage in photo pixels
            outputs["keypoints"] = np.full((count, 18, 3), np.nan, dtype=np.float32)
        milliseconds = np.zeros(count, dtype=np.float32)
        for row in range(count):
            if status[row] not in (PENDING, SKIPPED):
                continue
            started = time.perf_counter()
            try:
                if status[row] == SKIPPED and "skip_reason" in batch and batch["skip_reason"][row]:
                    outputs["flags"][row] = str(batch["skip_reason"][row])  # nothing to write
                elif status[row] == SKIPPED:
                    self._passthrough(batch, row, outputs)
                else:
                    self._compose(batch, row, outputs)
                    status[row] = OK
            except Exception as failure:  # one bad row must not take its batch down
                # A VtonError (a layout refusing the row, a garment that cannot be read) says it all.
                status[row], error[row] = ERROR, (str(failure) if isinstance(failure, VtonError) else
                                                  f"mask stage failed: {type(failure).__name__}: {failure}")
                for kind in FILE_KINDS:
                    outputs[f"{kind}_ext"][row], outputs[f"{kind}_bytes"][row] = "", b""
                outputs["export_files"][row] = b""
            milliseconds[row] = (time.perf_counter() - started) * 1000.0
        out = {k: v for k, v in batch.items() if k not in self.DROPPED}
        out.update(outputs, status=status, error=error, ms_mask=milliseconds,
                   left_mask=np.full(count, time.time()))
        return out

    def _passthrough(self, batch: dict, row: int, outputs: dict) -> None:
        extension = posixpath.splitext(batch["source"][row])[1].lower() or ".jpg"
        outputs["masked_ext"][row] = extension
        outputs["masked_bytes"][row] = batch["data"][row]

    def _compose(self, batch: dict, row: int, outputs: dict) -> None:
        source, category = batch["source"][row], batch["category"][row]
        photo, decoder = codecs.decode_full(batch["data"][row])  # writable: the composite is drawn into it
        height, width = photo.shape[:2]
        working = batch["labels"][row]
        labels = cv2.resize(working, (width, height), interpolation=cv2.INTER_NEAREST)
        keypoints = persons = None
        has_pose = "people" in batch
        if has_pose:
            people = scale_keypoints(batch["people"][row], (working.shape[1], working.shape[0]), (width, height))
            persons = int(batch["persons"][row])
            keypoints = outputs["keypoints"][row] = people[0]
        # The geometry runs on the body's box where that is exact (pipeline/fastmask.py); the
        # main person is shared by the mask and the flags.
        body = fastmask.body_box(labels)
        person = fastmask.main_person(labels, body)
        # The one no_person rule (masks.is_no_person), on the working-size parse: it measures shares
        # on a fixed grid, so the size does not matter. Such a row keeps status ok with an empty mask.
        no_person = self.person_check and masks.is_no_person(working)
        if no_person:
            mask = np.zeros(labels.shape, np.uint8)
        else:
            mask = fastmask.make_mask(labels, keypoints, category, self.style, ootd_variant=self.ootd_variant,
                                      person=person, box=body)
        box = fastmask.mask_bbox(mask, fastmask.mask_region(self.style, body))
        extension = photo_extension(source)
        kinds = self.layout.kinds  # only the native kinds the layout writes are encoded
        densepose = densepose_uv = None
        if "densepose_parts" in batch:  # the stage's crop of the main person, pasted into the photo's frame
            densepose, densepose_uv = paste_densepose(
                batch["densepose_parts"][row], batch["densepose_origin"][row], (height, width),
                batch["densepose_uv"][row] if self.layout.needs_densepose_uv else None)
        export_flags = self._export(batch, row, outputs, photo, decoder, labels,
                                    people[:persons] if has_pose else None,
                                    no_person, densepose, densepose_uv)  # before the composite paints the photo
        files = {}
        if densepose is not None and "densepose" in kinds:
            files["densepose"] = (".png", codecs.encode_png(densepose, palette=DENSEPOSE_PALETTE))
        if "mask" in kinds:
            files["mask"] = (".png", encode_png(mask))
        if "parse" in kinds:
            files["parse"] = (".png", encode_parse(labels))
        if self.style == "crop" and box is not None and "crop" in kinds:  # cut before the composite
            x0, y0, x1, y1 = box
            files["crop"] = (extension, encode_photo(photo[y0:y1, x0:x1], extension))
        if "masked" in kinds:
            masked = fastmask.composite(photo, mask, FILLS[self.fill], region=box, inplace=True)
            files["masked"] = (extension, encode_photo(masked, extension))
        if has_pose and "pose" in kinds:
            document = to_openpose_json(list(people[:persons]), 0, canvas_size=(width, height))
            files["pose"] = (".json", json.dumps(document).encode())
        for kind, (file_extension, data) in files.items():
            outputs[f"{kind}_ext"][row], outputs[f"{kind}_bytes"][row] = file_extension, data
        if box is not None:
            outputs["mask_bbox"][row] = box
        outputs["mask_area"][row] = float(np.count_nonzero(mask)) / mask.size
        outputs["label_fractions"][row] = fastmask.label_fractions_from_working(working, (width, height))
        flags = masks.quality_flags(labels, keypoints, persons, category, mask, person=person, no_person=no_person)
        if densepose is not None and not no_person:
            if int(batch["densepose_persons"][row]) == 0:
                flags.append(NO_DENSEPOSE_PERSON)
            elif keypoints is not None and same_person(batch["densepose_box"][row], keypoints) is False:
                flags.append(DENSEPOSE_OTHER_PERSON)
        if "pose_flag" in batch and batch["pose_flag"][row]:  # --pose-from: the row had no keypoint file
            flags.append(str(batch["pose_flag"][row]))
        flags.extend(flag for flag in export_flags if flag not in flags)
        outputs["flags"][row] = ",".join(flags)

    def _export(self, batch: dict, row: int, outputs: dict, photo, decoder: str, labels, people, no_person: bool,
                densepose=None, densepose_uv=None) -> list[str]:
        """The layout's own files of the row (pickled into `export_files`); returns the flags it adds."""
        values = {name: batch[name][row] for name in ROW_VALUES if name in batch}
        values = {name: (value.item() if isinstance(value, np.generic) else value) for name, value in values.items()}
        values["export_name"] = self.layout.export_name(values)
        if values["export_name"] is None:
            return []
        garment = values.get("garment") or None
        data = None
        if garment:
            try:
                data = storage.read_bytes(str(garment))
            except Exception as error:  # missing, unreadable: the row's error, naming the garment
                missing = isinstance(error, FileNotFoundError)
                reason = "does not exist" if missing else f"{type(error).__name__}: {error}"
                raise VtonError(f"garment {garment!r} cannot be read: {reason}") from None
        context = ExportContext(photo=photo, labels=labels, people=people, no_person=bool(no_person),
                                garment=data, row=values, export_size=self.export_size, densepose=densepose,
                                densepose_uv=densepose_uv, photo_jpeg=(batch["data"][row] if codecs.reusable_jpeg(
                                    batch["data"][row], decoder) else None))
        files = self.layout.export(context)
        if files:
            outputs["export_files"][row] = pickle.dumps(dict(files), protocol=pickle.HIGHEST_PROTOCOL)
        return list(context.flags)


def mask_batch(batch: dict, style: str = "rect", fill: str = "green", ootd_variant: str = "hd",
               layout: str = "native", export_size: str = "768x1024", person_check: bool = True) -> dict:
    """The mask stage as a plain function, for Ray tasks."""
    codecs.one_cv2_thread()
    return MaskStage(style=style, fill=fill, ootd_variant=ootd_variant, layout=layout,
                     export_size=export_size, person_check=person_check)(batch)
