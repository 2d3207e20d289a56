"""Nothing traded for speed (issue 14): the answers of the batched, pandas-free path are bit for bit the model's
`predict_proba` / `predict`, and a server killed mid-load (SIGKILL) has every answered request in its prediction log.
"""
from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import httpx
import numpy as np
import pandas as pd
import pytest

from mlops_nb.data import feature_columns, infer_schema
from mlops_nb.models import load_model, make_model, save_model
from mlops_nb.serve import background_server, create_app, read_log


def make_table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({'Type': rng.choice(['L', 'M', 'H', 'R'], n, p=[0.6, 0.3, 0.095, 0.005]),
                          'Air temperature [K]': rng.normal(300, 2, n).round(1), 'Torque [Nm]': rng.normal(40, 10, n).round(1),
                          'Tool wear [min]': rng.integers(0, 250, n), 'line': rng.choice(['north', 'south'], n)})
    frame.loc[rng.random(n) < 0.05, 'Torque [Nm]'] = np.nan
    frame.loc[rng.random(n) < 0.05, 'line'] = None
    frame['failure'] = (((frame['Torque [Nm]'].fillna(40) > 50) & (frame['Tool wear [min]'] > 120)) | (rng.random(n) < 0.1)).astype(int)
    frame['power'] = frame['Torque [Nm]'].fillna(40) * 3 + frame['Air temperature [K]'] - 300 + rng.normal(0, 1, n)
    return frame


FEATURES = ['Type', 'Air temperature [K]', 'Torque [Nm]', 'Tool wear [min]', 'line']


def saved_forest(root, task: str, n_estimators: int = 40):
    table = make_table(800, seed=0)
    target = 'failure' if task == 'binary' else 'power'
    schema = infer_schema(table[FEATURES + [target]], target=target)
    assert feature_columns(schema) == FEATURES
    model = make_model('rf', task, schema, seed=0, n_estimators=n_estimators, n_jobs=1).fit(table[FEATURES], table[target])
    return save_model(model, root/task/'rf', card={'name': 'rf', 'task': task, 'schema': schema})


def as_records(frame: pd.DataFrame) -> list[dict]:
    def plain(value):
        if value is None or (isinstance(value, float) and math.isnan(value)): return None
        return value.item() if isinstance(value, np.generic) else value
    return [{c: plain(v) for c, v in row.items()} for row in frame[FEATURES].to_dict(orient='records')]


def odd_rows(n: int, seed: int) -> pd.DataFrame:
    "Rows with missing values everywhere, categories never seen in training, a rare one, the text 'missing', extreme numbers."
    rows = make_table(n, seed=seed)
    rng = np.random.default_rng(seed)
    rows.loc[rng.random(n) < 0.1, 'Type'] = 'XL'
    rows.loc[rng.random(n) < 0.05, 'Type'] = None
    rows.loc[rng.random(n) < 0.05, 'line'] = 'missing'
    rows.loc[rng.random(n) < 0.05, 'Air temperature [K]'] = np.nan
    rows.loc[rng.random(n) < 0.05, 'Tool wear [min]'] = 1e7
    rows['Tool wear [min]'] = rows['Tool wear [min]'].astype(float)
    return rows


