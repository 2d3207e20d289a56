"""MLflow with mlops_nb, as a user drives it (issue 12), against a SQLite store: a run mirrored by
`mlops-nb run --tracking-uri`, read back with MlflowClient, every logged model loaded with
`mlflow.pyfunc.load_model` and predicting what `models.load_model` predicts, no pickle anywhere in the
store, `mlflow sync` idempotent, the promotion gate (better moves champion, worse exits 1, --force,
--rollback), `retrain`, and the registered champion served by `mlops-nb serve` and by `mlflow models
serve` with the same probabilities. The core install imports neither MLflow nor DVC."""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mlops_nb.core import project_root
from mlops_nb.prometheus import free_port
from mlops_nb.runs import RunDir, read_manifest, read_metrics

BIN = Path(sys.executable).parent
CHURN = project_root()/'data'/'samples'/'churn.csv'
QUICK = ['-p', 'target', 'churned', '-p', 'n_bootstrap', '0', '-p', 'nn_max_epochs', '3', '-p', 'nn_hidden_sizes', '16']


def test_the_core_install_imports_neither_mlflow_nor_dvc():
    code = ('import sys, mlops_nb.cli, mlops_nb.training, mlops_nb.serve, mlops_nb.runs, mlops_nb.versioning, mlops_nb.pipeline; '
            'assert "mlflow" not in sys.modules and "dvc" not in sys.modules, sorted(m for m in sys.modules if "mlflow" in m or "dvc" in m)')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


mlflow = pytest.importorskip('mlflow', reason='the mlflow extra is not installed (pip install -e .[dev])')
from mlflow import MlflowClient  # noqa: E402

from mlops_nb.models import load_model, read_model_card  # noqa: E402


def mlops_nb(*args, store=None, check=True, timeout=600):
    env = {**os.environ, 'MLFLOW_TRACKING_URI': store} if store else {k: v for k, v in os.environ.items() if k != 'MLFLOW_TRACKING_URI'}
    done = subprocess.run([str(BIN/'mlops-nb'), *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)
    if check: assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope='module')
def tracked(tmp_path_factory):
    "A SQLite store, a data file, and a run with a random forest and the network mirrored by `mlops-nb run`."
    tmp = tmp_path_factory.mktemp('mlflow')
    store = f"sqlite:///{tmp/'mlflow.db'}"
    data = tmp/'churn.csv'
    shutil.copyfile(CHURN, data)
    done = mlops_nb('run', '--no-progress', '--runs-dir', tmp/'runs', '--tracking-uri', store, '-p', 'dataset', data,
                    '-p', 'models', 'rf,nn', '-p', 'rf_n_estimators', '30', *QUICK)
    assert 'mirrored as MLflow run' in done.stderr
    return {'tmp': tmp, 'store': store, 'data': data, 'run': RunDir(done.stdout.strip().splitlines()[-1])}


def mirrored_run(store: str, run: RunDir):
    client = MlflowClient(tracking_uri=store)
    [found] = client.search_runs([client.get_experiment_by_name('mlops_nb').experiment_id],
                                 filter_string=f"tags.`mlops_nb.run_id` = '{run.id}'")
    return client, found


def test_a_run_is_mirrored_and_reads_back(tracked):
    run = tracked['run']
    client, found = mirrored_run(tracked['store'], run)
    params = json.loads(run.params.read_text())
    assert found.data.params == {name: str(value) for name, value in params.items()}
    metrics = read_metrics(run)
    assert found.data.metrics['rf.roc_auc'] == metrics['rf']['roc_auc']
    assert found.data.metrics['nn.log_loss'] == metrics['nn']['log_loss']
    manifest = read_manifest(run)
    tags = found.data.tags
    assert tags['mlops_nb.run_id'] == run.id and tags['mlops_nb.data_md5'] == manifest['data']['md5']
    assert tags['mlops_nb.dataset'] == str(tracked['data']) and tags['mlops_nb.task'] == 'binary'
    assert tags['mlops_nb.git_dirty'] in ('True', 'False') and 'mlops_nb.git_commit' in tags
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {'plots', 'report.html', 'train.ipynb', 'reference_profile.json', 'mlops_nb'} <= artifacts
    assert {a.path for a in client.list_artifacts(found.info.run_id, 'plots')} >= {'plots/roc.png'}


