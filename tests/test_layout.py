"""The architecture's promises that code can break silently."""
from __future__ import annotations

import subprocess
import sys


def test_the_package_and_its_stages_do_not_import_ray():
    # The GPU check and the single-image API run the stages where Ray is not installed.
    code = ("import sys, pipeline, pipeline.decode, pipeline.parser, pipeline.pose, pipeline.compose, "
            "pipeline.sinks, pipeline.masks, pipeline.sources, pipeline.batching, pipeline.api; "
            "print('ray' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_job_entrypoint_takes_the_cli_options():
    result = subprocess.run([sys.executable, "jobs/mask_dataset.py", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for option in ("--output", "--style", "--parser", "--pose", "--batch-size", "--device"):
        assert option in result.stdout
