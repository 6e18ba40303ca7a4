"""DensePose (detectron2's densepose_rcnn_R_50_FPN_s1x) without detectron2: plain PyTorch + torchvision ops.

Loads detectron2's released checkpoint pickle and reproduces DefaultPredictor's inference (tests compare
step by step with detectron2's outputs), with batching over photos of different sizes and the DensePose
branch run only on the persons that are needed. Importing this package needs torch, torchvision, numpy
and Pillow; not Ray, not detectron2.

    from pipeline.densepose import load_checkpoint, part_index_map
    model = load_checkpoint("model_final_162be9.pkl")
    results = model.predict([photo_rgb, ...])            # densepose="main" by default
    parts = part_index_map(results[0], h, w)             # uint8 HxW, 0 = background, 1..24 parts
    fixed, per_image = memory_seed(h, w)                 # bytes, for batch sizing (CPU measurement)
"""

from .charts import MAIN_PERSON_MIN_SCORE, chart_result, main_person, part_index_map
from .checkpoint import infer_config, load_checkpoint, read_checkpoint, save_checkpoint
from .config import DensePoseConfig
from .model import (
    ChartOutputs,
    DensePoseRCNN,
    DensePoseResult,
    Detections,
    PreparedBatch,
    build_model,
    memory_seed,
)

__all__ = [
    "MAIN_PERSON_MIN_SCORE",
    "ChartOutputs",
    "DensePoseConfig",
    "DensePoseRCNN",
    "DensePoseResult",
    "Detections",
    "PreparedBatch",
    "build_model",
    "chart_result",
    "infer_config",
    "load_checkpoint",
    "main_person",
    "memory_seed",
    "part_index_map",
    "read_checkpoint",
    "save_checkpoint",
]
