"""Overlong stays (超长住院) and high-multiple clusters by doctor or department.

Overlong: a stay of the period under review with LOS ≥ `overlong_stay_days` (main
diagnoses in `overlong_exclude_prefixes`, e.g. bed-day paid psychiatry, are left out).

High-multiple clusters (only when scoring is given): a doctor (or a department) of a
hospital whose count of high-multiple (高倍率, incl. extreme) cases is ≥ `cluster_min_cases`
and whose high-multiple share is ≥ `cluster_share_ratio_alert` × the share of the same
department at same-level hospitals (z-score ≥ 3 under a binomial model).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from opendip.engine import ordered_collect
from opendip.policy import Policy
from opendip.supervision.text import concat, num, pct, s, yuan

HIGH = ("high", "extreme")


def overlong_leads(typed: ir.Table, policy: Policy) -> ir.Table:
    """Leads of type `overlong_stay` (one per stay). `typed` = stays with typical values."""
    sv = policy.supervision
    t = typed
    cond = t.current & (t.los >= sv.overlong_stay_days)
    if sv.overlong_exclude_prefixes:
        cond &= ~ibis.or_(*[t.main_diagnosis.startswith(p) for p in sv.overlong_exclude_prefixes])
    t = t.filter(cond)
    evidence = concat(
        "病例 ", s(t.case_id), " 于 ", s(t.admit_date), " 入院、", s(t.discharge_date),
        " 出院，住院 ", s(t.los), " 天（≥ ", str(sv.overlong_stay_days), " 天）；主要诊断 ",
        s(t.main_diagnosis), "，科室 ", s(t.department), "，医师 ", s(t.doctor_id), "，费用 ",
        yuan(t.total_cost), " 元；", t.typical_scope.fill_null("全区域"), "同病种典型住院日 ",
        num(t.typical_los), " 天，典型费用 ", yuan(t.typical_cost), " 元。",
    )  # fmt: skip
    return t.select(
        lead_type=ibis.literal("overlong_stay"),
        key=t.case_id,
        hospital_id=t.hospital_id,
        department=t.department,
        doctor_id=t.doctor_id,
        case_ids=ibis.array([t.case_id]),
        score=t.los.cast("float64") / sv.overlong_stay_days,
        impact_fen=t.total_cost,
        evidence=evidence,
    )


def high_multiple_cluster_leads(stays: ir.Table, policy: Policy) -> ir.Table:
    """Leads of type `high_multiple_cluster` per doctor and per department (needs scoring)."""
    sv = policy.supervision
    t = stays.filter(stays.current & stays.deviation.notnull() & stays.department.notnull())
    t = t.mutate(high=t.deviation.isin(HIGH).cast("int64"))
    # reference: the department's share at same-level hospitals
    ref = t.group_by(["level", "department"]).aggregate(ref_n=t.count(), ref_high=t.high.sum())
    out = []
    for unit, label in (("doctor_id", "医师"), ("department", "科室")):
        keys = ["hospital_id", "department"] + (["doctor_id"] if unit == "doctor_id" else [])
        src = t.filter(t[unit].notnull())
        g = src.group_by([*keys, "level"]).aggregate(
            n=src.count(),
            n_high=src.high.sum(),
            high_cost=(src.total_cost * src.high).sum(),
            case_ids=ordered_collect(
                src.case_id, -src.total_cost, src.case_id, where=src.high == 1
            ),
        )
        g = g.join(ref, ["level", "department"])
        # peers exclude the unit itself
        g = g.mutate(
            peer_n=g.ref_n - g.n,
            peer_high=g.ref_high - g.n_high,
        )
        g = g.mutate(
            share=g.n_high.cast("float64") / g.n,
            peer_share=(g.peer_high.cast("float64") + 0.5) / (g.peer_n + 1),
        )
        g = g.mutate(
            z=(g.n_high - g.n * g.peer_share) / (g.n * g.peer_share * (1 - g.peer_share)).sqrt()
        )
        g = g.filter(
            (g.n_high >= sv.cluster_min_cases)
            & (g.share >= g.peer_share * float(sv.cluster_share_ratio_alert))
            & (g.z >= 3)
        )
        who = (
            concat(label, " ", s(g[unit]))
            if unit == "doctor_id"
            else concat("科室 ", s(g.department))
        )
        evidence = concat(
            s(g.hospital_id), " ", who, " 本期 ", s(g.n), " 例中高倍率病例 ", s(g.n_high),
            " 例（", pct(g.share), "），同级医院同科室高倍率占比 ", pct(g.peer_share),
            "，为其 ", num(g.share / g.peer_share), " 倍（z = ", num(g.z), "）；高倍率病例费用合计 ",
            yuan(g.high_cost), " 元。",
        )  # fmt: skip
        key = (
            concat(g.hospital_id, "-", g.doctor_id)
            if unit == "doctor_id"
            else concat(g.hospital_id, "-", g.department)
        )
        out.append(
            g.select(
                lead_type=ibis.literal("high_multiple_cluster"),
                key=key,
                hospital_id=g.hospital_id,
                department=g.department,
                doctor_id=g.doctor_id if unit == "doctor_id" else ibis.null("string"),
                case_ids=g.case_ids[: sv.lead_max_cases],
                score=g.z,
                impact_fen=g.high_cost,
                evidence=evidence,
            )
        )
    return ibis.union(*out)
