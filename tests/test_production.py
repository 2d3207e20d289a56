"""The production replay (issue 13): the production notebook run through `production.production_run` at its small
default size, with a real `mlops-nb serve` and a real Prometheus (skipped without prometheus/promtool, failed
instead under MLOPS_NB_REQUIRE_PROMETHEUS=1). About a minute and a half on two cores.
"""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from mlops_nb import prometheus as prom
from mlops_nb.production import production_notebook, production_run
from mlops_nb.runner import check_parameters
from mlops_nb.runs import RunDir

DRIFT_ALERT = 'MlopsNbDatasetDrift'


@pytest.fixture(scope='module')
def replay(tmp_path_factory):
    try: prom.prometheus_tools()
    except prom.ToolMissing as e:
        if os.environ.get('MLOPS_NB_REQUIRE_PROMETHEUS') == '1': pytest.fail(f"MLOPS_NB_REQUIRE_PROMETHEUS=1 but {e}")
        pytest.skip(str(e))
    return production_run({}, out_dir=tmp_path_factory.mktemp('production')/'replay', progress=False)


def test_the_drift_alert_fires_after_the_change_and_not_before(replay):
    params = check_parameters({}, production_notebook())
    days = pd.read_csv(replay.days)
    assert set(days['case']) == set(params['cases'].split(','))
    for case, rows in days.groupby('case'):
        assert rows['day'].tolist() == list(range(params['days']))
        firing = rows['alerts'].fillna('').str.split(',').apply(lambda alerts: DRIFT_ALERT in alerts)
        before, after = firing[rows['day'] < params['shift_day']], firing[rows['day'] >= params['shift_day']]
        assert not before.any(), f"{case}: drift alert before the change, days {rows.loc[before[before].index, 'day'].tolist()}"
        assert after.iloc[0] and after.all(), f"{case}: drift alert missing after the change: {after.tolist()}"
        changed = rows[rows['day'] >= params['shift_day']]
        assert (changed['drift_share'] >= changed['drift_share_threshold']).all()


def test_labels_arrive_after_their_delay_and_quality_is_read_from_prometheus(replay):
    params = check_parameters({}, production_notebook())
    days = pd.read_csv(replay.days)
    for case, delay in (('fraud', params['label_delay_days']), ('maintenance', params['maintenance_label_delay_days'])):
        rows = days[days['case'] == case]
        early, late = rows[rows['day'] < delay], rows[rows['day'] >= delay]
        assert (early['labelled_rows'] == 0).all() and early['precision'].isna().all() and early['labels_of_day'].isna().all()
        assert (late['labels_of_day'] == late['day'] - delay).all() and (late['labelled_rows'] > 0).all()
        assert late[['precision', 'recall', 'roc_auc']].apply(lambda c: c.between(0, 1)).all().all()
    fraud = days[(days['case'] == 'fraud') & (days['day'] >= params['label_delay_days'])]
    assert fraud['card_precision'].between(0, 1).all()


def test_the_outcome_beats_random_checks_and_the_report_is_complete(replay):
    outcome = json.loads(replay.outcome.read_text())
    measures = {(row['case'], row['measure']) for row in outcome['outcomes']}
    assert measures == {('fraud', 'fraudulent transactions stopped'), ('fraud', 'fraud amount stopped'), ('maintenance', 'failures caught ahead')}
    for row in outcome['outcomes']:
        assert row['model_low'] <= row['model'] <= row['model_high'] and row['baseline_low'] <= row['baseline'] <= row['baseline_high']
        assert row['difference_low'] > 0, row  # the model's top-k beats the same budget spent at random
    assert replay.report.is_file() and replay.plot('outcomes').is_file() and replay.plot('fraud_days').is_file()
    runs = sorted(replay.runs.iterdir())
    assert len(runs) == 2 and all(json.loads(RunDir(r).manifest.read_text())['status'] == 'complete' for r in runs)
    alerts = pd.read_csv(replay.alerts)
    assert {('fraud', DRIFT_ALERT), ('maintenance', DRIFT_ALERT)} <= set(zip(alerts['case'], alerts['alert']))
