"""INPUT, a manifest listing objects, and OUT on s3://, against a local S3-compatible server.

The server is moto's server mode (PyPI `moto[server]`), started by the tests on 127.0.0.1 with a
bucket each test creates; the pipeline finds it through AWS_ENDPOINT_URL like any S3-compatible
store (MinIO, R2, ...). Also: a scheme pyarrow does not know goes through fsspec.
"""
from __future__ import annotations

import io
import json
import uuid

import pyarrow.parquet as pq
import pytest
from PIL import Image
from test_e2e import run_cli

from pipeline import sources, storage
from pipeline.storage import OutputFolder
from pipeline.testing.synthetic import make_person

moto_server = pytest.importorskip("moto.server", reason="needs moto[server] (the test extra)")
boto3 = pytest.importorskip("boto3")

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch) -> dict:
    """The environment a user sets for an S3-compatible store; also what the CLI subprocess gets."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    env = dict(CREDENTIALS, AWS_ENDPOINT_URL=s3_endpoint)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def bucket(s3_env):
    name = f"vton-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    client.create_bucket(Bucket=name)
    return name, client


def keys(client, bucket: str, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def jpeg(seed: int, width: int = 96, height: int = 128) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(make_person(seed, width, height).image).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def test_output_folder_on_s3_writes_one_object_per_file_and_lists_them(bucket):
    name, client = bucket
    out = OutputFolder(f"s3://{name}/runs/out")
    assert not out.local
    out.make_dirs()
    out.write_bytes("masks/sub/a.png", b"first")
    out.write_bytes("masks/b.png", b"second")
    out.write_bytes("masks/b.png", b"replaced")
    assert out.list_files("masks") == ["masks/b.png"]  # direct children only
    assert out.read_bytes("masks/b.png") == b"replaced"
    assert storage.read_bytes(f"s3://{name}/runs/out/masks/sub/a.png") == b"first"
    assert storage.file_size(f"s3://{name}/runs/out/masks/nothing.png") is None
    files = [key for key in keys(client, name) if not key.endswith("/")]  # pyarrow may add folder markers
    assert files == ["runs/out/masks/b.png", "runs/out/masks/sub/a.png"]  # nothing temporary
    out.delete("masks")
    assert [key for key in keys(client, name, "runs/out/masks") if not key.endswith("/")] == []


def test_object_names_with_spaces_percent_hash_and_accents_are_kept_as_they_are(bucket):
    name, client = bucket
    odd = "photos/a b%41#1 é.jpg"
    client.put_object(Bucket=name, Key=odd, Body=b"odd")
    assert storage.read_bytes(f"s3://{name}/{odd}") == b"odd"
    OutputFolder(f"s3://{name}/out put").write_bytes("masks/a b é.png", b"m")
    assert "out put/masks/a b é.png" in keys(client, name)


def test_the_service_specific_endpoint_variable_wins(bucket, monkeypatch, s3_env):
    name, client = bucket
    client.put_object(Bucket=name, Key="x.bin", Body=b"payload")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_env["AWS_ENDPOINT_URL"])
    assert storage.read_bytes(f"s3://{name}/x.bin") == b"payload"


def test_a_folder_prefix_on_s3_lists_images_only_sorted_with_ids(bucket):
    name, client = bucket
    for key in ("photos/b.jpg", "photos/a b.PNG", "photos/sub/c.webp", "photos/notes.txt", "elsewhere/d.jpg"):
        client.put_object(Bucket=name, Key=key, Body=b"not decoded here")
    rows = sources.list_rows(f"s3://{name}/photos/").to_pylist()
    assert [(r["id"], r["source"]) for r in rows] == [
        ("a_b", f"s3://{name}/photos/a b.PNG"), ("b", f"s3://{name}/photos/b.jpg"),
        ("sub/c", f"s3://{name}/photos/sub/c.webp")]
    with pytest.raises(sources.InputError):
        sources.list_rows(f"s3://{name}/no-such-prefix")


def test_unknown_schemes_go_through_fsspec():
    out = OutputFolder(f"memory://vton-{uuid.uuid4().hex[:8]}/out put")
    out.write_bytes("manifest/part-1.parquet", b"x")
    out.write_bytes("masks/a é.png", b"y")
    assert out.list_files("manifest") == ["manifest/part-1.parquet"]
    assert out.read_bytes("masks/a é.png") == b"y"
    assert storage.read_bytes(out.uri("manifest/part-1.parquet")) == b"x"
    with pytest.raises(ValueError, match="fsspec"):
        storage.filesystem_for("no-such-scheme://bucket/key")


def test_a_run_reads_a_manifest_of_objects_and_writes_every_output_to_the_bucket(bucket, s3_env, tiny_parser_dir):
    name, client = bucket
    photo_keys = [f"data/photos/p{index}.jpg" for index in range(3)] + ["data/photos/p3 é.jpg", "data/photos/p4.jpg"]
    for index, key in enumerate(photo_keys):
        client.put_object(Bucket=name, Key=key, Body=jpeg(300 + index))
    client.put_object(Bucket=name, Key="shared/extra.jpg", Body=jpeg(310))
    whole = jpeg(311)
    client.put_object(Bucket=name, Key="data/photos/cut.jpg", Body=whole[: len(whole) // 2])
    manifest = "\n".join([
        "path,category",
        *(f"photos/p{index}.jpg,upper_body" for index in range(3)),
        "photos/p3 é.jpg,upper_body",
        "../data/photos/p4.jpg,lower_body",        # relative paths resolve against the manifest's prefix
        f"s3://{name}/shared/extra.jpg,dresses",   # an absolute object URI
        "photos/cut.jpg,",                         # a truncated photo: an error row
        "photos/missing.jpg,upper_body",           # no such object: an error row
    ]) + "\n"
    client.put_object(Bucket=name, Key="data/list.csv", Body=manifest.encode())
    out = f"s3://{name}/runs/first"

    result = run_cli("run", f"s3://{name}/data/list.csv", "--output", out, "--parser", str(tiny_parser_dir),
                     "--pose", "none", "--num-cpus", "2", "--width", "96", "--height", "128", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done: 8 rows" in result.stdout

    table = pq.read_table(f"{name}/runs/first/manifest", filesystem=storage.filesystem_for(out)[0])
    rows = {row["id"]: row for row in table.to_pylist()}
    assert len(rows) == table.num_rows == 8  # every input row exactly once
    ok = sorted(i for i, row in rows.items() if row["status"] == "ok")
    assert ok == sorted([f"photos/p{i}" for i in range(3)] + ["photos/p3__", "data/photos/p4", f"{name}/shared/extra"])
    assert rows["photos/p3__"]["source"] == f"s3://{name}/data/photos/p3 é.jpg"
    assert rows["data/photos/p4"]["source"] == f"s3://{name}/data/photos/p4.jpg"
    assert rows["data/photos/p4"]["category"] == "lower_body"
    assert "truncated" in rows["photos/cut"]["error"]
    assert rows["photos/missing"]["error"].startswith("file not found")

    stored = [key[len("runs/first/"):] for key in keys(client, name, "runs/first/") if not key.endswith("/")]
    for kind, suffix in (("masks", ".png"), ("masked", ".jpg"), ("parse", ".png")):
        assert sorted(k for k in stored if k.startswith(kind + "/")) == sorted(f"{kind}/{i}{suffix}" for i in ok)
    assert {"run.json", "summary.json"} <= set(stored)
    assert not any(k.startswith((".tmp", ".lock")) for k in stored)  # no leftovers of the run itself
    for row_id in ok:
        row = rows[row_id]
        body = client.get_object(Bucket=name, Key=f"runs/first/{row['mask_path']}")["Body"].read()
        mask = Image.open(io.BytesIO(body))
        assert mask.size == (row["width"], row["height"]) == (96, 128)
    summary = json.loads(client.get_object(Bucket=name, Key="runs/first/summary.json")["Body"].read())
    assert summary["rows"] == 8 and summary["status"] == {"error": 2, "ok": 6}

    again = run_cli("run", f"s3://{name}/data/list.csv", "--output", out, "--parser", str(tiny_parser_dir),
                    "--pose", "none", "--num-cpus", "2", "--width", "96", "--height", "128", timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming: 8 rows already in the manifest" in again.stderr  # resume reads the manifest on S3
