"""年终点值预测 in the monthly report: the forecast written beside the monthly run
(`opendip forecast point-value --out`, or the platform's monthly run)."""

from __future__ import annotations

from decimal import Decimal

from opendip.reports.model import ColumnSpec, Figure, Section, Table
from opendip.reports.region.common import POOL_LABELS
from opendip.reports.region.facts import RegionFacts


def forecast(f: RegionFacts) -> Section | None:
    if f.kind != "monthly":
        return None
    from opendip.forecast.run import read_forecast

    pools = read_forecast(f.src.run_dir)
    if not pools:
        return None
    rows = [
        {
            "pool_label": POOL_LABELS.get(p["pool"], p["pool"]),
            "point_value": Decimal(p["point_value"]),
            "low": Decimal(p["point_value_low"]),
            "high": Decimal(p["point_value_high"]),
            "budget": Decimal(p["budget_point_value"]),
            "drift": Decimal(p["drift"]),
            "warning": "超出容差" if p["warning"] else "在容差内",
        }
        for p in pools
    ]
    figures = [
        Figure(
            f"forecast.point_value.{p['pool']}",
            f"{POOL_LABELS.get(p['pool'], p['pool'])}预测年终结算点值",
            Decimal(p["point_value"]),
            "point_value",
        )
        for p in pools
    ]
    paragraphs = [
        "按本年已结算月份的分值、个人负担与按项目支付，以历年各月费用累计占比外推全年，"
        "用年终清算的点值公式预测结算点值；区间为历年占比最小与最大时的点值。",
        *[("预警：" if p["warning"] else "") + str(p["message"]) for p in pools],
    ]
    table = Table(
        "forecast.pools",
        "年终结算点值预测",
        [
            ColumnSpec("pool_label", "险种"),
            ColumnSpec("point_value", "预测点值", "point_value"),
            ColumnSpec("low", "区间下限", "point_value"),
            ColumnSpec("high", "区间上限", "point_value"),
            ColumnSpec("budget", "预算点值", "point_value"),
            ColumnSpec("drift", "偏离预算点值", "ratio"),
            ColumnSpec("warning", "与容差比较"),
        ],
        rows,
    )
    return Section("forecast", "年终点值预测", paragraphs, figures, [table])
