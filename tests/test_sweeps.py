"""Sweeps on a real Dask cluster: a `dask scheduler` and two `dask worker` processes on 127.0.0.1, each
worker in its own working directory with its own --local-directory, the client's runs folder elsewhere.
Every combination is an ordinary run that arrives whole; a killed worker's run is retried; a sweep run
again starts only what is missing; a failing combination fails alone. Every process started here is
killed (with its kernels) when its test ends."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

pytest.importorskip('distributed')

from mlops_nb.core import file_md5, project_root, read_json
from mlops_nb.runs import RunDir, list_runs, read_manifest, verify_run_files
from mlops_nb.sweeps import SweepDir, list_sweeps, read_record

BIN = Path(sys.executable).parent
MLOPS_NB, DASK = str(BIN/'mlops-nb'), str(BIN/'dask')
SMALL = ['-p', 'dataset', 'maintenance', '-p', 'data_scale', '0.05', '-p', 'models', 'rf', '-p', 'rf_n_estimators', '20',
         '-p', 'n_bootstrap', '0']


def default_sigint() -> None:
    "In the child: Ctrl-C does what it does in a terminal, even when the tests run in the background (which ignores it)."
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(command: list, cwd: Path, log: Path) -> subprocess.Popen:
    "A process in its own session (so that its whole group can be killed), output to a log file."
    cwd.mkdir(parents=True, exist_ok=True)
    with open(log, 'wb') as out:
        return subprocess.Popen([str(c) for c in command], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=default_sigint)


def kill(process: subprocess.Popen) -> None:
    "Kill the process, its group and every descendant (Jupyter kernels run in sessions of their own)."
    try: descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess: descendants = []
    try: os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError: pass
    for child in descendants:
        try: child.kill()
        except psutil.NoSuchProcess: pass
    process.wait(timeout=30)
    psutil.wait_procs(descendants, timeout=30)


class Cluster:
    "A scheduler and two workers, each worker in its own folder (its cwd and its --local-directory)."
    def __init__(self, root: Path):
        self.root, self.processes, self.workers = root, [], {}
        scheduler_file = root/'scheduler'/'scheduler.json'
        self.processes.append(start([DASK, 'scheduler', '--host', '127.0.0.1', '--port', '0', '--no-dashboard',
                                     '--scheduler-file', scheduler_file], root/'scheduler', root/'scheduler.log'))
        deadline = time.time() + 120
        while not scheduler_file.is_file():
            assert time.time() < deadline and self.processes[0].poll() is None, (root/'scheduler.log').read_text()
            time.sleep(0.2)
        time.sleep(0.5)  # the file is written when the scheduler listens
        self.address = read_json(scheduler_file)['address']
        for name in ('a', 'b'):
            folder = root/f'worker-{name}'
            self.workers[name] = start([DASK, 'worker', self.address, '--nthreads', '1', '--name', name, '--no-dashboard',
                                        '--local-directory', folder/'local'], folder, root/f'worker-{name}.log')
            self.processes.append(self.workers[name])
        self.wait_for_workers(2)

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client
        with Client(self.address, timeout='60s') as client: client.wait_for_workers(n, timeout=180)

    def worker_pids(self) -> set[int]:
        pids = set()
        for process in self.workers.values():
            try: pids |= {process.pid} | {p.pid for p in psutil.Process(process.pid).children(recursive=True)}
            except psutil.NoSuchProcess: pass
        return pids

    def close(self) -> None:
        for process in reversed(self.processes): kill(process)


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    cluster = None
    try:
        cluster = Cluster(tmp_path_factory.mktemp('cluster'))
        yield cluster
    finally:
        if cluster is not None: cluster.close()


@pytest.fixture
def own_cluster(tmp_path):
    cluster = None
    try:
        cluster = Cluster(tmp_path/'cluster')
        yield cluster
    finally:
        if cluster is not None: cluster.close()


class Watcher(threading.Thread):
    "Notes every entry that appears in the runs folder, and the run's status when it is first seen."
    def __init__(self, runs: Path):
        super().__init__(daemon=True)
        self.runs, self.seen, self.stop = runs, {}, threading.Event()

    def run(self):
        while not self.stop.is_set():
            for path in (self.runs.iterdir() if self.runs.is_dir() else []):
                if path.name not in self.seen and not path.name.startswith('.'):
                    try: self.seen[path.name] = read_manifest(path)['status']
                    except Exception as e: self.seen[path.name] = f'unreadable: {e}'
            time.sleep(0.02)


def sweep(*args, cwd: Path, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([MLOPS_NB, 'sweep', '--no-progress', *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def run_dirs(runs: Path) -> list[RunDir]:
    return [RunDir(p) for p in sorted(runs.iterdir()) if p.is_dir() and not p.name.startswith('.')]


def test_a_sweep_on_workers_that_do_not_share_the_runs_folder(cluster, tmp_path):
    client_dir = tmp_path/'client'
    client_dir.mkdir()
    runs, data = client_dir/'runs', client_dir/'data'
    grid = [*SMALL, '-p', 'data_dir', data, '-g', 'seed', '0', '1', '2', '-g', 'rf_max_depth', '0', '4']
    watcher = Watcher(runs)
    watcher.start()
    try: done = sweep('--scheduler', cluster.address, '--runs-dir', runs, *grid, cwd=client_dir)
    finally:
        watcher.stop.set()
        watcher.join()
    assert done.returncode == 0, done.stdout + done.stderr
    record_dir = SweepDir(done.stdout.strip().splitlines()[-1])  # the last line is the record folder
    assert record_dir.path.parent == SweepDir.folder(runs) and list_sweeps(runs) == [record_dir.id]
    record = read_record(record_dir)
    assert [e['status'] for e in record['combinations']] == ['complete'] * 6
    arrived = run_dirs(runs)
    assert sorted(r.id for r in arrived) == sorted(e['run_id'] for e in record['combinations'])

    # every run arrived whole, made by a worker process, and appeared complete: never running, never half
    assert watcher.seen == {r.id: 'complete' for r in arrived}, watcher.seen
    data_file = data/'maintenance-seed0-scale0.05.parquet'
    workers = cluster.worker_pids()
    for run in arrived:
        manifest = read_manifest(run)
        assert verify_run_files(run) == manifest['files'] and manifest['status'] == 'complete'
        assert manifest['pid'] in workers and manifest['pid'] != os.getpid()
        assert manifest['data']['path'] == str(data_file) and manifest['data']['md5'] == file_md5(data_file)
        assert read_json(run.params)['runs_dir'] == str(runs)
    assert sorted((read_json(r.params)['seed'], read_json(r.params)['rf_max_depth']) for r in arrived) == \
        [(s, d) for s in (0, 1, 2) for d in (0, 4)]
    for name in ('a', 'b'):  # the workers kept nothing of the runs in their scratch folders
        assert not [p for p in (cluster.root/f'worker-{name}'/'local').rglob('mlops-nb/runs/*')]
    assert 'roc_auc' in done.stdout and 'best by roc_auc' in done.stdout and record_dir.plot.is_file()

    # a shipped run reproduces on the client: the same metrics.json, params.json, predictions, bit for bit
    original = arrived[0]
    again = subprocess.run([MLOPS_NB, 'reproduce', original.id, '--runs-dir', runs, '--no-progress'], cwd=client_dir,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and 'identical' in again.stdout, again.stdout + again.stderr
    reproduced = RunDir(again.stdout.strip().splitlines()[-1])
    assert reproduced.metrics.read_bytes() == original.metrics.read_bytes()
    assert reproduced.params.read_bytes() == original.params.read_bytes()

    # run again: nothing starts; remove one run (not the reproduced one): exactly that one runs again
    before = sorted(p.name for p in runs.iterdir())
    rerun = sweep('--scheduler', cluster.address, '--runs-dir', runs, *grid, cwd=client_dir)
    assert rerun.returncode == 0 and '6 done before, 0 run now' in rerun.stdout, rerun.stdout + rerun.stderr
    assert sorted(p.name for p in runs.iterdir()) == before
    removed = arrived[-1]
    removed_params = removed.params.read_bytes()
    shutil.rmtree(removed.path)
    rerun = sweep('--scheduler', cluster.address, '--runs-dir', runs, *grid, cwd=client_dir)
    assert rerun.returncode == 0 and '5 done before, 1 run now' in rerun.stdout, rerun.stdout + rerun.stderr
    new = set(p.name for p in runs.iterdir()) - set(before)
    assert len(new) == 1
    [new_run] = [RunDir(runs/name) for name in new]
    assert new_run.params.read_bytes() == removed_params  # the same combination, run again
    assert new_run.id in [e['run_id'] for e in read_record(record_dir)['combinations']]


def test_one_failing_combination_fails_alone_and_runs_equal_mlops_nb_run(cluster, tmp_path):
    client_dir = tmp_path/'client'
    client_dir.mkdir()
    churn = client_dir/'churn.csv'
    shutil.copy(project_root()/'data'/'samples'/'churn.csv', churn)
    runs = client_dir/'runs'
    fixed = ['-p', 'dataset', churn, '-p', 'models', 'rf', '-p', 'rf_n_estimators', '20', '-p', 'n_bootstrap', '10']
    done = sweep('--scheduler', cluster.address, '--runs-dir', runs, *fixed, '-g', 'target', 'churned', 'churn', cwd=client_dir)
    assert done.returncode == 1, done.stdout + done.stderr
    assert 'combination 2 (target=churn) failed' in done.stderr and "target column 'churn' not found" in done.stderr
    record = read_record(SweepDir(done.stdout.strip().splitlines()[-1]))
    good, bad = (RunDir(runs/e['run_id']) for e in record['combinations'])
    assert [e['status'] for e in record['combinations']] == ['complete', 'failed']
    assert read_manifest(bad)['status'] == 'failed' and read_manifest(bad)['error']['type'] == 'DataError'
    assert bad.executed_notebook('train.ipynb').is_file()  # the failed run came back too, with its traceback
    assert read_manifest(good)['data']['path'] == str(churn)  # a data file the workers could read in place

    # the same combination through `mlops-nb run`: the same metrics.json, byte for byte
    alone = subprocess.run([MLOPS_NB, 'run', '--no-progress', '--runs-dir', tmp_path/'alone', *map(str, fixed), '-p', 'target',
                            'churned'], capture_output=True, text=True, timeout=600)
    assert alone.returncode == 0, alone.stderr
    assert RunDir(alone.stdout.strip().splitlines()[-1]).metrics.read_bytes() == good.metrics.read_bytes()


def in_flight(worker_dir: Path) -> str | None:
    "The id of a run executing in this worker's scratch folder (its notebook has begun), if any."
    return next((run.name for run in worker_dir.rglob('mlops-nb/runs/*') if run.is_dir() and any(run.glob('*.ipynb'))), None)


def test_a_killed_worker_s_run_is_retried_and_completes_once(own_cluster, tmp_path):
    client_dir = tmp_path/'client'
    client_dir.mkdir()
    runs = client_dir/'runs'
    args = ['--scheduler', own_cluster.address, '--runs-dir', runs, '--retries', '1', *SMALL,
            '-p', 'data_dir', client_dir/'data', '-g', 'seed', '0', '1', '2', '3']
    process = start([MLOPS_NB, 'sweep', '--no-progress', *args], client_dir, tmp_path/'sweep.log')
    try:
        deadline = time.time() + 300
        while not (killed := in_flight(own_cluster.root/'worker-a'/'local')):
            assert time.time() < deadline and process.poll() is None, (tmp_path/'sweep.log').read_text()
            time.sleep(0.2)
        worker_a = {own_cluster.workers['a'].pid} | {p.pid for p in psutil.Process(own_cluster.workers['a'].pid).children(recursive=True)}
        kill(own_cluster.workers['a'])  # worker a dies in the middle of a run
        assert process.wait(timeout=900) == 0, (tmp_path/'sweep.log').read_text()
    finally:
        if process.poll() is None: kill(process)
    log = (tmp_path/'sweep.log').read_text()
    record = read_record(SweepDir(log.strip().splitlines()[-1]))
    assert [e['status'] for e in record['combinations']] == ['complete'] * 4
    arrived = run_dirs(runs)
    assert sorted(r.id for r in arrived) == sorted(e['run_id'] for e in record['combinations'])  # each once
    assert list_runs(runs).status.tolist() == ['complete'] * 4  # none left running
    assert sorted(read_json(r.params)['seed'] for r in arrived) == [0, 1, 2, 3]
    for run in arrived: verify_run_files(run)
    assert killed in [r.id for r in arrived]  # the run cut short on worker a was made again, on worker b
    assert read_manifest(runs/killed)['pid'] not in worker_a


def test_a_worker_that_cannot_read_the_data_file_asks_the_client_for_its_bytes(cluster, tmp_path):
    "The fetch a worker uses when the client's path is not there: a Dask event asks, a Dask Variable answers."
    from functools import partial
    from distributed import Client
    from mlops_nb.sweeps import _fetch_data, _publish, _topic, _Tracker, local_data
    churn = project_root()/'data'/'samples'/'churn.csv'
    sweep_info, md5 = {'id': 'fetch-test'}, file_md5(churn)
    missing = {'path': str(tmp_path/'not-on-the-worker'/'churn.csv'), 'md5': md5}  # what the worker is told
    tracker = _Tracker(SweepDir(tmp_path/'record'), {'sweep_id': 'fetch-test', 'combinations': []}, progress=False)
    published = {}
    with Client(cluster.address, timeout='60s') as client:
        client.subscribe_topic(_topic(sweep_info), tracker.on_event)
        future = client.submit(local_data, missing, tmp_path/'copies', partial(_fetch_data, sweep_info), pure=False)
        deadline = time.time() + 120
        while not future.done():
            assert time.time() < deadline
            _publish(client, tracker, [{'path': str(churn), 'md5': md5}], published)  # the client reads its own file
            time.sleep(0.1)
        copy = future.result()
        for variable in published.values(): variable.delete()
    assert tracker.needed == {md5} and copy['path'] == missing['path'] and file_md5(copy['copy']) == md5


def test_a_run_made_from_shipped_data_records_the_file_as_the_client_named_it(tmp_path):
    "run_combination with a data file this machine does not have: the bytes are fetched, checked, and the run is ordinary."
    from mlops_nb.sweeps import check_sweep, receive_run, run_combination
    churn = tmp_path/'client'/'churn.csv'
    churn.parent.mkdir()
    shutil.copy(project_root()/'data'/'samples'/'churn.csv', churn)
    [params] = check_sweep({}, {'dataset': churn, 'target': 'churned', 'models': 'linear', 'n_bootstrap': 0}, tmp_path/'runs')
    elsewhere = str(tmp_path/'only-on-the-client'/'churn.csv')  # the name the run must record, absent here
    params['dataset'] = elsewhere
    shipment = run_combination(params, '20260101T000000-000000-abcd', {'path': elsewhere, 'md5': file_md5(churn)},
                               {'id': 'test', 'combination': 0}, scratch=tmp_path/'worker', fetch=lambda md5: churn.read_bytes())
    run = receive_run(shipment, tmp_path/'runs')
    manifest = read_manifest(run)
    assert manifest['status'] == 'complete', manifest['error']
    assert manifest['data']['path'] == elsewhere and manifest['data']['md5'] == file_md5(churn)
    assert read_json(run.params)['dataset'] == elsewhere and manifest['data_copy']['path'] == elsewhere
    assert Path(manifest['data_copy']['copy']).parent.parent == tmp_path/'worker'/'data'
    assert not list((tmp_path/'worker'/'runs').iterdir())  # the worker keeps nothing of the run
    verify_run_files(run)


def test_ctrl_c_cancels_cleanly(tmp_path):
    "Ctrl-C in the middle of a LocalCluster sweep: exit 130, the run in flight recorded failed, nothing arrived half, no process left."
    client_dir = tmp_path/'client'
    runs = client_dir/'runs'
    process = start([MLOPS_NB, 'sweep', '--no-progress', '--workers', '1', '--runs-dir', runs, *SMALL,
                     '-p', 'data_dir', client_dir/'data', '-g', 'seed', '0', '1', '2'], client_dir, tmp_path/'sweep.log')
    try:
        deadline = time.time() + 300
        while not (records := list(SweepDir.folder(runs).glob('*/sweep.json'))) or \
                'running' not in [e['status'] for e in read_json(records[0])['combinations']]:
            assert time.time() < deadline and process.poll() is None, (tmp_path/'sweep.log').read_text()
            time.sleep(0.2)
        family = psutil.Process(process.pid).children(recursive=True)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        assert process.wait(timeout=120) == 130, (tmp_path/'sweep.log').read_text()
        gone, alive = psutil.wait_procs(family, timeout=60)
        assert not alive, alive  # the cluster's workers and the kernels are gone too
    finally:
        if process.poll() is None: kill(process)
    record = read_json(records[0])
    assert record['status'] == 'interrupted'
    statuses = [e['status'] for e in record['combinations']]
    assert 'complete' not in statuses or all(RunDir(runs/e['run_id']).manifest.is_file()
                                             for e in record['combinations'] if e['status'] == 'complete')
    assert 'failed' in statuses and all(s in ('failed', 'cancelled', 'complete') for s in statuses)
    assert all('interrupted' in e['error'] for e in record['combinations'] if e['status'] == 'failed')
    assert all(read_manifest(r)['status'] == 'complete' for r in run_dirs(runs))  # only whole, complete runs arrived
    assert not [p for p in runs.iterdir() if p.name.startswith('.') and p.name != '.sweeps']  # no staging folder left
