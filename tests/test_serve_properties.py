"""Property tests of the server's input checks (issue 10): random bytes and random JSON never end in anything
but a `RequestError` with a message (a 4xx) or a valid result.

The model card is a real one (`models.save_model` of a small forest with numeric, categorical, boolean and
date columns); the JSON strategies include what broke the server before: integers of thousands of digits,
numbers past the float range, deep nesting, long text, lone surrogates.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlops_nb.data import feature_columns, infer_schema
from mlops_nb.models import make_model, read_model_card, save_model
from mlops_nb.data import parse_datetime
from mlops_nb.serve import (ISO_DATETIME, MAX_DEPTH, MAX_FLOAT_INT, ModelService, RequestError, _numbers_at_once, _numeric_column,
                            parse_records, records_to_frame)

SLOW_DATA = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
                     max_examples=150)


class Raw(str):
    "A JSON token written as it is (numbers Python's json module cannot write: 5,000 digits, 1e999)."


def encode(value) -> str:
    "JSON text of `value`, with `Raw` tokens as they are (no recursion limit matters: the strategies are shallow)."
    if isinstance(value, Raw): return str(value)
    if isinstance(value, list): return '[' + ','.join(encode(v) for v in value) + ']'
    if isinstance(value, dict): return '{' + ','.join(json.dumps(k) + ':' + encode(v) for k, v in value.items()) + '}'
    return json.dumps(value)


number_tokens = st.builds(lambda sign, digits, tail: Raw(sign + '9' * digits + tail), st.sampled_from(['', '-']),
                          st.sampled_from([1, 16, 308, 309, 310, 4300, 4301, 5000]) | st.integers(1, 5000),
                          st.sampled_from(['', '.5', 'e308', 'e-400', 'e99999', 'E+2']))
nested = st.integers(1, 3 * MAX_DEPTH).flatmap(lambda depth: st.sampled_from([Raw('[' * depth + ']' * depth),
                                                                              Raw('{"a":' * depth + '1' + '}' * depth)]))
scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=20) | st.text(min_size=990, max_size=1010) | number_tokens | nested
           | st.sampled_from(['\ud800', 'L', 'M', 'H', '2018-04-01 00:15:02', '2018-02-30', '1677-01-01', 'now', 'NaN']))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)


def check_refusal(error: RequestError):
    event(f'refused with {error.status}')  # `pytest --hypothesis-show-statistics` shows how often each outcome came
    assert error.status in (400, 413, 415, 422) and isinstance(error.detail, str) and error.detail.strip()
    assert len(error.detail) < 2000  # a message, never the request echoed back


GOOD_BODY = b'{"records": [{"Type": "L", "Torque [Nm]": 40.5, "When": "2018-04-01"}, {"Type": null, "x": [1, {"y": "]"}]}]}'


@settings(max_examples=300)
@given(st.binary(max_size=300) | st.builds(lambda cut, junk, keep: GOOD_BODY[:cut] + junk + GOOD_BODY[cut + keep:],
                                           st.integers(0, len(GOOD_BODY)), st.binary(max_size=8), st.integers(0, 3)))
def test_parse_records_on_random_bytes(body):
    try: records = parse_records(body)
    except RequestError as error: return check_refusal(error)
    event('accepted')
    assert isinstance(records, list) and records and all(isinstance(r, dict) for r in records)


@SLOW_DATA
@given(st.one_of(json_values, st.dictionaries(st.sampled_from(['records', 'record', 'x']), json_values, max_size=3),
                 st.builds(lambda rs: {'records': rs}, st.lists(json_values, max_size=5)),
                 st.builds(lambda rs: {'records': rs}, st.lists(st.dictionaries(st.text(max_size=5), json_values, max_size=3), max_size=5))))
def test_parse_records_on_random_json(payload):
    try: records = parse_records(encode(payload).encode('utf-8', 'surrogatepass'), max_rows=4)
    except RequestError as error: return check_refusal(error)
    event('accepted')
    assert 1 <= len(records) <= 4 and all(isinstance(r, dict) for r in records)


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    "A served forest with numeric, categorical (text, numbers, booleans) and date columns, from its saved card."
    rng = np.random.default_rng(0)
    n = 300
    table = pd.DataFrame({'Type': rng.choice(['L', 'M', 'H'], n), 'grade': rng.choice([1.0, 2.0, 3.0], n),
                          'flag': rng.random(n) < 0.5, 'Torque [Nm]': rng.normal(40, 10, n).round(1),
                          'Tool wear [min]': rng.integers(0, 250, n),
                          'When': (pd.Timestamp('2018-04-01') + pd.to_timedelta(rng.integers(0, 90 * 86400, n), unit='s')).astype(str)})
    table['y'] = (table['Torque [Nm]'] > 45).astype(int)
    schema = infer_schema(table, target='y')
    schema = {**schema, 'numeric': [c for c in schema['numeric'] if c != 'grade'], 'categorical': schema['categorical'] + ['grade']}
    features = feature_columns(schema)
    model = make_model('rf', 'binary', schema, seed=0, n_estimators=10, n_jobs=1).fit(table[features], table['y'])
    directory = save_model(model, tmp_path_factory.mktemp('model')/'rf', card={'name': 'rf', 'task': 'binary', 'schema': schema})
    card = read_model_card(directory)
    assert sorted(card['input_schema']['kinds'].items()) == [
        ('Tool wear [min]', 'numeric'), ('Torque [Nm]', 'numeric'), ('Type', 'categorical'), ('When', 'datetime'),
        ('flag', 'categorical'), ('grade', 'categorical')]
    return ModelService(model, card, max_rows=5)


def records_for(columns: list[str]):
    "Records that mostly hold every model column, with random JSON values (and sometimes good ones)."
    good = {'Type': st.sampled_from(['L', 'M', 'H', 'XL']), 'grade': st.sampled_from([1, 2.0, '3.0', 7]),
            'flag': st.booleans(), 'Torque [Nm]': st.floats(-1e3, 1e3), 'Tool wear [min]': st.integers(0, 300),
            'When': st.sampled_from(['2018-04-01', '2018-04-01T10:15:02.5+02:00', '2261-12-31 23:59'])}
    value = lambda column: mostly(good.get(column, st.none()), json_values)
    record = st.fixed_dictionaries({c: value(c) for c in columns if c != 'Type'}, optional={'extra': json_values, 'Type': value('Type')})
    return st.lists(mostly(record, st.dictionaries(st.text(max_size=5), json_values, max_size=3)), min_size=1, max_size=5)


def mostly(usual, rare, odds: int = 12):
    "`usual` about `odds` times out of `odds + 1`, else `rare` (so that some batches are valid and get scored)."
    return st.integers(0, odds).flatmap(lambda k: usual if k else rare)


@SLOW_DATA
@given(data=st.data())
def test_records_to_frame_with_a_real_card(service, data):
    columns = list(service.kinds)
    records = data.draw(records_for(columns))
    try: frame, report = records_to_frame(records, service.card['input_schema'])
    except RequestError as error: return check_refusal(error)
    event('accepted')
    assert list(frame.columns) == columns and len(frame) == len(records)
    assert all(frame[c].dtype == np.float64 for c, kind in service.kinds.items() if kind == 'numeric')
    assert set(report) == {'ignored_columns', 'unknown_categories'}


@SLOW_DATA
@given(data=st.data())
def test_service_predict_replies_or_refuses(service, data):
    "The whole path a body takes (parse, check, score, reply): a 4xx with a message or a reply that is JSON."
    records = data.draw(records_for(list(service.kinds)))
    body = encode({'records': records}).encode('utf-8', 'surrogatepass')
    try: reply = service.score(parse_records(body, service.max_rows))
    except RequestError as error: return check_refusal(error)
    predictions, probabilities, report = reply
    text = json.dumps(service.reply('r', predictions, probabilities, report), ensure_ascii=True, allow_nan=False)
    event('accepted')
    assert len(predictions) == len(records) and all(p in (0, 1) for p in predictions)
    assert all(math.isclose(sum(p.values()), 1) for p in probabilities) and len(text) < 20_000


@settings(max_examples=300)
@given(st.lists(st.from_regex(ISO_DATETIME[1:-1], fullmatch=True), min_size=1, max_size=3))
def test_every_date_the_schema_accepts_parses(dates):
    "The OpenAPI pattern of date columns promises that the server reads the date: pandas parses every text it matches."
    assert parse_datetime(pd.Series(dates, dtype=object)).notna().all(), dates


@pytest.fixture(scope='module')
def fast_and_pipeline(tmp_path_factory):
    """The same saved forest (numeric and categorical columns of text, numbers and booleans, no dates) served twice:
    through the fast path and through the pipeline on a DataFrame."""
    rng = np.random.default_rng(1)
    n = 300
    table = pd.DataFrame({'Type': rng.choice(['L', 'M', 'H', 'R'], n, p=[0.5, 0.3, 0.195, 0.005]), 'grade': rng.choice([1.0, 2.0, 3.0], n),
                          'flag': rng.random(n) < 0.5, 'Torque [Nm]': rng.normal(40, 10, n).round(1), 'Tool wear [min]': rng.integers(0, 250, n)})
    table.loc[rng.random(n) < 0.05, 'Torque [Nm]'] = np.nan
    table['y'] = (table['Torque [Nm]'].fillna(40) > 45).astype(int)
    schema = infer_schema(table, target='y')
    schema = {**schema, 'numeric': [c for c in schema['numeric'] if c != 'grade'], 'categorical': schema['categorical'] + ['grade']}
    model = make_model('rf', 'binary', schema, seed=0, n_estimators=15, n_jobs=1).fit(table[feature_columns(schema)], table['y'])
    card = read_model_card(save_model(model, tmp_path_factory.mktemp('fast')/'rf', card={'name': 'rf', 'task': 'binary', 'schema': schema}))
    fast, pipeline = ModelService(model, card, max_rows=5), ModelService(model, card, max_rows=5, fast=False)
    assert fast.fast is not None and pipeline.fast is None
    return fast, pipeline


def outcome(service, body: bytes):
    "What `score` gives for a body: ('refused', status, message) or ('scored', predictions, probabilities, report)."
    try: return ('scored', *service.score(parse_records(body, service.max_rows)))
    except RequestError as error: return ('refused', error.status, error.detail)


@SLOW_DATA
@given(data=st.data())
def test_the_fast_path_gives_the_pipelines_answers(fast_and_pipeline, data):
    "Same checks, same answers: the same refusal, or the same predictions and probabilities bit for bit (issue 14)."
    fast, pipeline = fast_and_pipeline
    good = {'Type': st.sampled_from(['L', 'M', 'H', 'R', 'XL', 'missing', '']) | st.none() | st.integers(-3, 3),
            'grade': st.sampled_from([1, 2.0, '3.0', 7, True]) | st.none(), 'flag': st.booleans() | st.none() | st.sampled_from(['True', 1]),
            'Torque [Nm]': st.floats(-1e12, 1e12) | st.none(), 'Tool wear [min]': st.integers(-10**18, 10**18) | st.none()}
    record = st.fixed_dictionaries({c: mostly(s, json_values) for c, s in good.items()})
    records = data.draw(st.lists(mostly(record, st.dictionaries(st.text(max_size=5), json_values, max_size=3)), min_size=1, max_size=5))
    body = encode({'records': records}).encode('utf-8', 'surrogatepass')
    got, expected = outcome(fast, body), outcome(pipeline, body)
    event(got[0])
    assert got == expected


@settings(max_examples=500)
@given(st.lists(st.none() | st.booleans() | st.integers(-2**60, 2**60) | st.floats(allow_nan=False)
                | st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 1e9, -1e9, 1e9 + 0.5, math.inf, -math.inf, '1']), min_size=1, max_size=6),
       st.sampled_from([(-10**9, 10**9), (-(10**17) - 1, 10**17 + 1), (-MAX_FLOAT_INT, MAX_FLOAT_INT), (0, 0)]))
def test_numbers_checked_at_once_agree_with_the_loop(values, bounds):
    "The numpy check of a numeric column accepts exactly the values the value-by-value loop accepts."
    accepted = all(v is None or ((type(v) is float or type(v) is int) and bounds[0] <= v <= bounds[1]) for v in values)
    fast = _numbers_at_once(values, bounds)
    if fast is not None: assert accepted and np.array_equal(fast, np.array(values, dtype=np.float64), equal_nan=True)
    try: checked = _numeric_column('x', values, bounds)
    except RequestError as error:
        assert not accepted and error.status == 422
        return
    assert accepted and np.array_equal(checked, np.array(values, dtype=np.float64), equal_nan=True)
