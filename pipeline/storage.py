"""Reading inputs and writing outputs on any pyarrow filesystem (local, s3://, gs://, ...).

Outputs are confined to OUT: every write goes through `OutputFolder`, which takes paths relative
to OUT and refuses any that would leave it. On a local filesystem a write goes to a temporary
file in OUT/.tmp and is renamed into place (same filesystem, so the rename is atomic): a killed
run never leaves a partial file under a final name, and a rerun removes every leftover by
deleting one folder instead of walking the tree. On an object store one PUT is already atomic.

Object stores take their settings from the usual environment variables, read by every process
that touches a file (the driver and each Ray worker): s3:// uses AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_DEFAULT_REGION (or ~/.aws), and for an
S3-compatible server (MinIO, R2, ...) AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL; gs:// uses
GOOGLE_APPLICATION_CREDENTIALS. A scheme pyarrow does not know is opened through fsspec when the
fsspec package for it is installed (e.g. adlfs for az://).
"""
from __future__ import annotations

import functools
import os
import posixpath
import uuid
from pathlib import PurePosixPath
from urllib.parse import urlencode

import pyarrow as pa
import pyarrow.fs as pafs

TEMP_DIR = ".tmp"
# Object stores whose URIs are scheme://bucket/key, the key taken as it is.
BUCKET_SCHEMES = ("s3", "gs", "gcs")
# The AWS SDKs' names for an S3-compatible endpoint, most specific first.
S3_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


def is_uri(path: str) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def s3_endpoint() -> str | None:
    for name in S3_ENDPOINT_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


def _s3_options() -> dict:
    """The endpoint from the environment (pyarrow versions differ in reading it themselves), and
    allow_delayed_open: a small file is one PutObject instead of a three-request multipart upload."""
    options = {"allow_delayed_open": "true"}
    endpoint = s3_endpoint()
    if endpoint:
        scheme, _, host = endpoint.rpartition("://")
        options.update(endpoint_override=host.rstrip("/"), scheme=scheme or "https")
    return options


# What a cached filesystem depends on besides the bucket: a changed environment gets a new one.
_ENVIRONMENT = (*S3_ENDPOINT_VARIABLES, "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
                "GOOGLE_APPLICATION_CREDENTIALS")


@functools.lru_cache(maxsize=64)
def _bucket_filesystem(scheme: str, netloc: str, environment: tuple) -> tuple[pafs.FileSystem, str]:
    """One filesystem per bucket and process (from_uri may ask the store for the bucket's region)."""
    if scheme == "s3":
        options = _s3_options()
        try:
            return pafs.FileSystem.from_uri(f"s3://{netloc}?{urlencode(options)}")
        except pa.ArrowInvalid as error:
            if "allow_delayed_open" not in str(error):  # a pyarrow without the option: more requests, same result
                raise
            del options["allow_delayed_open"]
            return pafs.FileSystem.from_uri(f"s3://{netloc}?{urlencode(options)}")
    return pafs.FileSystem.from_uri(f"{scheme}://{netloc}")


def _pyarrow_knows(scheme: str) -> bool:
    try:
        pafs.FileSystem.from_uri(f"{scheme}://bucket")
    except pa.ArrowInvalid as error:
        return "Unrecognized filesystem type" not in str(error)
    except Exception:  # known, but it could not connect
        return True
    return True


def _through_fsspec(uri: str, error: Exception) -> tuple[pafs.FileSystem, str]:
    scheme = uri.split("://", 1)[0]
    try:
        import fsspec

        fs, fs_path = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as missing:
        raise ValueError(f"cannot open {uri!r}: pyarrow does not know {scheme}:// ({error}) and fsspec "
                         f"cannot open it either ({missing}); install the fsspec package for {scheme}://") from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), fs_path


