"""Malformed input: each case gives the documented `DataError` (naming the file or column) or the
documented handled result, never another exception. The rules are in nbs/01_data.ipynb."""
import gzip
import string
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given, settings, strategies as st

from mlops_nb.core import DataError, MlopsError, reference_data
from mlops_nb.data import feature_columns, infer_schema, load_table, parse_datetime, split, validate


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    import io
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


GOOD_PARQUET = _parquet_bytes(pd.DataFrame({'x': np.arange(50.0), 'y': [0, 1] * 25}))

# (id, file name, bytes, text the DataError message contains). The file name is always checked too.
LOAD_ERRORS = [
    ('empty file', 'empty.csv', b'', 'empty'),
    ('only a byte-order mark', 'bom_only.csv', b'\xef\xbb\xbf', 'empty'),
    ('blank lines only', 'blank.csv', b'\n\n\n', 'empty'),
    ('header only', 'header_only.csv', b'a,b,target\n', 'no rows'),
    ('not UTF-8 (Latin-1)', 'latin1.csv', 'city,target\nMünchen,1\n'.encode('latin-1'), "not valid UTF-8 text at byte 13 (line 2): b'\\xfc'"),
    ('not UTF-8 (UTF-16)', 'utf16.csv', 'a,b\n1,2\n'.encode('utf-16'), 'not valid UTF-8'),
    ('duplicate columns', 'dup.csv', b'a,b,a,target\n1,2,3,0\n', "duplicate column names ['a']"),
    ('duplicate columns after BOM', 'dup_bom.csv', b'\xef\xbb\xbfa,a\n1,2\n', "duplicate column names ['a']"),
    ('ragged row', 'ragged.csv', b'a,b\n1,2\n3,4,5\n6,7\n', 'line 3'),
    ('every row ragged', 'ragged_all.csv', b'a,b\n1,2,3\n4,5,6\n', 'more fields than the header'),
    ('unclosed quote', 'quote.csv', b'a,b\n1,"never closed\n2,3\n', 'unclosed quote'),
    ('unknown extension', 'table.xlsx', b'a,b\n1,2\n', 'supported: .csv, .csv.gz, .parquet'),
    ('no extension', 'table', b'a,b\n1,2\n', 'supported: .csv, .csv.gz, .parquet'),
    ('.csv.gz that is not gzip', 'plain.csv.gz', b'a,b\n1,2\n', 'cannot be read as .csv.gz'),
    ('truncated gzip', 'truncated.csv.gz', gzip.compress(b'a,b\n' + b'1,2\n' * 1000)[:40], 'cannot be read as .csv.gz'),
    ('empty gzip', 'empty.csv.gz', gzip.compress(b''), 'empty'),
    ('corrupt parquet', 'corrupt.parquet', b'PAR1 this is not parquet PAR1', 'cannot be read as Parquet'),
    ('truncated parquet', 'truncated.parquet', GOOD_PARQUET[:len(GOOD_PARQUET) // 2], 'cannot be read as Parquet'),
    ('empty parquet file', 'zero.parquet', b'', 'empty'),
    ('parquet with no rows', 'no_rows.parquet', _parquet_bytes(pd.DataFrame({'a': pd.Series([], dtype=float)})), 'no rows'),
    ('CSV bytes named .parquet', 'csv.parquet', b'a,b\n1,2\n', 'cannot be read as Parquet'),
    ('semicolon-separated', 'excel_de.csv', b'a;b;target\n1,5;2;0\n', 'looks semicolon-separated'),
    ('tab-separated', 'table.csv', b'a\tb\n1\t2\n', 'looks tab-separated'),
    ('not UTF-8 inside gzip', 'latin1.csv.gz', gzip.compress('a\n\xe9\n'.encode('latin-1')), 'of the decompressed text'),
]


@pytest.mark.parametrize('name,data,expected', [c[1:] for c in LOAD_ERRORS], ids=[c[0] for c in LOAD_ERRORS])
def test_load_table_errors(tmp_path, name, data, expected):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DataError) as error:
        load_table(path)
    assert name in str(error.value)
    assert expected in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match='nothere.csv: no such file'):
        load_table(tmp_path / 'nothere.csv')


def test_directory(tmp_path):
    (tmp_path / 'folder.csv').mkdir()
    with pytest.raises(DataError, match='folder.csv: is a directory'):
        load_table(tmp_path / 'folder.csv')


