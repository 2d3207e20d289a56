"Shared pytest settings."
from hypothesis import settings

# Property tests run the same examples on every run (CI gives the same answer twice) and have no
# per-example deadline (the test machine is shared and its timing varies).
settings.register_profile("mlops_nb", derandomize=True, deadline=None)
settings.load_profile("mlops_nb")


# Lines that tests/test_browser.py reports (per-notebook Run All timings), printed after the run.
import pytest

_SUMMARY = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def terminal_summary(request) -> list:
    "A list of lines (or (title,) section headers) printed in pytest's terminal summary."
    return request.config.stash.setdefault(_SUMMARY, [])


# The modules that take a minute or more on two cores (pytest --durations, 2026-11-30), longest first. Under
# pytest-xdist (--dist loadfile, scripts/test.sh) the long modules start first and the short ones fill the cores at
# the end; a module missing here only runs later.
LONG_MODULES = ["test_browser.py", "test_cli.py", "test_sweeps.py", "test_dvc.py", "test_mlflow.py", "test_pipeline.py",
                "test_production.py"]


def pytest_collection_modifyitems(config, items):
    "Long modules first (`LONG_MODULES`), the rest in collection order."
    rank = {name: i for i, name in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a module's tests keep their order


def pytest_sessionfinish(session):
    "Under pytest-xdist a worker hands its summary lines to the controller (see `pytest_testnodedown`)."
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["mlops_nb_summary"] = session.config.stash.get(_SUMMARY, [])


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    "The controller collects each xdist worker's summary lines."
    lines = getattr(node, "workeroutput", {}).get("mlops_nb_summary", [])
    node.config.stash.setdefault(_SUMMARY, []).extend(lines)  # execnet keeps the section tuples as tuples


def pytest_terminal_summary(terminalreporter, config):
    for line in config.stash.get(_SUMMARY, []):
        if isinstance(line, tuple):
            terminalreporter.section(line[0], sep="-")
        else:
            terminalreporter.write_line(line)
