"""Every figure and table of the monthly and annual reports and of the publication,
recomputed independently with DuckDB SQL from the run's files (not with the report code).

The key sets must match exactly: a figure added to the report without a recomputation here
fails the test.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from opendip.reports.region import Extras, build_publication, build_report
from tests.reports.region import MONTH

Q4 = Decimal("0.0001")
Q2 = Decimal("0.01")
LEVELS = ("tertiary", "secondary", "primary", "unrated")


def q(num: Any, den: Any, places: Decimal = Q4) -> Decimal | None:
    if not den:
        return None
    return (Decimal(num) / Decimal(den)).quantize(places, rounding=ROUND_HALF_UP)


def fetch(sql: str) -> list[tuple]:
    return duckdb.connect().execute(sql).fetchall()


def mean_fen(total: int, n: int) -> int:
    return int((Decimal(total) / n).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class Sql:
    def __init__(self, root: Path, run: Path) -> None:
        self.run = run
        self.con = duckdb.connect()
        self.con.execute(f"CREATE VIEW s AS SELECT * FROM read_parquet('{run / 'cases.parquet'}')")
        self.con.execute(
            f"CREATE VIEW raw AS SELECT * FROM read_parquet('{root / 'cases_2026.parquet'}')"
        )
        self.con.execute(
            f"CREATE VIEW h AS SELECT * FROM read_parquet('{root / 'hospitals.parquet'}')"
        )
        self.con.execute(
            f"CREATE VIEW g AS SELECT * FROM read_parquet('{root / 'grouped.parquet'}')"
        )
        # One row per scored case with its cost facts and hospital level.
        self.con.execute(
            """CREATE VIEW sc AS SELECT s.*, raw.total_cost AS cost, raw.settle_month,
                      h.level, h.name AS hname,
                      (SELECT any_value(group_type) FROM g WHERE g.case_id = s.case_id) AS gtype
               FROM s JOIN raw ON raw.case_id = s.case_id JOIN h ON h.hospital_id = s.hospital_id"""
        )

    def one(self, sql: str, *params: Any) -> tuple:
        return self.con.execute(sql, list(params)).fetchone()

    def all(self, sql: str, *params: Any) -> list[tuple]:
        return self.con.execute(sql, list(params)).fetchall()


def expected_overview(sql: Sql, root: Path, where: str) -> dict[str, Any]:
    n, hospitals = sql.one(f"SELECT count(*), count(DISTINCT hospital_id) FROM raw WHERE {where}")
    checked, passed = sql.one(
        f"""SELECT count(*), sum(passed::INT) FROM read_parquet('{root / "qc/case_status.parquet"}')
            WHERE case_id IN (SELECT case_id FROM raw WHERE {where})"""
    )
    grouped, groups = sql.one(
        f"""SELECT count(*), count(DISTINCT group_code) FROM g
            WHERE group_type <> 'unmatched' AND case_id IN (SELECT case_id FROM raw WHERE {where})"""
    )
    dip = sql.one("SELECT count(*) FROM s")[0]
    not_dip = sql.one(f"SELECT count(*) FROM read_parquet('{sql.run / 'not_dip.parquet'}')")[0]
    tcm, tcm_fen, nt, nt_fen = sql.one(
        "SELECT count(tcm_group), coalesce(sum(CASE WHEN tcm_group IS NOT NULL THEN "
        "dip_amount_fen END), 0), count(new_tech), coalesce(sum(CASE WHEN new_tech IS NOT NULL "
        "THEN dip_amount_fen END), 0) FROM s"
    )
    by_item, by_item_fen = sql.one(
        f"SELECT count(*), coalesce(sum(ffs_fund_fen), 0) FROM "
        f"read_parquet('{sql.run / 'not_dip.parquet'}') WHERE exemption IS NOT NULL"
    )
    return {
        "overview.tcm_cases": tcm,
        "overview.tcm_dip_fen": tcm_fen,
        "overview.new_tech_cases": nt,
        "overview.new_tech_dip_fen": nt_fen,
        "overview.new_tech_by_item_cases": by_item,
        "overview.new_tech_by_item_fen": by_item_fen,
        "overview.cases": n,
        "overview.hospitals": hospitals,
        "overview.qc_checked": checked,
        "overview.qc_passed": passed,
        "overview.qc_pass_rate": q(passed, n),
        "overview.grouped_cases": grouped,
        "overview.grouping_rate": q(grouped, n),
        "overview.groups_used": groups,
        "overview.dip_cases": dip,
        "overview.not_dip_cases": not_dip,
    }


def expected_fund(sql: Sql) -> dict[str, Any]:
    dip, personal, fund, ffs = sql.one(
        "SELECT sum(dip_amount_fen), sum(personal_share_fen), sum(fund_payable_fen), "
        "sum(ffs_fund_fen) FROM s"
    )
    per_hospital = [
        int(d)
        for (d,) in sql.all(
            "SELECT sum(fund_payable_fen) - sum(ffs_fund_fen) FROM s GROUP BY hospital_id"
        )
    ]
    (other,) = sql.one(
        f"SELECT coalesce(sum(ffs_fund_fen), 0) FROM read_parquet('{sql.run / 'not_dip.parquet'}')"
    )
    return {
        "fund.not_dip_fund_fen": other,
        "fund.inpatient_fund_fen": fund + other,
        "fund.dip_fund_share": q(fund, fund + other),
        "fund.dip_amount_fen": dip,
        "fund.personal_share_fen": personal,
        "fund.fund_payable_fen": fund,
        "fund.ffs_fund_fen": ffs,
        "fund.dip_minus_ffs_fen": fund - ffs,
        "fund.dip_ffs_ratio": q(fund, ffs),
        "fund.hospitals_surplus": sum(1 for d in per_hospital if d > 0),
        "fund.surplus_fen": sum(d for d in per_hospital if d > 0),
        "fund.hospitals_deficit": sum(1 for d in per_hospital if d < 0),
        "fund.deficit_fen": sum(d for d in per_hospital if d < 0),
    }


def expected_costs(
    sql: Sql, root: Path, now: str, before: str | None, year_ago: str
) -> dict[str, Any]:
    def measure(file: Path, where: str) -> dict[str, Any] | None:
        n, cost, selfpay, los = sql.one(
            f"""SELECT count(*), sum(total_cost), sum(personal_selfpay), sum(los_days)
                FROM read_parquet('{file}') WHERE {where}"""
        )
        if not n:
            return None
        return {
            "cases": n,
            "cost_per_case_fen": mean_fen(cost, n),
            "selfpay_per_case_fen": mean_fen(selfpay, n),
            "selfpay_ratio": q(selfpay, cost),
            "alos_days": q(los, n, Q2),
        }

    def where(period: str) -> str:
        if len(period) == 4:
            return f"settle_month LIKE '{period}-%'"
        return f"settle_month = '{period}'"

    this = measure(root / "cases_2026.parquet", where(now))
    last = measure(root / "cases_2025.parquet", where(year_ago))
    assert this is not None and last is not None
    out: dict[str, Any] = {"costs.cases": (this["cases"], last["cases"])}
    for k in ("cost_per_case_fen", "selfpay_per_case_fen", "selfpay_ratio", "alos_days"):
        out[f"costs.{k}"] = (this[k], last[k])
    if before is not None:
        prev = measure(root / "cases_2026.parquet", where(before))
        assert prev is not None
        for k in ("cost_per_case_fen", "selfpay_per_case_fen", "selfpay_ratio", "alos_days"):
            out[f"costs.{k}.mom"] = (this[k], prev[k])
    return out


def expected_basic(sql: Sql) -> dict[str, Any]:
    out: dict[str, Any] = {"basic.cases": sql.one("SELECT count(*) FROM sc WHERE gtype='basic'")[0]}
    for level, dip, cost in sql.all(
        "SELECT level, sum(dip_amount_fen), sum(cost) FROM sc WHERE gtype = 'basic' GROUP BY level"
    ):
        out[f"basic.settlement_rate.{level}"] = q(dip, cost)
    return out


def expected_yoy(root: Path, now: str, before: str) -> dict[str, Any]:
    """病种次均费用同比 and 基层病种 cases: the period's lists grouped (not unmatched) against
    the same period of last year's, per group compared exactly (c1·n0 vs c0·n1)."""

    def side(year: int, where: str) -> str:
        suffix = "" if year == 2026 else f"_{year}"
        return f"""SELECT g.group_code AS code, g.group_type AS gtype, c.total_cost AS cost
            FROM read_parquet('{root / f"cases_{year}.parquet"}') c
            JOIN read_parquet('{root / f"grouped{suffix}.parquet"}') g ON g.case_id = c.case_id
            WHERE {where} AND g.group_type IS NOT NULL AND g.group_type <> 'unmatched'"""

    a, b = side(2026, now), side(2025, before)
    signs = fetch(
        f"""WITH a AS ({a}), b AS ({b}),
                x AS (SELECT code, count(*) n1, sum(cost) c1 FROM a GROUP BY code),
                y AS (SELECT code, count(*) n0, sum(cost) c0 FROM b GROUP BY code)
            SELECT sign(c1 * n0 - c0 * n1), count(*) FROM x JOIN y USING (code) GROUP BY 1"""
    )
    by = {int(k): n for k, n in signs}
    basic = fetch(
        f"""SELECT (SELECT count(*) FROM ({a}) WHERE gtype = 'basic'),
                   (SELECT count(*) FROM ({b}) WHERE gtype = 'basic')"""
    )[0]
    return {
        "yoy.groups_compared": sum(by.values()),
        "yoy.groups_cheaper": by.get(-1, 0),
        "yoy.groups_dearer": by.get(1, 0),
        "yoy.groups_same": by.get(0, 0),
        "yoy.basic_cases": basic[0],
        "yoy.basic_previous_cases": basic[1],
    }


