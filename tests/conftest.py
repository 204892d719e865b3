from __future__ import annotations

from pathlib import Path

import pytest

import tests.profiles  # noqa: F401  (registers and loads the hypothesis profile)

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"


@pytest.fixture(scope="session")
def demo_policy_path() -> Path:
    return POLICIES / "demo-region.yaml"


def policy_with(overrides: dict | None = None, at: str = "2026-01-01"):
    """The demo policy with some keys replaced: {"directory.trim": {"method": "none"}}."""
    import datetime as dt

    import yaml

    from opendip.policy import Policy
    from opendip.policy.dated import resolve
    from opendip.policy.load import _DecimalLoader

    tree = yaml.load(
        (POLICIES / "demo-region.yaml").read_text(encoding="utf-8"), Loader=_DecimalLoader
    )
    for path, value in (overrides or {}).items():
        node = tree
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return Policy.model_validate(resolve(tree, dt.date.fromisoformat(at)))
