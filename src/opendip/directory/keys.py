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
    ignored = policy.grouping_ignored_prefixes()

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


def procedure_facts(cases: ir.Table, policy: Policy, procedure_types: ir.Table) -> ir.Table:
    """procedures, proc_key, n_procedures, proc_type, surgical and unknown_procedures of each
    distinct (main_procedure, other_procedures) pair of `cases` (see `with_keys`).

    Computed once per distinct pair, not per case: a region has a few thousand pairs for
    millions of cases, so the per-code lookup (unnest → join the procedure table →
    re-aggregate) runs on the pairs only and cases join the result back on the pair.
    """
    pairs = cases.select("main_procedure", "other_procedures").distinct()
    pairs = pairs.mutate(_raw_procs=procedures_expr(pairs, policy))
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
    exploded = pairs.select(
        _mp=pairs.main_procedure, _op=pairs.other_procedures, proc=pairs._raw_procs.unnest()
    )
    joined = exploded.left_join(types, exploded.proc == types.code)
    counted = joined.counted.fill_null(False)
    per_pair = joined.group_by("_mp", "_op").aggregate(
        max_rank=joined["rank"].max(where=counted),
        procedures=joined.proc.collect(where=counted),
        surgical=joined.proc.collect(where=counted & joined.is_surgery.fill_null(False)),
        unknown_procedures=joined.proc.collect(where=joined.code.isnull()),
    )
    t = pairs.left_join(
        per_pair,
        [
            pairs.main_procedure.identical_to(per_pair._mp),
            pairs.other_procedures.identical_to(per_pair._op),
        ],
    )
    empty = ibis.literal([], type="array<string>")
    procedures = t.procedures.fill_null(empty).sort()
    order = policy.grouping.procedure_type_order
    rank = t.max_rank.fill_null(ranks["conservative"])
    return t.select(
        "main_procedure",
        "other_procedures",
        procedures=procedures,
        # Spark joins an empty array to NULL, DuckDB to "": make both "".
        proc_key=ibis.literal("+").join(procedures).fill_null(""),
        n_procedures=procedures.length(),
        proc_type=ibis.cases(*[(rank == i, name) for i, name in enumerate(order)]),
        surgical=t.surgical.fill_null(empty).sort(),
        unknown_procedures=t.unknown_procedures.fill_null(empty).sort(),
    )


def join_pairs(cases: ir.Table, facts: ir.Table) -> ir.Table:
    """`cases` with the columns of `facts` (one row per distinct (main_procedure,
    other_procedures), see `procedure_facts`) joined on that pair; nulls match nulls."""
    f = facts.rename(_mp="main_procedure", _op="other_procedures")
    t = cases.join(
        f,
        [
            cases.main_procedure.identical_to(f._mp),
            cases.other_procedures.identical_to(f._op),
        ],
    )
    return t.drop("_mp", "_op")


def with_keys(
    cases: ir.Table, policy: Policy, procedure_types: ir.Table, row_key: str = "case_id"
) -> ir.Table:
    """Add dx_key, category, procedures, proc_key, n_procedures, proc_type, surgical and
    unknown_procedures to cases.

    `procedures` holds the case's codes that count for grouping: not ignored, found in the
    procedure table and of a counted type (`grouping.counted_procedure_types`). A code
    missing from the table is left out (a QC warning, listed in `unknown_procedures`), never
    a reason to refuse the case. `surgical` = the counted codes of a surgical type.
    `procedure_types` has columns code, procedure_type (the region's procedure table).
    `row_key` is kept for callers that name their row key; rows are never joined on it.
    """
    del row_key  # the procedure facts join back on the procedure fields themselves
    t = cases.mutate(
        dx_key=dx_key_expr(cases.main_diagnosis, policy),
        category=diagnosis_category_expr(cases.main_diagnosis),
    )
    return join_pairs(t, procedure_facts(cases, policy, procedure_types))


def _any_prefix(col: ir.StringValue, prefixes: list[str]) -> ir.BooleanValue:
    return ibis.or_(*[col.startswith(p) for p in prefixes]) if prefixes else ibis.literal(False)


def special_profile_condition(t: ir.Table, sg: SpecialGroup) -> ir.BooleanValue:
    """The diagnosis and procedure part of `special_condition` (a keyed case's profile)."""
    cond = ibis.literal(True)
    if sg.diagnosis_prefixes:
        cond &= _any_prefix(t.main_diagnosis, sg.diagnosis_prefixes)
    if sg.procedure_prefixes:
        cond &= t.procedures.filter(lambda p: _any_prefix(p, sg.procedure_prefixes)).length() > 0
    return cond


def special_stay_condition(t: ir.Table, sg: SpecialGroup) -> ir.BooleanValue:
    """The department and length-of-stay part of `special_condition`."""
    cond = ibis.literal(True)
    if sg.departments:
        cond &= t.department.isin(sg.departments)
    if sg.max_los_days:
        cond &= t.los_days.fill_null(10**6) <= sg.max_los_days
    return cond


def special_condition(t: ir.Table, sg: SpecialGroup) -> ir.BooleanValue:
    """Whether a keyed case falls in special group `sg` (same rule for build and grouping)."""
    return special_profile_condition(t, sg) & special_stay_condition(t, sg)