def expected_deviation(sql: Sql) -> dict[str, Any]:
    n = sql.one("SELECT count(*) FROM s")[0]
    out: dict[str, Any] = {}
    for kind in ("high", "low", "extreme", "special_review"):
        k = sql.one("SELECT count(*) FROM s WHERE deviation = ?", kind)[0]
        out[f"deviation.{kind}_cases"] = k
        out[f"deviation.{kind}_share"] = q(k, n)
    return out


def expected_supervision(root: Path, where: str) -> dict[str, Any]:
    con = duckdb.connect()
    leads, high, impact = con.execute(
        f"""SELECT count(*), sum((severity='high')::INT), sum(impact_fen)
            FROM read_parquet('{root / "supervision/leads.parquet"}')"""
    ).fetchone()
    anomalies = con.execute(
        f"""SELECT count(*) FROM read_parquet('{root / "supervision/indicators.parquet"}')
            WHERE anomaly AND scope = 'hospital' AND {where}"""
    ).fetchone()[0]
    return {
        "supervision.leads": leads,
        "supervision.high_leads": high,
        "supervision.impact_fen": impact,
        "supervision.anomalies": anomalies,
    }


def expected_structure(sql: Sql, where: str) -> dict[str, Any]:
    """费用结构与个人负担, straight from the settlement list's columns (issue 22 item 7)."""
    cost, copay, selfpay, fund, drugs, tcm, items = sql.one(
        f"""SELECT sum(total_cost), sum(coalesce(personal_copay, 0)),
                   sum(coalesce(personal_selfpay, 0)), sum(coalesce(fund_paid, 0)),
                   sum(fee_western_medicine + fee_herbal_pieces + fee_chinese_patent_medicine
                       + fee_materials),
                   sum(fee_herbal_pieces + fee_chinese_patent_medicine),
                   sum(fee_consultation + fee_examination + fee_laboratory + fee_treatment
                       + fee_surgery + fee_nursing + fee_general_treatment)
            FROM raw WHERE {where}"""
    )
    out: dict[str, Any] = {
        "structure.copay_fen": copay,
        "structure.selfpay_fen": selfpay,
        "structure.burden_fen": copay + selfpay,
        "structure.burden_ratio": q(copay + selfpay, cost),
        "structure.fund_paid_fen": fund,
        "structure.reimbursement_ratio": q(fund, cost),
        "structure.drug_material_share": q(drugs, cost),
        "structure.tcm_share": q(tcm, cost),
        "structure.items_share": q(items, cost),
    }
    for own, n, c, fpaid in sql.all(
        f"""SELECT coalesce(h.ownership, 'unknown'), count(*), sum(raw.total_cost),
                   sum(coalesce(raw.fund_paid, 0))
            FROM raw LEFT JOIN h USING (hospital_id) WHERE {where} GROUP BY 1"""
    ):
        out[f"structure.{own}.cases"] = n
        out[f"structure.{own}.cost_share"] = q(c, cost)
        out[f"structure.{own}.reimbursement_ratio"] = q(fpaid, c)
    return out


