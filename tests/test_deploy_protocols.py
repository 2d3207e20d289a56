"""The cloud endpoint contracts on the packaged server, over real HTTP (uvicorn on 127.0.0.1, httpx):
the platforms' documented example payloads, the same answers and the same refusals as /predict on every route,
each platform's error body, the prediction log and the metrics.

Documented payloads (sent verbatim below):
- SageMaker, "Common data formats for inference": text/csv `1.5,16.0,14,23.0` (a record of four features, in
  order); application/json `{"instances": [{"features": [1.5, 16.0, 14.0, 23.0]}]}`.
- KServe v1 (and Vertex AI's `instances`), the scikit-learn iris example: `{"instances": [[6.8, 2.8, 4.8, 1.4],
  [6.0, 3.4, 4.5, 1.6]]}`; the Open Inference Protocol version of it: one FP32 tensor "input-0" of shape [2, 4].
- MLflow's scoring server: `dataframe_split` {"columns", "data"}, `dataframe_records`, `instances`, `inputs`.
"""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from fastapi.testclient import TestClient
from sklearn.datasets import load_iris

from mlops_nb.core import atomic_write_json
from mlops_nb.data import feature_columns, infer_schema
from mlops_nb.deploy import V1_MODELS, V2_MODELS, add_platform_routes, package, packaged_app, prediction_log_path
from mlops_nb.models import make_model, save_model
from mlops_nb.runs import create_run, mark_complete, write_metrics
from mlops_nb.serve import background_server, create_app, log_lines

from test_deploy import complete_run, records

VERTEX = {'AIP_PREDICT_ROUTE': '/v1/endpoints/7/deployedModels/8:predict', 'AIP_HEALTH_ROUTE': '/v1/endpoints/7/deployedModels/8'}


def iris_run(runs_dir: Path):
    frame = load_iris(as_frame=True).frame
    schema = infer_schema(frame, target='target')
    features = feature_columns(schema)
    run = create_run({'dataset': 'iris'}, runs_dir=runs_dir)
    model = make_model('rf', 'multiclass', schema, seed=0, n_estimators=20, n_jobs=1).fit(frame[features], frame['target'])
    save_model(model, run.model('rf'), card={'name': 'rf', 'task': 'multiclass', 'schema': schema})
    write_metrics(run, {'rf': {'accuracy': 0.9}})
    mark_complete(run)
    return run, features


@pytest.fixture(scope='module')
def iris_server(tmp_path_factory):
    root = tmp_path_factory.mktemp('iris')
    run, features = iris_run(root / 'runs')
    app = packaged_app(package(run, root / 'package'), log_dir=root / 'logs', environ=VERTEX)
    with background_server(app) as url, httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
        yield client, features


@pytest.fixture(scope='module')
def machine_server(tmp_path_factory):
    root = tmp_path_factory.mktemp('machines')
    run = complete_run(root / 'runs', names=('rf',))
    app = packaged_app(package(run, root / 'package'), log_dir=root / 'logs', environ=VERTEX)
    with background_server(app) as url, httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
        yield client, app, root / 'logs'


def post(client, path, body: str, content_type='application/json', **headers):
    return client.post(path, content=body.encode(), headers={'content-type': content_type, **headers})


