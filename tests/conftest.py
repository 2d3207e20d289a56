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


def pytest_terminal_summary(terminalreporter, config):
    for line in config.stash.get(_SUMMARY, []):
        if isinstance(line, tuple):
            terminalreporter.section(line[0], sep="-")
        else:
            terminalreporter.write_line(line)
