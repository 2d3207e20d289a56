"""The model server through real HTTP: uvicorn on 127.0.0.1 (a free port), httpx as the client.

Everything is bounded: servers stop at the end of each `with`, loops have fixed counts, waits have deadlines.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlops_nb.core import atomic_write_json
from mlops_nb.data import feature_columns, infer_schema
from mlops_nb.models import load_model, make_model, save_model
from mlops_nb.monitor import detect_drift, read_prediction_log, reference_profile
from mlops_nb.serve import HTTP_METHODS, MAX_TEXT_LENGTH, background_server, create_app, log_lines

RUN_ID = '20261129T101500-000000-ab12'


def make_table(n: int, seed: int) -> pd.DataFrame:
    "Numeric and categorical columns with a few missing values, a binary and a numeric target."
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        'Type': rng.choice(['L', 'M', 'H'], n, p=[0.6, 0.3, 0.1]),
        'Air temperature [K]': rng.normal(300, 2, n).round(1),
        'Torque [Nm]': rng.normal(40, 10, n).round(1),
        'Tool wear [min]': rng.integers(0, 250, n),
        'line': rng.choice(['north', 'south'], n)})
    frame.loc[rng.random(n) < 0.03, 'Torque [Nm]'] = np.nan
    frame.loc[rng.random(n) < 0.03, 'line'] = None
    frame['failure'] = (((frame['Torque [Nm]'].fillna(40) > 50) & (frame['Tool wear [min]'] > 120)) | (rng.random(n) < 0.1)).astype(int)
    frame['power'] = frame['Torque [Nm]'].fillna(40) * 3 + frame['Air temperature [K]'] - 300 + rng.normal(0, 1, n)
    return frame


def save_run(root: Path, task: str) -> tuple[Path, object, list[str], pd.DataFrame]:
    "A run directory (manifest, metrics, reference profile, models/rf) with a small random forest."
    table = make_table(400, seed=0)
    target = 'failure' if task == 'binary' else 'power'
    schema = infer_schema(table.drop(columns=['power' if task == 'binary' else 'failure']), target=target)
    features = feature_columns(schema)
    model = make_model('rf', task, schema, seed=0, n_estimators=30, n_jobs=1).fit(table[features], table[target])
    run_dir = root/RUN_ID
    save_model(model, run_dir/'models'/'rf', card={'name': 'rf', 'task': task, 'data_md5': 'd41d8cd98f00b204e9800998ecf8427e', 'schema': schema})
    atomic_write_json(run_dir/'manifest.json', {'status': 'complete', 'data': {'md5': 'd41d8cd98f00b204e9800998ecf8427e'}})
    atomic_write_json(run_dir/'metrics.json', {'rf': {'roc_auc': 0.9} if task == 'binary' else {'rmse': 1.0}})
    atomic_write_json(run_dir/'reference_profile.json', reference_profile(table[features], schema))
    return run_dir, model, features, table


@pytest.fixture(scope='module')
def binary_run(tmp_path_factory):
    return save_run(tmp_path_factory.mktemp('binary_runs'), 'binary')


@pytest.fixture(scope='module')
def regression_run(tmp_path_factory):
    return save_run(tmp_path_factory.mktemp('regression_runs'), 'regression')


def client_for(url: str) -> httpx.Client:
    # trust_env=False: never through a proxy from the environment; loopback only
    return httpx.Client(base_url=url, timeout=30.0, trust_env=False)


def as_records(frame: pd.DataFrame) -> list[dict]:
    "Records with None for missing values and plain Python numbers (what a JSON client sends)."
    def plain(value):
        if pd.isna(value): return None
        return value.item() if isinstance(value, np.generic) else value
    return [{column: plain(value) for column, value in row.items()} for row in frame.to_dict(orient='records')]


def metric_samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def requests_total(samples: dict) -> Counter:
    "{(route, method, status): count} from mlops_nb_requests_total."
    return Counter({(dict(labels)['route'], dict(labels)['method'], dict(labels)['status']): value
                    for (name, labels), value in samples.items() if name == 'mlops_nb_requests_total'})


def test_good_batches_match_in_process_model(binary_run, tmp_path):
    run_dir, model, features, table = binary_run
    loaded = load_model(run_dir/'models'/'rf')
    test_rows = make_table(300, seed=1)[features]
    app = create_app(run_dir/'models'/'rf', run_id=RUN_ID, log_path=tmp_path/'log.jsonl')
    with background_server(app) as url, client_for(url) as client:
        assert url.startswith('http://127.0.0.1:')
        assert client.get('/health').json()['status'] == 'ok'
        for start, size in [(0, 1), (1, 17), (18, 282)]:
            batch = test_rows.iloc[start:start + size]
            response = client.post('/predict', json={'records': as_records(batch)}, headers={'X-Request-ID': f'batch-{start}'})
            assert response.status_code == 200, response.text
            reply = response.json()
            assert reply['predictions'] == model.predict(batch).tolist() == loaded.predict(batch).tolist()
            probabilities = np.array([[row[str(c)] for c in model.classes_] for row in reply['probabilities']])
            assert np.array_equal(probabilities, model.predict_proba(batch))  # bit for bit
            assert (reply['model'], reply['run_id'], reply['data_md5']) == ('rf', RUN_ID, 'd41d8cd98f00b204e9800998ecf8427e')
            assert reply['request_id'] == response.headers['x-request-id'] == f'batch-{start}'
            assert reply['classes'] == [0, 1] and reply['n_rows'] == size
        card = client.get('/model').json()
        assert card['name'] == 'rf' and card['input_schema']['columns'] == features
        # extra columns: ignored and reported, predictions unchanged
        batch = test_rows.head(5)
        reply = client.post('/predict', json={'records': as_records(batch.assign(UDI=range(5), note='x'))}).json()
        assert reply['ignored_columns'] == ['UDI', 'note'] and reply['predictions'] == model.predict(batch).tolist()
        # a category never seen in training: served, reported
        reply = client.post('/predict', json={'records': as_records(batch.assign(Type='XL'))}).json()
        assert reply['unknown_categories'] == {'Type': ['XL']} and any('XL' in w for w in reply['warnings'])
        assert reply['predictions'] == model.predict(batch.assign(Type='XL')).tolist()
        # nulls everywhere: imputed by the preprocessor
        nulls = [{c: None for c in features}]
        reply = client.post('/predict', json={'records': nulls}).json()
        assert reply['predictions'] == model.predict(pd.DataFrame(nulls, columns=features).astype(
            {'Air temperature [K]': float, 'Torque [Nm]': float, 'Tool wear [min]': float})).tolist()
        # request ids that are not acceptable are replaced
        response = client.post('/predict', json={'records': nulls}, headers={'X-Request-ID': 'bad id with spaces'})
        assert response.headers['x-request-id'] != 'bad id with spaces' and len(response.headers['x-request-id']) == 32


def test_regression_matches_in_process_model(regression_run):
    run_dir, model, features, table = regression_run
    batch = make_table(120, seed=2)[features]
    with background_server(create_app(run_dir/'models'/'rf')) as url, client_for(url) as client:
        reply = client.post('/predict', json={'records': as_records(batch)}).json()
        assert reply['predictions'] == model.predict(batch).tolist()
        assert reply['probabilities'] is None and reply['task'] == 'regression'
        samples = metric_samples(client.get('/metrics').text)
        assert samples[('mlops_nb_prediction_value_count', ())] == 120
        assert samples[('mlops_nb_prediction_value_sum', ())] == pytest.approx(float(np.sum(reply['predictions'])))


def bad_requests(good: dict, features: list[str]) -> list[tuple]:
    "(what, method, path, kwargs for httpx, status, text the detail must contain)."
    record = good['records'][0]
    def changed(**values):
        return {'records': [{**record, **values}] + good['records'][1:]}
    without = {k: v for k, v in record.items() if k != 'Torque [Nm]'}
    as_json = {'content-type': 'application/json'}
    def raw(body: bytes) -> dict:
        return {'content': body, 'headers': as_json}
    head = json.dumps(good)[:-2].encode()  # the good body without its closing ']}', to append a last record
    return [
        ('body not JSON', 'POST', '/predict', raw(b'records=1'), 400, 'not valid JSON'),
        ('empty body', 'POST', '/predict', raw(b''), 400, 'empty body'),
        ('body not UTF-8', 'POST', '/predict', raw(b'{"records": "\xff\xfe"}'), 400, 'UTF-8'),
        ('NaN literal', 'POST', '/predict', raw(b'{"records": [{"Torque [Nm]": NaN}]}'), 400, 'NaN'),
        ('body a JSON list', 'POST', '/predict', {'json': [record]}, 422, 'JSON object'),
        ('no "records" key', 'POST', '/predict', {'json': {'rows': [record]}}, 422, '"records"'),
        ('"records" not a list', 'POST', '/predict', {'json': {'records': record}}, 422, 'must be a list'),
        ('empty batch', 'POST', '/predict', {'json': {'records': []}}, 422, 'empty'),
        ('a record not an object', 'POST', '/predict', {'json': {'records': [record, 'row 2']}}, 422, 'record 1'),
        ('an empty record', 'POST', '/predict', {'json': {'records': [{}]}}, 422, 'missing column'),
        ('missing column', 'POST', '/predict', {'json': {'records': [record, without]}}, 422, "missing column 'Torque [Nm]' in record 1"),
        ('text for a number', 'POST', '/predict', {'json': changed(**{'Tool wear [min]': '12'})}, 422, "column 'Tool wear [min]', record 0"),
        ('boolean for a number', 'POST', '/predict', {'json': changed(**{'Air temperature [K]': True})}, 422, "'Air temperature [K]', record 0"),
        ('number too large', 'POST', '/predict', raw(json.dumps(changed()).replace('"Torque [Nm]": ', '"Torque [Nm]": 1e999, "x": ').encode()), 422, 'too large'),
        ('5,000-digit integer', 'POST', '/predict', raw(head + b', {' + json.dumps(record)[1:-1].encode() + b', "Torque [Nm]": ' + b'9' * 5000 + b'}]}'),
         422, f"column 'Torque [Nm]', record {len(good['records'])}: number too large for a 64-bit float"),
        ('5,000-digit integer in a category', 'POST', '/predict', raw(head + b', {' + json.dumps(record)[1:-1].encode() + b', "Type": -' + b'9' * 5000 + b'}]}'),
         422, "column 'Type'"),
        ('a number a billion standard deviations out', 'POST', '/predict', {'json': changed(**{'Torque [Nm]': 1e300})}, 422, 'outside the range this model accepts'),
        ('arrays nested 50,000 deep', 'POST', '/predict', raw(b'{"records": [{"Type": ' + b'[' * 50_000 + b']' * 50_000 + b'}]}'), 400, 'deeper than 32 levels'),
        ('objects nested 30,000 deep', 'POST', '/predict', raw(b'{"records": [{"x": ' + b'{"a":' * 30_000 + b'1' + b'}' * 30_000 + b'}]}'), 400, 'deeper than 32 levels'),
        ('object for a category', 'POST', '/predict', {'json': changed(Type={'code': 'L'})}, 422, "'Type', record 0"),
        ('list for a category', 'POST', '/predict', {'json': changed(line=['north'])}, 422, "'line', record 0"),
        ('text past MAX_TEXT_LENGTH', 'POST', '/predict', {'json': changed(line='n' * (MAX_TEXT_LENGTH + 1))}, 422,
         f"'line', record 0: text of {MAX_TEXT_LENGTH + 1:,} characters, above the limit of {MAX_TEXT_LENGTH}"),
        ('batch above max_rows', 'POST', '/predict', {'json': {'records': [record] * 51}}, 413, 'limit of 50 rows'),
        ('body above max_body_bytes', 'POST', '/predict', raw(b'{"records": [' + b' ' * 300_000 + b']}'), 413, 'bytes'),
        ('text/plain body (a cross-site "simple request")', 'POST', '/predict', {'content': json.dumps(good).encode(), 'headers': {'content-type': 'text/plain'}}, 415, 'application/json'),
        ('form body', 'POST', '/predict', {'data': {'records': '1'}}, 415, 'application/json'),
        ('no Content-Type', 'POST', '/predict', {'content': json.dumps(good).encode()}, 415, 'application/json'),
        ('JSON in another charset', 'POST', '/predict', {'content': json.dumps(good).encode('utf-16'), 'headers': {'content-type': 'application/json; charset=utf-16'}}, 415, 'UTF-8'),
        ('GET on /predict', 'GET', '/predict', {}, 405, 'not allowed'),
        ('unknown route', 'GET', '/predictions', {}, 404, 'no route GET /predictions'),
        ('POST on /health', 'POST', '/health', {'json': {}}, 405, 'not allowed'),
        ('a method HTTP does not define', 'BREW', '/predict', {}, 405, 'not an HTTP method'),
        ('an invented method on an invented path', 'INVENTED', '/x/y', {}, 405, 'not an HTTP method'),
    ]


def test_bad_requests_get_4xx_and_the_server_keeps_serving(binary_run, tmp_path):
    run_dir, model, features, table = binary_run
    good_rows = make_table(20, seed=3)[features]
    good = {'records': as_records(good_rows)}
    expected_predictions = model.predict(good_rows).tolist()
    log_path = tmp_path/'prediction_log'/'rf.jsonl'
    app = create_app(run_dir/'models'/'rf', run_id=RUN_ID, max_rows=50, log_path=log_path, max_body_bytes=200_000)
    sent = Counter()
    cases = bad_requests(good, features)
    assert len(cases) >= 12
    with background_server(app) as url, client_for(url) as client:
        for what, method, path, kwargs, status, text in cases:
            response = client.request(method, path, **kwargs)
            sent[(path if path in ('/predict', '/health') else 'other', method if method in HTTP_METHODS else 'other', str(response.status_code))] += 1
            assert response.status_code == status, (what, response.status_code, response.text)
            detail = response.json()['detail']
            assert isinstance(detail, str) and text in detail, (what, detail)
            assert len(response.content) < 1000, (what, len(response.content))  # never the request echoed back
            # the server keeps serving: a good request right after each bad one
            after = client.post('/predict', json=good)
            sent[('/predict', 'POST', str(after.status_code))] += 1
            assert after.status_code == 200 and after.json()['predictions'] == expected_predictions, what
        health = client.get('/health')
        sent[('/health', 'GET', str(health.status_code))] += 1
        assert health.status_code == 200
        text = client.get('/metrics').text  # this scrape is counted after its reply, so it is not in it
        samples = metric_samples(text)
    assert requests_total(samples) == sent
    n_good = sent[('/predict', 'POST', '200')]
    assert n_good == len(cases)
    assert samples[('mlops_nb_rows_scored_total', ())] == n_good * len(good_rows)
    by_class = Counter(expected_predictions)
    for label in (0, 1):
        assert samples[('mlops_nb_predictions_total', (('class', str(label)),))] == n_good * by_class[label]
    # the latency histogram saw every request once
    assert samples[('mlops_nb_request_latency_seconds_count', (('route', '/predict'),))] == sum(
        v for (route, _, _), v in sent.items() if route == '/predict')
    info = [labels for (name, labels) in samples if name == 'mlops_nb_model_info']
    assert dict(info[0]) == {'model': 'rf', 'run_id': RUN_ID, 'data_md5': 'd41d8cd98f00b204e9800998ecf8427e', 'task': 'binary'}
    # only scored rows are logged, one line each
    assert len(log_lines(log_path)) == n_good * len(good_rows)


def test_prediction_log_reads_back(binary_run, tmp_path):
    run_dir, model, features, table = binary_run
    log_path = tmp_path/'rf.jsonl'
    batches = [make_table(n, seed=10 + n)[features] for n in (3, 40, 7)]
    replies = []
    with background_server(create_app(run_dir/'models'/'rf', run_id=RUN_ID, log_path=log_path)) as url, client_for(url) as client:
        for batch in batches: replies.append(client.post('/predict', json={'records': as_records(batch)}).json())
    lines = [json.loads(line) for line in log_lines(log_path)]
    assert len(lines) == sum(len(b) for b in batches)
    assert set(lines[0]) == {'request_id', 'prediction_id', 'row', 'time', 'model', 'inputs', 'prediction', 'probabilities'}
    assert [line['prediction_id'] for line in lines] == [i for r in replies for i in r['prediction_ids']]
    assert len({line['prediction_id'] for line in lines}) == len(lines)  # one id per row, never twice
    expected_ids = [r['request_id'] for r, b in zip(replies, batches) for _ in range(len(b))]
    assert [line['request_id'] for line in lines] == expected_ids
    assert [line['row'] for line in lines] == [i for b in batches for i in range(len(b))]
    assert [line['prediction'] for line in lines] == [p for r in replies for p in r['predictions']]
    assert [line['probabilities'] for line in lines] == [p for r in replies for p in r['probabilities']]
    assert all(line['model'] == 'rf' and line['time'].endswith('+00:00') for line in lines)
    # monitoring reads it back: the inputs are the rows sent
    logged = read_prediction_log(log_path)
    sent = pd.concat(batches, ignore_index=True)
    pd.testing.assert_frame_equal(logged[features].astype(sent.dtypes.to_dict()), sent, check_dtype=False)
    result = detect_drift(json.loads((run_dir/'reference_profile.json').read_text()), log_path)
    assert set(result.table['column']) <= set(features)


def test_concurrent_clients_never_interleave_the_log(binary_run, tmp_path):
    run_dir, model, features, table = binary_run
    log_path = tmp_path/'rf.jsonl'
    rows = make_table(50, seed=4)[features]
    errors = []
    with background_server(create_app(run_dir/'models'/'rf', log_path=log_path)) as url:
        def client_thread(i):
            with client_for(url) as client:
                for k in range(10):
                    batch = rows.iloc[(i + k) % 40:(i + k) % 40 + 1 + (i + k) % 10]
                    r = client.post('/predict', json={'records': as_records(batch)})
                    if r.status_code != 200 or r.json()['predictions'] != model.predict(batch).tolist(): errors.append(r.text)
        threads = [threading.Thread(target=client_thread, args=(i,)) for i in range(8)]
        for t in threads: t.start()
        for t in threads: t.join(120)
        assert not any(t.is_alive() for t in threads)
        samples = metric_samples(client_for(url).get('/metrics').text)
    assert not errors
    lines = [json.loads(line) for line in log_lines(log_path)]
    assert len(lines) == samples[('mlops_nb_rows_scored_total', ())]
    # each request's rows are contiguous and numbered 0..n-1
    position = 0
    while position < len(lines):
        request_id = lines[position]['request_id']
        n = sum(1 for line in lines if line['request_id'] == request_id)
        assert [line['row'] for line in lines[position:position + n]] == list(range(n))
        assert all(line['request_id'] == request_id for line in lines[position:position + n])
        position += n


def test_two_apps_in_one_process_keep_their_own_metrics(binary_run, regression_run):
    with background_server(create_app(binary_run[0]/'models'/'rf')) as url_a, \
         background_server(create_app(regression_run[0]/'models'/'rf')) as url_b, \
         client_for(url_a) as a, client_for(url_b) as b:
        rows = make_table(5, seed=5)[binary_run[2]]
        assert a.post('/predict', json={'records': as_records(rows)}).status_code == 200
        assert b.get('/health').status_code == 200
        samples_a, samples_b = metric_samples(a.get('/metrics').text), metric_samples(b.get('/metrics').text)
    assert samples_a[('mlops_nb_rows_scored_total', ())] == 5 and samples_b[('mlops_nb_rows_scored_total', ())] == 0
    assert ('/predict', 'POST', '200') not in requests_total(samples_b)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_serve_run_in_a_subprocess(binary_run, tmp_path):
    "serve_run as the CLI calls it: run resolved by id, prediction log in the run, drift gauges from monitoring."
    run_dir, model, features, table = binary_run
    runs_dir = run_dir.parent
    rows = make_table(30, seed=6)[features]
    # a monitoring report, as `mlops-nb monitor` writes it
    profile = json.loads((run_dir/'reference_profile.json').read_text())
    drift = detect_drift(profile, rows.assign(**{'Air temperature [K]': rows['Air temperature [K]'] + 3}))
    atomic_write_json(run_dir/'monitoring'/'20261130T000000-000000Z'/'drift.json', drift.to_dict())
    log_path = run_dir/'prediction_log'/'rf.jsonl'
    log_path.unlink(missing_ok=True)
    port = free_port()
    # a live drift window too small to judge any column: the server says so when it starts
    code = f"from mlops_nb.serve import serve_run; serve_run({RUN_ID[:15]!r}, runs_dir={str(runs_dir)!r}, port={port}, live_drift_rows=20)"
    process = subprocess.Popen([sys.executable, '-c', code], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f'http://127.0.0.1:{port}'
        with client_for(url) as client:
            deadline = time.monotonic() + 90
            while True:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, 'server did not start within 90 s'
                try:
                    if client.get('/health').status_code == 200: break
                except httpx.TransportError: time.sleep(0.2)
            reply = client.post('/predict', json={'records': as_records(rows)}).json()
            assert reply['predictions'] == model.predict(rows).tolist()
            assert reply['run_id'] == RUN_ID and reply['data_md5'] == 'd41d8cd98f00b204e9800998ecf8427e'
            samples = metric_samples(client.get('/metrics').text)
        assert samples[('mlops_nb_drift_report_available', ())] == 1
        assert samples[('mlops_nb_dataset_drift', ())] == int(drift.dataset_drift)
        assert samples[('mlops_nb_column_drifted', (('column', 'Air temperature [K]'),))] == 1
        assert samples[('mlops_nb_drift_share', ())] == pytest.approx(drift.share)
        assert ('mlops_nb_live_drift_rows', ()) in samples  # the run has a reference profile
        assert len(log_lines(log_path)) == len(rows)
    finally:
        process.terminate()
        try: output = process.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0]
    assert f"serving model 'rf' of run {RUN_ID}" in output
    assert 'mlops-nb serve: warning: the live drift window of 20 rows is too small to judge' in output


def test_hostile_client_cannot_grow_the_server(binary_run, tmp_path):
    "Issue 10's probes: huge unknown categories, invented methods and paths; nothing of them grows the log, the window, the metrics."
    run_dir, model, features, table = binary_run
    log_path = tmp_path/'rf.jsonl'
    app = create_app(run_dir/'models'/'rf', log_path=log_path, reference_profile=run_dir/'reference_profile.json')
    window = app.state.service.live_drift
    record = as_records(make_table(1, seed=7)[features])[0]
    with background_server(app) as url, client_for(url) as client:
        for i in range(5):  # 20 MB never-seen categories: refused, the reply is short, nothing is kept
            body = json.dumps({'records': [{**record, 'Type': f'{i:02d}' + 'x' * (20 * 2**20)}]}).encode()
            response = client.post('/predict', content=body, headers={'content-type': 'application/json'})
            assert response.status_code == 422 and len(response.content) < 500, response.text[:300]
            assert f"above the limit of {MAX_TEXT_LENGTH}" in response.json()['detail']
        assert not log_path.exists() and len(window.rows) == 0
        for i in range(20):  # the longest text accepted: scored, logged once, echoed cut short, kept as one marker
            response = client.post('/predict', json={'records': [{**record, 'Type': f'{i:02d}' + 'y' * (MAX_TEXT_LENGTH - 2)}]})
            assert response.status_code == 200 and len(response.content) < 2000
            assert response.json()['unknown_categories']['Type'][0].endswith(f'... ({MAX_TEXT_LENGTH:,} characters)')
        assert max(len(line) for line in log_lines(log_path)) < MAX_TEXT_LENGTH + 1000
        assert sum(len(str(value)) for row in window.rows for value in row.values()) < 20 * 100
        for i in range(30):  # invented methods and paths: answered, and counted under a fixed set of labels
            assert client.request(f'INVENTED{i}', '/predict').status_code == 405
            assert client.get(f'/invented/path/{i}').status_code == 404
        samples = metric_samples(client.get('/metrics').text)
    series = requests_total(samples)
    assert {method for _, method, _ in series} <= {'GET', 'POST', 'other'}
    assert {route for route, _, _ in series} == {'/predict', 'other'}
    assert len(series) <= 5, series
    assert series[('/predict', 'other', '405')] == 30 and series[('other', 'GET', '404')] == 30


def test_run_server_names_h11(monkeypatch):
    "What `mlops-nb serve` and a package's entry point run: uvicorn with h11 (a method HTTP does not define gets a 405)."
    import mlops_nb.serve as serve
    seen = {}
    monkeypatch.setattr(serve.uvicorn, 'run', lambda app, **options: seen.update(options, app=app))
    serve.run_server('the app', '127.0.0.1', 8123)
    assert seen['app'] == 'the app' and seen['host'] == '127.0.0.1' and seen['port'] == 8123 and seen['http'] == 'h11'
