"""Labels come back (issue 13): prediction ids, POST /feedback, the feedback log, live quality in Prometheus.

Real uvicorn servers on 127.0.0.1 (`background_server`, or a subprocess where a restart or a crash is needed),
httpx clients. The quality gauges are checked against scikit-learn on the labelled rows read back from the logs.
"""
from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import threading
import time
from collections import Counter

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from mlops_nb.core import atomic_write_json
from mlops_nb.data import feature_columns, infer_schema
from mlops_nb.evaluate import card_precision_at_k
from mlops_nb.feedback import STATUSES
from mlops_nb.models import make_model, save_model
from mlops_nb.runs import RunDir
from mlops_nb.serve import background_server, create_app, read_log

RUN_ID = '20261201T101500-000000-fb01'


def make_table(n: int, seed: int) -> pd.DataFrame:
    "Inputs shaped like the maintenance case, a card id and a day (not model inputs), a binary target."
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({'Type': rng.choice(['L', 'M', 'H'], n, p=[0.6, 0.3, 0.1]),
                          'Torque [Nm]': rng.normal(40, 10, n).round(1), 'Tool wear [min]': rng.integers(0, 250, n)})
    frame.loc[rng.random(n) < 0.03, 'Torque [Nm]'] = np.nan
    frame['failure'] = (((frame['Torque [Nm]'].fillna(40) > 48) & (frame['Tool wear [min]'] > 100)) | (rng.random(n) < 0.15)).astype(int)
    frame['CUSTOMER_ID'] = rng.integers(0, 40, n)
    frame['TX_TIME_DAYS'] = rng.integers(0, 5, n)
    return frame


FEATURES = ['Type', 'Torque [Nm]', 'Tool wear [min]']


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    "A complete run with a small forest (binary)."
    table = make_table(600, seed=0)
    schema = infer_schema(table[FEATURES + ['failure']], target='failure')
    assert feature_columns(schema) == FEATURES
    model = make_model('rf', 'binary', schema, seed=0, n_estimators=30, n_jobs=1).fit(table[FEATURES], table['failure'])
    run = RunDir(tmp_path_factory.mktemp('runs')/RUN_ID)
    save_model(model, run.model('rf'), card={'name': 'rf', 'task': 'binary', 'schema': schema})
    atomic_write_json(run.manifest, {'status': 'complete'})
    atomic_write_json(run.metrics, {'rf': {'roc_auc': 0.9}})
    return run


def plain(value):
    if isinstance(value, float) and math.isnan(value): return None
    return value.item() if isinstance(value, np.generic) else value


def records(frame: pd.DataFrame, tags: bool = True) -> list[dict]:
    columns = FEATURES + (['CUSTOMER_ID', 'TX_TIME_DAYS'] if tags else [])
    return [{c: plain(v) for c, v in row.items()} for row in frame[columns].to_dict(orient='records')]


def client_for(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=60.0, trust_env=False)


def samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def gauge(values: dict, name: str, **labels) -> float:
    matches = [v for (n, ls), v in values.items() if n == name and all(dict(ls).get(k) == v2 for k, v2 in labels.items())]
    assert len(matches) == 1, (name, labels, matches)
    return matches[0]


def labelled_rows(run: RunDir) -> pd.DataFrame:
    "The labelled predictions, joined from the two logs: truth from the feedback log, prediction and score from the prediction log."
    predictions = {line['prediction_id']: line for line in read_log(run.prediction_log('rf'))}
    rows = [{'truth': int(label['label']), 'predicted': predictions[label['prediction_id']]['prediction'],
             'score': predictions[label['prediction_id']]['probabilities']['1'],
             'card': predictions[label['prediction_id']].get('card'), 'day': predictions[label['prediction_id']].get('day'),
             'id': label['prediction_id']}
            for label in read_log(run.feedback_log('rf'))]
    return pd.DataFrame(rows)