def filesystem_for(path: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and the filesystem-local path for a local path or a URI.

    For s3:// and gs:// only `scheme://bucket` is parsed as a URI; the key is used as it is, so
    object names with spaces, `%`, `#` or non-ASCII letters (common in photo datasets) stay intact.
    """
    path = str(path)
    if is_uri(path):
        scheme, rest = path.split("://", 1)
        if scheme.lower() in BUCKET_SCHEMES:
            netloc, _, key = rest.partition("/")
            fs, root = _bucket_filesystem(scheme.lower(), netloc, tuple(os.environ.get(n) for n in _ENVIRONMENT))
            key = key.rstrip("/")
            return fs, (posixpath.join(root, key) if key else root)
        try:
            return pafs.FileSystem.from_uri(path)
        except pa.ArrowInvalid as error:
            if "Unrecognized filesystem type" in str(error) or not _pyarrow_knows(scheme):
                return _through_fsspec(path, error)  # fsspec takes paths as they are (spaces included)
            raise
    if path.startswith("file://"):
        path = path[len("file://"):]
    return pafs.LocalFileSystem(), os.path.abspath(path)


def join(base: str, *parts: str) -> str:
    """Join for local paths and URIs alike (URIs use '/')."""
    if is_uri(base):
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)


def read_bytes(path: str) -> bytes:
    fs, local = filesystem_for(path)
    with fs.open_input_stream(local) as stream:
        return stream.read()


def file_size(path: str) -> int | None:
    """Size in bytes, or None when there is no file at path."""
    fs, local = filesystem_for(path)
    info = fs.get_file_info(local)
    if info.type != pafs.FileType.File:
        return None
    return info.size


def safe_relative(relative: str) -> str:
    """Validate a path relative to OUT; ValueError for one that could leave OUT."""
    text = str(relative).replace("\\", "/")
    parts = PurePosixPath(text).parts
    if not parts or text.startswith("/") or any(part in ("..", "") for part in parts) or ":" in parts[0]:
        raise ValueError(f"output path {relative!r} is not a plain path inside the output folder")
    return "/".join(parts)


class OutputFolder:
    """The run's output folder; all writes of a run go through it."""

    def __init__(self, root: str):
        self.root = str(root)
        self.fs, self.base = filesystem_for(self.root)
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    def __reduce__(self):
        # pyarrow filesystems pickle, but rebuilding from the URI keeps credentials out of pickles.
        return (OutputFolder, (self.root,))

    def path(self, relative: str) -> str:
        """The filesystem-local path of a file inside OUT."""
        return posixpath.join(self.base, safe_relative(relative)) if not self.local else os.path.join(
            self.base, *safe_relative(relative).split("/"))

    def uri(self, relative: str) -> str:
        return join(self.root, safe_relative(relative))

    def make_dirs(self, relative: str = "") -> None:
        target = self.path(relative) if relative else self.base
        self.fs.create_dir(target, recursive=True)

    def write_bytes(self, relative: str, data: bytes) -> None:
        target = self.path(relative)
        if not self.local:
            with self.fs.open_output_stream(target) as stream:
                stream.write(data)
            return
        os.makedirs(os.path.dirname(target), exist_ok=True)
        temporary_dir = os.path.join(self.base, TEMP_DIR)
        os.makedirs(temporary_dir, exist_ok=True)
        temporary = os.path.join(temporary_dir, f"{uuid.uuid4().hex}-{os.path.basename(target)[-80:]}")
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
            os.replace(temporary, target)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def clear_temporary(self) -> None:
        """Removes a killed run's unfinished writes (call only while holding the run lock)."""
        if self.local:
            self.delete(TEMP_DIR)

    def read_bytes(self, relative: str) -> bytes:
        with self.fs.open_input_stream(self.path(relative)) as stream:
            return stream.read()

    def exists(self, relative: str) -> bool:
        return self.fs.get_file_info(self.path(relative)).type != pafs.FileType.NotFound

    def list_files(self, relative: str) -> list[str]:
        """Files directly under a folder of OUT, relative to OUT, sorted; [] if the folder is absent.

        Unfinished writes never show here: their temporary files live in OUT/.tmp.
        """
        folder = self.path(relative)
        if self.fs.get_file_info(folder).type != pafs.FileType.Directory:
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(folder, recursive=False))
        names = sorted(posixpath.basename(info.path) for info in infos if info.type == pafs.FileType.File)
        return [f"{relative.rstrip('/')}/{name}" for name in names]

    def delete(self, relative: str) -> None:
        target = self.path(relative)
        info = self.fs.get_file_info(target)
        if info.type == pafs.FileType.Directory:
            self.fs.delete_dir(target)
        elif info.type == pafs.FileType.File:
            self.fs.delete_file(target)
