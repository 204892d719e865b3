from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opendip.synth import generate_region


@pytest.fixture(
    scope="session",
    params=[None, 5_000],
    ids=["one-block", "blocks-of-5000"],
)
def region(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 000 cases a year, made in one block (as every small region is) and in four blocks
    of 5 000: every realism test must hold across block boundaries too."""
    out = tmp_path_factory.mktemp("region")
    blocks = {"block_cases": request.param} if request.param else {}
    generate_region(out, hospitals=40, cases_per_year=20_000, years=(2025, 2026), seed=11, **blocks)
    return out


@pytest.fixture(scope="session")
def cases_2026(region: Path) -> pa.Table:
    return pq.read_table(region / "cases_2026.parquet")


@pytest.fixture(scope="session")
def labels(region: Path) -> pa.Table:
    return pq.read_table(region / "labels.parquet")
