"""Test profiles, the quick subset and the SST data folder.

Hypothesis profiles, chosen by ``HYPOTHESIS_PROFILE`` (default: ``ci`` under CI, else ``dev``):

- ``dev``: quick, for the edit-test loop;
- ``ci``: what CI runs, sized so the whole suite stays within about four minutes of CPU;
- ``thorough``: long runs (at least 1000 random trajectories; the full explicit-size grid),
  and the tests marked ``slow``, which are skipped in the other profiles.

Markers: ``slow`` (thorough profile only; what covers the behaviour quickly is named in the
test), ``heavy`` (about a second or more each in the ``ci`` profile: the tests of
``HEAVY_MODULES`` and those marked so). ``-m quick`` selects every test that is neither: the
subset to run while working (under a minute), beside the test file of what you change.

The SST tests read the folder given by ``--sst DIR`` or the environment variable
``ATTNFLOW_SST`` (as ``attnflow reproduce`` does) and are skipped when neither names one.
"""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from attnflow.commands.reproduce import SST_ENV

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow],
               print_blob=True)
settings.register_profile("dev", max_examples=10, **_common)
settings.register_profile("ci", max_examples=25, derandomize=True, **_common)
settings.register_profile("thorough", max_examples=1000, **_common)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
settings.load_profile(PROFILE)


def thorough() -> bool:
    """Whether the long-running profile is active (the full grids run only then)."""
    return PROFILE == "thorough"


def pytest_addoption(parser):
    parser.addoption("--sst", metavar="DIR", default=None,
                     help=f"folder of the SST text files (default: ${SST_ENV})")


#: Test modules made mostly of heavy tests: proofs and derivations re-checked with SymPy,
#: law discovery, whole experiments and campaigns, signals to worker processes, the
#: documentation's commands.
HEAVY_MODULES = {"test_attention_laws", "test_audit", "test_audit_chain",
                 "test_audit_tampering", "test_campaign", "test_conjecture",
                 "test_conservation", "test_derivation", "test_discover",
                 "test_discover_models", "test_discovered_laws", "test_docs",
                 "test_experiments", "test_generated", "test_hostile", "test_kill_conjecture",
                 "test_properties"}


def pytest_collection_modifyitems(config, items):
    skip_slow = pytest.mark.skip(reason="slow: runs in the thorough profile "
                                        "(HYPOTHESIS_PROFILE=thorough)")
    for item in items:
        if item.module.__name__.rpartition(".")[2] in HEAVY_MODULES:
            item.add_marker(pytest.mark.heavy)
        if "slow" in item.keywords and not thorough():
            item.add_marker(skip_slow)
        if "slow" not in item.keywords and "heavy" not in item.keywords:
            item.add_marker(pytest.mark.quick)


@pytest.fixture
def figures_skipped(monkeypatch):
    """The experiments' figures built and named but not rendered to files, for tests of the
    experiments' numbers: rendering PNG and PDF costs about a second per figure, and the
    figures themselves are checked by tests/test_figures.py and the end-to-end tests."""
    from numeric import plots

    monkeypatch.setattr(plots, "save", lambda fig, stem: [Path(stem).with_suffix(".png"),
                                                          Path(stem).with_suffix(".pdf")])


@pytest.fixture(scope="session")
def sst_dir(request) -> Path:
    """The folder of the SST files: ``--sst DIR``, else ``$ATTNFLOW_SST``; skip without one."""
    folder = request.config.getoption("--sst") or os.environ.get(SST_ENV)
    if not folder or not Path(folder).is_dir():
        where = f" ({folder} is no folder)" if folder else ""
        pytest.skip(f"SST text files not found{where}: give pytest --sst DIR or set "
                    f"{SST_ENV}=DIR")
    return Path(folder)