def expected_score_bands(sql: Sql) -> dict[str, Any]:
    """DIP cases by settled score band: the demo policy's default edges 0/100/500/1000/2000."""
    edges = [0, 100, 500, 1000, 2000]
    total = sql.one("SELECT count(*) FROM s")[0]
    out: dict[str, Any] = {}
    for lo, hi in zip(edges, [*edges[1:], None], strict=True):
        cond = f"settled_score >= {lo}" + (f" AND settled_score < {hi}" if hi else "")
        n = sql.one(f"SELECT count(*) FROM s WHERE {cond}")[0]
        name = f"{lo}-{hi}" if hi else f"{lo}+"
        out[f"scoreband.{name}.cases"] = n
        out[f"scoreband.{name}.share"] = q(n, total)
    return out


def actual(report: Any) -> dict[str, Any]:
    return {
        f.key: ((f.value, f.previous) if f.key.startswith("costs.") else f.value)
        for f in report.figures()
    }


@pytest.fixture(scope="module")
def annual(region: Path) -> Any:
    return build_report(region / "settlement")


def expected_assessment(root: Path, run: Path) -> dict[str, Any]:
    """The demo clearing uses the assessment stage's scores (bench stage 年度考核)."""
    n = fetch(f"SELECT count(*) FROM read_parquet('{root / 'assessment/assessment.parquet'}')")
    returned, deducted = fetch(
        f"""SELECT sum(returned_fen), sum(deposit_deducted_fen)
            FROM read_parquet('{run / "hospitals.parquet"}')"""
    )[0]
    return {
        "assessment.hospitals": n[0][0],
        "assessment.returned_fen": returned,
        "assessment.deducted_fen": deducted,
    }


