"""Hypothesis profiles: `dev` (default, quick) and `ci` (hundreds of examples, fixed seed).

`make test` (and so CI) runs with HYPOTHESIS_PROFILE=ci; CI=true selects it too. The `ci`
profile is derandomized: every run draws the same examples, so a CI failure reproduces
with `HYPOTHESIS_PROFILE=ci pytest <test>`. Property tests that run a whole batch per example
take their count from `examples(dev, ci)` rather than the profile's default.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=300,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
# scripts/mutation.py: the dev counts, but the same examples on every mutant
settings.register_profile("mutation", deadline=None, derandomize=True, database=None)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or (
    "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"
)
settings.load_profile(PROFILE)


def examples(dev: int, ci: int) -> int:
    """Examples for a property test whose examples are expensive (a batch run each)."""
    return ci if PROFILE == "ci" else dev
