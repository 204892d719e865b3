from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opendip.synth import generate_region


@pytest.fixture(scope="session")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("region")
    generate_region(out, hospitals=40, cases_per_year=20_000, years=(2025, 2026), seed=11)
    return out


@pytest.fixture(scope="session")
def cases_2026(region: Path) -> pa.Table:
    return pq.read_table(region / "cases_2026.parquet")


@pytest.fixture(scope="session")
def labels(region: Path) -> pa.Table:
    return pq.read_table(region / "labels.parquet")
