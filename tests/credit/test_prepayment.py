"""预付金管理: eligibility by credit grade and assessment, the amount at the start of the year,
the monthly instalments and the clearing, worked by hand in fen; the reconciliation
recomputed independently (the fund identity holds to the fen)."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from opendip.engine import connect
from opendip.policy.load import PolicyError
from tests.credit.region import b, policy, settle_inputs

#: 1.5 months of the previous year's average: 1,234,567 fen over 11 months →
#: 1,234,567 × 1.5 ÷ 11 = 168,350.045… → 168,350 fen; recovered in 3 instalments from March:
#: floor(168,350 ÷ 3) = 56,116 in March and April, the remainder 56,118 in May.
PREPAY = {
    "months": Decimal("1.5"),
    "min_assessment_score": 80,
    "recovery": "instalments",
    "recovery_months": 3,
    "recovery_start_month": 3,
}
BASE = pa.table(
    {"hospital_id": ["H3"], "pool": ["employee"], "paid_fen": [1_234_567], "months": [11]}
)


def _inputs(con, grade: str | None, score: int | None = 85, **prepay):
    tree = {k: v for k, v in {**PREPAY, **prepay}.items() if v is not None}
    inp = settle_inputs(
        con,
        policy(prepayment=tree),
        {"H3": grade} if grade else None,
    )
    inp.prepayment_base = BASE
    inp.previous_assessment = (
        pa.table({"hospital_id": ["H3"], "assessment_score": [score]})
        if score is not None
        else None
    )
    return inp


@pytest.fixture(scope="module")
def con():
    return connect()


def test_worked_example_months_and_clearing(con) -> None:
    from opendip.settlement.clearing import settle_month, settle_year

    inp = _inputs(con, "A")
    march = settle_month(inp, "2026-03").hospitals.to_pylist()[0]
    # A: withheld 850,000 × 0.03 = 25,500; advance 824,500; instalment 56,116
    assert (march["advance_fen"], march["prepaid_fen"], march["prepayment_recovery_fen"]) == (
        824_500,
        168_350,
        56_116,
    )
    assert march["advance_paid_fen"] == 824_500 - 56_116
    august = settle_month(inp, "2026-08").hospitals.to_pylist()[0]
    assert august["prepayment_recovery_fen"] == 0  # after May
    year = settle_year(inp, 2026)
    h = year.hospitals.to_pylist()[0]
    # April and May had no cases: their instalments are recovered at the clearing
    assert (h["prepaid_fen"], h["prepayment_recovered_fen"], h["prepayment_outstanding_fen"]) == (
        168_350,
        56_116,
        112_234,
    )
    assert h["advances_fen"] == 2 * 824_500
    assert h["clearing_payment_fen"] == h["clearing_total_fen"] - 1_649_000 - 112_234
    assert h["prepayment_reason"] == "符合预付条件"


@pytest.mark.parametrize(
    ("grade", "score", "reason"),
    [
        ("C", 85, "上年信用等级不享预付"),
        (None, 85, "无上年信用等级"),
        ("A", 79, "上年考核得分低于预付要求"),
        ("B", 80, "符合预付条件"),  # B is eligible; 80 meets min_assessment_score 80
    ],
)
def test_eligibility(con, grade, score, reason) -> None:
    from opendip.settlement.clearing import settle_year

    h = settle_year(_inputs(con, grade, score), 2026).hospitals.to_pylist()[0]
    assert h["prepayment_reason"] == reason
    assert h["prepaid_fen"] == (168_350 if reason == "符合预付条件" else 0)


def test_recovery_at_clearing(con) -> None:
    from opendip.settlement.clearing import settle_month, settle_year

    inp = _inputs(con, "A", recovery="clearing", recovery_months=None, recovery_start_month=None)
    assert settle_month(inp, "2026-03").hospitals.to_pylist()[0]["prepayment_recovery_fen"] == 0
    h = settle_year(inp, 2026).hospitals.to_pylist()[0]
    assert (h["prepayment_recovered_fen"], h["prepayment_outstanding_fen"]) == (0, 168_350)


def test_an_instalment_never_exceeds_the_advance(con) -> None:
    """A base of 120,000,000 fen over 12 months, 10 months → 100,000,000 fen; 3 instalments
    of 33,333,333 exceed March's 824,500 advance: 824,500 recovered, the rest at clearing."""
    from opendip.settlement.clearing import settle_month, settle_year

    inp = _inputs(con, "A", months=10)
    inp.prepayment_base = pa.table(
        {"hospital_id": ["H3"], "pool": ["employee"], "paid_fen": [120_000_000], "months": [12]}
    )
    m = settle_month(inp, "2026-03").hospitals.to_pylist()[0]
    assert (m["prepaid_fen"], m["prepayment_recovery_fen"], m["advance_paid_fen"]) == (
        100_000_000,
        824_500,
        0,
    )
    h = settle_year(inp, 2026).hospitals.to_pylist()[0]
    assert h["prepayment_outstanding_fen"] == 100_000_000 - 824_500


