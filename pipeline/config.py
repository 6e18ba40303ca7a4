"""A run's settings: one definition shared by the CLI, the job entrypoint, run.json and resume."""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields

from .labels import CATEGORIES
from .masks import STYLES
from .parser import DEFAULT_PARSER
from .resources import DEVICES, PRECISIONS

DEFAULT_POSE = "lllyasviel/Annotators"
FILLS = ("green", "gray")
LABEL_SCHEMAS = ("auto", "atr18", "lip20", "fashn18")

# Settings that change what a row's outputs are; a resumed run must match them (run.json).
OUTPUT_DEFINING = ("parser", "labels", "pose", "pose_from", "style", "category", "width", "height", "fill", "ootd_variant")


@dataclass
class RunConfig:
    input: str
    output: str
    category: str = "upper_body"
    style: str = "rect"
    parser: str = DEFAULT_PARSER
    labels: str = "auto"
    pose: str = DEFAULT_POSE  # "none" switches the pose stage off
    pose_from: str | None = None  # keypoints from the dataset's files instead of the model
    fill: str = "green"
    ootd_variant: str = "hd"
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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "RunConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in vars(args).items() if k in names})


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


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The `run` options; the CLI and jobs/mask_dataset.py both use this one definition."""
    parser.add_argument("input", help="a folder (recursive), a glob, or a manifest .csv/.parquet/.jsonl "
                        "with a path column (path, image, image_path or file) and optional category/mask_type")
    parser.add_argument("--output", "-o", required=True, help="output folder (local path or s3://...)")
    parser.add_argument("--category", default="upper_body", choices=CATEGORIES,
                        help="category of rows that have none of their own (default: upper_body)")
    parser.add_argument("--style", default="rect", choices=STYLES, help="mask style (default: rect)")
    parser.add_argument("--parser", default=DEFAULT_PARSER, metavar="ID_OR_DIR",
                        help=f"SegFormer checkpoint: hub id or local folder (default: {DEFAULT_PARSER})")
    parser.add_argument("--labels", default="auto", choices=LABEL_SCHEMAS,
                        help="label schema of the parser; auto maps by the checkpoint's label names")
    parser.add_argument("--pose", default=DEFAULT_POSE, metavar="ID_OR_DIR|none",
                        help=f"OpenPose body model: hub id or folder with body_pose_model.pth, or none "
                             f"(default: {DEFAULT_POSE})")
    parser.add_argument("--pose-from", default=None, metavar="DIR",
                        help="use the dataset's keypoint files instead of the pose model: OpenPose JSON "
                             "(ours, VITON-HD's *_keypoints.json) or DressCode's *_2.json, matched by id or file stem")
    parser.add_argument("--fill", default="green", choices=FILLS,
                        help="masked-photo fill: green (0,255,0) like the original tool, gray 127 like OOTDiffusion")
    parser.add_argument("--ootd-variant", default="hd", choices=("hd", "dc"), help="ootd style arm band width")
    parser.add_argument("--width", type=_size, default=576, help="working width (default 576)")
    parser.add_argument("--height", type=_size, default=768, help="working height (default 768)")
    parser.add_argument("--batch-size", type=_positive_int, default=None, help="model batch size (default: from the GPU's memory; 4 on CPU)")
    parser.add_argument("--max-batch-size", type=_positive_int, default=64,
                        help="cap on the batch size derived from GPU memory, and Ray's batch for model stages")
    parser.add_argument("--no-probe", dest="probe", action="store_false",
                        help="size GPU batches from the original tool's memory table instead of a probe")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the parser network (opt-in: each actor's first batches are slow "
                             "while it compiles; see bench/RESULTS.md for what it gains)")
    parser.add_argument("--device", default="auto", choices=DEVICES, help="where the models run")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="auto: bf16 (fp16 where unsupported) on GPU, fp32 on CPU")
    parser.add_argument("--limit", type=_positive_int, default=None, help="only the first N input rows")
    parser.add_argument("--num-cpus", type=_positive_int, default=None,
                        help="CPUs for a local Ray instance (default: all)")
    parser.add_argument("--gpu-fraction", type=_fraction, default=0.5,
                        help="share of a GPU each model actor asks for (default 0.5: both stages on every GPU)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster to connect to (default: RAY_ADDRESS, else a local instance)")
    parser.add_argument("--max-error-rate", type=_fraction, default=0.5,
                        help="stop when more than this share of the first --error-rate-window rows fail "
                             "(default 0.5): a broken model or config should not make a million error rows")
    parser.add_argument("--error-rate-window", type=_positive_int, default=200, help="(default 200)")
    parser.add_argument("--rows-per-part", type=_positive_int, default=64,
                        help="rows per manifest part file: smaller parts lose less work to a kill, "
                             "larger ones make resume and readers faster (default 64)")
    parser.add_argument("--progress", default="auto", choices=("auto", "bars", "lines"),
                        help="progress display: bars in a terminal, plain log lines otherwise")
