"""The train notebook end to end through papermill, at small sizes: every case study and kind of task
gives a complete run with metrics for every model asked for; the plain `papermill` command line works too."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_nb.core import file_md5, project_root, read_json
from mlops_nb.training import run_pipeline, train_notebook
from mlops_nb.runs import list_runs, load_predictions, read_manifest

SAMPLES = project_root()/'data'/'samples'
# small and quick: few trees, few epochs, no bootstrap intervals
QUICK = {'rf_n_estimators': 30, 'nn_max_epochs': 5, 'nn_hidden_sizes': '32,16', 'n_bootstrap': 0}


def check_complete_run(run_dir: Path, models: list, task: str):
    "Everything DESIGN.md promises in a run directory is there, and the run is complete."
    manifest = read_manifest(run_dir)
    assert manifest['status'] == 'complete', manifest.get('error')
    assert manifest['task'] == task
    metrics = read_json(run_dir/'metrics.json')
    assert sorted(metrics) == sorted(models)
    for name in models:
        assert metrics[name], f'no metrics for {name}'
        assert (run_dir/'models'/name/'model_card.json').is_file()
        card = read_json(run_dir/'models'/name/'model_card.json')
        assert card['data_md5'] == manifest['data']['md5'] and card['metrics'] == metrics[name]
        assert len(load_predictions(run_dir, name)) == manifest['split']['test_rows']
    data = manifest['data']
    assert data['md5'] == file_md5(data['path']) and data['rows'] > 0 and data['columns']
    assert manifest['git'].keys() == {'commit', 'dirty'} and manifest['environment']['packages']['numpy']
    assert manifest['ended'] and manifest['duration_s'] > 0
    assert (run_dir/'train.ipynb').is_file() and (run_dir/'report.html').stat().st_size > 10_000
    assert (run_dir/'reference_profile.json').is_file()
    assert list((run_dir/'plots').glob('*.png'))
    assert not list(run_dir.rglob('*.pkl')) and not list(run_dir.rglob('*.pickle'))
    return metrics


CASES = [  # id, parameters, models, task
    ('fraud', {'dataset': 'fraud', 'data_scale': 0.5}, ['rf', 'nn'], 'binary'),
    ('maintenance', {'dataset': 'maintenance', 'data_scale': 0.3, 'models': 'rf,nn,linear,dummy'},
     ['rf', 'nn', 'linear', 'dummy'], 'binary'),
    ('categorical-missing-csv', {'dataset': str(SAMPLES/'churn.csv'), 'target': 'churned'}, ['rf', 'nn'], 'binary'),
    ('multiclass-csv', {'dataset': str(SAMPLES/'species.csv'), 'target': 'species'}, ['rf', 'nn'], 'multiclass'),
    ('regression-csv', {'dataset': str(SAMPLES/'house_prices.csv'), 'target': 'price_k'}, ['rf', 'nn'], 'regression'),
]


@pytest.mark.parametrize('params,models,task', [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_pipeline_end_to_end(tmp_path, params, models, task):
    run_dir = run_pipeline({**QUICK, **params, 'data_dir': str(tmp_path/'data')}, runs_dir=tmp_path/'runs', progress=False).path
    assert run_dir.parent == (tmp_path/'runs').resolve()
    metrics = check_complete_run(run_dir, models, task)
    headline = {'binary': 'roc_auc', 'multiclass': 'macro_f1', 'regression': 'rmse'}[task]
    assert all(headline in values for values in metrics.values())
    if params['dataset'] == 'fraud':
        assert 'card_precision_at_100' in metrics['rf']
        assert read_manifest(run_dir)['data']['path'].endswith('.parquet')  # the generated data, written as a file
    listing = list_runs(tmp_path/'runs')
    assert listing.status.tolist() == ['complete'] and listing.metric.item() == headline


def test_plain_papermill_command_line(tmp_path):
    "Without mlops-nb: papermill runs the notebook, which creates and completes its own run."
    papermill = Path(sys.executable).parent/'papermill'
    out = tmp_path/'executed.ipynb'
    args = [str(papermill), str(train_notebook()), str(out), '--no-progress-bar', '-k', 'python3',
            '-p', 'dataset', str(SAMPLES/'species.csv'), '-p', 'target', 'species', '-p', 'runs_dir', str(tmp_path/'runs')]
    for name, value in QUICK.items(): args += ['-p', name, str(value)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [run_dir] = list((tmp_path/'runs').iterdir())
    manifest = read_manifest(run_dir)
    assert manifest['status'] == 'complete' and manifest['task'] == 'multiclass'
    assert sorted(read_json(run_dir/'metrics.json')) == ['nn', 'rf']
    assert read_json(run_dir/'params.json')['target'] == 'species'
    assert out.is_file() and 'complete' in json.dumps(json.loads(out.read_text())['cells'][-1]['outputs'])
    assert manifest['files']['metrics.json'] == file_md5(run_dir/'metrics.json')  # completion recorded every file


def test_default_run_from_the_command_line(tmp_path):
    "`mlops-nb run` with the default parameters: fraud at the default size, rf and nn; the forest's ROC AUC is above 0.8."
    mlops_nb = Path(sys.executable).parent/'mlops-nb'
    # folders outside the project (the defaults are the project's runs/ and data/); no model parameter changed
    done = subprocess.run([str(mlops_nb), 'run', '--no-progress', '--runs-dir', 'runs', '-p', 'data_dir', str(tmp_path/'data')],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    assert run_dir.parent.resolve() == (tmp_path/'runs').resolve()
    metrics = check_complete_run(run_dir, ['rf', 'nn'], 'binary')
    assert read_json(run_dir/'params.json')['dataset'] == 'fraud'
    assert metrics['rf']['roc_auc'] > 0.8, metrics['rf']
