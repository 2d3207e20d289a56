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
# Prometheus' promtool checks the server's /metrics (tests/test_serve_feedback.py): Debian's package, where apt is
# there and we are root; the test that needs it skips without it.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && ! command -v promtool >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } \
        || echo "warning: could not install prometheus (promtool); tests/test_serve_feedback.py::test_metrics_pass_promtool will skip"
fi
# Papermill starts the kernel named python3: make it this venv's interpreter.
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
echo "set up $VENV ($("$VENV/bin/python" -c 'import mlops_nb; print("mlops_nb", mlops_nb.__version__)'))"
