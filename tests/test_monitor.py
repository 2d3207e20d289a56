"""Drift detection on the built-in case studies, bad monitoring input, and `monitor_run` end to end.

The acceptance checks of the monitoring issue:
- same-distribution data (20 seeds): dataset drift declared at most once;
- one shifted column (maintenance: air temperature +3 K; fraud: TX_AMOUNT x1.5) flagged and named,
  without dataset drift at the default share;
- half of the maintenance inputs shifted (air and process temperature +3 K, torque x1.2) declares
  dataset drift and names all three;
each with a large reference (Wasserstein / Jensen-Shannon) and a reference of at most 1,000 rows
(Kolmogorov-Smirnov / chi-square / z-test).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlops_nb.core import DataError, ParamError, atomic_write_json, read_json
from mlops_nb.monitor import detect_drift, monitor_run, quality_over_time, read_prediction_log, reference_profile
from mlops_nb.runner import NotebookError

AIR, PROCESS, SPEED, TORQUE, WEAR = ('Air temperature [K]', 'Process temperature [K]', 'Rotational speed [rpm]',
                                     'Torque [Nm]', 'Tool wear [min]')
MAINTENANCE_INPUTS = ['Type', AIR, PROCESS, SPEED, TORQUE, WEAR]
MAINTENANCE_SCHEMA = {'target': 'Machine failure', 'numeric': [AIR, PROCESS, SPEED, TORQUE, WEAR],
                      'categorical': ['Type'], 'datetime': [], 'excluded': {}, 'dtypes': {},
                      'categories': {'Type': ['H', 'L', 'M']}}
SEEDS = range(20)


def maintenance(n_rows: int, seed: int, **options) -> pd.DataFrame:
    datasets = pytest.importorskip('mlops_nb.datasets', reason='mlops_nb.datasets (make_maintenance) not exported yet')
    frame = datasets.make_maintenance(n_rows=n_rows, seed=seed, **options)
    assert set(MAINTENANCE_INPUTS) <= set(frame.columns)
    return frame


def fraud_periods(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of one small simulated fraud world: two weeks of reference, the next two weeks current.

    The first 40 days are left out: the 30-day windows (and the 30-day terminal risk, 7 days delayed)
    are still filling up then, a real trend that drift detection rightly flags. Two full weeks each, so
    both periods hold the same number of weekend days."""
    from mlops_nb.fraud import FRAUD_FEATURES, fraud_features, make_fraud
    frame = fraud_features(make_fraud(n_customers=300, n_terminals=600, nb_days=68, seed=seed))
    day = (frame['TX_DATETIME'] - frame['TX_DATETIME'].min().normalize()).dt.days
    columns = FRAUD_FEATURES + ['TX_FRAUD']
    return (frame.loc[(day >= 40) & (day < 54), columns].reset_index(drop=True),
            frame.loc[day >= 54, columns].reset_index(drop=True))


def fraud_schema():
    from mlops_nb.fraud import FRAUD_FEATURES
    return {'target': 'TX_FRAUD', 'numeric': list(FRAUD_FEATURES), 'categorical': [], 'datetime': [], 'excluded': {}}