def test_the_platforms_documented_payloads_verbatim(iris_server):
    client, features = iris_server
    rows = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
    expected = client.post('/predict', json={'records': [dict(zip(features, r)) for r in rows]}).json()['predictions']
    kserve_v1 = '{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}'
    assert post(client, f'{V1_MODELS}/rf:predict', kserve_v1).json() == {'predictions': expected}
    assert post(client, VERTEX['AIP_PREDICT_ROUTE'], kserve_v1).json() == {'predictions': expected}
    oip = ('{"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", '
           '"data": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}]}')
    assert post(client, f'{V2_MODELS}/rf/infer', oip).json()['outputs'][0]['data'] == expected
    sagemaker_one = client.post('/predict', json={'records': [dict(zip(features, [1.5, 16.0, 14.0, 23.0]))]}).json()['predictions']
    assert post(client, '/invocations', '1.5,16.0,14,23.0', 'text/csv').json() == {'predictions': sagemaker_one}
    assert post(client, '/invocations', '{"instances": [{"features": [1.5, 16.0, 14.0, 23.0]}]}').json() == {'predictions': sagemaker_one}
    split = json.dumps({'dataframe_split': {'columns': features, 'data': rows}})
    assert post(client, '/invocations', split).json() == {'predictions': expected}
    assert client.get('/ping').status_code == 200 and client.get(VERTEX['AIP_HEALTH_ROUTE']).status_code == 200


def test_every_route_gives_predict_s_answers_on_mixed_columns(machine_server):
    client, app, _ = machine_server
    rows = records(4)
    rows[1]['Type'] = None  # a missing category
    rows[2]['Type'] = 'X'  # a category never seen in training
    columns = list(rows[0])
    reference = client.post('/predict', json={'records': rows}).json()
    expected = reference['predictions']
    shuffled = columns[::-1] + ['comment']
    csv_header = ','.join(shuffled) + '\n' + '\n'.join(','.join('' if r.get(c) is None else str(r.get(c, 'x')) for c in shuffled) for r in rows)
    payloads = {
        '/invocations dataframe_split': ('/invocations', {'dataframe_split': {'columns': shuffled, 'data': [[r.get(c, 'x') for c in shuffled] for r in rows]}}),
        '/invocations dataframe_records': ('/invocations', {'dataframe_records': rows}),
        '/invocations inputs (columnar)': ('/invocations', {'inputs': {c: [r[c] for r in rows] for c in columns}}),
        '/invocations instances (lists)': ('/invocations', {'instances': [[r[c] for c in columns] for r in rows]}),
        '/invocations records': ('/invocations', {'records': rows}),
        'KServe v1': (f'{V1_MODELS}/rf:predict', {'instances': rows}),
        'KServe v1 inputs': (f'{V1_MODELS}/rf:predict', {'inputs': rows}),
        'Vertex AI': (VERTEX['AIP_PREDICT_ROUTE'], {'instances': rows, 'parameters': {'confidence': 0.5}}),
    }
    for name, (path, body) in payloads.items():
        answer = client.post(path, json=body)
        assert (name, answer.status_code, answer.json()) == (name, 200, {'predictions': expected})
    answer = post(client, '/invocations', csv_header, 'text/csv')
    assert answer.json() == {'predictions': expected}
    tensors = [{'name': c, 'shape': [len(rows)], 'datatype': 'FP64' if c not in ('Type', 'When') else 'BYTES', 'data': [r[c] for r in rows]}
               for c in columns]
    v2 = client.post(f'{V2_MODELS}/rf/infer', json={'inputs': tensors, 'id': 'mine'}).json()
    classes = [str(c) for c in reference['classes']]
    assert v2['outputs'][0]['data'] == expected and v2['id'] == 'mine'
    assert v2['outputs'][1]['data'] == [p[k] for p in reference['probabilities'] for k in classes]
    assert "column 'Type': 1 value(s) never seen in training" in v2['parameters']['warnings']


def test_refusals_carry_predict_s_message_in_each_platform_s_shape(machine_server):
    client, app, _ = machine_server
    rows = records(2)
    bad = [dict(rows[0]), dict(rows[1])]
    bad[1]['Torque [Nm]'] = 'forty'
    missing = [{k: v for k, v in r.items() if k != 'Tool wear [min]'} for r in rows]
    for wrong in (bad, missing):
        detail = client.post('/predict', json={'records': wrong}).json()['detail']
        mlflow = client.post('/invocations', json={'dataframe_records': wrong})
        assert (mlflow.status_code, mlflow.json()) == (400, {'error_code': 'BAD_REQUEST', 'message': detail})
        for path in (f'{V1_MODELS}/rf:predict', VERTEX['AIP_PREDICT_ROUTE']):
            answer = client.post(path, json={'instances': wrong})
            assert (answer.status_code, answer.json()) == (400, {'error': detail})
    assert 'record 1' in client.post('/predict', json={'records': bad}).json()['detail']


