"""One prepared table of stays for every detector: current period plus history.

Inputs are the CASES contract (current period, and optionally earlier periods as history),
with optional HOSPITALS (for same-level peers), GROUPED and SCORED tables. The prepared
table adds: `current` (the stay belongs to the period under review), `los` (from the dates;
a same-day stay counts as the QC policy's `same_day_los`), `month_index` (year × 12 +
month − 1 of the settlement month), the diagnosis `category` / `subcategory`, the sorted
procedure set `proc_key`, the diagnosis `family` (category + procedure set: groups that
differ only by the diagnosis subcategory), the comorbidity count, the hospital `level`
(peer group), and, when given, `group_code`/`group_type` and `deviation`/`case_score`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from opendip.codes import diagnosis_category_expr, diagnosis_subcategory_expr
from opendip.contract import CASES
from opendip.policy import Policy
from opendip.supervision.errors import SupervisionInputError

#: Columns the detectors need; the first group is required.
REQUIRED = (
    "case_id",
    "hospital_id",
    "patient_id",
    "admit_date",
    "discharge_date",
    "main_diagnosis",
    "total_cost",
)
OPTIONAL = (
    "los_days",
    "settle_month",
    "discharge_method",
    "admission_route",
    "department",
    "doctor_id",
    "other_diagnoses",
    "main_procedure",
    "other_procedures",
    "personal_selfpay",
    "out_of_list_cost",
    "fee_surgery",
    "fee_treatment",
    "fee_materials",
    "fee_herbal_pieces",
    "fee_chinese_patent_medicine",
)
#: Peer group used when no hospitals table is given (every hospital is a peer).
ALL_LEVELS = "all"


@dataclass(frozen=True)
class SupervisionInputs:
    """Ibis tables for one supervision run (see the module docstring)."""

    cases: ir.Table
    history: ir.Table | None = None
    hospitals: ir.Table | None = None
    grouped: ir.Table | None = None
    scored: ir.Table | None = None

    @property
    def has_history(self) -> bool:
        return self.history is not None

    @property
    def has_levels(self) -> bool:
        return self.hospitals is not None


def _castable(src: dt.DataType, dst: dt.DataType) -> bool:
    """Whether a column of type `src` may stand for a contract column of type `dst`."""
    if dst.is_array() or src.is_array():
        return dst.is_array() and src.is_array()
    if dst.is_string():
        return True
    if dst.is_date():
        return src.is_temporal() or src.is_string()
    if dst.is_numeric():
        return src.is_numeric() or src.is_string()
    return src == dst


def _conform(t: ir.Table, table_name: str) -> ir.Table:
    """Select the needed columns, cast to the contract's types, fill missing optionals."""
    missing = [c for c in REQUIRED if c not in t.columns]
    if missing:
        labels = "、".join(f"{c}（{CASES.column(c).label}）" for c in missing)
        raise SupervisionInputError(table_name, f"缺少必填列 {labels}")
    out = {}
    for name in (*REQUIRED, *OPTIONAL):
        col = CASES.column(name)
        dtype = ibis.dtype(col.type)
        if name in t.columns:
            expr = t[name]
            if expr.type() != dtype:
                if not _castable(expr.type(), dtype):
                    raise SupervisionInputError(
                        table_name, f"列 {name}（{col.label}）类型 {expr.type()} 无法转换为 {dtype}"
                    )
                expr = expr.cast(dtype)
            out[name] = expr
        else:
            out[name] = ibis.null(dtype)
    return t.select(**out)


def _month_index(t: ir.Table) -> ir.IntegerValue:
    from_text = t.settle_month.substr(0, 4).cast("int32") * 12 + (
        t.settle_month.substr(5, 2).cast("int32") - 1
    )
    from_date = t.discharge_date.year() * 12 + t.discharge_date.month() - 1
    return ibis.ifelse(t.settle_month.re_search(r"^[0-9]{4}-[0-9]{2}$"), from_text, from_date).cast(
        "int32"
    )


def comorbidity_count_expr(t: ir.Table, policy: Policy) -> ir.IntegerValue:
    """Other diagnoses that count as comorbidities: those matching the auxiliary directory's
    comorbidity prefixes, or every other diagnosis when the policy lists none."""
    prefixes = policy.directory.auxiliary.comorbidity_prefixes
    if prefixes:
        pattern = "^(" + "|".join(re.escape(p) for p in prefixes) + ")"
        others = t.other_diagnoses.filter(lambda d: d.notnull() & d.re_search(pattern))
    else:
        others = t.other_diagnoses.filter(lambda d: d.notnull())
    return others.unique().length().fill_null(0).cast("int32")


def procedures_expr(t: ir.Table, policy: Policy) -> ir.ArrayValue:
    """The sorted set of the stay's procedure codes without the grouping policy's ignored
    prefixes (the same set as the directory key, in one list pass)."""
    ignore = policy.grouping_ignored_prefixes()
    procs = ibis.array([t.main_procedure]).concat(t.other_procedures)
    if ignore:
        pattern = "^(" + "|".join(re.escape(p) for p in ignore) + ")"
        procs = procs.filter(lambda p: p.notnull() & ~p.re_search(pattern))
    else:
        procs = procs.filter(lambda p: p.notnull())
    return procs.unique().sort()