def expected_reserve(run: Path) -> dict[str, int]:
    """The regional reserve over the clearing, from the budget, the policy's reserve share and
    the per-hospital adjustments (the demo policy leaves clawbacks in the fund)."""
    from opendip.reports.source import resolve_run

    s = resolve_run(run).policy.periods()[-1][2].settlement
    opening = sum(
        int((Decimal(b.fund_budget_yuan) * 100 * s.reserve_share).quantize(1, ROUND_HALF_UP))
        for b in s.budget.values()
    )
    uses = fetch(
        f"""SELECT coalesce(sum(adjustment_fen), 0) FROM read_parquet('{run / "hospitals.parquet"}')
            WHERE adjustment_fen > 0"""
    )[0][0]
    assert (s.surplus_clawback_to, s.deducted_deposit_to) == ("fund", "fund")
    return {
        "clearing.reserve_opening_fen": opening,
        "clearing.reserve_uses_fen": int(uses),
        "clearing.reserve_returns_fen": 0,
        "clearing.reserve_closing_fen": opening - int(uses),
    }


def test_annual_figures_recomputed(region: Path, annual: Any) -> None:
    run = region / "settlement"
    sql = Sql(region, run)
    recon = {
        r[0]: r[1:]
        for r in fetch(
            f"""SELECT pool, point_value, budget_fen, fund_payable_fen, clearing_total_fen,
                       advances_fen, clearing_payment_fen
                FROM read_parquet('{run / "reconciliation.parquet"}')"""
        )
    }
    # Clearing totals from the per-hospital table (Σ hospitals = pool, to the fen).
    sums = fetch(
        f"""SELECT sum(fund_payable_fen), sum(clearing_total_fen), sum(advances_fen),
                   sum(clearing_payment_fen) FROM read_parquet('{run / "hospitals.parquet"}')"""
    )[0]
    expected = {
        **expected_overview(sql, region, "settle_month LIKE '2026-%'"),
        **expected_fund(sql),
        **{f"clearing.point_value.{p}": v[0] for p, v in recon.items()},
        "clearing.budget_fen": sum(v[1] for v in recon.values()),
        "clearing.fund_payable_fen": sums[0],
        "clearing.clearing_total_fen": sums[1],
        "clearing.advances_fen": sums[2],
        "clearing.clearing_payment_fen": sums[3],
        **expected_reserve(run),
        **expected_costs(sql, region, "2026", None, "2025"),
        **expected_structure(sql, "settle_month LIKE '2026-%'"),
        **expected_score_bands(sql),
        **expected_basic(sql),
        **expected_yoy(region, "settle_month LIKE '2026-%'", "settle_month LIKE '2025-%'"),
        **expected_deviation(sql),
        **expected_supervision(region, "month LIKE '2026-%'"),
        **expected_assessment(region, run),
        **expected_prepayment(run),
    }
    assert actual(annual) == expected


