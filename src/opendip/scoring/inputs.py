"""Joining the inputs of scoring (cases, grouped, directory, hospitals, reviews) and checking
that they fit together, with errors that name the table, field and example rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from opendip.contract.tables import HOSPITAL_LEVELS
from opendip.scoring.errors import InputDataError, ReviewFileError

#: Columns scoring reads from each input (CASES, GROUPED, DIRECTORY, HOSPITALS contracts).
CASE_COLUMNS = (
    "case_id",
    "hospital_id",
    "insurance_type",
    "total_cost",
    "fund_paid",
    "personal_copay",
    "personal_selfpay",
    "los_days",
    "discharge_date",
    "settle_month",
    "department",
)
GROUPED_COLUMNS = ("case_id", "group_code", "group_type", "base_score", "aux_coefficient")
LEVEL_MEANS = tuple(f"mean_cost_{lv}_fen" for lv in HOSPITAL_LEVELS)

#: Accepted spellings of review decisions.
ACCEPT = ("accept", "accepted", "通过", "同意", "是")
REJECT = ("reject", "rejected", "不通过", "不同意", "驳回", "否")
REVIEW_SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("decision", pa.string()),
        ("reviewed_score", pa.decimal128(18, 4)),
    ]
)


def _require(table: ir.Table, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputDataError(name, "、".join(missing), "缺少必需的列")


def _optional(table: ir.Table, column: str, dtype: str) -> ir.Value:
    if column in table.columns:
        return table[column].cast(dtype)
    return ibis.null(dtype)


def _examples(expr: ir.Table, column: str = "case_id", n: int = 5) -> list[str]:
    rows = expr.select(column).distinct().order_by(column).limit(n).to_pyarrow()
    return [str(v) for v in rows.column(0).to_pylist()]


def _fail_if(count: int, table: str, field: str, message: str, rows: ir.Table, col: str) -> None:
    if count:
        raise InputDataError(table, field, f"{count:,} 行{message}", _examples(rows, col))


def to_decimal(column: pa.ChunkedArray | pa.Array, precision: int, scale: int) -> pa.Array:
    """A numeric or text column as decimal128(precision, scale), exactly (floats go through
    their shortest text, so 180.5 stays 180.5); raises ArrowInvalid on overflow or data loss."""
    if pa.types.is_floating(column.type):
        column = column.cast(pa.string())
    return column.cast(pa.decimal128(38, scale)).cast(pa.decimal128(precision, scale))


def normalise_reviews(reviews: pa.Table, source: str = "特例单议表") -> pa.Table:
    """Check and normalise a special-review table (case_id, decision, reviewed_score).

    Decisions may be written accept/reject or 通过/不通过; accepted rows need a score ≥ 0.
    Errors name the file, the row number (1-based, after the header) and the field.
    """
    for col in ("case_id", "decision"):
        if col not in reviews.column_names:
            raise ReviewFileError(f"{source}：缺少列 {col}")
    n = reviews.num_rows
    case_id = reviews.column("case_id").cast(pa.string())
    raw = pc.utf8_lower(pc.utf8_trim_whitespace(reviews.column("decision").cast(pa.string())))
    accept = pc.is_in(raw, pa.array(ACCEPT))
    reject = pc.is_in(raw, pa.array(REJECT))
    bad = pc.invert(pc.or_(accept, reject)).fill_null(True)
    if pc.any(bad).as_py():
        i = pc.index(bad, True).as_py()
        raise ReviewFileError(
            f"{source} 第 {i + 1} 行字段 decision：{raw[i].as_py()!r} 不是 accept/reject（通过/不通过）"
        )
    nulls = pc.is_null(case_id)
    if pc.any(nulls).as_py():
        i = pc.index(nulls, True).as_py()
        raise ReviewFileError(f"{source} 第 {i + 1} 行字段 case_id：为空")
    decision = pc.if_else(accept, "accept", "reject")
    if "reviewed_score" in reviews.column_names:
        try:
            score = to_decimal(reviews.column("reviewed_score"), 18, 4)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ReviewFileError(
                f"{source} 字段 reviewed_score：不是最多 4 位小数的数字（{exc}）"
            ) from exc
    else:
        score = pa.nulls(n, pa.decimal128(18, 4))
    need = pc.and_(accept, pc.is_null(score)).fill_null(True)
    if pc.any(need).as_py():
        i = pc.index(need, True).as_py()
        raise ReviewFileError(
            f"{source} 第 {i + 1} 行字段 reviewed_score：评审通过但未给出评定分值"
        )
    negative = pc.less(score, pa.scalar(Decimal(0), pa.decimal128(18, 4))).fill_null(False)
    if pc.any(negative).as_py():
        i = pc.index(negative, True).as_py()
        raise ReviewFileError(f"{source} 第 {i + 1} 行字段 reviewed_score：评定分值为负数")
    counts = pc.value_counts(case_id)
    dup = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    if len(dup):
        raise ReviewFileError(
            f"{source} 字段 case_id：病例重复出现（{'、'.join(dup.to_pylist()[:5])}）"
        )
    return pa.Table.from_arrays([case_id, decision.cast(pa.string()), score], schema=REVIEW_SCHEMA)


def joined(
    cases: ir.Table,
    grouped: ir.Table,
    directory: ir.Table,
    hospitals: ir.Table,
    reviews: ir.Table | None,
) -> ir.Table:
    """One row per case with everything scoring needs, plus `_has_*` flags for checks."""
    _require(cases, "cases", CASE_COLUMNS)
    _require(grouped, "grouped", GROUPED_COLUMNS)
    _require(directory, "directory", ("group_code", "mean_cost_fen"))
    _require(hospitals, "hospitals", ("hospital_id", "level"))
    c = cases.select(
        case_id=cases.case_id.cast("string"),
        hospital_id=cases.hospital_id.cast("string"),
        pool=cases.insurance_type.cast("string"),
        cost=cases.total_cost.cast("int64"),
        ffs=cases.fund_paid.cast("int64"),
        copay=cases.personal_copay.cast("int64"),
        selfpay=cases.personal_selfpay.cast("int64"),
        los=cases.los_days.cast("int64"),
        discharge_date=cases.discharge_date.cast("date"),
        settle_month=cases.settle_month.cast("string"),
        department=cases.department.cast("string"),
        # read by the special payment rules (opendip.scoring.special)
        main_diagnosis=_optional(cases, "main_diagnosis", "string"),
        main_procedure=_optional(cases, "main_procedure", "string"),
        other_procedures=_optional(cases, "other_procedures", "array<string>"),
    )
    g = grouped.select(
        g_case_id=grouped.case_id.cast("string"),
        group_code=grouped.group_code.cast("string"),
        group_type=grouped.group_type.cast("string"),
        base_score=grouped.base_score.cast("decimal(18, 4)"),
        aux_coefficient=grouped.aux_coefficient.cast("decimal(10, 4)"),
        match_step=_optional(grouped, "match_step", "string"),
        group_reason=_optional(grouped, "reason", "string"),
        _has_group=ibis.literal(True),
    )
    d = directory.select(
        d_code=directory.group_code.cast("string"),
        d_type=_optional(directory, "group_type", "string"),
        d_mean=directory.mean_cost_fen.cast("int64"),
        **{
            f"d_{lv}": _optional(directory, f"mean_cost_{lv}_fen", "int64")
            for lv in HOSPITAL_LEVELS
        },
        score_per_day=_optional(directory, "score_per_day", "decimal(18, 4)"),
        _has_directory=ibis.literal(True),
    )
    h = hospitals.select(
        h_id=hospitals.hospital_id.cast("string"),
        level=hospitals.level.cast("string"),
        community_id=_optional(hospitals, "community_id", "string"),
        h_bonus=_optional(hospitals, "bonus_coefficient", "decimal(8, 4)"),
        _has_hospital=ibis.literal(True),
    )
    t = c.left_join(g, c.case_id == g.g_case_id).drop("g_case_id")
    t = t.left_join(h, t.hospital_id == h.h_id).drop("h_id")
    t = t.left_join(d, t.group_code == d.d_code).drop("d_code")
    if reviews is not None:
        r = reviews.select(
            r_case_id="case_id", decision="decision", reviewed_score="reviewed_score"
        )
        t = t.left_join(r, t.case_id == r.r_case_id).drop("r_case_id")
    else:
        t = t.mutate(decision=ibis.null("string"), reviewed_score=ibis.null("decimal(18, 4)"))
    money_ok = (
        t.cost.notnull() & (t.cost >= 0) & t.ffs.notnull() & t.copay.notnull() & t.selfpay.notnull()
    )
    grouped_ok = t.group_type.notnull() & (t.group_type != "unmatched")
    # A DIP case is grouped and has complete money; the others are reported in not_dip.
    return t.mutate(_money_ok=money_ok, _dip=grouped_ok & money_ok)


def check_joined(
    t: ir.Table,
    cases: ir.Table,
    grouped: ir.Table,
    hospitals: ir.Table,
    reviews: ir.Table | None,
    pools: list[str],
    periods: list[tuple[dt.date, dt.date]],
) -> None:
    """Refuse inputs that do not fit together (one aggregate query, examples on failure)."""
    in_period = ibis.or_(*[t.discharge_date.between(s, e) for s, e in periods])
    dip = t._dip
    # Only DIP cases must carry complete money: unmatched ones (QC failures included) are
    # reported, not priced.
    flags = {
        "no_group": t._has_group.isnull(),
        "no_hospital": t._has_hospital.isnull(),
        "no_level": t._has_hospital.notnull() & t.level.isnull(),
        "bad_pool": dip & (~t.pool.isin(pools) | t.pool.isnull()),
        "out_of_period": dip & (~in_period | t.discharge_date.isnull()),
        "not_in_directory": dip & (t.group_type != "fallback") & t._has_directory.isnull(),
        "no_base": dip
        & t.group_type.isin(["core", "comprehensive", "basic"])
        & t.base_score.isnull(),
        "review_not_dip": t.decision.notnull() & ~dip,
    }
    agg = t.aggregate(**{k: v.cast("int64").sum() for k, v in flags.items()}, n=t.count())
    counts = agg.to_pyarrow().to_pylist()[0]
    sel = lambda k: t.filter(flags[k])  # noqa: E731
    _fail_if(
        counts["no_group"] or 0,
        "grouped",
        "case_id",
        "病例没有入组结果",
        sel("no_group"),
        "case_id",
    )
    _fail_if(
        counts["no_hospital"] or 0,
        "hospitals",
        "hospital_id",
        "病例的医疗机构不在医疗机构表中",
        sel("no_hospital"),
        "hospital_id",
    )
    _fail_if(
        counts["no_level"] or 0,
        "hospitals",
        "level",
        "病例所属医疗机构未填写医院等级，无法确定医疗机构系数",
        sel("no_level"),
        "hospital_id",
    )
    _fail_if(
        counts["bad_pool"] or 0,
        "cases",
        "insurance_type",
        f"病例险种不是政策统筹区 {pools} 之一",
        sel("bad_pool"),
        "case_id",
    )
    span = "、".join(f"{s}～{e}" for s, e in periods)
    _fail_if(
        counts["out_of_period"] or 0,
        "cases",
        "discharge_date",
        f"病例出院日期不在政策生效期（{span}）内，无适用的政策版本",
        sel("out_of_period"),
        "case_id",
    )
    _fail_if(
        counts["not_in_directory"] or 0,
        "directory",
        "group_code",
        "病例所入病种不在病种目录中",
        sel("not_in_directory"),
        "group_code",
    )
    _fail_if(
        counts["no_base"] or 0,
        "grouped",
        "base_score",
        "已入组病例缺少病种分值",
        sel("no_base"),
        "case_id",
    )
    # Repeated case ids (in the cases or the grouped table) never get here: scoring returns
    # them first (`opendip.scoring.batch.duplicate_ids`, status 清单号重复退回).
    dup_h = (
        hospitals.group_by("hospital_id").aggregate(n=hospitals.count()).filter(lambda x: x.n > 1)
    )
    n = dup_h.count().to_pyarrow().as_py()
    _fail_if(n, "hospitals", "hospital_id", "重复（同一编码出现多次）", dup_h, "hospital_id")
    if reviews is not None:
        unknown = reviews.anti_join(cases, reviews.case_id == cases.case_id.cast("string"))
        n = unknown.count().to_pyarrow().as_py()
        if n:
            raise ReviewFileError(
                f"特例单议表字段 case_id：{n:,} 个病例不在本次结算病例中"
                f"（例如：{'、'.join(_examples(unknown))}）"
            )
        if counts["review_not_dip"]:
            raise ReviewFileError(
                f"特例单议表字段 case_id：{counts['review_not_dip']:,} 个病例未入 DIP 病种（按项目付费），"
                f"不能按特例单议结算（例如：{'、'.join(_examples(sel('review_not_dip')))}）"
            )
