"""The house rules that keep one owner per concern (issue 9), checked on the source itself:

- no module or notebook other than `runs` spells the name of a file or folder inside a run directory
  (and none but `models` the model card's), so the layout changes in one place;
- the lists of tasks, model names and built-in datasets are written once, in `vocabulary`;
- the training notebook declares each parameter once (its `parameters` cell) and never lists them again;
- an import inside a function says why it is there; no function is longer than 40 lines.
(Every notebook naming the python3 kernel is checked in tests/test_notebooks.py.)
"""
from __future__ import annotations

import ast
import io
import json
import tokenize
from pathlib import Path

import pytest

from mlops_nb.core import project_root
from mlops_nb.runs import MonitoringReport, RunDir
from mlops_nb import vocabulary

ROOT = project_root()
MODULES = sorted(p for p in (ROOT/'mlops_nb').glob('*.py') if p.name not in ('_modidx.py', '__init__.py'))
NOTEBOOKS = sorted((ROOT/'nbs').rglob('*.ipynb'))


def code_cells(notebook: Path) -> list[str]:
    return [''.join(c['source']) for c in json.loads(notebook.read_text())['cells'] if c['cell_type'] == 'code']


def string_tokens(source: str) -> list[tuple[int, str]]:
    "(line, text) of every string literal in Python source (IPython magics and shell lines skipped)."
    lines = [line if not line.lstrip().startswith(('%', '!')) else '' for line in source.splitlines()]
    tokens = tokenize.generate_tokens(io.StringIO('\n'.join(lines) + '\n').readline)
    return [(t.start[0], t.string) for t in tokens if t.type == tokenize.STRING]


def run_file_names() -> tuple[set, set]:
    "(names that must not appear inside a literal, names that must not be a whole literal), read from the owner."
    run, report = RunDir('/r'), MonitoringReport('/r/m')
    files = {p.name for p in (run.params, run.manifest, run.metrics, run.report, run.reference_profile,
                              report.drift, report.drift_table, report.quality)}
    folders = {run.plots.name, run.monitoring.name, run.prediction_log('x').parent.name, run.predictions('x').parent.name,
               run.models.name}
    return files | {f'{folder}/' for folder in folders}, {run.plots.name, run.monitoring.name, run.prediction_log('x').parent.name}


def offending_literals(source: str, where: str, inside: set, whole: set) -> list[str]:
    found = []
    for line, text in string_tokens(source):
        body = text.lstrip('rbfuRBFU').strip('\'"')
        if any(name in body for name in inside) or body in whole: found.append(f"{where}:{line}: {text[:80]}")
    return found


def test_only_runs_spells_a_run_file_name():
    inside, whole = run_file_names()
    assert 'metrics.json' in inside and 'prediction_log' in whole  # the owner was read
    found = []
    for module in MODULES:
        if module.name != 'runs.py': found += offending_literals(module.read_text(), module.name, inside, whole)
    for notebook in NOTEBOOKS:
        if notebook.name != '06_runs.ipynb':
            for cell in code_cells(notebook): found += offending_literals(cell, notebook.name, inside, whole)
    assert not found, 'run file names spelled outside runs.RunDir:\n' + '\n'.join(found)


def test_only_models_spells_the_model_card_name():
    from mlops_nb.models import MODEL_CARD
    found = [m.name for m in MODULES if m.name != 'models.py' and MODEL_CARD in m.read_text()]
    found += [nb.name for nb in NOTEBOOKS if nb.name != '04b_models.ipynb' and any(MODEL_CARD in c for c in code_cells(nb))]
    assert not found, f'{MODEL_CARD} spelled outside mlops_nb.models: {found}'


VOCABULARY_LISTS = {'tasks': set(vocabulary.TASKS), 'model names': set(vocabulary.MODEL_NAMES),
                    'built-in datasets': set(vocabulary.DATASETS)}


def test_each_list_of_names_is_written_once():
    found = []
    for module in MODULES:
        if module.name == 'vocabulary.py': continue
        for node in ast.walk(ast.parse(module.read_text())):
            # a list, tuple or set naming every task (or model, or dataset) again; a dict keyed by task maps each
            # one to something of the module's own (a scorer per task) and is not a second list
            items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else None
            if not items: continue
            values = {item.value for item in items if isinstance(item, ast.Constant) and isinstance(item.value, str)}
            found += [f"{module.name}:{node.lineno}: the {what}" for what, names in VOCABULARY_LISTS.items() if names <= values]
    assert not found, 'lists that belong to mlops_nb.vocabulary written again:\n' + '\n'.join(found)


def test_the_training_notebook_declares_each_parameter_once():
    from mlops_nb.runner import notebook_parameters
    from mlops_nb.training import train_notebook
    declared = set(notebook_parameters(train_notebook()))
    cells = json.loads(train_notebook().read_text())['cells']
    uses = []
    for cell in cells:
        if cell['cell_type'] != 'code' or 'parameters' in cell['metadata'].get('tags', []): continue
        tokens = list(tokenize.generate_tokens(io.StringIO(''.join(cell['source']) + '\n').readline))
        for before, token in zip([None] + tokens, tokens):
            if token.type == tokenize.NAME and token.string in declared and not (before and before.string == '.'):
                uses.append(f"{token.string} (line {token.start[0]}: {token.line.strip()[:60]})")
    assert not uses, 'parameters listed again outside the parameters cell (use run.params):\n' + '\n'.join(uses)


def test_imports_inside_functions_say_why():
    found = []
    for module in MODULES:
        source = module.read_text()
        lines = source.splitlines()
        for function in [n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and '#' not in lines[node.lineno - 1]:
                    found.append(f"{module.name}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not found, 'imports inside functions without a reason comment:\n' + '\n'.join(found)


def test_no_function_is_longer_than_40_lines():
    found = []
    for module in MODULES:
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 40:
                found.append(f"{module.name}: {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not found, 'functions over 40 lines (split them into named steps):\n' + '\n'.join(found)


def test_relative_paths_mean_the_project_root_in_every_mode():
    "Issue 9a: the training notebook's default folders are the project root's, whatever the working directory."
    import os
    from mlops_nb.training import check_train_parameters
    here = os.getcwd()
    try:
        os.chdir(ROOT/'nbs'/'pipelines')  # where JupyterLab starts the notebook's kernel
        checked = check_train_parameters({})
    finally: os.chdir(here)
    assert checked['runs_dir'] == str(ROOT/'runs') and checked['data_dir'] == str(ROOT/'data')
