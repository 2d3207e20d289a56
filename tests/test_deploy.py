"""`mlops-nb package`: the build context, its Dockerfile read statically, and the packaged server started from a
fresh virtual environment made from the context's requirements, exactly as the Dockerfile's ENTRYPOINT and CMD
start it (no container engine here). Also the Kubernetes probes against that server.

The venv is created without pip (`python -m venv --without-pip`, as the Dockerfile does) and filled by this
environment's pip (`pip --python VENV install --no-deps -r requirements.txt`): the same command as the
Dockerfile's, plus `--no-compile` (no .pyc files: the step that costs most and changes nothing the test checks).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_nb import cli
from mlops_nb.core import atomic_write_json, file_md5, project_root
from mlops_nb.data import feature_columns, infer_schema
from mlops_nb.deploy import (APP_DIR, DEFAULT_PORT, DEPLOYMENT_FILE, HOME_IN_IMAGE, LOG_DIR_VARIABLE, MODEL_DIR, USER_ID,
                             dockerfile_stages, package, prediction_log_path)
from mlops_nb.models import load_model, make_model, save_model
from mlops_nb.monitor import reference_profile
from mlops_nb.prometheus import free_port
from mlops_nb.runs import RunDir, create_run, mark_complete, write_metrics

ROOT = project_root()
COMPILERS = ('gcc', 'g++', 'clang', 'build-essential', 'make ', 'cmake', 'apt-get install', 'apk add')


def machine_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    "Numeric, categorical and date columns, a binary target."
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        'Type': rng.choice(['L', 'M', 'H'], n, p=[0.6, 0.3, 0.1]),
        'Air temperature [K]': rng.normal(300, 2, n).round(1),
        'Torque [Nm]': rng.normal(40, 10, n).round(1),
        'Tool wear [min]': rng.integers(0, 250, n),
        'When': (pd.Timestamp('2018-04-01') + pd.to_timedelta(rng.integers(0, 90 * 86400, n), unit='s')).astype(str)})
    frame['failure'] = (((frame['Torque [Nm]'] > 50) & (frame['Tool wear [min]'] > 120)) | (rng.random(n) < 0.05)).astype(int)
    return frame


def complete_run(runs_dir: Path, names=('rf',)) -> RunDir:
    "A complete run with the given models (small), metrics and a reference profile."
    table = machine_table()
    schema = infer_schema(table, target='failure')
    features = feature_columns(schema)
    run = create_run({'dataset': 'machines', 'seed': 0}, runs_dir=runs_dir)
    settings = {'rf': dict(n_estimators=20, n_jobs=1), 'nn': dict(max_epochs=3), 'linear': {}}
    for name in names:
        model = make_model(name, 'binary', schema, seed=0, **settings[name]).fit(table[features], table['failure'])
        save_model(model, run.model(name), card={'name': name, 'task': 'binary', 'data_md5': 'b' * 32, 'schema': schema})
    write_metrics(run, {name: {'roc_auc': 0.8 + 0.01 * i} for i, name in enumerate(names)})
    atomic_write_json(run.reference_profile, reference_profile(table[features], schema))
    mark_complete(run)
    return run


@pytest.fixture(scope='module')
def forest_package(tmp_path_factory):
    root = tmp_path_factory.mktemp('forest')
    run = complete_run(root / 'runs', names=('rf', 'linear'))
    return run, package(run, root / 'package', model='rf')


def records(n: int = 3) -> list[dict]:
    table = machine_table(n, seed=5)
    return [{k: (None if pd.isna(v) else v.item() if hasattr(v, 'item') else v) for k, v in row.items() if k != 'failure'}
            for row in table.to_dict('records')]


# ---------------------------------------------------------------- the context and its Dockerfile, statically

def final_stage(context: Path) -> list[tuple[str, str]]:
    return dockerfile_stages((context / 'Dockerfile').read_text())[-1]


def test_context_holds_the_model_the_code_and_pinned_requirements(forest_package):
    run, context = forest_package
    model_files = {p.name: file_md5(p) for p in run.model('rf').iterdir()}
    assert {p.name: file_md5(p) for p in (context / MODEL_DIR).iterdir()} == model_files
    deployment = json.loads((context / DEPLOYMENT_FILE).read_text())
    assert (deployment['run_id'], deployment['model'], deployment['chosen'], deployment['torch']) == (run.id, 'rf', 'chosen by name', None)
    requirements = [line for line in (context / 'requirements.txt').read_text().splitlines() if not line.startswith('#')]
    assert requirements and all('==' in line for line in requirements)
    names = {line.split('==')[0] for line in requirements}
    assert {'scikit-learn', 'fastapi', 'uvicorn', 'skops', 'starlette', 'pydantic'} <= names
    # no training, notebook or PyTorch stack; matplotlib stays (the server's card precision@k comes from evaluate, which imports it)
    assert not names & {'torch', 'papermill', 'jupyterlab', 'nbconvert', 'ipykernel'}
    assert (context / APP_DIR / 'mlops_nb' / 'deploy.py').is_file() and (context / APP_DIR / 'entrypoint.py').is_file()


def check_dockerfile(text: str) -> dict:
    "The checks every image of the project passes; the final stage's instructions by keyword."
    stages = dockerfile_stages(text)
    final = stages[-1]
    by_keyword = {}
    for keyword, arguments in final: by_keyword.setdefault(keyword, []).append(arguments)
    user = by_keyword['USER'][-1].split(':')[0]
    assert user not in ('root', '0'), f'the final stage runs as {user}'
    assert by_keyword.get('HEALTHCHECK') and not by_keyword['HEALTHCHECK'][-1].upper().startswith('NONE')
    installs = ' '.join(by_keyword.get('RUN', [])).lower()
    assert not any(word in installs for word in COMPILERS), f'the final stage installs build tools: {installs}'
    assert by_keyword['FROM'][0].split()[0].endswith(('-slim', '-slim-bookworm')), 'the final base image is not a slim image (compilers)'
    return {'stages': stages, **by_keyword}


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck_and_no_build_tools(forest_package):
    run, context = forest_package
    found = check_dockerfile((context / 'Dockerfile').read_text())
    assert len(found['stages']) == 2 and found['stages'][0][0][1].endswith(' AS build')
    assert found['USER'] == [f'{USER_ID}:{USER_ID}']
    assert found['EXPOSE'] == [str(DEFAULT_PORT)]
    assert json.loads(found['ENTRYPOINT'][0])[0] == 'python' and json.loads(found['CMD'][0]) == ['serve']
    assert any(copy.startswith('--from=build /opt/venv') for copy in found['COPY'])
    build_runs = ' '.join(arguments for keyword, arguments in found['stages'][0] if keyword == 'RUN')
    assert '--only-binary=:all:' in build_runs and '--no-deps' in build_runs and 'torch' not in build_runs


def test_the_repository_dev_image_passes_the_same_checks():
    check_dockerfile((ROOT / 'Dockerfile').read_text())


def test_a_network_model_gets_cpu_torch_pinned_at_the_installed_release(tmp_path):
    run = complete_run(tmp_path / 'runs', names=('nn',))
    context = package(run, tmp_path / 'package')
    pins = dict(line.split('==') for line in (context / 'requirements.txt').read_text().splitlines() if '==' in line)
    assert pins['torch'] == '2.13.0' and {'sympy', 'filelock', 'networkx'} <= set(pins)
    build = ' '.join(arguments for keyword, arguments in dockerfile_stages((context / 'Dockerfile').read_text())[0] if keyword == 'RUN')
    assert '--index-url https://download.pytorch.org/whl/cpu torch==2.13.0' in build
    check_dockerfile((context / 'Dockerfile').read_text())


def test_cli_package_prints_the_folder_and_refuses_bad_input(tmp_path, forest_package):
    run, _ = forest_package
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(['package', str(run), '--out', str(tmp_path / 'ctx'), '--model', 'linear'])
    assert code == 0 and out.getvalue().strip().splitlines()[-1] == str(tmp_path / 'ctx'), err.getvalue()
    assert json.loads((tmp_path / 'ctx' / DEPLOYMENT_FILE).read_text())['model'] == 'linear'
    with contextlib.redirect_stderr(err): assert cli.main(['package', str(run), '--out', str(tmp_path / 'x'), '--model', 'nm']) == 2
    assert "model 'nm' is not in run" in err.getvalue()
    assert not (tmp_path / 'x').exists()


# ---------------------------------------------------------------- the packaged server from a fresh venv

def fresh_venv(context: Path, venv: Path) -> float:
    "A venv with the context's requirements only, made as the Dockerfile makes it; the seconds it took."
    start = time.perf_counter()
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    subprocess.run([sys.executable, '-m', 'pip', '--python', str(venv / 'bin' / 'python'), 'install', '--quiet', '--no-deps',
                    '--no-compile', '--only-binary=:all:', '-r', str(context / 'requirements.txt')], check=True)
    return time.perf_counter() - start


def container_command(context: Path, venv: Path, log_dir: Path, port: int) -> tuple[list[str], dict]:
    "(argv, environment) of the image's ENTRYPOINT + CMD, with the image's paths read as the context's."
    final = final_stage(context)
    for keyword, arguments in final:  # every file copied from the context lands at the same place under HOME_IN_IMAGE
        if keyword == 'COPY' and not arguments.startswith('--from'):
            *sources, destination = shlex.split(arguments)
            for source in sources:
                name = source.rstrip('/')
                target = destination.rstrip('/') if source.endswith('/') else destination.rstrip('/') + '/' + name
                assert target == f'{HOME_IN_IMAGE}/{name}', arguments
    local = lambda text: text.replace(HOME_IN_IMAGE, str(context))
    argv = [local(a) for a in json.loads(dict(final)['ENTRYPOINT']) + json.loads(dict(final)['CMD'])]
    env = {'HOME': str(log_dir.parent), 'LANG': 'C.UTF-8'}
    for keyword, arguments in final:
        if keyword == 'ENV':
            for pair in shlex.split(arguments):
                name, _, value = pair.partition('=')
                env[name] = local(value)
    env['PATH'] = env['PATH'].replace('/opt/venv/bin', str(venv / 'bin')).replace('$PATH', os.environ['PATH'])
    env[LOG_DIR_VARIABLE] = str(log_dir)  # the volume mounted over the image's folder
    env['AIP_HTTP_PORT'] = str(port)  # a free port here; 8080 in the image (the test also checks the variable is honoured)
    return argv, env


def wait_healthy(url: str, process: subprocess.Popen, seconds: float = 180) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if process.poll() is not None: raise AssertionError(f'the server exited with {process.returncode}:\n{process.communicate()[0]}')
        try:
            if httpx.get(url + '/health', timeout=2, trust_env=False).status_code == 200: return time.monotonic() - start
        except httpx.TransportError: pass
        time.sleep(0.2)
    raise AssertionError(f'the server did not answer /health within {seconds} s')


def healthcheck(context: Path, env: dict) -> int:
    "The exit code of the image's HEALTHCHECK command, run as Docker would run it."
    arguments = dict(final_stage(context))['HEALTHCHECK']
    command = json.loads(arguments[arguments.index('CMD') + 3:].strip())
    return subprocess.run(command, env=env, capture_output=True, timeout=30).returncode


def rendered_probes() -> list[tuple[str, str]]:
    "(path, port) of every probe and Prometheus annotation in the rendered overlays; [] without kubectl."
    if shutil.which('kubectl') is None: return []
    found = []
    for overlay in sorted((ROOT / 'deploy' / 'k8s' / 'overlays').iterdir()):
        text = subprocess.run(['kubectl', 'kustomize', str(overlay)], check=True, capture_output=True, text=True).stdout
        for doc in yaml.safe_load_all(text):
            if doc['kind'] != 'Deployment': continue
            template = doc['spec']['template']
            for container in template['spec']['containers']:
                ports = {p['name']: p['containerPort'] for p in container['ports']}
                for probe in ('startupProbe', 'readinessProbe', 'livenessProbe'):
                    found.append((container[probe]['httpGet']['path'], ports[container[probe]['httpGet']['port']]))
            found.append((template['metadata']['annotations']['prometheus.io/path'], int(template['metadata']['annotations']['prometheus.io/port'])))
    return found


def test_packaged_server_runs_from_a_fresh_venv_as_the_dockerfile_starts_it(forest_package, tmp_path):
    run, context = forest_package
    seconds = fresh_venv(context, tmp_path / 'venv')
    print(f"\nfresh venv with the context's requirements: {seconds:.1f} s")
    installed = subprocess.run([sys.executable, '-m', 'pip', '--python', str(tmp_path / 'venv' / 'bin' / 'python'), 'list', '--format=json'],
                               check=True, capture_output=True, text=True).stdout
    assert 'torch' not in {d['name'].lower() for d in json.loads(installed)}  # a forest's image has no PyTorch
    port = free_port()
    argv, env = container_command(context, tmp_path / 'venv', tmp_path / 'volume', port)
    assert argv[0] == 'python' and argv[-1] == 'serve'
    process = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f'http://127.0.0.1:{port}'
    try:
        print(f"started and healthy in {wait_healthy(url, process):.1f} s")
        check_running_package(url, run, context, env)
        assert healthcheck(context, env) == 0
    finally:
        process.send_signal(signal.SIGTERM)  # what `docker stop`, SageMaker and Kubernetes send
        output = process.communicate(timeout=30)[0]
    # uvicorn shuts down gracefully (the log's last line), then ends by the signal it received, as Docker expects
    assert process.returncode in (0, -signal.SIGTERM) and 'Application shutdown complete' in output, output
    assert healthcheck(context, env) != 0  # the same check fails once the server is gone
    logged = prediction_log_path(tmp_path / 'volume', 'rf').read_text().splitlines()
    assert len(logged) == 3 + 3 + 1, output  # /predict, CSV and v2 rows, all acknowledged, all in the log


def check_running_package(url: str, run: RunDir, context: Path, env: dict) -> None:
    "/health, a prediction, SageMaker's CSV and the Open Inference Protocol on the packaged server; the probes' paths."
    rows = records(3)
    expected = load_model(run.model('rf')).predict(pd.DataFrame(rows)).tolist()
    with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
        health = client.get('/health').json()
        assert (health['model'], health['run_id'], health['model_dir']) == ('rf', run.id, str(context / MODEL_DIR))
        assert client.post('/predict', json={'records': rows}).json()['predictions'] == expected
        columns = list(rows[0])
        csv_body = '\n'.join(','.join('' if r[c] is None else str(r[c]) for c in columns) for r in rows)
        assert client.post('/invocations', content=csv_body, headers={'content-type': 'text/csv'}).json() == {'predictions': expected}
        assert client.get('/ping').status_code == 200
        tensors = [{'name': c, 'shape': [1], 'datatype': 'BYTES' if isinstance(rows[0][c], str) else 'FP64', 'data': [rows[0][c]]} for c in columns]
        assert client.post('/v2/models/rf/infer', json={'inputs': tensors}).json()['outputs'][0]['data'] == expected[:1]
        for path, port in rendered_probes():
            assert port == DEFAULT_PORT  # the image sets no AIP_HTTP_PORT: it listens on the default port
            assert client.get(path).status_code == 200, path


@pytest.mark.slow
def test_a_network_model_serves_from_a_fresh_venv_with_cpu_torch(tmp_path):
    "Slow: installs PyTorch (the CPU build on this machine's disk) into the venv."
    run = complete_run(tmp_path / 'runs', names=('nn',))
    context = package(run, tmp_path / 'package')
    print(f"\nfresh venv with PyTorch: {fresh_venv(context, tmp_path / 'venv'):.1f} s")
    port = free_port()
    argv, env = container_command(context, tmp_path / 'venv', tmp_path / 'volume', port)
    process = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_healthy(f'http://127.0.0.1:{port}', process)
        rows = records(2)
        reply = httpx.post(f'http://127.0.0.1:{port}/predict', json={'records': rows}, timeout=30, trust_env=False).json()
        assert reply['predictions'] == load_model(run.model('nn')).predict(pd.DataFrame(rows)).tolist()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
