"""Test profiles, the quick subset and the SST data folder.

Hypothesis profiles, chosen by ``HYPOTHESIS_PROFILE`` (default: ``ci`` under CI, else ``dev``):

- ``dev``: quick, for the edit-test loop;
- ``ci``: what CI runs, sized so the whole suite stays within about four minutes of CPU;
- ``thorough``: long runs (at least 1000 random trajectories; the full explicit-size grid),
  and the tests marked ``slow``, which are skipped in the other profiles.

Markers: ``slow`` (thorough profile only; what covers the behaviour quickly is named in the
test), ``heavy`` (more than about a second in the ``ci`` profile). ``-m quick`` selects every
test that is neither: the subset to run while working (well under a minute).

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


def pytest_collection_modifyitems(config, items):
    skip_slow = pytest.mark.skip(reason="slow: runs in the thorough profile "
                                        "(HYPOTHESIS_PROFILE=thorough)")
    for item in items:
        if "slow" in item.keywords and not thorough():
            item.add_marker(skip_slow)
        if "slow" not in item.keywords and "heavy" not in item.keywords:
            item.add_marker(pytest.mark.quick)


@pytest.fixture(scope="session")
def sst_dir(request) -> Path:
    """The folder of the SST files: ``--sst DIR``, else ``$ATTNFLOW_SST``; skip without one."""
    folder = request.config.getoption("--sst") or os.environ.get(SST_ENV)
    if not folder or not Path(folder).is_dir():
        where = f" ({folder} is no folder)" if folder else ""
        pytest.skip(f"SST text files not found{where}: give pytest --sst DIR or set "
                    f"{SST_ENV}=DIR")
    return Path(folder)
