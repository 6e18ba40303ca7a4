"""OutputFolder: atomic writes confined to OUT, on the local filesystem and an object-store-like one."""
from __future__ import annotations

import os
import pickle

import pyarrow.fs as pafs
import pytest

from pipeline import storage
from pipeline.storage import TEMP_DIR, OutputFolder, safe_relative


def all_files(root):
    return sorted(os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
                  for folder, _, names in os.walk(root) for name in names)


def test_write_bytes_creates_folders_and_leaves_no_temporary_file(tmp_path):
    out = OutputFolder(str(tmp_path / "out"))
    out.write_bytes("masks/sub/a.png", b"\x89PNG first")
    assert (tmp_path / "out" / "masks" / "sub" / "a.png").read_bytes() == b"\x89PNG first"
    assert all_files(tmp_path / "out") == ["masks/sub/a.png"]


def test_write_bytes_overwrites_completely(tmp_path):
    out = OutputFolder(str(tmp_path))
    out.write_bytes("run.json", b"a much longer first version of the file")
    out.write_bytes("run.json", b"short")
    assert (tmp_path / "run.json").read_bytes() == b"short"
    assert out.read_bytes("run.json") == b"short"
    assert all_files(tmp_path) == ["run.json"]


def test_write_bytes_goes_through_a_complete_temporary_file_inside_out(tmp_path, monkeypatch):
    out = OutputFolder(str(tmp_path))
    renames = []
    real_replace = os.replace

    def spy(source, target):
        renames.append((source, target))
        with open(source, "rb") as handle:
            assert handle.read() == b"payload"  # complete before it gets its final name
        assert not os.path.exists(target)
        real_replace(source, target)

    monkeypatch.setattr(storage.os, "replace", spy)
    out.write_bytes("masks/x.png", b"payload")
    [(source, target)] = renames
    # Inside OUT (so the rename stays on one filesystem), never under a final name's folder.
    assert os.path.dirname(source) == str(tmp_path / TEMP_DIR)
    assert target == str(tmp_path / "masks" / "x.png")
    assert out.list_files("masks") == ["masks/x.png"]


def test_failed_write_removes_its_temporary_file(tmp_path):
    out = OutputFolder(str(tmp_path))
    (tmp_path / "masks" / "taken.png").mkdir(parents=True)  # a folder where the file should go
    with pytest.raises(OSError):
        out.write_bytes("masks/taken.png", b"data")
    assert all_files(tmp_path) == []


def test_empty_payload_and_unicode_paths(tmp_path):
    out = OutputFolder(str(tmp_path))
    out.write_bytes("masks/café ü/写真 1.png", b"")
    assert (tmp_path / "masks" / "café ü" / "写真 1.png").read_bytes() == b""
    assert out.exists("masks/café ü/写真 1.png")
    assert out.list_files("masks/café ü") == ["masks/café ü/写真 1.png"]


@pytest.mark.parametrize("bad", [
    "", ".", "..", "../x.png", "masks/../../x.png", "masks/..", "/etc/passwd", "//server/share/x",
    "..\\x.png", "masks\\..\\..\\x", "\\x.png", "c:", "C:/x.png", "c:x.png", "C:\\x.png", "s3://bucket/x",
])
def test_safe_relative_refuses_paths_that_could_leave_out(bad, tmp_path):
    with pytest.raises(ValueError, match="not a plain path inside the output folder"):
        safe_relative(bad)
    out = OutputFolder(str(tmp_path / "out"))
    with pytest.raises(ValueError):
        out.write_bytes(bad, b"x")
    with pytest.raises(ValueError):
        out.path(bad)
    assert not (tmp_path / "x.png").exists()
    assert all_files(tmp_path) == []


@pytest.mark.parametrize("good, expected", [
    ("masks/a.png", "masks/a.png"), ("a", "a"), ("masks\\sub\\a.png", "masks/sub/a.png"),
    ("masks/a..b.png", "masks/a..b.png"), ("..hidden/x", "..hidden/x"), ("é/ü.png", "é/ü.png"),
    # Empty and '.' segments cannot leave OUT; they are collapsed rather than refused.
    ("masks//a.png", "masks/a.png"), ("masks/./a.png", "masks/a.png"),
])
def test_safe_relative_keeps_plain_paths(good, expected):
    assert safe_relative(good) == expected


