"""The one module that wires the stages into Ray Data, and runs a whole job.

sources -> decode (tasks) -> parse (actor pool) -> pose (actor pool) -> masks (tasks) -> write (tasks)
"""
from __future__ import annotations

import inspect
import logging
import math
import os
import sys
import time
import warnings
from collections import Counter

import pyarrow as pa

from . import sources
from .config import OUTPUT_DEFINING, RunConfig, default
from .resources import StagePlan, plan_model_stages, resolve_precision
from .runstate import RUN_JSON, SUMMARY_JSON, RunLock, read_json, write_json
from .schema import ERROR, LEFT, TIMINGS, VtonError
from .sinks import MANIFEST_DIR, drop_rows_with_status, read_manifest
from .storage import OutputFolder

log = logging.getLogger("pipeline")

MIN_ROWS_PER_BLOCK, MAX_ROWS_PER_BLOCK = 16, 256
DECODE_BATCH = 8
MASK_BATCH = 4
CPU_BATCH = 4
MODEL_TASKS_IN_FLIGHT = 2
LOG_EVERY_S = 10.0
# Ray's reservation for the light tasks (writes): several run beside a mask task.
LIGHT_TASK_CPUS = 0.25
FORWARDED_ENV = ("HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE")  # no secrets here


class RunError(VtonError):
    """The run cannot start or cannot go on; the CLI prints it on one line and exits non-zero."""


def is_local(config: RunConfig) -> bool:
    """A Ray instance this run starts for itself, on this machine (no --address, no RAY_ADDRESS)."""
    return not (config.address or os.environ.get("RAY_ADDRESS"))


def quiet_ray_logs(local: bool) -> None:
    """One line per real event: Ray Data's INFO lines (execution plan, start, finish) and its note
    that progress bars are off say nothing the run's own lines do not; on a local instance this
    run started, the token-auth notice is not for the user either."""
    import ray.data  # noqa: F401  (configures Ray Data's loggers; our levels go on top)

    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    if local:
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)


def init_ray(config: RunConfig) -> None:
    import ray

    if ray.is_initialized():
        return
    quiet_ray_logs(is_local(config))
    address = config.address or os.environ.get("RAY_ADDRESS")
    if address:
        # Actors on other nodes load models where the driver was told to (a shared cache, offline).
        forwarded = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
        ray.init(address=address, logging_level=logging.WARNING,
                 runtime_env={"env_vars": forwarded} if forwarded else None)
    else:
        cpus = config.num_cpus or os.cpu_count() or 1
        ray.init(num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING,
                 _system_config={"num_workers_soft_limit": local_worker_limit(cpus)})


def local_worker_limit(cpus: float) -> int:
    """How many worker processes a local Ray keeps alive: as many as the run can have busy at once
    (one model actor per CPU at most, and the task CPUs filled with light tasks).

    Why: Ray's default keeps one worker per CPU and kills an idle one beyond that within a
    second. The model actors are workers too, so on a small machine the task workers were killed
    between tasks and started again (interpreter, Ray, numpy, OpenCV: ~1.5 CPU seconds each), over
    and over while long mask tasks held the CPU: 8 task worker processes in a 300-photo vitonhd
    run on 2 CPUs instead of 4, ~23 CPU seconds of ~175 (bench/RESULTS.md, Trainer layout export
    time). The workers kept are ones the run started anyway.
    """
    return int(cpus + math.ceil(cpus / LIGHT_TASK_CPUS))


def choose_device(config: RunConfig, cluster_gpus: float) -> str:
    if config.device == "cuda" and cluster_gpus < 1:
        raise RunError("--device cuda was asked for but the Ray cluster has no GPU")
    if config.device == "auto":
        return "cuda" if cluster_gpus >= 1 else "cpu"
    return config.device


def _takes_remote_args(method) -> bool:
    """Whether map_batches still takes Ray's remote options as keywords (deprecated in Ray 2.60)."""
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(method).parameters.values())


