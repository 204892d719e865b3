"""Monthly pre-settlement and annual clearing on a small hand-computed region.

Employee pool budget 30,000 yuan (8% reserve → 27,600 available), fund_plus_personal.
E1, E2 at H005 (tertiary, 1.0): cost 10,000, 100 points each, personal 3,000, fund paid 7,000.
E3 at H010 (secondary, 0.88): cost 16,000 vs mean 8,000 = 2.0× (normal) → 88 points,
personal 3,000, fund paid 13,000. Point value (27,600 + 9,000) / 288 = 127.083333.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import builders as b
import pyarrow as pa
import pytest

from opendip.settlement import Inputs, NoCasesError, settle_month, settle_year

D = Decimal
BUDGET = {"budget": {"employee": {"fund_budget_yuan": 30000}}}


def region(con, pf=None, hospitals=None, extra_cases=()):
    cases = [
        b.case("E1", hospital_id="H005", settle_month="2026-03"),
        b.case(
            "E2", hospital_id="H005", settle_month="2026-08", discharge_date=dt.date(2026, 8, 2)
        ),
        b.case("E3", hospital_id="H010", total_cost=1_600_000, fund_paid=1_300_000),
        *extra_cases,
    ]
    hospitals = hospitals or [b.hospital("H005"), b.hospital("H010", "secondary")]
    return Inputs(
        con.create_table("c", b.cases_table(cases), overwrite=True),
        con.create_table(
            "g", b.grouped_table([b.grouped(c["case_id"]) for c in cases]), overwrite=True
        ),
        con.create_table("d", b.directory_table([b.group("G1")]), overwrite=True),
        con.create_table("h", b.hospitals_table(hospitals), overwrite=True),
        pf or b.policy(settlement=BUDGET),
    )


def rows(table: pa.Table, *keys: str) -> dict:
    return {tuple(r[k] for k in keys): r for r in table.to_pylist()}


def test_monthly_pre_settlement_with_the_withholding_in_force(con):
    inputs = region(con)
    march = rows(settle_month(inputs, "2026-03").hospitals, "hospital_id")
    # H005: 100 × 100 = 10,000 yuan; fund payable 7,000; 5% withheld = 350; advance 6,650
    h5 = march[("H005",)]
    assert (
        h5["dip_amount_fen"],
        h5["fund_payable_fen"],
        h5["withheld_fen"],
        h5["advance_fen"],
    ) == (
        1_000_000,
        700_000,
        35_000,
        665_000,
    )
    # H010: 88 × 100 = 8,800; fund payable 5,800; 5% = 290
    assert march[("H010",)]["withheld_fen"] == 29_000
    # August: the 8% share in force from 2026-07-01: 7,000 × 8% = 560
    august = settle_month(inputs, "2026-08")
    assert august.withholding_share == D("0.08")
    assert rows(august.hospitals, "hospital_id")[("H005",)]["withheld_fen"] == 56_000


def test_month_without_cases_is_an_explicit_error(con):
    with pytest.raises(NoCasesError, match="2026-05 没有病例"):
        settle_month(region(con), "2026-05")


def test_annual_clearing_by_hand(con):
    assessment = pa.table({"hospital_id": ["H005", "H010"], "assessment_score": [95, 85]})
    r = settle_year(region(con), 2026, assessment=assessment)
    assert r.point_values == {"employee": D("127.083333")}
    h = rows(r.hospitals, "hospital_id")
    h5, h10 = h[("H005",)], h[("H010",)]
    # H005: 2 × 12,708.33 = 25,416.66; fund payable 19,416.66 vs FFS 14,000 (≥ 1):
    # surplus kept up to 10% → 15,400
    assert (h5["dip_amount_fen"], h5["fund_payable_fen"], h5["adjusted_fen"]) == (
        2_541_666,
        1_941_666,
        1_540_000,
    )
    assert (h5["result"], h5["ffs_rule"]) == ("surplus", "keep_surplus")
    # deposit 350 + 560 = 910 returned in full (score 95); advances 6,650 + 6,440
    assert (h5["withheld_fen"], h5["returned_fen"], h5["advances_fen"]) == (
        91_000,
        91_000,
        1_309_000,
    )
    assert h5["clearing_payment_fen"] == 1_540_000 - 1_309_000
    # H010: 88 × 127.083333 = 11,183.33; fund payable 8,183.33 vs FFS 13,000 (0.63 < 0.85):
    # half the loss shared: 8,183.33 + round(0.5 × 4,816.67) = 8,183.33 + 2,408.34 = 10,591.67
    assert (h10["fund_payable_fen"], h10["adjusted_fen"], h10["result"]) == (
        818_333,
        1_059_167,
        "deficit",
    )
    # deposit 290, score 85 → 80% returned = 232, 58 deducted; advance 5,510
    assert (h10["returned_fen"], h10["deposit_deducted_fen"]) == (23_200, 5_800)
    assert h10["clearing_payment_fen"] == 1_059_167 - 5_800 - 551_000
    pool = r.pools.to_pylist()[0]
    assert pool["reserve_used_fen"] == 240_834
    assert pool["reserve_balance_fen"] == 240_000 - 240_834  # reported shortfall
    assert pool["rounding_residual_fen"] == 3_660_000 - 3_659_999
    assert (pool["hospitals_in_surplus"], pool["hospitals_in_deficit"]) == (1, 1)
    assert pool["cases_equal_hospitals"] and pool["clearing_identity"]
    dept = rows(r.departments, "hospital_id", "department")
    assert dept[("H010", "外科")]["dip_minus_ffs_fen"] == 818_333 - 1_300_000


def test_without_assessment_the_deposit_is_held_and_said(con):
    h = rows(settle_year(region(con), 2026).hospitals, "hospital_id")
    assert h[("H005",)]["returned_fen"] == 0
    assert "未提供考核结果" in h[("H005",)]["assessment_status"]


def test_without_assessment_the_policy_may_return_the_deposit(con):
    """settlement.deposit_without_assessment: return_all returns H005's 910 yuan deposit."""
    pf = b.policy(settlement={**BUDGET, "deposit_without_assessment": "return_all"})
    h5 = rows(settle_year(region(con, pf), 2026).hospitals, "hospital_id")[("H005",)]
    assert (h5["withheld_fen"], h5["returned_fen"], h5["deposit_deducted_fen"]) == (
        91_000,
        91_000,
        0,
    )
    assert h5["assessment_status"] == "未提供考核结果，按政策全额返还质量保证金"