def test_missing_inputs_mean_no_prepayment_and_say_why(con) -> None:
    from opendip.settlement.clearing import settle_year

    h = settle_year(_inputs(con, "A", score=None), 2026).hospitals.to_pylist()[0]
    assert (h["prepaid_fen"], h["prepayment_reason"]) == (0, "无上年考核得分")
    inp = _inputs(con, "A")
    inp.prepayment_base = None
    h = settle_year(inp, 2026).hospitals.to_pylist()[0]
    assert (h["prepaid_fen"], h["prepayment_reason"]) == (0, "未提供上年 DIP 支付数据，本年不预付")
    assert h["clearing_payment_fen"] == h["clearing_total_fen"] - h["advances_fen"]


def test_bad_keys_name_their_path() -> None:
    with pytest.raises(PolicyError) as err:
        policy(prepayment={**PREPAY, "recovery_months": 11}).at()
    assert "prepayment.recovery_months" in [i.path for i in err.value.issues]
    with pytest.raises(PolicyError) as err:
        b.policy(prepayment=PREPAY).at()  # no credit section
    assert "prepayment" in [i.path for i in err.value.issues]


def test_reconciliation_recomputed_independently(con) -> None:
    """Pool totals and the fund identity recomputed from the hospital lines in Python."""
    from opendip.settlement.clearing import settle_year

    r = settle_year(_inputs(con, "A"), 2026)
    hs = r.hospitals.to_pylist()
    for pool in r.pools.to_pylist():
        rows = [h for h in hs if h["pool"] == pool["pool"]]
        for col in ("prepaid_fen", "prepayment_recovered_fen", "prepayment_outstanding_fen",
                    "advances_fen", "clearing_payment_fen", "clearing_total_fen"):  # fmt: skip
            assert pool[col] == sum(h[col] for h in rows), col
        received = sum(
            h["prepaid_fen"] + h["advances_fen"] - h["prepayment_recovered_fen"]
            + h["clearing_payment_fen"]
            for h in rows
        )  # fmt: skip
        assert received == pool["clearing_total_fen"]
        assert pool["cash_identity"] is True and pool["clearing_identity"] is True
        for h in rows:
            assert (
                h["prepayment_outstanding_fen"] == h["prepaid_fen"] - h["prepayment_recovered_fen"]
            )


def test_a_prepaid_hospital_without_dip_cases_is_recovered_at_clearing(con) -> None:
    """H9 (A, assessment 85) was paid 96,000 fen over 12 months last year → 1.5 months:
    96,000 × 1.5 ÷ 12 = 12,000 fen prepaid in January; it has no DIP case this year, so no
    monthly advance recovers it and it has no clearing line: it is listed by hospital (the
    whole 12,000 recovered at the clearing) and counted per pool, H3's lines unchanged."""
    from opendip.settlement.clearing import settle_month, settle_year
    from opendip.settlement.output import reconciliation_markdown

    inp = _inputs(con, "A")
    inp.credit = pa.table({"hospital_id": ["H3", "H9"], "grade": ["A", "A"]})
    inp.prepayment_base = pa.table(
        {"hospital_id": ["H3", "H9"], "pool": ["employee", "employee"],
         "paid_fen": [1_234_567, 96_000], "months": [11, 12]}
    )  # fmt: skip
    inp.previous_assessment = pa.table({"hospital_id": ["H3", "H9"], "assessment_score": [85, 85]})
    march = settle_month(inp, "2026-03").hospitals.to_pylist()
    assert [m["hospital_id"] for m in march] == ["H3"]
    assert march[0]["prepayment_recovery_fen"] == 56_116
    year = settle_year(inp, 2026)
    assert year.prepaid_without_line.to_pylist() == [
        {"hospital_id": "H9", "pool": "employee", "credit_grade": "A", "prepaid_fen": 12_000,
         "recovery": "本年无 DIP 病例，无月度预付可扣，清算时全额收回"}
    ]  # fmt: skip
    h = year.hospitals.to_pylist()
    assert [r["hospital_id"] for r in h] == ["H3"]
    assert (h[0]["prepaid_fen"], h[0]["prepayment_outstanding_fen"]) == (168_350, 112_234)
    pool = year.pools.to_pylist()[0]
    assert (pool["prepaid_fen"], pool["prepaid_without_line_fen"]) == (168_350, 12_000)
    # every fen prepaid is accounted for: on a hospital line or in the list of those without
    assert pool["prepaid_fen"] + pool["prepaid_without_line_fen"] == 168_350 + 12_000
    assert pool["cash_identity"] is True
    text = reconciliation_markdown(year.pools, 2026, year.counts)
    assert "年初预付金 120.00 元" in text and "清算时全额收回" in text


def test_no_prepaid_hospital_without_dip_cases_lists_nothing(con) -> None:
    from opendip.settlement.clearing import settle_year

    year = settle_year(_inputs(con, "A"), 2026)
    assert year.prepaid_without_line.num_rows == 0
    assert year.pools.to_pylist()[0]["prepaid_without_line_fen"] == 0
