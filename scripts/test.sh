#!/usr/bin/env bash
# Run the whole test suite: the notebooks (nbdev-test) then the cross-module tests (pytest).
# Cells flagged `slow` (full-size fidelity checks, about 30 s in all) run here too; a quick
# notebook pass is plain `nbdev-test`. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
echo "== nbdev-test"
nbdev-test --n-workers 2 --flags slow
echo "== pytest"
# pytest-xdist: one process per core (MLOPS_NB_TEST_WORKERS overrides; 0 runs in this process). A test
# module stays on one worker (--dist loadfile): its module fixtures (a trained run, a JupyterLab, a
# Prometheus) are built once. The long modules start first (tests/conftest.py, LONG_MODULES).
python -m pytest -q -n "${MLOPS_NB_TEST_WORKERS:-$(nproc)}" --dist loadfile "$@"
