"""Benchmarks for mlops_nb.models, measured side by side in one run (alternating, median of repeats).

1. `make_model("rf")` fit (preprocessing + forest) against a bare `RandomForestClassifier` with the same
   settings fitted on the already-preprocessed numeric table: what the pipeline adds is the preprocessing.
2. Predictions (`predict_proba`) of a model loaded with `load_model` against the in-memory one, for the
   forest and the neural net.
3. For information: the order-preserving forest's `predict_proba` against scikit-learn's own.

Writes bench/results/models.md. Usage: python bench/bench_models.py [--rows 10000] [--predict-rows 50000] [--repeats 5] [--predict-repeats 15]
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
import pandas as pd
import sklearn
from sklearn.ensemble import RandomForestClassifier

from mlops_nb.core import atomic_write_text
from mlops_nb.data import infer_schema
from mlops_nb.models import load_model, make_model, save_model


def numeric_table(n_rows: int, n_features: int = 15, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    "A numeric table like the fraud features: 15 float columns, a binary target that depends on a few."
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n_rows, n_features)), columns=[f"f{i:02d}" for i in range(n_features)])
    logit = X["f00"] - 0.5 * X["f01"] + 0.8 * X["f02"] * X["f03"] + rng.normal(0, 1, n_rows)
    return X, (logit > 1.5).astype(int).to_numpy()


def timed(fn) -> tuple[float, float]:
    "(wall seconds, CPU seconds of this process over all its threads) of one call."
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def alternate(first, second, repeats: int) -> tuple[float, float, float, float]:
    """Run `first` and `second` alternately `repeats` times each (one warm-up each, not counted);
    return the medians (wall first, wall second, cpu first, cpu second)."""
    first(), second()
    a, b = [], []
    for i in range(repeats):
        if i % 2 == 0: a.append(timed(first)); b.append(timed(second))
        else: b.append(timed(second)); a.append(timed(first))
    median = lambda values, k: statistics.median(v[k] for v in values)
    return median(a, 0), median(b, 0), median(a, 1), median(b, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--predict-rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--predict-repeats", type=int, default=15, help="predictions are cheap: more repeats, less noise")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "models.md"))
    args = parser.parse_args()
    load_before = os.getloadavg()

    X, y = numeric_table(args.rows)
    schema = infer_schema(X.assign(target=y), target="target")
    rows = []

    # 1. fit: pipeline (preprocess + forest) vs bare forest on the preprocessed table
    pipeline = make_model("rf", "binary", schema, seed=0)
    forest_params = pipeline.named_steps["model"].get_params()
    preprocessed = pipeline.named_steps["preprocess"].fit_transform(X)
    bare = RandomForestClassifier(**forest_params)
    pipe_fit, bare_fit, pipe_cpu, bare_cpu = alternate(lambda: pipeline.fit(X, y), lambda: bare.fit(preprocessed, y), args.repeats)
    assert np.array_equal(pipeline.predict_proba(X), bare.predict_proba(preprocessed))  # the same forest
    rows.append(("rf fit: `make_model('rf')` vs bare `RandomForestClassifier` on preprocessed data",
                 f"{args.rows:,} rows x 15, {forest_params['n_estimators']} trees",
                 f"{pipe_fit:.3f} s", f"{bare_fit:.3f} s", bare_fit / pipe_fit, bare_cpu / pipe_cpu, 0.95))

    # 2. predictions: loaded vs in-memory (forest, then neural net)
    X_predict, _ = numeric_table(args.predict_rows, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        save_model(pipeline, Path(tmp) / "rf")
        loaded = load_model(Path(tmp) / "rf")
        assert np.array_equal(loaded.predict_proba(X_predict), pipeline.predict_proba(X_predict))
        def loaded_vs_memory(label, loaded_model, memory_model):
            "A results row: predict_proba throughput of a loaded model against the in-memory one, alternating."
            loaded_s, memory_s, loaded_cpu, memory_cpu = alternate(lambda: loaded_model.predict_proba(X_predict),
                                                                   lambda: memory_model.predict_proba(X_predict),
                                                                   args.predict_repeats)
            rows.append((label, f"{args.predict_rows:,} rows", f"{args.predict_rows / loaded_s:,.0f} rows/s",
                         f"{args.predict_rows / memory_s:,.0f} rows/s", memory_s / loaded_s, memory_cpu / loaded_cpu, 0.95))

        loaded_vs_memory("rf predict_proba: loaded vs in-memory", loaded, pipeline)
        # the same on one thread: what the loaded model costs, without thread scheduling on a shared machine
        for model in (loaded, pipeline): model.named_steps["model"].set_params(n_jobs=1)
        loaded_vs_memory("rf predict_proba on one thread (n_jobs=1): loaded vs in-memory", loaded, pipeline)
        for model in (loaded, pipeline): model.named_steps["model"].set_params(n_jobs=-1)

        net = make_model("nn", "binary", schema, seed=0, max_epochs=3).fit(X, y)
        save_model(net, Path(tmp) / "nn")
        net_loaded = load_model(Path(tmp) / "nn")
        assert np.array_equal(net_loaded.predict_proba(X_predict), net.predict_proba(X_predict))
        loaded_vs_memory("nn predict_proba: loaded vs in-memory", net_loaded, net)

    # 3. for information: the order-preserving forest's predictions vs scikit-learn's threaded accumulation
    forest = pipeline.named_steps["model"]
    X_pre = pipeline.named_steps["preprocess"].transform(X_predict)
    ordered, plain, ordered_cpu, plain_cpu = alternate(lambda: forest.predict_proba(X_pre),
                                                       lambda: bare.predict_proba(X_pre), args.predict_repeats)
    rows.append(("forest predict_proba: OrderedForestClassifier vs RandomForestClassifier (n_jobs=-1)",
                 f"{args.predict_rows:,} rows", f"{args.predict_rows / ordered:,.0f} rows/s",
                 f"{args.predict_rows / plain:,.0f} rows/s", plain / ordered, plain_cpu / ordered_cpu, None))

    lines = ["# bench_models", "",
             f"Measured {time.strftime('%Y-%m-%d %H:%M')} with `python bench/bench_models.py --rows {args.rows} "
             f"--predict-rows {args.predict_rows} --repeats {args.repeats} --predict-repeats {args.predict_repeats}`: {os.cpu_count()} cores, "
             f"load average {load_before[0]:.1f} at start (other jobs shared the machine), Python "
             f"{platform.python_version()}, scikit-learn {sklearn.__version__}. Each pair ran alternately, "
             f"{args.repeats} times (fits) or {args.predict_repeats} times (predictions) after one warm-up; the table gives medians. Ratio: throughput of the first "
             "over the second (wall time of the second over the first); higher is better for the first. The CPU "
             "ratio compares the CPU seconds of all threads, which other jobs on the machine disturb less.", "",
             "| comparison | size | first (wall) | second (wall) | ratio (wall) | ratio (CPU) | goal |",
             "|---|---|---|---|---|---|---|"]
    for what, size, first, second, ratio, cpu_ratio, goal in rows:
        verdict = "for information" if goal is None else (f">= {goal} {'met' if ratio >= goal else 'NOT met'}")
        lines.append(f"| {what} | {size} | {first} | {second} | {ratio:.3f}x | {cpu_ratio:.3f}x | {verdict} |")
    lines += ["", "Every pair was checked to give identical predictions (`np.array_equal`) before timing.", ""]
    text = "\n".join(lines)
    atomic_write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