def check_quality_gauges(values: dict, rows: pd.DataFrame, k: int = 100):
    "The live gauges equal scikit-learn's figures on the labelled rows (to 1e-9)."
    labels = dict(model='rf', run_id=RUN_ID)
    assert gauge(values, 'mlops_nb_live_labelled_rows', **labels) == len(rows)
    expected = {'precision': precision_score(rows['truth'], rows['predicted']), 'recall': recall_score(rows['truth'], rows['predicted']),
                'f1': f1_score(rows['truth'], rows['predicted']), 'roc_auc': roc_auc_score(rows['truth'], rows['score'])}
    for name, value in expected.items():
        assert abs(gauge(values, f'mlops_nb_live_{name}_ratio', **labels) - value) <= 1e-9, (name, value)
    carded = rows.dropna(subset=['card', 'day'])
    transactions = pd.DataFrame({'CUSTOMER_ID': carded['card'].astype(str), 'TX_TIME_DAYS': carded['day'], 'TX_FRAUD': carded['truth']})
    card = card_precision_at_k(transactions, carded['score'].to_numpy(), k=k)
    assert abs(gauge(values, 'mlops_nb_live_card_precision_at_k_ratio', k=str(k), **labels) - card) <= 1e-9
    assert gauge(values, 'mlops_nb_live_card_labelled_rows', **labels) == len(carded)


def test_labels_give_precision_and_recall_equal_to_sklearn(run_dir, tmp_path):
    run = RunDir(tmp_path/RUN_ID)
    shutil.copytree(run_dir.path, run.path)
    from mlops_nb.serve import prepare_run
    app = prepare_run(run.path, card_precision_k=5)
    table = make_table(300, seed=1)
    with background_server(app) as url, client_for(url) as client:
        ids = []
        for start in range(0, 300, 30):  # the second half of the records carries no card id: card precision uses the others
            reply = client.post('/predict', json={'records': records(table.iloc[start:start + 30], tags=start < 150)}).json()
            assert len(reply['prediction_ids']) == 30 and 'CUSTOMER_ID' not in reply['ignored_columns']
            ids += reply['prediction_ids']
        labels = [{'prediction_id': i, 'label': int(y)} for i, y in zip(ids, table['failure'])]
        answer = client.post('/feedback', json={'labels': labels[:250]}).json()
        assert answer['statuses'] == ['accepted'] * 250 and answer['counts']['accepted'] == 250
        values = samples(client.get('/metrics').text)
    rows = labelled_rows(run)
    assert len(rows) == 250 and rows['id'].tolist() == ids[:250]
    assert 0 < rows['truth'].mean() < 1 and rows['predicted'].nunique() == 2  # both classes: every figure is defined
    check_quality_gauges(values, rows, k=5)
    assert gauge(values, 'mlops_nb_feedback_labels_total', status='accepted') == 250
    assert gauge(values, 'mlops_nb_live_quality_window_seconds') == 7 * 86400


def test_feedback_answers_every_label_and_refuses_bad_bodies(run_dir, tmp_path):
    app = create_app(run_dir.model('rf'), run_id=RUN_ID, log_path=tmp_path/'p.jsonl', feedback_log_path=tmp_path/'f.jsonl',
                     feedback_max_predictions=20)
    table = make_table(50, seed=2)
    with background_server(app) as url, client_for(url) as client:
        ids = client.post('/predict', json={'records': records(table)}).json()['prediction_ids']
        sent = [{'prediction_id': ids[0], 'label': 1}, {'prediction_id': ids[0], 'label': 0},  # first kept, then a duplicate
                {'prediction_id': ids[-1], 'label': '1'}, {'prediction_id': ids[-2], 'label': 1.0},  # the class as text, as a float
                {'prediction_id': ids[-3], 'label': 'yes'}, {'prediction_id': ids[-4], 'label': None},  # not a class
                {'prediction_id': ids[5], 'label': 1},  # older than the 20 predictions kept
                {'prediction_id': 'ffffffffffff-0', 'label': 1}, {'prediction_id': 'x' * 5000, 'label': 1}]
        answer = client.post('/feedback', json={'labels': sent}).json()
        assert answer['statuses'] == ['expired', 'expired', 'accepted', 'accepted', 'invalid', 'invalid', 'expired', 'unknown', 'unknown']
        assert answer['counts'] == {'accepted': 2, 'duplicate': 0, 'expired': 3, 'unknown': 2, 'invalid': 2}
        again = client.post('/feedback', json={'labels': [{'prediction_id': ids[-1], 'label': 0}]}).json()
        assert again['statuses'] == ['duplicate']
        for body, status in [(b'{"labels": []}', 422), (b'{"labels": [{"label": 1}]}', 422), (b'not json', 400),
                             (b'{"labels": [{"prediction_id": 1, "label": 1}]}', 422)]:
            response = client.post('/feedback', content=body, headers={'content-type': 'application/json'})
            assert response.status_code == status and response.json()['detail'], body
        assert client.post('/feedback', content=b'{"labels": []}', headers={'content-type': 'text/plain'}).status_code == 415
        values = samples(client.get('/metrics').text)
    logged = read_log(tmp_path/'f.jsonl')
    assert [(line['prediction_id'], line['label']) for line in logged] == [(ids[-1], '1'), (ids[-2], 1.0)]
    assert all(line['request_id'] and line['model'] == 'rf' and line['time'].endswith('+00:00') for line in logged)
    assert {s: gauge(values, 'mlops_nb_feedback_labels_total', status=s) for s in STATUSES} == \
        {'accepted': 2, 'duplicate': 1, 'expired': 3, 'unknown': 2, 'invalid': 2}


