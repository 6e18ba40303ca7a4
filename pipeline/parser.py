"""Parse stage: SegFormer human parsing, mapped onto the canonical ATR-18 labels.

Follows the transformers pipeline split: `preprocess` (checkpoint's own size, mean and std,
applied on the device to uint8 input), `_forward` (the only step that touches the model) and
`postprocess` (logits upsampled to the working size and argmax on the device; only uint8 label
maps come back to the host, then the label mapping).
"""
from __future__ import annotations

import os
from contextlib import nullcontext

import numpy as np

from .labels import LabelMapping, mapping_for
from .modelstage import ModelStage
from .registry import DEFAULT_PARSER
from .resources import torch_dtype
from .schema import ModelLoadError, first_line


def _load_error(source: str, error: Exception) -> ModelLoadError:
    """One line naming the checkpoint; the way out depends on whether it is a folder or a hub id."""
    reason = first_line(error)
    if os.path.isdir(os.path.expanduser(source)):
        return ModelLoadError(
            f"cannot load the parser folder {source!r}: {type(error).__name__}: {reason}. A SegFormer "
            "checkpoint folder holds config.json and model.safetensors (as save_pretrained writes them)")
    if looks_like_path(source):
        return ModelLoadError(f"the parser folder {source!r} does not exist; pass --parser a SegFormer "
                              "checkpoint folder or a Hugging Face hub id")
    return ModelLoadError(
        f"cannot load the parser {source!r}: {type(error).__name__}: {reason}. "
        f"Without network access, download it elsewhere and pass its local folder with --parser /path/to/folder "
        f"(or set HF_HOME to a cache that holds it and HF_HUB_OFFLINE=1)")


def looks_like_path(source: str) -> bool:
    """A hub id is `owner/name`; anything else (absolute, relative with ./, deeper) is a path."""
    return source.startswith((os.sep, ".", "~")) or source.count("/") != 1


class SegformerParser:
    """Loads a SegFormer checkpoint (hub id or local folder) once; `parse` runs a batch."""

    def __init__(self, source: str = DEFAULT_PARSER, labels: str = "auto", device: str = "cpu",
                 precision: str = "fp32", compile: bool = False):
        import torch
        from transformers import SegformerForSemanticSegmentation, SegformerImageProcessor

        self.source = str(source)
        self.device = torch.device(device)
        self.precision = precision
        try:
            self.model = SegformerForSemanticSegmentation.from_pretrained(self.source)
        except Exception as error:  # transformers raises OSError, ValueError, HF hub errors...
            raise _load_error(self.source, error) from error
        try:
            processor = SegformerImageProcessor.from_pretrained(self.source)
        except Exception:
            processor = SegformerImageProcessor()  # a checkpoint without preprocessor_config.json
        self.mapping: LabelMapping = mapping_for(self.model.config.id2label, labels)
        self.model.to(self.device).eval()
        # Opt-in torch.compile of the network (--compile): the first batches of each new shape are
        # slow while it compiles; whether it pays off is measured (bench/gpu_check.py), not assumed.
        self.compiled = bool(compile)
        self._network = torch.compile(self.model) if self.compiled else self.model
        size = processor.size
        self.input_size = (int(size["height"]), int(size["width"])) if processor.do_resize else None
        scale = float(processor.rescale_factor) if processor.do_rescale else 1.0
        mean = np.asarray(processor.image_mean if processor.do_normalize else [0.0] * 3, dtype=np.float32)
        std = np.asarray(processor.image_std if processor.do_normalize else [1.0] * 3, dtype=np.float32)
        # Rescale and normalize folded into one multiply-add: x * scale / std - mean / std.
        self._multiplier = torch.tensor(scale / std, device=self.device).view(1, 3, 1, 1)
        self._offset = torch.tensor(-mean / std, device=self.device).view(1, 3, 1, 1)

    def _autocast(self):
        import torch

        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch_dtype(self.precision))

    def preprocess(self, images: np.ndarray):
        import torch
        import torch.nn.functional as F

        pixels = torch.from_numpy(np.ascontiguousarray(images)).to(self.device, non_blocking=True)
        pixels = pixels.permute(0, 3, 1, 2).float()
        if self.input_size is not None and tuple(pixels.shape[-2:]) != self.input_size:
            # The image processor resizes with PIL's bilinear filter, which antialiases when shrinking.
            pixels = F.interpolate(pixels, size=self.input_size, mode="bilinear", align_corners=False,
                                   antialias=True)
        return pixels * self._multiplier + self._offset

    def _forward(self, pixel_values):
        with self._autocast():
            return self._network(pixel_values=pixel_values).logits

    def postprocess(self, logits, size: tuple[int, int]) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        logits = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
        model_labels = logits.argmax(dim=1).to(dtype=torch.uint8).cpu().numpy()
        return self.mapping.apply(model_labels)

    def parse(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) RGB -> uint8 (N, H, W) canonical labels at the same size."""
        import torch

        if len(images) == 0:
            return np.zeros((0, *images.shape[1:3]), dtype=np.uint8)
        with torch.inference_mode():
            logits = self._forward(self.preprocess(images))
            return self.postprocess(logits, tuple(images.shape[1:3]))


class ParseStage(ModelStage):
    """The parse stage: canonical label maps (`labels`, uint8 (N, H, W) at the working size)."""

    name = "parse"
    # The original tool's memory guide for SegFormer-B5: weights, CUDA context and workspace, then
    # per image at 576x768.
    memory_seed = (2.5 * 2**30, 0.5 * 2**30)

    def load(self, source: str, *, device: str, precision: str, max_batch_size: int, labels: str = "auto",
             compile: bool = False) -> SegformerParser:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # one bar per actor floods the job log
        return SegformerParser(source, labels=labels, device=device, precision=precision, compile=compile)

    @property
    def parser(self) -> SegformerParser:
        return self.model

    def infer(self, images: np.ndarray) -> np.ndarray:
        return self.model.parse(images)

    def empty_columns(self, images: np.ndarray) -> dict:
        return {"labels": np.zeros(images.shape[:3], dtype=np.uint8)}

    def store(self, columns: dict, rows: np.ndarray, result: np.ndarray) -> None:
        columns["labels"][rows] = result


def load_parser_config(source: str):
    """The checkpoint's config only (cheap): lets a run check the model and its labels at start."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(source))
    except Exception as error:
        raise _load_error(str(source), error) from error


# A key of the bundled parser's config.json: a checkpoint that is for the demo and tests only says
# so, and a run that uses it shows this text as its one warning (and in run.json and the report).
DEMO_MARKER = "vton_masks_demo"


def check_source(source: str, labels: str = "auto") -> str | None:
    """Start-up check: the checkpoint's config is found and its labels map onto ATR-18
    (ModelLoadError, LabelSchemaError). Returns the demo checkpoint's warning, if it is one."""
    config = load_parser_config(source)
    mapping_for(config.id2label, labels)
    note = getattr(config, DEMO_MARKER, None)
    return str(note) if note else None
