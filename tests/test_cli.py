"""The `mlops-nb` command as a user runs it (a separate process): exit codes, messages, run records,
a killed run, reproduce and changed data."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_nb.cli import main
from mlops_nb.core import file_md5, project_root, read_json
from mlops_nb.runs import list_runs, read_manifest

MLOPS_NB = str(Path(sys.executable).parent/'mlops-nb')
SAMPLES = project_root()/'data'/'samples'
QUICK = ['-p', 'rf_n_estimators', '30', '-p', 'nn_max_epochs', '5', '-p', 'nn_hidden_sizes', '32,16', '-p', 'n_bootstrap', '0']


def mlops_nb(*args, timeout=600):
    return subprocess.run([MLOPS_NB, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def churn_copy(tmp_path) -> Path:
    path = tmp_path/'churn.csv'
    shutil.copy(SAMPLES/'churn.csv', path)
    return path


def test_help_everywhere(capsys):
    for command in ([], ['run'], ['runs'], ['compare'], ['reproduce'], ['data'], ['data', 'make'], ['serve'], ['monitor'], ['package']):
        assert main([*command, '--help']) == 0
        assert 'usage: mlops-nb' in capsys.readouterr().out
    assert main([]) == 2  # a command is required


@pytest.mark.parametrize('args,named', [
    (['-p', 'sed', '7'], "'sed'"),  # unknown parameter
    (['-p', 'seed', 'seven'], "'seed'"),  # wrong type
    (['-p', 'test_size', 'big'], "'test_size'"),
    (['-p', 'dataset', 'frad'], "Did you mean 'fraud'"),
    (['-p', 'models', 'rf,svm'], "'svm'"),
    # issue 10: every value outside its declared range is refused before a kernel starts
    (['-p', 'seed', '1e26'], "'seed': expected an integer"),
    (['-p', 'seed', '4294967296'], "'seed': 4294967296 is outside [0, 4294967296)"),
    (['-p', 'data_scale', 'inf'], "'data_scale': inf is outside"),
    (['-p', 'rf_n_estimators', '0'], "'rf_n_estimators': 0 is outside"),
    (['-p', 'nn_learning_rate', '-1'], "'nn_learning_rate': -1.0 is outside"),
    (['-p', 'nn_dropout', '2'], "'nn_dropout': 2.0 is outside [0, 1)"),
    (['-p', 'n_bootstrap', '-5'], "'n_bootstrap': -5 is outside"),
    (['-p', 'target', 'foo'], 'leave target empty'),
    (['-p', 'run_dir', '/tmp/somewhere'], 'set by the runner'),
])
def test_bad_parameters_exit_2_before_any_kernel(tmp_path, args, named):
    start = time.perf_counter()
    done = mlops_nb('run', '--runs-dir', tmp_path/'runs', *args)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and 'Traceback' not in done.stderr
    assert not (tmp_path/'runs').exists()  # nothing created: no run, no kernel
    assert time.perf_counter() - start < 60


def test_unknown_parameter_suggests_the_closest(tmp_path):
    done = mlops_nb('run', '--runs-dir', tmp_path/'runs', '-p', 'nn_learning_rat', '0.1')
    assert done.returncode == 2 and "Did you mean 'nn_learning_rate'" in done.stderr


def test_data_error_inside_the_notebook_exits_1_and_keeps_the_notebook(tmp_path):
    done = mlops_nb('run', '--runs-dir', tmp_path/'runs', '--no-progress', '-p', 'dataset', churn_copy(tmp_path),
                    '-p', 'target', 'churn', '-p', 'models', 'linear')
    assert done.returncode == 1, done.stderr
    assert "DataError: target column 'churn' not found" in done.stderr and "Did you mean 'churned'" in done.stderr
    assert 'cell' in done.stderr and 'Traceback' not in done.stderr
    [run_dir] = list((tmp_path/'runs').iterdir())
    manifest = read_manifest(run_dir)
    assert manifest['status'] == 'failed' and manifest['error']['type'] == 'DataError'
    assert (run_dir/'train.ipynb').is_file()  # the executed notebook, with the traceback, is kept
    assert 'DataError' in (run_dir/'train.ipynb').read_text()


def test_killed_run_is_never_complete(tmp_path):
    runs = tmp_path/'runs'
    process = subprocess.Popen([MLOPS_NB, 'run', '--runs-dir', str(runs), '--no-progress', '-p', 'dataset', 'maintenance',
                                '-p', 'data_dir', str(tmp_path/'data'), *QUICK], start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:  # wait until the notebook has begun executing in a running run
            run_dirs = list(runs.iterdir()) if runs.is_dir() else []
            if run_dirs and (run_dirs[0]/'train.ipynb').is_file() and read_manifest(run_dirs[0])['status'] == 'running':
                break
            assert process.poll() is None, process.communicate()
            time.sleep(0.2)
        else: pytest.fail('the run did not start')
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None: os.killpg(process.pid, signal.SIGKILL)
    [killed] = list(runs.iterdir())
    assert read_manifest(killed)['status'] == 'running'  # never complete
    assert list_runs(runs).status.tolist() == ['incomplete']
    listing = mlops_nb('runs', '--runs-dir', runs)
    assert listing.returncode == 0 and 'incomplete' in listing.stdout
    # a later run in the same folder works
    done = mlops_nb('run', '--runs-dir', runs, '--no-progress', '-p', 'dataset', churn_copy(tmp_path),
                    '-p', 'target', 'churned', '-p', 'models', 'linear')
    assert done.returncode == 0, done.stderr
    assert sorted(list_runs(runs).status) == ['complete', 'incomplete']


def test_reproduce_identical_then_data_changed(tmp_path):
    data = churn_copy(tmp_path)
    runs = tmp_path/'runs'
    done = mlops_nb('run', '--runs-dir', runs, '--no-progress', '-p', 'dataset', data, '-p', 'target', 'churned', *QUICK)
    assert done.returncode == 0, done.stderr
    run_dir = Path(done.stdout.strip().splitlines()[-1])  # the last line is the run directory
    assert read_manifest(run_dir)['status'] == 'complete'

    again = mlops_nb('reproduce', run_dir.name, '--runs-dir', runs, '--no-progress')
    assert again.returncode == 0, again.stdout + again.stderr
    assert 'identical' in again.stdout
    reproduced = Path(again.stdout.strip().splitlines()[-1])
    assert read_manifest(reproduced)['reproduces'] == run_dir.name
    # two runs with the same parameters: the same metrics.json, byte for byte
    assert (reproduced/'metrics.json').read_bytes() == (run_dir/'metrics.json').read_bytes()
    for model in ('rf', 'nn'):
        assert (reproduced/'predictions'/f'{model}.parquet').read_bytes() == (run_dir/'predictions'/f'{model}.parquet').read_bytes()

    listing = mlops_nb('runs', '--runs-dir', runs)
    assert listing.returncode == 0 and listing.stdout.count('complete') == 2
    assert mlops_nb('compare', run_dir, reproduced).returncode == 0

    recorded = file_md5(data)
    data.write_text(data.read_text().replace('yes', 'no', 1))  # one label changes
    changed = mlops_nb('reproduce', run_dir, '--no-progress')
    assert changed.returncode == 1
    assert recorded in changed.stderr and file_md5(data) in changed.stderr and str(data) in changed.stderr
    assert len(list(runs.iterdir())) == 2  # nothing re-executed


def test_runs_listing_survives_broken_run_directories(tmp_path):
    runs = tmp_path/'runs'
    (runs/'20260101T000000-000000-aaaa').mkdir(parents=True)
    (runs/'20260101T000001-000000-bbbb').mkdir()
    (runs/'20260101T000001-000000-bbbb'/'manifest.json').write_text('{"status": "runn')
    done = mlops_nb('runs', '--runs-dir', runs)
    assert done.returncode == 0 and done.stdout.count('broken') == 2
    assert mlops_nb('runs', '--runs-dir', tmp_path/'none').returncode == 0
    wrong = mlops_nb('reproduce', '20260101T000000-000000-aaab', '--runs-dir', runs)
    assert wrong.returncode == 2 and 'Did you mean' in wrong.stderr


def test_data_make(tmp_path):
    done = mlops_nb('data', 'make', 'maintenance', '--out', tmp_path/'m.csv', '--seed', '3')
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path/'m.csv') and (tmp_path/'m.csv').stat().st_size > 0
    assert mlops_nb('data', 'make', 'maintenace', '--out', tmp_path/'x.csv').returncode == 2


def churn_linear_run(tmp_path) -> tuple[Path, Path]:
    "(data file, run directory) of a complete `mlops-nb run` of the linear model on a copy of churn.csv."
    data = churn_copy(tmp_path)
    done = mlops_nb('run', '--runs-dir', tmp_path/'runs', '--no-progress', '-p', 'dataset', data, '-p', 'target', 'churned',
                    '-p', 'models', 'linear')
    assert done.returncode == 0, done.stderr
    return data, Path(done.stdout.strip().splitlines()[-1])


def test_monitor_exit_codes(tmp_path):
    "`mlops-nb monitor`: 0 when the current data looks like the training data, 3 when it drifted."
    import pandas as pd
    data, run_dir = churn_linear_run(tmp_path)
    same = mlops_nb('monitor', run_dir, '--current', data, '--out-dir', tmp_path/'same')
    assert same.returncode == 0, same.stdout + same.stderr
    shifted = pd.read_csv(data)
    for column in ('monthly_charges', 'tenure_months', 'support_calls'): shifted[column] = shifted[column] * 3 + 50
    shifted.to_csv(tmp_path/'shifted.csv', index=False)
    drifted = mlops_nb('monitor', run_dir, '--current', tmp_path/'shifted.csv', '--out-dir', tmp_path/'drifted')
    assert drifted.returncode == 3, drifted.stdout + drifted.stderr
    assert Path(drifted.stdout.strip().splitlines()[-1]).is_file()  # the report


def test_monitor_reads_the_prediction_log_by_default(tmp_path):
    "Without `--current`, `mlops-nb monitor` reads what the server logged; no log yet is a clear error, exit 1."
    import pandas as pd
    from mlops_nb.serve import create_app
    from fastapi.testclient import TestClient
    data, run_dir = churn_linear_run(tmp_path)
    missing = mlops_nb('monitor', run_dir, '--out-dir', tmp_path/'none')
    assert missing.returncode == 1 and 'no prediction log' in missing.stderr, missing.stdout + missing.stderr
    log = run_dir/'prediction_log'/'linear.jsonl'
    app = create_app(run_dir/'models'/'linear', log_path=log)
    records = pd.read_csv(data).drop(columns=['churned'])
    records = records.astype(object).where(records.notna(), None).to_dict(orient='records')
    with TestClient(app) as client:
        assert client.post('/predict', json={'records': records}).status_code == 200
    assert len(log.read_text().splitlines()) == len(records)
    logged = mlops_nb('monitor', run_dir, '--model', 'linear', '--out-dir', tmp_path/'logged')
    assert logged.returncode == 0, logged.stdout + logged.stderr
    assert Path(logged.stdout.strip().splitlines()[-1]).is_file()


def test_monitor_checks_its_parameters_first_and_a_failed_check_leaves_nothing(tmp_path):
    "Issue 10: --drift-share outside (0, 1] exits 2 before a kernel starts; a check that fails in the notebook writes nothing."
    data, run_dir = churn_linear_run(tmp_path)
    start = time.perf_counter()
    wrong = mlops_nb('monitor', run_dir, '--current', data, '--drift-share', '5')
    assert wrong.returncode == 2 and "'drift_share': 5.0 is outside (0, 1]" in wrong.stderr, wrong.stderr
    assert time.perf_counter() - start < 30
    (tmp_path/'unrelated.csv').write_text('x,y\n1,2\n3,4\n')
    failed = mlops_nb('monitor', run_dir, '--current', tmp_path/'unrelated.csv')
    assert failed.returncode == 1 and 'nothing was written into the run' in failed.stderr, failed.stderr
    assert not (run_dir/'monitoring').exists() or not any((run_dir/'monitoring').iterdir())


def test_reproduce_never_runs_a_notebook_named_by_the_run(tmp_path):
    "Issue 10: reproduce runs the package's notebook, refuses a run made by another one, and checks stored files and models."
    import json
    data, run_dir = churn_linear_run(tmp_path)
    marker = tmp_path/'pwned'
    evil = tmp_path/'evil.ipynb'
    evil.write_text(json.dumps({'cells': [{'cell_type': 'code', 'metadata': {'tags': ['parameters']}, 'source': 'run_dir = ""',
                                           'outputs': [], 'execution_count': None},
                                          {'cell_type': 'code', 'metadata': {}, 'source': f'open({str(marker)!r}, "w").write("x")',
                                           'outputs': [], 'execution_count': None}],
                                'metadata': {'kernelspec': {'name': 'python3', 'language': 'python', 'display_name': 'Python 3'}},
                                'nbformat': 4, 'nbformat_minor': 5}))
    manifest = read_json(run_dir/'manifest.json')
    (run_dir/'manifest.json').write_text(json.dumps(manifest | {'notebook': str(evil)}))
    again = mlops_nb('reproduce', run_dir, '--no-progress')
    assert again.returncode == 0 and 'identical' in again.stdout, again.stdout + again.stderr
    assert not marker.exists()  # the notebook path in the run was never used
    (run_dir/'manifest.json').write_text(json.dumps(manifest | {'notebook': str(evil), 'notebook_md5': file_md5(evil)}))
    refused = mlops_nb('reproduce', run_dir, '--no-progress')
    assert refused.returncode == 1 and file_md5(evil) in refused.stderr and 'git commit' in refused.stderr, refused.stderr
    assert not marker.exists()

    (run_dir/'manifest.json').write_text(json.dumps(manifest))
    skops_file = next((run_dir/'models'/'linear').glob('*.skops'))
    skops_file.write_bytes(skops_file.read_bytes()[:-10])  # a corrupted model file
    corrupted = mlops_nb('reproduce', run_dir, '--no-progress')
    assert corrupted.returncode == 1 and skops_file.name in corrupted.stderr, corrupted.stderr
    (run_dir/'manifest.json').write_text(json.dumps(manifest | {'files': {**manifest['files'],
                                         skops_file.relative_to(run_dir).as_posix(): file_md5(skops_file)}}))
    still = mlops_nb('reproduce', run_dir, '--no-progress')  # the manifest was doctored too: loading the model still refuses it
    assert still.returncode == 1 and skops_file.name in still.stderr and 'md5' in still.stderr, still.stderr
