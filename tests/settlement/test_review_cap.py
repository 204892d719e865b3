"""特例单议 share cap in the clearing (scoring.special_review_max_share), on the small region
of test_clearing: H005 has 2 cases in 2026 (E1, E2), H010 one (E3)."""

from __future__ import annotations

from decimal import Decimal

import builders as b
import pyarrow as pa
import pytest

from opendip.settlement import settle_year
from opendip.settlement.review_cap import ReviewCapError
from opendip.workflow.review_cap import ReviewCapExceeded, check_submission, max_nominations
from tests.settlement.test_clearing import BUDGET, region


def _reviews(*rows: tuple[str, str, str | None]) -> pa.Table:
    return pa.table(
        {
            "case_id": [r[0] for r in rows],
            "decision": [r[1] for r in rows],
            "reviewed_score": [r[2] for r in rows],
        }
    )


def _inputs(con, share: str, reviews: pa.Table):
    pf = b.policy(settlement=BUDGET, scoring={"special_review_max_share": Decimal(share)})
    inputs = region(con, pf)
    inputs.reviews = reviews
    return inputs


def test_max_nominations_rounds_down() -> None:
    assert max_nominations(Decimal("0.05"), 1234) == 61  # 61.7
    assert max_nominations(Decimal("0.05"), 1240) == 62  # exactly 62
    assert max_nominations(Decimal("0.5"), 3) == 1


def test_clearing_refuses_reviews_beyond_the_cap_with_the_numbers(con) -> None:
    # 50% of H005's 2 cases = 1 accepted review allowed; 2 accepted
    inputs = _inputs(con, "0.5", _reviews(("E1", "accept", "150"), ("E2", "通过", "120")))
    with pytest.raises(ReviewCapError) as exc:
        settle_year(inputs, 2026)
    text = str(exc.value)
    assert "医院 H005 2026 年出院 2 例，最多 1 例，特例单议通过 2 例" in text
    assert "特例单议通过病例超出上限（出院病例的 50%）" in text
    assert [e.hospital_id for e in exc.value.excess] == ["H005"]


def test_rejected_reviews_do_not_count(con) -> None:
    inputs = _inputs(con, "0.5", _reviews(("E1", "accept", "150"), ("E2", "reject", None)))
    r = settle_year(inputs, 2026)
    assert r.review_cap_excess == []


def test_agency_override_settles_and_records_the_excess(con) -> None:
    inputs = _inputs(con, "0.5", _reviews(("E1", "accept", "150"), ("E2", "accept", "120")))
    r = settle_year(inputs, 2026, review_cap_override="专家组复核确认，2026 年特殊情况")
    (e,) = r.review_cap_excess
    assert (e.hospital_id, e.discharged, e.count, e.allowed) == ("H005", 2, 2, 1)
    settled = {row["case_id"]: row["settled_score"] for row in r.cases.to_pylist()}
    assert settled["E1"] == Decimal("150.0000") and settled["E2"] == Decimal("120.0000")


def test_submission_check_message() -> None:
    check_submission("H001", 2026, 1240, 60, 2, Decimal("0.05"))  # 62 ≤ 62
    with pytest.raises(ReviewCapExceeded) as exc:
        check_submission("H001", 2026, 1240, 60, 3, Decimal("0.05"))
    assert str(exc.value) == (
        "特例单议申报超出上限：医院 H001 2026 年出院 1,240 例，按医保政策特例单议上限"
        "（出院病例的 5%）最多可申报 62 例；已申报 60 例，本次 3 例，"
        "合计 63 例，超出 1 例"
    )
