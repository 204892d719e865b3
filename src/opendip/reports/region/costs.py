"""费用与住院日: per-case cost, self-pay, ALOS against the previous period and last year.

Over every settlement-list case of a period (DIP or not):
  次均费用 = Σ total_cost ÷ cases (whole fen, half up); 次均自费 = Σ personal_selfpay ÷ cases;
  自费比例 = Σ personal_selfpay ÷ Σ total_cost; 平均住院日 = Σ los_days ÷ cases (2 places).
The previous period of a month is the month before (December of last year for January); of a
year, the year before. 同比 compares with the same month (or year) of the previous year.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ibis.expr.types as ir

from opendip.reports.calc import Q2, per_case, rate
from opendip.reports.model import Chart, ColumnSpec, Figure, Section, Series, Table
from opendip.reports.region.facts import RegionFacts, in_period, one, rows

COLUMNS = [
    ColumnSpec("label", "期间"),
    ColumnSpec("period", "结算月份"),
    ColumnSpec("cases", "病例数", "count"),
    ColumnSpec("cost_per_case_fen", "次均费用", "fen"),
    ColumnSpec("selfpay_per_case_fen", "次均自费", "fen"),
    ColumnSpec("selfpay_ratio", "自费比例", "ratio"),
    ColumnSpec("alos_days", "平均住院日", "days"),
]
DEFINITIONS = (
    "按本期全部结算清单病例（含未按 DIP 结算的病例）计算：次均费用 = 医疗总费用 ÷ 病例数；"
    "次均自费 = 自费金额 ÷ 病例数；自费比例 = 自费金额 ÷ 医疗总费用；平均住院日 = 住院天数合计 ÷ "
    "病例数。同比与上年同期比较，环比（月报）与上月比较。"
)
INDICATORS = [
    ("cost_per_case_fen", "次均费用", "fen"),
    ("selfpay_per_case_fen", "次均自费", "fen"),
    ("selfpay_ratio", "自费比例", "ratio"),
    ("alos_days", "平均住院日", "days"),
]


def _sums(t: ir.Table) -> ir.Table:
    return t.aggregate(
        cases=t.count(),
        cost=t.total_cost_fen.sum().cast("int64"),
        selfpay=t.selfpay_fen.sum().cast("int64"),
        los=t.los_days.sum().cast("int64"),
    )


def indicators(row: dict[str, Any]) -> dict[str, Any]:
    n = int(row["cases"] or 0)
    cost, selfpay, los = (int(row[k] or 0) for k in ("cost", "selfpay", "los"))
    return {
        "cases": n,
        "cost_per_case_fen": per_case(cost, n),
        "selfpay_per_case_fen": per_case(selfpay, n),
        "selfpay_ratio": rate(selfpay, cost),
        "alos_days": rate(los, n, Q2),
    }


def previous_period(period: str) -> str:
    if len(period) == 4:
        return str(int(period) - 1)
    year, month = int(period[:4]), int(period[5:])
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def last_year(period: str) -> str:
    return str(int(period[:4]) - 1) + period[4:]


def _measure(f: RegionFacts, period: str) -> dict[str, Any] | None:
    source = f.all_cases if period[:4] == str(f.year) else f.previous_cases
    if source is None:
        return None
    got = indicators(one(_sums(source.filter(in_period(source, period)))))
    return got if got["cases"] else None


def costs(f: RegionFacts) -> Section:
    now = _measure(f, f.period)
    assert now is not None  # the period has cases (the settlement ran on them)
    before = _measure(f, previous_period(f.period))
    year_ago = _measure(f, last_year(f.period))
    table_rows = [{"label": "本期", "period": f.period, **now}]
    if f.kind == "monthly":
        table_rows.append(
            {"label": "上期（上月）", "period": previous_period(f.period), **(before or {})}
        )
    table_rows.append({"label": "上年同期", "period": last_year(f.period), **(year_ago or {})})
    figures = [
        Figure(
            "costs.cases",
            "结算清单病例数",
            now["cases"],
            "count",
            year_ago["cases"] if year_ago else None,
        )
    ]
    for key, label, unit in INDICATORS:
        figures.append(
            Figure(
                f"costs.{key}",
                label,
                now[key],
                unit,
                year_ago[key] if year_ago else None,
                "与上年同期比较",
            )
        )
    if f.kind == "monthly":
        for key, label, unit in INDICATORS:
            figures.append(
                Figure(
                    f"costs.{key}.mom",
                    f"{label}（环比）",
                    now[key],
                    unit,
                    before[key] if before else None,
                    "与上月比较",
                )
            )
    paragraphs = [DEFINITIONS]
    if year_ago is None:
        paragraphs.append(
            "未找到上年同期结算清单（cases_<上年>.parquet 或 --previous），不作同比。"
        )
    return Section(
        "costs",
        "住院费用与住院日",
        paragraphs,
        figures,
        [Table("costs.comparison", "费用指标对比", COLUMNS, table_rows)],
        _trend_charts(f),
    )


def _monthly(t: ir.Table, year: int, until: str) -> list[dict[str, Any]]:
    t = t.filter(t.settle_month.startswith(f"{year}-") & (t.settle_month <= f"{year}{until[4:]}"))
    out = rows(
        t.group_by("settle_month").aggregate(
            cases=t.count(),
            cost=t.total_cost_fen.sum().cast("int64"),
            selfpay=t.selfpay_fen.sum().cast("int64"),
            los=t.los_days.sum().cast("int64"),
        )
    )
    return sorted(
        ({"month": r["settle_month"], **indicators(r)} for r in out), key=lambda r: r["month"]
    )


def _trend_charts(f: RegionFacts) -> list[Chart]:
    until = f.period if f.kind == "monthly" else f"{f.year}-12"
    this = _monthly(f.all_cases, f.year, until)
    if len(this) < 2:
        return []
    prev = _monthly(f.previous_cases, f.year - 1, until) if f.previous_cases is not None else []
    by_month = {r["month"][5:]: r for r in prev}
    cost_series = [
        Series(
            f"{f.year} 年", [(r["month"][5:] + "月", _yuan(r["cost_per_case_fen"])) for r in this]
        )
    ]
    if by_month:
        cost_series.append(
            Series(
                f"{f.year - 1} 年",
                [(m + "月", _yuan(by_month[m]["cost_per_case_fen"])) for m in sorted(by_month)],
            )
        )
    return [
        Chart(
            "costs.monthly_cases",
            "各月结算病例数",
            "bar",
            [Series("病例数", [(r["month"][5:] + "月", r["cases"]) for r in this])],
            x_label="月份",
            y_label="病例数",
        ),
        Chart(
            "costs.monthly_cost_per_case",
            "各月次均住院费用（元）",
            "line",
            cost_series,
            x_label="月份",
            y_label="元",
        ),
        Chart(
            "costs.monthly_alos",
            "各月平均住院日",
            "line",
            [Series(f"{f.year} 年", [(r["month"][5:] + "月", r["alos_days"]) for r in this])],
            x_label="月份",
            y_label="天",
        ),
    ]


def _yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else Decimal(fen) / 100
