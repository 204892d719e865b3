"""The 特例单议 cap at the policy's 5% (scoring.special_review_max_share), exactly at the cap
and one case past it: the rounding-down of the allowed count, the submission check and the
clearing (19 discharged cases allow 0 accepted reviews, 20 allow 1, 40 allow 2)."""

from __future__ import annotations

from decimal import Decimal

import builders as b
import pyarrow as pa
import pytest

from opendip.settlement import Inputs, settle_year
from opendip.settlement.review_cap import ReviewCapError
from opendip.workflow.review_cap import ReviewCapExceeded, check_submission, max_nominations

FIVE = Decimal("0.05")


@pytest.mark.parametrize(
    "discharged,allowed",
    [(0, 0), (1, 0), (19, 0), (20, 1), (21, 1), (39, 1), (40, 2), (1239, 61), (1240, 62)],
)
def test_allowed_count_at_five_percent(discharged, allowed):
    assert max_nominations(FIVE, discharged) == allowed


def test_submission_at_and_past_the_cap():
    check_submission("H001", 2026, 100, 4, 1, FIVE)  # 5 of 100 = exactly 5%
    check_submission("H001", 2026, 100, 5, 0, FIVE)
    with pytest.raises(ReviewCapExceeded, match="最多可申报 5 例；已申报 5 例，本次 1 例"):
        check_submission("H001", 2026, 100, 5, 1, FIVE)
    with pytest.raises(ReviewCapExceeded, match="超出 1 例"):
        check_submission("H001", 2026, 100, 0, 6, FIVE)
    with pytest.raises(ReviewCapExceeded, match="最多可申报 0 例"):
        check_submission("H001", 2026, 19, 0, 1, FIVE)


def _settle(con, n_cases: int, accepted: int):
    cases = [b.case(f"C{i:02d}", hospital_id="H005") for i in range(n_cases)]
    reviews = pa.table(
        {
            "case_id": [f"C{i:02d}" for i in range(accepted)],
            "decision": ["accept"] * accepted,
            "reviewed_score": ["150"] * accepted,
        }
    )
    pf = b.policy(settlement={"budget": {"employee": {"fund_budget_yuan": 30000}}})
    inputs = Inputs(
        con.create_table("c", b.cases_table(cases), overwrite=True),
        con.create_table("g", b.grouped_table([b.grouped(c["case_id"]) for c in cases]), overwrite=True),
        con.create_table("d", b.directory_table([b.group("G1")]), overwrite=True),
        con.create_table("h", b.hospitals_table([b.hospital("H005")]), overwrite=True),
        pf,
    )  # fmt: skip
    inputs.reviews = reviews
    return settle_year(inputs, 2026)


def test_clearing_at_the_cap_settles_the_reviewed_score(con):
    r = _settle(con, 20, 1)  # 1 of 20 = exactly 5%
    assert r.review_cap_excess == []
    settled = {row["case_id"]: row["settled_score"] for row in r.cases.to_pylist()}
    assert settled["C00"] == Decimal("150.0000") and settled["C01"] == Decimal("100.0000")


def test_clearing_one_past_the_cap_is_refused(con):
    with pytest.raises(ReviewCapError) as exc:
        _settle(con, 19, 1)  # 1 of 19 = 5.26%: 0 allowed
    assert [(e.hospital_id, e.discharged, e.count, e.allowed) for e in exc.value.excess] == [
        ("H005", 19, 1, 0)
    ]
    with pytest.raises(ReviewCapError):
        _settle(con, 20, 2)


def test_the_clearing_refusal_lists_every_hospital_over_the_cap():
    from opendip.workflow.review_cap import CapExcess, excess_text

    text = excess_text(
        [CapExcess("H001", 2026, 1240, 63, 62), CapExcess("H002", 2026, 19, 1, 0)], FIVE
    )
    assert text == (
        "特例单议通过病例超出上限（出院病例的 5%）："
        "医院 H001 2026 年出院 1,240 例，最多 62 例，特例单议通过 63 例；"
        "医院 H002 2026 年出院 19 例，最多 0 例，特例单议通过 1 例。"
        "经办机构确认后可明确放行（记入审计日志），否则不予清算"
    )
