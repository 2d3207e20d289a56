"""The deployable monitoring configuration (deploy/monitoring, issue 13) against a real Prometheus.

A real `mlops-nb serve` subprocess and a real Prometheus (Debian's `prometheus` package) on 127.0.0.1, scraping
every second with the deployed prometheus.yml and rules; predictions and labels go through HTTP; Prometheus' HTTP
API is asked what it sees. Without prometheus/promtool these tests skip, saying so; with
MLOPS_NB_REQUIRE_PROMETHEUS=1 (CI) they fail instead.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from mlops_nb import prometheus as prom
from mlops_nb.core import atomic_write_json, project_root
from mlops_nb.data import infer_schema
from mlops_nb.models import make_model, save_model
from mlops_nb.monitor import reference_profile
from mlops_nb.runs import RunDir
from mlops_nb.serve import read_log

RUN_ID = '20261202T090000-000000-prom'
FEATURES = ['Type', 'Torque [Nm]', 'Tool wear [min]']
SENT, LABELLED = 600, 500  # rows predicted, rows labelled (the live windows hold them all: see serve_options)
JOB = f'job="{prom.JOB}"'


@pytest.fixture(scope='module')
def tools():
    "prometheus and promtool, or a skip (a failure under MLOPS_NB_REQUIRE_PROMETHEUS=1) saying what to install."
    try: return prom.prometheus_tools()
    except prom.ToolMissing as e:
        if os.environ.get('MLOPS_NB_REQUIRE_PROMETHEUS') == '1': pytest.fail(f"MLOPS_NB_REQUIRE_PROMETHEUS=1 but {e}")
        pytest.skip(str(e))


def make_table(n: int, seed: int, torque_shift: float = 0.0) -> pd.DataFrame:
    "Maintenance-like inputs, a binary target, a card id and a day (not model inputs)."
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({'Type': rng.choice(['L', 'M', 'H'], n, p=[0.6, 0.3, 0.1]),
                          'Torque [Nm]': (rng.normal(40, 10, n) + torque_shift).round(1), 'Tool wear [min]': rng.integers(0, 250, n)})
    frame['failure'] = (((frame['Torque [Nm]'] > 48) & (frame['Tool wear [min]'] > 100)) | (rng.random(n) < 0.15)).astype(int)
    frame['CUSTOMER_ID'] = rng.integers(0, 40, n)
    frame['TX_TIME_DAYS'] = rng.integers(0, 5, n)
    return frame


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory) -> RunDir:
    "A complete run: a small forest, its reference profile, a manifest and metrics."
    table = make_table(600, seed=0)
    schema = infer_schema(table[FEATURES + ['failure']], target='failure')
    model = make_model('rf', 'binary', schema, seed=0, n_estimators=30, n_jobs=1).fit(table[FEATURES], table['failure'])
    run = RunDir(tmp_path_factory.mktemp('runs')/RUN_ID)
    save_model(model, run.model('rf'), card={'name': 'rf', 'task': 'binary', 'schema': schema})
    atomic_write_json(run.reference_profile, reference_profile(table[FEATURES], schema))
    atomic_write_json(run.manifest, {'status': 'complete'})
    atomic_write_json(run.metrics, {'rf': {'roc_auc': 0.9}})
    return run


def records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in frame[FEATURES + ['CUSTOMER_ID', 'TX_TIME_DAYS']].to_dict(orient='records')]


def labelled_rows(run: RunDir) -> pd.DataFrame:
    "The labelled predictions read back from the two logs: truth, answered class, score."
    predictions = {line['prediction_id']: line for line in read_log(run.prediction_log('rf'))}
    return pd.DataFrame([{'truth': int(label['label']), 'predicted': int(predictions[label['prediction_id']]['prediction']),
                          'score': predictions[label['prediction_id']]['probabilities']['1']} for label in read_log(run.feedback_log('rf'))])


def test_promtool_passes_the_config_the_rules_and_their_unit_tests(tools):
    assert 'SUCCESS' in prom.promtool('check', 'config', prom.monitoring_file('config'))
    assert '9 rules found' in prom.promtool('check', 'rules', prom.monitoring_file('rules'))
    assert 'SUCCESS' in prom.promtool('test', 'rules', prom.monitoring_file('rule_tests'))


@pytest.mark.parametrize('change', [('< 0.5\n', '< 0.2\n'), ('>= mlops_nb_live_drift_share_threshold', '> 0.9 + 0 *mlops_nb_live_drift_share_threshold'),
                                    ('== 0\n', '== 2\n'), ('for: 15m', 'for: 45m')])
def test_the_rule_unit_tests_catch_a_changed_rule(tools, tmp_path, change):
    "The unit tests can fail: move a floor, a threshold, a condition or a hold and they do."
    rules = prom.monitoring_file('rules').read_text()
    assert change[0] in rules
    (tmp_path/'mlops_nb.rules.yml').write_text(rules.replace(change[0], change[1]))
    (tmp_path/'mlops_nb.test.yml').write_text(prom.monitoring_file('rule_tests').read_text())
    with pytest.raises(Exception, match='FAILED'): prom.promtool('test', 'rules', tmp_path/'mlops_nb.test.yml')


def test_the_dashboard_is_a_grafana_dashboard():
    "Strict structural checks, and a round trip through Grafana's own dashboard model that keeps every key."
    dashboard = json.loads(prom.monitoring_file('dashboard').read_text())
    uid = yaml.safe_load(prom.monitoring_file('datasource').read_text())['datasources'][0]['uid']
    assert prom.check_dashboard(dashboard, uid) == []
    from grafana_foundation_sdk.cog import plugins  # here: a dev dependency, for this check only
    from grafana_foundation_sdk.cog.encoder import JSONEncoder  # here: as above
    from grafana_foundation_sdk.models.dashboard import Dashboard  # here: as above
    plugins.register_default_plugins()
    model = Dashboard.from_json(dashboard)
    assert all(type(t).__module__.endswith('.prometheus') for p in model.panels for t in p.targets)  # Prometheus queries
    again = json.loads(json.dumps(model, cls=JSONEncoder))

    def lost(original, copy, where=''):
        if isinstance(original, dict):
            return [f'{where}/{k}' for k in original if k not in copy] + [x for k in original if k in copy for x in lost(original[k], copy[k], f'{where}/{k}')]
        if isinstance(original, list): return [x for i, (a, b) in enumerate(zip(original, copy)) for x in lost(a, b, f'{where}[{i}]')]
        return [] if original == copy else [f'{where}: {original!r} became {copy!r}']
    assert lost(dashboard, again) == []  # a misspelled or unknown key would be dropped by the model


def test_compose_wires_the_server_prometheus_and_grafana():
    "Every file docker-compose.yml mounts exists; Prometheus scrapes the server's service and port; Grafana reads Prometheus and the dashboard."
    folder = prom.monitoring_file('compose').parent
    compose = yaml.safe_load(prom.monitoring_file('compose').read_text())
    services = compose['services']
    assert set(services) == {'model-server', 'prometheus', 'grafana'}
    build = services['model-server']['build']
    assert (folder/build['context']/build['dockerfile']).resolve() == project_root()/'Dockerfile'
    assert services['model-server']['command'][:2] == ['mlops-nb', 'serve'] and '8000' in services['model-server']['command']
    for service in ('prometheus', 'grafana'):
        for volume in services[service]['volumes']:
            source, target = volume.split(':')[:2]
            if source.startswith('.'): assert (folder/source).exists(), volume
    config = yaml.safe_load(prom.monitoring_file('config').read_text())
    [job] = [j for j in config['scrape_configs'] if j['job_name'] == prom.JOB]
    assert job['static_configs'][0]['targets'] == ['model-server:8000']
    assert all((folder/rule).is_file() for rule in config['rule_files'])
    datasource = yaml.safe_load(prom.monitoring_file('datasource').read_text())['datasources'][0]
    assert datasource['url'] == 'http://prometheus:9090' and datasource['type'] == 'prometheus'
    provider = yaml.safe_load(prom.monitoring_file('dashboard_provider').read_text())['providers'][0]
    mounted = {v.split(':')[1]: v.split(':')[0] for v in services['grafana']['volumes'] if v.startswith('.')}
    assert (folder/mounted[provider['options']['path']]/prom.monitoring_file('dashboard').name).is_file()


def serve_and_send(url: str) -> list[str]:
    "Predictions in 20 requests spread over a few scrapes (rates and quantiles need them), then labels for the first rows."
    table = pd.concat([make_table(SENT // 2, seed=1), make_table(SENT // 2, seed=2, torque_shift=15.0)], ignore_index=True)
    ids = []
    for start in range(0, SENT, SENT // 20):
        ids += prom.http_json(f'{url}/predict', {'records': records(table.iloc[start:start + SENT // 20])})['prediction_ids']
        time.sleep(0.15)
    labels = [{'prediction_id': i, 'label': int(y)} for i, y in zip(ids[:LABELLED], table['failure'])]
    statuses = prom.http_json(f'{url}/feedback', {'labels': labels})['statuses']
    assert statuses == ['accepted'] * LABELLED
    return ids


def monitor_cli(run: RunDir) -> dict:
    "`mlops-nb monitor RUN` on the prediction log; the drift verdict of its report."
    result = subprocess.run([str(Path(sys.executable).parent/'mlops-nb'), 'monitor', str(run.path)], capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 3), result.stderr
    return json.loads(run.monitoring_reports()[-1].drift.read_text())


def check_every_rule(server: prom.PrometheusServer) -> None:
    "Every rule evaluates without error; every recording rule has data; every series an alert reads exists."
    evaluated = {rule['name']: rule for group in server.api('/api/v1/rules')['groups'] for rule in group['rules']}
    rules = prom.rule_expressions()
    assert set(evaluated) == {r['name'] for r in rules}
    for rule in rules:
        assert evaluated[rule['name']]['health'] == 'ok', evaluated[rule['name']]
        server.query(rule['expr'])  # runs (an alert condition is rightly empty while all is well)
        if rule['kind'] == 'record': assert server.wait_until(rule['name'], timeout=30), rule['name']
        for name in prom.series_names(rule['expr']): assert server.query(name), f"{rule['name']}: no series {name}"


def check_every_panel(server: prom.PrometheusServer) -> None:
    "Every query of every dashboard panel returns samples, some of them numbers (no panel silently empty)."
    dashboard = json.loads(prom.monitoring_file('dashboard').read_text())
    targets = prom.dashboard_targets(dashboard)
    assert len(targets) >= 12
    for target in targets:
        samples = server.query(prom.grafana_expr(target['expr'], '2m'))
        assert samples and any(math.isfinite(v) for _, v in samples), (target['panel'], target['expr'], samples)


def test_a_real_prometheus_sees_what_sklearn_and_monitor_see(tools, run_dir, tmp_path):
    options = dict(model='rf', drift_window_rows=1000, drift_interval_seconds=0, quality_window_rows=1000, card_precision_k=5)
    with prom.serve_process(run_dir.path, tmp_path/'serve.log', **options) as url:
        target = url.removeprefix('http://')
        with prom.PrometheusServer(prom.local_config([target], interval='1s')) as server:
            server.wait_until(f'up{{{JOB}}} == 1')  # the first scrape (target discovery takes a few seconds)
            ids = serve_and_send(url)
            assert len(ids) == SENT
            verdict = monitor_cli(run_dir)
            server.wait_until(f'mlops_nb_live_labelled_rows{{{JOB}}} == {LABELLED}')
            server.wait_until(f'mlops_nb_live_drift_rows{{{JOB}}} == {SENT}')
            server.wait_until(f'mlops_nb_drift_report_available{{{JOB}}} == 1')
            server.wait_until(f'mlops_nb_live_drift_share{{{JOB}}}')
            rows = labelled_rows(run_dir)
            assert len(rows) == LABELLED and rows['predicted'].nunique() == 2 and rows['truth'].nunique() == 2
            assert abs(server.value(f'mlops_nb_live_precision_ratio{{{JOB}}}') - precision_score(rows['truth'], rows['predicted'])) <= 1e-9
            assert abs(server.value(f'mlops_nb_live_recall_ratio{{{JOB}}}') - recall_score(rows['truth'], rows['predicted'])) <= 1e-9
            assert abs(server.value(f'mlops_nb_live_roc_auc_ratio{{{JOB}}}') - roc_auc_score(rows['truth'], rows['score'])) <= 1e-9
            # the live window holds every row sent, the prediction log every row sent: the same rows, the same verdict
            assert verdict['rows_current'] == SENT and verdict['share'] >= 1 / 3  # the torque of half the rows moved
            assert server.value(f'mlops_nb_live_drift_share{{{JOB}}}') == verdict['share']
            assert server.value(f'mlops_nb_drift_share{{{JOB}}}') == verdict['share']  # the report, read by the server
            assert server.value(f'mlops_nb_live_dataset_drift{{{JOB}}}') == float(verdict['dataset_drift'])
            check_every_rule(server)
            check_every_panel(server)
