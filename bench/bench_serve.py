"""The model server against in-process prediction on the same model, measured side by side.

Run: .venv/bin/python bench/bench_serve.py [--batches 20] [--requests 2000] [--clients 8]

- Throughput: rows per second for batches of 1,000 rows sent through HTTP (POST /predict on a uvicorn
  server in a subprocess, loopback only, one keep-alive connection, body encoded before timing) against
  in-process `model.predict` on the same 1,000-row frame, and against what the server computes for a
  batch in-process (`ModelService.predict` on the same body: checks, `predict` + `predict_proba`,
  prediction log, metrics), which separates the cost of HTTP from the cost of the checks and the log.
- Latency: single-row requests from `--clients` threads (one keep-alive connection each), `--requests`
  in all, p50 / p99 / max measured at the client.

The model is the package's random forest (`make_model('rf', 'binary', ...)`, its defaults: 200 trees,
n_jobs=-1) trained on 10,000 rows shaped like AI4I 2020 (6 inputs, one categorical). The server writes
its prediction log (one fsync per batch), as `mlops-nb serve` does. Writes bench/results/serve.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from mlops_nb.core import atomic_write_text
from mlops_nb.data import feature_columns, infer_schema
from mlops_nb.models import load_model, make_model, read_model_card, save_model
from mlops_nb.serve import ModelService


def maintenance_like(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    air = rng.normal(300, 2, n)
    speed = rng.normal(1540, 180, n).round()
    torque = rng.normal(40, 10, n).clip(3)
    wear = rng.integers(0, 250, n)
    frame = pd.DataFrame({'Type': rng.choice(['L', 'M', 'H'], n, p=[0.5, 0.3, 0.2]),
                          'Air temperature [K]': air.round(1), 'Process temperature [K]': (air + 10 + rng.normal(0, 1, n)).round(1),
                          'Rotational speed [rpm]': speed, 'Torque [Nm]': torque.round(1), 'Tool wear [min]': wear})
    power = torque * speed * 2 * np.pi / 60
    frame['Machine failure'] = ((power < 3500) | (power > 9000) | (wear * torque > 11000) | (rng.random(n) < 0.01)).astype(int)
    return frame


def records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()} for row in frame.to_dict(orient='records')]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, log_path: Path, port: int) -> subprocess.Popen:
    code = ("import uvicorn; from mlops_nb.serve import create_app; "
            f"uvicorn.run(create_app({str(model_dir)!r}, run_id='bench', log_path={str(log_path)!r}), "
            f"host='127.0.0.1', port={port}, log_level='warning', access_log=False)")
    return subprocess.Popen([sys.executable, '-c', code])


def wait_healthy(client: httpx.Client, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None: raise RuntimeError('server exited before it started')
        try:
            if client.get('/health').status_code == 200: return
        except httpx.TransportError: time.sleep(0.2)
    raise TimeoutError('server did not start')


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--batches', type=int, default=20, help='timed batches of 1,000 rows per method')
    parser.add_argument('--requests', type=int, default=2000, help='single-row requests in all for the latency test')
    parser.add_argument('--clients', type=int, default=8, help='concurrent client threads')
    parser.add_argument('--out', default=str(Path(__file__).parent/'results'/'serve.md'))
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    table = maintenance_like(10_000, seed=0)
    schema = infer_schema(table, target='Machine failure')
    features = feature_columns(schema)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        fitted = make_model('rf', 'binary', schema, seed=0).fit(table[features], table['Machine failure'])
        model_dir = save_model(fitted, folder/'models'/'rf', card={'name': 'rf', 'task': 'binary', 'schema': schema})
        model = load_model(model_dir)
        batch = maintenance_like(1000, seed=1)[features]
        body = json.dumps({'records': records(batch)}).encode()
        single = [json.dumps({'records': records(batch.iloc[[i % 1000]])}).encode() for i in range(args.requests)]
        service = ModelService(model, read_model_card(model_dir), log_path=folder/'inprocess.jsonl')

        # in-process, alternating with nothing else running yet: predict; the server's work without HTTP
        model.predict(batch); service.predict(body)  # warm-up
        predict_s, service_s = [], []
        for _ in range(args.batches):
            start = time.perf_counter(); model.predict(batch); predict_s.append(time.perf_counter() - start)
            start = time.perf_counter(); service.predict(body); service_s.append(time.perf_counter() - start)

        port = free_port()
        process = start_server(model_dir, folder/'served.jsonl', port)
        headers = {'content-type': 'application/json'}
        try:
            with httpx.Client(base_url=f'http://127.0.0.1:{port}', timeout=120, trust_env=False) as client:
                wait_healthy(client, process)
                for _ in range(2): assert client.post('/predict', content=body, headers=headers).status_code == 200
                http_s = []
                for _ in range(args.batches):
                    start = time.perf_counter()
                    response = client.post('/predict', content=body, headers=headers)
                    http_s.append(time.perf_counter() - start)
                    assert response.status_code == 200
                assert response.json()['predictions'] == model.predict(batch).tolist()

            # latency: single rows from concurrent clients
            latencies, failures = [], []
            per_client = args.requests // args.clients
            def client_thread(i):
                with httpx.Client(base_url=f'http://127.0.0.1:{port}', timeout=120, trust_env=False) as c:
                    for k in range(5): c.post('/predict', content=single[k], headers=headers)  # warm the connection
                    mine = []
                    for k in range(per_client):
                        start = time.perf_counter()
                        r = c.post('/predict', content=single[i * per_client + k], headers=headers)
                        mine.append(time.perf_counter() - start)
                        if r.status_code != 200: failures.append(r.status_code)
                    latencies.extend(mine)
            threads = [threading.Thread(target=client_thread, args=(i,)) for i in range(args.clients)]
            wall = time.perf_counter()
            for t in threads: t.start()
            for t in threads: t.join(600)
            wall = time.perf_counter() - wall
            assert not failures and len(latencies) == per_client * args.clients, (failures, len(latencies))
        finally:
            process.terminate()
            try: process.wait(30)
            except subprocess.TimeoutExpired: process.kill()

    rows = len(batch)
    median = {name: statistics.median(v) for name, v in (('predict', predict_s), ('service', service_s), ('http', http_s))}
    rate = {name: rows / seconds for name, seconds in median.items()}
    cpu = next((line.split(':', 1)[1].strip() for line in Path('/proc/cpuinfo').read_text().splitlines() if line.startswith('model name')), platform.processor())
    lines = [
        '# Serving benchmark', '',
        f'Machine: {os.cpu_count()} CPUs ({cpu}), shared with other work; Python {platform.python_version()}. '
        f"Model: `make_model('rf', 'binary')` (200 trees, n_jobs=-1) on 10,000 rows x {len(features)} inputs shaped like AI4I 2020. "
        'Server: uvicorn, one process, in a subprocess on 127.0.0.1, prediction log on (one fsync per batch). '
        'Client: httpx, keep-alive, bodies encoded before timing. Produced by `bench/bench_serve.py`. '
        f'Load average at the start: {load_before:.2f} on {os.cpu_count()} CPUs (absolute figures move with it; '
        'the ratios are measured side by side in the same run).', '',
        f'## Batches of {rows:,} rows ({args.batches} timed batches each, median)', '',
        '| path | median seconds per batch | rows per second | relative to in-process predict |',
        '| --- | --- | --- | --- |',
        f"| in-process `model.predict(frame)` | {median['predict']:.4f} | {rate['predict']:,.0f} | 1.00 |",
        f"| in-process `ModelService.predict(body)` (checks, predict_proba, log, metrics) | {median['service']:.4f} | {rate['service']:,.0f} | {rate['service'] / rate['predict']:.2f} |",
        f"| HTTP `POST /predict` | {median['http']:.4f} | {rate['http']:,.0f} | {rate['http'] / rate['predict']:.2f} |",
        '', f"HTTP serves {rate['http'] / rate['predict']:.2f}x the rows per second of in-process `predict` "
        f"({rate['predict'] / rate['http']:.2f}x slower); against the same work in-process (`ModelService.predict`) the HTTP cost is "
        f"{rate['service'] / rate['http']:.2f}x.", '',
        f'## Single-row latency, {args.clients} concurrent clients, {len(latencies):,} requests', '',
        '| p50 ms | p90 ms | p99 ms | max ms | requests per second |', '| --- | --- | --- | --- | --- |',
        f'| {percentile(latencies, 50) * 1e3:.1f} | {percentile(latencies, 90) * 1e3:.1f} | {percentile(latencies, 99) * 1e3:.1f} '
        f'| {max(latencies) * 1e3:.1f} | {len(latencies) / wall:,.0f} |', '',
        'Every request succeeded (status 200). Latency is measured at the client: connection reuse, HTTP parsing, the checks, '
        'the model (a 200-tree forest dispatching to joblib threads even for one row), the log fsync and the reply.', '']
    atomic_write_text(args.out, '\n'.join(lines))
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
