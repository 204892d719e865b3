"""The annual assessment recomputed independently: every indicator's numerator and
denominator with DuckDB SQL over the input files, points and totals with Python Decimal
(not with the assessment code); and the demo clearing that uses it reconciles."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opendip.assessment.run import AssessFiles, run_assess
from opendip.policy import PolicyFile
from tests.reports.region import make_region

Q2 = Decimal("0.01")


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_region(tmp_path_factory.mktemp("assess-region"))


@pytest.fixture(scope="module")
def assessed(region: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("assess")
    # Two confirmed leads at H001, one still open at H002 (does not count).
    pq.write_table(
        pa.table(
            {
                "lead_id": ["L1", "L2", "L3"],
                "hospital_id": ["H001", "H001", "H002"],
                "status": ["confirmed", "confirmed", "open"],
            }
        ),
        work / "leads.parquet",
    )
    files = AssessFiles(
        policy=region / "policy.yaml",
        cases=region / "cases_2026.parquet",
        grouped=region / "grouped.parquet",
        hospitals=region / "hospitals.parquet",
        case_status=region / "qc" / "case_status.parquet",
        previous_cases=region / "cases_2025.parquet",
        leads=work / "leads.parquet",
    )
    run_assess(files, 2026, work / "out")
    return work


def _expected_ratios(region: Path, leads: Path) -> dict[tuple[str, str], tuple[int, int]]:
    con = duckdb.connect()
    con.execute(f"CREATE VIEW c AS SELECT * FROM '{region / 'cases_2026.parquet'}'")
    con.execute(f"CREATE VIEW g AS SELECT * FROM '{region / 'grouped.parquet'}'")
    con.execute(f"CREATE VIEW q AS SELECT * FROM '{region / 'qc' / 'case_status.parquet'}'")
    con.execute(f"CREATE VIEW p AS SELECT * FROM '{region / 'cases_2025.parquet'}'")
    con.execute(f"CREATE VIEW l AS SELECT * FROM '{leads}'")
    sql = {
        "qc_pass_rate": """SELECT q.hospital_id, sum(passed::INT), count(*) FROM q
                           WHERE case_id IN (SELECT case_id FROM c) GROUP BY 1""",
        "grouping_rate": """SELECT c.hospital_id,
                              sum((g.group_type IS NOT NULL AND g.group_type <> 'unmatched')::INT),
                              count(*) FROM c LEFT JOIN g USING (case_id) GROUP BY 1""",
        "readmission_rate": """
            WITH n AS (SELECT hospital_id, discharge_date,
                         lead(admit_date) OVER w AS na, lead(main_diagnosis) OVER w AS nd
                       FROM c WINDOW w AS (PARTITION BY patient_id
                                           ORDER BY admit_date, discharge_date, case_id))
            SELECT hospital_id, sum(coalesce(na IS NOT NULL AND na - discharge_date BETWEEN 0 AND 15
                                      AND NOT starts_with(nd, 'Z51'), false)::INT), count(*)
            FROM n GROUP BY 1""",
        "confirmed_leads_per_1000": """
            SELECT c.hospital_id, 1000 * (SELECT count(*) FROM l WHERE l.hospital_id = c.hospital_id
                                          AND status = 'confirmed'), count(*)
            FROM c GROUP BY 1""",
        "cost_growth_per_case": """
            WITH a AS (SELECT hospital_id, sum(total_cost) c1, count(*) n1 FROM c GROUP BY 1),
                 b AS (SELECT hospital_id, sum(total_cost) c0, count(*) n0 FROM p GROUP BY 1)
            SELECT hospital_id, c1 * n0 - c0 * n1, c0 * n1 FROM a JOIN b USING (hospital_id)
            WHERE c0 > 0""",
        "selfpay_share": """SELECT hospital_id, sum(personal_selfpay), sum(total_cost) FROM c
                            GROUP BY 1""",
        "basic_group_share": """SELECT c.hospital_id, sum((g.group_type = 'basic')::INT), count(*)
                                FROM c JOIN g USING (case_id)
                                WHERE g.group_type <> 'unmatched' GROUP BY 1""",
    }
    out = {}
    for measure, q in sql.items():
        for h, n, d in con.execute(q).fetchall():
            out[(h, measure)] = (int(n), int(d))
    return out


def test_indicators_points_and_totals_recomputed(region: Path, assessed: Path):
    policy = PolicyFile.read(region / "policy.yaml").at()
    card = policy.assessment
    assert card is not None
    ratios = _expected_ratios(region, assessed / "leads.parquet")
    levels = dict(
        duckdb.connect()
        .sql(f"SELECT hospital_id, level FROM '{region / 'hospitals.parquet'}'")
        .fetchall()
    )
    in_year = {
        r[0]
        for r in duckdb.connect()
        .sql(f"SELECT DISTINCT hospital_id FROM '{region / 'cases_2026.parquet'}'")
        .fetchall()
    }
    breakdown = {
        (r["hospital_id"], r["indicator"]): r
        for r in pq.read_table(assessed / "out" / "breakdown.parquet").to_pylist()
    }
    scores = {
        r["hospital_id"]: r["assessment_score"]
        for r in pq.read_table(assessed / "out" / "assessment.parquet").to_pylist()
    }
    expected_rows = 0
    for h in sorted(in_year):
        total_points, total_weight = Decimal(0), Decimal(0)
        for ind in card.indicators:
            if levels[h] not in ind.levels or (h, ind.measure) not in ratios:
                assert (h, ind.id) not in breakdown
                continue
            n, d = ratios[(h, ind.measure)]
            if d == 0:
                continue
            expected_rows += 1
            f = (Fraction(n, d) - Fraction(ind.zero_at)) / (
                Fraction(ind.target) - Fraction(ind.zero_at)
            )
            f = min(max(f, Fraction(0)), Fraction(1))
            exact = Fraction(ind.weight) * f
            points = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
                Q2, rounding=ROUND_HALF_UP
            )
            row = breakdown[(h, ind.id)]
            assert (row["numerator"], row["denominator"]) == (n, d), (h, ind.id)
            assert row["points"] == points, (h, ind.id)
            total_points += points
            total_weight += ind.weight
        total = (total_points * card.total_points / total_weight).quantize(
            Q2, rounding=ROUND_HALF_UP
        )
        assert scores[h] == total, h
    assert expected_rows == len(breakdown)
    # The two confirmed leads cost H001 all 15 points of the violations line (2 per 1000 is 0).
    assert breakdown[("H001", "violations")]["points"] < 15
    assert breakdown[("H002", "violations")]["points"] == 15


def test_demo_clearing_uses_the_assessment_and_reconciles(region: Path):
    """make_region runs the bench stages: the assessment stage feeds the annual clearing."""
    policy = PolicyFile.read(region / "policy.yaml").at()
    bands = policy.settlement.assessment_bands
    scores = {
        r["hospital_id"]: r["assessment_score"]
        for r in pq.read_table(region / "assessment" / "assessment.parquet").to_pylist()
    }
    hospitals = pq.read_table(region / "settlement" / "hospitals.parquet").to_pylist()
    returned_some = 0
    for r in hospitals:
        share = next(b.return_share for b in bands if scores[r["hospital_id"]] >= b.min_score)
        assert r["assessment_score"] == scores[r["hospital_id"]]
        expected = (Decimal(r["withheld_fen"]) * share).quantize(Decimal(1), ROUND_HALF_UP)
        assert r["returned_fen"] == expected
        assert r["deposit_deducted_fen"] == r["withheld_fen"] - r["returned_fen"]
        returned_some += r["returned_fen"] > 0
    assert 0 < returned_some < len(hospitals)  # some bands return, some do not
    for p in pq.read_table(region / "settlement" / "reconciliation.parquet").to_pylist():
        assert p["cases_equal_hospitals"] and p["clearing_identity"]
        assert p["returned_fen"] == sum(
            h["returned_fen"] for h in hospitals if h["pool"] == p["pool"]
        )
    import json

    manifest = json.loads((region / "settlement" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["parameters"]["assessment"] is True
    assert manifest["inputs"]["assessment"]["file"] == "assessment.parquet"


def test_clearing_coefficient_from_the_assessment(region: Path, tmp_path: Path):
    """assessment.clearing_coefficient_bands: ≥ 90 → 1.02, else 0.98; each hospital's
    clearing total moves by round_half_up(fund payable × (k − 1)), reconciled per pool."""
    import json

    from opendip.scenario import Variant
    from opendip.scenario.variant import dump_policy
    from opendip.settlement.run import InputFiles, run_year

    v = Variant.parse(
        "name: 考核系数\npolicy:\n  assessment.clearing_coefficient_bands:\n"
        "    - {min_score: 90, coefficient: 1.02}\n    - {min_score: 0, coefficient: 0.98}\n"
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(dump_policy(v.apply(PolicyFile.read(region / "policy.yaml")).tree), "utf-8")
    mean = json.loads((region / "directory.metrics.json").read_text())["all_case_mean_fen"]
    files = InputFiles(policy, region / "cases_2026.parquet", region / "grouped.parquet",
                       region / "directory.parquet", region / "hospitals.parquet",
                       all_case_mean_fen=mean,
                       credit=region / "credit" / "2025" / "ratings.parquet")  # fmt: skip
    assessment = region / "assessment" / "assessment.parquet"
    run_year(files, 2026, tmp_path / "run", assessment=assessment, excel=False, case_excel=False)
    base = {
        (r["hospital_id"], r["pool"]): r
        for r in pq.read_table(region / "settlement" / "hospitals.parquet").to_pylist()
    }
    got = pq.read_table(tmp_path / "run" / "hospitals.parquet").to_pylist()
    up = down = 0
    for r in got:
        b = base[(r["hospital_id"], r["pool"])]
        k = Decimal("1.02") if r["assessment_score"] >= 90 else Decimal("0.98")
        expected = (Decimal(b["fund_payable_fen"]) * (k - 1)).quantize(Decimal(1), ROUND_HALF_UP)
        assert r["assessment_coefficient"] == k
        assert r["assessment_adjustment_fen"] == expected
        assert r["clearing_total_fen"] == b["clearing_total_fen"] + expected
        up += expected > 0
        down += expected < 0
    assert up and down
    for p in pq.read_table(tmp_path / "run" / "reconciliation.parquet").to_pylist():
        rows = [r for r in got if r["pool"] == p["pool"]]
        assert p["clearing_identity"]
        assert p["assessment_adjustment_fen"] == sum(r["assessment_adjustment_fen"] for r in rows)
        assert p["clearing_total_fen"] == sum(r["clearing_total_fen"] for r in rows)