# (id, CSV text, target, validate kwargs, text the DataError message contains)
VALIDATE_ERRORS = [
    ('missing target', 'a,Machine failure\n1,0\n2,1\n', 'Machine_failure', {}, "'Machine_failure' not found"),
    ('missing target, suggestion', 'a,Machine failure\n1,0\n2,1\n', 'machine failure', {}, "Did you mean 'Machine failure'?"),
    ('all-NaN target', 'a,target\n1,\n2,\n3,\n', 'target', {}, "'target' has no values"),
    ('one class', 'a,target\n1,yes\n2,yes\n3,yes\n', 'target', {}, "'target' has a single class ('yes', 3 rows)"),
    ('one class after dropping NaN', 'a,target\n1,1\n2,\n3,1\n', 'target', {}, 'single class'),
    ('too few rows of a class', 'a,target\n' + ''.join(f'{i},{"b" if i < 4 else "a"}\n' for i in range(40)),
     'target', {}, "class 'b' has 4 rows"),
    ('too few rows of a class at test_size 0.4', 'a,target\n' + ''.join(f'{i},{"b" if i < 2 else "a"}\n' for i in range(40)),
     'target', {'test_size': 0.4}, "class 'b' has 2 rows"),
    ('binary asked, three classes', 'a,target\n' + ''.join(f'{i},{"xyz"[i % 3]}\n' for i in range(30)),
     'target', {'task': 'binary'}, "'target' has 3 classes"),
    ('regression on text labels', 'a,target\n1,yes\n2,no\n3,yes\n4,no\n5,yes\n', 'target', {'task': 'regression'},
     "'target': regression needs numbers"),
    ('only the target column', 'target\n1\n0\n1\n0\n1\n', 'target', {}, 'no feature columns'),
    ('numeric target spoiled by text', 'a,price\n' + ''.join(f'{i},{i * 1.5}\n' for i in range(30)) + '31,unknown\n',
     'price', {}, "'price' mixes numbers and text (e.g. ['unknown'])"),
    ('too few rows for regression', 'a,target\n1,0.5\n2,1.5\n', 'target', {}, '2 rows with a target, too few'),
]


@pytest.mark.parametrize('text,target,kwargs,expected', [c[1:] for c in VALIDATE_ERRORS], ids=[c[0] for c in VALIDATE_ERRORS])
def test_validate_errors(tmp_path, text, target, kwargs, expected):
    path = tmp_path / 'table.csv'
    path.write_text(text, encoding='utf-8')
    with pytest.raises(DataError) as error:
        validate(load_table(path), target, **kwargs)
    assert expected in str(error.value)


def test_duplicate_columns_in_a_frame():
    frame = pd.DataFrame([[1, 2, 0], [3, 4, 1]], columns=['a', 'a', 'y'])
    for check in (lambda: validate(frame, 'y'), lambda: infer_schema(frame, 'y')):
        with pytest.raises(DataError, match=r"duplicate column names \['a'\]"):
            check()


def test_duplicate_columns_in_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    path = tmp_path / 'dup.parquet'
    pq.write_table(pa.table([pa.array([1, 2]), pa.array([3, 4])], names=['a', 'a']), path)
    with pytest.raises(DataError, match=r"dup.parquet: duplicate column names \['a'\]"):
        load_table(path)


# Handled inputs: loaded, cleaned and reported, with the documented result.

