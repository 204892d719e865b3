"""Grouping cases (入组), batch: one Ibis expression for all cases.

Steps, in the policy's order: QC exclusion → not-for-grouping codes → special groups → core
(and basic) groups with the tie-break chain → comprehensive groups by category → block →
chapter and procedure type → fallback (blank group or unmatched). Every case gets exactly one
row (grouping is total).
"""

from __future__ import annotations

from decimal import Decimal

import ibis
import ibis.expr.types as ir

from opendip.codes import category_table
from opendip.contract import GROUPED
from opendip.directory.keys import TYPE_LABEL, with_keys
from opendip.policy import Policy

COEFFICIENT = "decimal(10, 4)"
SCORE = "decimal(18, 4)"


def _any_prefix(col: ir.StringValue, prefixes: list[str]) -> ir.BooleanValue:
    return ibis.or_(*[col.startswith(p) for p in prefixes]) if prefixes else ibis.literal(False)


def _any_list_prefix(arr: ir.ArrayValue, prefixes: list[str]) -> ir.BooleanValue:
    if not prefixes:
        return ibis.literal(False)
    return arr.filter(lambda p: _any_prefix(p, prefixes)).length() > 0


def special_condition(t: ir.Table, sg) -> ir.BooleanValue:
    cond = ibis.literal(True)
    if sg.diagnosis_prefixes:
        cond &= _any_prefix(t.main_diagnosis, sg.diagnosis_prefixes)
    if sg.procedure_prefixes:
        cond &= _any_list_prefix(t.procedures, sg.procedure_prefixes)
    if sg.departments:
        cond &= t.department.isin(sg.departments)
    if sg.max_los_days:
        cond &= t.los_days.fill_null(10**6) <= sg.max_los_days
    return cond


def aux_coefficient_expr(t: ir.Table, policy: Policy) -> ir.NumericValue:
    """Product of auxiliary coefficients (age band × comorbidity level × metastasis)."""
    aux = policy.directory.auxiliary
    coef = ibis.literal(Decimal(1), type=COEFFICIENT)
    age_cases = []
    for band in aux.age_bands:
        cond = ibis.literal(True)
        if band.min_age_years is not None:
            cond &= t.age >= band.min_age_years
        if band.max_age_years is not None:
            cond &= t.age <= band.max_age_years
        age_cases.append((cond, ibis.literal(band.coefficient, type=COEFFICIENT)))
    if age_cases:
        coef = coef * ibis.cases(*age_cases, else_=ibis.literal(Decimal(1), type=COEFFICIENT))
    if aux.comorbidity_levels and aux.comorbidity_prefixes:
        matches = t.other_diagnoses.filter(
            lambda d: _any_prefix(d, aux.comorbidity_prefixes)
        ).length()
        levels = sorted(aux.comorbidity_levels, key=lambda lv: lv.min_matches, reverse=True)
        coef = coef * ibis.cases(
            *[
                (matches >= lv.min_matches, ibis.literal(lv.coefficient, type=COEFFICIENT))
                for lv in levels
            ],
            else_=ibis.literal(Decimal(1), type=COEFFICIENT),
        )
    if aux.tumour_metastasis_prefixes and aux.tumour_metastasis_coefficient:
        has = (
            t.other_diagnoses.filter(
                lambda d: _any_prefix(d, aux.tumour_metastasis_prefixes)
            ).length()
            > 0
        )
        coef = coef * ibis.ifelse(
            has,
            ibis.literal(aux.tumour_metastasis_coefficient, type=COEFFICIENT),
            ibis.literal(Decimal(1), type=COEFFICIENT),
        )
    # DuckDB widens decimal products (22,16); round explicitly, half away from zero.
    return coef.round(4).cast(COEFFICIENT)


def _order_keys(c: ir.Table, policy: Policy) -> list:
    keys = []
    for rule in policy.grouping.tie_break:
        if rule == "most_procedures_matched":
            keys.append(c.matched.desc())
        elif rule == "closest_mean_cost":
            keys.append((c.mean_cost_fen - c.total_cost).abs().asc())
        elif rule == "highest_score":
            keys.append(c.score.desc())
        elif rule == "main_procedure_first":
            keys.append(c.has_main.desc())
        elif rule == "exact_match_first":
            keys.append(c.exact.desc())
    keys.append(c.group_code.asc())  # deterministic final order
    return keys


