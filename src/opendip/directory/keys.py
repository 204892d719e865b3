"""The grouping key of a case, shared by directory building and grouping (batch).

dx_key = main diagnosis at the policy's level (亚目 subcategory or 类目 category);
procedures = the unordered set of all the case's procedure codes at full length, minus the
policy's ignored prefixes, sorted; proc_key = those codes joined by '+' ('' when none);
proc_type = the most intensive procedure type of those codes (conservative when none;
interventional counts as `grouping.interventional_as`, surgery by default). Codes missing from
the procedure table and codes of a type the policy does not count are left out of all three.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from opendip.codes import (
    diagnosis_category_expr,
    diagnosis_subcategory_expr,
)
from opendip.policy import Policy
from opendip.policy.sections.directory import SpecialGroup

#: Grouping type of each code-table procedure type (interventional: see `type_of`).
TYPE_OF = {
    "diagnostic": "diagnostic",
    "therapeutic": "therapeutic",
    "interventional": "surgery",
    "surgery": "surgery",
}
TYPE_LABEL = {
    "conservative": "保守治疗",
    "diagnostic": "诊断性操作",
    "therapeutic": "治疗性操作",
    "surgery": "相关手术",
}


def dx_key_expr(code: ir.StringValue, policy: Policy) -> ir.StringValue:
    if policy.directory.diagnosis_level == "category":
        return diagnosis_category_expr(code)
    return diagnosis_subcategory_expr(code)


def procedures_expr(t: ir.Table, policy: Policy) -> ir.ArrayValue:
    others = t.other_procedures.fill_null(ibis.literal([], type="array<string>"))
    ignored = policy.grouping.ignore_procedure_prefixes

    def kept(p: ir.StringValue) -> ir.BooleanValue:
        keep = p.notnull()
        for prefix in ignored:
            keep &= ~p.startswith(prefix)
        return keep

    return ibis.array([t.main_procedure]).concat(others).filter(kept).unique().sort()


def type_rank(policy: Policy) -> dict[str, int]:
    return {name: i for i, name in enumerate(policy.grouping.procedure_type_order)}


def type_of(policy: Policy) -> dict[str, str]:
    """Code-table procedure type → grouping procedure type, under the policy."""
    return TYPE_OF | {"interventional": policy.grouping.interventional_as}


def surgical_types(policy: Policy) -> tuple[str, ...]:
    """Code-table procedure types that count as surgery (an unlisted one leaves core rows)."""
    return tuple(k for k, v in type_of(policy).items() if v == "surgery")


def counted_types(policy: Policy) -> tuple[str, ...]:
    """Code-table procedure types whose codes count for grouping (key and procedure type)."""
    counted = set(policy.grouping.counted_procedure_types)
    return tuple(k for k, v in type_of(policy).items() if v in counted)


def with_keys(
    cases: ir.Table, policy: Policy, procedure_types: ir.Table, row_key: str = "case_id"
) -> ir.Table:
    """Add dx_key, category, procedures, proc_key, n_procedures, proc_type, surgical and
    unknown_procedures to cases.

    `procedures` holds the case's codes that count for grouping: not ignored, found in the
    procedure table and of a counted type (`grouping.counted_procedure_types`). A code
    missing from the table is left out (a QC warning, listed in `unknown_procedures`), never
    a reason to refuse the case. `surgical` = the counted codes of a surgical type.
    `procedure_types` has columns code, procedure_type (the region's procedure table);
    `row_key` identifies a row (a surrogate when case ids may repeat).
    """
    t = cases.mutate(
        dx_key=dx_key_expr(cases.main_diagnosis, policy),
        category=diagnosis_category_expr(cases.main_diagnosis),
        _raw_procs=procedures_expr(cases, policy),
    )
    ranks = type_rank(policy)
    types = procedure_types.select(
        code=procedure_types.code,
        rank=ibis.cases(
            *[(procedure_types.procedure_type == k, ranks[v]) for k, v in type_of(policy).items()],
            else_=ranks["diagnostic"],
        ),
        is_surgery=procedure_types.procedure_type.isin(surgical_types(policy)),
        counted=procedure_types.procedure_type.isin(counted_types(policy)),
    )
    # A code listed twice in the table counts once (and counts if any of its rows counts).
    types = types.group_by("code").aggregate(
        rank=types["rank"].max(), is_surgery=types.is_surgery.any(), counted=types.counted.any()
    )
    exploded = t.select(row_key, proc=t._raw_procs.unnest())
    joined = exploded.left_join(types, exploded.proc == types.code)
    counted = joined.counted.fill_null(False)
    per_case = joined.group_by(row_key).aggregate(
        max_rank=joined["rank"].max(where=counted),
        procedures=joined.proc.collect(where=counted),
        surgical=joined.proc.collect(where=counted & joined.is_surgery.fill_null(False)),
        unknown_procedures=joined.proc.collect(where=joined.code.isnull()),
    )
    t = t.left_join(per_case, row_key)
    t = t.drop("_raw_procs", *[c for c in t.columns if c == f"{row_key}_right"])
    empty = ibis.literal([], type="array<string>")
    t = t.mutate(procedures=t.procedures.fill_null(empty).sort())
    order = policy.grouping.procedure_type_order
    rank_to_type = {i: name for i, name in enumerate(order)}
    rank = t.max_rank.fill_null(ranks["conservative"])
    return t.mutate(
        # Spark joins an empty array to NULL, DuckDB to "": make both "".
        proc_key=ibis.literal("+").join(t.procedures).fill_null(""),
        n_procedures=t.procedures.length(),
        proc_type=ibis.cases(*[(rank == i, name) for i, name in rank_to_type.items()]),
        surgical=t.surgical.fill_null(empty).sort(),
        unknown_procedures=t.unknown_procedures.fill_null(empty).sort(),
    ).drop("max_rank")


def _any_prefix(col: ir.StringValue, prefixes: list[str]) -> ir.BooleanValue:
    return ibis.or_(*[col.startswith(p) for p in prefixes]) if prefixes else ibis.literal(False)


def special_condition(t: ir.Table, sg: SpecialGroup) -> ir.BooleanValue:
    """Whether a keyed case falls in special group `sg` (same rule for build and grouping)."""
    cond = ibis.literal(True)
    if sg.diagnosis_prefixes:
        cond &= _any_prefix(t.main_diagnosis, sg.diagnosis_prefixes)
    if sg.procedure_prefixes:
        cond &= t.procedures.filter(lambda p: _any_prefix(p, sg.procedure_prefixes)).length() > 0
    if sg.departments:
        cond &= t.department.isin(sg.departments)
    if sg.max_los_days:
        cond &= t.los_days.fill_null(10**6) <= sg.max_los_days
    return cond
