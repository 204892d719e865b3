"""Rule step "assessment clearing coefficient" (考核清算系数), after the annual clearing.

Where the policy says so (`assessment.clearing_coefficient_bands`), a hospital's assessment
score picks a coefficient k; its clearing total changes by round_half_up(fund payable × (k −
1)) per pool (a reward above 1, a reduction below 1; the money comes from / stays in the
fund). Hospitals without a score are left unchanged. The pool's reconciliation is extended by
the same amounts, to the fen.
"""

from __future__ import annotations

from typing import Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc

from opendip.engine import table_from_arrow
from opendip.policy import Policy
from opendip.scoring.exact import big, div_half_up, ratio
from opendip.settlement.output import LABELS

LABELS.update(
    {"assessment_coefficient": "考核清算系数", "assessment_adjustment_fen": "考核清算调整"}
)


def apply(
    hospitals: pa.Table, pools: pa.Table, policy: Policy, con: Any
) -> tuple[pa.Table, pa.Table]:
    card = policy.assessment
    bands = card.clearing_coefficient_bands if card is not None else []
    if not bands:
        return hospitals, pools
    h = table_from_arrow(con, hospitals, "opendip_cleared_a")
    score = h.assessment_score
    num = ibis.cases(
        *[(score >= ibis.literal(b.min_score, type="decimal(10, 4)"), ratio(b.coefficient)[0])
          for b in bands],
        else_=1,
    )  # fmt: skip
    den = ibis.cases(
        *[(score >= ibis.literal(b.min_score, type="decimal(10, 4)"), ratio(b.coefficient)[1])
          for b in bands],
        else_=1,
    )  # fmt: skip
    coef = ibis.cases(
        *[(score >= ibis.literal(b.min_score, type="decimal(10, 4)"),
           ibis.literal(b.coefficient, type="decimal(10, 4)")) for b in bands],
        else_=ibis.null("decimal(10, 4)"),
    )  # fmt: skip
    h = h.mutate(_n=num.cast("int64"), _d=den.cast("int64"), assessment_coefficient=coef)
    # fund payable × (n − d) / d, half up away from zero.
    delta = big(h.fund_payable_fen) * (big(h._n) - big(h._d))
    mag = div_half_up(delta.abs(), big(h._d))
    adj = ibis.ifelse(score.isnull(), 0, ibis.ifelse(delta < 0, -mag, mag)).cast("int64")
    h = h.mutate(assessment_adjustment_fen=adj)
    h = h.mutate(
        clearing_total_fen=h.clearing_total_fen + h.assessment_adjustment_fen,
        clearing_payment_fen=h.clearing_payment_fen + h.assessment_adjustment_fen,
    )
    cols = list(hospitals.column_names)
    at = cols.index("clearing_total_fen")
    cols[at:at] = ["assessment_coefficient", "assessment_adjustment_fen"]
    new_h = h.select(*cols).order_by(["hospital_id", "pool"]).to_pyarrow()
    rows = []
    for p in pools.to_pylist():
        hs = new_h.filter(pc.equal(new_h.column("pool"), p["pool"]))
        amount = int(pc.sum(hs.column("assessment_adjustment_fen")).as_py() or 0)
        before = p["clearing_total_fen"]
        p = dict(p)
        p["assessment_adjustment_fen"] = amount
        p["clearing_total_fen"] = int(pc.sum(hs.column("clearing_total_fen")).as_py() or 0)
        p["clearing_payment_fen"] = int(pc.sum(hs.column("clearing_payment_fen")).as_py() or 0)
        if "kept_in_fund_fen" in p:
            p["kept_in_fund_fen"] -= amount
        p["clearing_identity"] = bool(p["clearing_identity"]) and (
            p["clearing_total_fen"] == before + amount
        )
        rows.append(p)
    return new_h, pa.Table.from_pylist(rows)
