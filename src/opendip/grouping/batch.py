"""Grouping cases (入组), batch: one Ibis expression for all cases.

Steps: QC exclusion → unknown or refused codes (not in the code tables, not valid as main
diagnosis, not-for-grouping rules) → then, in the policy's kind order, special groups → core
(and basic) groups with the tie-break chain → comprehensive groups by category → block →
chapter and procedure type → fallback (blank group or unmatched). Every case gets exactly one
row (grouping is total); the decision note is docs/grouping.md.
"""

from __future__ import annotations

import re
from decimal import Decimal

import ibis
import ibis.expr.types as ir
import pyarrow.compute as pc

from opendip.codes import category_table
from opendip.contract import GROUPED
from opendip.directory.auxiliary import EXTRA_COLUMNS as AUX_COLUMNS
from opendip.directory.auxiliary import AuxiliaryDirectory, auxiliary_for_policy
from opendip.directory.keys import (
    special_profile_condition,
    special_stay_condition,
    with_keys,
)
from opendip.directory.matching import core_candidates, core_choices, pick_core
from opendip.engine import fetch_arrow, hash64
from opendip.policy import Policy

COEFFICIENT = "decimal(10, 4)"
SCORE = "decimal(18, 4)"


def _any_prefix(col: ir.StringValue, prefixes: list[str]) -> ir.BooleanValue:
    return ibis.or_(*[col.startswith(p) for p in prefixes]) if prefixes else ibis.literal(False)


def _any_list_prefix(arr: ir.ArrayValue, prefixes: list[str]) -> ir.BooleanValue:
    if not prefixes:
        return ibis.literal(False)
    return arr.filter(lambda p: _any_prefix(p, prefixes)).length() > 0


def other_diagnosis_prefixes(policy: Policy, auxiliary: AuxiliaryDirectory | None) -> list[str]:
    """The prefixes through which the auxiliary coefficient reads other diagnoses (the
    auxiliary file's, else the policy's); a code under none of them never changes it."""
    if auxiliary is not None:
        return auxiliary.other_diagnosis_prefixes()
    aux = policy.directory.auxiliary
    out: list[str] = []
    if aux.comorbidity_levels:
        out += aux.comorbidity_prefixes
    if aux.tumour_metastasis_coefficient:
        out += aux.tumour_metastasis_prefixes
    return out


def aux_coefficient_expr(t: ir.Table, policy: Policy) -> ir.NumericValue:
    """Product of auxiliary coefficients (age band × comorbidity level × metastasis)."""
    return aux_round(aux_age_factor(t, policy) * aux_others_factor(t.other_diagnoses, policy))


def aux_round(coef: ir.NumericValue) -> ir.NumericValue:
    # DuckDB widens decimal products (22,16); round explicitly, half away from zero.
    return coef.round(4).cast(COEFFICIENT)


def aux_age_factor(t: ir.Table, policy: Policy) -> ir.NumericValue:
    """The age-band coefficient (1 when no band applies), unrounded."""
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
    return coef


def aux_others_factor(others: ir.ArrayValue, policy: Policy) -> ir.NumericValue:
    """Comorbidity level × metastasis coefficient of a list of (known) other diagnoses,
    unrounded (a function of the list alone: batch grouping computes it once per distinct
    list)."""
    aux = policy.directory.auxiliary
    coef = ibis.literal(Decimal(1), type=COEFFICIENT)
    if aux.comorbidity_levels and aux.comorbidity_prefixes:
        matches = others.filter(lambda d: _any_prefix(d, aux.comorbidity_prefixes)).length()
        levels = sorted(aux.comorbidity_levels, key=lambda lv: lv.min_matches, reverse=True)
        coef = coef * ibis.cases(
            *[
                (matches >= lv.min_matches, ibis.literal(lv.coefficient, type=COEFFICIENT))
                for lv in levels
            ],
            else_=ibis.literal(Decimal(1), type=COEFFICIENT),
        )
    if aux.tumour_metastasis_prefixes and aux.tumour_metastasis_coefficient:
        has = others.filter(lambda d: _any_prefix(d, aux.tumour_metastasis_prefixes)).length() > 0
        coef = coef * ibis.ifelse(
            has,
            ibis.literal(aux.tumour_metastasis_coefficient, type=COEFFICIENT),
            ibis.literal(Decimal(1), type=COEFFICIENT),
        )
    return coef