def core_candidates(keyed: ir.Table, directory: ir.Table, policy: Policy) -> ir.Table:
    """Every (case, core/basic row) pair that matches, with the columns tie-breaks use."""
    rows = directory.filter(directory.group_type.isin(["core", "basic"]))
    rows = rows.select(
        "group_code",
        "group_type",
        "score",
        "mean_cost_fen",
        "procedure_match",
        rkey=rows.diagnosis_key,
        rprocs=rows.procedure_key.split("+").filter(lambda p: p != ""),
    )
    cases = keyed.select(
        "_rid",
        "dx_key",
        "procedures",
        "surgical",
        "total_cost",
        "main_procedure",
        "n_procedures",
    )
    c = cases.join(rows, cases.dx_key == rows.rkey)
    c = c.mutate(matched=c.rprocs.intersect(c.procedures).length(), rlen=c.rprocs.length())
    ok = ibis.cases(
        (c.procedure_match == "none", ibis.literal(True)),
        (c.procedure_match == "all", c.matched == c.rlen),
        (c.procedure_match == "any", c.matched > 0),
        else_=ibis.literal(False),
    )
    if policy.grouping.unlisted_surgery_to_comprehensive:
        ok &= c.surgical.filter(lambda p: ~c.rprocs.contains(p)).length() == 0
    c = c.filter(ok)
    return c.mutate(
        exact=(c.matched == c.n_procedures) & (c.rlen == c.n_procedures),
        has_main=c.main_procedure.notnull() & c.rprocs.contains(c.main_procedure.fill_null("")),
    )


