"""方案测算 as a report (the reports' model), rendered to PDF like the other reports."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from opendip.contract.tables import INSURANCE_TYPE_LABELS
from opendip.reports.model import ColumnSpec, Report, Section, Table

SUMMARY = [
    ColumnSpec("variant_name", "方案"),
    ColumnSpec("pool_label", "险种"),
    ColumnSpec("point_value", "结算点值", "point_value"),
    ColumnSpec("clearing_total_fen", "清算应付总额", "fen"),
    ColumnSpec("clearing_change_fen", "较现行", "fen"),
    ColumnSpec("hospitals_gaining", "增加家数", "count"),
    ColumnSpec("hospitals_losing", "减少家数", "count"),
    ColumnSpec("largest_gain_fen", "最大增加", "fen"),
    ColumnSpec("largest_loss_fen", "最大减少", "fen"),
]
HOSPITALS = [
    ColumnSpec("variant_name", "方案"),
    ColumnSpec("hospital_id", "医疗机构"),
    ColumnSpec("pool_label", "险种"),
    ColumnSpec("dip_amount_fen", "DIP 金额", "fen"),
    ColumnSpec("dip_change_fen", "较现行", "fen"),
    ColumnSpec("fund_payable_fen", "统筹应支付", "fen"),
    ColumnSpec("clearing_total_fen", "清算应付", "fen"),
    ColumnSpec("clearing_change_fen", "较现行", "fen"),
    ColumnSpec("cases_changed_group", "入组变化病例", "count"),
]


def build_scenario_report(out: Path, region: str = "") -> Report:
    """The scenario run in `out` (written by `run_scenario`) as a Report."""
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    rows = pq.read_table(out / "summary.parquet").to_pylist()
    hospitals = [
        r for r in pq.read_table(out / "hospitals.parquet").to_pylist() if r["variant"] != "base"
    ]
    for r in (*rows, *hospitals):
        r["pool_label"] = INSURANCE_TYPE_LABELS.get(r["pool"], r["pool"])
    hospitals.sort(key=lambda r: (r["variant"], r["clearing_change_fen"], r["hospital_id"]))
    names = "、".join(v["name"] for v in summary["variants"][1:])
    text = (
        f"在 {summary['year']} 年已完成的年终清算上，按方案（{names}）重新入组、计算分值并清算，"
        "逐院对比现行方案。现行方案重算与原清算结果"
        + ("逐分一致。" if summary.get("base_reproduced") else "不一致，请核查！")
    )
    return Report(
        "scenario",
        str(summary["year"]),
        f"{region}DIP 方案测算（{summary['year']} 年）",
        region,
        [
            Section(
                "summary",
                "区域汇总",
                [text],
                [],
                [Table("scenario.summary", "区域汇总", SUMMARY, rows)],
            ),
            Section(
                "hospitals",
                "医疗机构对比",
                [],
                [],
                [
                    Table(
                        "scenario.hospitals",
                        "医疗机构对比（按清算应付变化排列）",
                        HOSPITALS,
                        hospitals,
                    )
                ],
            ),
        ],
        {"scenario_dir": str(out)},
    )


def write_scenario_pdf(out: Path, region: str = "") -> Path:
    from opendip.reports.render import write_pdf

    return write_pdf(build_scenario_report(out, region), out / "方案测算.pdf")
