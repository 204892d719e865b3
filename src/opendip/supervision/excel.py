"""Excel workbook for inspectors: 线索 (leads), 指标 (indicators), 异常 (anomalies)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from opendip.contract.cells import EXCEL_OPTIONS
from opendip.money import fen_to_yuan
from opendip.supervision.tables import INDICATOR_UNITS, SEVERITY_LABELS

#: Excel's row limit (the header takes one row).
MAX_ROWS = 1_048_575
STATUS_LABELS = {"open": "待核查"}
SCOPE_LABELS = {"hospital": "机构", "region": "全区域"}

LEAD_HEADERS = [
    "总排名", "类型内排名", "线索编号", "线索类型", "严重程度", "定点医疗机构代码", "医疗机构名称",
    "科室", "医师代码", "病例数", "涉及病例", "线索强度", "涉及金额(元)", "证据", "状态",
]  # fmt: skip
INDICATOR_HEADERS = [
    "范围", "定点医疗机构代码", "医疗机构名称", "医院等级", "月份", "指标", "值", "病例数",
    "上月值", "去年同月值", "环比变化", "同比变化", "较自身趋势z值", "较同级机构z值", "异常",
    "异常说明",
]  # fmt: skip


def _num(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def write_workbook(
    path: str | Path,
    leads: pa.Table,
    indicators: pa.Table,
    hospital_names: dict[str, str] | None = None,
    notes: list[str] | None = None,
) -> Path:
    """Write the workbook; returns its path. Rows beyond Excel's limit are cut (and said)."""
    import xlsxwriter

    names = hospital_names or {}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, **EXCEL_OPTIONS})
    head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    money = book.add_format({"num_format": "#,##0.00"})
    share = book.add_format({"num_format": "0.00%"})
    wrap = book.add_format({"text_wrap": True, "valign": "top"})
    red = book.add_format({"font_color": "#C00000", "bold": True})

    sheet = book.add_worksheet("线索")
    for c, h in enumerate(LEAD_HEADERS):
        sheet.write(0, c, h, head)
    for r, row in enumerate(leads.slice(0, MAX_ROWS).to_pylist(), start=1):
        sheet.write_number(r, 0, row["rank_overall"])
        sheet.write_number(r, 1, row["rank_in_type"])
        sheet.write_string(r, 2, row["lead_id"])
        sheet.write_string(r, 3, row["type_label"])
        sheet.write_string(r, 4, SEVERITY_LABELS.get(row["severity"], row["severity"]))
        sheet.write_string(r, 5, row["hospital_id"])
        sheet.write_string(r, 6, names.get(row["hospital_id"], ""))
        sheet.write_string(r, 7, row["department"] or "")
        sheet.write_string(r, 8, row["doctor_id"] or "")
        sheet.write_number(r, 9, row["case_count"])
        sheet.write_string(r, 10, "、".join(row["case_ids"]))
        sheet.write_number(r, 11, row["score"])
        sheet.write_number(r, 12, float(fen_to_yuan(row["impact_fen"])), money)
        sheet.write_string(r, 13, row["evidence"], wrap)
        sheet.write_string(r, 14, STATUS_LABELS.get(row["status"], row["status"]))
    sheet.freeze_panes(1, 0)
    sheet.set_column(2, 2, 30)
    sheet.set_column(10, 10, 30)
    sheet.set_column(13, 13, 90)

    def indicator_sheet(title: str, table: pa.Table) -> None:
        ws = book.add_worksheet(title)
        for c, h in enumerate(INDICATOR_HEADERS):
            ws.write(0, c, h, head)
        for r, row in enumerate(table.slice(0, MAX_ROWS).to_pylist(), start=1):
            unit = INDICATOR_UNITS.get(row["indicator"], "")
            fmt = money if unit == "fen" else share if unit == "share" else None
            ws.write_string(r, 0, SCOPE_LABELS.get(row["scope"], row["scope"]))
            ws.write_string(r, 1, row["hospital_id"])
            ws.write_string(r, 2, names.get(row["hospital_id"], ""))
            ws.write_string(r, 3, row["level"] or "")
            ws.write_string(r, 4, row["month"])
            ws.write_string(r, 5, row["indicator_label"])
            for c, key in ((6, "value"), (8, "prev_month_value"), (9, "last_year_value")):
                v = _num(row[key])
                if v is not None:
                    ws.write_number(r, c, v, fmt)
            ws.write_number(r, 7, row["case_count"])
            for c, key in ((10, "mom_change"), (11, "yoy_change")):
                if row[key] is not None:
                    ws.write_number(r, c, row[key], share)
            for c, key in ((12, "own_z"), (13, "peer_z")):
                if row[key] is not None:
                    ws.write_number(r, c, row[key])
            if row["anomaly"]:
                ws.write_string(r, 14, "是", red)
            ws.write_string(r, 15, row["anomaly_reason"] or "")
        ws.freeze_panes(1, 0)
        ws.set_column(15, 15, 60)

    indicator_sheet("指标", indicators)
    indicator_sheet("异常", indicators.filter(indicators["anomaly"]))
    info = book.add_worksheet("说明")
    lines = [
        f"线索 {leads.num_rows:,} 条；指标 {indicators.num_rows:,} 行。",
        *(notes or []),
    ]
    if leads.num_rows > MAX_ROWS or indicators.num_rows > MAX_ROWS:
        lines.append("超过 Excel 行数上限的部分未写入，完整数据见 Parquet 文件。")
    for r, line in enumerate(lines):
        info.write_string(r, 0, line)
    info.set_column(0, 0, 100)
    book.close()
    return path
