"""Where the DensePose checkpoint comes from: detectron2's model zoo, fetched once into the model cache.

`--densepose` takes `none` (the stage is off), the zoo name below (the released checkpoint, looked
up in the cache that `python -m pipeline fetch-models --densepose densepose_rcnn_R_50_FPN_s1x`
fills), or a local `.pkl` in detectron2's checkpoint format (a folder holding exactly one `.pkl`
also works). The released file is 255,757,821 bytes with a known SHA-256: a fetch checks both
before the file takes its final name, and a run's start-up check compares the cached file's size
and hash, so a truncated or altered file stops the run at start with one line.

Licence: detectron2 and its DensePose project, model zoo included, are released under the
Apache License 2.0 (github.com/facebookresearch/detectron2, LICENSE).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass

from ..schema import ModelLoadError, first_line


@dataclass(frozen=True)
class ZooCheckpoint:
    name: str
    url: str
    filename: str
    size: int
    sha256: str


R50_FPN_S1X = ZooCheckpoint(
    name="densepose_rcnn_R_50_FPN_s1x",
    url="https://dl.fbaipublicfiles.com/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_162be9.pkl",
    filename="model_final_162be9.pkl",
    size=255_757_821,
    sha256="b8a7382001b16e453bad95ca9dbc68ae8f2b839b304cf90eaf5c27fbdb4dae91",
)
ZOO = {R50_FPN_S1X.name: R50_FPN_S1X}
DEFAULT_DENSEPOSE = R50_FPN_S1X.name
DOWNLOAD_TIMEOUT_S = 30.0  # per network read, not for the whole file


def cache_folder() -> str:
    """Beside the Hugging Face hub cache (HF_HOME / HF_HUB_CACHE): the one cache a cluster shares."""
    from huggingface_hub import constants

    return os.path.join(constants.HF_HUB_CACHE, "vton-masks-densepose")


def cached_path(entry: ZooCheckpoint) -> str:
    return os.path.join(cache_folder(), entry.name, entry.filename)


def sha256_of(path: str, chunk: int = 8 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(path: str, entry: ZooCheckpoint) -> str | None:
    """None when the file is the released one, else what is wrong with it."""
    size = os.path.getsize(path)
    if size != entry.size:
        return f"{path} has {size:,} bytes, the released file {entry.size:,}"
    if sha256_of(path) != entry.sha256:
        return f"{path} has the right size but not the released file's SHA-256"
    return None


def resolve(source: str) -> str:
    """The checkpoint file a source names (the zoo name: its cached copy); ModelLoadError when there is none."""
    source = str(source)
    if source in ZOO:
        entry = ZOO[source]
        path = cached_path(entry)
        if not os.path.isfile(path):
            raise ModelLoadError(f"densepose {source!r} is not in the cache ({path}); run `python -m pipeline "
                                 f"fetch-models --densepose {source}` where {entry.url.split('/')[2]} is reachable, "
                                 "or pass a local .pkl with --densepose /path/to/model.pkl")
        return path
    path = os.path.expanduser(source)
    if os.path.isdir(path):
        found = sorted(name for name in os.listdir(path) if name.endswith(".pkl"))
        if len(found) != 1:
            raise ModelLoadError(f"densepose folder {source!r} holds {len(found)} .pkl files; pass the checkpoint "
                                 "file itself")
        return os.path.join(path, found[0])
    if not os.path.isfile(path):
        raise ModelLoadError(f"densepose {source!r} is neither a file nor a known model ({', '.join(ZOO)}) "
                             "nor none")
    return path


def check_source(source: str, **_options) -> None:
    """The start-up check: the file is there, the zoo file is intact, and it loads as a checkpoint."""
    from .checkpoint import load_checkpoint

    path = resolve(source)
    if str(source) in ZOO:
        problem = verify(path, ZOO[str(source)])
        if problem:
            raise ModelLoadError(f"densepose checkpoint is corrupt: {problem}; delete it and run `python -m pipeline "
                                 f"fetch-models --densepose {source}` again")
    load_checkpoint(path)  # raises ModelLoadError with one line for a file that is not a checkpoint


def fetch(source: str) -> str:
    """Downloads a zoo checkpoint into the cache (size and SHA-256 checked first); a local file is only checked."""
    source = str(source)
    if source not in ZOO:
        check_source(source)
        return resolve(source)
    entry = ZOO[source]
    path = cached_path(entry)
    if os.path.isfile(path) and verify(path, entry) is None:
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=entry.filename + ".", suffix=".partial", dir=os.path.dirname(path))
    try:
        with os.fdopen(handle, "wb") as target:
            try:
                with urllib.request.urlopen(entry.url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                    shutil.copyfileobj(response, target, 8 << 20)
            except OSError as error:
                reason = getattr(error, "reason", error)
                raise ModelLoadError(f"cannot download densepose {source!r} from {entry.url}: "
                                     f"{first_line(reason) if isinstance(reason, BaseException) else reason}") from None
        problem = verify(partial, entry)
        if problem:
            raise ModelLoadError(f"the download of densepose {source!r} is not the released file: {problem}")
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return path
