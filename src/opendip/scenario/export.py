"""方案测算 Excel: region summary and per-hospital comparison, Chinese headers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

from opendip.settlement.output import LABELS, write_excel

#: Chinese headers of the scenario tables (added to the shared result labels).
SCENARIO_LABELS = {
    "variant": "方案编号",
    "variant_name": "方案名称",
    "hospitals": "医疗机构数",
    "base_point_value": "基准点值",
    "base_dip_amount_fen": "基准DIP金额",
    "base_fund_payable_fen": "基准统筹应支付",
    "base_dip_minus_ffs_fen": "基准DIP与按项目差额",
    "base_clearing_total_fen": "基准清算应付总额",
    "dip_change_fen": "DIP金额变化",
    "dip_change_pct": "DIP金额变化(%)",
    "fund_change_fen": "统筹应支付变化",
    "fund_change_pct": "统筹应支付变化(%)",
    "surplus_change_fen": "结余超支变化",
    "surplus_change_pct": "结余超支变化(%)",
    "clearing_change_fen": "清算应付变化",
    "clearing_change_pct": "清算应付变化(%)",
    "dip_ffs_ratio": "DIP/按项目比值",
    "cases_changed_group": "入组变化病例数",
    "hospitals_gaining": "增加家数",
    "hospitals_losing": "减少家数",
    "largest_gain_fen": "最大增加",
    "largest_loss_fen": "最大减少",
    "hospitals_in_deficit": "超支家数",
    "point_value_change_pct": "点值变化(%)",
}
LABELS.update({k: v for k, v in SCENARIO_LABELS.items() if k not in LABELS})


def write_scenario_excel(hospitals: pa.Table, summary: pa.Table, path: Path, year: int) -> Path:
    return write_excel(
        [("区域汇总", summary), ("医疗机构对比", hospitals)], path, dt.date(year, 12, 31)
    )
