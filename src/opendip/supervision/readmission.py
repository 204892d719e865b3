"""Split admission / readmission (分解住院、二次入院).

A stay of the period under review is a readmission when the same patient was discharged
from a previous stay of the same diagnosis category (类目) — or, when grouping is given, of
the same DIP group — at most `readmission_window_days` days before this admission, at the
same hospital or at any hospital (`readmission_scope`). Stays whose main diagnosis starts
with a `readmission_exclude_prefixes` code (planned chemotherapy/radiotherapy cycles) are
left out; with `readmission_exclude_transfers`, a previous stay ended by a transfer order
(离院方式 2) followed by an admission at another hospital is a transfer, not a readmission.
Each readmitted stay pairs with its latest qualifying previous stay (a window function over
the patient's stays, no self-join explosion).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from opendip.policy import Policy
from opendip.supervision.text import concat, s, yuan

_PREV = (
    "case_id",
    "hospital_id",
    "admit_date",
    "discharge_date",
    "main_diagnosis",
    "total_cost",
    "discharge_method",
    "subcategory",
    "group_code",
)


def _any_prefix(col: ir.StringValue, prefixes: list[str]) -> ir.BooleanValue:
    return ibis.or_(*[col.startswith(p) for p in prefixes]) if prefixes else ibis.literal(False)


def readmission_pairs(
    stays: ir.Table, policy: Policy, current_only: bool = True, grouped: bool = True
) -> ir.Table:
    """One row per readmitted stay (of the current period unless `current_only` is False)
    with its previous stay (`prev_*` columns), the gap in days and the relation.

    The window functions run only on patients with two or more stays and carry only the
    columns the rule needs; the stays' details are joined back for the pairs found.
    """
    sv = policy.supervision
    base = stays.filter(
        stays.patient_id.notnull()
        & stays.los.notnull()
        & ~_any_prefix(stays.main_diagnosis, sv.readmission_exclude_prefixes)
    ).select(
        "case_id", "patient_id", "category", "group_code", "hospital_id", "admit_date",
        "discharge_date", "discharge_method", "current",
    )  # fmt: skip
    multi = base.group_by("patient_id").aggregate(_stays=base.count())
    multi = multi.filter(multi._stays >= 2).select("patient_id")
    base = base.semi_join(multi, "patient_id")
    scope = ["hospital_id"] if sv.readmission_scope == "same_hospital" else []
    keys: list[tuple[str, str]] = [("category", "同一诊断类目")]
    if grouped:
        keys.append(("group_code", "同一病种"))
    found = []
    for key, relation in keys:
        part = base.filter(base[key].notnull()) if key == "group_code" else base
        w = ibis.window(
            group_by=["patient_id", key, *scope],
            order_by=[part.admit_date, part.discharge_date, part.case_id],
        )
        lagged = part.mutate(
            **{
                f"p_{c}": part[c].lag().over(w)
                for c in ("case_id", "discharge_date", "hospital_id", "discharge_method")
            }
        )
        lagged = lagged.filter(lagged.p_case_id.notnull())
        if current_only:
            lagged = lagged.filter(lagged.current)
        found.append(lagged.mutate(relation=ibis.literal(relation)))
    pairs = ibis.union(*found) if len(found) > 1 else found[0]
    pairs = pairs.mutate(gap_days=pairs.admit_date.delta(pairs.p_discharge_date, unit="day"))
    keep = (pairs.gap_days >= 0) & (pairs.gap_days <= sv.readmission_window_days)
    if sv.readmission_exclude_transfers:
        transfer = (pairs.p_discharge_method.fill_null("") == "2") & (
            pairs.p_hospital_id != pairs.hospital_id
        )
        keep &= ~transfer
    pairs = pairs.filter(keep)
    # several previous stays qualify (by category and by group): keep the latest one
    w = ibis.window(
        group_by="case_id",
        order_by=[ibis.desc(pairs.p_discharge_date), ibis.desc(pairs.relation), pairs.p_case_id],
    )
    pairs = pairs.mutate(_n=ibis.row_number().over(w))
    pairs = pairs.filter(pairs._n == 0).select(
        r_case="case_id", prev_case_id="p_case_id", gap_days="gap_days", relation="relation"
    )
    cur = stays.join(pairs, stays.case_id == pairs.r_case).drop("r_case")
    prev = stays.select(**{f"prev_{c}": stays[c] for c in _PREV})
    return cur.join(prev, "prev_case_id")


def readmission_leads(pairs: ir.Table, policy: Policy) -> ir.Table:
    """Leads of type `readmission` from `readmission_pairs`: both stays, with dates,
    hospitals, diagnoses and costs (pairs whose readmission is in the current period)."""
    sv = policy.supervision
    p = pairs.filter(pairs.current)
    window = sv.readmission_window_days
    same_hospital = p.prev_hospital_id == p.hospital_id
    same_sub = p.prev_subcategory == p.subcategory
    score = (
        1.0
        + (window - p.gap_days).cast("float64") / window
        + ibis.ifelse(same_sub, 1.0, 0.0)
        + ibis.ifelse(same_hospital, 1.0, 0.0)
    )
    where = ibis.ifelse(same_hospital, "同一医院", concat("另一医院 ", p.hospital_id))
    evidence = concat(
        "参保人 ", s(p.patient_id), " 于 ", s(p.prev_admit_date), " 至 ", s(p.prev_discharge_date),
        " 在 ", s(p.prev_hospital_id), " 住院（病例 ", s(p.prev_case_id), "，主要诊断 ",
        s(p.prev_main_diagnosis), "，费用 ", yuan(p.prev_total_cost), " 元），出院 ",
        s(p.gap_days), " 天后于 ", s(p.admit_date), " 在", where, "再次入院至 ",
        s(p.discharge_date), "（病例 ", s(p.case_id), "，主要诊断 ", s(p.main_diagnosis),
        "，费用 ", yuan(p.total_cost), " 元）；", p.relation, "，再入院窗口 ", str(window), " 天。",
    )  # fmt: skip
    return p.select(
        lead_type=ibis.literal("readmission"),
        key=p.case_id,
        hospital_id=p.hospital_id,
        department=p.department,
        doctor_id=p.doctor_id,
        case_ids=ibis.array([p.prev_case_id, p.case_id]),
        score=score,
        impact_fen=p.total_cost,
        evidence=evidence,
    )