def expected_prepayment(run: Path) -> dict[str, int]:
    """预付金 figures (shown when nonzero) from the hospital lines and the pools."""
    prepaid, recovered, outstanding = fetch(
        f"""SELECT sum(prepaid_fen), sum(prepayment_recovered_fen),
                   sum(prepayment_outstanding_fen)
            FROM read_parquet('{run / "hospitals.parquet"}')"""
    )[0]
    assert recovered + outstanding == prepaid
    recon = run / "reconciliation.parquet"
    without = fetch(f"SELECT sum(prepaid_without_line_fen) FROM read_parquet('{recon}')")[0][0]
    figures = {
        "clearing.prepaid_fen": prepaid,
        "clearing.prepayment_recovered_fen": recovered,
        "clearing.prepayment_outstanding_fen": outstanding,
        "clearing.prepaid_without_line_fen": without,
    }
    return {k: int(v) for k, v in figures.items() if v}


def test_monthly_figures_recomputed(region: Path) -> None:
    run = region / f"settlement-{MONTH}"
    apps = [
        {"kind": "dispute", "state": "受理申诉"},
        {"kind": "dispute", "state": "争议结案归档"},
        {"kind": "special_review", "state": "受理申诉"},
    ]
    report = build_report(run, Extras(applications=apps))
    assert report.kind == "monthly" and report.period == MONTH
    sql = Sql(region, run)
    month = fetch(
        f"""SELECT sum(fund_payable_fen), sum(withheld_fen), sum(advance_fen)
            FROM read_parquet('{run / "hospitals.parquet"}')"""
    )[0]
    pvs = dict(sql.all("SELECT DISTINCT pool, point_value FROM s"))
    expected = {
        **expected_overview(sql, region, f"settle_month = '{MONTH}'"),
        **expected_fund(sql),
        **{f"monthly.point_value.{p}": v for p, v in pvs.items()},
        "monthly.fund_payable_fen": month[0],
        "monthly.withheld_fen": month[1],
        "monthly.advance_fen": month[2],
        **expected_costs(sql, region, MONTH, "2026-02", "2025-03"),
        **expected_structure(sql, f"settle_month = '{MONTH}'"),
        **expected_score_bands(sql),
        **expected_basic(sql),
        **expected_yoy(region, f"settle_month = '{MONTH}'", "settle_month = '2025-03'"),
        **expected_deviation(sql),
        "reviews.accepted": 2,
        "reviews.rejected": 1,
        "applications.special_review": 1,
        "applications.dispute": 2,
        **expected_supervision(region, f"month = '{MONTH}'"),
    }
    assert actual(report) == expected
    assert expected["deviation.special_review_cases"] == 2
    rows = {(r["kind"], r["state"]): r["count"] for r in report.table("applications.by_state").rows}
    assert rows == {
        ("dispute", "受理申诉"): 1,
        ("dispute", "争议结案归档"): 1,
        ("special_review", "受理申诉"): 1,
    }