def client_loop(url: str, table: pd.DataFrame, seed: int, deadline: float, shared: list, lock: threading.Lock, out: dict):
    "One client for `concurrent_load`: predictions of 1 to 5 rows, and labels for its own and others' ids, until `deadline`."
    rng = random.Random(seed)
    replies, answers = [], []
    with client_for(url) as client:
        while time.monotonic() < deadline:
            start = rng.randrange(0, len(table) - 5)
            batch = table.iloc[start:start + rng.randint(1, 5)]
            reply = client.post('/predict', json={'records': records(batch, tags=rng.random() < 0.7)})
            assert reply.status_code == 200, reply.text
            reply = reply.json()
            replies.append(reply)
            with lock:
                shared.extend(zip(reply['prediction_ids'], batch['failure'].tolist()))
                pool = shared[-400:]
            chosen = rng.sample(pool, min(len(pool), rng.randint(1, 6)))
            labels = [{'prediction_id': i, 'label': y} for i, y in chosen] + [{'prediction_id': f'ffffffffffff-{seed}', 'label': 1}]
            answer = client.post('/feedback', json={'labels': labels})
            assert answer.status_code == 200, answer.text
            answers.append((labels, answer.json()['statuses']))
    out[seed] = (replies, answers)


def test_eight_clients_for_20_seconds_lose_and_double_count_nothing(run_dir, tmp_path):
    run = RunDir(tmp_path/RUN_ID)
    shutil.copytree(run_dir.path, run.path)
    from mlops_nb.serve import prepare_run
    app = prepare_run(run.path, quality_window_rows=100_000)
    table = make_table(2000, seed=3)
    shared, lock, out = [], threading.Lock(), {}
    with background_server(app) as url:
        deadline = time.monotonic() + 20
        threads = [threading.Thread(target=client_loop, args=(url, table, seed, deadline, shared, lock, out)) for seed in range(8)]
        for t in threads: t.start()
        for t in threads: t.join(120)
        assert len(out) == 8, 'a client failed (see its assertion above)'
        with client_for(url) as client: values = samples(client.get('/metrics').text)
    replies = [r for seed in out for r in out[seed][0]]
    answers = [a for seed in out for a in out[seed][1]]
    assert len(replies) > 100  # the load was real
    # every answered prediction is in the log, once
    logged = read_log(run.prediction_log('rf'))
    answered = [i for r in replies for i in r['prediction_ids']]
    assert sorted(line['prediction_id'] for line in logged) == sorted(answered) and len(set(answered)) == len(answered)
    # each prediction that got labels has exactly one accepted, the others are duplicates; the unknown ids are unknown
    statuses_by_id = {}
    for labels, statuses in answers:
        for label, status in zip(labels, statuses): statuses_by_id.setdefault(label['prediction_id'], []).append(status)
    for prediction_id, statuses in statuses_by_id.items():
        if prediction_id.startswith('ffffffffffff-'): assert set(statuses) == {'unknown'}
        else: assert statuses.count('accepted') == 1 and set(statuses) <= {'accepted', 'duplicate'}, (prediction_id, statuses)
    # the feedback log holds exactly the accepted labels, once each
    accepted = [i for i, statuses in statuses_by_id.items() if 'accepted' in statuses]
    feedback = read_log(run.feedback_log('rf'))
    assert sorted(line['prediction_id'] for line in feedback) == sorted(accepted)
    # the counters agree with the replies, and the quality gauges with scikit-learn on the logged labels
    tally = Counter(s for _, statuses in answers for s in statuses)
    assert {s: gauge(values, 'mlops_nb_feedback_labels_total', status=s) for s in STATUSES} == {s: tally[s] for s in STATUSES}
    check_quality_gauges(values, labelled_rows(run))


