"""The whole pipeline on local Spark gives DuckDB's tables, row for row, money to the fen
(issue 16 §1, docs/scale.md): QC → directory → grouping → scoring → monthly and annual
settlement → supervision, 16 tables. Slow (Spark plans every query): one small region."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from opendip.codes import demo_code_tables
from opendip.directory.build import build_directory
from opendip.engine import connect, read_parquet, table_from_arrow
from opendip.grouping.inputs import diagnosis_codes, procedure_types
from opendip.pipeline import group_checked, quality_control
from opendip.policy import PolicyFile, load_policy
from opendip.scoring import score_cases
from opendip.settlement.clearing import Inputs, settle_month, settle_year
from opendip.supervision.prepare import SupervisionInputs
from opendip.supervision.run import supervise
from opendip.synth.policy import scaled_demo_policy
from opendip.synth.region import generate_region

CASES = 600
HISTORY = (2024, 2025)


def _spark_available() -> bool:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    return shutil.which("java") is not None


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spark-region")
    generate_region(out, hospitals=6, cases_per_year=CASES, years=(*HISTORY, 2026), seed=3)
    scaled_demo_policy(CASES, out / "policy.yaml")
    return out


def pipeline(engine: str, region: Path) -> dict[str, pa.Table]:
    """QC → directory → grouping → scoring → monthly and annual settlement → supervision,
    every output table as Arrow."""
    con = connect(engine)  # type: ignore[arg-type]
    codes = demo_code_tables()
    policy_path = region / "policy.yaml"
    policy, pf = load_policy(policy_path), PolicyFile.read(policy_path)
    cases = read_parquet(con, region / "cases_2026.parquet", "cases")
    hospitals = read_parquet(con, region / "hospitals.parquet", "hospitals")
    history = [region / f"cases_{y}.parquet" for y in HISTORY]
    out: dict[str, pa.Table] = {}

    qc = quality_control(con, cases, codes, policy, policy_path)
    out["qc_findings"] = qc.findings.to_pyarrow()
    out["qc_case_status"] = qc.case_status.to_pyarrow()
    built = build_directory(
        read_parquet(con, history),
        hospitals,
        procedure_types(con, codes),
        policy,
        diagnosis_codes=diagnosis_codes(con, codes),
    )
    out["directory"] = built.table
    directory = table_from_arrow(con, built.table, "directory_t")
    status = table_from_arrow(con, out["qc_case_status"], "status_t")
    out["grouped"] = group_checked(con, cases, directory, codes, policy, status)
    grouped = table_from_arrow(con, out["grouped"], "grouped_t")
    mean = built.metrics.get("all_case_mean_fen")
    scored = score_cases(cases, grouped, directory, hospitals, pf, all_case_mean_fen=mean)
    out["scored"] = scored.contract().to_pyarrow()
    inputs = Inputs(cases, grouped, directory, hospitals, pf, all_case_mean_fen=mean)
    month = settle_month(inputs, "2026-03")
    out |= {"month_hospitals": month.hospitals, "month_cases": month.cases}
    out["month_not_dip"] = month.not_dip
    year = settle_year(inputs, 2026)
    for name in ("hospitals", "departments", "communities", "pools", "not_dip", "cases"):
        out[f"year_{name}"] = getattr(year, name)
    sup = supervise(
        SupervisionInputs(
            cases,
            read_parquet(con, history),
            hospitals,
            grouped,
            table_from_arrow(con, out["scored"], "scored_t"),
        ),
        policy,
    )
    out["supervision_leads"], out["supervision_indicators"] = sup.leads, sup.indicators
    return out


def _rows(table: pa.Table) -> list[str]:
    """Rows in a canonical order (engines may return unordered results in any order)."""
    return sorted(repr(r) for r in table.to_pylist())


@pytest.mark.spark
@pytest.mark.slow
def test_whole_pipeline_on_spark_equals_duckdb(region: Path) -> None:
    if not _spark_available():
        if os.environ.get("CI"):
            pytest.fail("CI must run the Spark pipeline test: pyspark or java missing")
        pytest.skip("pyspark or java not installed")
    expected = pipeline("duckdb", region)
    got = pipeline("spark", region)
    # the region exercises every step: QC findings, groups, money in both settlements
    assert expected["qc_findings"].num_rows > 0 and expected["directory"].num_rows > 50
    assert expected["year_cases"].num_rows > 500 and expected["month_cases"].num_rows > 0
    assert sum(expected["year_hospitals"].column("clearing_payment_fen").to_pylist()) != 0
    assert expected["supervision_leads"].num_rows > 0
    assert expected["supervision_indicators"].num_rows > 1000
    assert sorted(got) == sorted(expected) and len(expected) == 16
    compared = list(expected)
    for name in compared:
        assert got[name].schema == expected[name].schema, name
        assert got[name].num_rows == expected[name].num_rows, name
        assert _rows(got[name]) == _rows(expected[name]), name
