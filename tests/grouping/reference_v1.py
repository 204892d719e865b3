"""The batch grouping expression as it was before issue 16 §3 (per-case unnest → aggregate →
join-back on a row id, arg_min over every (case, core row) pair, global ORDER BY): kept
verbatim as the oracle `test_reference.py` compares the reworked expression with. It reuses
the shared rule pieces (keys, REASONS, auxiliary coefficients); only the plan differs.
Do not optimise this file: it is the reference answer."""

# ruff: noqa

from __future__ import annotations

import ibis
import ibis.expr.types as ir
from decimal import Decimal

from opendip.codes import category_table
from opendip.directory.auxiliary import EXTRA_COLUMNS as AUX_COLUMNS
from opendip.directory.auxiliary import AuxiliaryDirectory, auxiliary_for_policy
from opendip.directory.keys import (
    counted_types,
    dx_key_expr,
    procedures_expr,
    special_condition,
    surgical_types,
    type_of,
    type_rank,
)
from opendip.codes import diagnosis_category_expr
from opendip.directory.matching import row_codes_expr, core_rows
from opendip.grouping.batch import (
    CASE_COLUMNS,
    COEFFICIENT,
    LEVEL_LABEL,
    REASONS,
    SCORE,
    _any_prefix,
    _text,
    aux_coefficient_expr,
)
from opendip.policy import Policy


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


def core_candidates(
    keyed: ir.Table, directory: ir.Table, policy: Policy, row_key: str = "_rid"
) -> ir.Table:
    """Every (case, core/basic row) pair that matches, with the columns tie-breaks use.

    `keyed`: row_key, dx_key, procedures, n_procedures, surgical, total_cost, main_procedure
    (see `opendip.directory.keys.with_keys`).
    """
    rows = core_rows(directory)
    cases = keyed.select(
        row_key, "dx_key", "procedures", "surgical", "total_cost", "main_procedure", "n_procedures"
    )
    c = cases.join(rows, cases.dx_key == rows.rkey)
    is_prefix = c.procedure_match == "prefix"

    def listed(code: ir.StringValue) -> ir.BooleanValue:
        by_prefix = c.rprocs.filter(lambda r: code.startswith(r)).length() > 0
        return ibis.ifelse(is_prefix, by_prefix, c.rprocs.contains(code))

    used_by_prefix = c.rprocs.filter(
        lambda r: c.procedures.filter(lambda p: p.startswith(r)).length() > 0
    ).length()
    c = c.mutate(
        matched=c.procedures.filter(lambda p: listed(p)).length(),
        # Listed codes the case has (all present: the 'all' condition).
        used=ibis.ifelse(is_prefix, used_by_prefix, c.rprocs.intersect(c.procedures).length()),
        has_main=c.main_procedure.notnull() & listed(c.main_procedure.fill_null("")),
    )
    surgery_to_conservative = not policy.grouping.unlisted_surgery_to_comprehensive
    none_ok = c.n_procedures == 0
    if surgery_to_conservative:
        none_ok |= c.surgical.length() > 0
    ok = ibis.cases(
        (c.procedure_match == "none", none_ok),
        (c.procedure_match == "all", (c.rprocs.length() > 0) & (c.used == c.rprocs.length())),
        (c.procedure_match.isin(["any", "prefix"]), c.matched > 0),
        else_=ibis.literal(False),
    )
    c = c.filter(ok)
    conservative = c.procedure_match == "none"
    return c.mutate(
        matched=ibis.ifelse(conservative, 0, c.matched),
        exact=ibis.ifelse(
            conservative,
            c.n_procedures == 0,
            (c.matched == c.n_procedures) & (c.used == c.rprocs.length()),
        ),
        has_main=ibis.ifelse(conservative, False, c.has_main),
        conservative=conservative,
    ).drop("used")


def tie_key_expr(c: ir.Table, policy: Policy) -> ir.StructValue:
    """`tie_key` in Ibis: a struct ordered like the Python tuple (smaller wins; descending
    rules negated), so the winner is one `arg_min` per case — no window, no sort."""
    fields: dict[str, ir.Value] = {"k0": c.conservative.cast("int8")}
    for i, rule in enumerate(policy.grouping.tie_break, start=1):
        if rule == "most_procedures_matched":
            fields[f"k{i}"] = -c.matched.cast("int64")
        elif rule == "closest_mean_cost":
            fields[f"k{i}"] = (c.mean_cost_fen - c.total_cost).abs().cast("int64")
        elif rule == "highest_score":
            fields[f"k{i}"] = -c.score
        elif rule == "main_procedure_first":
            fields[f"k{i}"] = (~c.has_main).cast("int8")
        elif rule == "exact_match_first":
            fields[f"k{i}"] = (~c.exact).cast("int8")
    fields["code"] = c.group_code  # deterministic final order
    return ibis.struct(fields)


