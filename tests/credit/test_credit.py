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