def test_tables_recomputed(region: Path, annual: Any) -> None:
    run = region / "settlement"
    sql = Sql(region, run)
    by_hospital = {
        r[0]: r[1:]
        for r in sql.all(
            """SELECT hospital_id, count(*), sum(fund_payable_fen), sum(ffs_fund_fen),
                      sum(case_score), sum(cost)
               FROM sc GROUP BY hospital_id"""
        )
    }
    rows = annual.table("fund.by_hospital").rows
    assert {r["hospital_id"] for r in rows} == set(by_hospital)
    for r in rows:
        n, fund, ffs, _, _ = by_hospital[r["hospital_id"]]
        assert (r["cases"], r["fund_payable_fen"], r["ffs_fund_fen"]) == (n, fund, ffs)
        assert r["dip_minus_ffs_fen"] == fund - ffs
        assert r["dip_ffs_ratio"] == q(fund, ffs)
    diffs = [r["dip_minus_ffs_fen"] for r in rows]
    assert diffs == sorted(diffs)  # biggest deficit first
    base = Decimal(100)  # the demo policy's directory.base_score
    for r in annual.table("hospitals.cmi").rows:
        n, _, _, score, cost = by_hospital[r["hospital_id"]]
        assert r["cmi"] == (Decimal(score) / n / base).quantize(Q4, rounding=ROUND_HALF_UP)
        assert r["cost_per_case_fen"] == mean_fen(cost, n)
    by_pool = dict(sql.all("SELECT pool, sum(dip_amount_fen) FROM s GROUP BY pool"))
    assert {r["pool"]: r["dip_amount_fen"] for r in annual.table("fund.by_pool").rows} == by_pool
    by_level = dict(sql.all("SELECT level, sum(fund_payable_fen) FROM sc GROUP BY level"))
    assert {
        r["level"]: r["fund_payable_fen"] for r in annual.table("fund.by_level").rows
    } == by_level
    hist = dict(annual.chart("fund.ratio_histogram").series[0].points)
    ratios = [q(f, ffs) for (_, f, ffs, _, _) in by_hospital.values() if ffs]
    assert sum(hist.values()) == len(ratios)
    assert len(hist) <= 22  # 20 bins of 0.05 in [0.50, 1.50) and two open ones
    for label, count in hist.items():
        if label.startswith("<"):
            assert count == sum(1 for r in ratios if r < Decimal("0.5")) > 0
        elif label.startswith("≥"):
            assert count == sum(1 for r in ratios if r >= Decimal("1.5")) > 0
        else:
            lo, hi = (Decimal(x) for x in label.split("–"))
            assert hi - lo == Decimal("0.05")
            assert count == sum(1 for r in ratios if lo <= r < hi), label
    types = dict(
        sql.all(
            "SELECT group_type, count(*) FROM g WHERE case_id IN "
            "(SELECT case_id FROM raw WHERE settle_month LIKE '2026-%') GROUP BY group_type"
        )
    )
    assert {
        r["group_type"]: r["cases"] for r in annual.table("overview.group_types").rows if r["cases"]
    } == types
    months = dict(sql.all("SELECT settle_month, count(*) FROM raw GROUP BY settle_month"))
    bars = annual.chart("costs.monthly_cases").series[0].points
    assert {f"2026-{m[:2]}": v for m, v in bars} == months


def _totals(pub: Any, table: str) -> dict[str, dict[str, Any]]:
    return {r["pool"]: r for r in pub.table(table).rows if r.get("is_total")}


