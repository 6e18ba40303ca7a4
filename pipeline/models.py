"""`python -m pipeline fetch-models`: download the models once into the Hugging Face cache.

On a cluster every parse and pose actor loads its model when it starts; with an empty cache each
of them downloads it again (a download storm, and a rate-limited hub). Fetch once into a cache
that every node sees (HF_HOME on shared storage, or the same fetch on every node), then run with
HF_HUB_OFFLINE=1 so the actors read only the cache. Downloads go through huggingface_hub
(`snapshot_download` for the parser, `hf_hub_download` for the pose weights, the call a run
makes), which reads HF_HOME, HF_HUB_OFFLINE, HF_ENDPOINT and HF_TOKEN (gated or private
checkpoints) from the environment.
"""
from __future__ import annotations

import argparse
import os
import sys

from .registry import DEFAULT_PARSER, DEFAULT_POSE, PARSER_FAMILIES, POSE_FAMILIES, family
from .schema import ModelLoadError, VtonError

# What SegFormer's from_pretrained reads: config, preprocessing, weights (safetensors first,
# sharded or not; the PyTorch pickle only for checkpoints without safetensors).
PARSER_FILES = ["config.json", "preprocessor_config.json", "model.safetensors", "model.safetensors.index.json",
                "model-*.safetensors"]
PARSER_FALLBACK_FILES = ["pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*.bin"]


class FetchError(VtonError):
    """A model could not be fetched; the message says why and what to do."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .plugins import argument

    parser.add_argument("--parser-family", default="segformer", type=argument(PARSER_FAMILIES, "parser family"),
                        help="kind of parser model (default: segformer), or a ModelFamily's package.module:name")
    parser.add_argument("--pose-family", default="openpose", type=argument(POSE_FAMILIES, "pose family"),
                        help="kind of pose model (default: openpose), or a ModelFamily's package.module:name")
    parser.add_argument("--parser", default=DEFAULT_PARSER, metavar="ID_OR_DIR",
                        help=f"SegFormer checkpoint to fetch (default: {DEFAULT_PARSER}); "
                             "a local folder is only checked")
    parser.add_argument("--pose", default=DEFAULT_POSE, metavar="ID_OR_DIR|none",
                        help=f"OpenPose body model to fetch, or none (default: {DEFAULT_POSE})")
    parser.add_argument("--densepose", default="none", metavar="ID_OR_PKL|none",
                        help="DensePose checkpoint to fetch: densepose_rcnn_R_50_FPN_s1x (detectron2's model zoo, "
                             "255.8 MB, size and SHA-256 checked), a local .pkl (only checked), or none (default)")


def is_local(source: str) -> bool:
    return os.path.exists(os.path.expanduser(str(source)))


def hub_cache() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _explain(source: str, error: Exception) -> FetchError:
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    if isinstance(error, GatedRepoError) or (
            isinstance(error, HfHubHTTPError) and getattr(error.response, "status_code", None) in (401, 403)):
        token = "HF_TOKEN is set but was refused" if os.environ.get("HF_TOKEN") else "HF_TOKEN is not set"
        return FetchError(f"the hub refused {source!r} ({token}): a gated or private checkpoint needs HF_TOKEN "
                          "set to a token of an account that has accepted its licence on the model's page")
    if isinstance(error, RepositoryNotFoundError):
        return FetchError(f"no model {source!r} on the hub (or it is private: set HF_TOKEN)")
    if isinstance(error, LocalEntryNotFoundError):
        offline = " (HF_HUB_OFFLINE is set: unset it to download)" if os.environ.get("HF_HUB_OFFLINE") else ""
        return FetchError(f"cannot download {source!r} and it is not in the cache {hub_cache()}{offline}: "
                          f"{str(error).splitlines()[0]}")
    return FetchError(f"cannot fetch {source!r}: {type(error).__name__}: "
                      f"{str(error).splitlines()[0] if str(error) else ''}")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.3g} MB"


def _folder_size(folder: str) -> int:
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            total += os.path.getsize(os.path.join(root, name))  # follows the cache's symlinks to blobs
    return total


def fetch_parser(source: str) -> str:
    """Downloads the checkpoint's files into the hub cache; returns the snapshot folder."""
    from huggingface_hub import snapshot_download

    if is_local(source):
        check_parser_offline(source)
        return os.path.abspath(os.path.expanduser(source))
    try:
        folder = snapshot_download(source, allow_patterns=PARSER_FILES)
        if not any(name.endswith(".safetensors") for name in os.listdir(folder)):
            folder = snapshot_download(source, allow_patterns=PARSER_FILES + PARSER_FALLBACK_FILES)
    except Exception as error:  # huggingface_hub raises its own errors, OSError, httpx errors...
        raise _explain(source, error) from error
    check_parser_offline(source)
    return folder


def check_parser_offline(source: str) -> None:
    """Loads the checkpoint the way an actor does, from the cache only: what the actors will find."""
    from transformers import SegformerForSemanticSegmentation, SegformerImageProcessor

    try:
        SegformerForSemanticSegmentation.from_pretrained(str(source), local_files_only=True)
        SegformerImageProcessor.from_pretrained(str(source), local_files_only=True)
    except Exception as error:
        raise FetchError(f"{source!r} was fetched but does not load from the cache alone: "
                         f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from error


def fetch_pose(source: str) -> str:
    """The body weights file (downloaded into the hub cache for a hub id); its local path."""
    from .pose import locate_body_weights

    try:
        return locate_body_weights(source)  # the run's own lookup: hf_hub_download for a hub id
    except ModelLoadError as error:
        cause = error.__cause__
        raise (_explain(source, cause) if cause is not None else FetchError(str(error))) from error


def fetch(parser: str, pose: str, stream=sys.stdout, parser_family: str = "segformer",
          pose_family: str = "openpose", densepose: str = "none") -> None:
    def say(text: str) -> None:
        print(text, file=stream, flush=True)

    say(f"hub cache: {hub_cache()}" + (" (HF_TOKEN set)" if os.environ.get("HF_TOKEN") else ""))
    parsers = family("parser", parser_family)
    if is_local(parser):
        parsers.fetch_source(parser)
        say(f"parser {parser}: a local folder, nothing to fetch (every node must see this path)")
    else:
        folder = parsers.fetch_source(parser)
        files = ", ".join(sorted(os.listdir(folder))) if os.path.isdir(folder) else os.path.basename(folder)
        say(f"parser {parser}: cached in {folder} ({files}; {_megabytes(_folder_size(folder))}), loads offline")
    if str(pose).lower() == "none":
        say("pose: none")
    else:
        path = family("pose", pose_family).fetch_source(pose)
        where = "local, nothing to fetch (every node must see this path)" if is_local(pose) else "cached"
        say(f"pose {pose}: {where}: {path} ({_megabytes(os.path.getsize(path))})")
    if str(densepose).lower() != "none":
        path = family("densepose", "densepose").fetch_source(densepose)
        say(f"densepose {densepose}: {path} ({_megabytes(os.path.getsize(path))}), checked")
    from huggingface_hub import constants

    say(f"next: give every Ray node this cache and make the actors use only it: HF_HOME={constants.HF_HOME} "
        "HF_HUB_OFFLINE=1 (in the nodes' environment, or the job's runtime_env env_vars)")


def run_from_args(args: argparse.Namespace) -> int:
    try:
        fetch(args.parser, args.pose, parser_family=args.parser_family, pose_family=args.pose_family,
              densepose=args.densepose)
    except VtonError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
