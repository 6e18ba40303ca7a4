"""The model registry: which model families exist, and how each is found, checked, fetched and run.

A family is one `ModelFamily` entry. Its parts are import references (`package.module:name`), so
that the registry imports nothing heavy and Ray actors, which are fresh processes, rebuild the
stage from a name. `--parser-family` and `--pose-family` take a name below or a reference to a
`ModelFamily` object in any importable module (CONTRIBUTING.md: "add a pose model").
"""
from __future__ import annotations

from dataclasses import dataclass

from .plugins import load_reference, resolve
from .schema import ModelLoadError, VtonError, first_line


@dataclass(frozen=True)
class ModelFamily:
    """One kind of model a stage can run.

    role: "parser" or "pose" (the stage it fills). stage: reference of its ModelStage subclass
    (constructed as Stage(source, **stage options); its `memory_seed` sizes batches without a
    probe). check: reference of `check(source, **options)`, cheap, run once at start before
    the output folder is touched; raises ModelLoadError (or another VtonError) with a one-line
    way out. fetch: reference of `fetch(source) -> local path`, used by `fetch-models` to put
    the weights in the cache actors read. default_source: what `--parser`/`--pose` default to.
    """

    role: str
    name: str
    stage: str
    check: str
    fetch: str
    default_source: str
    description: str = ""

    def stage_class(self):
        return load_reference(self.stage, f"{self.role} family {self.name!r} stage")

    def check_source(self, source: str, **options) -> None:
        load_reference(self.check, f"{self.role} family {self.name!r} check")(source, **options)

    def fetch_source(self, source: str) -> str:
        return load_reference(self.fetch, f"{self.role} family {self.name!r} fetch")(source)


SEGFORMER = ModelFamily(
    role="parser", name="segformer", stage="pipeline.parser:ParseStage", check="pipeline.parser:check_source",
    fetch="pipeline.models:fetch_parser", default_source="matei-dorian/segformer-b5-finetuned-human-parsing",
    description="SegFormer human parsing (transformers), labels mapped onto ATR-18")
OPENPOSE = ModelFamily(
    role="pose", name="openpose", stage="pipeline.pose:PoseStage", check="pipeline.pose:locate_body_weights",
    fetch="pipeline.models:fetch_pose", default_source="lllyasviel/Annotators",
    description="OpenPose body network (controlnet_aux's body_pose_model.pth), COCO-18 keypoints")

PARSER_FAMILIES = {"segformer": SEGFORMER}
POSE_FAMILIES = {"openpose": OPENPOSE}
DEFAULT_PARSER = SEGFORMER.default_source
DEFAULT_POSE = OPENPOSE.default_source


def family(role: str, name: str) -> ModelFamily:
    builtins = PARSER_FAMILIES if role == "parser" else POSE_FAMILIES
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


def check_models(config) -> None:
    """Checks every model the run needs, all of them, before anything is written (ModelsMissing)."""
    failures = []
    checks = [("parser", config.parser_family, config.parser, {"labels": config.labels})]
    if config.pose_from is None and config.pose_enabled:
        checks.append(("pose", config.pose_family, config.pose, {}))
    for role, family_name, source, options in checks:
        try:
            family(role, family_name).check_source(source, **options)
        except VtonError as error:
            failures.append(first_line(error))
    if failures:
        raise ModelsMissing(failures)
