"""Sink stage: writes each row's files, then the batch's manifest part (a row is done only then).

Each batch becomes one Parquet file under manifest/, written after that batch's files; a part
file is written whole (temporary name + rename, or one PUT), so after a crash the manifest holds
exactly the rows whose outputs are complete.
"""
from __future__ import annotations

import hashlib
import pickle
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .labels import NUM_LABELS
from .layouts import Layout, get_layout
from .schema import FILE_KINDS, LEFT, NUM_KEYPOINTS, OK, TIMINGS
from .storage import OutputFolder

MANIFEST_DIR = "manifest"

MANIFEST_SCHEMA = pa.schema([
    ("id", pa.string()), ("source", pa.string()), ("category", pa.string()),
    ("status", pa.string()), ("error", pa.string()),
    ("width", pa.int32()), ("height", pa.int32()),
    *((f"{kind}_path", pa.string()) for kind in FILE_KINDS),
    ("mask_bbox", pa.list_(pa.int32(), 4)),
    ("mask_area", pa.float32()),
    ("keypoints", pa.list_(pa.float32(), NUM_KEYPOINTS * 3)),
    ("persons", pa.int16()),
    ("flags", pa.list_(pa.string())),
    ("label_fractions", pa.list_(pa.float32(), NUM_LABELS)),
    ("parser", pa.string()), ("pose_model", pa.string()), ("style", pa.string()),
    # --densepose: the main person's box (photo pixels, x0 y0 x1 y1) and score, and how many persons
    # scored at least the threshold (pipeline/densepose/stage.py); null when the stage is off.
    ("densepose_model", pa.string()), ("densepose_persons", pa.int16()),
    ("densepose_box", pa.list_(pa.float32(), 4)), ("densepose_score", pa.float32()),
    ("decoder", pa.string()),
    *((name, pa.float32()) for name in TIMINGS),
    # Trainer layouts (docs/layouts.md): input order, split, garment photo, the export's name and
    # the files the layout wrote for the row (relative to OUT).
    ("seq", pa.int64()), ("split", pa.string()), ("garment", pa.string()),
    ("export_name", pa.string()), ("exported", pa.list_(pa.string())),
])


def _text(values) -> list:
    return [str(v) if v not in (None, "") else None for v in values]


def manifest_table(batch: dict, run_info: dict) -> pa.Table:
    """The manifest rows of a batch, from the stages' typed columns; what a row lacks is null."""
    count = len(batch["id"])
    ok = np.asarray(batch["status"]) == OK

    def per_ok_row(values, convert):
        return [convert(values[i]) if ok[i] else None for i in range(count)]

    def optional(name, default):
        return batch[name] if name in batch else np.full(count, default, dtype=object)

    boxes = optional("mask_bbox", None)
    columns = {
        "id": list(batch["id"]), "source": list(batch["source"]), "category": list(batch["category"]),
        "status": list(batch["status"]), "error": _text(batch["error"]),
        "width": [int(v) or None for v in optional("width", 0)],
        "height": [int(v) or None for v in optional("height", 0)],
        "mask_bbox": [None if b is None or b[0] < 0 else [int(v) for v in b] for b in boxes],
        "mask_area": per_ok_row(optional("mask_area", None), float),
        "flags": [v.split(",") if v else [] for v in optional("flags", "")],
        "decoder": _text(optional("decoder", "")),
        "label_fractions": per_ok_row(optional("label_fractions", None), lambda v: np.asarray(v, np.float32)),
        "split": _text(optional("split", "")), "garment": _text(optional("garment", "")),
        "export_name": _text(optional("export_name", "")),
        "exported": [list(v) if v is not None else [] for v in optional("exported", None)],
    }
    if "seq" in batch:
        columns["seq"] = [int(v) for v in batch["seq"]]
    for kind in FILE_KINDS:
        columns[f"{kind}_path"] = _text(optional(f"{kind}_path", ""))
    if "keypoints" in batch:
        flat = np.asarray(batch["keypoints"], dtype=np.float32).reshape(count, NUM_KEYPOINTS * 3)
        columns["keypoints"] = per_ok_row(flat, lambda v: v)
        columns["persons"] = per_ok_row(np.asarray(batch["persons"]), int)
    if "densepose_persons" in batch:
        columns["densepose_persons"] = per_ok_row(np.asarray(batch["densepose_persons"]), int)
        columns["densepose_box"] = per_ok_row(np.asarray(batch["densepose_box"], np.float32),
                                              lambda box: None if box[0] < 0 else box)
        columns["densepose_score"] = per_ok_row(np.asarray(batch["densepose_score"], np.float32),
                                                lambda score: float(score) if np.isfinite(score) else None)
    for name in TIMINGS:
        if name in batch:  # a stage that did not run (pose off) leaves its timing null
            columns[name] = [float(v) for v in batch[name]]
    for name in ("parser", "pose_model", "style", "densepose_model"):
        columns[name] = [run_info.get(name)] * count
    return pa.table({name: columns.get(name, [None] * count) for name in MANIFEST_SCHEMA.names},
                    schema=MANIFEST_SCHEMA)