def build_dataset(rows: pa.Table, config: RunConfig, run_info: dict, plan: StagePlan, device: str,
                  precision: str):
    import ray
    from ray.data import ActorPoolStrategy

    from .compose import mask_batch
    from .decode import decode_batch
    from .modelstage import StageChain
    from .registry import family
    from .sinks import write_batch

    # Small blocks spread a small dataset over every CPU; a big one gets fewer, larger blocks, since
    # the driver holds metadata per block for the whole run.
    per_block = int(min(MAX_ROWS_PER_BLOCK, max(MIN_ROWS_PER_BLOCK, rows.num_rows // 200)))
    blocks = [rows.slice(start, per_block) for start in range(0, rows.num_rows, per_block)]
    dataset = ray.data.from_arrow(blocks)
    dataset = dataset.map_batches(decode_batch, batch_size=DECODE_BATCH, batch_format="numpy",
                                  fn_kwargs={"width": config.width, "height": config.height},
                                  num_cpus=plan.task_num_cpus)
    # Ray's batch for the model actors; each actor re-chunks it into its own memory-derived size.
    ray_batch = config.batch_size or (config.max_batch_size if device == "cuda" else CPU_BATCH)
    # Two batches in flight per actor: while one runs, the next one's block is already fetched to
    # the actor's node, so a model never waits on the object store between batches.
    pool = ActorPoolStrategy(size=plan.actors, max_tasks_in_flight_per_actor=MODEL_TASKS_IN_FLIGHT)
    model_args = dict(batch_size=ray_batch, batch_format="numpy", compute=pool, num_cpus=plan.num_cpus)
    if is_local(config) and _takes_remote_args(dataset.map_batches):
        # Ray restarts a crashed actor by default, and warns at every actor start (an "E" line)
        # that its constructor arguments live in the object store (Ray Data always puts them
        # there). On one machine a crashed model actor (out of memory) is better ended: the run
        # stops with the error and a rerun finishes it. On a cluster, where a lost node is
        # routine, the restarts stay. Ray 2.60 has no named parameter for it yet.
        model_args["max_restarts"] = 0
    if plan.num_gpus:
        model_args["num_gpus"] = plan.num_gpus
    stage_args = dict(device=device, precision=precision, torch_threads=plan.torch_threads,
                      batch_size=config.batch_size, max_batch_size=config.max_batch_size,
                      gpu_share=plan.num_gpus or 1.0, probe=config.probe, width=config.width, height=config.height)
    model_stages = [(family("parser", config.parser_family).stage_class(), (config.parser,),
                     dict(labels=config.labels, compile=config.compile, **stage_args))]
    if config.pose_from is None and config.pose_enabled:
        model_stages.append((family("pose", config.pose_family).stage_class(), (config.pose,), stage_args))
    if config.densepose_enabled:
        from .layouts import get_layout

        model_stages.append((family("densepose", "densepose").stage_class(), (config.densepose,),
                             dict(uv=get_layout(config.layout).needs_densepose_uv, **stage_args)))
    if device == "cpu" and len(model_stages) > 1:
        # One pool of actors that run every model on each batch (modelstage.StageChain: on shared
        # cores, separate pools let the first model run ahead and the outputs come late).
        model_stages = [(StageChain, (model_stages,), {})]
    for stage, args, kwargs in model_stages:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ray_remote_args. is deprecated")
            dataset = dataset.map_batches(stage, fn_constructor_args=args, fn_constructor_kwargs=kwargs,
                                          **model_args)
    if config.pose_from is not None:
        from .pose import pose_from_files_batch

        # The mask task's reservation, so that Ray Data fuses the keypoint files into the mask task:
        # one task instead of two, the batch (photo bytes, label map) not stored and fetched once
        # more, and fewer worker processes beside long mask tasks (bench/RESULTS.md, Trainer
        # layout export time).
        dataset = dataset.map_batches(pose_from_files_batch, batch_size=DECODE_BATCH, batch_format="numpy",
                                      fn_kwargs={"folder": config.pose_from}, num_cpus=plan.task_num_cpus)
    dataset = dataset.map_batches(mask_batch, batch_size=MASK_BATCH, batch_format="numpy",
                                  fn_kwargs=dict(style=config.style, fill=config.fill,
                                                 ootd_variant=config.ootd_variant, layout=config.layout,
                                                 export_size=config.export_size,
                                                 person_check=config.person_check),
                                  num_cpus=plan.task_num_cpus)
    return dataset.map_batches(write_batch, batch_size=config.rows_per_part, batch_format="numpy",
                               fn_kwargs=dict(out=config.output, run_info=run_info, layout=config.layout),
                               num_cpus=LIGHT_TASK_CPUS)


def check_run(config: RunConfig) -> tuple[dict, list[str]]:
    """Everything a run needs, checked at start before OUT is touched: its plug-ins resolve, the
    keypoint folder exists, and every model is found (all of them, one message). Returns the
    values the manifest records of what produced the rows, and the models' warnings."""
    from .layouts import get_layout
    from .masks import style_of
    from .registry import check_models

    try:
        layout = get_layout(config.layout)
        style_of(config.style)
    except ValueError as error:
        raise RunError(str(error)) from None
    if layout.needs_keypoints and not config.pose_enabled:
        raise RunError(f"--layout {config.layout} needs keypoints and --pose is none; use a pose model "
                       "(--pose ID_OR_DIR) or the dataset's keypoint files (--pose-from DIR)")
    if config.pose_from is not None and not os.path.isdir(config.pose_from):
        raise RunError(f"--pose-from folder {config.pose_from!r} does not exist")
    warnings = check_models(config)
    return {"parser": config.parser, "pose_model": config.pose_label, "style": config.style,
            "densepose_model": config.densepose if config.densepose_enabled else None}, warnings


def _differences(previous: dict, config: RunConfig) -> list[str]:
    current = config.to_dict()
    # A setting a run.json predates had its default then.
    before = {name: previous.get(name, default(name)) for name in OUTPUT_DEFINING}
    return [f"{name}: {before[name]!r} -> {current[name]!r}" for name in OUTPUT_DEFINING
            if before[name] != current[name]]


class Progress:
    """Counts finished rows; logs a plain line every LOG_EVERY_S when progress bars are off."""

    def __init__(self, total: int, lines: bool):
        self.total, self.lines = total, lines
        self.counts: Counter = Counter()
        self.stage_ms: Counter = Counter()
        # The last finished batch's stage exit times (epoch s), for an on_progress callback that
        # draws the run's timeline (bench/throughput.py); not kept, so a long run's driver stays small.
        self.last_left: dict = {}
        self.started = self.last_log = time.monotonic()

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def update(self, batch: dict) -> None:
        self.counts.update(str(s) for s in batch["status"])
        self.last_left = {name: batch[name] for name in LEFT if name in batch}
        for name in TIMINGS:
            self.stage_ms[name] += float(batch[name].sum())
        now = time.monotonic()
        if self.lines and now - self.last_log >= LOG_EVERY_S:
            self.last_log = now
            log.warning("progress: %d/%d rows (%s), %.2f images/s", self.done, self.total,
                        ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())), self.rate())


def _want_bars(config: RunConfig) -> bool:
    if config.progress != "auto":
        return config.progress == "bars"
    return sys.stderr.isatty() and not os.environ.get("RAY_DATA_DISABLE_PROGRESS_BARS")


class RunInterrupted(RuntimeError):
    """SIGTERM or SIGINT: finished rows are in the manifest, summary.json is partial."""

    def __init__(self, signal_name: str, exit_code: int):
        super().__init__(f"stopped by {signal_name}; finished rows are in the manifest, rerun to complete")
        self.exit_code = exit_code


class _StopNow(BaseException):
    """Raised by the signal handler to leave Ray's blocking wait at once (like KeyboardInterrupt)."""


class StopSignal:
    """Turns SIGTERM/SIGINT into a stop: no new work, finished rows kept (rented machines send SIGTERM)."""

    def __init__(self):
        self.received: tuple[str, int] | None = None
        self.armed = False  # only interrupt while the dataset runs; elsewhere the flag is checked
        self._previous = {}

    def __enter__(self):
        self.install()
        return self

    def install(self) -> None:
        """(Re)install the handlers: ray.init() installs its own SIGTERM handler, which aborts."""
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGTERM, signal.SIGINT):
                previous = signal.signal(number, self._handle)
                self._previous.setdefault(number, previous)

    def _handle(self, number, frame):
        import signal

        first = self.received is None
        if first:
            self.received = (signal.Signals(number).name, 128 + number)
            log.warning("%s received: stopping; rows in flight are left for a rerun", self.received[0])
        if self.armed or not first:
            raise _StopNow

    def __exit__(self, *exc):
        import signal

        for number, handler in self._previous.items():
            signal.signal(number, handler)


