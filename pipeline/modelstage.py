"""The base every model stage shares: one place for what a stage does around its model.

A concrete stage (pipeline/parser.py, pipeline/pose.py, a plug-in) keeps only what is its own,
in the spirit of the transformers pipelines' preprocess / _forward / postprocess split:

* `load(source, ...)`: build the model once per actor;
* `infer(images)`: one chunk of working-size images through the model (its preprocess, forward
  and postprocess), returning the model's result for that chunk;
* `concat(results)`, `empty_columns(count)`, `store(columns, rows, result)`: how results become
  the batch columns the stage adds.

The base does the rest: torch threads, device and precision, the batch size from the GPU's
memory, out-of-memory splitting, the rows still pending, per-row error isolation and timing.
"""
from __future__ import annotations

import time

import numpy as np

from .schema import ERROR, PENDING, first_line


class ModelStage:
    """A callable on a batch (dict of numpy arrays) that runs a model on the rows still pending.

    Reads the `image` column (uint8 (N, height, width, 3), the working size), `status` and
    `error`; adds the subclass's columns and `ms_<name>`. A chunk the model fails on is retried
    one row at a time, so a row that fails alone becomes that row's error and the others go on.
    """

    name = "model"  # the stage's name in logs, errors and its timing column (ms_<name>)
    memory_seed = (2.5 * 2**30, 0.5 * 2**30)  # fixed, per-image bytes for --no-probe (batching)

    def __init__(self, source: str, *, device: str = "cpu", precision: str = "fp32",
                 torch_threads: int | None = None, batch_size: int | None = None, max_batch_size: int = 64,
                 gpu_share: float = 0.5, probe: bool = True, width: int = 576, height: int = 768, **options):
        from .batching import AdaptiveBatches, choose_batch_size
        from .resources import resolve_device, resolve_precision

        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        self.device = resolve_device(device) if device == "auto" else device
        self.precision = resolve_precision(str(self.device), precision)
        self.width, self.height = int(width), int(height)
        self.model = self.load(source, device=self.device, precision=self.precision,
                               max_batch_size=max_batch_size, **options)
        size, self.memory_model = choose_batch_size(
            stage=self.name, device=str(self.device), requested=batch_size, max_batch=max_batch_size,
            share=gpu_share, use_probe=probe, seed=self.memory_seed,
            run_probe=lambda n: self.infer(self.probe_inputs(n)))
        self.run = AdaptiveBatches(self.infer, size, self.concat, name=self.name)

    # -- what a concrete stage provides -------------------------------------------------------

    def load(self, source: str, *, device: str, precision: str, max_batch_size: int, **options):
        raise NotImplementedError

    def infer(self, images: np.ndarray):
        raise NotImplementedError

    def inputs(self, batch: dict, rows: np.ndarray):
        """The model's inputs for `rows` of the batch, in row order (sliceable): the working-size
        images. A stage whose model reads other pixels overrides it (DensePose decodes the photo
        from the row's bytes, at its own input size)."""
        return batch["image"][rows]

    def probe_inputs(self, count: int):
        """`count` inputs of the size a run feeds, for the GPU memory probe."""
        return np.zeros((count, self.height, self.width, 3), np.uint8)

    def concat(self, results: list):
        return np.concatenate(results)

    def empty_columns(self, images: np.ndarray) -> dict:
        """The stage's columns for a batch of `images` before any row is filled (typed, never all-null)."""
        raise NotImplementedError

    def store(self, columns: dict, rows: np.ndarray, result) -> None:
        """Writes `result` (for `rows`, in order) into `columns`."""
        raise NotImplementedError

    # -- the shared part ----------------------------------------------------------------------

    def __call__(self, batch: dict) -> dict:
        images = batch["image"]
        status = np.array(batch["status"], dtype=object)
        error = np.array(batch["error"], dtype=object)
        columns = self.empty_columns(images)
        timing = np.zeros(len(images), dtype=np.float32)
        pending = np.flatnonzero(status == PENDING)
        if pending.size:
            started = time.perf_counter()
            try:
                inputs = self.inputs(batch, pending)
                self.store(columns, pending, self.run(inputs))
            except Exception:  # noqa: BLE001 - one row the model fails on must not fail its batch
                for index, row in enumerate(pending):
                    try:
                        self.store(columns, np.array([row]), self.infer(self.inputs(batch, pending[index:index + 1])))
                    except Exception as failure:  # noqa: BLE001
                        status[row] = ERROR
                        error[row] = f"{self.name} stage failed: {type(failure).__name__}: {first_line(failure)}"
            timing[pending] = (time.perf_counter() - started) * 1000.0 / pending.size
        out = dict(batch)
        out.update(columns, status=status, error=error)
        out[f"ms_{self.name}"] = timing
        out[f"left_{self.name}"] = np.full(len(images), time.time())
        return out


class StageChain:
    """Several model stages in one actor, run one after the other on each batch.

    Why: on a CPU-only node the model stages share the same cores. As separate actor pools, the
    first (parse) runs ahead through most of the photos while the second (pose) starts late, so
    the first outputs appear late and the stages end one after the other. Chained in one actor,
    every batch goes through both models at once and rows come out from the first batches on,
    for the same CPU work. GPU nodes keep one pool per stage (each GPU holds one actor of each).

    stages: (stage class or `package.module:name` reference, constructor args, kwargs) each.
    """

    def __init__(self, stages: list):
        from .plugins import load_reference

        self.stages = []
        for stage, args, kwargs in stages:
            cls = load_reference(stage, "model stage") if isinstance(stage, str) else stage
            self.stages.append(cls(*args, **kwargs))

    def __call__(self, batch: dict) -> dict:
        for stage in self.stages:
            batch = stage(batch)
        return batch
