#!/usr/bin/env bash
# Installs the project and its test tools into the current Python (a venv is a good idea).
# torch is pinned first so pip takes the release this project is tested with instead of
# resolving a newer CUDA build (several GB) through transformers or controlnet_aux.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
python3 -m pip install -q -e ".[test]"
