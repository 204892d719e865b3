"""Clearing-side 特例单议 cap: accepted reviewed scores beyond a hospital's share of its
discharged cases (`scoring.special_review_max_share`) are refused unless the agency
overrides explicitly (the web platform records the override in the audit log)."""

from __future__ import annotations

from decimal import Decimal

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from opendip.scoring.inputs import ACCEPT
from opendip.settlement.errors import SettlementError
from opendip.workflow.review_cap import CapExcess, excess_text, max_nominations


class ReviewCapError(SettlementError):
    """Accepted special reviews over the cap, and no override."""

    def __init__(self, excess: list[CapExcess], share: Decimal) -> None:
        self.excess = excess
        super().__init__(excess_text(excess, share))


def review_cap_excess(
    cases: ir.Table, reviews: pa.Table | None, share: Decimal, year: int
) -> list[CapExcess]:
    """Hospitals whose accepted reviews among `cases` (the year's cases) exceed the cap."""
    if reviews is None or reviews.num_rows == 0:
        return []
    decision = pc.utf8_lower(pc.utf8_trim_whitespace(reviews.column("decision").cast(pa.string())))
    ids = reviews.filter(pc.is_in(decision, pa.array(ACCEPT))).column("case_id").cast(pa.string())
    if len(ids) == 0:
        return []
    accepted = ibis.memtable(pa.table({"_rid": pc.unique(ids)}))
    totals = cases.group_by("hospital_id").aggregate(discharged=cases.count())
    hits = cases.semi_join(accepted, cases.case_id == accepted._rid)
    hits = hits.group_by("hospital_id").aggregate(count=hits.count())
    rows = totals.join(hits, "hospital_id").order_by("hospital_id").to_pyarrow().to_pylist()
    out = []
    for r in rows:
        allowed = max_nominations(share, int(r["discharged"]))
        if int(r["count"]) > allowed:
            out.append(
                CapExcess(r["hospital_id"], year, int(r["discharged"]), int(r["count"]), allowed)
            )
    return out


def check_review_cap(
    cases: ir.Table, reviews: pa.Table | None, share: Decimal, year: int, override: str | None
) -> list[CapExcess]:
    """The excess (empty when within the cap); raises ReviewCapError over the cap unless an
    override reason is given."""
    excess = review_cap_excess(cases, reviews, share, year)
    if excess and not (override or "").strip():
        raise ReviewCapError(excess, share)
    return excess
