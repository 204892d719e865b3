"""Chinese explanations (计算说明), one template per formula, shared by batch and single.

A template is text with `{placeholders}`. Scoring (batch and single case alike) records the
*facts* of a case's explanation as typed SCORED columns (`EXPLAIN_FACTS`: template keys,
reference mean, cost ratio, thresholds, coefficients…); the sentence is rendered from them
on read by `render` (case pages, reconciliation, Excel), so a batch of millions of cases never
builds or stores the text, and a batch row and the single-case row render the same sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from string import Formatter
from typing import Any

import ibis
import ibis.expr.types as ir

_HEAD = (
    "病种{group}基准分值{base}×辅助系数{aux}；总费用{cost}元，{mean_src}{mean}元，费用倍率{ratio}"
)

#: Body templates by formula (key), before the coefficient part.
BODY: dict[str, str] = {
    "normal": _HEAD + "，在{low}～{high}倍之间，为正常病例；病例分值={base}×{aux}={case_score}",
    "high": _HEAD + "，高于高倍率界值{high}倍，为高倍率病例；"
    "病例分值={base}×{aux}×[1+(费用倍率−{high})×{share}]={case_score}",
    "high_folded": _HEAD + "，高于高倍率界值{high}倍，为高倍率病例；"
    "病例分值={base}×{aux}×[医疗机构系数{coef}+(费用倍率−{high})×{share}]={case_score}",
    "low": _HEAD
    + "，低于低倍率界值{low}倍，为低倍率病例；病例分值={base}×{aux}×费用倍率={case_score}",
    "low_base": _HEAD + "，低于低倍率界值{low}倍，为低倍率病例，按基准分值计；"
    "病例分值={base}×{aux}={case_score}",
    "extreme_review": _HEAD
    + "，高于极端界值{extreme}倍，为极端病例，待特例单议，暂按高倍率公式计；"
    "病例分值={base}×{aux}×[1+(费用倍率−{high})×{share}]={case_score}",
    "extreme_review_folded": _HEAD + "，高于极端界值{extreme}倍，为极端病例，待特例单议，"
    "暂按高倍率公式计；病例分值={base}×{aux}×[医疗机构系数{coef}+(费用倍率−{high})×{share}]"
    "={case_score}",
    "extreme_cap": _HEAD + "，高于极端界值{extreme}倍，为极端病例，按{extreme}倍封顶；"
    "病例分值={base}×{aux}×[1+({extreme}−{high})×{share}]={case_score}",
    "extreme_cap_folded": _HEAD + "，高于极端界值{extreme}倍，为极端病例，按{extreme}倍封顶；"
    "病例分值={base}×{aux}×[医疗机构系数{coef}+({extreme}−{high})×{share}]={case_score}",
    "extreme_provisional": _HEAD + "，高于极端界值{extreme}倍，为极端病例，待特例单议，"
    "暂按基准分值计；病例分值={base}×{aux}={case_score}",
    "bed_day": "按床日付费病种{group}：床日分值{per_day}×住院天数{los}×辅助系数{aux}={case_score}",
    "fallback": "归入保底病组{group}：病例分值={fraction}×总费用{cost}元÷全部病例次均费用{all_mean}元"
    "×基准分值{base_points}={case_score}",
    "special_review": "特例单议通过（病种{group}，总费用{cost}元）：专家评定分值{reviewed}",
}

#: Coefficient part, after the body.
TAIL: dict[str, str] = {
    "coef": "；医疗机构系数{coef}，结算分值={case_score}×{coef}={settled}",
    "basic": "；基层病种同病同价，不乘医疗机构系数，结算分值={settled}",
    "folded": "；医疗机构系数已计入公式，结算分值={settled}",
    "low_no_coef": "；低倍率病例不乘医疗机构系数，结算分值={settled}",
    "fallback": "；保底病组不乘医疗机构系数，结算分值={settled}",
    "review_settled": "，即结算分值={settled}",
    "review_case": "，作为病例分值；医疗机构系数{coef}，结算分值={case_score}×{coef}={settled}",
}

#: Prefix for a case whose special review was rejected.
REJECTED = "特例单议未通过，按常规规则计算："

#: Money part, appended when a point value is known.
MONEY = (
    "；点值{point_value}元/分，DIP金额={settled}×{point_value}={amount}元，"
    "个人负担{personal}元，统筹基金应支付{fund}元"
)

MEAN_SOURCES = {
    "same_level": "同级别病种次均费用",
    "regional": "全市病种次均费用",
    "regional_fallback": "全市病种次均费用（本级别无均值）",
    "score_times_factor": "参照费用(分值×每分元数)",
}


def fields(template: str) -> list[tuple[str, str | None]]:
    """(literal text, placeholder or None) segments of a template."""
    return [(lit, name) for lit, name, _, _ in Formatter().parse(template)]


def ibis_text(template: str, values: dict[str, ir.StringValue]) -> ir.StringValue:
    """The template as an Ibis string expression."""
    out: ir.StringValue = ibis.literal("")
    for lit, name in fields(template):
        if lit:
            out = out + ibis.literal(lit)
        if name is not None:
            out = out + values[name]
    return out


def py_text(template: str, values: dict[str, str]) -> str:
    return template.format(**values)


def fmt_units(units: int, decimals: int, shown: int) -> str:
    """Integer units of 10**-decimals shown with `shown` decimals (as DuckDB casts them)."""
    return format(Decimal(units).scaleb(-decimals), f".{shown}f")


def _dec(value: Any, shown: int = 4) -> str:
    """A decimal fact as DuckDB casts a decimal(18, 4) to text ("" when missing)."""
    return "" if value is None else format(Decimal(value), f".{shown}f")


def _fen(value: Any) -> str:
    return "" if value is None else fmt_units(int(value), 2, 2)


def template_values(row: Mapping[str, Any]) -> dict[str, str]:
    """The template placeholders filled from a SCORED row's explanation facts."""
    source = row.get("mean_source")
    return {
        "group": row.get("group_code") or "",
        # the base score the formulas started from (after special payment rules)
        "base": _dec(row.get("paid_base_score")),
        "aux": _dec(row.get("aux_coefficient")),
        "cost": _fen(row.get("total_cost_fen")),
        "mean_src": MEAN_SOURCES[source] if source else "",
        "mean": _fen(row.get("mean_cost_fen")),
        "ratio": _dec(row.get("cost_ratio")),
        "high": row.get("high_multiple") or "",
        "low": row.get("low_multiple") or "",
        "extreme": row.get("extreme_multiple") or "",
        "share": row.get("excess_share") or "",
        "coef": _dec(row.get("institution_coefficient")),
        "case_score": _dec(row.get("case_score")),
        "settled": _dec(row.get("settled_score")),
        "per_day": _dec(row.get("score_per_day")),
        "los": "" if row.get("los_days") is None else str(row["los_days"]),
        "fraction": row.get("fallback_fraction") or "",
        "all_mean": _fen(row.get("all_case_mean_fen")),
        "base_points": row.get("base_points") or "",
        # an accepted review's score is the case score (rounded to the policy's decimals)
        "reviewed": _dec(row.get("case_score")),
    }


def render(row: Mapping[str, Any]) -> str:
    """The Chinese explanation of one scored case from its facts (a SCORED row, from the
    batch's Parquet or the single-case scorer); the money part when a point value is known."""
    values = template_values(row)
    text = (REJECTED if row.get("review_rejected") else "") + (row.get("rule_note") or "")
    text += py_text(BODY[row["explain_body"]], values)
    text += py_text(TAIL[row["explain_tail"]], values)
    if row.get("point_value") is not None:
        text += py_text(
            MONEY,
            {
                "point_value": _dec(row["point_value"], 6),
                "settled": values["settled"],
                "amount": _fen(row.get("dip_amount_fen")),
                "personal": _fen(row.get("personal_share_fen")),
                "fund": _fen(row.get("fund_payable_fen")),
            },
        )
    return text


def render_column(table: Any) -> list[str]:
    """`render` for every row of an Arrow table holding the SCORED facts (display paths:
    Excel, pages; never the batch)."""
    from opendip.contract.tables import EXPLAIN_FACTS

    present = [c for c in EXPLAIN_FACTS if c in table.column_names]
    return [render(r) for r in table.select(present).to_pylist()]
