#!/usr/bin/env bash
# The offline demo: installs the project (once; see tools/install.sh), then masks the bundled
# sample photos with the bundled demo parser (trained on drawn synthetic people: for the demo and
# tests only) into out/demo. No network beyond the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
python3 -m pipeline run pipeline/assets/samples/manifest.csv --output out/demo \
    --parser pipeline/assets/parser --pose none --num-cpus "$(python3 -c 'import os; print(min(4, os.cpu_count() or 1))')" "$@"