def test_each_logged_model_loads_and_predicts_like_load_model(tracked):
    run = tracked['run']
    _, found = mirrored_run(tracked['store'], run)
    with _tracking(tracked['store']):
        for name in ('rf', 'nn'):
            uri = found.data.tags[f'mlops_nb.model_uri.{name}']
            info = mlflow.models.get_model_info(uri)
            assert info.signature is not None
            assert info.signature.inputs.input_names() == read_model_card(run.model(name))['input_schema']['columns']
            example = mlflow.models.Model.load(uri).load_input_example(mlflow.artifacts.download_artifacts(uri))
            assert len(example) == 5 and list(example.columns) == info.signature.inputs.input_names()  # real training rows
            model = mlflow.pyfunc.load_model(uri)
            np.testing.assert_array_equal(model.predict(example), load_model(run.model(name)).predict_proba(example))
        flavors = {name: mlflow.models.get_model_info(found.data.tags[f'mlops_nb.model_uri.{name}']).flavors for name in ('rf', 'nn')}
    assert flavors['rf']['sklearn']['serialization_format'] == 'skops' and flavors['rf']['sklearn']['skops_trusted_types']
    assert 'sklearn' not in flavors['nn'] and flavors['nn']['python_function'].get('model_code_path')  # a pyfunc from code


def _tracking(store):
    from mlops_nb.tracking import tracking_store
    return tracking_store(store)


def is_pickle(data: bytes) -> bool:
    return len(data) > 1 and data[0] == 0x80 and 2 <= data[1] <= 5


def test_no_file_in_the_store_is_a_pickle(tracked):
    files = [p for p in tracked['tmp'].rglob('*') if p.is_file() and 'mlartifacts' in p.parts or p.suffix == '.db']
    assert any(p.suffix == '.skops' for p in files) and any(p.suffix == '.safetensors' for p in files)
    for path in files:
        assert path.suffix not in ('.pkl', '.pickle', '.joblib'), path
        head = path.read_bytes()[:2]
        assert not is_pickle(head), path
        if zipfile.is_zipfile(path) and path.suffix == '.skops':
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    assert not member.endswith(('.pkl', '.pickle')) and not is_pickle(archive.read(member)[:2]), (path, member)


def test_sync_is_idempotent(tracked):
    client = MlflowClient(tracking_uri=tracked['store'])
    experiment = client.get_experiment_by_name('mlops_nb').experiment_id
    before = len(client.search_runs([experiment]))
    first = mlops_nb('mlflow', 'sync', '--runs-dir', tracked['tmp']/'runs', '--tracking-uri', tracked['store'])
    second = mlops_nb('mlflow', 'sync', '--runs-dir', tracked['tmp']/'runs', '--tracking-uri', tracked['store'])
    assert 'already mirrored' in first.stdout and 'already mirrored' in second.stdout and ' mirrored' not in second.stdout.replace('already mirrored', '')
    assert len(client.search_runs([experiment])) == before


def aliases(store: str, name: str = 'mlops_nb-churn') -> dict:
    return dict(MlflowClient(tracking_uri=store, registry_uri=store).get_registered_model(name).aliases)


