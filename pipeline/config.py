"""A run's settings: one definition shared by the CLI, the job entrypoint, run.json and resume."""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields

from . import plugins
from .compose import FILLS
from .labels import CATEGORIES, SCHEMAS
from .layouts import LAYOUTS
from .masks import OOTD_VARIANTS, STYLE_FUNCTIONS
from .registry import DEFAULT_DENSEPOSE, DEFAULT_PARSER, DEFAULT_POSE, PARSER_FAMILIES, POSE_FAMILIES
from .schema import DEVICES, PRECISIONS

LABEL_SCHEMAS = ("auto", *SCHEMAS)

# Settings that change what a row's outputs are; a resumed run must match them (run.json).
OUTPUT_DEFINING = ("parser_family", "parser", "labels", "pose_family", "pose", "pose_from", "style", "category",
                   "width", "height", "fill", "ootd_variant", "layout", "split", "export_size", "person_check",
                   "densepose")
SPLITS = ("train", "test")


@dataclass
class RunConfig:
    input: str
    output: str
    category: str = "upper_body"
    style: str = "rect"
    parser_family: str = "segformer"
    parser: str = DEFAULT_PARSER
    labels: str = "auto"
    pose_family: str = "openpose"
    pose: str = DEFAULT_POSE  # "none" switches the pose stage off
    pose_from: str | None = None  # keypoints from the dataset's files instead of the model
    densepose: str = "none"  # the DensePose checkpoint (zoo name or .pkl), or none: the stage is off
    fill: str = "green"
    ootd_variant: str = "hd"
    layout: str = "native"
    split: str = "test"  # trainer layouts: the split of rows whose manifest gives none
    export_size: str = "768x1024"  # trainer layouts: the export frame, WxH
    person_check: bool = True  # --no-person-check: keep the masks of rows the parse finds no person in
    width: int = 576
    height: int = 768
    batch_size: int | None = None
    max_batch_size: int = 64
    probe: bool = True
    compile: bool = False
    device: str = "auto"
    precision: str = "auto"
    limit: int | None = None
    num_cpus: int | None = None
    gpu_fraction: float = 0.5
    address: str | None = None
    progress: str = "auto"
    max_error_rate: float = 0.5
    rows_per_part: int = 64
    error_rate_window: int = 200

    @property
    def pose_enabled(self) -> bool:
        return self.pose_from is not None or self.pose.lower() != "none"

    @property
    def pose_label(self) -> str | None:
        """What produced the keypoints, for the manifest."""
        if self.pose_from is not None:
            return f"files:{self.pose_from}"
        return self.pose if self.pose_enabled else None

    @property
    def densepose_enabled(self) -> bool:
        return str(self.densepose).lower() != "none"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "RunConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in vars(args).items() if k in names})

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        """A config from run.json's `config` (fields a later version added take their defaults)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


_DEFAULTS = {f.name: f.default for f in fields(RunConfig) if f.name not in ("input", "output")}


def default(name: str):
    """The RunConfig default of a field: the one place every default is stated."""
    return _DEFAULTS[name]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _size(text: str) -> int:
    value = _positive_int(text)
    if value < 32 or value > 8192:
        raise argparse.ArgumentTypeError(f"working size must lie in 32..8192, got {value}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1], got {value}")
    return value


def _export_size(text: str) -> str:
    """'WxH' -> the same, normalised; both sides in 32..8192."""
    parts = str(text).lower().split("x")
    try:
        width, height = (int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH, e.g. 768x1024, got {text!r}") from None
    if not (32 <= width <= 8192 and 32 <= height <= 8192):
        raise argparse.ArgumentTypeError(f"export size sides must lie in 32..8192, got {text!r}")
    return f"{width}x{height}"


def parse_export_size(text: str) -> tuple[int, int]:
    """(width, height) of an --export-size value."""
    width, height = _export_size(text).split("x")
    return int(width), int(height)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The `run` options; the CLI and jobs/mask_dataset.py both use this one definition.

    Defaults come from RunConfig (tests/test_config.py checks that every option maps to a field
    and every field to an option).
    """
    d = default
    parser.add_argument("input", help="a folder (recursive), a glob, or a manifest .csv/.parquet/.jsonl "
                        "with a path column (path, image, image_path or file) and optional category/mask_type")
    parser.add_argument("--output", "-o", required=True, help="output folder (local path or s3://...)")
    parser.add_argument("--category", default=d("category"), choices=CATEGORIES,
                        help=f"category of rows that have none of their own (default: {d('category')})")
    parser.add_argument("--style", default=d("style"), type=plugins.argument(STYLE_FUNCTIONS, "mask style"),
                        metavar="{" + ",".join(STYLE_FUNCTIONS) + "}|module:name",
                        help=f"mask style (default: {d('style')}), or a style function's package.module:name")
    parser.add_argument("--layout", default=d("layout"), type=plugins.argument(LAYOUTS, "layout"),
                        metavar="{" + ",".join(LAYOUTS) + "}|module:name",
                        help=f"output layout (default: {d('layout')}; vitonhd and dresscode write the trainers' "
                             "folders, docs/layouts.md), or a Layout's package.module:name")
    parser.add_argument("--split", default=d("split"), choices=SPLITS,
                        help=f"trainer layouts: the split of rows whose manifest has no split column "
                             f"(default: {d('split')})")
    parser.add_argument("--no-person-check", dest="person_check", action="store_false", default=d("person_check"),
                        help="never flag no_person (whose rows get an empty mask): for datasets of photos cropped "
                             "below the chin or of people lying down, which the rule flags (docs/masks.md)")
    parser.add_argument("--export-size", default=d("export_size"), type=_export_size, metavar="WxH",
                        help=f"trainer layouts: the frame every exported file is fitted into, without "
                             f"distortion (default: {d('export_size')})")
    parser.add_argument("--parser-family", default=d("parser_family"),
                        type=plugins.argument(PARSER_FAMILIES, "parser family"),
                        metavar="{" + ",".join(PARSER_FAMILIES) + "}|module:name",
                        help=f"kind of parser model (default: {d('parser_family')}), or a ModelFamily's "
                             "package.module:name")
    parser.add_argument("--parser", default=d("parser"), metavar="ID_OR_DIR",
                        help=f"parser checkpoint: hub id or local folder (default: {d('parser')})")
    parser.add_argument("--labels", default=d("labels"), choices=LABEL_SCHEMAS,
                        help="label schema of the parser; auto maps by the checkpoint's label names")
    parser.add_argument("--pose-family", default=d("pose_family"), type=plugins.argument(POSE_FAMILIES, "pose family"),
                        metavar="{" + ",".join(POSE_FAMILIES) + "}|module:name",
                        help=f"kind of pose model (default: {d('pose_family')}), or a ModelFamily's "
                             "package.module:name")
    parser.add_argument("--pose", default=d("pose"), metavar="ID_OR_DIR|none",
                        help=f"pose model: hub id or folder (OpenPose: with body_pose_model.pth), or none "
                             f"(default: {d('pose')})")
    parser.add_argument("--pose-from", default=d("pose_from"), metavar="DIR",
                        help="use the dataset's keypoint files instead of the pose model: OpenPose JSON "
                             "(ours, VITON-HD's *_keypoints.json) or DressCode's *_2.json, matched by id or file stem")
    parser.add_argument("--densepose", default=d("densepose"), metavar="ID_OR_PKL|none",
                        help=f"DensePose (detectron2's R50-FPN, run without detectron2): {DEFAULT_DENSEPOSE} (the "
                             "released checkpoint, fetched with fetch-models --densepose), a checkpoint .pkl, or none "
                             f"(default: {d('densepose')}); writes densepose/ and the trainers' DensePose images")
    parser.add_argument("--fill", default=d("fill"), choices=tuple(FILLS),
                        help="masked-photo fill: green (0,255,0) like the original tool, gray 127 like OOTDiffusion")
    parser.add_argument("--ootd-variant", default=d("ootd_variant"), choices=OOTD_VARIANTS,
                        help="ootd style arm band width")
    parser.add_argument("--width", type=_size, default=d("width"), help=f"working width (default {d('width')})")
    parser.add_argument("--height", type=_size, default=d("height"), help=f"working height (default {d('height')})")
    parser.add_argument("--batch-size", type=_positive_int, default=d("batch_size"),
                        help="model batch size (default: from the GPU's memory; 4 on CPU)")
    parser.add_argument("--max-batch-size", type=_positive_int, default=d("max_batch_size"),
                        help="cap on the batch size derived from GPU memory, and Ray's batch for model stages "
                             f"(default {d('max_batch_size')})")
    parser.add_argument("--no-probe", dest="probe", action="store_false", default=d("probe"),
                        help="size GPU batches from the original tool's memory table instead of a probe")
    parser.add_argument("--compile", action="store_true", default=d("compile"),
                        help="torch.compile the parser network (opt-in: each actor's first batches are slow "
                             "while it compiles; see bench/RESULTS.md for what it gains)")
    parser.add_argument("--device", default=d("device"), choices=DEVICES, help="where the models run")
    parser.add_argument("--precision", default=d("precision"), choices=PRECISIONS,
                        help="auto: bf16 (fp16 where unsupported) on GPU, fp32 on CPU")
    parser.add_argument("--limit", type=_positive_int, default=d("limit"), help="only the first N input rows")
    parser.add_argument("--num-cpus", type=_positive_int, default=d("num_cpus"),
                        help="CPUs for a local Ray instance (default: all)")
    parser.add_argument("--gpu-fraction", type=_fraction, default=d("gpu_fraction"),
                        help=f"share of a GPU each model actor asks for (default {d('gpu_fraction')}: both stages "
                             "on every GPU)")
    parser.add_argument("--address", default=d("address"),
                        help="Ray cluster to connect to (default: RAY_ADDRESS, else a local instance)")
    parser.add_argument("--max-error-rate", type=_fraction, default=d("max_error_rate"),
                        help="stop when more than this share of the first --error-rate-window rows fail "
                             f"(default {d('max_error_rate')}): a broken model or config should not make a "
                             "million error rows")
    parser.add_argument("--error-rate-window", type=_positive_int, default=d("error_rate_window"),
                        help=f"(default {d('error_rate_window')})")
    parser.add_argument("--rows-per-part", type=_positive_int, default=d("rows_per_part"),
                        help="rows per manifest part file: smaller parts lose less work to a kill, "
                             f"larger ones make resume and readers faster (default {d('rows_per_part')})")
    parser.add_argument("--progress", default=d("progress"), choices=("auto", "bars", "lines"),
                        help="progress display: bars in a terminal, plain log lines otherwise")