LEVEL_LABEL = {"category": "类目", "block": "节", "chapter": "章"}
REASONS = {
    "qc_excluded": "结算清单质控存在错误，不予入组",
    "core": "主要诊断与手术操作匹配核心病种",
    "basic": "主要诊断匹配基层病种",
    "special": "符合特殊病种入组条件",
    "comprehensive": "未匹配核心病种，按{level}与操作类别归入综合病种",
    "fallback": "未匹配任何病种，归入{name}",
    "unmatched": "未匹配任何病种（诊断与操作类别在病种目录中无对应病种）",
    "unknown_diagnosis": "主要诊断 {code} 不在医保版疾病诊断代码表中，不予入组",
    "invalid_main": "主要诊断 {code} 不能作为主要诊断，不予入组",
    "nfg_diagnosis": "主要诊断 {code} 属不入组规则，不予入组",
    "nfg_procedures": "手术操作 {codes} 属不入组规则，不予入组",
}
#: Column subset grouping reads (narrow early: the case table is wide).
CASE_COLUMNS = (
    "case_id",
    "hospital_id",
    "admit_date",
    "discharge_date",
    "age",
    "los_days",
    "department",
    "main_diagnosis",
    "other_diagnoses",
    "main_procedure",
    "other_procedures",
    "total_cost",
)


def _text(template: str, **parts: ir.StringValue) -> ir.StringValue:
    """A REASONS template with Ibis string values in place of its fields."""
    pieces = re.split(r"\{(\w+)\}", template)
    out: ir.StringValue = ibis.literal(pieces[0])
    for i in range(1, len(pieces), 2):
        out = out + parts[pieces[i]] + pieces[i + 1]
    return out


def profile_hash(t: ir.Table, columns: tuple[str, ...], spark: bool = False) -> ir.IntegerValue:
    """A 64-bit hash of `columns` of `t`: a join key standing for them (`join_on_hash`)."""
    return hash64(ibis.struct({c: t[c] for c in columns}), spark)


def hash_is_unique(t: ir.Table, key: str) -> bool:
    """Whether no two rows of `t` (a small materialised table) share a value of `key`."""
    keys = fetch_arrow(t.select(key))[key]
    return pc.count_distinct(keys).as_py() == len(keys)


def join_on_hash(
    left: ir.Table,
    right: ir.Table,
    key: str,
    pairs: list[tuple[str, str]],
    unique: bool,
    spark: bool = False,
) -> ir.Table:
    """Inner join of `left` to `right` (one row per distinct value of the `pairs`' left
    columns, materialised, `key` their `profile_hash`) on that hash, so no list is hashed
    twice or compared per row. Never on a collision: when two rows of `right` share a hash
    (`unique` is False: `hash_is_unique`, checked exactly on `right`), the join compares the
    values themselves instead."""
    if unique:
        left = left.mutate(**{key: profile_hash(left, tuple(a for a, _ in pairs), spark)})
        joined = left.join(right, key)
        return joined.drop(*[c for c in (key, f"{key}_right") if c in joined.columns])
    return left.join(right, [left[a].identical_to(right[b]) for a, b in pairs]).drop(key)


class Steps:
    """How `grouping` materialises its per-profile tables (a few thousand rows each, planned
    apart from the per-case query and checked for hash collisions): here, directly."""

    def __init__(self, spark: bool) -> None:
        self.spark = spark

    def categories(self) -> ir.Table:
        return ibis.memtable(category_table())

    def materialize(self, name: str, t: ir.Table) -> ir.Table:
        del name
        return t.cache()

    def unique(self, name: str, t: ir.Table, key: str) -> bool:
        del name
        return hash_is_unique(t, key)


