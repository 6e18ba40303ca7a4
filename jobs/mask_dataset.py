"""Entrypoint for `ray job submit --working-dir . -- python jobs/mask_dataset.py INPUT --output OUT ...`.

Takes the CLI's `run` options (one definition: pipeline.config.add_run_arguments and the CLI's
resume options) plus --attempts, connects with ray.init() to the cluster the job was submitted
to (RAY_ADDRESS, set by Ray for a job; --address to override), logs plain lines (job logs are no
terminal), and ends with an exit status `ray job status` can trust:

* 0 (SUCCEEDED): every input row has its manifest row; error rows are counted in the summary line.
* 1 (FAILED): the run could not run (unreadable input, a model that cannot be loaded, an
  unreachable cluster, ...), or the cluster kept failing for --attempts runs.
* 128+N (FAILED): stopped by signal N; finished rows are kept, a resubmission completes the rest.

A node that dies in the middle of a job is first Ray's business: it retries the tasks, restarts
the actors elsewhere and rebuilds lost blocks from their lineage. When that fails (an error
reaches the driver, or no stage makes progress for --stall-timeout seconds, e.g. an actor that
cannot be restarted), the job runs again the rows that have no manifest row yet, up to
--attempts runs in all, within the same submission.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipeline.cli import add_resume_arguments, print_summary, run_with_exit_code  # noqa: E402
from pipeline.config import RunConfig, add_run_arguments  # noqa: E402

log = logging.getLogger("pipeline.job")

WRITE_TASK = "write_batch"  # Ray Data names the write stage's tasks MapBatches(write_batch)
SETTLE_TIMEOUT_S = 60.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobs/mask_dataset.py",
        description="Virtual try-on masks for a dataset, as a Ray job (the options of `python -m pipeline run`).")
    add_run_arguments(parser)
    add_resume_arguments(parser)
    parser.add_argument("--attempts", type=int, default=3,
                        help="runs in all when the cluster fails in a way Ray cannot recover in place (a lost "
                             "node); each later run does only the rows without a manifest row (default 3)")
    parser.add_argument("--stall-timeout", type=float, default=600.0, metavar="SECONDS",
                        help="a run in which no stage makes progress for this long counts as a cluster failure "
                             "(an actor that cannot be restarted after its node died); -1: never (default 600)")
    return parser


def cluster_failure(error: BaseException) -> BaseException | None:
    """The Ray system error (a dead node, worker, actor or lost object) behind error, if any."""
    import ray.exceptions as rex
    from ray.data.exceptions import ExecutionTimeoutError

    system = (rex.ActorDiedError, rex.ActorUnavailableError, rex.NodeDiedError, rex.WorkerCrashedError,
              rex.LocalRayletDiedError, rex.ObjectLostError, rex.ObjectFetchTimedOutError, rex.OwnerDiedError,
              rex.RaySystemError, ExecutionTimeoutError)
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, system):
            return error
        error = getattr(error, "cause", None) or error.__cause__ or error.__context__
    return None


def connect(address: str) -> None:
    import ray

    ray.init(address=address, logging_level=logging.WARNING)
    resources = ray.cluster_resources()
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    log.warning("connected to the Ray cluster at %s: %d nodes, %g CPUs, %g GPUs", address, len(nodes),
                resources.get("CPU", 0), resources.get("GPU", 0))


def wait_for_writes_to_settle(timeout: float = SETTLE_TIMEOUT_S) -> None:
    """Before a rerun: let write tasks of the failed run finish, so none writes a part the rerun also writes."""
    try:
        import ray
        from ray.util.state import list_tasks

        job_id = ray.get_runtime_context().get_job_id()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = [task for task in list_tasks(filters=[("job_id", "=", job_id)], limit=10000,
                                                raise_on_missing_output=False)
                    if WRITE_TASK in (task.name or "") and task.state not in ("FINISHED", "FAILED")]
            if not live:
                return
            time.sleep(1.0)
        log.warning("%d write tasks of the failed run are still running; going on", len(live))
    except Exception as error:  # the state API is a convenience here, not a requirement
        log.warning("cannot list the failed run's tasks (%s); waiting %d s instead", error, 10)
        time.sleep(10)


def run_job(args: argparse.Namespace) -> int:
    from ray.data import DataContext

    # A lost node can leave an actor pool without its actor (Ray cannot restart an actor whose
    # constructor arguments died with the node, ray-project/ray#53727): the run would wait forever.
    # Ray Data's no-progress guard turns that into an error, and the error into a rerun.
    DataContext.get_current().execution_no_progress_timeout_s = args.stall_timeout if args.stall_timeout > 0 else -1
    config = RunConfig.from_args(args)
    attempts = max(1, args.attempts)
    for attempt in range(1, attempts + 1):
        first = attempt == 1
        try:
            summary, code = run_with_exit_code(config, args.overwrite and first, args.retry_errors and first)
            if summary is None:
                return code
        except Exception as error:
            failure = cluster_failure(error)
            if failure is None:
                raise  # a bug, not the cluster: the traceback is in the job log, the status FAILED
            if attempt == attempts:
                print(f"error: the cluster failed in {attempts} runs in a row, last: {type(failure).__name__}: "
                      f"{str(failure).splitlines()[0] if str(failure) else ''}; finished rows are in the manifest, "
                      "resubmit to complete the rest", file=sys.stderr)
                return 1
            log.warning("run %d/%d lost work to a cluster failure Ray could not recover (%s: %s); running the "
                        "rows that have no manifest row again", attempt, attempts, type(failure).__name__,
                        str(failure).splitlines()[0] if str(failure) else "")
            wait_for_writes_to_settle()
            continue
        if summary.get("complete", True):
            if attempt > 1:
                log.warning("complete after %d runs", attempt)
            print_summary(summary)
            return 0
        log.warning("run %d/%d ended without every row in the manifest (%d rows); running the rest again",
                    attempt, attempts, summary["rows"])
    print("error: rows are still missing from the manifest after every attempt; resubmit to complete them",
          file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stdout)
    # Progress bars are for terminals; a job log gets a plain line every few seconds instead.
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    args = build_parser().parse_args(argv)
    if args.progress == "auto":
        args.progress = "lines"
    # Inside a submitted job Ray sets RAY_ADDRESS; "auto" finds the cluster when run on a node by hand.
    args.address = args.address or os.environ.get("RAY_ADDRESS") or "auto"
    try:
        connect(args.address)
    except Exception as error:  # ConnectionError, ValueError for a bad address, auth errors...
        print(f"error: cannot connect to the Ray cluster at {args.address}: {type(error).__name__}: {error}",
              file=sys.stderr)
        return 1
    return run_job(args)


if __name__ == "__main__":
    sys.exit(main())
