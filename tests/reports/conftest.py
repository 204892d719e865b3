from __future__ import annotations

from pathlib import Path

import pytest

from tests.reports.region import make_region


@pytest.fixture(scope="session")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated region (3 000 cases, 3 history years) with annual and monthly runs."""
    return make_region(tmp_path_factory.mktemp("region"))
