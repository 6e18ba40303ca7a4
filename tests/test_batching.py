"""Batch sizes from memory, and OOM recovery (errors injected on the CPU)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.batching import AdaptiveBatches, MemoryModel, choose_batch_size, fit, is_out_of_memory


def oom_above(limit: int, calls: list):
    def run(chunk):
        calls.append(len(chunk))
        if len(chunk) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return np.asarray(chunk) * 10
    return run


def test_oom_splits_in_halves_keeps_every_row_in_order_and_lowers_the_batch():
    calls = []
    runner = AdaptiveBatches(oom_above(3, calls), batch_size=16, concat=np.concatenate)
    items = np.arange(16)
    assert np.array_equal(runner(items), items * 10)
    assert calls[:3] == [16, 8, 4] and max(calls[3:]) <= 2
    assert runner.batch_size == 2
    calls.clear()
    assert np.array_equal(runner(np.arange(5)), np.arange(5) * 10)
    assert calls == [2, 2, 1]  # the lowered size holds for later batches: no repeated failures


def test_a_single_image_that_does_not_fit_raises():
    runner = AdaptiveBatches(oom_above(0, []), batch_size=4, concat=np.concatenate)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        runner(np.arange(4))


def test_other_errors_are_not_retried():
    calls = []

    def broken(chunk):
        calls.append(len(chunk))
        raise ValueError("shape mismatch")

    with pytest.raises(ValueError):
        AdaptiveBatches(broken, batch_size=8, concat=np.concatenate)(np.arange(8))
    assert calls == [8]


def test_out_of_memory_is_recognised_by_type_and_message():
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("x"))
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not is_out_of_memory(RuntimeError("device-side assert"))


def test_the_memory_model_fits_a_line_and_picks_the_largest_batch_that_fits():
    model = fit([(1, 3.0e9), (4, 4.5e9), (8, 6.5e9)])
    assert model.fixed == pytest.approx(2.5e9, rel=1e-6) and model.per_image == pytest.approx(0.5e9, rel=1e-6)
    assert model.predict(10) == pytest.approx(7.5e9)
    assert model.largest_batch(7.6e9) == 10
    assert model.largest_batch(100e9, cap=64) == 64
    assert model.largest_batch(1e9) == 1  # never below one image
    assert MemoryModel(1e9, 0.0, "probe").largest_batch(2e9, cap=32) == 32


def test_choose_batch_size_on_cpu_and_forced():
    assert choose_batch_size(stage="parse", device="cpu", requested=None, max_batch=64, share=1.0,
                             run_probe=None) == (4, None)
    assert choose_batch_size(stage="parse", device="cuda", requested=7, max_batch=64, share=0.5,
                             run_probe=None) == (7, None)


def test_parse_stage_recovers_from_an_injected_oom(tiny_parser_dir):
    from pipeline.parser import ParseStage

    stage = ParseStage(str(tiny_parser_dir), batch_size=8, width=48, height=64)
    real = stage.parser.parse
    seen = []

    def flaky(images):
        seen.append(len(images))
        if len(images) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real(images)

    stage.run.fn = flaky
    images = np.random.default_rng(0).integers(0, 255, (8, 64, 48, 3), dtype=np.uint8)
    batch = {"image": images, "status": np.array(["pending"] * 7 + ["error"], dtype=object),
             "error": np.array([""] * 7 + ["cannot decode"], dtype=object)}
    out = stage(batch)
    assert out["labels"].shape == (8, 64, 48)
    assert np.array_equal(out["labels"][:7], real(images[:7]))
    assert stage.run.batch_size == 1 and seen[0] == 7
