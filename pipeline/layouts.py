"""Output layouts: where each file of a row goes in OUT. The sink side owns this seam.

The mask stage hands over encoded files keyed by kind (`<kind>_bytes` and `<kind>_ext`, kinds in
`schema.FILE_KINDS`); the write stage asks the run's layout for each file's path and records it
in the manifest as `<kind>_path`. A layout also lists the folders it owns, which `--overwrite`
removes. `--layout` takes a name below or a `package.module:name` reference to a Layout
subclass (CONTRIBUTING.md: "add an output layout").

A layout that writes files of its own (the trainer layouts, pipeline/trainer_layouts.py) lists
the native kinds it wants in `kinds` (the mask stage encodes only those), returns its files per
row from `export(context)` (called in the mask stage, with the full-resolution photo and
labels), and writes the files about the whole OUT (pairs lists) in `finish(out, manifest)` at
the end of every run. The write stage writes the exported files and lists them in the
manifest's `exported` column.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .plugins import resolve
from .schema import FILE_KINDS, VtonError


@dataclass
class ExportContext:
    """What `Layout.export` gets for one ok row.

    photo: uint8 (H, W, 3) RGB at the photo's own size (do not modify it); labels: uint8 (H, W)
    canonical ATR-18 at that size; people: float32 (N, 18, 3) COCO-18 in photo pixels, main person
    first, NaN missing (None when pose is off); no_person: masks.is_no_person's verdict (the row's
    mask is empty); garment: the bytes of the row's garment photo, or None; densepose,
    densepose_uv: the DensePose stage's maps in the photo's frame (below); photo_jpeg: the photo's own
    JPEG bytes when they may stand for its pixels (below); row: the row's values
    (id, source, category, seq, split, garment, export_name); export_size: (width, height) of
    --export-size; flags: quality flags the export adds (appended to the row's flags).
    """

    photo: object
    labels: object
    people: object
    no_person: bool
    garment: bytes | None
    row: dict
    export_size: tuple[int, int] = (768, 1024)
    flags: list = field(default_factory=list)
    densepose: object = None  # uint8 (H, W) part index 0..24 of the main person (--densepose), else None
    densepose_uv: object = None  # float32 (2, H, W) U and V, when the layout asks for them (needs_densepose_uv)
    # The photo's own bytes when they can be written unchanged as its JPEG (codecs.reusable_jpeg),
    # else None: a layout writes them for a photo that already has the frame's size.
    photo_jpeg: bytes | None = None


class Layout:
    """Maps (row, kind) to a path relative to OUT. Subclasses must be importable and argument-free
    to construct: every write task builds its own from the layout's name."""

    name = "layout"
    folders: tuple[str, ...] = ()  # top-level folders (or files) of OUT this layout writes (--overwrite removes them)
    kinds: tuple[str, ...] = FILE_KINDS  # the native file kinds it writes; the mask stage encodes only these
    needs_keypoints = False  # a run without keypoints (--pose none) is refused at start
    needs_densepose_uv = False  # the DensePose stage also sends U/V (DressCode's dense/*_uv.npz)

    def export_name(self, row: dict) -> str | None:
        """The row's name in the export (from its `seq`), recorded in the manifest; None: no export."""
        return None

    def export(self, context: ExportContext) -> dict[str, bytes]:
        """The row's own files, {path relative to OUT: bytes}; raise VtonError to make it an error row
        (none of its files is written)."""
        return {}

    def finish(self, out, manifest) -> None:
        """At the end of every run (a resume with nothing to do included): files made from the whole
        manifest (an Arrow table of every row so far), written through `out` (storage.OutputFolder)."""

    def path(self, row: dict, kind: str, extension: str) -> str | None:
        """The file's path relative to OUT, or None for a kind this layout does not write.

        row: the row's manifest values so far (`id`, `source`, `category`, ...); extension: the
        encoded file's, with its dot (".png", ".jpg", ".json").
        """
        raise NotImplementedError


class NativeLayout(Layout):
    """This project's own layout (README, Outputs): one folder per kind, named by the row's id."""

    name = "native"
    FOLDERS = {"mask": "masks", "masked": "masked", "parse": "parse", "pose": "pose", "crop": "crops",
               "densepose": "densepose"}
    folders = tuple(FOLDERS.values())

    def path(self, row: dict, kind: str, extension: str) -> str | None:
        return f"{self.FOLDERS[kind]}/{row['id']}{extension}"


# Built-ins may be references (imported when used): the trainer layouts pull in the export arrays.
LAYOUTS = {"native": NativeLayout, "vitonhd": "pipeline.trainer_layouts:VitonHDLayout",
           "dresscode": "pipeline.trainer_layouts:DressCodeLayout"}


def get_layout(name: str) -> Layout:
    found = resolve(name, LAYOUTS, "layout")
    if isinstance(found, type) and issubclass(found, Layout):
        return found()
    if isinstance(found, Layout):
        return found
    raise VtonError(f"layout {name!r} is not a Layout subclass (got {type(found).__name__})")
