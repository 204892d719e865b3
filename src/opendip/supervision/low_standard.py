"""Low-standard admission (低标准入院): very short, cheap stays for outpatient conditions.

A stay of the period under review is flagged when its LOS ≤ `low_standard_max_los_days`,
its total cost ≤ `low_standard_max_cost_ratio` × the typical (median) cost of its group
(when grouping is given) or diagnosis subcategory at hospitals of the same level (the whole
region when the level has fewer than `min_peer_cases` stays), its main diagnosis is one of
`low_standard_condition_prefixes` (any when empty), it has no procedure (when
`low_standard_conservative_only`) and its discharge method is not excluded (deaths and
transfers by default).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from opendip.policy import Policy
from opendip.supervision.prepare import pick_typical, typical_by_key
from opendip.supervision.text import concat, num, pct, s, yuan


def _any_prefix(col: ir.StringValue, prefixes: list[str]) -> ir.BooleanValue:
    return ibis.or_(*[col.startswith(p) for p in prefixes]) if prefixes else ibis.literal(True)


def cost_key(stays: ir.Table) -> ir.StringValue:
    """The key a stay's typical cost is taken from: its group, else its subcategory."""
    return stays.group_code.fill_null(ibis.literal("dx:") + stays.subcategory)


def with_typical(stays: ir.Table, policy: Policy) -> ir.Table:
    """Stays with typical_cost / typical_los / typical_scope of their key and level."""
    typ = typical_by_key(stays, cost_key(stays))
    t = stays.mutate(t_key_=cost_key(stays))
    t = t.left_join(typ, (t.t_key_ == typ.t_key) & (t.level == typ.level)).drop(
        "t_key", "level_right"
    )
    return pick_typical(t, policy)


def low_standard_leads(stays: ir.Table, policy: Policy, typed: ir.Table | None = None) -> ir.Table:
    """Leads of type `low_standard_admission` (one per stay)."""
    sv = policy.supervision
    t = typed if typed is not None else with_typical(stays, policy)
    cond = (
        t.current
        & (t.los <= sv.low_standard_max_los_days)
        & t.typical_cost.notnull()
        & (t.typical_cost > 0)
        & _any_prefix(t.main_diagnosis, sv.low_standard_condition_prefixes)
        & ~t.discharge_method.fill_null("").isin(sv.low_standard_exclude_discharge_methods)
    )
    if sv.low_standard_conservative_only:
        cond &= t.n_procedures == 0
    t = t.filter(cond)
    t = t.mutate(ratio=t.total_cost.cast("float64") / t.typical_cost)
    t = t.filter(t.ratio <= float(sv.low_standard_max_cost_ratio))
    condition = "，属门诊可治疗病种" if sv.low_standard_condition_prefixes else ""
    evidence = concat(
        "病例 ", s(t.case_id), " 主要诊断 ", s(t.main_diagnosis), condition, "，于 ",
        s(t.admit_date), " 入院、", s(t.discharge_date), " 出院，住院 ", s(t.los),
        " 天（≤ ", str(sv.low_standard_max_los_days), " 天），费用 ", yuan(t.total_cost),
        " 元，为", t.typical_scope, "同病种典型费用 ", yuan(t.typical_cost), " 元的 ",
        pct(t.ratio), "（≤ ", pct(ibis.literal(float(sv.low_standard_max_cost_ratio))),
        "）；同病种典型住院日 ", num(t.typical_los), " 天；无手术操作，离院方式 ",
        s(t.discharge_method), "。",
    )  # fmt: skip
    return t.select(
        lead_type=ibis.literal("low_standard_admission"),
        key=t.case_id,
        hospital_id=t.hospital_id,
        department=t.department,
        doctor_id=t.doctor_id,
        case_ids=ibis.array([t.case_id]),
        score=1.0 - t.ratio,
        impact_fen=t.total_cost,
        evidence=evidence,
    )
