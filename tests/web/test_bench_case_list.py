"""Benchmark (not a timed assertion): server time of the case-list page over a large
region. The case list reads Parquet through DuckDB with filters and LIMIT/OFFSET pushed
down; nothing loads all cases into Python.

    .venv/bin/python -m pytest tests/web/test_bench_case_list.py --benchmark-enable
uses 1,000,000 cases (OPENDIP_BENCH_CASES to change); with benchmarks disabled (the
default test run) a 50,000-case region checks the same path once.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.web.conftest import REGION, login


def _large_region(target: Path, n: int) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in ("hospitals.parquet", "directory.parquet", "directory.metrics.json"):
        shutil.copy(REGION / name, target / name)
    base = pq.read_table(REGION / "cases_2026.parquet")
    grouped = pq.read_table(REGION / "grouped.parquet")
    reps = -(-n // base.num_rows)
    cases = pa.concat_tables([base] * reps).slice(0, n)
    groups = pa.concat_tables([grouped] * reps).slice(0, n)
    ids = pc.binary_join_element_wise("B", pc.cast(pa.array(range(n)), pa.string()), "")
    cases = cases.set_column(0, "case_id", ids)
    groups = groups.set_column(0, "case_id", ids)
    pq.write_table(cases, target / "cases_2026.parquet", row_group_size=100_000)
    pq.write_table(groups, target / "grouped.parquet", row_group_size=100_000)


@pytest.fixture
def big_app(tmp_path: Path, request: pytest.FixtureRequest, _fast_argon2: None):
    from opendip.store import repositories as repo
    from opendip.web import Settings, create_app

    enabled = request.config.getoption("benchmark_enable", default=False)
    n = 50_000 if not enabled else int(os.environ.get("OPENDIP_BENCH_CASES", "1000000"))
    _large_region(tmp_path / "big", n)
    app = create_app(Settings(data_dir=tmp_path / "big", background_runs=False))
    with app.state.store.session() as s:
        repo.create_user(s, "agency", "password-123", "agency")
        repo.create_user(s, "h1", "password-123", "hospital", hospital_id="H001")
    app.state.bench_cases = n
    return app


@pytest.mark.parametrize(
    ("user", "query"),
    [
        ("agency", "/cases?page=200"),
        ("agency", "/cases?month=2026-06&page=3"),
        ("h1", "/cases?page=5"),
    ],
)
def test_case_list_page_server_time(benchmark, big_app, user: str, query: str) -> None:
    client = login(big_app, user)
    client.get(query)  # warm the DuckDB views once
    response = benchmark(client.get, query)
    assert response.status_code == 200
    assert "共" in response.text
    benchmark.extra_info["cases"] = big_app.state.bench_cases