def test_promotion_gate_force_and_rollback(tracked):
    store, tmp, good = tracked['store'], tracked['tmp'], tracked['run']
    weak = RunDir(mlops_nb('run', '--no-progress', '--runs-dir', tmp/'runs', '-p', 'dataset', tracked['data'], '-p', 'models', 'rf',
                           '-p', 'rf_n_estimators', '1', '-p', 'rf_max_depth', '1', '-p', 'seed', '1', *QUICK).stdout.strip().splitlines()[-1])
    assert 'champion' in mlops_nb('promote', weak, '--tracking-uri', store).stdout  # no champion yet: it becomes one
    weak_version = aliases(store)['champion']
    done = mlops_nb('promote', good, '--tracking-uri', store, '--n-bootstrap', '50')  # better: moves
    assert 'promoted' in done.stdout and done.stdout.count('roc_auc') == 2 and done.stdout.count('[') == 2  # both, with intervals
    good_version = aliases(store)['champion']
    assert good_version != weak_version and aliases(store)['previous'] == weak_version
    worse = mlops_nb('promote', weak, '--tracking-uri', store, '--n-bootstrap', '50', check=False)  # worse: exit 1
    assert worse.returncode == 1 and 'not promoted' in worse.stdout and worse.stdout.count('roc_auc') == 2
    assert aliases(store)['champion'] == good_version and aliases(store)['challenger'] == weak_version
    assert 'by --force' in mlops_nb('promote', weak, '--force', '--tracking-uri', store, '--n-bootstrap', '0').stdout
    assert aliases(store)['champion'] == weak_version and aliases(store)['previous'] == good_version
    mlops_nb('promote', '--rollback', '--tracking-uri', store)
    assert aliases(store)['champion'] == good_version and aliases(store)['previous'] == weak_version


def test_the_champion_is_served_alike_by_mlops_nb_and_mlflow(tracked):
    from fastapi.testclient import TestClient
    from mlops_nb.serve import prepare_run
    store, run = tracked['store'], tracked['run']
    mlops_nb('promote', run, '--tracking-uri', store, '--n-bootstrap', '0', check=False)
    frame = __import__('pandas').read_csv(tracked['data']).head(8)
    columns = read_model_card(run.model('rf'))['input_schema']['columns']
    rows = frame[columns]
    uri = 'models:/mlops_nb-churn@champion'
    os.environ['MLFLOW_TRACKING_URI'] = store
    try: app = prepare_run(uri)
    finally: os.environ.pop('MLFLOW_TRACKING_URI')
    ours = TestClient(app).post('/predict', json={'records': json.loads(rows.to_json(orient='records'))}).json()
    port = free_port()
    server = subprocess.Popen([str(BIN/'mlflow'), 'models', 'serve', '-m', uri, '--env-manager', 'local', '-h', '127.0.0.1', '-p', str(port)],
                              env={**os.environ, 'MLFLOW_TRACKING_URI': store, 'PATH': f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        theirs = None
        for _ in range(120):
            try:
                request = urllib.request.Request(f'http://127.0.0.1:{port}/invocations', method='POST',
                                                 data=json.dumps({'dataframe_split': json.loads(rows.to_json(orient='split', index=False))}).encode(),
                                                 headers={'Content-Type': 'application/json'})
                theirs = json.loads(urllib.request.urlopen(request, timeout=10).read())
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                time.sleep(0.5)
        assert theirs is not None, 'mlflow models serve did not answer within 60 s'
    finally:
        server.terminate(); server.wait(30)
    classes = ours['classes']
    ours_matrix = [[row[str(c)] for c in classes] for row in ours['probabilities']]
    np.testing.assert_array_equal(np.asarray(theirs['predictions']), np.asarray(ours_matrix))


def test_retrain_on_new_data_goes_through_the_gate(tracked):
    store, tmp, run = tracked['store'], tracked['tmp'], tracked['run']
    new_data = tmp/'churn_new.csv'
    lines = tracked['data'].read_text().splitlines()
    new_data.write_text('\n'.join(lines[:1] + lines[1:][::-1]) + '\n')  # the same rows, another order: new data
    done = mlops_nb('retrain', run, '--data', new_data, '--tracking-uri', store, '--no-progress', check=False)
    assert done.returncode in (0, 1), done.stderr
    assert 'retrained: ' in done.stdout and done.stdout.count('roc_auc') == 2
    new = RunDir(done.stdout.split('retrained: ')[1].splitlines()[0])
    manifest = read_manifest(new)
    assert manifest['retrains'] == run.id and manifest['registered_model'] == 'mlops_nb-churn'
    assert manifest['data']['path'] == str(new_data.resolve())
    assert aliases(store)['challenger'] != aliases(store).get('champion') or done.returncode == 0