def _classes(n=20):
    return ['yes', 'no'] * (n // 2)


def test_target_with_some_nan_is_dropped_and_counted(tmp_path):
    path = tmp_path / 'some_nan.csv'
    rows = [f'{i},{"" if i % 7 == 0 else ("yes" if i % 2 else "no")}' for i in range(40)]
    path.write_text('a,target\n' + '\n'.join(rows) + '\n', encoding='utf-8')
    clean, findings = validate(load_table(path), 'target')
    assert findings['rows_missing_target'] == 6 and findings['rows'] == 34 and len(clean) == 34
    assert clean['target'].notna().all()
    assert any('dropped 6 of 40 rows' in m for m in findings['messages'])


def test_infinities_become_missing_and_are_counted(tmp_path):
    path = tmp_path / 'inf.csv'
    path.write_text('x,z,target\n' + ''.join(f'{"inf" if i < 3 else "-inf" if i == 3 else i},{i},{i % 2}\n' for i in range(20)),
                    encoding='utf-8')
    frame = load_table(path)
    assert np.isinf(frame['x']).sum() == 4
    clean, findings = validate(frame, 'target')
    assert findings['infinite_values'] == {'x': 4}
    assert clean['x'].isna().sum() == 4 and not np.isinf(clean['x'].dropna()).any()
    assert 'x' in infer_schema(clean, 'target')['numeric']


def test_infinite_regression_target_is_a_missing_target():
    frame = pd.DataFrame({'x': range(10), 'y': [np.inf] + [float(i) / 3 for i in range(9)]})
    clean, findings = validate(frame, 'y')
    assert (findings['task'], findings['rows'], findings['rows_missing_target']) == ('regression', 9, 1)


def test_mixed_types_in_a_frame_become_text():
    frame = pd.DataFrame({'code': [1, 'A7', 2.5, None] * 5, 'target': _classes()})
    clean, findings = validate(frame, 'target')
    assert sorted(clean['code'].dropna().unique()) == ['1', '2.5', 'A7']
    assert clean['code'].isna().sum() == 5
    assert any("'code' mixes numbers" in m for m in findings['messages'])
    schema = infer_schema(clean, 'target')
    assert schema['categorical'] == ['code'] and schema['categories']['code'] == ['1', '2.5', 'A7']
    # the cleaned column is what scikit-learn's encoders accept: one type of value
    from sklearn.preprocessing import OneHotEncoder
    OneHotEncoder(handle_unknown='ignore').fit(clean[['code']].fillna('missing'))


def test_mostly_numbers_with_text_in_a_csv_is_reported(tmp_path):
    path = tmp_path / 'mixed.csv'
    path.write_text('amount,target\n' + ''.join(f'{"unknown" if i == 5 else i % 4 * 1.5},{i % 2}\n' for i in range(20)),
                    encoding='utf-8')
    clean, findings = validate(load_table(path), 'target')
    message = next(m for m in findings['messages'] if "'amount'" in m)
    assert "'unknown'" in message and 'treated as text' in message
    assert infer_schema(clean, 'target')['categorical'] == ['amount']


def test_bom_and_unnamed_index_column(tmp_path):
    path = tmp_path / 'r_export.csv'
    body = ''.join(f'"{i + 1}",{i * 0.5},"{"yes" if i % 2 else "no"}"\n' for i in range(20))
    path.write_bytes(b'\xef\xbb\xbf' + ('"","x","target"\n' + body).encode('utf-8'))
    frame = load_table(path)
    assert list(frame.columns) == ['x', 'target']
    clean, findings = validate(frame, 'target')
    assert findings['class_counts'] == {'no': 10, 'yes': 10}


def test_pandas_index_column(tmp_path):
    path = tmp_path / 'pandas_index.csv'
    pd.DataFrame({'x': range(5), 'target': [0, 1, 0, 1, 0]}).to_csv(path)
    assert list(load_table(path).columns) == ['x', 'target']


def test_short_rows_are_read_with_missing_values(tmp_path):
    path = tmp_path / 'short.csv'
    path.write_text('a,b,target\n1,2,0\n3\n4,5,1\n', encoding='utf-8')
    frame = load_table(path)
    assert frame.shape == (3, 3) and frame.loc[1, ['b', 'target']].isna().all()


def test_blank_lines_before_the_header(tmp_path):
    path = tmp_path / 'blank_first.csv'
    path.write_text('\n\na,a2\n1,2\n', encoding='utf-8')
    assert list(load_table(path).columns) == ['a', 'a2']


def test_split_errors_are_data_errors():
    frame = pd.DataFrame({'x': range(30), 'y': ['a'] * 26 + ['b'] * 4})
    with pytest.raises(DataError, match="class 'b' has 4 rows"):
        split(frame, 'y', 'binary')
    with pytest.raises(DataError, match='missing values'):
        split(frame.assign(y=[None] + ['a'] * 29), 'y', 'binary')


def test_ai4i_end_to_end():
    path = reference_data('ai4i2020.csv')
    if path is None:
        pytest.skip('../shared/data/ai4i2020.csv is absent')
    clean, findings = validate(load_table(path), 'Machine failure')
    schema = infer_schema(clean, 'Machine failure')
    assert findings['class_counts'] == {0: 9661, 1: 339}
    assert set(schema['excluded']) == {'UDI', 'Product ID', 'Machine failure'}
    assert feature_columns(schema)[0] == 'Type'
    train, test = split(clean, 'Machine failure', findings['task'], test_size=0.2, seed=0)
    assert (len(train), len(test)) == (8000, 2000)
    assert test['Machine failure'].sum() in (67, 68)  # stratified: 339 * 0.2 = 67.8


# Properties: any bytes give a table or a DataError; small tables survive a round trip.

@settings(max_examples=150)
@given(data=st.binary(max_size=200), suffix=st.sampled_from(['.csv', '.csv.gz', '.parquet']))
def test_any_bytes_give_a_table_or_a_data_error(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp('fuzz') / f'fuzz{suffix}'
    path.write_bytes(data)
    try:
        frame = load_table(path)
    except MlopsError as error:
        assert isinstance(error, DataError) and path.name in str(error)
    else:
        assert isinstance(frame, pd.DataFrame) and len(frame) > 0


def check_table(frame: pd.DataFrame, target: str, task: str = 'auto'):
    "validate, infer_schema and the date parsing of a loaded table: a valid result or an MlopsError with a message."
    try:
        clean, findings = validate(frame, target, task=task, test_size=0.5)
    except MlopsError as error:
        assert str(error).strip()
        event(f'validate: {type(error).__name__}')
        return
    event('validate: a result')
    assert findings['rows'] == len(clean) > 0
    schema = infer_schema(clean, target)
    if schema['datetime']: event('schema: a datetime column')
    if any(r.startswith('dates that cannot') for r in schema['excluded'].values()): event('schema: dates refused')
    assert target not in feature_columns(schema)
    for column in schema['datetime']:
        parsed = parse_datetime(clean[column], schema['datetime_formats'].get(column))
        assert pd.api.types.is_datetime64_any_dtype(parsed) and len(parsed) == len(clean)


@settings(max_examples=150)
@given(data=st.text(alphabet=string.ascii_letters + string.digits + ',"\n\r.-' + 'é', max_size=120))
def test_any_csv_text_gives_a_table_or_a_data_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp('fuzz') / 'fuzz.csv'
    path.write_text(data, encoding='utf-8')
    try:
        frame = load_table(path)
    except DataError as error:
        assert 'fuzz.csv' in str(error)
    else:
        assert len(frame) > 0 and not frame.columns.duplicated().any()
        check_table(frame, str(frame.columns[0]))


# CSV-shaped text whose cells are what real files hold: numbers, infinities, blanks, words, quoted
# commas, and dates written every way (ISO, day-first, month-first, with times). Each column draws its
# cells from one kind (or from all kinds mixed), and the target from a few labels, so that the fuzzing
# reaches validate's and infer_schema's deeper paths rather than stopping at the parser.
date_cells = st.one_of(
    st.builds(lambda d, m, y, sep: f'{d}{sep}{m}{sep}{y}', st.integers(0, 32), st.integers(0, 14),
              st.sampled_from(['2023', '23', '1999']), st.sampled_from(['/', '-', '.'])),
    st.builds(lambda d, t: f'{d} {t}', st.sampled_from(['05/11/2023', '13/11/2023', '11/13/2023', '2023-11-05']),
              st.sampled_from(['10:15', '10:15:02', '25:99', '10:15 PM', '10:15+02:00'])),
    st.dates().map(str))
number_cells = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr))
word_cells = st.sampled_from(['', 'NA', 'yes', 'no', 'x y', '"a,b"', 'é', 'unknown', 'inf'])
any_cells = st.one_of(date_cells, number_cells, word_cells)
target_cells = st.one_of(st.sampled_from(['yes', 'no']), st.sampled_from(['0', '1', '2', '', '1.5', 'inf']))
DATE_LAYOUTS = ['%d/%m/%Y', '%m/%d/%Y', '%Y-%m-%d', '%d.%m.%y %H:%M', '%m-%d-%Y %I:%M %p', '%Y-%m-%dT%H:%M:%S']
valid_dates = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2030, 12, 31))