def prepare_output(out: OutputFolder, config: RunConfig, overwrite: bool, retry_errors: bool) -> None:
    """Checks OUT against a previous run's settings and clears what must be redone."""
    previous = read_json(out, RUN_JSON)
    if previous is not None and not overwrite:
        changed = _differences(previous.get("config", {}), config)
        if changed:
            raise RunError(f"{config.output} holds a run with other settings ({'; '.join(changed)}); "
                           "use --overwrite to start over, or another --output")
    if overwrite:
        clear_outputs(out, config)
    out.clear_temporary()
    if retry_errors:
        removed = drop_rows_with_status(config.output, "error")
        if removed:
            log.warning("--retry-errors: %d error rows will be redone", removed)


def pending_rows(rows: pa.Table, config: RunConfig) -> tuple[pa.Table, int]:
    """Rows without a manifest row yet; ids stay in Arrow (about 30 bytes a row, not Python strings)."""
    import pyarrow.compute as pc

    done = read_manifest(config.output, columns=["id"]).column("id").combine_chunks()
    if len(done) == 0:
        return rows, 0
    todo = rows.filter(pc.invert(pc.is_in(rows.column("id"), value_set=done)))
    return todo, rows.num_rows - todo.num_rows


class ErrorRateGuard:
    """Stops a run whose first rows mostly fail: a broken model or config, not bad photos."""

    def __init__(self, max_rate: float, window: int):
        self.max_rate, self.window = max_rate, window
        self.seen = self.failed = 0
        self.errors: Counter = Counter()
        self.checked = False

    def update(self, batch: dict) -> None:
        if self.checked:
            return
        statuses = batch["status"][: self.window - self.seen]
        self.seen += len(statuses)
        failed = [str(e) for s, e in zip(statuses, batch["error"]) if s == ERROR]
        self.failed += len(failed)
        self.errors.update(e.split(":")[0] for e in failed)
        if self.seen >= self.window:
            self.checked = True
            if self.failed / self.seen > self.max_rate:
                common = ", ".join(f"{text!r} x{n}" for text, n in self.errors.most_common(3))
                raise RunError(f"stopped: {self.failed} of the first {self.seen} rows failed "
                               f"(more than --max-error-rate {self.max_rate:.0%}); most common: {common}")


