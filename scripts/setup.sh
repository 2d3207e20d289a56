#!/usr/bin/env bash
# Create .venv (if absent) and install the project with its dev extra.
# torch is installed first at a pinned CPU build: the project's own requirement is a range, and a
# range on a machine without torch would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then "$PYTHON" -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[dev]"
# Papermill starts the kernel named python3: make it this venv's interpreter.
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
echo "set up $VENV ($("$VENV/bin/python" -c 'import mlops_nb; print("mlops_nb", mlops_nb.__version__)'))"