def csv_column(n: int):
    "n cells of one kind, of all kinds mixed, or valid dates in one layout (or two layouts mixed)."
    return st.one_of(
        st.sampled_from([date_cells, number_cells, word_cells, any_cells]).flatmap(lambda cells: st.lists(cells, min_size=n, max_size=n)),
        st.lists(st.sampled_from(DATE_LAYOUTS), min_size=1, max_size=2).flatmap(lambda layouts: st.lists(
            st.tuples(valid_dates, st.sampled_from(layouts)).map(lambda d: d[0].strftime(d[1])), min_size=n, max_size=n)))

csv_tables = st.integers(1, 40).flatmap(lambda n: st.tuples(
    st.lists(st.tuples(st.sampled_from(['a', 'b', 'when', 'y']), csv_column(n)),
             min_size=1, max_size=3, unique_by=lambda column: column[0]),   # duplicate names: see LOAD_ERRORS
    st.one_of(st.lists(st.sampled_from(['yes', 'no']), min_size=n, max_size=n),    # clean labels,
              st.lists(st.floats(-1e6, 1e6).map(repr), min_size=n, max_size=n),    # a clean regression target,
              st.lists(target_cells, min_size=n, max_size=n))))                    # or a messy one


@settings(max_examples=300, deadline=None)
@given(table=csv_tables, task=st.sampled_from(['auto', 'auto', 'binary', 'multiclass', 'regression']))
def test_any_csv_table_loads_and_validates_or_gives_an_mlops_error(tmp_path_factory, table, task):
    columns, target = table
    header = [name for name, _ in columns] + ['target']
    rows = zip(*[cells for _, cells in columns], target)
    path = tmp_path_factory.mktemp('fuzz') / 'table.csv'
    path.write_text('\n'.join([','.join(header)] + [','.join(row) for row in rows]) + '\n', encoding='utf-8')
    try:
        frame = load_table(path)
    except MlopsError as error:
        assert 'table.csv' in str(error)
        event(f'load_table: {type(error).__name__}')
        return
    check_table(frame, 'target', task)


