"""Model batch sizes from the GPU's memory, and recovery from CUDA out-of-memory errors.

Ray Data hands a model actor batches of at most `--max-batch-size` rows; the actor re-chunks them
into its own batch size, which it derives from the memory of the GPU it landed on. So one
dataset serves a cluster of mixed GPUs, and an out-of-memory error lowers only that actor's size.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

log = logging.getLogger("pipeline")

GIB = 1024 ** 3
DEFAULT_BUDGET = 0.8  # of the memory free when the actor starts
DEFAULT_MAX_BATCH = 64



@dataclass(frozen=True)
class MemoryModel:
    """Peak device memory of one forward pass: fixed + per_image x batch."""

    fixed: float
    per_image: float
    source: str  # "probe" or "seed table"

    def predict(self, batch: int) -> float:
        return self.fixed + self.per_image * batch

    def largest_batch(self, budget: float, cap: int = DEFAULT_MAX_BATCH) -> int:
        if self.per_image <= 0:
            return cap
        return int(max(1, min(cap, math.floor((budget - self.fixed) / self.per_image))))


def fit(points: Sequence[tuple[int, float]]) -> MemoryModel:
    """Least-squares line through (batch, peak bytes) points."""
    batches = np.array([p[0] for p in points], dtype=np.float64)
    peaks = np.array([p[1] for p in points], dtype=np.float64)
    slope, intercept = np.polyfit(batches, peaks, 1)
    return MemoryModel(fixed=float(max(intercept, 0.0)), per_image=float(max(slope, 0.0)), source="probe")


def probe(run: Callable[[int], object], device, batches: Sequence[int] = (1, 4)) -> MemoryModel:
    """Measures peak allocated memory of `run(batch)` at a few batch sizes and fits the line."""
    import torch

    points = []
    for batch in batches:
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        run(batch)
        torch.cuda.synchronize(device)
        points.append((batch, float(torch.cuda.max_memory_allocated(device))))
    return fit(points)


def memory_budget(device, share: float, budget: float = DEFAULT_BUDGET) -> float:
    """Bytes this actor may use: `budget` of the device's free memory times its share of the GPU."""
    import torch

    free, _total = torch.cuda.mem_get_info(device)
    return float(free + torch.cuda.memory_allocated(device)) * budget * share


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


class AdaptiveBatches:
    """Runs `fn` over a batch in chunks of `batch_size`; an OOM splits the chunk in halves.

    The split recurses down to single images, and the lowered size holds for the rest of the
    actor's life, so one oversized photo mix costs one retry, not one per batch. No row is lost:
    a single image that still does not fit raises, and the stage marks that batch's rows.
    """

    def __init__(self, fn: Callable, batch_size: int, concat: Callable[[list], object], name: str = "model"):
        self.fn, self.batch_size, self.concat, self.name = fn, max(1, int(batch_size)), concat, name
        self.splits = 0

    def __call__(self, items):
        results, start = [], 0
        while start < len(items):
            size = self.batch_size  # re-read each time: an OOM in the last chunk may have lowered it
            results.append(self._run(items[start:start + size]))
            start += size
        return results[0] if len(results) == 1 else self.concat(results)

    def _run(self, chunk):
        try:
            return self.fn(chunk)
        except Exception as error:
            if not is_out_of_memory(error) or len(chunk) <= 1:
                raise
        _release_cached_memory()
        self.splits += 1
        half = len(chunk) // 2
        if half < self.batch_size:
            log.warning("%s: out of GPU memory at batch %d; batch size lowered to %d for this actor",
                        self.name, len(chunk), half)
            self.batch_size = half
        return self(chunk)


def _release_cached_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def choose_batch_size(*, stage: str, device: str, requested: int | None, max_batch: int,
                      share: float, run_probe: Callable[[int], object] | None, use_probe: bool = True,
                      seed: tuple[float, float] = (2.5 * GIB, 0.5 * GIB), budget: float = DEFAULT_BUDGET,
                      cpu_default: int = 4) -> tuple[int, MemoryModel | None]:
    """The actor's batch size: forced by --batch-size, else from the GPU's memory, else a CPU default.

    seed: (fixed, per-image bytes) for --no-probe, each model stage's own estimate from the
    original tool's memory guide (`ModelStage.memory_seed`); deliberately pessimistic fallbacks.
    """
    if requested:
        return requested, None
    if not str(device).startswith("cuda"):
        return min(cpu_default, max_batch), None
    if use_probe and run_probe is not None:
        model = probe(run_probe, device)
    else:
        model = MemoryModel(*seed, source="seed table")
    size = model.largest_batch(memory_budget(device, share, budget), cap=max_batch)
    log.warning("%s on %s: memory model %.2f GiB + %.3f GiB/image (%s) -> batch %d",
                stage, device, model.fixed / GIB, model.per_image / GIB, model.source, size)
    return size, model
