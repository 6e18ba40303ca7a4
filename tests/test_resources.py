"""How the model stages are placed: pools of single-threaded actors on CPUs, one actor per GPU."""
from __future__ import annotations

import pytest

from pipeline.resources import MAX_CPU_ACTORS, ROWS_PER_CPU_ACTOR, plan_model_stages


def test_on_two_cpus_each_stage_gets_one_single_threaded_actor_per_core():
    plan = plan_model_stages(2, 0, stages=2, rows=300)
    assert (plan.actors, plan.torch_threads, plan.num_gpus) == (2, 1, 0.0)


@pytest.mark.parametrize("cpus", [1, 2, 3, 4, 8, 16, 64])
@pytest.mark.parametrize("stages", [1, 2])
def test_model_actors_reserve_at_most_half_the_cpus_so_cpu_tasks_always_fit(cpus, stages):
    plan = plan_model_stages(cpus, 0, stages=stages)
    assert stages * plan.actors * plan.num_cpus <= cpus / 2
    assert plan.num_cpus > 0
    # Together the pools' torch threads cover every core, but a stage never asks for more.
    assert cpus <= plan.actors * plan.torch_threads * stages
    assert plan.actors * plan.torch_threads <= max(cpus, 1)


def test_pools_are_capped_in_actors_and_grow_threads_instead():
    plan = plan_model_stages(16, 0, stages=2)
    assert plan.actors == MAX_CPU_ACTORS
    assert plan.torch_threads == 16 // MAX_CPU_ACTORS


def test_a_small_run_does_not_start_more_actors_than_it_has_work_for():
    assert plan_model_stages(4, 0, rows=10).actors == 1
    assert plan_model_stages(4, 0, rows=ROWS_PER_CPU_ACTOR + 1).actors == 2
    assert plan_model_stages(4, 0, rows=0).actors == 1
    # Fewer actors, so each gets more threads: the cores are still used.
    assert plan_model_stages(4, 0, rows=10).torch_threads == 4


def test_with_gpus_each_gpu_holds_one_actor_of_each_stage():
    plan = plan_model_stages(16, 2, gpu_fraction=0.5, rows=10)
    assert (plan.actors, plan.num_gpus, plan.torch_threads) == (2, 0.5, 1)