def test_without_assessment_a_default_score_goes_through_the_bands(con):
    """default_score 85 → band ≥80 returns 80%: H005 910 → 728, H010 290 → 232."""
    pf = b.policy(
        settlement={
            **BUDGET,
            "deposit_without_assessment": "default_score",
            "default_assessment_score": 85,
        }
    )
    h = rows(settle_year(region(con, pf), 2026).hospitals, "hospital_id")
    assert (h[("H005",)]["returned_fen"], h[("H010",)]["returned_fen"]) == (72_800, 23_200)
    assert h[("H005",)]["assessment_score"] == D(85)
    assert "默认考核得分 85" in h[("H005",)]["assessment_status"]


def test_default_score_needs_its_score():
    from opendip.policy import PolicyError

    pf = b.policy(settlement={**BUDGET, "deposit_without_assessment": "default_score"})
    with pytest.raises(PolicyError, match="default_assessment_score"):
        pf.at()


def test_assessment_missing_a_hospital_is_refused(con):
    from opendip.scoring import InputDataError

    with pytest.raises(InputDataError, match="assessment"):
        settle_year(
            region(con), 2026, assessment=pa.table({"hospital_id": ["H005"], "score": [90]})
        )


def test_advances_from_a_file(con):
    advances = pa.table(
        {
            "hospital_id": ["H005", "H005", "H010"],
            "pool": ["employee"] * 3,
            "advance_fen": [500_000, 500_000, 400_000],
            "withheld_fen": [10_000, 10_000, 10_000],
        }
    )
    h = rows(settle_year(region(con), 2026, advances=advances).hospitals, "hospital_id")
    assert (h[("H005",)]["advances_fen"], h[("H005",)]["withheld_fen"]) == (1_000_000, 20_000)
    assert h[("H005",)]["clearing_payment_fen"] == 1_540_000 - 20_000 - 1_000_000


def test_community_netting_shares_the_unit_adjustment_exactly(con):
    pf = b.policy(
        settlement={
            **BUDGET,
            "community_netting": True,
            "ffs_bands": [
                {"ratio_min": 1, "rule": "keep_surplus", "cap_share": 0},
                {"ratio_max": 1, "rule": "pay_dip"},
            ],
        }
    )
    hospitals = [
        b.hospital("H005", community_id="CM1"),
        b.hospital("H010", "secondary", community_id="CM1"),
    ]
    r = settle_year(region(con, pf, hospitals), 2026)
    # community: fund payable 19,416.66 + 8,183.33 = 27,599.99 vs FFS 27,000 → capped at
    # 27,000: −599.99 shared by FFS 14,000 : 13,000 → −311.11 and −288.88 (largest remainder)
    h = rows(r.hospitals, "hospital_id")
    assert (h[("H005",)]["adjustment_fen"], h[("H010",)]["adjustment_fen"]) == (-31_111, -28_888)
    unit = r.communities.to_pylist()[0]
    assert (unit["unit_id"], unit["unit_adjustment_fen"]) == ("CM1", -59_999)


def test_two_pools_have_their_own_point_values(con):
    resident = b.case("R1", hospital_id="H005", insurance_type="resident")
    r = settle_year(region(con, extra_cases=[resident]), 2026)
    # resident: (460,000 + 3,000) / 100 = 4,630
    assert r.point_values == {"employee": D("127.083333"), "resident": D("4630")}
    assert sorted(r.pools.column("pool").to_pylist()) == ["employee", "resident"]


def test_repeated_case_ids_are_returned_in_a_total_order(con):
    """Two settlement lists under one case id are both returned (清单号重复退回) and written
    in the same order on every run: by case id, then hospital and the other columns (given
    here in the reverse order)."""
    dups = [
        b.case("D1", hospital_id="H010", total_cost=900_000, fund_paid=600_000),
        b.case("D1", hospital_id="H005", total_cost=500_000, fund_paid=300_000),
    ]
    r = settle_year(region(con, extra_cases=dups), 2026)
    returned = [row for row in r.not_dip.to_pylist() if row["case_id"] == "D1"]
    assert [row["hospital_id"] for row in returned] == ["H005", "H010"]
    assert {row["status"] for row in returned} == {"清单号重复退回"}
    assert r.cases.column("case_id").to_pylist() == ["E1", "E2", "E3"]