@pytest.mark.parametrize('path, protocol', [('/invocations', 'mlflow'), (f'{V1_MODELS}/rf:predict', 'v1'), (f'{V2_MODELS}/rf/infer', 'v2')])
def test_malformed_requests(machine_server, path, protocol):
    client, app, _ = machine_server
    def error(answer):
        body = answer.json()
        if protocol == 'mlflow': assert set(body) == {'error_code', 'message'} and body['error_code'] == 'BAD_REQUEST'; return body['message']
        assert set(body) == {'error'}; return body['error']
    cases = [(b'{"instances": [', 'application/json', 400, 'not valid JSON'),
             (b'', 'application/json', 400, 'empty body'),
             (b'[' * 100 + b']' * 100, 'application/json', 400, 'deeper than 32'),
             (b'{}', 'application/xml', 415, 'Content-Type must be'),
             (b'{}', 'application/json; charset=latin-1', 415, "charset 'latin-1'"),
             (b'{"something": []}', 'application/json', 400, ' must ')]
    for body, content_type, status, words in cases:
        answer = client.post(path, content=body, headers={'content-type': content_type})
        assert answer.status_code == status and words in error(answer), (body, answer.text)


def test_limits_and_unknown_models(machine_server, tmp_path):
    client, app, _ = machine_server
    row = records(1)[0]
    too_many = client.post('/invocations', json={'dataframe_records': [row] * 10_001})
    assert too_many.status_code == 413 and '10001 rows, above the limit of 10000' in too_many.json()['message']
    assert client.post(f'{V1_MODELS}/forest:predict', json={'instances': [row]}).json() == {'error': "no model 'forest' here; this server serves 'rf'"}
    assert client.get(f'{V2_MODELS}/forest').status_code == 404 and client.get(f'{V2_MODELS}/rf/versions/0/ready').status_code == 404
    small = add_platform_routes(create_app(client.get('/health').json()['model_dir']), max_body_bytes=500)
    with TestClient(small) as test_client:
        answer = test_client.post('/invocations', json={'dataframe_records': [row] * 10})
        assert answer.status_code == 413 and 'above the limit of 500 bytes' in answer.json()['message']


def test_a_failure_inside_is_a_500_in_the_platform_s_shape_and_the_server_keeps_serving(machine_server, monkeypatch):
    client, app, _ = machine_server
    row = records(1)[0]
    def broken(body, request_id=None): raise OSError('disk full')
    monkeypatch.setattr(app.state.service, 'predict', broken)
    answer = client.post('/invocations', json={'dataframe_records': [row]}, headers={'x-request-id': 'req-500'})
    assert answer.status_code == 500 and answer.json() == {'error_code': 'INTERNAL_ERROR', 'message': 'internal error while scoring request req-500: OSError: disk full'}
    assert client.post(f'{V2_MODELS}/rf/infer', json={'inputs': [{'name': c, 'shape': [1], 'datatype': 'BYTES', 'data': [str(v)]} for c, v in row.items()]}).status_code == 500
    monkeypatch.undo()
    assert client.post('/invocations', json={'dataframe_records': [row]}).status_code == 200


def test_scored_rows_are_logged_and_counted_as_predict_s(machine_server):
    client, app, log_dir = machine_server
    log = prediction_log_path(log_dir, 'rf')
    before = len(log_lines(log)) if log.exists() else 0
    rows = records(3)
    answer = client.post('/invocations', json={'dataframe_records': rows}, headers={'x-request-id': 'logged-1'})
    assert answer.headers['x-request-id'] == 'logged-1'
    lines = [json.loads(line) for line in log_lines(log)[before:]]
    assert [(l['request_id'], l['row']) for l in lines] == [('logged-1', i) for i in range(3)]
    assert [l['prediction'] for l in lines] == answer.json()['predictions']
    assert 'mlops_nb_rows_scored_total' in client.get('/metrics').text


