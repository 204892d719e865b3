from __future__ import annotations

import os
import shutil
from decimal import Decimal
from pathlib import Path

import ibis
import pyarrow as pa
import pytest

from opendip.engine import connect, read_parquet, table_from_arrow, write_parquet


def _cases() -> pa.Table:
    return pa.table(
        {
            "hospital_id": ["H001", "H001", "H002", "H002", "H002"],
            "total_cost": pa.array([120_00, 80_050, 999, 1_000_001, 5], pa.int64()),
            "score": pa.array(
                [Decimal("1.2345"), Decimal("2.0000"), Decimal("0.5001"), Decimal("3"), None],
                pa.decimal128(18, 4),
            ),
        }
    )


def _per_hospital(t: ibis.Table) -> ibis.Table:
    """A representative batch step: grouped sums of fen and decimal scores."""
    return (
        t.group_by("hospital_id")
        .aggregate(
            cases=t.count(),
            cost_fen=t.total_cost.sum(),
            score=t.score.sum(),
            big=(t.total_cost > 1000).sum(),
        )
        .order_by("hospital_id")
    )


def test_duckdb_round_trip(tmp_path: Path) -> None:
    con = connect()
    t = table_from_arrow(con, _cases(), "cases")
    out = write_parquet(_per_hospital(t), tmp_path / "out.parquet")
    back = read_parquet(con, out).to_pyarrow().to_pylist()
    assert back == [
        {
            "hospital_id": "H001",
            "cases": 2,
            "cost_fen": 92_050,
            "score": Decimal("3.2345"),
            "big": 2,
        },
        {
            "hospital_id": "H002",
            "cases": 3,
            "cost_fen": 1_001_005,
            "score": Decimal("3.5001"),
            "big": 1,
        },
    ]


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="未知引擎"):
        connect("oracle")  # type: ignore[arg-type]


def _spark_available() -> bool:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    return shutil.which("java") is not None


@pytest.mark.spark
def test_spark_gives_the_duckdb_result() -> None:
    if not _spark_available():
        if os.environ.get("CI"):
            pytest.fail("CI must run the Spark smoke test: pyspark or java missing")
        pytest.skip("pyspark or java not installed")
    expected = _per_hospital(table_from_arrow(connect(), _cases(), "cases")).to_pyarrow()
    spark = connect("spark")
    got = _per_hospital(table_from_arrow(spark, _cases(), "cases")).to_pyarrow()
    assert got.to_pylist() == expected.to_pylist()


@pytest.mark.spark
def test_spark_grouping_keys_equal_duckdb() -> None:
    """A real batch step (the grouping key of cases) on Spark gives the DuckDB answer."""
    if not _spark_available():
        if os.environ.get("CI"):
            pytest.fail("CI must run the Spark smoke test: pyspark or java missing")
        pytest.skip("pyspark or java not installed")
    import datetime as dt

    from opendip.codes import demo_code_tables
    from opendip.contract import CASES
    from opendip.directory.keys import with_keys
    from opendip.policy import demo_policy_path, load_policy

    policy = load_policy(demo_policy_path())
    day = dt.date(2026, 6, 1)
    specs = [
        ("K35.800", "47.0100", ["88.0100"]),
        ("I10.x00", None, []),
        ("K80.100", "51.2300", ["51.2300", "99.1000"]),  # duplicate and ignored codes
    ]
    rows = [
        {"case_id": str(i), "hospital_id": "H1", "patient_id": "P", "insurance_type": "resident",
         "sex": "1", "age": 40, "admit_date": day, "discharge_date": day, "main_diagnosis": dx,
         "other_diagnoses": [], "main_procedure": mp, "other_procedures": op, "total_cost": 100,
         "settle_month": "2026-06"}
        for i, (dx, mp, op) in enumerate(specs)
    ]  # fmt: skip
    cases = CASES.conform(pa.Table.from_pylist(rows))
    types = demo_code_tables().procedures.select(["code", "procedure_type"])
    results = []
    for engine in ("duckdb", "spark"):
        con = connect(engine)  # type: ignore[arg-type]
        keyed = with_keys(
            table_from_arrow(con, cases, "c"), policy, table_from_arrow(con, types, "pt")
        )
        cols = keyed.select("case_id", "dx_key", "proc_key", "proc_type", "surgical").order_by(
            "case_id"
        )
        results.append(cols.to_pyarrow().to_pylist())
    assert results[0] == results[1]
    assert results[0][2]["proc_key"] == "51.2300" and results[0][1]["proc_key"] == ""
