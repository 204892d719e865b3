"""Every figure of the 院端分析 recomputed independently, with DuckDB SQL on the run's files.

The run: the small test region (tests/web/region) settled for 2026 by
`opendip.settlement.run.run_year` with the demo policy. The cost/mean ratio, the reference
mean and the thresholds are read back from scoring's own explanation text of each case
(independent of the analysis code, which recomputes them from the policy and directory).
"""

from __future__ import annotations

import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opendip.policy import demo_policy_path
from opendip.reports.hospital import build_hospital_report
from opendip.scoring.explain import render_column
from opendip.settlement.run import InputFiles, run_year

REGION = Path(__file__).resolve().parents[1] / "web" / "region"
HOSPITALS = ("H004", "H006", "H001")
BAND = Decimal("0.5")
Q4 = Decimal("0.0001")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generated")
    for name in ("cases_2026", "grouped", "directory", "hospitals"):
        shutil.copy(REGION / f"{name}.parquet", root / f"{name}.parquet")
    # The demo policy with budgets sized for 400 cases (not 100 000), so that hospitals and
    # groups both gain and lose.
    text = demo_policy_path().read_text(encoding="utf-8")
    for big, small in (("420000000", "1450000"), ("1150000000", "3900000")):
        assert f"fund_budget_yuan: {big}" in text
        text = text.replace(f"fund_budget_yuan: {big}", f"fund_budget_yuan: {small}")
    (root / "policy.yaml").write_text(text, encoding="utf-8")
    files = InputFiles(
        policy=root / "policy.yaml",
        cases=root / "cases_2026.parquet",
        grouped=root / "grouped.parquet",
        directory=root / "directory.parquet",
        hospitals=root / "hospitals.parquet",
    )
    run_year(files, 2026, root / "settlement", excel=False)
    return root / "settlement"


