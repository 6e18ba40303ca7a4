"""INPUT listing: ids, folder/glob/manifest inputs, per-row categories and errors."""
from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.sources import ROW_SCHEMA, InputError, dedupe_ids, list_rows, make_id


def touch(path, data=b""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def rows_of(table):
    assert table.schema == ROW_SCHEMA
    return table.to_pylist()


# ---- ids -------------------------------------------------------------------------------------

@pytest.mark.parametrize("relative, expected", [
    ("photo.jpg", "photo"),
    ("sub/dir/photo.JPG", "sub/dir/photo"),
    ("a b/c d.png", "a_b/c_d"),
    ("café/Été.jpg", "caf_/_t_"),
    ("日本/写真.jpg", "__/__"),
    ("x(1)+[2]&#.jpeg", "x_1___2___"),
    ("keep.dots-and_under/v1.2.photo.webp", "keep.dots-and_under/v1.2.photo"),
    ("../../up/x.png", "up/x"),
    ("a/../b/c.jpg", "a/b/c"),
    ("./a/./b.jpg", "a/b"),
    ("/abs/path/x.jpg", "abs/path/x"),
    ("//server//share/x.jpg", "server/share/x"),
    ("win\\sub\\x.jpg", "win/sub/x"),
    ("noext", "noext"),
    ("archive.tar.gz", "archive.tar"),
])
def test_make_id(relative, expected):
    assert make_id(relative) == expected


@pytest.mark.parametrize("relative", ["../../x.jpg", "/etc/x.jpg", "a/../../b.jpg", ".../x.jpg", "a/../.jpg"])
def test_make_id_never_has_parent_or_root_references(relative):
    made = make_id(relative)
    assert not made.startswith("/")
    assert ".." not in made.split("/") and "." not in made.split("/") and "" not in made.split("/")


def test_dedupe_ids_in_input_order():
    assert dedupe_ids(["a", "b", "a", "c", "a", "b"]) == ["a", "b", "a-2", "c", "a-3", "b-2"]


def test_dedupe_ids_never_produces_a_duplicate():
    # "a-2" taken by the input itself, and ids that differ only in case (case-folding filesystems).
    ids = dedupe_ids(["a", "a-2", "a", "A", "sub/x", "sub/X"])
    assert ids[:2] == ["a", "a-2"]
    assert len({i.lower() for i in ids}) == len(ids)
    assert ids[2] == "a-3"


# ---- folder input ----------------------------------------------------------------------------

IMAGE_NAMES = ["a.jpg", "b.JPEG", "c.png", "d.WebP", "e.bmp", "f.tif", "g.TIFF", "h.gif"]


def test_folder_lists_every_image_extension_in_any_case_and_nothing_else(tmp_path):
    root = tmp_path / "photos"
    for name in reversed(IMAGE_NAMES):
        touch(root / name)
    for name in ("notes.txt", "labels.json", "README", "photo.jpg.bak", "x.heic"):
        touch(root / name)
    (root / "folder.jpg").mkdir()  # a directory with an image-like name is not a row
    (root / "empty").mkdir()
    rows = rows_of(list_rows(str(root)))
    assert [r["source"] for r in rows] == [str(root / name) for name in IMAGE_NAMES]
    assert [r["id"] for r in rows] == list("abcdefgh")
    assert {r["status"] for r in rows} == {"pending"}
    assert {r["error"] for r in rows} == {None}
    assert {r["category"] for r in rows} == {"upper_body"}


def test_folder_is_recursive_sorted_by_path_and_keeps_subfolders(tmp_path):
    root = tmp_path / "in"
    for relative in ("z.jpg", "m/b.png", "a/y.jpg", "a/deeper/x.jpg", "m/a b.jpg"):
        touch(root / relative)
    rows = rows_of(list_rows(str(root) + "/", "lower_body"))
    assert [r["id"] for r in rows] == ["a/deeper/x", "a/y", "m/a_b", "m/b", "z"]
    assert [r["source"] for r in rows] == [str(root / p)
                                           for p in ("a/deeper/x.jpg", "a/y.jpg", "m/a b.jpg", "m/b.png", "z.jpg")]
    assert {r["category"] for r in rows} == {"lower_body"}


def test_folder_colliding_ids_get_suffixes_in_path_order(tmp_path):
    for name in ("x.jpg", "x.png", "x.webp", "x y.jpg", "x_y.jpg"):
        touch(tmp_path / name)
    rows = rows_of(list_rows(str(tmp_path)))
    assert [(os.path.basename(r["source"]), r["id"]) for r in rows] == [
        ("x y.jpg", "x_y"), ("x.jpg", "x"), ("x.png", "x-2"), ("x.webp", "x-3"), ("x_y.jpg", "x_y-2")]


def test_folder_with_unicode_names(tmp_path):
    touch(tmp_path / "Ünïcode" / "фото 1.jpg")
    [row] = rows_of(list_rows(str(tmp_path)))
    assert row["id"] == "_n_code/_____1"
    assert row["source"] == str(tmp_path / "Ünïcode" / "фото 1.jpg")


def test_limit_keeps_the_first_rows(tmp_path):
    for name in ("e.jpg", "a.jpg", "c.jpg", "b.jpg", "d.jpg"):
        touch(tmp_path / name)
    assert [r["id"] for r in rows_of(list_rows(str(tmp_path), limit=2))] == ["a", "b"]


def test_missing_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list_rows(str(tmp_path / "nope"))


def test_folder_without_images_is_an_input_error(tmp_path):
    touch(tmp_path / "readme.txt")
    (tmp_path / "sub.jpg").mkdir()
    with pytest.raises(InputError, match="no images found"):
        list_rows(str(tmp_path))


def test_bad_default_category_is_refused(tmp_path):
    touch(tmp_path / "a.jpg")
    with pytest.raises(ValueError, match="unknown category 'hats'"):
        list_rows(str(tmp_path), "hats")


def test_default_category_other_skips_every_row(tmp_path):
    touch(tmp_path / "a.jpg")
    [row] = rows_of(list_rows(str(tmp_path), " Other "))
    assert row["category"] == "other" and row["status"] == "skipped" and row["error"] is None


# ---- glob input ------------------------------------------------------------------------------

def test_glob_lists_matching_images_relative_to_the_pattern_root(tmp_path):
    root = tmp_path / "data"
    for relative in ("b.jpg", "a.png", "sub/c.jpg", "sub/deep/d.jpg", "sub/notes.txt", "e.jpg.txt"):
        touch(root / relative)
    (root / "dir.jpg").mkdir()
    rows = rows_of(list_rows(str(root / "**" / "*.jpg")))
    assert [r["id"] for r in rows] == ["b", "sub/c", "sub/deep/d"]
    assert [r["source"] for r in rows] == [str(root / p) for p in ("b.jpg", "sub/c.jpg", "sub/deep/d.jpg")]
    flat = rows_of(list_rows(str(root / "sub" / "*")))
    assert [r["id"] for r in flat] == ["c"]  # not the text file, not the folder


def test_relative_glob_is_resolved_against_the_working_directory(tmp_path, monkeypatch):
    touch(tmp_path / "imgs" / "a.png")
    monkeypatch.chdir(tmp_path)
    [row] = rows_of(list_rows("imgs/*.png"))
    assert row["id"] == "a" and row["source"] == str(tmp_path / "imgs" / "a.png")


def test_glob_matching_nothing_is_an_input_error(tmp_path):
    touch(tmp_path / "a.png")
    with pytest.raises(InputError, match="no images found"):
        list_rows(str(tmp_path / "*.jpg"))


# ---- manifests -------------------------------------------------------------------------------

def write_manifest(path, records, columns):
    """Write records (dicts) as .csv, .jsonl or .parquet; None is an empty cell / null / missing key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix
    if suffix == ".csv":
        lines = [",".join(columns)]
        lines += [",".join("" if r.get(c) is None else str(r[c]) for c in columns) for r in records]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps({c: r[c] for c in columns if r.get(c) is not None}) + "\n"
                                for r in records), encoding="utf-8")
    else:
        pq.write_table(pa.table({c: pa.array([r.get(c) for r in records], pa.string()) for c in columns}), path)
    return path


FORMATS = [".csv", ".jsonl", ".parquet"]


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("path_column", ["path", "image", "image_path", "file"])
def test_manifest_path_column_names(tmp_path, suffix, path_column):
    manifest = write_manifest(tmp_path / "data" / f"m{suffix}",
                              [{path_column: "b.jpg"}, {path_column: "sub/a.png"}], [path_column, "extra"])
    rows = rows_of(list_rows(str(manifest), "dresses"))
    assert [r["id"] for r in rows] == ["b", "sub/a"]  # input order, not sorted
    assert [r["source"] for r in rows] == [str(tmp_path / "data" / "b.jpg"), str(tmp_path / "data" / "sub" / "a.png")]
    assert [r["category"] for r in rows] == ["dresses", "dresses"]
    assert [r["status"] for r in rows] == ["pending", "pending"]


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("category_column", ["category", "mask_type"])
def test_manifest_categories_per_row(tmp_path, suffix, category_column):
    records = [
        {"image": "a.jpg", category_column: "lower_body"},   # beats --category
        {"image": "b.jpg", category_column: None},           # falls back to --category
        {"image": "c.jpg", category_column: " Upper_Body "},  # case and spaces ignored
        {"image": "d.jpg", category_column: "shoes"},        # unknown: an error row naming it
        {"image": "e.jpg", category_column: "OTHER"},        # passthrough
        {"image": None, category_column: "dresses"},         # empty path: an error row
        {"image": "g.jpg", category_column: "dresses"},
    ]
    manifest = write_manifest(tmp_path / f"m{suffix}", records, ["image", category_column])
    rows = rows_of(list_rows(str(manifest), "dresses"))
    assert len(rows) == len(records)  # nothing dropped
    by_letter = {r["source"][-5:-4] if r["source"] else "f": r for r in rows}
    assert by_letter["a"]["category"] == "lower_body" and by_letter["a"]["status"] == "pending"
    assert by_letter["b"]["category"] == "dresses" and by_letter["b"]["status"] == "pending"
    assert by_letter["c"]["category"] == "upper_body" and by_letter["c"]["status"] == "pending"
    assert by_letter["d"]["status"] == "error" and "'shoes'" in by_letter["d"]["error"]
    assert by_letter["d"]["category"] == "shoes" and by_letter["d"]["id"] == "d"
    assert by_letter["e"]["status"] == "skipped" and by_letter["e"]["category"] == "other"
    assert by_letter["e"]["error"] is None
    empty = rows[5]
    assert empty["status"] == "error" and "empty path" in empty["error"] and "row 6" in empty["error"]
    assert empty["id"] and empty["source"] == ""
    assert rows[6]["status"] == "pending" and rows[6]["id"] == "g"
    assert len({r["id"] for r in rows}) == len(rows)


def test_manifest_column_names_are_case_insensitive(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("ID,Image_Path,Mask_Type\n1,a.jpg,lower_body\n", encoding="utf-8")
    [row] = rows_of(list_rows(str(manifest)))
    assert row["source"] == str(tmp_path / "a.jpg") and row["category"] == "lower_body"


def test_csv_paths_stay_text(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path\n007.jpg\n00042\n1e3.png\n", encoding="utf-8")
    rows = rows_of(list_rows(str(manifest)))
    assert [os.path.basename(r["source"]) for r in rows] == ["007.jpg", "00042", "1e3.png"]
    assert [r["id"] for r in rows] == ["007", "00042", "1e3"]


def test_csv_with_bom_and_quoted_paths(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_bytes('\ufeffpath,category\n"a, b.jpg",dresses\n'.encode("utf-8"))
    [row] = rows_of(list_rows(str(manifest)))
    assert row["source"] == str(tmp_path / "a, b.jpg") and row["id"] == "a__b"
    assert row["category"] == "dresses"


def test_manifest_relative_paths_resolve_against_the_manifests_folder(tmp_path, monkeypatch):
    data = tmp_path / "data"
    write_manifest(data / "m.csv", [{"path": "imgs/a.jpg"}], ["path"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    [row] = rows_of(list_rows(os.path.join("..", "data", "m.csv")))
    assert row["source"] == str(data / "imgs" / "a.jpg") and row["id"] == "imgs/a"


def test_manifest_parent_and_absolute_paths_are_read_where_they_point(tmp_path):
    outside = touch(tmp_path / "outside" / "o.jpg")
    records = [{"path": "../outside/o.jpg"}, {"path": str(outside)}, {"path": "../../x/../y.png"}]
    manifest = write_manifest(tmp_path / "data" / "m.jsonl", records, ["path"])
    rows = rows_of(list_rows(str(manifest)))
    assert rows[0]["source"] == str(outside)
    assert rows[1]["source"] == str(outside)
    assert rows[2]["source"] == os.path.normpath(str(tmp_path / "data" / "../../y.png"))
    for row in rows:
        assert not row["id"].startswith("/") and ".." not in row["id"].split("/")
        assert row["status"] == "pending"
    assert rows[0]["id"] == "outside/o"
    assert rows[1]["id"] == make_id(str(outside))
    assert len({r["id"] for r in rows}) == 3


@pytest.mark.parametrize("suffix", FORMATS)
def test_manifest_same_path_twice_gives_two_rows(tmp_path, suffix):
    manifest = write_manifest(tmp_path / f"m{suffix}",
                              [{"path": "a.jpg", "category": "upper_body"},
                               {"path": "a.jpg", "category": "lower_body"}],
                              ["path", "category"])
    rows = rows_of(list_rows(str(manifest)))
    assert [r["id"] for r in rows] == ["a", "a-2"]
    assert rows[0]["source"] == rows[1]["source"] == str(tmp_path / "a.jpg")
    assert [r["category"] for r in rows] == ["upper_body", "lower_body"]


def test_manifest_limit(tmp_path):
    manifest = write_manifest(tmp_path / "m.csv", [{"path": f"{n}.jpg"} for n in "dcba"], ["path"])
    assert [r["id"] for r in rows_of(list_rows(str(manifest), limit=3))] == ["d", "c", "b"]


@pytest.mark.parametrize("suffix", FORMATS)
def test_manifest_without_a_path_column_is_an_input_error(tmp_path, suffix):
    manifest = write_manifest(tmp_path / f"m{suffix}", [{"url": "a.jpg", "category": "dresses"}], ["url", "category"])
    with pytest.raises(InputError) as caught:
        list_rows(str(manifest))
    message = str(caught.value)
    assert "no path column" in message and "image_path" in message and "url" in message


def test_missing_manifest_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list_rows(str(tmp_path / "missing.csv"))


def test_manifest_with_no_rows_is_an_input_error(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,category\n", encoding="utf-8")
    with pytest.raises(InputError, match="no images found"):
        list_rows(str(manifest))


def test_unreadable_manifest_is_an_input_error(tmp_path):
    manifest = tmp_path / "m.parquet"
    manifest.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="cannot read manifest"):
        list_rows(str(manifest))