def test_a_restart_keeps_the_labelled_rows_of_the_window(run_dir, tmp_path):
    run = RunDir(tmp_path/RUN_ID)
    shutil.copytree(run_dir.path, run.path)
    from mlops_nb.serve import prepare_run
    table = make_table(200, seed=4)
    with background_server(prepare_run(run.path, quality_window_rows=150)) as url, client_for(url) as client:
        ids = client.post('/predict', json={'records': records(table)}).json()['prediction_ids']
        answer = client.post('/feedback', json={'labels': [{'prediction_id': i, 'label': int(y)} for i, y in zip(ids[:180], table['failure'])]}).json()
        assert answer['counts']['accepted'] == 180
        before = samples(client.get('/metrics').text)
    with background_server(prepare_run(run.path, quality_window_rows=150)) as url, client_for(url) as client:
        after = samples(client.get('/metrics').text)
        # the labels given before the restart are still there: a second label is a duplicate; the rest can still be labelled
        answer = client.post('/feedback', json={'labels': [{'prediction_id': ids[0], 'label': 0}, {'prediction_id': ids[190], 'label': 1}]}).json()
        assert answer['statuses'] == ['duplicate', 'accepted']
        new_ids = client.post('/predict', json={'records': records(table.head(3))}).json()['prediction_ids']
    assert new_ids[0].split('-')[0] != ids[0].split('-')[0]  # a new token: ids never repeat across restarts
    names = [n for (n, _) in before if n.startswith('mlops_nb_live_')]
    assert len(names) >= 8
    assert {k: v for k, v in after.items() if k[0].startswith('mlops_nb_live_')} == {k: v for k, v in before.items() if k[0].startswith('mlops_nb_live_')}
    assert gauge(after, 'mlops_nb_live_labelled_rows') == 150  # the window's 150 newest of the 180 labels
    check_quality_gauges(after, labelled_rows(run).iloc[30:180])


@pytest.mark.skipif(shutil.which('promtool') is None and os.environ.get('MLOPS_NB_REQUIRE_PROMETHEUS') != '1',
                    reason="needs promtool (Debian package 'prometheus'; scripts/setup.sh installs it); fails instead under MLOPS_NB_REQUIRE_PROMETHEUS=1")
def test_metrics_pass_promtool(run_dir, tmp_path):
    run = RunDir(tmp_path/RUN_ID)
    shutil.copytree(run_dir.path, run.path)
    from mlops_nb.serve import prepare_run
    table = make_table(100, seed=5)
    with background_server(prepare_run(run.path)) as url, client_for(url) as client:
        ids = client.post('/predict', json={'records': records(table)}).json()['prediction_ids']
        client.post('/feedback', json={'labels': [{'prediction_id': i, 'label': int(y)} for i, y in zip(ids, table['failure'])]})
        client.post('/predict', content=b'x', headers={'content-type': 'application/json'})
        text = client.get('/metrics').text
    result = subprocess.run(['promtool', 'check', 'metrics'], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'mlops_nb_live_precision_ratio' in text and 'mlops_nb_feedback_labels_total' in text
