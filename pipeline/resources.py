"""Devices, precision and how the model stages share a node's CPUs and GPUs."""
from __future__ import annotations

from dataclasses import dataclass

from .schema import DEVICES, PRECISIONS


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_device(device: str = "auto") -> str:
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r} (expected {', '.join(DEVICES)})")
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device == "cuda" and not cuda_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA GPU")
    return device


def resolve_precision(device: str, precision: str = "auto") -> str:
    """bf16 autocast on GPUs that support it, fp16 on older ones, fp32 on the CPU."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (expected {', '.join(PRECISIONS)})")
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def torch_dtype(precision: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


@dataclass(frozen=True)
class StagePlan:
    """How one model stage is placed (pool size, what each actor reserves), and what each CPU
    task (decode, mask) reserves beside it."""

    actors: int
    num_gpus: float
    num_cpus: float
    torch_threads: int
    task_num_cpus: float = 1.0


# On CPU-only nodes: at most this many actors per model stage and node, one actor per this many
# rows (an actor costs 2-4 s of CPU to start), and this much memory counted per actor (Ray saw
# 0.7-0.8 GB per actor with the bundled parser and the pose network; SegFormer-B5 takes more).
MAX_CPU_ACTORS = 4
ROWS_PER_CPU_ACTOR = 32
CPU_ACTOR_MEMORY = 1.5 * 2**30


def plan_model_stages(cluster_cpus: float, cluster_gpus: float, gpu_fraction: float = 0.5,
                      stages: int = 2, rows: int | None = None, nodes: int = 1,
                      memory: float | None = None) -> StagePlan:
    """Both model stages live on every GPU; without GPUs they share the CPUs with the CPU tasks.

    On CPU the model stages run chained in one pool (pipeline.modelstage.StageChain; `stages`
    still counts the models each actor holds, for memory). The pool has up to one actor per
    core of a node (at most
    MAX_CPU_ACTORS per node), with the node's cores split between them, rather than one
    multi-threaded actor: whichever stage is the bottleneck then has every core (the OS shares
    them out between busy processes), and on a small node each actor has one torch thread, so
    OpenMP threads of different processes do not spin against each other. A 2-core machine ran
    300 photos at 4.1 photos/s with 2 single-thread actors per stage, against 3.5 with one
    2-thread actor per stage (bench/RESULTS.md, Throughput). `memory` (Ray's memory resource)
    caps the actors so that a small VM does not start more models than it can hold.

    The actors together reserve at most half of the CPUs, so decode and mask tasks always find
    room (on 2 cores two actors each holding a whole core would leave none and the run would
    hang); below 2 CPUs the tasks ask for half a core.
    """
    cpus = max(1.0, float(cluster_cpus))
    task_cpus = 1.0 if cpus >= 2 else 0.5
    gpus = int(cluster_gpus)
    if gpus > 0:
        # Every stage has one actor on every GPU: with three models (DensePose on) each asks for a
        # third at most, or the third pool would never be placed.
        return StagePlan(actors=gpus, num_gpus=min(gpu_fraction, 1.0 / max(1, stages)), num_cpus=1.0,
                         torch_threads=1, task_num_cpus=task_cpus)
    nodes = max(1, int(nodes))
    node_cpus = max(1, int(cpus // nodes))
    actors = nodes * min(node_cpus, MAX_CPU_ACTORS)
    if rows is not None:
        actors = min(actors, -(-max(1, rows) // ROWS_PER_CPU_ACTOR))
    if memory is not None:
        actors = min(actors, int(memory // (stages * CPU_ACTOR_MEMORY)))
    actors = max(1, actors)
    per_node = -(-actors // nodes)
    threads = -(-node_cpus // per_node)  # round up: a spare core is worse than a shared one
    # Strictly below a task's reservation: Ray Data fuses a task stage into the next actor stage
    # when their resources match, which would run decode inside the model actor, one after the other.
    return StagePlan(actors=actors, num_gpus=0.0, num_cpus=min(task_cpus / 2, cpus / (2 * stages * actors)),
                     torch_threads=threads, task_num_cpus=task_cpus)