def test_publication_totals_equal_reconciliation(region: Path) -> None:
    run = region / "settlement"
    pub = build_publication(run)
    assert pub.kind == "publication" and "结算公示" in pub.title
    recon = fetch(
        f"""SELECT pool, dip_amount_hospitals_fen, fund_payable_fen, ffs_fund_fen, withheld_fen,
                   returned_fen, clearing_total_fen, advances_fen, clearing_payment_fen,
                   cases, total_score, point_value
            FROM read_parquet('{run / "reconciliation.parquet"}')"""
    )
    result, clearing = _totals(pub, "publication.hospitals"), _totals(pub, "publication.clearing")
    text = pub.sections[0].paragraphs[0]
    for pool, dip, fund, ffs, withheld, returned, total, adv, pay, n, score, pv in recon:
        r, c = result[pool], clearing[pool]
        assert (r["dip_amount_fen"], r["fund_payable_fen"], r["ffs_fund_fen"]) == (dip, fund, ffs)
        assert r["dip_minus_ffs_fen"] == fund - ffs
        assert (r["cases"], r["total_score"]) == (n, score)
        assert (c["withheld_fen"], c["returned_fen"]) == (withheld, returned)
        assert (c["clearing_total_fen"], c["advances_fen"]) == (total, adv)
        assert c["clearing_payment_fen"] == pay
        assert f"结算点值 {pv:,} 元/分" in text
    rows = pub.table("publication.hospitals").rows
    (n_hospital_rows,) = fetch(f"SELECT count(*) FROM read_parquet('{run / 'hospitals.parquet'}')")[
        0
    ]
    assert sum(1 for r in rows if not r.get("is_total")) == n_hospital_rows
    assert [r["hospital_name"] for r in rows if r.get("is_total")] == ["职工合计", "居民合计"]
    # Each hospital row is the run's own (spot check: the clearing payment per row).
    by_row = {
        (h, p): v
        for h, p, v in fetch(
            f"SELECT hospital_id, pool, clearing_payment_fen FROM read_parquet('{run / 'hospitals.parquet'}')"
        )
    }
    for r in pub.table("publication.clearing").rows:
        if not r.get("is_total"):
            assert r["clearing_payment_fen"] == by_row[(r["hospital_id"], r["pool"])]


def test_monthly_publication(region: Path) -> None:
    run = region / f"settlement-{MONTH}"
    pub = build_publication(run)
    path = run / "hospitals.parquet"
    totals = _totals(pub, "publication.hospitals")
    for pool, advance, withheld in fetch(
        f"SELECT pool, sum(advance_fen), sum(withheld_fen) FROM read_parquet('{path}') GROUP BY pool"
    ):
        assert (totals[pool]["advance_fen"], totals[pool]["withheld_fen"]) == (advance, withheld)
    assert "月度预结算" in pub.title and "3月" in pub.title
    assert "预算点值" in pub.sections[0].paragraphs[0]


def test_summary_sentences_quote_the_figures(annual: Any) -> None:
    from opendip.reports.render.fmt import fmt_value, fmt_wan

    assert annual.sections[0].key == "summary"
    text = "".join(annual.sections[0].paragraphs)
    f = {x.key: x for x in annual.figures()}
    assert text.startswith(f"2026年，{f['overview.hospitals'].value} 家医疗机构上传住院结算清单")
    for key in (
        "overview.cases",
        "overview.grouping_rate",
        "fund.dip_ffs_ratio",
        "costs.cost_per_case_fen",
        "basic.settlement_rate.tertiary",
    ):
        assert fmt_value(f[key].value, f[key].unit) in text, key
    assert f"DIP 统筹基金应支付 {fmt_wan(f['fund.fund_payable_fen'].value)} 万元" in text
    assert (
        f"{f['fund.hospitals_deficit'].value} 家超支 {fmt_wan(-f['fund.deficit_fen'].value)} 万元"
        in text
    )


def test_tables_add_up(annual: Any) -> None:
    """Invariants across the report: the by-pool, by-level and by-hospital tables each add up
    to the overall figures, and surplus + deficit hospitals' differences to the overall one."""
    f = {x.key: x.value for x in annual.figures()}
    for table in ("fund.by_pool", "fund.by_level", "fund.by_hospital"):
        rows = annual.table(table).rows
        for col in ("fund_payable_fen", "ffs_fund_fen", "dip_amount_fen"):
            assert sum(r[col] for r in rows) == f[f"fund.{col}"], (table, col)
        assert sum(r["cases"] for r in rows) == f["overview.dip_cases"], table
    assert f["fund.surplus_fen"] + f["fund.deficit_fen"] == f["fund.dip_minus_ffs_fen"]
    by_kind = annual.table("deviation.by_kind").rows
    assert sum(r["cases"] for r in by_kind) == f["overview.dip_cases"]
    types = annual.table("overview.group_types").rows
    assert sum(r["cases"] for r in types) == f["overview.cases"]