def execute(rows: pa.Table, config: RunConfig, run_info: dict, progress: Progress, lock: RunLock,
            stop: StopSignal, on_progress=None) -> tuple[str, str]:
    """Runs the dataset to the end (or to a stop); returns (device, precision)."""
    import ray
    from ray.data import DataContext

    init_ray(config)
    stop.install()
    context = DataContext.get_current()
    context.enable_progress_bars = _want_bars(config)
    resources = ray.cluster_resources()
    device = choose_device(config, resources.get("GPU", 0))
    precision = resolve_precision(device, config.precision)
    if device == "cpu":
        # Ray Data reserves each operator a slice of the CPUs; on a small CPU-only node a slice is
        # less than the whole CPU a mask task asks for, so the mask stage could only borrow from
        # the shared rest, which decode kept taking: a 1,000-photo run decoded every photo before
        # its first mask, and its first manifest part came at 78-83% of the run. Without the
        # reservation the stages take turns by Ray Data's ranking and rows flow through from the
        # first batches (bench/RESULTS.md, Throughput). GPU nodes keep Ray Data's default.
        context.op_resource_reservation_enabled = False
    cpu_nodes = sum(1 for node in ray.nodes() if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) > 0)
    plan = plan_model_stages(resources.get("CPU", 1), resources.get("GPU", 0) if device == "cuda" else 0,
                             config.gpu_fraction,
                             stages=1 + (config.pose_enabled and config.pose_from is None) + config.densepose_enabled,
                             rows=rows.num_rows, nodes=cpu_nodes, memory=resources.get("memory"))
    guard = ErrorRateGuard(config.max_error_rate, config.error_rate_window)
    dataset = build_dataset(rows, config, run_info, plan, device, precision)
    if stop.received:
        return device, precision
    stop.armed = True
    try:
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            progress.update(batch)
            lock.refresh()
            if on_progress is not None:
                on_progress(progress)
            guard.update(batch)
    except _StopNow:
        pass  # rows in flight are not in the manifest; a rerun redoes them
    finally:
        stop.armed = False
    return device, precision


