"""信用评价: the scorecard's points, score and grade by hand, and the grade's effect on the
money (withholding share → deposit in fen), on the engine the demo and the platform run."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from opendip.credit.engine import CreditError, rate
from opendip.engine import connect
from opendip.policy.load import PolicyError
from tests.credit.region import CREDIT, b
from tests.credit.region import policy as _policy
from tests.credit.region import region as _region
from tests.credit.region import settle_inputs as _settle_inputs


@pytest.fixture(scope="module")
def con():
    return connect()


@pytest.fixture(scope="module")
def rated(con):
    return rate(_region(con), _policy().at(), "2026")


def _row(table: pa.Table, **match: Any) -> dict[str, Any]:
    rows = [r for r in table.to_pylist() if all(r[k] == v for k, v in match.items())]
    assert len(rows) == 1, rows
    return rows[0]


def test_hospital_points_by_hand(rated) -> None:
    points = {
        r["item"]: r["points"]
        for r in rated.breakdown.to_pylist()
        if r["subject"] == "hospital" and r["hospital_id"] == "H2"
    }
    assert points == {
        "leads": Decimal("17.0000"),  # 20 − 3 × 1
        "violations": Decimal("20.0000"),  # 30 − 1 × 10
        "complaints": Decimal("5.0000"),  # 10 − 1 × 5
        "uploads": Decimal("5.0000"),  # 10 − 2 × 2.5 (January 11th, March 12th: late)
        "qc": Decimal("16.6700"),  # 30 × (0.9 − 0.8) ÷ (0.98 − 0.8) = 16.666… → 16.67
    }
    h2 = _row(rated.ratings, subject="hospital", hospital_id="H2")
    assert (h2["credit_score"], h2["grade"]) == (Decimal("63.6700"), "C")
    assert h2["withholding_share"] == Decimal("0.0800")
    assert h2["supervision_priority"] == "重点检查" and h2["inspections_per_year"] == 4
    h3 = _row(rated.ratings, subject="hospital", hospital_id="H3")
    # 18 + 30 + 10 + 10 + 30 (January on the 10th at 23:59 is on time)
    assert (h3["credit_score"], h3["grade"]) == (Decimal("98.0000"), "A")
    assert h3["prepayment_eligible"] is True


def test_doctors_rated_on_the_items_traceable_to_them(rated) -> None:
    """D1: leads naming A0/A1 (one lead) → 19; violations 30; QC 5/5 → 30: 79 of 80 →
    98.75; D2: lead A7 → 19 + 30 + 30 → 98.75; D3: 3 leads → 17, 1 violation → 20, QC
    9/10 → 16.67: 53.67 of 80 → 67.0875 → 67.09 (C)."""
    d = {r["doctor_id"]: r for r in rated.ratings.to_pylist() if r["subject"] == "doctor"}
    assert {k: (v["credit_score"], v["grade"]) for k, v in d.items()} == {
        "D1": (Decimal("98.7500"), "A"),
        "D2": (Decimal("98.7500"), "A"),
        "D3": (Decimal("67.0900"), "C"),
    }


def test_upload_log_against_the_deadline(rated) -> None:
    late = {(r["hospital_id"], r["settle_month"]): r["late"] for r in rated.uploads.to_pylist()}
    assert late == {
        ("H2", "2026-01"): True,
        ("H2", "2026-02"): False,  # first upload on the 5th counts, the 20th is a correction
        ("H2", "2026-03"): True,
        ("H3", "2026-01"): False,
        ("H3", "2026-02"): False,
        ("H3", "2026-03"): False,
    }


def test_a_measure_without_its_input_is_refused(con) -> None:
    inp = _region(con)
    inp.submissions = None
    with pytest.raises(CreditError, match=r"credit\.items.*late_uploads.*上传记录"):
        rate(inp, _policy().at(), "2026")


def test_repair_rule() -> None:
    from opendip.credit.engine import repaired_grade

    c = _policy().at().credit
    assert repaired_grade(c, "D") == "C"
    assert repaired_grade(c, "C") == "B"
    assert repaired_grade(c, "B") == "B"  # repair_highest_grade B
    assert repaired_grade(c, "A") == "A"  # never down
    c2 = _policy(repair_steps=2, repair_highest_grade=None).at().credit
    assert repaired_grade(c2, "C") == "A"


@pytest.mark.parametrize(
    ("credit", "path"),
    [
        ({"items": [{"id": "x", "measure": "complaints", "weight": 10}]}, "credit.items[0].per_unit"),
        (
            {"items": [{"id": "x", "measure": "qc_pass_rate", "weight": 10, "per_unit": 1,
                        "target": 1, "zero_at": 0}]},
            "credit.items[0].per_unit",
        ),
        ({"grades": [{"grade": "A", "min_score": 90}, {"grade": "B", "min_score": 10}]},
         "credit.grades[1].min_score"),
        ({"repair_highest_grade": "Z"}, "credit.repair_highest_grade"),
    ],
)  # fmt: skip
def test_bad_credit_keys_name_their_path(credit: dict, path: str) -> None:
    with pytest.raises(PolicyError) as err:
        tree = b.merge(CREDIT, credit)
        for k in ("items", "grades"):
            if k in credit:
                tree[k] = credit[k]
        b.policy(credit=tree).at()
    assert path in [i.path for i in err.value.issues]


# ---------------------------------------------------------------------------------------------
# Worked example: points → grade → withholding share → deposit in fen


@pytest.mark.parametrize(
    ("grades", "march", "august"),
    [
        (None, 42_500, 68_000),  # no rating: 850,000 × 0.05; × 0.08 from July
        ({"H3": "A"}, 25_500, 25_500),  # A: 850,000 × 0.03 in both months
        ({"H3": "B"}, 42_500, 68_000),  # B sets no share: the default in force
        ({"H3": "C"}, 68_000, 68_000),  # C: × 0.08
        ({"H3": "D"}, 85_000, 85_000),  # D: × 0.10
    ],
)
def test_worked_example_grade_to_deposit_in_fen(con, grades, march: int, august: int) -> None:
    from opendip.settlement.clearing import settle_month, settle_year

    inputs = _settle_inputs(con, _policy(), grades)
    m = settle_month(inputs, "2026-03").hospitals.to_pylist()[0]
    assert (m["fund_payable_fen"], m["withheld_fen"]) == (850_000, march)
    assert m["advance_fen"] == 850_000 - march
    assert m["credit_grade"] == (grades or {}).get("H3")
    a = settle_month(inputs, "2026-08").hospitals.to_pylist()[0]
    assert a["withheld_fen"] == august
    year = settle_year(inputs, 2026).hospitals.to_pylist()
    assert sum(r["withheld_fen"] for r in year) == march + august


def test_worked_example_from_the_rating(con, rated) -> None:
    """H3 rated 98.00 → A → 3 % → 25,500 fen withheld in March (not 42,500)."""
    from opendip.settlement.clearing import settle_month

    grades = {r["hospital_id"]: r["grade"] for r in rated.ratings.to_pylist()
              if r["subject"] == "hospital"}  # fmt: skip
    m = settle_month(_settle_inputs(con, _policy(), grades), "2026-03").hospitals.to_pylist()[0]
    assert (m["credit_grade"], m["withholding_share"], m["withheld_fen"]) == (
        "A",
        Decimal("0.0300"),
        25_500,
    )


# ---------------------------------------------------------------------------------------------
# 病案首页质控 feeds the rating (issue 22 item 8)

FRONT_PAGE_ITEM = {"id": "front_page", "measure": "front_page_qc_pass_rate", "weight": 10,
                   "target": 1, "zero_at": Decimal("0.5")}  # fmt: skip


def _with_front_pages(con):
    inp = _region(con)
    # H2: B0..B3 checked, B2 failed → 3/4; Z9 is no case of the period (not counted); H3
    # uploaded no front page (the item does not apply to it).
    fp = pa.table(
        {
            "case_id": ["B0", "B1", "B2", "B3", "Z9"],
            "hospital_id": ["H2"] * 5,
            "passed": [True, True, False, True, False],
        }
    )
    inp.front_page_status = con.create_table("cr_fp", fp, overwrite=True)
    return inp


def test_front_page_qc_pass_rate_scores_hospitals_and_doctors(con) -> None:
    """H2: 10 × (0.75 − 0.5) ÷ (1 − 0.5) = 5.00; 17 + 20 + 5 + 5 + 16.67 + 5 = 68.67 of 110
    → 62.427… → 62.43 (C). H3 has no front page: 98 of 100 → 98.00 (A), unchanged. D3:
    17 + 20 + 16.67 + 5 = 58.67 of 90 → 65.188… → 65.19."""
    pol = _policy(items=[*CREDIT["items"], FRONT_PAGE_ITEM]).at()
    r = rate(_with_front_pages(con), pol, "2026")
    fp = _row(r.breakdown, subject="hospital", hospital_id="H2", item="front_page")
    assert (fp["numerator"], fp["denominator"], fp["value"], fp["points"]) == (
        3, 4, Decimal("0.7500"), Decimal("5.0000")
    )  # fmt: skip
    assert fp["item_name"] == "病案首页质控通过率"
    h2 = _row(r.ratings, subject="hospital", hospital_id="H2")
    assert (h2["items"], h2["credit_score"], h2["grade"]) == (6, Decimal("62.4300"), "C")
    h3 = _row(r.ratings, subject="hospital", hospital_id="H3")
    assert (h3["items"], h3["credit_score"], h3["grade"]) == (5, Decimal("98.0000"), "A")
    d3 = _row(r.ratings, subject="doctor", doctor_id="D3")
    assert d3["credit_score"] == Decimal("65.1900")


def test_front_page_item_without_front_page_qc_is_refused(con) -> None:
    pol = _policy(items=[*CREDIT["items"], FRONT_PAGE_ITEM]).at()
    with pytest.raises(
        CreditError, match=r"credit\.items.*front_page_qc_pass_rate.*病案首页质控结果"
    ):
        rate(_region(con), pol, "2026")


def test_front_page_item_needs_target_and_zero_at() -> None:
    bad = {k: v for k, v in FRONT_PAGE_ITEM.items() if k != "zero_at"}
    with pytest.raises(PolicyError) as err:
        _policy(items=[*CREDIT["items"], bad]).at()
    assert "credit.items[5].target" in [i.path for i in err.value.issues]


def test_lost_disputes_count_as_violations_when_the_policy_says_so(con) -> None:
    """count_lost_disputes: H2's dispute about B5 decided against it is a second violation:
    30 − 2 × 10 = 10; 17 + 10 + 5 + 5 + 16.67 = 53.67 → D. D3 (doctor of B5) too:
    17 + 10 + 16.67 = 43.67 of 80 → 54.5875 → 54.59. Off (the default): 20 points, C."""
    on = rate(_region(con), _policy(count_lost_disputes=True).at(), "2026")
    v = _row(on.breakdown, subject="hospital", hospital_id="H2", item="violations")
    assert (v["numerator"], v["points"]) == (2, Decimal("10.0000"))
    h2 = _row(on.ratings, subject="hospital", hospital_id="H2")
    assert (h2["credit_score"], h2["grade"]) == (Decimal("53.6700"), "D")
    assert _row(on.ratings, subject="doctor", doctor_id="D3")["credit_score"] == Decimal("54.5900")
    assert _row(on.ratings, subject="hospital", hospital_id="H3")["credit_score"] == Decimal(
        "98.0000"
    )
    off = rate(_region(con), _policy().at(), "2026")
    v = _row(off.breakdown, subject="hospital", hospital_id="H2", item="violations")
    assert (v["numerator"], v["points"]) == (1, Decimal("20.0000"))
