"""Entrypoint for `ray job submit --working-dir . -- python jobs/mask_dataset.py INPUT --output OUT ...`.

Takes exactly the CLI's `run` options (one definition, pipeline.config), connects to the cluster
the job was submitted to, logs plain progress lines (job logs are not a terminal), and exits
non-zero only when the run could not run, so `ray job status` tells the truth.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipeline.cli import main  # noqa: E402

if __name__ == "__main__":
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    # Inside a submitted job RAY_ADDRESS points at the cluster; the CLI connects to it.
    sys.exit(main(["run", *sys.argv[1:], "--progress", "lines"]))
