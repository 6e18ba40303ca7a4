"""Command line: `python -m pipeline run INPUT --output OUT ...` and `python -m pipeline report OUT`.

Validates and wires only; the work is in dataflow and the stages.
"""
from __future__ import annotations

import argparse
import logging
import sys

from .config import RunConfig, add_run_arguments
from .schema import VtonError, first_line


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog or "vton-masks",
                                     description="Virtual try-on masks, parses and keypoints for a dataset of photos.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="process a dataset")
    add_run_arguments(run)
    add_resume_arguments(run)
    from . import models

    fetch = commands.add_parser("fetch-models", help="download the models once into the Hugging Face cache "
                                "(HF_HOME), so cluster actors load them offline")
    models.add_arguments(fetch)
    fetch.set_defaults(handler=models.run_from_args)
    try:
        from . import report
    except ImportError:  # the report module is optional for a run
        report = None
    if report is not None:
        report_parser = commands.add_parser("report", help="write OUT/report/index.html for a finished run")
        report.add_arguments(report_parser)
        report_parser.set_defaults(handler=report.run_from_args)
    return parser


def add_resume_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="start over: remove a previous run's outputs in OUT first")
    parser.add_argument("--retry-errors", action="store_true",
                        help="redo rows whose manifest status is error (their old rows are replaced)")


def print_summary(summary: dict, stream=None) -> None:
    stream = stream or sys.stdout  # looked up at call time: a test (or caller) may have replaced it
    this_run = summary["this_run"]
    counts = ", ".join(f"{name} {count}" for name, count in summary["status"].items()) or "nothing"
    print(f"done: {summary['rows']} rows in the manifest ({counts}); this run {this_run['rows']} rows "
          f"in {this_run['seconds']:.1f} s, {this_run['images_per_s']:.2f} images/s; "
          f"outputs in {summary['output']}", file=stream)


def run_with_exit_code(config: RunConfig, overwrite: bool, retry_errors: bool) -> tuple[dict | None, int]:
    """Runs; a stop becomes 128 + the signal and a run that cannot go on 1, each with its line.

    Every error a user can cause is a VtonError (pipeline.schema); an OSError here comes from
    OUT (a folder that cannot be written). Other exceptions propagate: the cluster job tells a
    lost node from a bug by them.
    """
    from .dataflow import RunInterrupted, run

    try:
        return run(config, overwrite=overwrite, retry_errors=retry_errors), 0
    except RunInterrupted as stopped:
        print(f"stopped: {stopped}", file=sys.stderr)
        return None, stopped.exit_code
    except VtonError as error:
        print(f"error: {first_line(error)}", file=sys.stderr)
        return None, 1
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        print(f"error: cannot write the output folder {config.output!r}: {error.strerror or error}{where}",
              file=sys.stderr)
        return None, 1


def run_command(args: argparse.Namespace) -> int:
    summary, code = run_with_exit_code(RunConfig.from_args(args), args.overwrite, args.retry_errors)
    if summary is not None:
        print_summary(summary)
    return code


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_command(args)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
