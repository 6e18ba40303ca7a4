"""How the model stages are placed: pools of actors sharing a node's cores on CPU, one actor of
each stage per GPU, and room left for the CPU tasks."""
from __future__ import annotations

import pytest

from pipeline.resources import CPU_ACTOR_MEMORY, MAX_CPU_ACTORS, ROWS_PER_CPU_ACTOR, plan_model_stages


def test_on_two_cpus_each_stage_gets_one_single_threaded_actor_per_core():
    plan = plan_model_stages(2, 0, stages=2, rows=300)
    assert (plan.actors, plan.torch_threads, plan.num_gpus) == (2, 1, 0.0)


@pytest.mark.parametrize("cpus", [1, 2, 3, 4, 5, 6, 7, 8, 10, 16, 64])
@pytest.mark.parametrize("stages", [1, 2])
def test_actors_leave_room_for_a_cpu_task_and_every_core_has_a_thread(cpus, stages):
    plan = plan_model_stages(cpus, 0, stages=stages)
    assert 0 < plan.num_cpus < plan.task_num_cpus  # equal ones would let Ray fuse decode into the actor
    assert cpus - stages * plan.actors * plan.num_cpus >= plan.task_num_cpus  # a decode task always fits
    # A stage's threads cover every core (rounded up: a core may be shared, none left idle) ...
    assert cpus <= plan.actors * plan.torch_threads < cpus + plan.actors


def test_one_cpu_still_runs_tasks_beside_the_actors():
    plan = plan_model_stages(1, 0, stages=2)
    assert plan.task_num_cpus == 0.5 and 2 * plan.actors * plan.num_cpus <= 0.5


def test_pools_are_capped_per_node_and_grow_threads_instead():
    plan = plan_model_stages(16, 0, stages=2)
    assert (plan.actors, plan.torch_threads) == (MAX_CPU_ACTORS, 16 // MAX_CPU_ACTORS)


def test_a_cpu_cluster_gets_actors_on_every_node_with_the_threads_of_one_node():
    plan = plan_model_stages(64, 0, stages=2, nodes=16)  # 16 nodes of 4 cores
    assert (plan.actors, plan.torch_threads) == (64, 1)
    plan = plan_model_stages(64, 0, stages=2, nodes=4)  # 4 nodes of 16 cores
    assert (plan.actors, plan.torch_threads) == (4 * MAX_CPU_ACTORS, 16 // MAX_CPU_ACTORS)


def test_a_small_run_does_not_start_more_actors_than_it_has_work_for():
    assert plan_model_stages(4, 0, rows=10).actors == 1
    assert plan_model_stages(4, 0, rows=ROWS_PER_CPU_ACTOR + 1).actors == 2
    assert plan_model_stages(4, 0, rows=0).actors == 1
    # Fewer actors, so each gets more threads: the cores are still used.
    assert plan_model_stages(4, 0, rows=10).torch_threads == 4


def test_a_small_memory_caps_the_models_held_at_once():
    roomy = plan_model_stages(8, 0, stages=2, memory=64 * 2**30)
    assert roomy.actors == MAX_CPU_ACTORS
    tight = plan_model_stages(8, 0, stages=2, memory=2 * 2 * CPU_ACTOR_MEMORY)
    assert (tight.actors, tight.torch_threads) == (2, 4)
    assert plan_model_stages(8, 0, stages=2, memory=2**30).actors == 1  # never fewer than one


def test_with_gpus_each_gpu_holds_one_actor_of_each_stage():
    plan = plan_model_stages(16, 2, gpu_fraction=0.5, rows=10)
    assert (plan.actors, plan.num_gpus, plan.torch_threads, plan.task_num_cpus) == (2, 0.5, 1, 1.0)


def test_with_densepose_three_model_actors_fit_on_each_gpu():
    plan = plan_model_stages(cluster_cpus=16, cluster_gpus=1, gpu_fraction=0.5, stages=3)
    assert plan.actors == 1 and plan.num_gpus * 3 <= 1.0
    assert plan_model_stages(cluster_cpus=16, cluster_gpus=1, gpu_fraction=0.25, stages=3).num_gpus == 0.25


def test_keypoint_files_are_read_inside_the_mask_task(tmp_path, capsys):
    """--pose-from asks for the mask task's CPUs, so Ray Data fuses the two into one task (no
    second task, no second trip of the batch through the object store)."""
    import pyarrow as pa
    import ray

    from pipeline.config import RunConfig
    from pipeline.dataflow import build_dataset

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rows = pa.table({"id": ["a", "b"], "source": ["a.jpg", "b.jpg"], "status": ["pending"] * 2,
                         "error": [""] * 2})
        config = RunConfig(input=str(tmp_path), output=str(tmp_path / "out"), pose_from=str(tmp_path))
        plan = plan_model_stages(2, 0, rows=2)
        capsys.readouterr()
        build_dataset(rows, config, {}, plan, "cpu", "fp32").explain()
        physical = capsys.readouterr().out.split("Physical Plan (Optimized)")[-1]
        assert "MapBatches(pose_from_files_batch)->MapBatches(mask_batch)" in physical, physical
        assert "MapBatches(write_batch)" in physical  # the writes stay light tasks of their own
    finally:
        if started:
            ray.shutdown()
