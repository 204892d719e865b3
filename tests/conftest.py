from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"


@pytest.fixture(scope="session")
def demo_policy_path() -> Path:
    return POLICIES / "demo-region.yaml"