@pytest.fixture(scope="module")
def sql(run: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # The run keeps the explanation's facts; the sentence users read is rendered from them.
    scored = pq.read_table(run / "cases.parquet")
    scored = scored.append_column("explanation", pa.array(render_column(scored), pa.string()))
    con.register("scored", scored)
    con.execute(
        f"""
        CREATE TABLE c AS
        SELECT s.* EXCLUDE (total_cost_fen, los_days), r.department, r.doctor_id, r.total_cost AS cost,
               regexp_extract(s.explanation, '次均费用([0-9.]+)元，费用倍率', 1) AS mean_txt,
               regexp_extract(s.explanation, '费用倍率([0-9.]+)', 1) AS ratio_txt,
               regexp_extract(s.explanation, '在([0-9.]+)～([0-9.]+)倍之间', 1) AS low_txt,
               regexp_extract(s.explanation, '在([0-9.]+)～([0-9.]+)倍之间', 2) AS high_txt
        FROM scored s
        JOIN read_parquet('{run.parent / "cases_2026.parquet"}') r USING (case_id)
        """
    )
    return con


def rows(con: duckdb.DuckDBPyConnection, query: str, *params: Any) -> list[dict[str, Any]]:
    cur = con.execute(query, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def q4(num: int | Decimal, den: int | Decimal) -> Decimal:
    return (Decimal(num) / Decimal(den)).quantize(Q4, rounding=ROUND_HALF_UP)


SUMS = """
    count(*) AS cases, sum(cost) AS cost, sum(dip_amount_fen) AS dip,
    sum(fund_payable_fen) AS fund, sum(ffs_fund_fen) AS ffs, sum(case_score) AS score,
    sum(CASE WHEN deviation IN ('high', 'extreme') THEN 1 ELSE 0 END) AS high,
    sum(CASE WHEN deviation = 'low' THEN 1 ELSE 0 END) AS low
"""


def check_row(got: dict[str, Any], want: dict[str, Any]) -> None:
    n = want["cases"]
    assert got["cases"] == n
    assert got["total_cost_fen"] == want["cost"]
    assert got["dip_amount_fen"] == want["dip"]
    assert got["balance_fen"] == want["dip"] - want["cost"]
    assert got["balance_rate"] == q4(want["dip"] - want["cost"], want["cost"])
    assert got["fund_payable_fen"] == want["fund"]
    assert got["ffs_fund_fen"] == want["ffs"]
    assert got["fund_balance_fen"] == want["fund"] - want["ffs"]
    assert got["cmi"] == q4(Decimal(want["score"]), n * 100)  # demo base score 100
    assert (got["high_cases"], got["low_cases"]) == (want["high"], want["low"])


@pytest.mark.parametrize("hospital", HOSPITALS)
def test_every_figure_matches_sql(run: Path, sql: duckdb.DuckDBPyConnection, hospital: str) -> None:
    report = build_hospital_report(run, hospital, near_band=BAND, near_limit=100_000)
    where = "WHERE hospital_id = ?"

    total = rows(sql, f"SELECT {SUMS} FROM c {where}", hospital)[0]
    fig = {f.key: f.value for f in report.figures()}
    assert fig["hospital.cases"] == total["cases"] > 0
    assert fig["hospital.total_cost_fen"] == total["cost"]
    assert fig["hospital.dip_amount_fen"] == total["dip"]
    assert fig["hospital.balance_fen"] == total["dip"] - total["cost"]
    assert fig["hospital.balance_rate"] == q4(total["dip"] - total["cost"], total["cost"])
    assert fig["hospital.fund_balance_fen"] == total["fund"] - total["ffs"]
    assert fig["hospital.cmi"] == q4(Decimal(total["score"]), total["cases"] * 100)
    nd = sql.execute(
        f"SELECT count(*) FROM read_parquet('{run / 'not_dip.parquet'}') {where}", [hospital]
    ).fetchone()[0]
    assert fig["hospital.not_dip_cases"] == nd

    for key, cols in (
        ("hospital.departments", ["department"]),
        ("hospital.doctors", ["doctor_id", "department"]),
        ("hospital.groups", ["group_code"]),
    ):
        keys = ", ".join(cols)
        want = rows(sql, f"SELECT {keys}, {SUMS} FROM c {where} GROUP BY {keys}", hospital)
        got = report.table(key).rows
        assert len(got) == len(want)
        by_key = {tuple(r[c] for c in cols): r for r in got}
        for w in want:
            check_row(by_key[tuple(w[c] for c in cols)], w)
        balances = [r["balance_fen"] for r in got]
        assert balances == sorted(balances)  # biggest loss first

    groups = rows(
        sql,
        f"SELECT group_code, sum(dip_amount_fen) - sum(cost) AS b FROM c {where} "
        "GROUP BY group_code",
        hospital,
    )
    losers = sorted((g for g in groups if g["b"] < 0), key=lambda g: (g["b"], g["group_code"]))
    gainers = sorted((g for g in groups if g["b"] > 0), key=lambda g: (-g["b"], g["group_code"]))
    assert [r["group_code"] for r in report.table("hospital.groups_losers").rows] == [
        g["group_code"] for g in losers[:10]
    ]
    assert [r["group_code"] for r in report.table("hospital.groups_gainers").rows] == [
        g["group_code"] for g in gainers[:10]
    ]

    dev = {
        r["deviation"]: r
        for r in rows(sql, f"SELECT deviation, {SUMS} FROM c {where} GROUP BY 1", hospital)
    }
    for kind in ("high", "low", "extreme", "special_review"):
        r = dev.get(kind)
        assert fig[f"hospital.{kind}_cases"] == (r["cases"] if r else 0)
        assert fig[f"hospital.{kind}_balance_fen"] == (r["dip"] - r["cost"] if r else 0)

    # Near-threshold cases from scoring's explanation: mean (yuan → fen) and thresholds.
    near = """
        SELECT case_id, cost,
               CAST(CAST(mean_txt AS DECIMAL(18, 2)) * 100 AS BIGINT) AS mean_fen,
               CAST(ratio_txt AS DECIMAL(18, 4)) AS ratio,
               CAST({thr} AS DECIMAL(18, 4)) AS threshold
        FROM c WHERE hospital_id = ? AND deviation = 'normal' AND mean_txt <> ''
          AND {cond}
        ORDER BY {gap}, case_id
    """
    cost = "CAST(cost AS DECIMAL(38, 4))"
    mean = "CAST(mean_txt AS DECIMAL(38, 4)) * 100"
    high = rows(
        sql,
        near.format(
            thr="high_txt",
            cond=f"{cost} >= (CAST(high_txt AS DECIMAL(18, 4)) - {BAND}) * {mean}",
            gap="CAST(high_txt AS DECIMAL(18, 4)) - CAST(ratio_txt AS DECIMAL(18, 4))",
        ),
        hospital,
    )
    low = rows(
        sql,
        near.format(
            thr="low_txt",
            cond=f"{cost} <= (CAST(low_txt AS DECIMAL(18, 4)) + {BAND}) * {mean}",
            gap="CAST(ratio_txt AS DECIMAL(18, 4)) - CAST(low_txt AS DECIMAL(18, 4))",
        ),
        hospital,
    )
    for key, want in (("hospital.near_high", high), ("hospital.near_low", low)):
        got = report.table(key).rows
        assert [(r["case_id"], r["mean_fen"], r["ratio"], r["threshold"]) for r in got] == [
            (w["case_id"], w["mean_fen"], w["ratio"], w["threshold"]) for w in want
        ]
    assert fig["hospital.near_high_cases"] == len(high)
    assert fig["hospital.near_low_cases"] == len(low)

    hist = rows(
        sql,
        "SELECT least(floor(CAST(ratio_txt AS DECIMAL(18, 4)) * 10), 40) AS b, count(*) AS n "
        f"FROM c {where} AND ratio_txt <> '' GROUP BY 1",
        hospital,
    )
    points = report.chart("hospital.ratio_histogram").series[0].points
    assert [n for _, n in points] == [
        next((h["n"] for h in hist if int(h["b"]) == i), 0) for i in range(41)
    ]


def test_ratio_class_agrees_with_scoring_on_every_case(run: Path) -> None:
    """The analysis's own cost/mean classification equals scoring's deviation class."""
    from opendip.engine import connect, table_from_arrow
    from opendip.reports.hospital.source import case_facts, hospital_row, resolve_run
    from opendip.reports.hospital.thresholds import threshold_table, with_ratio

    src = resolve_run(run)
    scored = pq.read_table(run / "cases.parquet")
    explanations = dict(
        zip(scored.column("case_id").to_pylist(), render_column(scored), strict=True)
    )
    con = connect()
    params = table_from_arrow(con, threshold_table(src.policy), "p")
    checked = 0
    for hid in ("H001", "H002", "H003", "H004", "H005", "H006"):
        level = str(hospital_row(con, src, hid)["level"])
        t = with_ratio(case_facts(con, src, hid, level), params, BAND).to_pyarrow().to_pylist()
        for r in t:
            if r["ratio_class"] is None:
                continue
            want = "high" if r["deviation"] == "extreme" else r["deviation"]
            assert r["ratio_class"] == want, r["case_id"]
            assert f"费用倍率{r['ratio']}" in explanations[r["case_id"]]
            checked += 1
    assert checked > 200


def test_monthly_run(run: Path) -> None:
    """A monthly pre-settlement run (budget point value) is analysed the same way."""
    from opendip.settlement.run import run_month

    root = run.parent
    files = InputFiles(
        policy=root / "policy.yaml",
        cases=root / "cases_2026.parquet",
        grouped=root / "grouped.parquet",
        directory=root / "directory.parquet",
        hospitals=root / "hospitals.parquet",
    )
    month_dir = root / "month-2026-03"
    run_month(files, "2026-03", month_dir, excel=False)
    con = duckdb.connect()
    want = con.execute(
        f"SELECT count(*), sum(dip_amount_fen), sum(t.total_cost) "
        f"FROM read_parquet('{month_dir / 'cases.parquet'}') s "
        f"JOIN read_parquet('{root / 'cases_2026.parquet'}') t USING (case_id) "
        "WHERE s.hospital_id = 'H004'"
    ).fetchone()
    report = build_hospital_report(month_dir, "H004")
    assert report.period == "2026-03" and report.provenance["run_kind"] == "monthly"
    assert report.figure("hospital.cases").value == want[0] > 0
    assert report.figure("hospital.dip_amount_fen").value == want[1]
    assert report.figure("hospital.balance_fen").value == want[1] - want[2]
