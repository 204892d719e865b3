"""The small credit region of tests/credit (hand-computed in test_credit.py), shared with
tests/policy/test_every_key.py's credit probes."""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parents[1] / "scoring"))

import builders as b

from opendip.credit.engine import CreditInputs

CREDIT = {
    "items": [
        {"id": "leads", "measure": "supervision_leads", "weight": 20, "per_unit": 1},
        {"id": "violations", "measure": "confirmed_violations", "weight": 30, "per_unit": 10},
        {"id": "complaints", "measure": "complaints", "weight": 10, "per_unit": 5},
        {"id": "uploads", "measure": "late_uploads", "weight": 10, "per_unit": Decimal("2.5")},
        {"id": "qc", "measure": "qc_pass_rate", "weight": 30, "target": Decimal("0.98"),
         "zero_at": Decimal("0.80")},
    ],
    "grades": [
        {"grade": "A", "min_score": 90, "withholding_share": Decimal("0.03"),
         "prepayment_eligible": True, "supervision_priority": "low"},
        {"grade": "B", "min_score": 75, "prepayment_eligible": True},
        {"grade": "C", "min_score": 60, "withholding_share": Decimal("0.08"),
         "inspections_per_year": 4, "supervision_priority": "high"},
        {"grade": "D", "min_score": 0, "withholding_share": Decimal("0.10")},
    ],
    "doctor_min_cases": 3,
    "repair_highest_grade": "B",
}  # fmt: skip


def policy(prepayment: dict | None = None, **credit: Any):
    """The test policy with CREDIT (keys overridden by `credit`) and an optional prepayment
    section."""
    extra = {"prepayment": prepayment} if prepayment is not None else {}
    return b.policy(credit=b.merge(CREDIT, credit), **extra)


def region(con) -> CreditInputs:
    """H3: 10 cases (doctor D1 5, D2 5), QC 10/10, 2 leads, months on time → 98.00 A.
    H2: 10 cases (doctor D3), QC 9/10, 3 leads, 1 confirmed violation, 1 substantiated
    complaint, 2 of 3 months late → 63.67 C; one lost dispute (B5), not counted by default."""
    cases = [(f"A{i}", "H3", "D1" if i < 5 else "D2", f"2026-0{1 + i % 3}") for i in range(10)]
    cases += [(f"B{i}", "H2", "D3", f"2026-0{1 + i % 3}") for i in range(10)]
    t = pa.table(
        {
            "case_id": [c[0] for c in cases],
            "hospital_id": [c[1] for c in cases],
            "doctor_id": [c[2] for c in cases],
            "settle_month": [c[3] for c in cases],
        }
    )
    status = pa.table(
        {"case_id": t.column("case_id"), "passed": [True] * 10 + [False] + [True] * 9}
    )
    leads = pa.table(
        {
            "hospital_id": ["H3", "H3", "H2", "H2", "H2"],
            "case_ids": [["A0", "A1"], ["A7"], ["B1"], ["B2"], ["B3", "B4"]],
        }
    )
    violations = pa.table({"hospital_id": ["H2"], "case_ids": [["B1"]]})
    complaints = pa.table({"hospital_id": ["H2"]})
    # a dispute of H2 about B5 decided against it (counted only with count_lost_disputes)
    lost = pa.table({"hospital_id": ["H2"], "case_ids": [["B5"]]})
    due = dt.datetime
    submissions = pa.table(
        {
            "hospital_id": ["H3", "H3", "H3", "H2", "H2", "H2", "H2"],
            "settle_month": ["2026-01", "2026-02", "2026-03", "2026-01", "2026-02", "2026-02",
                             "2026-03"],
            # deadline: the 10th of the next month (the month's first upload counts)
            "submitted_at": [due(2026, 2, 10, 23, 59), due(2026, 3, 1), due(2026, 4, 9),
                             due(2026, 2, 11, 8), due(2026, 3, 5), due(2026, 3, 20),
                             due(2026, 4, 12)],
        }
    )  # fmt: skip

    def mk(name: str, table: pa.Table):
        return con.create_table(name, table, overwrite=True)

    return CreditInputs(
        cases=mk("cr_cases", t),
        case_status=mk("cr_status", status),
        leads=mk("cr_leads", leads),
        violations=mk("cr_viol", violations),
        complaints=mk("cr_comp", complaints),
        submissions=mk("cr_sub", submissions),
        lost_disputes=mk("cr_lost", lost),
    )


def settle_inputs(con, pf, grades: dict[str, str] | None):
    from opendip.settlement.clearing import Inputs

    # H3 (tertiary, no bonus): group G1 (100 points, tertiary mean 10,000 yuan); a March
    # case of 9,500 yuan is normal: 100 points × 100 yuan (budget point value) = 1,000,000
    # fen; personal share 1,000 + 500 yuan → fund payable 850,000 fen. An August case the
    # same (the default withholding share is 0.05 from January, 0.08 from July).
    cases = [
        b.case("W1", hospital_id="H3", total_cost=950_000, fund_paid=800_000,
               personal_copay=100_000, personal_selfpay=50_000, settle_month="2026-03",
               discharge_date=dt.date(2026, 3, 10)),
        b.case("W2", hospital_id="H3", total_cost=950_000, fund_paid=800_000,
               personal_copay=100_000, personal_selfpay=50_000, settle_month="2026-08",
               discharge_date=dt.date(2026, 8, 10)),
    ]  # fmt: skip
    credit = (
        pa.table({"hospital_id": list(grades), "grade": list(grades.values())}) if grades else None
    )
    return Inputs(
        con.create_table("w_c", b.cases_table(cases), overwrite=True),
        con.create_table(
            "w_g", b.grouped_table([b.grouped("W1"), b.grouped("W2")]), overwrite=True
        ),
        con.create_table("w_d", b.directory_table([b.group("G1")]), overwrite=True),
        con.create_table("w_h", b.hospitals_table([b.hospital("H3")]), overwrite=True),
        pf,
        credit=credit,
    )
