"""What checking a model's fitted arrays costs when it is loaded, measured side by side in one run.

The default forest of `make_model("rf")` (200 trees) trained on the maintenance case (10,000 rows) is saved
once, then loaded alternately two ways: `load_model` (card, md5s, skops type list, and `check_fitted` on
every tree and preprocessing step), and the same path without `check_fitted` (what `load_model` did before
it checked fitted arrays). Also `check_fitted` alone.

Writes bench/results/load_checks.md. Usage: python bench/bench_load_checks.py [--repeats 9]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import sklearn

from bench_models import alternate
from mlops_nb.core import atomic_write_text
from mlops_nb.data import feature_columns, infer_schema
from mlops_nb.datasets import load_builtin
from mlops_nb.models import (PIPELINE_FILE, _load_skops, _verify_files, check_fitted, load_model, make_model,
                             read_model_card, save_model)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "load_checks.md"))
    args = parser.parse_args()
    load_before = os.getloadavg()

    data = load_builtin("maintenance", seed=0)
    schema = infer_schema(data.frame[data.features + [data.target]], target=data.target)
    X, y = data.frame[feature_columns(schema)], data.frame[data.target]
    model = make_model("rf", data.task, schema, seed=0).fit(X, y)
    nodes = [tree.tree_.node_count for tree in model.named_steps["model"].estimators_]

    with tempfile.TemporaryDirectory() as tmp:
        directory = save_model(model, Path(tmp) / "rf")
        size = (directory / PIPELINE_FILE).stat().st_size

        def unchecked():  # card, md5s and the skops type list: the load path without check_fitted
            _verify_files(directory, read_model_card(directory))
            return _load_skops(directory / PIPELINE_FILE)

        assert np.array_equal(load_model(directory).predict_proba(X[:1000]), model.predict_proba(X[:1000]))
        checked_s, unchecked_s, checked_cpu, unchecked_cpu = alternate(lambda: load_model(directory), unchecked, args.repeats)
        head = unchecked()
        check_times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            check_fitted(head, directory / PIPELINE_FILE)
            check_times.append(time.perf_counter() - start)
    check_s = statistics.median(check_times)

    lines = ["# bench_load_checks", "",
             f"Measured {time.strftime('%Y-%m-%d %H:%M')} with `python bench/bench_load_checks.py --repeats {args.repeats}`: "
             f"{os.cpu_count()} cores, load average {load_before[0]:.1f} at start (other jobs shared the machine), Python "
             f"{platform.python_version()}, scikit-learn {sklearn.__version__}. The maintenance case's default forest: "
             f"{len(nodes)} trees, {int(np.median(nodes))} nodes a tree (median; {sum(nodes):,} in all), a {size / 1e6:.1f} MB "
             f"skops file. Both loads ran alternately {args.repeats} times after one warm-up; the table gives medians. "
             "Ratio: wall time without the checks over wall time with them (1.0: the checks cost nothing).", "",
             "| comparison | with checks (wall) | without (wall) | ratio (wall) | ratio (CPU) | goal |",
             "|---|---|---|---|---|---|",
             f"| `load_model` vs the same load without `check_fitted` | {checked_s:.3f} s | {unchecked_s:.3f} s | "
             f"{unchecked_s / checked_s:.3f}x | {unchecked_cpu / checked_cpu:.3f}x | "
             f">= 0.90 {'met' if unchecked_s / checked_s >= 0.90 else 'NOT met'} |",
             "", f"`check_fitted` alone: {check_s * 1000:.1f} ms ({check_s / unchecked_s:.1%} of the load without it; "
             f"{check_s / len(nodes) * 1e6:.0f} µs a tree).", ""]
    text = "\n".join(lines)
    atomic_write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