@pytest.mark.parametrize('task', ['binary', 'regression'])
def test_batched_answers_are_bit_identical_to_the_model(tmp_path, task):
    "8 clients at once (rows are scored together in batches) get, row for row, exactly the pipeline's numbers."
    model_dir = saved_forest(tmp_path, task)
    model = load_model(model_dir)
    rows = odd_rows(1600, seed=1)
    expected = model.predict_proba(rows[FEATURES]) if task == 'binary' else model.predict(rows[FEATURES])
    app = create_app(model_dir, log_path=tmp_path/'log.jsonl')
    assert app.state.service.fast is not None and app.state.service.fast.batch_invariant
    got, errors = {}, []
    with background_server(app) as url:
        def client(i):
            with httpx.Client(base_url=url, timeout=60, trust_env=False) as c:
                start = i * 200
                sizes = [1] * 150 + [50]  # single rows (scored together with other clients'), then one larger request
                for size in sizes:
                    batch = rows.iloc[start:start + size]
                    r = c.post('/predict', json={'records': as_records(batch)})
                    if r.status_code != 200: errors.append(r.text)
                    else: got.update(zip(range(start, start + size), r.json()['probabilities' if task == 'binary' else 'predictions']))
                    start += size
        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads: t.start()
        for t in threads: t.join(300)
    assert not errors and len(got) == 1600
    if task == 'binary': served = np.array([[got[i]['0'], got[i]['1']] for i in range(1600)])
    else: served = np.array([got[i] for i in range(1600)])
    assert np.array_equal(served, expected)  # bit for bit, not close
    # the requests were batched: some log lines of different requests share one batch time
    lines = read_log(tmp_path/'log.jsonl')
    requests_per_time = Counter(t for t, _ in {(line['time'], line['request_id']) for line in lines})
    assert max(requests_per_time.values()) > 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def start_server(model_dir, log_path, port) -> subprocess.Popen:
    code = ("import uvicorn; from mlops_nb.serve import create_app; "
            f"uvicorn.run(create_app({str(model_dir)!r}, log_path={str(log_path)!r}, feedback_log_path={str(log_path) + '.labels'!r}), "
            f"host='127.0.0.1', port={port}, log_level='warning')")
    process = subprocess.Popen([sys.executable, '-c', code])
    with httpx.Client(base_url=f'http://127.0.0.1:{port}', timeout=5, trust_env=False) as client:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, 'the server exited'
            try:
                if client.get('/health').status_code == 200: return process
            except httpx.TransportError: time.sleep(0.2)
    process.kill()
    raise TimeoutError('server did not start')


def test_sigkill_mid_load_loses_no_answered_request(tmp_path):
    model_dir = saved_forest(tmp_path, 'binary', n_estimators=20)
    rows = as_records(make_table(400, seed=2))
    log_path, port = tmp_path/'prediction_log.jsonl', free_port()
    process = start_server(model_dir, log_path, port)
    answered, stop = {}, threading.Event()
    def client(i):
        with httpx.Client(base_url=f'http://127.0.0.1:{port}', timeout=30, trust_env=False) as c:
            for k in range(100_000):
                if stop.is_set(): return
                request_id, size = f'c{i}-{k}', 1 + (k % 3)
                try: r = c.post('/predict', json={'records': rows[(i * 37 + k) % 390:][:size]}, headers={'X-Request-ID': request_id})
                except httpx.TransportError: return  # the server is gone
                if r.status_code == 200: answered[request_id] = r.json()['prediction_ids']
    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    try:
        for t in threads: t.start()
        deadline = time.monotonic() + 60
        while len(answered) < 300 and time.monotonic() < deadline: time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)  # mid-load: requests are being scored, logged and answered
        process.wait(30)
    finally:
        stop.set()
        for t in threads: t.join(60)
        if process.poll() is None: process.kill()
    assert len(answered) >= 300
    logged = {}
    for line in read_log(log_path):  # a line cut short by the kill is skipped
        logged.setdefault(line['request_id'], []).append(line['prediction_id'])
    missing = [request_id for request_id, ids in answered.items() if logged.get(request_id) != ids]
    assert not missing, f'{len(missing)} answered requests are not (whole) in the log, e.g. {missing[:3]}'
    # a new server on the same log takes labels for the predictions answered before the kill
    process = start_server(model_dir, log_path, port)
    try:
        some = [i for ids in list(answered.values())[:50] for i in ids]
        reply = httpx.post(f'http://127.0.0.1:{port}/feedback', json={'labels': [{'prediction_id': i, 'label': 1} for i in some]},
                           timeout=30, trust_env=False).json()
        assert reply['statuses'] == ['accepted'] * len(some)
        assert httpx.post(f'http://127.0.0.1:{port}/predict', json={'records': rows[:2]}, timeout=30, trust_env=False).status_code == 200
    finally:
        process.terminate()
        process.wait(30)
    text = log_path.read_text()
    assert text.endswith('\n') and all(json.loads(line) for line in text.splitlines())  # a partial last line was cut
