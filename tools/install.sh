#!/usr/bin/env bash
# Installs the project (editable) and its test tools into the Python that `python3` runs: use a
# virtual environment if you care about your system Python. torch is pinned first so pip takes
# the release this project is tested with instead of resolving a newer CUDA build (several GB)
# through transformers or controlnet_aux. Skips everything when this checkout is already installed
# with the same pyproject.toml (the stamp is .install-stamp, next to it); pip's own chatter goes to
# a log that is shown only when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=".install-stamp"
want="$(python3 -c 'import sys; print(sys.executable)') $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && python3 -c 'import os, sys, pipeline; sys.exit(os.path.dirname(os.path.dirname(os.path.abspath(pipeline.__file__))) != os.getcwd())' 2>/dev/null; then
    exit 0
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "installing the project and its dependencies into $(python3 -c 'import sys; print(sys.prefix)') (a few minutes the first time)"
if ! { python3 -m pip install -q --root-user-action=ignore "torch==2.14.1" "torchvision==0.29.1" \
       && python3 -m pip install -q --root-user-action=ignore -e ".[test]"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "error: installing the project failed (pip's output above)" >&2
    exit 1
fi
echo "$want" > "$stamp"