def part_name(ids) -> str:
    """Named by the batch's ids: a task that Ray retries rewrites its part instead of adding a copy."""
    digest = hashlib.sha1("\0".join(str(i) for i in ids).encode()).hexdigest()[:20]
    return f"{MANIFEST_DIR}/part-{digest}.parquet"


class WriteStage:
    """Writes each row's files where the layout puts them, then the batch's manifest part;
    returns one small row per input row (id, status, error, timings) for the driver."""

    def __init__(self, out: str, run_info: dict, layout: str | Layout = "native"):
        self.out = OutputFolder(out)
        self.run_info = run_info
        self.layout = get_layout(layout) if isinstance(layout, str) else layout

    def __call__(self, batch: dict) -> dict:
        count = len(batch["id"])
        milliseconds = np.zeros(count, dtype=np.float32)
        paths = {kind: np.full(count, "", dtype=object) for kind in FILE_KINDS}
        export_names = np.full(count, "", dtype=object)
        exported = np.empty(count, dtype=object)
        for row in range(count):
            started = time.perf_counter()
            values = {name: batch[name][row] for name in ("id", "source", "category", "seq", "split") if name in batch}
            for kind in FILE_KINDS:
                data = batch[f"{kind}_bytes"][row] if f"{kind}_bytes" in batch else b""
                wanted = data and kind in self.layout.kinds
                path = self.layout.path(values, kind, str(batch[f"{kind}_ext"][row])) if wanted else None
                if path:
                    self.out.write_bytes(path, data)
                    paths[kind][row] = path
            export_names[row] = self.layout.export_name(values) or ""
            files = batch["export_files"][row] if "export_files" in batch else b""
            written = []
            for path, data in sorted(pickle.loads(files).items()) if files else ():
                self.out.write_bytes(path, data)  # confined to OUT (storage.safe_relative)
                written.append(path)
            exported[row] = written
            milliseconds[row] = (time.perf_counter() - started) * 1000.0
        batch = dict(batch, ms_write=milliseconds, export_name=export_names, exported=exported,
                     **{f"{kind}_path": paths[kind] for kind in FILE_KINDS})
        table = manifest_table(batch, self.run_info)
        buffer = pa.BufferOutputStream()
        pq.write_table(table, buffer)
        self.out.write_bytes(part_name(batch["id"]), buffer.getvalue().to_pybytes())
        result = {name: np.asarray(table.column(name).to_pylist(), dtype=object) for name in ("id", "status", "error")}
        result.update({name: np.nan_to_num(np.asarray(table.column(name).to_pylist(), dtype=np.float32))
                       for name in TIMINGS})
        result.update({name: np.asarray(batch[name], np.float64) for name in LEFT if name in batch})
        result["left_write"] = np.full(count, time.time())
        return result


def read_manifest(out: str, columns: list[str] | None = None) -> pa.Table:
    """All manifest parts of OUT as one table (empty with the schema when there are none)."""
    folder = OutputFolder(out)
    parts = [p for p in folder.list_files(MANIFEST_DIR) if p.endswith(".parquet")]
    if not parts:
        schema = MANIFEST_SCHEMA if columns is None else pa.schema([MANIFEST_SCHEMA.field(c) for c in columns])
        return schema.empty_table()
    tables = [pq.read_table(folder.path(p), filesystem=folder.fs, columns=columns) for p in parts]
    return pa.concat_tables(tables, promote_options="default")


def write_batch(batch: dict, out: str, run_info: dict, layout: str = "native") -> dict:
    """The write stage as a plain function, for Ray tasks."""
    return WriteStage(out, run_info, layout)(batch)


def drop_rows_with_status(out: str, status: str) -> int:
    """Removes rows of a status from the manifest (for --retry-errors); returns how many.

    Each affected part is rewritten whole without those rows, so a crash leaves either the old
    part or the new one; rows removed and not yet redone are simply pending for the next run.
    """
    import pyarrow.compute as pc

    folder = OutputFolder(out)
    removed = 0
    for part in folder.list_files(MANIFEST_DIR):
        if not part.endswith(".parquet"):
            continue
        table = pq.read_table(folder.path(part), filesystem=folder.fs)
        keep = pc.not_equal(table.column("status"), status)
        kept = table.filter(keep)
        if kept.num_rows == table.num_rows:
            continue
        removed += table.num_rows - kept.num_rows
        if kept.num_rows == 0:
            folder.delete(part)
        else:
            buffer = pa.BufferOutputStream()
            pq.write_table(kept, buffer)
            folder.write_bytes(part, buffer.getvalue().to_pybytes())
    return removed
