"""Hypothesis profiles, chosen by ``HYPOTHESIS_PROFILE`` (default: ``ci`` under CI, else ``dev``).

- ``dev``: quick, for the edit-test loop;
- ``ci``: what CI runs, sized so the whole suite stays well under 10 minutes on 2 cores;
- ``thorough``: long runs (at least 1000 random trajectories; the full explicit-size grid).
"""

import os

from hypothesis import HealthCheck, settings

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