# Dates written as text: one format per column, said in the findings, recorded in the schema, and a
# single served row read exactly as training read it.

def dated_table(tmp_path, dates: list[str]) -> pd.DataFrame:
    path = tmp_path / 'dated.csv'
    n = len(dates)
    path.write_text('when,amount,y\n' + ''.join(f'{d},{i * 1.5},{i % 2}\n' for i, d in enumerate(dates)), encoding='utf-8')
    return load_table(path)


def test_day_first_dates_are_read_day_first(tmp_path):
    dates = ['05/11/2023', '13/11/2023', '06/11/2023', '28/02/2024', '01/03/2024', '11/05/2023'] * 4
    clean, findings = validate(dated_table(tmp_path, dates), 'y')
    assert findings['datetime_formats'] == {'when': '%d/%m/%Y'}
    assert any("'when' holds dates, read as '%d/%m/%Y' (day-first: '13/11/2023'" in m for m in findings['messages'])
    schema = infer_schema(clean, 'y')
    assert schema['datetime'] == ['when'] and schema['datetime_formats'] == {'when': '%d/%m/%Y'}
    parsed = parse_datetime(clean['when'], schema['datetime_formats']['when'])
    # one reading for the column: 05/11 is 5 November like 13/11 is 13 November; 11/05 is 11 May
    assert parsed.iloc[:6].tolist() == [pd.Timestamp(x) for x in ['2023-11-05', '2023-11-13', '2023-11-06', '2024-02-28',
                                                                   '2024-03-01', '2023-05-11']]
    # a served row, alone, is read with the recorded format, exactly as in training
    for text, expected in zip(dates[:6], parsed.iloc[:6]):
        assert parse_datetime(pd.Series([text], dtype=object), schema['datetime_formats']['when']).iloc[0] == expected
    # without the recorded format a single row could not know: '05/11/2023' alone reads month-first
    assert parse_datetime(pd.Series(['05/11/2023'])).iloc[0] == pd.Timestamp('2023-05-11')


def test_dates_written_both_ways_are_refused(tmp_path):
    clean, findings = validate(dated_table(tmp_path, ['13/11/2023', '11/13/2023', '01/01/2024', '02/02/2024'] * 3), 'y')
    assert findings['datetime_formats'] == {'when': None}
    assert any("'when' holds dates that cannot be read one way: written both day-first ('13/11/2023') and month-first "
               "('11/13/2023')" in m for m in findings['messages'])
    schema = infer_schema(clean, 'y')
    assert 'when' not in schema['datetime'] and 'when' not in feature_columns(schema)
    assert schema['excluded']['when'].startswith('dates that cannot be read one way')