def test_ratio_bins_by_hand() -> None:
    from opendip.reports.region.fund import ratio_bins

    bins = dict(
        ratio_bins(
            [
                Decimal("0.9999"),
                Decimal("0.95"),
                Decimal("1.00"),
                None,
                Decimal("0.2"),
                Decimal("57.3"),
                Decimal("1.4999"),
            ]
        )
    )
    assert bins["< 0.50"] == 1 and bins["≥ 1.50"] == 1
    assert bins["0.95–1.00"] == 2 and bins["1.00–1.05"] == 1 and bins["1.45–1.50"] == 1
    assert len(bins) == 22 and sum(bins.values()) == 6
    labels = list(bins)
    assert (labels[0], labels[-1]) == ("< 0.50", "≥ 1.50")
    assert dict(ratio_bins([Decimal("1")])).get("< 0.50") is None


def test_text_for_readers_is_chinese(annual: Any) -> None:
    """Titles, paragraphs, labels: Chinese; the only Latin words are DIP and CMI."""
    import re

    texts = [annual.title]
    for s in annual.sections:
        texts += [s.title, *s.paragraphs]
        texts += [t.title for t in s.tables] + [c.label for t in s.tables for c in t.columns]
        texts += [c.title for c in s.charts] + [f.label for f in s.figures]
    words = {w for t in texts for w in re.findall(r"[A-Za-z_][A-Za-z_.]{2,}", t)}
    assert words <= {"DIP", "CMI"}, words


def test_assessment_tables_recomputed(region: Path, annual: Any) -> None:
    run = region / "settlement"
    expected = {
        r[0]: r[1:]
        for r in fetch(
            f"""SELECT hospital_id, any_value(assessment_score), sum(withheld_fen),
                       sum(returned_fen), sum(deposit_deducted_fen)
                FROM read_parquet('{run / "hospitals.parquet"}') GROUP BY 1"""
        )
    }
    rows = annual.table("assessment.by_hospital").rows
    assert {r["hospital_id"]: (r["assessment_score"], r["withheld_fen"], r["returned_fen"],
                               r["deposit_deducted_fen"]) for r in rows} == expected  # fmt: skip
    scores = [r["assessment_score"] for r in rows]
    assert scores == sorted(scores)  # lowest score first
    lines = {
        r[0]: r[1:]
        for r in fetch(
            f"""SELECT indicator, count(*), sum((points = weight)::INT)
                FROM read_parquet('{region / "assessment/breakdown.parquet"}') GROUP BY 1"""
        )
    }
    got = annual.table("assessment.indicators").rows
    assert {r["indicator"]: (r["hospitals"], r["full_marks"]) for r in got} == lines
    assert [r["indicator"] for r in got][:2] == ["qc_pass", "grouping"]  # the card's order


def test_structure_figures_are_not_empty(annual: Any) -> None:
    """The demo list carries every column the section reads: no figure is 0 or missing, the
    shares lie in (0, 1), both ownerships appear, and 个人负担 = 自付 + 自费."""
    got = {k: v for k, v in actual(annual).items() if k.startswith("structure.")}
    assert got["structure.burden_fen"] == got["structure.copay_fen"] + got["structure.selfpay_fen"]
    for key in ("reimbursement_ratio", "drug_material_share", "tcm_share", "items_share"):
        assert 0 < got[f"structure.{key}"] < 1, key
    assert got["structure.copay_fen"] > 0 and got["structure.selfpay_fen"] > 0
    assert {"structure.public.cases", "structure.private.cases"} <= set(got), sorted(got)


def test_score_bands_count_every_dip_case(annual: Any) -> None:
    got = {k: v for k, v in actual(annual).items() if k.startswith("scoreband.")}
    cases = {k: v for k, v in got.items() if k.endswith(".cases")}
    assert sum(cases.values()) == actual(annual)["overview.dip_cases"]
    assert sum(1 for v in cases.values() if v > 0) >= 2  # the demo spreads over bands
