"""Resources (issue 10): one input must never take the machine down.

What is checked here is the *shape* of the work, which does not depend on the machine: how many values
the model is asked to predict for permutation importance, how many classes a confusion matrix draws,
how many bytes the bootstrap of a 500-class problem allocates, that a failed save leaves no file. The
time and peak memory of whole runs are in `bench/bench_pipeline.py` and `bench/results/pipeline.md`.
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from mlops_nb.evaluate import (MAX_FIGURE_INCHES, _bootstrap_weights, _multiclass_count_metrics, evaluate,
                               feature_importance, figure_png, plot_confusion_matrix, plot_feature_importance,
                               save_figure)


class CountingModel:
    "Wraps a fitted classifier and counts the values (rows x columns) it is asked to predict."
    def __init__(self, model):
        self.model, self.values, self.calls = model, 0, 0
        self.classes_ = model.classes_

    def _count(self, X):
        self.values += X.shape[0] * X.shape[1]
        self.calls += 1

    def predict_proba(self, X):
        self._count(X)
        return self.model.predict_proba(X)

    def predict(self, X):
        self._count(X)
        return self.model.predict(X)

    def __getattr__(self, name):  # feature_importances_, n_features_in_, ...
        return getattr(self.model, name)


def table(n_rows: int, n_columns: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    "Normal columns; the label is decided by the first two."
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n_rows, n_columns)), columns=[f'x{i}' for i in range(n_columns)])
    return X, np.where(X['x0'] + X['x1'] > 0, 'yes', 'no')


@pytest.fixture(scope='module')
def narrow_and_wide():
    "A 40-column and a 2,000-column table of 300 rows, a forest on the first 240 rows of each."
    fitted = {}
    for width in (40, 2000):
        X, y = table(300, width)
        fitted[width] = (RandomForestClassifier(n_estimators=30, random_state=0, n_jobs=1).fit(X.iloc[:240], y[:240]),
                         X.iloc[240:], y[240:])
    return fitted


def test_permutation_work_follows_what_is_shown(narrow_and_wide):
    "A 2,000-column table shuffles as many columns as a 40-column one, in a few stacked predictions."
    work = {}
    for width, (forest, X, y) in narrow_and_wide.items():
        counting = CountingModel(forest)
        result = feature_importance(counting, X, y, task='binary', n_repeats=5, max_permuted=40)
        work[width] = (counting.values, counting.calls, int(result['permutation'].notna().sum()))
        assert set(result['permutation'].nlargest(2).index) == {'x0', 'x1'}
    assert work[40][2] == work[2000][2] == 40
    # every prediction carries all the columns, so values grow with the width; what matters is that the
    # shuffles do not: 40 x 5 shuffled copies plus the unshuffled one, for both widths
    rows = len(narrow_and_wide[40][1])
    assert work[40][0] == (40 * 5 + 1) * rows * 40
    assert work[2000][0] == (40 * 5 + 1) * rows * 2000
    assert work[2000][1] <= 20, work   # stacked: not one call per shuffle (there are 200 shuffles)


def test_wide_table_rows_are_bounded():
    "A wide table gets fewer rows, so one shuffled copy holds at most PERMUTATION_CELLS values."
    from mlops_nb.evaluate import PERMUTATION_CELLS, _sample_rows
    X, y = table(3000, 2000)
    rows, y_rows = _sample_rows(X, y, max_rows=5000, seed=0)
    assert rows.size <= PERMUTATION_CELLS and len(rows) == len(y_rows) == 500
    assert list(rows.index) == sorted(rows.index)   # a sample in the original order
    same, _ = _sample_rows(X, y, max_rows=5000, seed=0)
    assert same.index.equals(rows.index)


def test_screen_without_impurity_keeps_the_columns_that_matter():
    "A model without impurity importance: the one-shuffle screen picks the candidates."
    X, y = table(300, 300)
    linear = CountingModel(LogisticRegression(max_iter=2000).fit(X.iloc[:240], y[:240]))
    result = feature_importance(linear, X.iloc[240:], y[240:], task='binary', n_repeats=3, max_permuted=20)
    assert result['permutation'].notna().sum() == 20
    assert set(result['permutation'].nlargest(2).index) == {'x0', 'x1'}


def test_feature_importance_shows_the_users_column_names():
    "The package's preprocessor: bars named after the input columns, one-hot and date parts summed."
    from sklearn.pipeline import Pipeline
    from mlops_nb.data import infer_schema
    from mlops_nb.features import make_preprocessor
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({'Air temperature [K]': rng.normal(300, 2, 400), 'Type': rng.choice(['L', 'M', 'H'], 400),
                          'when': pd.date_range('2024-01-01', periods=400, freq='D').astype(str)})
    y = np.where((frame['Type'] == 'L') & (frame['Air temperature [K]'] > 300), 1, 0)
    schema = infer_schema(frame)
    model = Pipeline([('preprocess', make_preprocessor(schema)),
                      ('model', RandomForestClassifier(n_estimators=20, random_state=0))]).fit(frame, y)
    fig = plot_feature_importance(model, frame, y, task='binary')
    for ax in fig.axes:
        labels = sorted(t.get_text() for t in ax.get_yticklabels())
        assert labels == ['Air temperature [K]', 'Type', 'when'], labels
        assert not any('__' in label for label in labels)


def test_confusion_matrix_of_500_classes_is_bounded():
    rng = np.random.default_rng(0)
    y_true = np.array([f'class_{i:03d}' for i in rng.integers(0, 500, 5000)])
    y_pred = np.where(rng.random(5000) < 0.5, y_true, np.array([f'class_{i:03d}' for i in rng.integers(0, 500, 5000)]))
    fig = plot_confusion_matrix(y_true, y_pred, labels=np.unique(y_true))
    ax = fig.axes[0]
    assert len(ax.get_xticks()) == 21 and ax.get_xticklabels()[-1].get_text() == 'other (480 classes)'
    assert sum(int(t.get_text()) for t in ax.texts) == 5000   # every row counted
    assert max(fig.get_size_inches()) <= MAX_FIGURE_INCHES
    png = figure_png(fig)
    assert png[:4] == b'\x89PNG' and len(png) < 2_000_000


def test_multiclass_bootstrap_memory_is_linear_in_classes():
    "200 resamples of a 500-class test set: per-class counts, never (resamples x classes x classes)."
    rng = np.random.default_rng(0)
    true_index = rng.integers(0, 500, 1000)
    pred_index = np.where(rng.random(1000) < 0.6, true_index, rng.integers(0, 500, 1000))
    weights = next(_bootstrap_weights(1000, 200, seed=0))
    tracemalloc.start()
    _multiclass_count_metrics(true_index, pred_index, 500, weights)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    full_confusion = 200 * 500 * 500 * 8
    assert peak < full_confusion / 20, (peak, full_confusion)


def test_evaluate_500_classes():
    """evaluate on a 500-class test set: the metrics and their intervals come out.

    The percentile interval of macro F1 need not contain the point estimate when classes have one or two
    test rows: each resample averages over the classes it happens to hold."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(500), 10)
    X = pd.DataFrame({'a': labels + rng.normal(0, 0.3, 5000), 'b': rng.normal(size=5000)})
    forest = RandomForestClassifier(n_estimators=5, random_state=0, n_jobs=1).fit(X.iloc[::2], labels[::2])
    metrics = evaluate(forest, X.iloc[1::2], labels[1::2], 'multiclass', n_bootstrap=50)
    assert 0 <= metrics['macro_f1_low'] <= metrics['macro_f1_high'] <= 1
    assert metrics['accuracy_low'] <= metrics['accuracy'] <= metrics['accuracy_high']


def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    "Drawing fails (here: out of memory while rendering): nothing is written, not even a temporary file."
    from matplotlib.figure import Figure
    fig = plot_confusion_matrix(['a', 'b'], ['a', 'a'])
    def out_of_memory(*args, **kwargs): raise MemoryError('rendering')
    monkeypatch.setattr(Figure, 'savefig', out_of_memory)
    with pytest.raises(MemoryError):
        save_figure(fig, tmp_path/'plots'/'confusion.png')
    assert not (tmp_path/'plots').exists() or list((tmp_path/'plots').iterdir()) == []