def run(config: RunConfig, overwrite: bool = False, retry_errors: bool = False, on_progress=None) -> dict:
    """Runs the whole job; returns the summary (also written to OUT/summary.json)."""
    try:
        rows = sources.list_rows(config.input, config.category, config.limit, split=config.split)
    except (sources.InputError, ValueError) as error:
        raise RunError(str(error)) from error
    run_info, warnings = check_run(config)  # before OUT is touched: a run that cannot start leaves nothing
    for warning in warnings:
        log.warning("warning: %s", warning)
    out = open_output(config.output)
    with RunLock(out) as lock, StopSignal() as stop:
        prepare_output(out, config, overwrite, retry_errors)
        rows, resumed = pending_rows(rows, config)
        if resumed:
            log.warning("resuming: %d rows already in the manifest, %d to do", resumed, rows.num_rows)
        write_json(out, RUN_JSON, {"config": config.to_dict(), "started": time.time(), **run_info,
                                   "warnings": warnings})
        progress = Progress(rows.num_rows, lines=not _want_bars(config))
        device = precision = None
        try:
            if rows.num_rows:
                device, precision = execute(rows, config, run_info, progress, lock, stop, on_progress)
            if stop.received is None:  # the layout's files made from the whole manifest (pairs lists)
                finish_layout(config, out)
        finally:
            summary = summarize(config, out, progress, device, precision, resumed=resumed)
            summary["complete"] = stop.received is None and summary["rows"] >= resumed + progress.total
            if stop.received:
                summary["stopped_by"] = stop.received[0]
            write_json(out, SUMMARY_JSON, summary)
        if stop.received:
            raise RunInterrupted(*stop.received)
    return summary


def finish_layout(config: RunConfig, out: OutputFolder) -> None:
    """Layout.finish at the end of every run that was not stopped, a resume with nothing to do included."""
    from .layouts import get_layout

    get_layout(config.layout).finish(out, read_manifest(config.output))


def open_output(output: str) -> OutputFolder:
    """OUT, created; a path that cannot be a folder is a one-line RunError, not a traceback."""
    try:
        out = OutputFolder(output)
        out.make_dirs()
    except FileExistsError:
        raise RunError(f"--output {output!r} exists and is not a folder; pass a folder path") from None
    except (FileNotFoundError, NotADirectoryError):
        raise RunError(f"cannot create --output {output!r}: a folder above it is missing or is a file") from None
    except PermissionError:
        raise RunError(f"cannot create --output {output!r}: permission denied") from None
    except OSError as error:
        raise RunError(f"cannot create --output {output!r}: {error.strerror or error}") from None
    return out


def clear_outputs(out: OutputFolder, config: RunConfig) -> None:
    """--overwrite: remove what a run writes, nothing else (the folders of the layout that wrote
    OUT before, and of this run's, when they differ)."""
    from .layouts import get_layout

    previous = (read_json(out, RUN_JSON) or {}).get("config", {})
    layouts = {config.layout, previous.get("layout", default("layout"))}
    folders = {folder for name in layouts for folder in _layout_folders(name, get_layout)}
    for folder in (MANIFEST_DIR, *sorted(folders), "report"):
        out.delete(folder)
    for name in (RUN_JSON, SUMMARY_JSON):
        out.delete(name)


def _layout_folders(name: str, get_layout) -> tuple:
    try:
        return get_layout(name).folders
    except VtonError:  # a plug-in layout that is gone: its folders stay
        log.warning("--overwrite: layout %r of the previous run cannot be loaded; its folders are kept", name)
        return ()


def summarize(config: RunConfig, out: OutputFolder, progress: Progress, device, precision, resumed: int) -> dict:
    """Totals for OUT (every run so far) and a `this_run` section. What this run did not measure
    (a resume with nothing left to do) keeps the last run's value: device, precision, ms per row."""
    manifest = read_manifest(config.output, columns=["status"])
    totals = Counter(manifest.column("status").to_pylist())
    elapsed = time.monotonic() - progress.started
    previous = read_json(out, SUMMARY_JSON) or {}
    measured = {
        "ms_per_row": {k: round(v / progress.done, 2) for k, v in progress.stage_ms.items()} if progress.done else {},
        "device": device, "precision": precision,
    }
    kept = {key: value if value else previous.get(key, value) for key, value in measured.items()}
    return {
        "output": config.output,
        "rows": manifest.num_rows,
        "status": dict(sorted(totals.items())),
        "this_run": {"rows": progress.done, "status": dict(sorted(progress.counts.items())),
                     "seconds": round(elapsed, 3), "images_per_s": round(progress.rate(), 3),
                     "resumed_from": resumed},
        **kept,
        "parser": config.parser, "pose": config.pose, "style": config.style,
    }