def prepare_stays(inputs: SupervisionInputs, policy: Policy) -> ir.Table:
    """The stays table every detector reads (not executed; callers may `.cache()` it)."""
    cur = _conform(inputs.cases, "病例表")
    cur = cur.mutate(current=ibis.literal(True), month_index=_month_index(cur))
    t = cur
    if inputs.history is not None:
        hist = _conform(inputs.history, "历史病例表")
        hist = hist.mutate(current=ibis.literal(False), month_index=_month_index(hist))
        # only the `history_months` before the period under review are compared with
        start = cur.month_index.min()
        hist = hist.filter(
            (hist.month_index >= start - policy.supervision.history_months)
            & (hist.month_index < start)
        )
        t = ibis.union(cur, hist)
    span = t.discharge_date.delta(t.admit_date, unit="day")
    t = t.mutate(
        los=ibis.cases(
            (span > 0, span),
            (span == 0, ibis.literal(policy.qc.same_day_los)),
            else_=ibis.null("int64"),
        ).cast("int32"),
        category=diagnosis_category_expr(t.main_diagnosis),
        subcategory=diagnosis_subcategory_expr(t.main_diagnosis),
        procedures=procedures_expr(t, policy),
        comorbidities=comorbidity_count_expr(t, policy),
        selfpay=t.personal_selfpay.fill_null(0),
        out_of_list=t.out_of_list_cost.fill_null(0),
        procedure_fees=(
            t.fee_surgery.fill_null(0) + t.fee_treatment.fill_null(0) + t.fee_materials.fill_null(0)
        ),
        # 中医药费用 = 中药饮片 + 中成药 (the TCM fee share indicator)
        tcm_fees=t.fee_herbal_pieces.fill_null(0) + t.fee_chinese_patent_medicine.fill_null(0),
    )
    t = t.mutate(
        proc_key=ibis.literal("+").join(t.procedures).fill_null(""),
        n_procedures=t.procedures.length().fill_null(0).cast("int32"),
    )
    t = t.mutate(family=t.category + ibis.literal("|") + t.proc_key)
    # lists and raw fee columns are not needed downstream: not materialised
    t = t.drop(
        "other_diagnoses", "other_procedures", "procedures", "personal_selfpay",
        "out_of_list_cost", "fee_surgery", "fee_treatment", "fee_materials",
        "fee_herbal_pieces", "fee_chinese_patent_medicine",
    )  # fmt: skip
    if inputs.hospitals is not None:
        h = inputs.hospitals
        if "hospital_id" not in h.columns or "level" not in h.columns:
            raise SupervisionInputError("医疗机构表", "缺少列 hospital_id 或 level（医院等级）")
        levels = h.select(h_id=h.hospital_id.cast("string"), level=h.level.cast("string")).distinct(
            on="h_id", keep="first"
        )
        t = t.left_join(levels, t.hospital_id == levels.h_id).drop("h_id")
        t = t.mutate(level=t.level.fill_null("unknown"))
    else:
        t = t.mutate(level=ibis.literal(ALL_LEVELS))
    if inputs.grouped is not None:
        g = inputs.grouped
        for c in ("case_id", "group_code", "group_type"):
            if c not in g.columns:
                raise SupervisionInputError("入组结果表", f"缺少列 {c}")
        g = g.select(g_case=g.case_id, group_code=g.group_code, group_type=g.group_type).distinct(
            on="g_case", keep="first"
        )
        t = t.left_join(g, t.case_id == g.g_case).drop("g_case")
    else:
        t = t.mutate(group_code=ibis.null("string"), group_type=ibis.null("string"))
    if inputs.scored is not None:
        s = inputs.scored
        for c in ("case_id", "deviation", "case_score"):
            if c not in s.columns:
                raise SupervisionInputError("分值结果表", f"缺少列 {c}")
        s = s.select(
            s_case=s.case_id, deviation=s.deviation, case_score=s.case_score.cast("decimal(18, 4)")
        ).distinct(on="s_case", keep="first")
        t = t.left_join(s, t.case_id == s.s_case).drop("s_case")
    else:
        t = t.mutate(deviation=ibis.null("string"), case_score=ibis.null("decimal(18, 4)"))
    return t


def typical_by_key(stays: ir.Table, key: ir.Value) -> ir.Table:
    """Median cost and LOS per (key, level) and per key over all levels, with counts.

    Returns columns t_key, level, level_n, level_cost, level_los, all_n, all_cost, all_los.
    """
    base = stays.filter(stays.los.notnull()).mutate(t_key=key)
    by_level = base.group_by(["t_key", "level"]).aggregate(
        level_n=base.count(),
        level_cost=base.total_cost.median(),
        level_los=base.los.median(),
    )
    overall = base.group_by("t_key").aggregate(
        all_n=base.count(), all_cost=base.total_cost.median(), all_los=base.los.median()
    )
    overall = overall.rename(o_key="t_key")
    return by_level.left_join(overall, by_level.t_key == overall.o_key).drop("o_key")


def pick_typical(t: ir.Table, policy: Policy) -> ir.Table:
    """Add typical_cost / typical_los / typical_scope: same level when it has enough cases,
    else the whole region, else null."""
    m = policy.supervision.min_peer_cases
    same = t.level_n >= m
    region = t.all_n >= m
    return t.mutate(
        typical_cost=ibis.cases(
            (same, t.level_cost), (region, t.all_cost), else_=ibis.null("float64")
        ),
        typical_los=ibis.cases(
            (same, t.level_los), (region, t.all_los), else_=ibis.null("float64")
        ),
        typical_scope=ibis.cases((same, "同级医院"), (region, "全区域"), else_=ibis.null("string")),
    )