def best_core(
    keyed: ir.Table, directory: ir.Table, policy: Policy, row_key: str = "_rid"
) -> ir.Table:
    """row_key, core_code, core_type, core_score: the winning core row of each case that
    matches one (cases matching none are absent)."""
    cand = core_candidates(keyed, directory, policy, row_key)
    cand = cand.mutate(_key=tie_key_expr(cand, policy))
    best = cand.group_by(row_key).aggregate(core_code=cand.group_code.argmin(cand._key))
    rows = directory.select(
        _code=directory.group_code, core_type=directory.group_type, core_score=directory.score
    )
    best = best.join(rows, best.core_code == rows._code)
    return best.select(row_key, "core_code", "core_type", "core_score")


def group_cases(
    cases: ir.Table,
    directory: ir.Table,
    procedure_types: ir.Table,
    policy: Policy,
    case_status: ir.Table | None = None,
    diagnosis_codes: ir.Table | None = None,
    auxiliary: AuxiliaryDirectory | None = None,
) -> ir.Table:
    """One row per case in the GROUPED contract.

    `procedure_types`: code, procedure_type (the region's procedure table);
    `case_status`: case_id, blocking (QC; blocking cases are 'unmatched', step qc_excluded);
    `diagnosis_codes`: code, valid_as_main (the region's diagnosis table). When given, a main
    diagnosis missing from it, or not valid as main, is refused with a reason; the single-case
    index always checks, so pass it wherever answers must agree. `auxiliary`: an auxiliary
    directory file (`opendip.directory.auxiliary`) that replaces the policy's coefficients
    (default: the file the policy names in `directory.auxiliary.file`, if any).
    """
    if auxiliary is None:
        auxiliary = auxiliary_for_policy(policy)  # directory.auxiliary.file, if named
    cases = cases.select(*CASE_COLUMNS, *(AUX_COLUMNS if auxiliary is not None else ()))
    # A surrogate row key: duplicated case ids (a QC error) must not mix their rows. Its
    # values are arbitrary (scan order); a row's result never depends on them.
    cases = cases.mutate(_rid=ibis.row_number())
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
    if diagnosis_codes is not None:
        dx = diagnosis_codes.group_by(_dx_code=diagnosis_codes.code).aggregate(
            _dx_main=diagnosis_codes.valid_as_main.fill_null(True).all()
        )
        keyed = keyed.left_join(dx, keyed.main_diagnosis == dx._dx_code)
        keyed = keyed.mutate(
            _dx_unknown=keyed._dx_code.isnull(),
            _dx_invalid=keyed._dx_code.notnull() & ~keyed._dx_main.fill_null(True),
        ).drop("_dx_code", "_dx_main")
    else:
        keyed = keyed.mutate(_dx_unknown=ibis.literal(False), _dx_invalid=ibis.literal(False))
    aux = policy.directory.auxiliary
    uses_others = aux.comorbidity_prefixes or aux.tumour_metastasis_prefixes or auxiliary
    if diagnosis_codes is not None and uses_others:
        # Other diagnoses missing from the code table are ignored (a QC warning), as in the
        # single-case path: they never raise the auxiliary coefficient.
        known = diagnosis_codes.select(_known=diagnosis_codes.code).distinct()
        others = keyed.select("_rid", _d=keyed.other_diagnoses.unnest())
        others = others.semi_join(known, others._d == known._known)
        per_case = others.group_by("_rid").aggregate(_others=others._d.collect())
        keyed = keyed.left_join(per_case, "_rid")
        keyed = keyed.drop(*[c for c in keyed.columns if c == "_rid_right"])
        keyed = keyed.mutate(
            other_diagnoses=keyed._others.fill_null(ibis.literal([], type="array<string>"))
        ).drop("_others")

    nfg = policy.grouping.not_for_grouping
    refused_procs = (
        keyed.procedures.filter(lambda p: _any_prefix(p, nfg.procedure_prefixes))
        if nfg.procedure_prefixes
        else ibis.literal([], type="array<string>")
    )
    special_code = ibis.null("string")
    for sg in reversed(policy.directory.special_groups):
        special_code = ibis.ifelse(
            special_condition(keyed, sg), ibis.literal(sg.code), special_code
        )
    keyed = keyed.mutate(
        _special=special_code,
        _aux=aux_coefficient_expr(keyed, policy)
        if auxiliary is None
        else auxiliary.coefficient_expr(keyed),
        _refused_dx=_any_prefix(keyed.main_diagnosis, nfg.main_diagnosis_prefixes),
        _refused_procs=refused_procs,
    )

    best = best_core(keyed, directory, policy)
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
    comp_reason = ibis.null("string")
    for level in reversed(levels):
        hit = t[f"{level}_code"].notnull()
        comp_code = ibis.ifelse(hit, t[f"{level}_code"], comp_code)
        comp_score = ibis.ifelse(hit, t[f"{level}_score"].cast(SCORE), comp_score)
        reason = REASONS["comprehensive"].format(level=LEVEL_LABEL[level])
        comp_reason = ibis.ifelse(hit, ibis.literal(reason), comp_reason)
    t = t.mutate(_ccode=comp_code, _cscore=comp_score, _creason=comp_reason)

    def refused(step: str, reason: ir.StringValue) -> dict[str, ir.Value]:
        return _out("unmatched", None, None, step, reason)

    steps: list[tuple[ir.BooleanValue, dict[str, ir.Value]]] = [
        (t._blocked, refused("qc_excluded", ibis.literal(REASONS["qc_excluded"]))),
        (
            t._dx_unknown,
            refused("unknown_code", _text(REASONS["unknown_diagnosis"], code=t.main_diagnosis)),
        ),
        (
            t._dx_invalid,
            refused("not_for_grouping", _text(REASONS["invalid_main"], code=t.main_diagnosis)),
        ),
        (
            t._refused_dx,
            refused("not_for_grouping", _text(REASONS["nfg_diagnosis"], code=t.main_diagnosis)),
        ),
        (
            t._refused_procs.length() > 0,
            refused(
                "not_for_grouping",
                _text(REASONS["nfg_procedures"], codes=ibis.literal("、").join(t._refused_procs)),
            ),
        ),
    ]
    by_kind = {
        "special": [
            (
                t._special.notnull(),
                _out("special", t._special, None, "special", REASONS["special"]),
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
                    ibis.ifelse(
                        t.core_type == "basic",
                        ibis.literal(REASONS["basic"]),
                        ibis.literal(REASONS["core"]),
                    ),
                ),
            )
        ],
        "comprehensive": [
            (
                t._ccode.notnull(),
                _out("comprehensive", t._ccode, t._cscore, "comprehensive", t._creason),
            )
        ],
        "basic": [],
        "fallback": [],
    }
    for kind in policy.grouping.kind_precedence:
        steps.extend(by_kind.get(kind, []))
    fb = policy.grouping.fallback
    if fb.mode == "blank_group":
        last = _out(
            "fallback",
            ibis.literal(fb.group_code),
            None,
            "fallback",
            ibis.literal(REASONS["fallback"].format(name=fb.name)),
        )
    else:
        last = _out("unmatched", None, None, "unmatched", ibis.literal(REASONS["unmatched"]))

    # Decide the step once, then read each output off it (keeps the SQL small).
    t = t.mutate(_step=ibis.cases(*[(cond, i) for i, (cond, _) in enumerate(steps)], else_=-1))
    out = {}
    for name in ("group_type", "group_code", "base_score", "match_step", "reason"):
        out[name] = ibis.cases(
            *[(t._step == i, vals[name]) for i, (_, vals) in enumerate(steps)], else_=last[name]
        )
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
    # Sorted by case id; rows of a duplicated id by their content (deterministic).
    return result.drop("_rid").order_by(["case_id", "group_code", "reason", "base_score"])


def _out(group_type, code, score, step, reason) -> dict[str, ir.Value]:
    as_value = lambda v, typ: v if isinstance(v, ir.Value) else ibis.literal(v, type=typ)  # noqa: E731
    return {
        "group_type": as_value(group_type, "string"),
        "group_code": as_value(code, "string"),
        "base_score": as_value(score, SCORE),
        "match_step": as_value(step, "string"),
        "reason": as_value(reason, "string"),
    }
