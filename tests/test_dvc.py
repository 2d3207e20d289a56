"""DVC with mlops_nb, as a user drives it (issue 12), in a temporary git repository with `dvc init`:
a data file added with `dvc add` is recognised by a run; when it changes, `mlops-nb reproduce` reads
the run's version from the DVC cache (metrics identical) or names the command that brings it back; the
project's dvc.yaml + params.yaml run both case studies, a second `dvc repro` runs nothing, a changed
training parameter re-runs training only, and DVC's metrics, plots, params and experiments work."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_nb.core import file_md5, project_root, read_json
from mlops_nb.runs import RunDir, list_runs, read_manifest, read_metrics

BIN = Path(sys.executable).parent
ROOT = project_root()
pytestmark = pytest.mark.skipif(not (BIN/'dvc').exists(), reason='the dvc extra is not installed (pip install -e .[dev])')
QUICK = ['-p', 'models', 'rf', '-p', 'rf_n_estimators', '10', '-p', 'n_bootstrap', '0']
SMALL_PARAMS = {'data': {'seed': 0, 'scale': 0.05},
                'train': {'seed': 0, 'models': 'rf,nn', 'n_bootstrap': 0, 'rf_n_estimators': 5, 'rf_max_depth': 0,
                          'nn_hidden_sizes': '8', 'nn_max_epochs': 2}}


def environment() -> dict:
    return {**os.environ, 'PATH': f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", 'DVC_NO_ANALYTICS': '1',
            'GIT_AUTHOR_NAME': 'test', 'GIT_AUTHOR_EMAIL': 'test@example.invalid',
            'GIT_COMMITTER_NAME': 'test', 'GIT_COMMITTER_EMAIL': 'test@example.invalid'}


def sh(repo: Path, *args, check=True, timeout=600) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=repo, capture_output=True, text=True, env=environment(), timeout=timeout)
    if check: assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


def new_repository(path: Path) -> Path:
    path.mkdir()
    sh(path, 'git', 'init', '-q')
    sh(path, 'dvc', 'init', '-q')
    return path


def test_dvc_add_then_reproduce_from_the_dvc_cache(tmp_path):
    repo = new_repository(tmp_path/'repo')
    data = repo/'data'/'churn.csv'
    data.parent.mkdir()
    shutil.copyfile(ROOT/'data'/'samples'/'churn.csv', data)
    sh(repo, 'dvc', 'add', 'data/churn.csv')
    sh(repo, 'git', 'add', '-A'); sh(repo, 'git', 'commit', '-qm', 'churn v1')
    run_dir = Path(sh(repo, 'mlops-nb', 'run', '--no-progress', '--runs-dir', 'runs', '-p', 'dataset', data,
                      '-p', 'target', 'churned', *QUICK).stdout.strip().splitlines()[-1])
    recorded = read_manifest(run_dir)['data']
    v1 = file_md5(data)
    assert recorded['md5'] == v1 and recorded['dvc']['agrees'] is True
    assert recorded['dvc']['file'] == str((repo/'data'/'churn.csv.dvc').resolve())
    assert recorded['dvc']['file_md5'] == file_md5(repo/'data'/'churn.csv.dvc')

    with open(data, 'a') as f: f.write(data.read_text().splitlines()[1] + '\n')  # the data changes...
    sh(repo, 'dvc', 'add', 'data/churn.csv')  # ...and the new version is added
    sh(repo, 'git', 'add', '-A'); sh(repo, 'git', 'commit', '-qm', 'churn v2')
    v2 = file_md5(data)
    done = sh(repo, 'mlops-nb', 'reproduce', run_dir, '--no-progress')
    assert 'DVC cache' in done.stderr and done.stdout.strip().splitlines()[-2].startswith('identical')
    again = RunDir(done.stdout.strip().splitlines()[-1])
    assert read_metrics(again) == read_metrics(run_dir)
    assert read_manifest(again)['data']['path'] == str(data.resolve()) and read_manifest(again)['data']['md5'] == v1
    assert read_manifest(again)['data_copy']['md5'] == v1 and 'DVC cache' in read_manifest(again)['data_copy']['from']
    assert file_md5(data) == v2  # the user's file was never touched

    shutil.rmtree(repo/'.dvc'/'cache')  # the old version is no longer in the cache
    done = sh(repo, 'mlops-nb', 'reproduce', run_dir, '--no-progress', check=False)
    first_commit = sh(repo, 'git', 'rev-parse', 'HEAD~1').stdout.strip()
    assert done.returncode == 1 and v1 in done.stderr and v2 in done.stderr
    assert f"git checkout {first_commit[:12]} -- churn.csv.dvc && dvc checkout churn.csv.dvc" in done.stderr


def test_a_file_changed_since_dvc_add_is_a_finding(tmp_path):
    repo = new_repository(tmp_path/'repo')
    data = repo/'churn.csv'
    shutil.copyfile(ROOT/'data'/'samples'/'churn.csv', data)
    sh(repo, 'dvc', 'add', 'churn.csv')
    with open(data, 'a') as f: f.write(data.read_text().splitlines()[1] + '\n')  # edited without `dvc add`
    run_dir = Path(sh(repo, 'mlops-nb', 'run', '--no-progress', '--runs-dir', 'runs', '-p', 'dataset', data,
                      '-p', 'target', 'churned', '-p', 'models', 'linear', '-p', 'n_bootstrap', '0').stdout.strip().splitlines()[-1])
    assert read_manifest(run_dir)['data']['dvc']['agrees'] is False
    assert 'changed since `dvc add`' in RunDir(run_dir).executed_notebook('train.ipynb').read_text()


def copy_project(repo: Path) -> None:
    "The files the DVC pipeline needs, as a user's clone has them."
    for name in ('dvc.yaml', '.dvcignore'): shutil.copyfile(ROOT/name, repo/name)
    (repo/'nbs'/'pipelines').mkdir(parents=True)
    shutil.copyfile(ROOT/'nbs'/'pipelines'/'train.ipynb', repo/'nbs'/'pipelines'/'train.ipynb')
    shutil.copytree(ROOT/'mlops_nb', repo/'mlops_nb', ignore=shutil.ignore_patterns('__pycache__'))
    (repo/'params.yaml').write_text(yaml.safe_dump(SMALL_PARAMS))


def ran_stages(output: str) -> list[str]:
    return sorted(line.split("'")[1] for line in output.splitlines() if line.startswith('Running stage'))


def test_the_dvc_pipeline(tmp_path):
    project = yaml.safe_load((ROOT/'params.yaml').read_text())
    assert set(project) == set(SMALL_PARAMS) and set(project['train']) == set(SMALL_PARAMS['train'])
    repo = new_repository(tmp_path/'repo')
    copy_project(repo)
    sh(repo, 'git', 'add', '-A'); sh(repo, 'git', 'commit', '-qm', 'pipeline')
    first = sh(repo, 'dvc', 'repro')
    assert ran_stages(first.stdout) == ['data@fraud', 'data@maintenance', 'train@fraud', 'train@maintenance']
    assert ran_stages(sh(repo, 'dvc', 'repro').stdout) == []  # nothing changed: nothing runs
    listing = list_runs(repo/'runs')
    assert list(listing.run_id) == ['dvc/fraud', 'dvc/maintenance'] and set(listing.status) == {'complete'}
    assert read_manifest(repo/'runs'/'dvc'/'fraud')['params']['rf_n_estimators'] == 5  # from params.yaml
    shown = json.loads(sh(repo, 'dvc', 'metrics', 'show', '--json').stdout)
    assert json.dumps(shown).count('roc_auc') >= 4  # both models of both runs
    sh(repo, 'git', 'add', '-A'); sh(repo, 'git', 'commit', '-qm', 'first results')

    changed = yaml.safe_load((repo/'params.yaml').read_text())
    changed['train']['rf_n_estimators'] = 6
    (repo/'params.yaml').write_text(yaml.safe_dump(changed))
    assert 'train.rf_n_estimators' in sh(repo, 'dvc', 'params', 'diff').stdout
    assert ran_stages(sh(repo, 'dvc', 'repro').stdout) == ['train@fraud', 'train@maintenance']  # training only
    assert 'rf.roc_auc' in sh(repo, 'dvc', 'metrics', 'diff', '--all').stdout
    sh(repo, 'dvc', 'plots', 'show', '-o', tmp_path/'plots')
    assert (tmp_path/'plots'/'index.html').read_text().count('<img') >= 10

    sh(repo, 'git', 'add', '-A'); sh(repo, 'git', 'commit', '-qm', 'more trees')
    done = sh(repo, 'dvc', 'exp', 'run', '-S', 'train.seed=3', 'train@maintenance')
    assert ran_stages(done.stdout) == ['train@maintenance']
    assert read_manifest(repo/'runs'/'dvc'/'maintenance')['params']['seed'] == 3
    assert 'train.seed' in sh(repo, 'dvc', 'exp', 'show', '--csv').stdout.splitlines()[0]  # the experiment table

    done = sh(repo, 'mlops-nb', 'reproduce', 'dvc/maintenance', '--runs-dir', 'runs', '--no-progress')
    assert 'identical' in done.stdout  # a run in a named directory is a normal run
