"""Parse stage: SegFormer human parsing, mapped onto the canonical ATR-18 labels.

Follows the transformers pipeline split: `preprocess` (checkpoint's own size, mean and std,
applied on the device to uint8 input), `_forward` (the only step that touches the model) and
`postprocess` (logits upsampled to the working size and argmax on the device; only uint8 label
maps come back to the host, then the label mapping).
"""
from __future__ import annotations

import time
from contextlib import nullcontext

import numpy as np

from .labels import LabelMapping, mapping_for
from .resources import torch_dtype

DEFAULT_PARSER = "matei-dorian/segformer-b5-finetuned-human-parsing"
FAST_PARSER = "mattmdjaga/segformer_b2_clothes"


class ModelLoadError(RuntimeError):
    """A model that cannot be loaded; the run stops at start with this message."""


def _load_error(kind: str, source: str, error: Exception, option: str) -> ModelLoadError:
    reason = (str(error).splitlines() or [""])[0].rstrip(". ")
    return ModelLoadError(
        f"cannot load the {kind} {source!r}: {type(error).__name__}: {reason}. "
        f"Without network access, download it elsewhere and pass its local folder with {option} /path/to/folder "
        f"(or set HF_HOME to a cache that holds it and HF_HUB_OFFLINE=1).")


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
            raise _load_error("parser", self.source, error, "--parser") from error
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


class ParseStage:
    """The parse stage on a batch: parses the rows still pending, leaves the others untouched.

    Ray's batch is re-chunked into the actor's own batch size (from the GPU's memory unless
    --batch-size forces it); a CUDA out-of-memory error halves the chunk and retries.
    """

    def __init__(self, source: str, labels: str = "auto", device: str = "cpu", precision: str = "fp32",
                 torch_threads: int | None = None, batch_size: int | None = None, max_batch_size: int = 64,
                 gpu_share: float = 0.5, probe: bool = True, width: int = 576, height: int = 768,
                 compile: bool = False):
        from transformers.utils import logging as transformers_logging

        from .batching import AdaptiveBatches, choose_batch_size

        transformers_logging.disable_progress_bar()  # one bar per actor floods the job log
        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        self.parser = SegformerParser(source, labels=labels, device=device, precision=precision, compile=compile)
        size, self.memory_model = choose_batch_size(
            stage="parse", device=device, requested=batch_size, max_batch=max_batch_size, share=gpu_share,
            use_probe=probe, run_probe=lambda n: self.parser.parse(np.zeros((n, height, width, 3), np.uint8)))
        self.run = AdaptiveBatches(self.parser.parse, size, np.concatenate, name="parse")

    def __call__(self, batch: dict) -> dict:
        from .sources import PENDING

        images = batch["image"]
        labels = np.zeros(images.shape[:3], dtype=np.uint8)
        pending = np.flatnonzero(np.asarray(batch["status"]) == PENDING)
        milliseconds = np.zeros(len(images), dtype=np.float32)
        if pending.size:
            started = time.perf_counter()
            labels[pending] = self.run(images[pending])
            milliseconds[pending] = (time.perf_counter() - started) * 1000.0 / pending.size
        out = dict(batch)
        out.update(labels=labels, ms_parse=milliseconds)
        return out


def load_parser_config(source: str):
    """The checkpoint's config only (cheap): lets a run check the model and its labels at start."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(source))
    except Exception as error:
        raise _load_error("parser", str(source), error, "--parser") from error
