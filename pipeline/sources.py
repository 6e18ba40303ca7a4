"""Turns INPUT (a folder, a glob, or a manifest) into the run's rows: id, source, category.

Listing is cheap and happens in the driver; photos are only read by the decode stage. Problems
that belong to one row (an empty path cell, an unknown category) become that row's error, so
every input row reaches the manifest.
"""
from __future__ import annotations

import glob
import os
import posixpath
import re

import pyarrow as pa
import pyarrow.fs as pafs

from . import storage
from .labels import PASSTHROUGH_CATEGORY, normalize_category
from .schema import ERROR, PENDING, SKIPPED, VtonError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
MANIFEST_EXTENSIONS = (".csv", ".parquet", ".jsonl")
PATH_COLUMNS = ("path", "image", "image_path", "file")
CATEGORY_COLUMNS = ("category", "mask_type")
GARMENT_COLUMNS = ("garment", "cloth")
SPLIT_COLUMNS = ("split",)
SPLITS = ("train", "test")

# seq: the row's index in the full input list (before --limit and resume), the base of the
# trainer layouts' export names; split: the manifest's own, else --split; garment: the in-shop
# garment photo of a manifest's garment/cloth column (resolved like the path column), else null.
ROW_SCHEMA = pa.schema([
    ("id", pa.string()), ("source", pa.string()), ("category", pa.string()),
    ("status", pa.string()), ("error", pa.string()),
    ("seq", pa.int64()), ("split", pa.string()), ("garment", pa.string()),
])


class InputError(VtonError, ValueError):
    """INPUT cannot be listed at all (the run cannot start)."""


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def make_id(relative_path: str) -> str:
    """A row's id (README, Outputs): relative path without extension, each segment sanitized, no '..' or root."""
    text = str(relative_path).replace("\\", "/")
    stem, _ = posixpath.splitext(text)
    segments = []
    for segment in stem.split("/"):
        if segment in ("", ".", ".."):
            continue
        cleaned = _UNSAFE.sub("_", segment)
        # A segment made only of dots would read as a relative reference once joined.
        segments.append(cleaned if cleaned.strip(".") else cleaned.replace(".", "_"))
    return "/".join(segments)


def dedupe_ids(ids: list[str]) -> list[str]:
    """Ids that collide get -2, -3, ... in input order (case-insensitively: filesystems may fold case)."""
    taken: set[str] = set()
    result = []
    for base in ids:
        candidate, n = base, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate.lower())
        result.append(candidate)
    return result


def _is_image(path: str) -> bool:
    return posixpath.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def _relative(path: str, root: str) -> str:
    relative = posixpath.relpath(path.replace("\\", "/"), root.replace("\\", "/")) if root else path
    return relative


def list_folder(folder: str) -> list[tuple[str, str]]:
    """(source, path relative to folder) for every image file under folder, sorted by path."""
    fs, base = storage.filesystem_for(folder)
    info = fs.get_file_info(base)
    if info.type != pafs.FileType.Directory:
        raise InputError(f"input folder {folder!r} does not exist or is not a folder")
    entries = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    files = sorted(e.path for e in entries if e.type == pafs.FileType.File and _is_image(e.path))
    prefix = folder.rstrip("/") if storage.is_uri(folder) else None
    rows = []
    for path in files:
        relative = _relative(path, base)
        source = f"{prefix}/{relative}" if prefix else path
        rows.append((source, relative))
    return rows


def list_glob(pattern: str) -> list[tuple[str, str]]:
    if storage.is_uri(pattern):
        raise InputError("globs are supported for local paths only; give an object-store prefix instead")
    root = pattern
    while glob.has_magic(root):
        root = os.path.dirname(root)
    root = os.path.abspath(root or ".")
    files = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p) and _is_image(p))
    return [(os.path.abspath(p), os.path.relpath(os.path.abspath(p), root)) for p in files]


def _read_manifest_table(manifest: str) -> pa.Table:
    import csv
    import io

    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    fs, local = storage.filesystem_for(manifest)
    lower = manifest.lower()
    try:
        if lower.endswith(".parquet"):
            return pq.read_table(local, filesystem=fs)
        with fs.open_input_stream(local) as stream:
            data = stream.read()
        if lower.endswith(".jsonl"):
            return pajson.read_json(io.BytesIO(data))
        # The csv module keeps every cell as text: a path like 007.jpg must not become a number.
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        records = list(reader)
        names = reader.fieldnames or []
        return pa.table({name: [record.get(name) for record in records] for name in names})
    except FileNotFoundError as error:
        raise InputError(f"manifest {manifest!r} does not exist") from error
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"cannot read manifest {manifest!r}: {error}") from error