def group_cases(
    cases: ir.Table,
    directory: ir.Table,
    procedure_types: ir.Table,
    policy: Policy,
    case_status: ir.Table | None = None,
) -> ir.Table:
    """One row per case in the GROUPED contract."""
    # A surrogate row key: duplicated case ids (a QC error) must not mix their rows.
    order = [
        cases.case_id,
        cases.hospital_id,
        cases.admit_date,
        cases.discharge_date,
        cases.total_cost,
        cases.main_diagnosis,
    ]
    cases = cases.mutate(_rid=ibis.row_number().over(order_by=order))
    keyed = with_keys(cases, policy, procedure_types, row_key="_rid")
    cats = ibis.memtable(category_table())
    keyed = keyed.left_join(cats, "category")
    if case_status is not None:
        blocking = (
            case_status.filter(case_status.blocking)
            .select("case_id")
            .distinct()
            .mutate(_blocked=True)
        )
        keyed = keyed.left_join(blocking, "case_id")
        keyed = keyed.mutate(_blocked=keyed._blocked.fill_null(False))
    else:
        keyed = keyed.mutate(_blocked=ibis.literal(False))

    nfg = policy.grouping.not_for_grouping
    refused_dx = _any_prefix(keyed.main_diagnosis, nfg.main_diagnosis_prefixes)
    refused_proc = _any_list_prefix(keyed.procedures, nfg.procedure_prefixes)

    special_code = ibis.null("string")
    for sg in reversed(policy.directory.special_groups):
        special_code = ibis.ifelse(
            special_condition(keyed, sg), ibis.literal(sg.code), special_code
        )
    keyed = keyed.mutate(
        _special=special_code,
        _aux=aux_coefficient_expr(keyed, policy),
        _refused_dx=refused_dx,
        _refused_proc=refused_proc,
    )

    cand = core_candidates(keyed, directory, policy)
    w = ibis.window(group_by=cand._rid, order_by=_order_keys(cand, policy))
    best = cand.mutate(_rn=ibis.row_number().over(w)).filter(lambda t: t._rn == 0)
    best = best.select("_rid", core_code="group_code", core_type="group_type", core_score="score")
    t = keyed.left_join(best, "_rid")

    comp = directory.filter(directory.group_type == "comprehensive").select(
        ckey="diagnosis_key", ctype="procedure_key", ccode="group_code", cscore="score"
    )
    levels = policy.directory.comprehensive.levels
    for level in levels:
        j = comp.rename(
            {
                f"{level}_code": "ccode",
                f"{level}_score": "cscore",
                f"{level}_key": "ckey",
                f"{level}_type": "ctype",
            }
        )
        t = t.left_join(j, (t[level] == j[f"{level}_key"]) & (t.proc_type == j[f"{level}_type"]))
    comp_code = ibis.null("string")
    comp_score = ibis.null(SCORE)
    comp_level = ibis.null("string")
    for level in reversed(levels):
        hit = t[f"{level}_code"].notnull()
        comp_code = ibis.ifelse(hit, t[f"{level}_code"], comp_code)
        comp_score = ibis.ifelse(hit, t[f"{level}_score"].cast(SCORE), comp_score)
        comp_level = ibis.ifelse(hit, ibis.literal(level), comp_level)
    t = t.mutate(_ccode=comp_code, _cscore=comp_score, _clevel=comp_level)

    fb = policy.grouping.fallback
    level_label = {"category": "类目", "block": "节", "chapter": "章"}
    steps: list[tuple[ir.BooleanValue, dict[str, ir.Value]]] = [
        (
            t._blocked,
            _out(
                "unmatched",
                None,
                None,
                "qc_excluded",
                ibis.literal("结算清单质控存在错误，不予入组"),
            ),
        ),
        (
            refused_dx,
            _out(
                "unmatched",
                None,
                None,
                "not_for_grouping",
                "主要诊断 " + t.main_diagnosis + " 属不入组规则，不予入组",
            ),
        ),
        (
            refused_proc,
            _out(
                "unmatched",
                None,
                None,
                "not_for_grouping",
                ibis.literal("手术操作属不入组规则，不予入组"),
            ),
        ),
    ]
    by_kind = {
        "special": [
            (
                t._special.notnull(),
                _out("special", t._special, None, "special", "按特殊病种 " + t._special + " 入组"),
            )
        ],
        "core": [
            (
                t.core_code.notnull(),
                _out(
                    t.core_type,
                    t.core_code,
                    t.core_score,
                    "core",
                    "主要诊断亚目 "
                    + t.dx_key
                    + "，手术操作 "
                    + ibis.ifelse(t.proc_key == "", "无", t.proc_key)
                    + "，匹配"
                    + ibis.ifelse(t.core_type == "basic", "基层病种 ", "核心病种 ")
                    + t.core_code,
                ),
            )
        ],
        "comprehensive": [
            (
                t._ccode.notnull(),
                _out(
                    "comprehensive",
                    t._ccode,
                    t._cscore,
                    "comprehensive",
                    "未匹配核心病种，按"
                    + t._clevel.substitute(level_label)
                    + "与操作类别"
                    + t.proc_type.substitute(TYPE_LABEL)
                    + "归入综合病种 "
                    + t._ccode,
                ),
            )
        ],
        "basic": [],
        "fallback": [],
    }
    for kind in policy.grouping.kind_precedence:
        steps.extend(by_kind.get(kind, []))
    if fb.mode == "blank_group":
        last = _out(
            "fallback",
            ibis.literal(fb.group_code),
            None,
            "fallback",
            ibis.literal(f"未匹配任何病种，归入{fb.name}"),
        )
    else:
        last = _out(
            "unmatched",
            None,
            None,
            "unmatched",
            ibis.literal("未匹配任何病种（诊断或手术操作不在病种目录中）"),
        )

    out = {}
    for name in ("group_type", "group_code", "base_score", "match_step", "reason"):
        out[name] = ibis.cases(*[(cond, vals[name]) for cond, vals in steps], else_=last[name])
    t = t.mutate(**out)
    spec = directory.filter(directory.group_type == "special").select(
        scode="group_code", sscore="score"
    )
    t = t.left_join(spec, t.group_code == spec.scode)
    base_score = ibis.ifelse(
        t.group_type == "special", t.sscore.cast(SCORE), t.base_score.cast(SCORE)
    )
    aux = ibis.ifelse(t.group_type == "core", t._aux, ibis.literal(Decimal(1), type=COEFFICIENT))
    result = t.select(
        _rid=t._rid,
        case_id=t.case_id,
        group_code=t.group_code,
        group_type=t.group_type,
        base_score=base_score,
        aux_coefficient=ibis.ifelse(t.group_code.notnull(), aux, ibis.null(COEFFICIENT)),
        match_step=t.match_step,
        reason=t.reason,
    )
    return result.order_by(["case_id", "_rid"]).drop("_rid")


def _out(group_type, code, score, step, reason) -> dict[str, ir.Value]:
    as_value = lambda v, typ: v if isinstance(v, ir.Value) else ibis.literal(v, type=typ)  # noqa: E731
    return {
        "group_type": as_value(group_type, "string"),
        "group_code": as_value(code, "string"),
        "base_score": as_value(score, SCORE),
        "match_step": as_value(step, "string"),
        "reason": as_value(reason, "string"),
    }


__all__ = ["GROUPED", "aux_coefficient_expr", "core_candidates", "group_cases"]