@pytest.mark.parametrize('dates,expected', [
    (['11/05/2023', '11/13/2023'], '%m/%d/%Y'),               # a second field above 12: month-first
    (['01/02/2023', '03/04/2023'], '%m/%d/%Y'),               # cannot tell: month-first assumed, and said
    (['2023-11-05', '2023-11-13 10:15'], 'mixed'),            # ISO 8601: read value by value
    (['13.11.23 10:15', '01.02.24 08:00'], '%d.%m.%y %H:%M'),
    (['05/11/2023', '2023-11-05'], None),                     # two layouts in one column
])
def test_date_formats(tmp_path, dates, expected):
    clean, findings = validate(dated_table(tmp_path, dates * 4), 'y', test_size=0.5)
    assert findings['datetime_formats'] == {'when': expected}
    schema = infer_schema(clean, 'y')
    assert schema['datetime_formats'].get('when') == expected


words = st.text(alphabet=string.ascii_letters, min_size=1, max_size=8).map(lambda s: 'w' + s)  # never 'NA', 'nan', ...
rows = st.lists(st.tuples(st.integers(-10**12, 10**12),
                          st.floats(allow_nan=False, allow_infinity=False, width=64),
                          words), min_size=1, max_size=20)


@settings(max_examples=60)
@given(rows=rows, suffix=st.sampled_from(['.csv', '.csv.gz', '.parquet']))
def test_round_trip(tmp_path_factory, rows, suffix):
    frame = pd.DataFrame(rows, columns=['count', 'amount', 'word'])
    path = tmp_path_factory.mktemp('roundtrip') / f'table{suffix}'
    if suffix == '.parquet':
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    loaded = load_table(path)
    assert list(loaded.columns) == ['count', 'amount', 'word']
    assert loaded['count'].tolist() == frame['count'].tolist()
    assert loaded['word'].tolist() == frame['word'].tolist()
    np.testing.assert_allclose(loaded['amount'].to_numpy(), frame['amount'].to_numpy(), rtol=1e-15, atol=0)


cells = st.one_of(st.none(), st.just(np.nan), st.just(np.inf), st.integers(-3, 3), st.floats(-5, 5),
                  st.sampled_from(['a', 'b', '1', '2.5', '2020-01-01', 'x y']), st.booleans(),
                  st.just(pd.Timestamp('2020-01-01')), st.just([1, 2]))
columns = st.lists(cells, min_size=12, max_size=12)


@settings(max_examples=120)
@given(data=st.lists(columns, min_size=2, max_size=4), task=st.sampled_from(['auto', 'binary', 'multiclass', 'regression']),
       infer_objects=st.booleans())
def test_any_frame_gives_a_result_or_a_data_error(data, task, infer_objects):
    import json
    from mlops_nb.core import to_json
    frame = pd.DataFrame({f'c{i}': values for i, values in enumerate(data)})
    if infer_objects:
        frame = frame.infer_objects()
    try:
        clean, findings = validate(frame, 'c0', task=task, test_size=0.5)
    except DataError as error:
        assert "'c0'" in str(error) or 'rows' in str(error)
        return
    json.loads(to_json(findings))
    schema = infer_schema(clean, 'c0')
    assert json.loads(to_json(schema)) == schema
    train, test = split(clean, 'c0', findings['task'], test_size=0.5, seed=1)
    assert len(train) + len(test) == findings['rows']


SAMPLES = [('churn.csv', 'churned', 'binary'), ('species.csv', 'species', 'multiclass'),
           ('house_prices.csv', 'price_k', 'regression')]


@pytest.mark.parametrize('name,target,task', SAMPLES)
def test_samples_load_validate_and_split(name, target, task):
    from mlops_nb.core import project_root
    path = project_root() / 'data' / 'samples' / name
    if not path.is_file():
        pytest.skip(f'{path} is absent')
    clean, findings = validate(load_table(path), target)
    assert findings['task'] == task and findings['rows'] == len(clean) > 200
    schema = infer_schema(clean, target)
    assert target not in feature_columns(schema) and len(feature_columns(schema)) >= 4
    train, test = split(clean, target, task, seed=0)
    assert len(train) + len(test) == len(clean)
