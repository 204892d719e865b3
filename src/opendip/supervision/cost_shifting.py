"""Cost shifting (费用转嫁): a hospital's self-paid (个人自费) or out-of-list (目录外) share.

For the period under review, per hospital: share = Σ amount / Σ total cost, for both the
self-paid and the out-of-list amounts. A hospital is flagged when, for either share,
- the out-of-list share itself is ≥ `out_of_list_share_alert`, or
- the share rose by ≥ `cost_shift_rise_alert` (share points) over its own history period, or
- the share is ≥ `cost_shift_peer_ratio_alert` × the share at same-level peers (itself
  excluded).
Score: the largest of (share ÷ peer share, share ÷ own history share). Impact: the amount
above the reference share (the larger of the peer and history shares that apply). Cases
listed: the hospital's stays with the highest out-of-list + self-paid share.

Costs moved to outpatient care before admission cannot be checked: outpatient claims are
not in the data contract yet (docs/supervision.md).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from opendip.engine import ordered_collect
from opendip.policy import Policy
from opendip.supervision.text import concat, num, pct, s, yuan


def hospital_shares(stays: ir.Table) -> ir.Table:
    """Per hospital, level and period (current flag): cases, total, self-paid, out-of-list."""
    return stays.group_by(["hospital_id", "level", "current"]).aggregate(
        n=stays.count(),
        total=stays.total_cost.sum(),
        selfpay=stays.selfpay.sum(),
        oolist=stays.out_of_list.sum(),
    )


def cost_shifting_leads(stays: ir.Table, policy: Policy) -> ir.Table:
    sv = policy.supervision
    agg = hospital_shares(stays)
    cur = agg.filter(agg.current & (agg.total > 0)).drop("current")
    hist = agg.filter(~agg.current & (agg.total > 0)).select(
        h_hosp=agg.hospital_id, h_n=agg.n, h_total=agg.total, h_self=agg.selfpay, h_oo=agg.oolist
    )
    lvl = cur.group_by("level").aggregate(
        l_n=cur.n.sum(), l_total=cur.total.sum(), l_self=cur.selfpay.sum(), l_oo=cur.oolist.sum()
    )
    j = cur.join(lvl, "level").left_join(hist, cur.hospital_id == hist.h_hosp)
    f = "float64"
    peer_ok = (j.l_n - j.n) >= sv.min_peer_cases
    hist_ok = j.h_n.fill_null(0) >= sv.min_peer_cases
    j = j.mutate(
        self_share=j.selfpay.cast(f) / j.total,
        oo_share=j.oolist.cast(f) / j.total,
        peer_self=ibis.ifelse(
            peer_ok, (j.l_self - j.selfpay).cast(f) / (j.l_total - j.total), None
        ),
        peer_oo=ibis.ifelse(peer_ok, (j.l_oo - j.oolist).cast(f) / (j.l_total - j.total), None),
        hist_self=ibis.ifelse(hist_ok, j.h_self.cast(f) / j.h_total, None),
        hist_oo=ibis.ifelse(hist_ok, j.h_oo.cast(f) / j.h_total, None),
    )
    rise = float(sv.cost_shift_rise_alert)
    ratio = float(sv.cost_shift_peer_ratio_alert)
    eps = 1e-9
    flags = {
        "absolute": j.oo_share >= float(sv.out_of_list_share_alert),
        "rise_self": (j.self_share - j.hist_self) >= rise,
        "rise_oo": (j.oo_share - j.hist_oo) >= rise,
        "peer_self": j.self_share >= ratio * j.peer_self,
        "peer_oo": j.oo_share >= ratio * j.peer_oo,
    }
    j = j.mutate(**{f"f_{k}": v.fill_null(False) for k, v in flags.items()})
    j = j.filter(ibis.or_(*[j[f"f_{k}"] for k in flags]))
    ref_oo = ibis.greatest(j.peer_oo.fill_null(0.0), j.hist_oo.fill_null(0.0))
    ref_self = ibis.greatest(j.peer_self.fill_null(0.0), j.hist_self.fill_null(0.0))
    j = j.mutate(
        score=ibis.greatest(
            (j.oo_share / (j.peer_oo + eps)).fill_null(0.0),
            (j.self_share / (j.peer_self + eps)).fill_null(0.0),
            (j.oo_share / (j.hist_oo + eps)).fill_null(0.0),
            (j.self_share / (j.hist_self + eps)).fill_null(0.0),
        ),
        impact=ibis.greatest(
            (j.oo_share - ref_oo) * j.total, (j.self_share - ref_self) * j.total, 0.0
        ),
    )
    # cases: highest out-of-list + self-paid share at the flagged hospitals
    c = stays.filter(stays.current & (stays.total_cost > 0))
    c = c.mutate(own=(ibis.greatest(c.selfpay, c.out_of_list)).cast(f) / c.total_cost)
    flagged = j.select(c_hosp=j.hospital_id)
    c = c.join(flagged, c.hospital_id == flagged.c_hosp).drop("c_hosp")
    w = ibis.window(group_by="hospital_id", order_by=[ibis.desc(c.own), c.case_id])
    c = c.mutate(_rn=ibis.row_number().over(w))
    c = c.filter(c._rn < sv.lead_max_cases)
    listed = c.group_by("hospital_id").aggregate(case_ids=ordered_collect(c.case_id, c._rn))
    j = j.join(listed, "hospital_id")
    reasons = concat(
        ibis.ifelse(j.f_absolute, concat("目录外费用占比 ≥ ", pct(ibis.literal(float(sv.out_of_list_share_alert)), 0), "；"), ""),
        ibis.ifelse(j.f_rise_self | j.f_rise_oo, concat("较本院历史上升 ≥ ", pct(ibis.literal(rise), 0), "；"), ""),
        ibis.ifelse(j.f_peer_self | j.f_peer_oo, concat("达同级医院的 ", num(ibis.literal(ratio)), " 倍以上；"), ""),
    )  # fmt: skip
    evidence = concat(
        s(j.hospital_id), " 本期 ", s(j.n), " 例住院费用 ", yuan(j.total), " 元，个人自费占比 ",
        pct(j.self_share), "、目录外费用占比 ", pct(j.oo_share), "；同级医院分别为 ",
        pct(j.peer_self), "、", pct(j.peer_oo), "；本院历史期分别为 ", pct(j.hist_self), "、",
        pct(j.hist_oo), "。触发：", reasons, "估计转嫁至患者的费用约 ", yuan(j.impact),
        " 元。住院前门诊费用转移尚无法核查（数据契约暂无门诊结算数据）。",
    )  # fmt: skip
    return j.select(
        lead_type=ibis.literal("cost_shifting"),
        key=j.hospital_id,
        hospital_id=j.hospital_id,
        department=ibis.null("string"),
        doctor_id=ibis.null("string"),
        case_ids=j.case_ids,
        score=j.score,
        impact_fen=j.impact.round().cast("int64"),
        evidence=evidence,
    )
