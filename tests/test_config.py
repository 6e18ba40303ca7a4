"""One statement of every setting: the CLI's options and RunConfig's fields map onto each other,
with the same defaults, for the CLI and the cluster job alike."""
from __future__ import annotations

import argparse
import importlib.util
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from pipeline.cli import build_parser
from pipeline.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
# Options of a run that are not settings of its outputs or placement but of this invocation.
INVOCATION_ONLY = {"overwrite", "retry_errors", "help", "command", "handler"}
JOB_ONLY = {"attempts", "stall_timeout"}


def _run_parser() -> argparse.ArgumentParser:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["run"]


def _job_parser() -> argparse.ArgumentParser:
    spec = importlib.util.spec_from_file_location("mask_dataset_job", ROOT / "jobs" / "mask_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_parser()


@pytest.mark.parametrize("make_parser,extra", [(_run_parser, set()), (_job_parser, JOB_ONLY)], ids=["cli", "job"])
def test_every_option_is_a_field_and_every_field_an_option(make_parser, extra):
    parser = make_parser()
    options = {action.dest: action for action in parser._actions}
    names = {f.name for f in fields(RunConfig)}
    assert set(options) - INVOCATION_ONLY - extra == names
    parsed = vars(parser.parse_args(["photos", "--output", "out"]))
    for field in fields(RunConfig):
        if field.default is not MISSING:
            assert parsed[field.name] == field.default, field.name
    assert RunConfig.from_args(argparse.Namespace(**parsed)) == RunConfig("photos", "out")


def test_console_script_names_itself():
    assert build_parser().format_usage().startswith("usage: vton-masks")
    assert build_parser("python -m pipeline").format_usage().startswith("usage: python -m pipeline")
