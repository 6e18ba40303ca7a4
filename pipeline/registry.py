"""The model registry: which model families exist, and how each is found, checked, fetched and run.

A family is one `ModelFamily` entry. Its parts are import references (`package.module:name`), so
that the registry imports nothing heavy and Ray actors, which are fresh processes, rebuild the
stage from a name. `--parser-family` and `--pose-family` take a name below or a reference to a
`ModelFamily` object in any importable module (CONTRIBUTING.md: "add a pose model").
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .plugins import load_reference, resolve
from .schema import ModelLoadError, VtonError, first_line

log = logging.getLogger("pipeline")

PROBE_TIMEOUT_S = 5.0  # one request per model, no retries: a run that cannot start says so fast


@dataclass(frozen=True)
class ModelFamily:
    """One kind of model a stage can run.

    role: "parser" or "pose" (the stage it fills). stage: reference of its ModelStage subclass
    (constructed as Stage(source, **stage options); its `memory_seed` sizes batches without a
    probe). check: reference of `check(source, **options)`, cheap, run once at start before
    the output folder is touched; raises ModelLoadError (or another VtonError) with a one-line
    way out; it may return a warning to show the user (the bundled demo parser does). fetch:
    reference of `fetch(source) -> local path`, used by `fetch-models` to put the weights in the
    cache actors read. default_source: what `--parser`/`--pose` default to. hub_file: the file
    of a Hugging Face hub repo that shows the model is there, looked up in the local cache and
    probed on the hub before `check` runs (empty: sources are not hub ids).
    """

    role: str
    name: str
    stage: str
    check: str
    fetch: str
    default_source: str
    description: str = ""
    hub_file: str = ""

    def stage_class(self):
        return load_reference(self.stage, f"{self.role} family {self.name!r} stage")

    def check_source(self, source: str, **options) -> str | None:
        return load_reference(self.check, f"{self.role} family {self.name!r} check")(source, **options)

    def fetch_source(self, source: str) -> str:
        return load_reference(self.fetch, f"{self.role} family {self.name!r} fetch")(source)


SEGFORMER = ModelFamily(
    role="parser", name="segformer", stage="pipeline.parser:ParseStage", check="pipeline.parser:check_source",
    fetch="pipeline.models:fetch_parser", default_source="matei-dorian/segformer-b5-finetuned-human-parsing",
    description="SegFormer human parsing (transformers), labels mapped onto ATR-18", hub_file="config.json")
OPENPOSE = ModelFamily(
    role="pose", name="openpose", stage="pipeline.pose:PoseStage", check="pipeline.pose:check_source",
    fetch="pipeline.models:fetch_pose", default_source="lllyasviel/Annotators",
    description="OpenPose body network (controlnet_aux's body_pose_model.pth), COCO-18 keypoints",
    hub_file="body_pose_model.pth")

DENSEPOSE = ModelFamily(
    role="densepose", name="densepose", stage="pipeline.densepose.stage:DensePoseStage",
    check="pipeline.densepose.zoo:check_source", fetch="pipeline.densepose.zoo:fetch",
    default_source="densepose_rcnn_R_50_FPN_s1x",
    description="DensePose R50-FPN (detectron2's checkpoint, plain PyTorch), the main person's parts and U/V")

PARSER_FAMILIES = {"segformer": SEGFORMER}
POSE_FAMILIES = {"openpose": OPENPOSE}
DENSEPOSE_FAMILIES = {"densepose": DENSEPOSE}
DEFAULT_PARSER = SEGFORMER.default_source
DEFAULT_POSE = OPENPOSE.default_source
DEFAULT_DENSEPOSE = DENSEPOSE.default_source  # a name of pipeline/densepose/zoo.py's ZOO; --densepose defaults to none


def family(role: str, name: str) -> ModelFamily:
    builtins = {"parser": PARSER_FAMILIES, "pose": POSE_FAMILIES, "densepose": DENSEPOSE_FAMILIES}[role]
    found = resolve(name, builtins, f"{role} family")
    if not isinstance(found, ModelFamily) or found.role != role:
        raise VtonError(f"{role} family {name!r} is not a ModelFamily of role {role!r} (got {type(found).__name__})")
    return found


class ModelsMissing(ModelLoadError):
    """Every model that failed the start-up check, in one message."""

    def __init__(self, failures: list[str]):
        self.failures = failures
        if len(failures) == 1:
            super().__init__(failures[0])
        else:
            super().__init__(f"{len(failures)} models cannot be used: " + " | ".join(failures))


def looks_like_hub_id(source: str) -> bool:
    """`owner/name` and not an existing path: what from_pretrained and hf_hub_download would fetch."""
    source = str(source)
    return (source.count("/") == 1 and not source.startswith((os.sep, ".", "~"))
            and not os.path.exists(os.path.expanduser(source)))


def probe_hub(repo_id: str, filename: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """One HEAD request for a file of a hub repo, no retries; None when it is there, else why not."""
    import socket
    import urllib.error
    import urllib.request

    from huggingface_hub import constants

    url = f"{constants.ENDPOINT.rstrip('/')}/{repo_id}/resolve/main/{filename}"
    headers = {"Authorization": f"Bearer {os.environ['HF_TOKEN']}"} if os.environ.get("HF_TOKEN") else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD", headers=headers), timeout=timeout):
            return None
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            return f"the hub refused it (HTTP {error.code}: gated or private, set HF_TOKEN)"
        if error.code == 404:
            return f"the hub has no {filename} for it (HTTP 404)"
        return f"the hub at {constants.ENDPOINT} answered HTTP {error.code}"
    except (socket.timeout, TimeoutError):
        return f"the hub at {constants.ENDPOINT} did not answer within {timeout:g} s"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return (f"the hub at {constants.ENDPOINT} cannot be reached "
                f"({first_line(reason) if isinstance(reason, BaseException) else reason})")


def _cached(repo_id: str, filename: str) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename)
    return found if isinstance(found, str) else None


def check_model(model: ModelFamily, source: str, options: dict) -> str | None:
    """One model's start-up check: a local path as it is; a hub id from the cache, else after one
    short probe of the hub (never the libraries' retries). Returns the family's warning, if any."""
    if not (model.hub_file and looks_like_hub_id(source)):
        return model.check_source(source, **options)
    cached = _cached(source, model.hub_file)
    if cached is not None:
        return model.check_source(os.path.dirname(cached), **options)
    way_out = (f"run `python -m pipeline fetch-models --{model.role} {source}` where the hub is reachable, pass "
               f"a local folder with --{model.role} /path/to/folder, or set HF_HOME to a cache that holds it")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelLoadError(f"{model.role} {source!r} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
                             + way_out)
    reason = probe_hub(source, model.hub_file)
    if reason is not None:
        raise ModelLoadError(f"{model.role} {source!r}: {reason}; {way_out} (and HF_HUB_OFFLINE=1)")
    return model.check_source(source, **options)


def check_models(config) -> list[str]:
    """Checks every model the run needs, all at once and before anything is written; raises
    ModelsMissing naming every one that failed. Returns the models' warnings."""
    checks = [("parser", config.parser_family, config.parser, {"labels": config.labels})]
    if config.pose_from is None and config.pose_enabled:
        checks.append(("pose", config.pose_family, config.pose, {}))
    if config.densepose_enabled:
        checks.append(("densepose", "densepose", config.densepose, {}))

    def one(check):
        role, family_name, source, options = check
        try:
            return None, check_model(family(role, family_name), source, options)
        except VtonError as error:
            return first_line(error), None

    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        results = list(pool.map(one, checks))
    failures = [failure for failure, _ in results if failure]
    if failures:
        raise ModelsMissing(failures)
    return [warning for _, warning in results if warning]