def test_exists_list_files_and_delete(tmp_path):
    out = OutputFolder(str(tmp_path))
    assert out.list_files("manifest") == []
    for name in ("part-b.parquet", "part-a.parquet", "notes.txt"):
        out.write_bytes(f"manifest/{name}", b"x")
    out.write_bytes("manifest/nested/deep.parquet", b"x")
    assert out.list_files("manifest") == ["manifest/notes.txt", "manifest/part-a.parquet", "manifest/part-b.parquet"]
    assert out.list_files("manifest/") == out.list_files("manifest")
    assert out.list_files("manifest/notes.txt") == []  # a file is not a folder
    assert out.exists("manifest/part-a.parquet") and out.exists("manifest")
    assert not out.exists("manifest/part-c.parquet")

    out.delete("manifest/part-a.parquet")
    assert not out.exists("manifest/part-a.parquet")
    out.delete("manifest/part-a.parquet")  # deleting what is not there is fine
    out.delete("manifest")
    assert not out.exists("manifest") and not (tmp_path / "manifest").exists()


def test_clear_temporary_removes_a_killed_runs_unfinished_writes(tmp_path):
    out = OutputFolder(str(tmp_path))
    out.write_bytes("manifest/part-1.parquet", b"done")
    # What a run killed between open and rename leaves behind.
    (tmp_path / TEMP_DIR).mkdir(exist_ok=True)
    (tmp_path / TEMP_DIR / "0123abcd-part-2.parquet").write_bytes(b"half")
    assert out.list_files("manifest") == ["manifest/part-1.parquet"]
    out.clear_temporary()
    assert all_files(tmp_path) == ["manifest/part-1.parquet"]
    out.clear_temporary()  # nothing to clear is fine


def test_output_folder_pickles_by_root(tmp_path):
    out = OutputFolder(str(tmp_path / "out"))
    copy = pickle.loads(pickle.dumps(out))
    assert copy.root == out.root and copy.base == out.base and copy.local
    copy.write_bytes("a.txt", b"from the copy")
    assert out.read_bytes("a.txt") == b"from the copy"


def test_file_uri_and_relative_root_are_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = OutputFolder("out")
    assert relative.local and relative.base == str(tmp_path / "out")
    relative.write_bytes("a.txt", b"1")
    uri = OutputFolder(f"file://{tmp_path}/out")
    assert uri.local and uri.read_bytes("a.txt") == b"1"
    assert not storage.is_uri(f"file://{tmp_path}") and storage.is_uri("s3://bucket/prefix")


def test_module_read_bytes_and_file_size(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"12345")
    assert storage.read_bytes(str(tmp_path / "photo.jpg")) == b"12345"
    assert storage.file_size(str(tmp_path / "photo.jpg")) == 5
    assert storage.file_size(str(tmp_path / "missing.jpg")) is None
    assert storage.file_size(str(tmp_path)) is None
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(str(tmp_path / "missing.jpg"))


def test_join_uses_slashes_for_uris():
    assert storage.join("s3://bucket/data", "sub", "a.jpg") == "s3://bucket/data/sub/a.jpg"
    assert storage.join("/data", "sub", "a.jpg") == os.path.join("/data", "sub", "a.jpg")


def test_object_store_branch_writes_one_object_and_lists_it():
    # pyarrow's in-memory mock filesystem stands in for s3:// or gs:// (no temporary names there).
    out = OutputFolder("mock:///bucket/out")
    assert not out.local and isinstance(out.fs, pafs.FileSystem)
    out.make_dirs("masks")  # the mock, unlike S3, needs its folders
    out.write_bytes("masks/a é.png", b"first")
    out.write_bytes("masks/a é.png", b"second")
    out.write_bytes("masks/b.png", b"b")
    assert out.read_bytes("masks/a é.png") == b"second"
    assert out.path("masks/b.png") == "bucket/out/masks/b.png"
    assert out.uri("masks/b.png") == "mock:///bucket/out/masks/b.png"
    assert out.list_files("masks") == ["masks/a é.png", "masks/b.png"]
    assert out.exists("masks/b.png") and not out.exists("masks/c.png")
    out.delete("masks/b.png")
    assert out.list_files("masks") == ["masks/a é.png"]
    with pytest.raises(ValueError):
        out.write_bytes("../escape.png", b"x")
