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
# pytest-xdist, one worker more than cores: the tests wait on kernels, servers, Prometheus and the browser
# much of the time (one worker per core kept 1.35 of 2 cores busy; with 3 workers pytest took 15.8 min
# instead of 17.5). MLOPS_NB_TEST_WORKERS overrides; 0 runs everything in this process. A test module
# stays on one worker (--dist loadfile): its module fixtures (a trained run, a JupyterLab, a Prometheus)
# are built once. The long modules start first, in the order tests/conftest.py gives (LONG_MODULES), not
# xdist's own (by number of tests).
python -m pytest -q -n "${MLOPS_NB_TEST_WORKERS:-$(( $(nproc) + 1 ))}" --dist loadfile --no-loadscope-reorder "$@"