def shift_half(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(**{AIR: frame[AIR] + 3, PROCESS: frame[PROCESS] + 3, TORQUE: frame[TORQUE] * 1.2})


# ---- maintenance, large reference: Wasserstein / Jensen-Shannon -------------------------------------
# `make_maintenance` draws the two temperatures as slow random walks (AR(1), persistence 0.999), as in
# the real AI4I data. A window of 5,000 rows of such a walk is not a sample of one fixed distribution:
# its temperatures wander, and drift detection flags them in about 2 seeds of 3 without any shift.
# Data-set drift still needs half of the columns, so it is not declared. The checks run on that
# realistic process ("walk"), where a shift must add exactly the shifted columns to what is flagged
# anyway, and on independent rows (persistence 0, "iid"), where exactly the shifted columns drift.

PROCESSES = {'walk': {}, 'iid': {'persistence': 0.0}}


@pytest.fixture(scope='module', params=list(PROCESSES))
def maintenance_runs(request):
    "(profile, current) for 20 seeds: 10,000 reference rows against 5,000 current rows of another seed."
    runs = []
    for seed in SEEDS:
        reference = maintenance(10_000, seed, **PROCESSES[request.param])[MAINTENANCE_INPUTS]
        runs.append((reference_profile(reference, MAINTENANCE_SCHEMA),
                     maintenance(5_000, 1000 + seed, **PROCESSES[request.param])[MAINTENANCE_INPUTS]))
    return request.param, runs


def test_maintenance_methods_follow_evidently_defaults(maintenance_runs):
    profile, current = maintenance_runs[1][0]
    result = detect_drift(profile, current)
    methods = dict(zip(result.table['column'], result.table['method']))
    assert methods == {AIR: 'wasserstein', PROCESS: 'wasserstein', SPEED: 'wasserstein', TORQUE: 'wasserstein',
                       WEAR: 'wasserstein', 'Type': 'jensenshannon'}


def test_maintenance_same_distribution_20_seeds(maintenance_runs):
    process, runs = maintenance_runs
    results = [detect_drift(profile, current) for profile, current in runs]
    declared = sum(r.dataset_drift for r in results)
    flagged = pd.Series([c for r in results for c in r.drifted_columns], dtype=object).value_counts().to_dict()
    largest = pd.concat([r.table.set_index('column')['score'] for r in results], axis=1).max(axis=1).round(3).to_dict()
    print(f"maintenance ({process}) same distribution: dataset drift in {declared} of 20 seeds; "
          f"columns flagged {flagged}; largest scores {largest}")
    assert declared <= 1
    if process == 'iid': assert not flagged


def test_maintenance_one_shifted_column(maintenance_runs):
    process, runs = maintenance_runs
    for profile, current in runs:
        unshifted = set(detect_drift(profile, current).drifted_columns)
        result = detect_drift(profile, current.assign(**{AIR: current[AIR] + 3}))
        assert set(result.drifted_columns) == unshifted | {AIR}, result.table
        assert not result.dataset_drift
        assert result.table.set_index('column').loc[AIR, 'score'] > 1.0  # 3 K is 1.5 reference standard deviations
        if process == 'iid': assert result.drifted_columns == [AIR]


def test_maintenance_half_the_inputs_shifted(maintenance_runs):
    process, runs = maintenance_runs
    for profile, current in runs:
        unshifted = set(detect_drift(profile, current).drifted_columns)
        result = detect_drift(profile, shift_half(current))
        assert set(result.drifted_columns) == unshifted | {AIR, PROCESS, TORQUE}, result.table
        assert result.dataset_drift and result.share >= 0.5
        if process == 'iid': assert sorted(result.drifted_columns) == sorted([AIR, PROCESS, TORQUE])


def test_wasserstein_from_profile_matches_scipy_on_raw_data():
    "The quantile-sketch Wasserstein distance (no raw reference) against scipy on the raw columns."
    reference = maintenance(10_000, 0)
    profile = reference_profile(reference[MAINTENANCE_INPUTS], MAINTENANCE_SCHEMA)
    current = shift_half(maintenance(5_000, 1))  # the temperature walks: the most curved distributions here
    table = detect_drift(profile, current).table.set_index('column')
    for column in [AIR, PROCESS, SPEED, TORQUE, WEAR]:
        raw = stats.wasserstein_distance(reference[column], current[column]) / reference[column].std(ddof=0)
        # tolerance: 0.01 reference standard deviations (a tenth of the drift threshold)
        assert abs(table.loc[column, 'score'] - raw) < 0.01, (column, table.loc[column, 'score'], raw)


# ---- maintenance, small reference (<= 1,000 rows): KS / chi-square ---------------------------------

@pytest.mark.parametrize('process', list(PROCESSES))
def test_maintenance_small_reference_uses_tests(process):
    "800 reference rows against 500: KS and chi-square at p < 0.05, so about 1 test in 20 fires by chance."
    declared, flagged = 0, []
    for seed in SEEDS:
        profile = reference_profile(maintenance(800, seed, **PROCESSES[process])[MAINTENANCE_INPUTS], MAINTENANCE_SCHEMA)
        current = maintenance(500, 1000 + seed, **PROCESSES[process])[MAINTENANCE_INPUTS]
        result = detect_drift(profile, current)
        assert set(result.table['method']) == {'ks', 'chi2'}
        declared += result.dataset_drift
        flagged += result.drifted_columns
        if seed < 5:  # an unshifted column may fire by chance, so "at least" here
            one = detect_drift(profile, current.assign(**{AIR: current[AIR] + 3}))
            assert AIR in one.drifted_columns
            half = detect_drift(profile, shift_half(current))
            assert {AIR, PROCESS, TORQUE} <= set(half.drifted_columns) and half.dataset_drift
    flagged = pd.Series(flagged, dtype=object).value_counts().to_dict()
    print(f"maintenance ({process}) 800 vs 500 rows, same distribution: dataset drift in {declared} of 20 seeds; "
          f"columns flagged {flagged}")
    independent = sum(n for column, n in flagged.items() if column not in (AIR, PROCESS))
    assert independent <= 8  # 4 columns x 20 seeds at 5%: 4 expected
    if process == 'iid': assert declared <= 1 and sum(flagged.values()) <= 12  # 6 expected of 120


# ---- fraud: 15 handbook features -------------------------------------------------------------------

@pytest.fixture(scope='module')
def fraud_runs():
    "(profile, current) for 20 seeds: two weeks of transactions (about 8,000) against the next two weeks."
    runs = []
    for seed in SEEDS:
        reference, current = fraud_periods(seed)
        runs.append((reference_profile(reference, fraud_schema()), current))
    return runs


def test_fraud_same_distribution_20_seeds(fraud_runs):
    results = [detect_drift(profile, current) for profile, current in fraud_runs]
    declared = sum(r.dataset_drift for r in results)
    flagged = pd.Series([c for r in results for c in r.drifted_columns]).value_counts()
    print(f"fraud same distribution: dataset drift in {declared} of 20 seeds; columns flagged: {flagged.to_dict()}")
    assert results[0].table.set_index('column').loc['TX_DURING_WEEKEND', 'method'] == 'jensenshannon'
    assert declared <= 1


def test_fraud_amount_scaled(fraud_runs):
    for profile, current in fraud_runs[:5]:
        result = detect_drift(profile, current.assign(TX_AMOUNT=current['TX_AMOUNT'] * 1.5))
        assert 'TX_AMOUNT' in result.drifted_columns and not result.dataset_drift, result.table
        assert result.table.set_index('column').loc['TX_AMOUNT', 'score'] >= 0.1


def test_fraud_small_reference_z_test():
    "A reference of 1,000 rows: KS for numeric features, the z-test for the weekend and night flags."
    reference, current = fraud_periods(0)
    profile = reference_profile(reference.sample(1000, random_state=0), fraud_schema())
    current = current.sample(600, random_state=1)
    result = detect_drift(profile, current)
    methods = dict(zip(result.table['column'], result.table['method']))
    assert methods['TX_DURING_WEEKEND'] == methods['TX_DURING_NIGHT'] == 'z' and methods['TX_AMOUNT'] == 'ks'
    assert not result.dataset_drift
    night = current.assign(TX_DURING_NIGHT=(np.arange(len(current)) % 3 == 0).astype(int))  # a third at night
    assert 'TX_DURING_NIGHT' in detect_drift(profile, night).drifted_columns
    shifted = detect_drift(profile, current.assign(TX_AMOUNT=current['TX_AMOUNT'] * 1.5))
    assert 'TX_AMOUNT' in shifted.drifted_columns and not shifted.dataset_drift


# ---- bad monitoring input ----------------------------------------------------------------------------

@pytest.fixture
def small_profile():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({AIR: rng.normal(300, 2, 2000), 'Type': rng.choice(['L', 'M', 'H'], 2000)})
    schema = {'target': None, 'numeric': [AIR], 'categorical': ['Type'], 'datetime': [], 'excluded': {}}
    return reference_profile(frame, schema), frame


def test_bad_input_is_a_data_error_naming_the_problem(small_profile, tmp_path):
    profile, frame = small_profile
    with pytest.raises(DataError, match=r"missing column 'Air temperature \[K\]'"):
        detect_drift(profile, frame.drop(columns=AIR))
    with pytest.raises(DataError, match=r"'Air temperature \[K\]' should be numeric but holds 'hot'"):
        detect_drift(profile, frame.assign(**{AIR: ['hot'] * len(frame)}))
    frame.assign(**{AIR: ['hot'] + [300.0] * (len(frame) - 1)}).to_csv(tmp_path/'text.csv', index=False)
    with pytest.raises(DataError, match='text.csv.*should be numeric'):
        detect_drift(profile, tmp_path/'text.csv')
    (tmp_path/'empty.csv').write_text('')
    with pytest.raises(DataError, match='empty.csv'):
        detect_drift(profile, tmp_path/'empty.csv')
    frame.head(0).to_csv(tmp_path/'header_only.csv', index=False)
    with pytest.raises(DataError, match='header_only.csv'):
        detect_drift(profile, tmp_path/'header_only.csv')
    (tmp_path/'empty.jsonl').write_text('')
    with pytest.raises(DataError, match='empty.jsonl'):
        detect_drift(profile, tmp_path/'empty.jsonl')
    with pytest.raises(DataError, match='absent.parquet'):
        detect_drift(profile, tmp_path/'absent.parquet')
    with pytest.raises(DataError, match="'Type' has no values"):
        detect_drift(profile, frame.assign(Type=None))
    with pytest.raises(ParamError, match="Did you mean 'jensenshannon'"):
        detect_drift(profile, frame, method='jensen')


# ---- too few rows to judge ---------------------------------------------------------------------------

def test_five_training_rows_are_too_few_to_judge(tmp_path):
    "Five rows of the training data itself: 'too few rows to judge' (never drift), in the result and drift.json."
    from mlops_nb.monitor import drift_report
    reference = maintenance(5_000, 0)[MAINTENANCE_INPUTS]
    profile = reference_profile(reference, MAINTENANCE_SCHEMA)
    result = drift_report(profile, reference.head(5), out_dir=tmp_path/'report')
    assert result.too_few_rows and not result.dataset_drift and result.drifted_columns == []
    assert result.verdict == 'too few rows to judge' and result.message.startswith('too few rows to judge: 5 current rows')
    summary = read_json(tmp_path/'report'/'drift.json')
    assert summary['too_few_rows'] is True and summary['dataset_drift'] is False and summary['verdict'] == 'too few rows to judge'
    assert not any(column['drifted'] for column in summary['columns'])


@pytest.mark.parametrize('small_reference', [False, True])
def test_enough_rows_of_the_same_data_are_judged_and_do_not_drift(small_reference):
    "At the documented minimum every column is judged, and same-distribution rows do not drift."
    reference = maintenance(800 if small_reference else 5_000, 0, **PROCESSES['iid'])[MAINTENANCE_INPUTS]
    profile = reference_profile(reference, MAINTENANCE_SCHEMA)
    current = maintenance(5_000, 7, **PROCESSES['iid'])[MAINTENANCE_INPUTS]
    need = int(detect_drift(profile, current).table['min_rows'].max())
    result = detect_drift(profile, current.head(need))
    assert result.table['judged'].all() and not result.too_few_rows, result.table
    assert not result.dataset_drift
    fewer = detect_drift(profile, current.head(need - 1))
    assert not fewer.table['judged'].all()


# ---- prediction log, labels and monitor_run end to end ----------------------------------------------

def write_prediction_log(path, frame, model='rf', start='2026-01-05T00:00:00+00:00'):
    "A prediction log in the server's format: batches of 10 rows, one batch every 30 minutes."
    path.parent.mkdir(parents=True, exist_ok=True)
    p1 = 1 / (1 + np.exp(-(frame[TORQUE].to_numpy() - 50) / 5))
    with open(path, 'w') as f:
        for i, (record, p) in enumerate(zip(frame.to_dict('records'), p1)):
            time = pd.Timestamp(start) + pd.Timedelta(minutes=30) * (i // 10)
            f.write(json.dumps({'request_id': f'r{i // 10}', 'row': i % 10, 'time': time.isoformat(), 'model': model,
                                'inputs': record, 'prediction': int(p > 0.5), 'probabilities': {'0': 1 - p, '1': p}}) + '\n')
    return path


def make_run_dir(root, reference):
    run_dir = root/'runs'/'20260105T000000-000000-abcd'
    atomic_write_json(run_dir/'reference_profile.json', reference_profile(reference, MAINTENANCE_SCHEMA))
    atomic_write_json(run_dir/'manifest.json', {'status': 'complete'})
    return run_dir


def test_quality_over_time_from_log_and_labels(tmp_path):
    current = maintenance(480, 3)[MAINTENANCE_INPUTS]
    log_path = write_prediction_log(tmp_path/'rf.jsonl', current)
    log = read_prediction_log(log_path)
    truth = (current[TORQUE] + np.random.default_rng(0).normal(0, 5, len(current)) > 50).astype(int).to_numpy()
    labels = log[['request_id', 'row']].assign(label=truth)
    quality = quality_over_time(log, labels.iloc[:400], freq='6h')  # 48 batches, 30 minutes apart: 4 windows
    assert quality['predicted'].tolist() == [120] * 4 and quality['labelled'].tolist() == [120, 120, 120, 40]
    hits = log['prediction'].to_numpy() == truth
    assert np.allclose(quality['accuracy'], [hits[:120].mean(), hits[120:240].mean(), hits[240:360].mean(), hits[360:400].mean()])
    whole = quality_over_time(log, labels, freq='30D')
    from sklearn.metrics import roc_auc_score
    assert abs(whole['roc_auc'].iloc[0] - roc_auc_score(truth, log['probability_1'])) < 1e-12


def test_monitor_run_end_to_end(tmp_path):
    "Through papermill: a prediction log with half the inputs shifted, and labels -> drift, report, exit flag."
    run_dir = make_run_dir(tmp_path, maintenance(5_000, 0)[MAINTENANCE_INPUTS])
    current = shift_half(maintenance(600, 1)[MAINTENANCE_INPUTS])
    log_path = write_prediction_log(run_dir/'prediction_log'/'rf.jsonl', current)
    log = read_prediction_log(log_path)
    log[['request_id', 'row']].assign(label=log['prediction']).to_csv(tmp_path/'labels.csv', index=False)
    report, drifted = monitor_run(run_dir.name, runs_dir=tmp_path/'runs', labels=tmp_path/'labels.csv')
    assert drifted is True
    assert report.name == 'report.html' and report.parent.parent == run_dir/'monitoring'
    summary = read_json(report.parent/'drift.json')
    assert sorted(summary['drifted_columns']) == sorted([AIR, PROCESS, TORQUE])
    for name in ['monitor.ipynb', 'drift.csv', 'quality.csv', 'plots/drift_scores.png', 'plots/distributions.png',
                 'plots/quality_over_time.png']:
        assert (report.parent/name).is_file(), name
    assert 'Torque [Nm]' in report.read_text()
    assert pd.read_csv(report.parent/'quality.csv')['accuracy'].eq(1.0).all()


def test_monitor_run_errors(tmp_path):
    run_dir = make_run_dir(tmp_path, maintenance(2_000, 0)[MAINTENANCE_INPUTS])
    with pytest.raises(DataError, match='no prediction log'):
        monitor_run(run_dir)
    with pytest.raises(DataError, match='absent.csv'):
        monitor_run(run_dir, current=tmp_path/'absent.csv')
    with pytest.raises(ParamError, match='no-such-run'):
        monitor_run('no-such-run', current=tmp_path/'absent.csv', runs_dir=tmp_path/'runs')


def test_monitor_run_no_drift_and_error_inside_the_notebook(tmp_path):
    "A current file from the same process -> no drift; a file without a column -> the error, nothing left behind."
    run_dir = make_run_dir(tmp_path, maintenance(5_000, 0)[MAINTENANCE_INPUTS])
    maintenance(2_000, 5)[MAINTENANCE_INPUTS].to_parquet(tmp_path/'current.parquet')
    report, drifted = monitor_run(run_dir, current=tmp_path/'current.parquet', out_dir=tmp_path/'report')
    assert drifted is False and report == (tmp_path/'report'/'report.html').resolve()
    maintenance(100, 6)[MAINTENANCE_INPUTS].drop(columns=WEAR).to_csv(tmp_path/'no_wear.csv', index=False)
    with pytest.raises(NotebookError, match=r"nothing was written.*missing column 'Tool wear \[min\]'.*Executed notebook kept") as failure:
        monitor_run(run_dir, current=tmp_path/'no_wear.csv', out_dir=tmp_path/'failed')
    assert failure.value.ename == 'DataError' and (failure.value.executed/'monitor.ipynb').is_file()
    assert not (tmp_path/'failed').exists() and not list(tmp_path.glob('.failed*'))  # nothing left where the report was to go
