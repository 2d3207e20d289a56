#!/usr/bin/env bash
# Run the whole test suite: the notebooks (nbdev-test) then the cross-module tests (pytest).
# Extra arguments go to pytest. Slow checks: `nbdev-test --flags slow` and `pytest -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
echo "== nbdev-test"
nbdev-test --n-workers 2
echo "== pytest"
python -m pytest -q "$@"
