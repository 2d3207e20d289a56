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
# Jupyter apps started from this venv (JupyterLab included) give their kernels CurveZMQ transport
# encryption, as the package's own papermill runs do (runner.kernel_options); without it every kernel
# start logs a plain-TCP warning. Merged into the venv's jupyter_config.json (other settings kept).
"$VENV/bin/python" - "$VENV/etc/jupyter/jupyter_config.json" <<'PY'
import json, sys
from pathlib import Path
path = Path(sys.argv[1])
config = json.loads(path.read_text()) if path.is_file() else {}
config.setdefault("KernelManager", {})["transport_encryption"] = "auto"
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(config, indent=2) + "\n")
PY
# tests/test_browser.py drives Debian's Chromium through playwright (dev extra); no browser download.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium with apt-get (for tests/test_browser.py)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
      echo "warning: apt-get install chromium failed; tests/test_browser.py will be skipped" >&2
    fi
  else
    echo "note: /usr/bin/chromium is missing and cannot be installed here (needs root and apt-get);" \
         "tests/test_browser.py will be skipped. Install it with: sudo apt-get install chromium" >&2
  fi
fi
echo "set up $VENV ($("$VENV/bin/python" -c 'import mlops_nb; print("mlops_nb", mlops_nb.__version__)'))"