def group_cases(
    cases: ir.Table,
    directory: ir.Table,
    procedure_types: ir.Table,
    policy: Policy,
    case_status: ir.Table | None = None,
    diagnosis_codes: ir.Table | None = None,
    auxiliary: AuxiliaryDirectory | None = None,
    carry: tuple[str, ...] = (),
) -> ir.Table:
    """One row per case in the GROUPED contract (then the `carry` columns of `cases`, e.g.
    hospital_id for the summary, so nothing is read twice).

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
    inputs = {
        "cases": cases,
        "directory": directory,
        "procedure_types": procedure_types,
        "case_status": case_status,
        "diagnosis_codes": diagnosis_codes,
    }
    inputs = {k: v for k, v in inputs.items() if v is not None}
    from opendip.grouping.compiled import compiled_grouping, single_backend

    con = single_backend(inputs.values())
    if con is None:
        return grouping(inputs, policy, auxiliary, carry, Steps(spark=False))
    return compiled_grouping(con, inputs, policy, auxiliary, carry)


def grouping(
    inputs: dict[str, ir.Table],
    policy: Policy,
    auxiliary: AuxiliaryDirectory | None,
    carry: tuple[str, ...],
    steps: Steps,
) -> ir.Table:
    """The rule steps of `group_cases` on its `inputs` (cases, directory, procedure_types
    and, when given, case_status, diagnosis_codes)."""
    cases, directory = inputs["cases"], inputs["directory"]
    procedure_types = inputs["procedure_types"]
    case_status, diagnosis_codes = inputs.get("case_status"), inputs.get("diagnosis_codes")
    cases = cases.select(*CASE_COLUMNS, *(AUX_COLUMNS if auxiliary is not None else ()))
    # Everything but QC status, special-group conditions, the auxiliary coefficient and the
    # closest_mean_cost tie-break depends on the main diagnosis and the procedure fields
    # only: decide it once per distinct profile (thousands for millions of cases) and join
    # it back on those fields (nulls match nulls). No row ids, no per-case aggregation.
    profile_columns = ("main_diagnosis", "main_procedure", "other_procedures")
    prof = cases.select(*profile_columns).distinct()
    prof = prof.mutate(_pid=ibis.row_number(), _pk=profile_hash(prof, profile_columns, steps.spark))
    keyed = with_keys(prof, policy, procedure_types)
    cats = steps.categories()
    keyed = keyed.left_join(cats, "category")
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
    nfg = policy.grouping.not_for_grouping
    refused_procs = (
        keyed.procedures.filter(lambda p: _any_prefix(p, nfg.procedure_prefixes))
        if nfg.procedure_prefixes
        else ibis.literal([], type="array<string>")
    )
    dx = keyed.main_diagnosis
    # The first refusal that applies (1 unknown, 2 not valid as main, 3 refused diagnosis,
    # 4 refused procedures) and its reason, decided per profile.
    refusal = ibis.cases(
        (keyed._dx_unknown, 1),
        (keyed._dx_invalid, 2),
        (_any_prefix(dx, nfg.main_diagnosis_prefixes), 3),
        (refused_procs.length() > 0, 4),
        else_=ibis.null("int8"),
    ).cast("int8")
    refusal_reason = ibis.cases(
        (refusal == 1, _text(REASONS["unknown_diagnosis"], code=dx)),
        (refusal == 2, _text(REASONS["invalid_main"], code=dx)),
        (refusal == 3, _text(REASONS["nfg_diagnosis"], code=dx)),
        (
            refusal == 4,
            _text(REASONS["nfg_procedures"], codes=ibis.literal("、").join(refused_procs)),
        ),
        else_=ibis.null("string"),
    )
    specials = policy.directory.special_groups
    keyed = keyed.mutate(
        _refusal=refusal,
        _refusal_reason=refusal_reason,
        **{f"_sp{i}": special_profile_condition(keyed, sg) for i, sg in enumerate(specials)},
    )
    choices = core_choices(keyed, directory, policy, key="_pid")
    keyed = keyed.left_join(choices, "_pid")
    keyed = keyed.drop(*[c for c in keyed.columns if c == "_pid_right"])

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
        keyed = keyed.left_join(
            j, (keyed[level] == j[f"{level}_key"]) & (keyed.proc_type == j[f"{level}_type"])
        )
    comp_code = ibis.null("string")
    comp_score = ibis.null(SCORE)
    comp_level = ibis.null("int8")
    for i, level in reversed(list(enumerate(levels))):
        hit = keyed[f"{level}_code"].notnull()
        comp_code = ibis.ifelse(hit, keyed[f"{level}_code"], comp_code)
        comp_score = ibis.ifelse(hit, keyed[f"{level}_score"].cast(SCORE), comp_score)
        comp_level = ibis.ifelse(hit, ibis.literal(i, type="int8"), comp_level)
    # Only scalars cross the join back to cases (lists cost more to carry): the winning core
    # row when one is left, the candidate array only when closest_mean_cost must decide.
    n_cands = keyed._cands.length()
    first = keyed._cands[0]
    keyed = keyed.select(
        *profile_columns,
        "_pk",
        "_refusal",
        "_refusal_reason",
        *[f"_sp{i}" for i in range(len(specials))],
        _core_code=first["group_code"],
        _core_type=first["group_type"],
        _core_score=first["score"],
        _cands=ibis.ifelse(n_cands > 1, keyed._cands, ibis.null(keyed._cands.type())),
        _ccode=comp_code,
        _cscore=comp_score,
        _clevel=comp_level,
    ).rename(_p_dx="main_diagnosis", _p_mp="main_procedure", _p_op="other_procedures")

    # Back to cases: one profile row per case, on the profile's 64-bit hash (a list-valued
    # key costs a fifth of the grouping time to hash and compare per case).
    keyed = steps.materialize("profiles", keyed)
    t = join_on_hash(
        cases,
        keyed,
        "_pk",
        list(zip(profile_columns, ("_p_dx", "_p_mp", "_p_op"), strict=True)),
        steps.unique("profiles", keyed, "_pk"),
        steps.spark,
    ).drop("_p_dx", "_p_mp", "_p_op")
    if case_status is not None:
        blocking = (
            case_status.filter(case_status.blocking)
            .select("case_id")
            .distinct()
            .mutate(_blocked=True)
        )
        t = t.left_join(blocking, "case_id")
        t = t.drop(*[c for c in t.columns if c == "case_id_right"])
        t = t.mutate(_blocked=t._blocked.fill_null(False))
    else:
        t = t.mutate(_blocked=ibis.literal(False))
    prefixes = other_diagnosis_prefixes(policy, auxiliary)
    empty = ibis.literal([], type="array<string>")

    def known_others(tab: ir.Table) -> tuple[ir.Table, ir.ArrayValue]:
        """Other diagnoses missing from the code table are ignored (a QC warning), as in the
        single-case path: they never raise the auxiliary coefficient. The coefficient reads
        other diagnoses only through `prefixes`, so only the known codes under them (about
        a hundred) are looked up, as one array."""
        if diagnosis_codes is None or not prefixes:
            return tab, tab.other_diagnoses
        code = diagnosis_codes.code
        known = diagnosis_codes.filter(_any_prefix(code, prefixes)).aggregate(_known=code.collect())
        tab = tab.cross_join(known)
        known_codes = tab._known.fill_null(empty)
        kept = tab.other_diagnoses.filter(
            lambda d: _any_prefix(d, prefixes) & known_codes.contains(d)
        ).fill_null(empty)
        return tab, kept

    if auxiliary is None:
        # The policy's comorbidity and metastasis factors depend on the list of other
        # diagnoses alone: computed once per distinct list and joined back.
        lists = cases.select("other_diagnoses").distinct()
        lists, kept = known_others(lists)
        lists = lists.select(
            _od=lists.other_diagnoses,
            _ok=profile_hash(lists, ("other_diagnoses",), steps.spark),
            _of=aux_others_factor(kept, policy),
        )
        lists = steps.materialize("lists", lists)
        unique = steps.unique("lists", lists, "_ok")
        t = join_on_hash(t, lists, "_ok", [("other_diagnoses", "_od")], unique, steps.spark)
        t = t.drop("_od")
        aux_coef = aux_round(aux_age_factor(t, policy) * t._of)
    else:
        t, kept = known_others(t)
        t = t.mutate(other_diagnoses=kept)
        aux_coef = auxiliary.coefficient_expr(t)
    special_code = ibis.null("string")
    for i, sg in reversed(list(enumerate(specials))):
        hit = t[f"_sp{i}"] & special_stay_condition(t, sg)
        special_code = ibis.ifelse(hit, ibis.literal(sg.code), special_code)
    if "closest_mean_cost" in policy.grouping.tie_break:
        # Picked once per case (a column), then read three times.
        several = t._cands.notnull()
        t = t.mutate(_picked=ibis.ifelse(several, pick_core(t._cands, t.total_cost, policy), None))
        several = t._cands.notnull()
        picked = t._picked
        core_code = ibis.ifelse(several, picked["group_code"], t._core_code)
        core_type = ibis.ifelse(several, picked["group_type"], t._core_type)
        core_score = ibis.ifelse(several, picked["score"], t._core_score)
    else:
        core_code, core_type, core_score = t._core_code, t._core_type, t._core_score
    comp_reasons = [REASONS["comprehensive"].format(level=LEVEL_LABEL[level]) for level in levels]
    t = t.mutate(
        _special=special_code,
        _aux=aux_coef,
        core_code=core_code,
        core_type=core_type,
        core_score=core_score,
        _creason=ibis.cases(
            *[(t._clevel == i, ibis.literal(r)) for i, r in enumerate(comp_reasons)],
            else_=ibis.null("string"),
        )
        if comp_reasons
        else ibis.null("string"),
    )

    def refused(step: str | ir.StringValue, reason: ir.StringValue) -> dict[str, ir.Value]:
        return _out("unmatched", None, None, step, reason)

    steps: list[tuple[ir.BooleanValue, dict[str, ir.Value]]] = [
        (t._blocked, refused("qc_excluded", ibis.literal(REASONS["qc_excluded"]))),
        (
            t._refusal.notnull(),
            refused(
                ibis.ifelse(t._refusal == 1, "unknown_code", "not_for_grouping"),
                t._refusal_reason,
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
    # Special groups are few: their directory scores ride along as one row of columns.
    special_score = ibis.null(SCORE)
    if specials:
        is_special = directory.group_type == "special"
        scores = directory.aggregate(
            **{
                f"_ss{i}": directory.score.max(where=is_special & (directory.group_code == sg.code))
                for i, sg in enumerate(specials)
            }
        )
        t = t.cross_join(scores)
        special_score = ibis.cases(
            *[(t.group_code == sg.code, t[f"_ss{i}"].cast(SCORE)) for i, sg in enumerate(specials)],
            else_=ibis.null(SCORE),
        )
    base_score = ibis.ifelse(t.group_type == "special", special_score, t.base_score.cast(SCORE))
    aux = ibis.ifelse(t.group_type == "core", t._aux, ibis.literal(Decimal(1), type=COEFFICIENT))
    result = t.select(
        case_id=t.case_id,
        group_code=t.group_code,
        group_type=t.group_type,
        base_score=base_score,
        aux_coefficient=ibis.ifelse(t.group_code.notnull(), aux, ibis.null(COEFFICIENT)),
        match_step=t.match_step,
        reason=t.reason,
        **{c: t[c] for c in carry},
    )
    # No global sort (it was a quarter of the grouping time): readers join on case_id; the
    # row order is the engine's (on DuckDB, the order of the cases read).
    return result


def _out(group_type, code, score, step, reason) -> dict[str, ir.Value]:
    as_value = lambda v, typ: v if isinstance(v, ir.Value) else ibis.literal(v, type=typ)  # noqa: E731
    return {
        "group_type": as_value(group_type, "string"),
        "group_code": as_value(code, "string"),
        "base_score": as_value(score, SCORE),
        "match_step": as_value(step, "string"),
        "reason": as_value(reason, "string"),
    }


__all__ = ["GROUPED", "REASONS", "aux_coefficient_expr", "core_candidates", "group_cases"]