# ---------------------------------------------------------------- the same checks, property-tested

NUMBERS = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=64), st.integers(-10**400, 10**400),
                    st.text(max_size=3), st.booleans(), st.lists(st.integers(), max_size=2))
TEXTS = st.one_of(st.none(), st.sampled_from(['L', 'M', 'H', 'Q']), st.integers(-2**60, 2**60), st.text(max_size=5), st.lists(st.none(), max_size=1))
DATES = st.one_of(st.none(), st.sampled_from(['2018-04-01', '2018-02-30', '2018-04-01T10:00:00+02:00']), st.text(max_size=4), st.floats(allow_nan=False))


@st.composite
def machine_records(draw):
    n = draw(st.integers(1, 3))
    rows = [{'Type': draw(TEXTS), 'Air temperature [K]': draw(NUMBERS), 'Torque [Nm]': draw(NUMBERS),
             'Tool wear [min]': draw(NUMBERS), 'When': draw(DATES)} for _ in range(n)]
    if draw(st.booleans()): rows[-1].pop(draw(st.sampled_from(list(rows[-1]))))
    return rows


@pytest.fixture(scope='module')
def machine_client(tmp_path_factory):
    root = tmp_path_factory.mktemp('property')
    with TestClient(packaged_app(package(complete_run(root / 'runs'), root / 'package'), log_dir='')) as client: yield client


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=machine_records())
def test_every_route_accepts_and_refuses_exactly_what_predict_does(machine_client, rows):
    body = json.dumps({'records': rows})
    reference = machine_client.post('/predict', content=body, headers={'content-type': 'application/json'})
    columns = list(rows[0])
    routes = {'/invocations': json.dumps({'dataframe_records': rows}), f'{V1_MODELS}/rf:predict': json.dumps({'instances': rows})}
    if all(list(r) == columns and not any(isinstance(v, list) for v in r.values()) for r in rows):  # a tensor's data is flat
        routes[f'{V2_MODELS}/rf/infer'] = json.dumps({'inputs': [{'name': c, 'shape': [len(rows)], 'datatype': 'BYTES', 'data': [r[c] for r in rows]} for c in columns]})
    for path, payload in routes.items():
        answer = machine_client.post(path, content=payload, headers={'content-type': 'application/json'})
        if reference.status_code == 200:
            assert answer.status_code == 200, (path, answer.text)
            predictions = answer.json()['outputs'][0]['data'] if 'v2' in path else answer.json()['predictions']
            assert predictions == reference.json()['predictions']
        else:
            message = answer.json().get('message', answer.json().get('error'))
            assert (answer.status_code, message) == (400 if reference.status_code == 422 else reference.status_code, reference.json()['detail']), path


def test_mlflow_s_own_scoring_client_works_unchanged(iris_server):
    "MLflow's client for `mlflow models serve` (where MLflow is installed; it is not a dependency of the project)."
    pytest.importorskip('mlflow', reason='MLflow is not installed (pip install mlflow-skinny) ')
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient
    client, features = iris_server
    frame = pd.DataFrame([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2]], columns=features)
    expected = client.post('/predict', json={'records': frame.to_dict('records')}).json()['predictions']
    mlflow_client = ScoringServerClient(client.base_url.host, client.base_url.port)
    assert list(mlflow_client.invoke(frame).get_predictions(predictions_format='ndarray')) == expected  # sent as dataframe_split
    assert list(mlflow_client.invoke(frame.to_numpy()).get_predictions(predictions_format='ndarray')) == expected  # sent as inputs
    with pytest.raises(Exception, match='error code 400'): mlflow_client.invoke(frame.assign(**{features[0]: 'wide'}))
