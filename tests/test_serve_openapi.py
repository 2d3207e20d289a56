"""The OpenAPI document of a served model says what the server does (issue 10), and `/docs` works offline with the
model's real columns (issue 9 h).

A schemathesis run (its CLI, every check, 50 examples an operation, a fixed seed) goes against a real uvicorn server
on 127.0.0.1 for a classifier and a regressor with numeric, categorical and date columns: a body the schema accepts
must be scored, one it refuses must be refused, every reply must match its documented status, type and schema.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import jsonschema
import numpy as np
import pandas as pd
import pytest

from mlops_nb.data import feature_columns, infer_schema
from mlops_nb.models import make_model, save_model
from mlops_nb.monitor import reference_profile
from mlops_nb.serve import ISO_DATETIME, background_server, create_app

# 413 is this server's refusal of more records than max_rows (the schema's maxItems); schemathesis's default list
# of statuses that reject a body leaves it out, the rest is its default
SCHEMATHESIS_CONFIG = '''[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
'''


def training_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({'Type': rng.choice(['L', 'M', 'H'], n, p=[0.6, 0.3, 0.1]),
                          'Air temperature [K]': rng.normal(300, 2, n).round(1),
                          'Tool wear [min]': rng.integers(0, 250, n),
                          'When': (pd.Timestamp('2018-04-01') + pd.to_timedelta(rng.integers(0, 90 * 86400, n), unit='s')).astype(str)})
    table['failure'] = ((table['Tool wear [min]'] > 150) | (rng.random(n) < 0.1)).astype(int)
    return table


def served_app(root: Path, task: str, kind: str):
    "An app for a model of `kind` ('rf' or 'nn') for `task`, with a prediction log and live drift, as `mlops-nb serve` makes it."
    table = training_table()
    target = 'failure' if task == 'binary' else 'Air temperature [K]'
    schema = infer_schema(table, target=target)
    features = feature_columns(schema)
    options = {'n_estimators': 20, 'n_jobs': 1} if kind == 'rf' else {'max_epochs': 3}
    model = make_model(kind, task, schema, seed=0, **options).fit(table[features], table[target])
    directory = save_model(model, root/kind, card={'name': kind, 'task': task, 'data_md5': 'd41d8cd98f00b204e9800998ecf8427e', 'schema': schema})
    return create_app(directory, run_id='run-1', log_path=root/'prediction_log.jsonl',
                      reference_profile=reference_profile(table[features], schema)), features, table


@pytest.mark.parametrize('task, kind', [('binary', 'rf'), ('regression', 'nn')])
def test_schemathesis_finds_no_failure(tmp_path, task, kind):
    app, features, table = served_app(tmp_path, task, kind)
    config = tmp_path/'schemathesis.toml'
    config.write_text(SCHEMATHESIS_CONFIG)
    with background_server(app) as url:
        result = subprocess.run([sys.executable, '-m', 'schemathesis.cli', '--config-file', str(config), 'run', f'{url}/openapi.json',
                                 '--checks', 'all', '--max-examples', '50', '--seed', '1', '--workers', '1', '--no-color',
                                 '--generation-database', 'none', '--report', 'json', '--report-dir', str(tmp_path/'report')],
                                cwd=tmp_path, capture_output=True, text=True, timeout=600)
    output = result.stdout[:20_000] + result.stderr[-3000:]
    report = json.loads(next((tmp_path/'report').glob('*.json')).read_text())
    assert result.returncode == 0 and not report['failures'] and not report['errors'], output
    assert report['operations']['tested'] == 5, output  # POST /predict, POST /feedback, GET /health, /model, /metrics
    assert {name: phase['status'] for name, phase in report['phases'].items() if name != 'stateful'} == \
        {'examples': 'success', 'coverage': 'success', 'fuzzing': 'success'}, output
    assert report['test_cases']['generated'] >= 100
    accepted = report['valid_rates']['POST /predict']
    assert sum(phase['accepted'] for phase in accepted.values()) >= 20, accepted  # bodies were scored, not only refused


@pytest.fixture(scope='module')
def classifier(tmp_path_factory):
    return served_app(tmp_path_factory.mktemp('served'), 'binary', 'rf')


def test_openapi_describes_the_model(classifier):
    app, features, table = classifier
    with background_server(app) as url, httpx.Client(base_url=url, trust_env=False, timeout=30) as client:
        document = client.get('/openapi.json').json()
        operation = document['paths']['/predict']['post']
        schemas = document['components']['schemas']
        record = schemas['Record']
        assert record['required'] == features and list(record['properties']) == features
        assert record['properties']['Air temperature [K]']['type'] == ['number', 'null']
        assert record['properties']['Type']['anyOf'][0] == {'type': 'string', 'enum': ['H', 'L', 'M'], 'description': 'a category seen in training'}
        assert record['properties']['When']['pattern'] == ISO_DATETIME
        example = operation['requestBody']['content']['application/json']['example']['records'][0]
        assert list(example) == features and example['Type'] == 'L'  # the most common category in training
        assert example['Air temperature [K]'] == table['Air temperature [K]'].median()
        assert re.fullmatch(ISO_DATETIME[1:-1], example['When'])
        reply = client.post('/predict', json={'records': [example]})
        assert reply.status_code == 200
        assert operation['responses']['200']['content']['application/json']['example']['predictions'] == reply.json()['predictions']
        validator = jsonschema.Draft202012Validator({'$ref': '#/components/schemas/PredictReply', 'components': document['components']})
        validator.validate(reply.json())
        assert schemas['PredictReply']['properties']['probabilities']['items']['required'] == ['0', '1']
        assert sorted(operation['responses']) == ['200', '400', '413', '415', '422', '500']
        assert all(operation['responses'][s]['content']['application/json']['schema'] == {'$ref': '#/components/schemas/Error'}
                   for s in ('400', '413', '415', '422', '500'))
        assert list(document['paths']['/metrics']['get']['responses']['200']['content']) == ['text/plain']
        # a body the schema refuses is refused, e.g. an empty record (every column is required)
        request_schema = jsonschema.Draft202012Validator({'$ref': '#/components/schemas/PredictRequest', 'components': document['components']})
        assert not request_schema.is_valid({'records': [{}]})
        assert client.post('/predict', json={'records': [{}]}).status_code == 422


def test_docs_work_offline(classifier):
    "The docs page names no other host; its files come from the server itself."
    app, features, table = classifier
    with background_server(app) as url, httpx.Client(base_url=url, trust_env=False, timeout=30) as client:
        page = client.get('/docs')
        assert page.status_code == 200 and 'SwaggerUIBundle' in page.text
        assert not re.search(r'https?://', page.text), re.findall(r'https?://[^\s"\']+', page.text)
        assets = re.findall(r'(?:href|src)="([^"]+)"', page.text)
        assert len(assets) == 3 and all(asset.startswith('/docs/assets/') for asset in assets)
        for asset in assets:
            response = client.get(asset)
            assert response.status_code == 200 and len(response.content) > 1000, asset
        assert '"validatorUrl": null' in page.text  # Swagger UI would otherwise ask swagger.io to validate the document


@pytest.mark.skipif(shutil.which('chromium') is None, reason='needs Debian chromium (apt-get install chromium)')
def test_docs_render_the_columns_in_a_browser(classifier):
    "Headless Chromium, on loopback only: Swagger UI runs from the local files and shows the predict example's columns."
    app, features, table = classifier
    with background_server(app) as url:
        result = subprocess.run(['chromium', '--headless', '--no-sandbox', '--disable-gpu', '--virtual-time-budget=15000',
                                 '--dump-dom', f'{url}/docs#/default/predict'], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'swagger-ui' in result.stdout and 'PredictReply' in result.stdout, result.stdout[:2000]
    assert all(column in result.stdout for column in features), result.stdout[:2000]
