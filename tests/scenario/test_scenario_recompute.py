"""The scenario run's per-hospital changes, recomputed independently with SQL over the base
run's own tables (not with the scoring or clearing code), and the base re-run to the fen."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

Q4 = Decimal("0.0001")


def half_up(x: Decimal, q: Decimal = Decimal(1)) -> Decimal:
    return x.quantize(q, rounding=ROUND_HALF_UP)


def test_base_variant_reproduces_base_run_to_the_fen(scenario_region: Path, scenario_out: Path):
    base = scenario_region / "settlement"
    rerun = scenario_out / "variants" / "base"
    for name in ("hospitals.parquet", "cases.parquet", "reconciliation.parquet"):
        assert pq.read_table(base / name).equals(pq.read_table(rerun / name)), name
    h = pq.read_table(scenario_out / "hospitals.parquet").to_pylist()
    base_rows = [r for r in h if r["variant"] == "base"]
    assert base_rows and all(r["clearing_change_fen"] == 0 for r in base_rows)
    assert all(r["dip_change_fen"] == 0 and r["cases_changed_group"] == 0 for r in base_rows)


def _recompute_v1(root: Path) -> dict[tuple[str, str], dict[str, int]]:
    """Per hospital × pool DIP amount and fund payable under v1, from the base run's cases.

    v1: secondary level coefficient 0.88 → 0.92; band score ≥ 100 high multiple 2 → 2.5
    (high formula add_excess with share 1: base × aux × (1 + cost/mean − 2.5); extreme cases
    are scored by the high formula too; a former high case at or below 2.5× becomes normal).
    """
    run = root / "settlement"
    con = duckdb.connect()
    rows = con.execute(
        f"""
        SELECT s.case_id, s.hospital_id, s.pool, s.deviation, s.base_score, s.case_score,
               s.hospital_coefficient, s.personal_share_fen, g.aux_coefficient, g.group_type,
               h.level, raw.total_cost,
               coalesce(CASE h.level WHEN 'tertiary' THEN d.mean_cost_tertiary_fen
                                     WHEN 'secondary' THEN d.mean_cost_secondary_fen
                                     WHEN 'primary' THEN d.mean_cost_primary_fen
                                     ELSE d.mean_cost_unrated_fen END, d.mean_cost_fen) AS mean
        FROM read_parquet('{run / "cases.parquet"}') s
        JOIN read_parquet('{root / "cases_2026.parquet"}') raw USING (case_id)
        JOIN read_parquet('{root / "grouped.parquet"}') g USING (case_id)
        JOIN read_parquet('{root / "hospitals.parquet"}') h ON h.hospital_id = s.hospital_id
        LEFT JOIN read_parquet('{root / "directory.parquet"}') d ON d.group_code = s.group_code
        """
    ).fetchall()
    cols = [
        "case_id", "hospital_id", "pool", "deviation", "base", "case_score", "k", "personal",
        "aux", "gtype", "level", "cost", "mean",
    ]  # fmt: skip
    cases = [dict(zip(cols, r, strict=True)) for r in rows]
    for c in cases:
        score = c["case_score"]
        if c["deviation"] in ("high", "extreme") and c["base"] >= 100:
            ba = c["base"] * (c["aux"] or Decimal(1))
            ratio = Decimal(c["cost"]) / Decimal(c["mean"])
            if ratio > Decimal("2.5"):
                score = half_up(ba * (1 + ratio - Decimal("2.5")), Q4)
            else:
                score = half_up(ba, Q4)
        k = c["k"]
        if c["level"] == "secondary" and c["gtype"] not in ("basic", "fallback"):
            k = k + Decimal("0.04")
        c["settled"] = half_up(score * k, Q4)
    avail = dict(
        con.execute(
            f"SELECT pool, available_fen FROM read_parquet('{run / 'reconciliation.parquet'}')"
        ).fetchall()
    )
    out: dict[tuple[str, str], dict[str, int]] = {}
    for pool, available in avail.items():
        pc = [c for c in cases if c["pool"] == pool]
        total = sum(c["settled"] for c in pc)
        personal = sum(c["personal"] for c in pc)
        pv = half_up((Decimal(available) + personal) / 100 / total, Decimal("0.000001"))
        for c in pc:
            amount = int(half_up(c["settled"] * pv * 100))
            r = out.setdefault((c["hospital_id"], pool), {"dip": 0, "fund": 0, "pv": pv})
            r["dip"] += amount
            r["fund"] += amount - c["personal"]
    return out


def test_coefficient_and_threshold_variant_recomputed_independently(
    scenario_region: Path, scenario_out: Path
):
    expected = _recompute_v1(scenario_region)
    base = {
        (r["hospital_id"], r["pool"]): r
        for r in pq.read_table(scenario_region / "settlement" / "hospitals.parquet").to_pylist()
    }
    got = {
        (r["hospital_id"], r["pool"]): r
        for r in pq.read_table(scenario_out / "hospitals.parquet").to_pylist()
        if r["variant"] == "v1"
    }
    assert set(got) == set(expected)
    changed = 0
    for key, e in expected.items():
        g = got[key]
        assert g["point_value"] == e["pv"], key
        assert g["dip_amount_fen"] == e["dip"], key
        assert g["fund_payable_fen"] == e["fund"], key
        assert g["dip_change_fen"] == e["dip"] - base[key]["dip_amount_fen"], key
        assert g["fund_change_fen"] == e["fund"] - base[key]["fund_payable_fen"], key
        b = base[key]["dip_amount_fen"]
        pct = half_up(Decimal(e["dip"] - b) * 100 / abs(Decimal(b)), Decimal("0.01"))
        assert g["dip_change_pct"] == pct, key
        changed += g["dip_change_fen"] != 0
    assert changed > len(expected) // 2  # the variant really moves money
    summary = pq.read_table(scenario_out / "summary.parquet").to_pylist()
    for s in (r for r in summary if r["variant"] == "v1"):
        rows = [g for (h, p), g in got.items() if p == s["pool"]]
        assert s["dip_amount_fen"] == sum(g["dip_amount_fen"] for g in rows)
        assert s["hospitals_gaining"] == sum(g["clearing_change_fen"] > 0 for g in rows)
        assert s["hospitals_losing"] == sum(g["clearing_change_fen"] < 0 for g in rows)


def test_directory_variant_regroups_and_counts_moved_cases(
    scenario_region: Path, scenario_out: Path
):
    """Re-scoring one group changes no case's group; only that group's cases change score."""
    con = duckdb.connect()
    run = scenario_out / "variants" / "v2"
    moved = con.execute(
        f"""SELECT count(*) FROM read_parquet('{scenario_region / "grouped.parquet"}') a
            JOIN read_parquet('{run / "grouped.parquet"}') b USING (case_id)
            WHERE a.group_code IS DISTINCT FROM b.group_code"""
    ).fetchone()[0]
    assert moved == 0
    h = pq.read_table(scenario_out / "hospitals.parquet").to_pylist()
    assert sum(r["cases_changed_group"] for r in h if r["variant"] == "v2") == 0
    changed_scores = con.execute(
        f"""SELECT count(DISTINCT a.group_code) FROM
            read_parquet('{scenario_region / "settlement" / "cases.parquet"}') a
            JOIN read_parquet('{run / "cases.parquet"}') b USING (case_id)
            WHERE a.base_score <> b.base_score"""
    ).fetchone()[0]
    assert changed_scores == 1


def test_scenario_report_and_pdf(scenario_out: Path):
    from opendip.scenario.report import build_scenario_report, write_scenario_pdf

    report = build_scenario_report(scenario_out, "示范市")
    h = pq.read_table(scenario_out / "hospitals.parquet").to_pylist()
    rows = report.table("scenario.hospitals").rows
    assert len(rows) == sum(r["variant"] != "base" for r in h)
    assert "逐分一致" in report.sections[0].paragraphs[0]
    assert write_scenario_pdf(scenario_out).read_bytes()[:4] == b"%PDF"
