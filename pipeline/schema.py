"""The names every stage shares, defined once: statuses, timings, file kinds, keypoints, precisions,
and the error base class of everything a user can cause.

A stage reads and adds batch columns by these names (docs/architecture.md lists the columns);
the manifest's schema (pipeline/sinks.py) is built from them.
"""
from __future__ import annotations

# Row statuses. PENDING only lives between stages: every row leaves the pipeline as one of the others.
PENDING, OK, ERROR, SKIPPED = "pending", "ok", "error", "skipped"
FINAL_STATUSES = (OK, ERROR, SKIPPED)

# Per-row stage timings (ms), in stage order: batch columns, manifest columns and summary keys.
TIMINGS = ("ms_decode", "ms_parse", "ms_pose", "ms_densepose", "ms_mask", "ms_write")

# Files a row can have. The mask stage encodes them as `<kind>_bytes` (+ `<kind>_ext`); the
# output layout names them; the manifest records each as `<kind>_path`.
FILE_KINDS = ("mask", "masked", "parse", "pose", "crop", "densepose")

# When each row left each stage (epoch seconds, float64): batch columns the driver collects into
# the run's timeline (`Progress.timeline`, bench/throughput.py); not in the manifest.
LEFT = ("left_decode", "left_parse", "left_pose", "left_densepose", "left_mask", "left_write")

# Keypoints: COCO-18, the order OpenPose's COCO model and controlnet_aux use.
NUM_KEYPOINTS = 18
COCO18_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
# The limbs OpenPose draws (its limbSeq, 0-based), in its drawing order.
COCO18_LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
                (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))

# The EXIF Software tag (0x0131) of every file `masked_image` writes. A folder run that meets such
# a file (the tool's own output next to its inputs) gives it a row with status `skipped` and the
# flag TOOL_OUTPUT_FLAG, and writes nothing for it.
TOOL_OUTPUT_SOFTWARE = "vton-masks masked_image"
TOOL_OUTPUT_FLAG = "tool_output"
EXIF_SOFTWARE = 0x0131

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class VtonError(Exception):
    """Something the user can fix (a bad input, option, model or output folder).

    Its message is one line that says what is wrong and the way out; the CLI prints it as
    `error: <message>` and exits 1, never with a traceback.
    """


class ModelLoadError(VtonError):
    """A model that cannot be found or loaded; the run stops at start with this message."""


def first_line(error: BaseException) -> str:
    """An exception's first line without a trailing full stop, for one-line messages."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(". ")