def _pick_column(table: pa.Table, candidates: tuple[str, ...], what: str, required: bool) -> str | None:
    lowered = {name.lower(): name for name in table.column_names}
    for candidate in candidates:
        if candidate in lowered:
            return lowered[candidate]
    if required:
        raise InputError(f"the manifest has no {what} column (expected one of {', '.join(candidates)}; "
                         f"it has {', '.join(table.column_names)})")
    return None


def _normalize_uri(uri: str) -> str:
    """`s3://b/lists/../photos/a.jpg` -> `s3://b/photos/a.jpg`: object stores do not resolve `..`."""
    scheme, rest = uri.split("://", 1)
    netloc, _, key = rest.partition("/")
    return f"{scheme}://{netloc}/{posixpath.normpath(key)}" if key else uri


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or not str(value).strip()


def _resolve(base: str, path: str) -> str:
    """A manifest cell's path: absolute and URIs as they are, others relative to the manifest's folder."""
    if storage.is_uri(path) or os.path.isabs(path):
        return path
    source = storage.join(base, path)
    return _normalize_uri(source) if storage.is_uri(source) else os.path.normpath(source)


def list_manifest(manifest: str, default_category: str) -> list[dict]:
    table = _read_manifest_table(manifest)
    path_column = _pick_column(table, PATH_COLUMNS, "path", required=True)
    category_column = _pick_column(table, CATEGORY_COLUMNS, "category", required=False)
    garment_column = _pick_column(table, GARMENT_COLUMNS, "garment", required=False)
    split_column = _pick_column(table, SPLIT_COLUMNS, "split", required=False)
    paths = table.column(path_column).to_pylist()
    nothing = [None] * len(paths)
    categories = table.column(category_column).to_pylist() if category_column else nothing
    garments = table.column(garment_column).to_pylist() if garment_column else nothing
    splits = table.column(split_column).to_pylist() if split_column else nothing
    base = manifest.rsplit("/", 1)[0] if storage.is_uri(manifest) else os.path.dirname(os.path.abspath(manifest))
    rows = []
    for number, (path, category, garment, split) in enumerate(zip(paths, categories, garments, splits), start=1):
        path = "" if path is None else str(path).strip()
        row = {"category": default_category if _blank(category) else category, "error": None,
               "garment": None if _blank(garment) else _resolve(base, str(garment).strip()),
               "split": None if _blank(split) else str(split).strip().lower()}
        if not path:
            row.update(source="", relative=f"row-{number}", error=f"empty path in manifest row {number}")
        elif storage.is_uri(path) or os.path.isabs(path):
            row.update(source=path, relative=path.split("://", 1)[-1])
        else:
            row.update(source=_resolve(base, path), relative=path)
        if row["split"] is not None and row["split"] not in SPLITS:
            row["error"] = row["error"] or (f"unknown split {row['split']!r} in manifest row {number} "
                                            f"(expected {' or '.join(SPLITS)})")
        rows.append(row)
    return rows


def is_manifest(path: str) -> bool:
    return str(path).lower().endswith(MANIFEST_EXTENSIONS)


def list_rows(input_path: str, default_category: str = "upper_body", limit: int | None = None,
              split: str = "test") -> pa.Table:
    """The run's rows in input order, as an Arrow table with ROW_SCHEMA (split: of rows without their own)."""
    input_path = str(input_path)
    default_category = normalize_category(default_category)
    if is_manifest(input_path):
        listed = list_manifest(input_path, default_category)
    else:
        if glob.has_magic(input_path) and not storage.is_uri(input_path):
            pairs = list_glob(input_path)
        else:
            pairs = list_folder(input_path)
        listed = [{"source": s, "relative": r, "category": default_category, "error": None} for s, r in pairs]
    if limit is not None:
        listed = listed[:limit]
    if not listed:
        raise InputError(f"no images found in {input_path!r} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    ids = dedupe_ids([make_id(row["relative"]) or "image" for row in listed])
    columns = {name: [] for name in ROW_SCHEMA.names}
    for seq, (row, row_id) in enumerate(zip(listed, ids)):
        status, error, category = PENDING, row["error"], row["category"]
        try:
            category = normalize_category(category)
        except ValueError as bad:
            error = error or str(bad)
            category = str(category)
        if error:
            status = ERROR
        elif category == PASSTHROUGH_CATEGORY:
            status = SKIPPED
        for name, value in (("id", row_id), ("source", row["source"]), ("category", category),
                            ("status", status), ("error", error), ("seq", seq),
                            ("split", row.get("split") or split), ("garment", row.get("garment"))):
            columns[name].append(value)
    return pa.table(columns, schema=ROW_SCHEMA)
