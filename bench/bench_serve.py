"""The model server against MLflow's and against in-process prediction, on the fraud and maintenance models, side by side.

Run: .venv/bin/python bench/bench_serve.py [--quiet-load 1.5] [--wait 1800] [--out bench/results/serve.md]
(MLflow is not a dependency of the package: `pip install mlflow` into the same venv first; without it, its rows are
left out and the table says so.)

What it measures, for each case (the package's random forest, `make_model('rf', 'binary')`: 200 trees, n_jobs=-1,
trained on the built-in `fraud` and `maintenance` datasets at their default size), all in one run:

- **single-row requests**, 1 client and 8 concurrent clients (threads, one keep-alive connection each, raw HTTP/1.1
  on sockets so that the client costs little of the two shared cores): requests/s, p50 and p99 latency at the client;
  for each lever of the server in turn (each row adds one to the row above), and for `mlflow models serve` on the
  same fitted pipeline (saved with `mlflow.sklearn.save_model(..., serialization_format="skops")`, MLflow's own
  uvicorn server, its default single worker, payload `{"dataframe_records": [...]}`);
- **batches of 1,000 rows**: rows/s over HTTP against in-process `model.predict_proba(frame)` on the same rows, and
  against the server's own scoring path in-process (to show what HTTP, JSON and the log cost), alternated (20 timed
  batches each, median);
- the `fsync` latency of the disk the prediction log is on (every answer waits for one);
- that the answers are the model's own: every single-row answer of the final server and the 1,000-row answer equal
  `model.predict_proba` on the same rows, bit for bit (the run stops otherwise).

Every server writes its prediction log with an fsync before answering, as `mlops-nb serve` does. The machine is
shared: the run waits (polling `os.getloadavg` every 60 s, up to --wait seconds) for a 1-minute load below
--quiet-load, and records the load before and after. Writes bench/results/serve.md.
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
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_nb.core import atomic_write_text
from mlops_nb.data import infer_schema
from mlops_nb.datasets import builtin_spec, load_builtin, split_dataset
from mlops_nb.models import TRUSTED_TYPES, load_model, make_model, read_model_card, save_model
from mlops_nb.prometheus import free_port

# the server each lever row starts: environment for benchapp.make_app (below), uvicorn's event loop, worker processes
LEVERS = [
    ('all levers off: each request scored, logged (an fsync) and answered alone; pandas + ColumnTransformer; FastAPI route',
     {'BATCH': '1', 'FAST': '0', 'ROUTE': 'fastapi'}, 'asyncio', 1),
    ('+ micro-batching and group commit: a scoring thread takes whatever waits, a log thread writes all it was handed with one fsync',
     {'BATCH': '256', 'FAST': '0', 'ROUTE': 'fastapi'}, 'asyncio', 1),
    ('+ fast path: numpy preprocessing and flat forest, bit for bit (`inference`)',
     {'BATCH': '256', 'FAST': '1', 'ROUTE': 'fastapi'}, 'asyncio', 1),
    ('+ pure ASGI route for /predict and /feedback (past FastAPI routing)', {'BATCH': '256', 'FAST': '1', 'ROUTE': 'asgi'}, 'asyncio', 1),
    ('+ uvloop event loop = `mlops-nb serve`', {'BATCH': '256', 'FAST': '1', 'ROUTE': 'asgi'}, 'uvloop', 1),
    ('+ 2 uvicorn worker processes, a log each (not adopted, see below)', {'BATCH': '256', 'FAST': '1', 'ROUTE': 'asgi'}, 'uvloop', 2),
]
FINAL = 4  # the row that is `mlops-nb serve`

BENCH_APP = '''
import os
from pathlib import Path
from mlops_nb.models import load_model, read_model_card
from mlops_nb.serve import ModelService, _ScoringRoutes, app_for_service

def make_app():
    "The app for one lever row: a prediction log per worker process (each process is a server of its own)."
    folder = os.environ['BENCH_MODEL']
    service = ModelService(load_model(folder), read_model_card(folder), run_id='bench', fast=os.environ['FAST'] == '1',
                           batch_requests=int(os.environ['BATCH']), log_path=Path(os.environ['BENCH_LOGS'])/f'log-{os.getpid()}.jsonl')
    app = app_for_service(service)
    if os.environ['ROUTE'] == 'fastapi':  # the lever off: /predict through FastAPI's routing (the same _answer behind it)
        app.user_middleware = [m for m in app.user_middleware if m.cls is not _ScoringRoutes]
    return app
'''


def wait_until_quiet(threshold: float, limit: float, poll: float = 60.0) -> dict:
    "Wait until the 1-minute load is below `threshold` (at most `limit` seconds)."
    start, first = time.monotonic(), os.getloadavg()[0]
    while os.getloadavg()[0] >= threshold and time.monotonic() - start < limit:
        print(f'load {os.getloadavg()[0]:.2f} >= {threshold}: waiting', flush=True)
        time.sleep(poll)
    return {'load_first': first, 'load_start': os.getloadavg()[0], 'waited_s': time.monotonic() - start,
            'quiet': os.getloadavg()[0] < threshold}


def build_case(name: str, folder: Path) -> dict:
    "Train the package's forest on a built-in dataset; save it for our server and for MLflow's."
    import mlflow.sklearn  # here: an optional benchmark dependency
    data = load_builtin(name, seed=0)
    train, test, _ = split_dataset(name, data.frame, data.target, data.task)
    features = builtin_spec(name)['features']
    schema = infer_schema(train[features + [data.target]], target=data.target)
    fitted = make_model('rf', 'binary', schema, seed=0).fit(train[features], train[data.target])
    model_dir = save_model(fitted, folder/name/'rf', card={'name': 'rf', 'task': 'binary', 'schema': schema})
    model = load_model(model_dir)
    mlflow.sklearn.save_model(model, folder/name/'mlflow', serialization_format='skops', skops_trusted_types=list(TRUSTED_TYPES))
    return {'name': name, 'model_dir': model_dir, 'mlflow_dir': folder/name/'mlflow', 'model': model, 'features': features,
            'test': test[features].reset_index(drop=True), 'train_rows': len(train), 'depth': max(e.tree_.max_depth for e in model.steps[-1][1].estimators_)}


def records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in frame.to_dict(orient='records')]


def http_request(path: str, body: bytes) -> bytes:
    return (f'POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n'
            f'Content-Length: {len(body)}\r\n\r\n').encode() + body


class Connection:
    "One keep-alive HTTP/1.1 connection: send prepared request bytes, read the status and the body."
    def __init__(self, port: int):
        self.socket = socket.create_connection(('127.0.0.1', port), timeout=120)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b''

    def call(self, request: bytes) -> tuple[int, bytes]:
        self.socket.sendall(request)
        while b'\r\n\r\n' not in self.buffer: self.buffer += self._receive()
        head, _, rest = self.buffer.partition(b'\r\n\r\n')
        length = next(int(line.split(b':')[1]) for line in head.split(b'\r\n') if line.lower().startswith(b'content-length'))
        while len(rest) < length: rest += self._receive()
        self.buffer = rest[length:]
        return int(head[9:12]), rest[:length]

    def _receive(self) -> bytes:
        chunk = self.socket.recv(1 << 20)
        if not chunk: raise ConnectionError('server closed the connection')
        return chunk

    def close(self): self.socket.close()


def load(port: int, requests: list[bytes], clients: int, budget_s: float) -> dict:
    "Send `requests` from `clients` threads (each its share, in order, stopping after `budget_s`); rps and latencies."
    latencies, failures, share = [], [], len(requests) // clients
    def client(i):
        connection, mine = Connection(port), []
        for request in requests[i * share:i * share + 3]: connection.call(request)  # warm the connection
        deadline = time.perf_counter() + budget_s
        for request in requests[i * share:(i + 1) * share]:
            start = time.perf_counter()
            status, body = connection.call(request)
            mine.append(time.perf_counter() - start)
            if status != 200: failures.append((status, body[:200]))
            if time.perf_counter() > deadline and len(mine) >= 30: break
        latencies.extend(mine)
        connection.close()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    wall = time.perf_counter()
    for t in threads: t.start()
    for t in threads: t.join()
    wall = time.perf_counter() - wall
    if failures: raise RuntimeError(f'{len(failures)} requests failed, e.g. {failures[0]}')
    ms = np.asarray(latencies) * 1e3
    return {'n': len(latencies), 'rps': len(latencies) / wall, 'p50': float(np.percentile(ms, 50)), 'p99': float(np.percentile(ms, 99))}


def start(command: list[str], env: dict, port: int, probe: bytes, timeout: float = 180) -> subprocess.Popen:
    "Start a server and wait until `probe` gets a 200."
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None: raise RuntimeError(f'server exited: {process.stderr.read().decode()[-2000:]}')
        try:
            connection = Connection(port)
            status, body = connection.call(probe)
            connection.close()
            if status == 200: return process
            raise RuntimeError(f'probe answered {status}: {body[:300]}')
        except OSError: time.sleep(0.2)
    process.kill()
    raise TimeoutError('server did not start')


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try: process.wait(30)
    except subprocess.TimeoutExpired: process.kill()


def our_server(case: dict, folder: Path, env: dict, loop: str, workers: int) -> tuple[subprocess.Popen, int, Path]:
    port, logs = free_port(), Path(tempfile.mkdtemp(dir=folder))
    env = {**env, 'BENCH_MODEL': str(case['model_dir']), 'BENCH_LOGS': str(logs), 'PYTHONPATH': str(folder)}
    command = [sys.executable, '-m', 'uvicorn', 'benchapp:make_app', '--factory', '--host', '127.0.0.1', '--port', str(port),
               '--http', 'h11', '--loop', loop, '--workers', str(workers), '--log-level', 'warning', '--no-access-log']
    return start(command, env, port, case['ours'][0]), port, logs


def mlflow_server(case: dict) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [sys.executable, '-m', 'mlflow', 'models', 'serve', '-m', str(case['mlflow_dir']), '-h', '127.0.0.1', '-p', str(port),
               '--env-manager', 'local']
    path = {'PATH': f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # MLflow runs `uvicorn` from PATH
    return start(command, path, port, case['mlflow'][0]), port


def single_rows(port: int, requests: list[bytes]) -> dict:
    return {'one': load(port, requests[:300], 1, budget_s=10), 'eight': load(port, requests, 8, budget_s=10)}


def check_answers(port: int, case: dict, n: int = 200) -> None:
    "The final server's single-row answers are `predict_proba` on the same rows, bit for bit."
    expected = case['model'].predict_proba(case['test'].head(n))
    connection = Connection(port)
    for i in range(n):
        status, body = connection.call(case['ours'][i])
        got = json.loads(body)['probabilities'][0]
        if status != 200 or [got['0'], got['1']] != expected[i].tolist(): raise AssertionError(f'row {i}: {body[:300]}')
    connection.close()


def batches(port: int, case: dict, rounds: int = 20) -> dict:
    """Median seconds for 1,000 rows: in-process predict_proba, the server's own path in-process (checked columns through
    `inference.compile_model`: what the server computes, without HTTP, JSON or the log), and POST /predict; alternated, the
    answers compared."""
    from mlops_nb.serve import ModelService, check_columns  # here: only this table needs the pieces
    frame, model = case['test'].head(1000), case['model']
    rows = records(frame)
    request = http_request('/predict', json.dumps({'records': rows}).encode())
    service = ModelService(model, read_model_card(case['model_dir']))  # no log, no thread: its checks and its fast path
    columns, fast = check_columns(rows, service.input_schema)[0], service.fast
    connection, inprocess, server_path, http = Connection(port), [], [], []
    expected = model.predict_proba(frame)
    status, body = connection.call(request)
    got = np.array([[p['0'], p['1']] for p in json.loads(body)['probabilities']])
    if status != 200 or not np.array_equal(got, expected): raise AssertionError('the 1,000-row answer differs from predict_proba')
    if not np.array_equal(fast.predict_proba(columns), expected): raise AssertionError("the server's path differs from predict_proba")
    for _ in range(rounds):
        start = time.perf_counter(); model.predict_proba(frame); inprocess.append(time.perf_counter() - start)
        start = time.perf_counter(); fast.predict_proba(columns); server_path.append(time.perf_counter() - start)
        start = time.perf_counter(); connection.call(request); http.append(time.perf_counter() - start)
    connection.close()
    return {'inprocess': statistics.median(inprocess), 'server_path': statistics.median(server_path), 'http': statistics.median(http),
            'body_bytes': len(request)}


def model_only(case: dict, rounds: int = 30) -> list[tuple]:
    "(rows, path, median ms, bit-identical) for the forest alone on preprocessed rows: sklearn's, ours, treelite's if installed."
    from mlops_nb.inference import FastForest  # here: only this table needs the pieces
    forest, preprocess = case['model'].steps[-1][1], case['model'].steps[0][1]
    fast, X = FastForest.compile(forest), preprocess.transform(case['test'].head(1000))
    paths = {'scikit-learn `forest.predict_proba`': forest.predict_proba, '`inference.FastForest`': fast.predict_proba}
    try:
        import treelite  # here: an optional lever, measured when installed
        compiled = treelite.sklearn.import_model(forest)
        paths['treelite GTIL (not adopted)'] = lambda rows: treelite.gtil.predict(compiled, rows.astype(np.float32).astype(np.float64), nthread=1).reshape(len(rows), -1)
    except ImportError: pass
    out = []
    for n in (1, 8, 1000):
        expected = forest.predict_proba(X[:n])
        for name, predict in paths.items():
            times = []
            for r in range(rounds if n < 1000 else 10):
                rows = X[(r * 8) % 900:][:n] if n < 1000 else X
                start = time.perf_counter(); predict(rows); times.append(time.perf_counter() - start)
            out.append((n, name, statistics.median(times) * 1e3, bool(np.array_equal(np.asarray(predict(X[:n])), expected))))
    return out


def fsync_latency(folder: Path, n: int = 50) -> float:
    "Median seconds of appending 300 bytes and fsync-ing them (what each batch waits for before its answers)."
    path, times = folder/'fsync-probe.bin', []
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for _ in range(n):
            start = time.perf_counter(); os.write(fd, b'x' * 300); os.fsync(fd); times.append(time.perf_counter() - start)
    finally: os.close(fd)
    return statistics.median(times)


def median_of(runs: list[dict]) -> dict:
    "The median over rounds of each figure of `single_rows`."
    return {part: {key: statistics.median(run[part][key] for run in runs) for key in runs[0][part]} for part in runs[0]}


def run_case(case: dict, folder: Path, with_mlflow: bool, rounds: int) -> dict:
    "Every lever's server and MLflow's started at once (idle ones cost nothing), then measured in turn, `rounds` times."
    rows = records(case['test'].head(2400))
    case['ours'] = [http_request('/predict', json.dumps({'records': [r]}).encode()) for r in rows]
    case['mlflow'] = [http_request('/invocations', json.dumps({'dataframe_records': [r]}).encode()) for r in rows]
    results, servers = {'model_only': model_only(case)}, []
    try:
        for what, env, loop, workers in LEVERS: servers.append((what, *our_server(case, folder, env, loop, workers)[:2], case['ours']))
        if with_mlflow: servers.append(('mlflow', *mlflow_server(case), case['mlflow'][:800]))
        check_answers(servers[FINAL][2], case)
        results['batches'] = batches(servers[FINAL][2], case)
        runs = {what: [] for what, *_ in servers}
        for round_ in range(rounds):  # rounds interleave the servers, so that a change of the machine's load hits them all
            for what, process, port, requests in servers:
                runs[what].append(single_rows(port, requests))
                print(case['name'], round_, what[:50], runs[what][-1], flush=True)
    finally:
        for _, process, *_ in servers: stop(process)
    results['levers'] = [(what, median_of(runs[what])) for what, *_ in LEVERS]
    if with_mlflow: results['mlflow'] = median_of(runs['mlflow'])
    return results


def lever_table(name: str, results: dict) -> list[str]:
    mlflow = results.get('mlflow')
    lines = [f'### {name}', '', '| server | 1 client p50 ms | 1 client p99 ms | 8 clients requests/s | 8 clients p50 ms | 8 clients p99 ms | vs MLflow (8 clients requests/s) |',
             '| --- | --- | --- | --- | --- | --- | --- |']
    def row(what, r):
        ratio = f"{r['eight']['rps'] / mlflow['eight']['rps']:.1f}x" if mlflow else 'n/a'
        return (f"| {what} | {r['one']['p50']:.2f} | {r['one']['p99']:.2f} | {r['eight']['rps']:,.0f} | {r['eight']['p50']:.1f} "
                f"| {r['eight']['p99']:.1f} | {ratio} |")
    lines += [row(what, r) for what, r in results['levers']]
    lines.append(row('`mlflow models serve` (same pipeline, skops format)', mlflow) if mlflow else
                 '| `mlflow models serve` | not measured: MLflow is not installed in this venv | | | | | |')
    return lines + ['']


def report(cases: dict, results: dict, quiet: dict, load_end: float, fsync_s: float, rounds: int) -> str:
    cpu = next((line.split(':', 1)[1].strip() for line in Path('/proc/cpuinfo').read_text().splitlines() if line.startswith('model name')), platform.processor())
    lines = ['# Serving benchmark', '',
             f'Machine: {os.cpu_count()} CPUs ({cpu}), shared with other work; Python {platform.python_version()}. '
             f"Produced by `bench/bench_serve.py` in one run. Load average (1 min) when the run started: {quiet['load_start']:.2f} "
             f"({'below' if quiet['quiet'] else 'NOT below'} the 1.5 asked for, after waiting {quiet['waited_s'] / 60:.0f} min; "
             f"{quiet['load_first']:.2f} when the wait began), {load_end:.2f} at the end. Absolute figures move with the load "
             'of the other work on the machine.', '',
             f"Models: the package's random forest (`make_model('rf', 'binary')`: 200 trees, n_jobs=-1) on the built-in datasets at "
             'their default size: ' + '; '.join(f"{c['name']} ({c['train_rows']:,} training rows, {len(c['features'])} inputs, trees up to "
                                              f"{c['depth']} levels deep)" for c in cases.values()) + '.', '',
             'Servers: uvicorn on 127.0.0.1, one process unless said, each writing its prediction log with an fsync before '
             f"answering (median fsync of 300 bytes on this disk: {fsync_s * 1e3:.2f} ms). Clients: raw HTTP/1.1 on keep-alive "
             'sockets, bodies encoded before timing, latency measured at the client; 1 client: 300 requests; 8 clients: 2,400 '
             'requests (or 10 s, at least 30 each). MLflow: `mlflow models serve --env-manager local` (its uvicorn server, one '
             'worker), payload `{"dataframe_records": [row]}`.', '',
             '## Single-row requests, lever by lever', '',
             'Each row adds one lever to the row above. All the servers of a table run at once (an idle one costs nothing) and '
             f'are measured in turn, {rounds} rounds over them all; each figure is the median of the rounds. '
             'Every answer of the `mlops-nb serve` row was checked against `model.predict_proba` on the same row, bit for bit.', '']
    for name in cases: lines += lever_table(name, results[name])
    lines += ['## Batches of 1,000 rows (20 each, alternated, median)', '',
              "The server scores a batch with `inference.compile_model`'s path: numpy preprocessing, and the forest's rows split "
              'into two blocks on two threads from 800 rows (`FastForest.min_block_rows`), where `predict_proba` keeps one block '
              "below 2,048 rows (its `MIN_BLOCK_ROWS`, for CPU). The middle column is that path in-process on the checked columns: "
              'the gap between it and HTTP is what HTTP, JSON, the checks and the fsync-ed log cost.', '',
              '| case | in-process `model.predict_proba(frame)` s | in-process, the server\'s path s | HTTP `POST /predict` s '
              '| rows/s in-process | rows/s HTTP | HTTP / in-process | HTTP / the server\'s path in-process |',
              '| --- | --- | --- | --- | --- | --- | --- | --- |']
    for name in cases:
        b = results[name]['batches']
        lines.append(f"| {name} | {b['inprocess']:.4f} | {b['server_path']:.4f} | {b['http']:.4f} | {1000 / b['inprocess']:,.0f} "
                     f"| {1000 / b['http']:,.0f} | {b['inprocess'] / b['http']:.2f} | {b['server_path'] / b['http']:.2f} |")
    lines += ['', '## The forest alone (in-process, on preprocessed rows, median ms)', '',
              '| case | rows | path | ms | bit-identical to `predict_proba` |', '| --- | --- | --- | --- | --- |']
    for name in cases:
        lines += [f"| {name} | {n} | {path} | {ms:.3f} | {'yes' if same else 'NO'} |" for n, path, ms, same in results[name]['model_only']]
    return '\n'.join(lines + ['', *targets(cases, results), '', *NOT_ADOPTED]) + '\n'


def targets(cases: dict, results: dict) -> list[str]:
    "Issue 14's targets, read off the tables above for the `mlops-nb serve` row."
    lines = ['## Targets (issue 14), for the `mlops-nb serve` row', '', '| case | target | measured | met |', '| --- | --- | --- | --- |']
    for name in cases:
        final, mlflow, b = results[name]['levers'][FINAL][1], results[name].get('mlflow'), results[name]['batches']
        rows = [('8 clients: >= 400 requests/s, p99 <= 50 ms', f"{final['eight']['rps']:,.0f}/s, p99 {final['eight']['p99']:.1f} ms",
                 final['eight']['rps'] >= 400 and final['eight']['p99'] <= 50),
                ('8 clients: >= 10x `mlflow models serve`', f"{final['eight']['rps'] / mlflow['eight']['rps']:.1f}x" if mlflow else 'not measured',
                 mlflow is not None and final['eight']['rps'] >= 10 * mlflow['eight']['rps']),
                ('1 client: p50 <= 3 ms', f"{final['one']['p50']:.2f} ms", final['one']['p50'] <= 3),
                ('1,000-row batches: HTTP >= 0.8x in-process rows/s', f"{b['inprocess'] / b['http']:.2f}x", b['inprocess'] / b['http'] >= 0.8)]
        lines += [f"| {name} | {target} | {measured} | {'yes' if ok else 'NO'} |" for target, measured, ok in rows]
    return lines


NOT_ADOPTED = [
    '## Levers not adopted', '',
    '- **Several uvicorn worker processes**: each process is a server of its own, with its own prediction ids, prediction '
    'index and quality window (a label sent to another process than the one that made the prediction would be `unknown`), '
    'its own Prometheus registry (a scrape sees one process) and its own log writer. Measured above with a log per process; '
    'not worth breaking labels and metrics for.',
    '- **Compiled tree libraries**: treelite\'s GTIL (measured above when installed) gives the same numbers on these forests '
    'and is a tenth of a millisecond faster than `inference.FastForest` for one row, but not for eight, and three times slower than scikit-learn for 1,000: a dependency for a gain the HTTP layer hides; numba '
    '(tried while building `inference`) also gives the same numbers, at the cost of a 40 MB dependency and a compile at start, '
    'for a single-row gain that the HTTP layer hides. ONNX Runtime (skl2onnx) compares float32 thresholds, so its answers are '
    'not the model\'s bit for bit: ruled out by issue 14.',
    '- **httptools** (uvicorn\'s C parser): it answers a method HTTP does not define with a bare 400 before the app sees it, '
    'where h11 lets the app answer 405 and count it (issue 10); the server names h11.']


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--cases', default='fraud,maintenance')
    parser.add_argument('--quiet-load', type=float, default=1.5, help='wait for a 1-minute load average below this')
    parser.add_argument('--wait', type=float, default=1800, help='seconds to wait for it at most (then run anyway, and say so)')
    parser.add_argument('--rounds', type=int, default=3, help='measurements of each server, interleaved (the median is reported)')
    parser.add_argument('--out', default=str(Path(__file__).parent/'results'/'serve.md'))
    args = parser.parse_args()
    try: import mlflow  # noqa: F401 -- an optional benchmark dependency
    except ImportError: with_mlflow = False
    else: with_mlflow = True
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder/'benchapp.py').write_text(textwrap.dedent(BENCH_APP))
        cases = {name: build_case(name, folder) for name in args.cases.split(',')}
        quiet = wait_until_quiet(args.quiet_load, args.wait)
        fsync_s = fsync_latency(folder)
        results = {name: run_case(case, folder, with_mlflow, args.rounds) for name, case in cases.items()}
        text = report(cases, results, quiet, os.getloadavg()[0], fsync_s, args.rounds)
    atomic_write_text(args.out, text)
    print(text)


if __name__ == '__main__':
    main()
