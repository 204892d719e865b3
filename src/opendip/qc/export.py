"""Writing a QC run: Parquet tables and an Excel workbook a hospital can read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from opendip.contract.cells import EXCEL_OPTIONS
from opendip.qc.batch import QcResult
from opendip.qc.fields import field_label
from opendip.qc.rules import LEVEL_LABELS, RuleSet
from opendip.qc.summary import by_hospital, by_rule, overall, rules_table

#: Excel's row limit (header row included).
EXCEL_MAX_ROWS = 1_048_576


@dataclass(frozen=True)
class QcOutputs:
    """The materialised tables of a run and where they were written."""

    findings: pa.Table
    case_status: pa.Table
    hospitals: pa.Table
    rules: pa.Table
    overall: dict[str, Any]
    paths: dict[str, Path]


def write_outputs(
    result: QcResult, out: str | Path, excel: bool = True, context: dict[str, str] | None = None
) -> QcOutputs:
    """Write findings, case_status, summary_by_hospital, summary_by_rule (Parquet) and
    qc_report.xlsx into `out`; returns the tables."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    findings = result.findings.to_pyarrow()
    status = result.case_status.to_pyarrow()
    hospitals = by_hospital(result.case_status).to_pyarrow()
    rules = by_rule(result.findings, result.case_status, result.rules).to_pyarrow()
    paths = {
        "findings": out / "findings.parquet",
        "case_status": out / "case_status.parquet",
        "summary_by_hospital": out / "summary_by_hospital.parquet",
        "summary_by_rule": out / "summary_by_rule.parquet",
    }
    for name, table in zip(paths, (findings, status, hospitals, rules), strict=True):
        pq.write_table(table, paths[name])
    head = overall(status, findings)
    if excel:
        paths["excel"] = out / "qc_report.xlsx"
        write_workbook(
            paths["excel"], head, hospitals, rules, findings, result.rules, result.run_date, context
        )
    return QcOutputs(findings, status, hospitals, rules, head, paths)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def write_workbook(
    path: Path,
    head: dict[str, Any],
    hospitals: pa.Table,
    rules: pa.Table,
    findings: pa.Table,
    rule_set: RuleSet,
    run_date: dt.date,
    context: dict[str, str] | None = None,
) -> Path:
    """Sheets 汇总, 按医院, 按规则, 问题明细 with Chinese headers."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, **EXCEL_OPTIONS})
    bold = book.add_format({"bold": True})
    try:
        sheet = book.add_worksheet("汇总")
        rows: list[tuple[str, Any]] = [
            ("质控规则集", f"{rule_set.name}（版本 {rule_set.version}）"),
            ("质控日期", run_date.isoformat()),
            *((k, v) for k, v in (context or {}).items()),
            ("检查病例数", head["cases"]),
            ("通过病例数（无错误与警告）", head["passed"]),
            ("合格率", _pct(head["pass_rate"])),
            ("阻断病例数（有错误，不予入组）", head["blocking"]),
            ("问题总数", head["findings"]),
            ("错误", head["errors"]),
            ("警告", head["warnings"]),
            ("提示", head["infos"]),
        ]
        sheet.write_row(0, 0, ["项目", "值"], bold)
        for i, (k, v) in enumerate(rows, start=1):
            sheet.write_row(i, 0, [k, v])
        sheet.set_column(0, 0, 30)
        sheet.set_column(1, 1, 40)

        sheet = book.add_worksheet("按医院")
        header = [
            "医疗机构代码",
            "检查病例数",
            "通过病例数",
            "合格率",
            "阻断病例数",
            "错误数",
            "警告数",
            "提示数",
        ]
        sheet.write_row(0, 0, header, bold)
        for i, r in enumerate(hospitals.to_pylist(), start=1):
            sheet.write_row(
                i,
                0,
                [
                    r["hospital_id"],
                    r["cases"],
                    r["passed"],
                    _pct(r["pass_rate"]),
                    r["blocking"],
                    r["errors"],
                    r["warnings"],
                    r["infos"],
                ],
            )
        sheet.set_column(0, len(header) - 1, 14)

        sheet = book.add_worksheet("按规则")
        header = ["规则编号", "规则名称", "级别", "问题类别", "问题数", "涉及病例数", "病例占比"]
        sheet.write_row(0, 0, header, bold)
        for i, r in enumerate(rules.to_pylist(), start=1):
            sheet.write_row(
                i,
                0,
                [
                    r["rule_id"],
                    r["rule_name"],
                    r["level_label"],
                    r["category"] or "",
                    r["findings"],
                    r["cases"],
                    _pct(r["case_share"]),
                ],
            )
        sheet.set_column(0, 0, 14)
        sheet.set_column(1, 1, 36)
        sheet.set_column(2, len(header) - 1, 12)

        sheet = book.add_worksheet("问题明细")
        header = [
            "结算清单号",
            "医疗机构代码",
            "规则编号",
            "规则名称",
            "级别",
            "字段",
            "值",
            "问题描述",
        ]
        sheet.write_row(0, 0, header, bold)
        names = dict(
            zip(
                rules_table(rule_set)["rule_id"].to_pylist(),
                rules_table(rule_set)["rule_name"].to_pylist(),
                strict=True,
            )
        )
        limit = EXCEL_MAX_ROWS - 2
        columns = {c: findings[c].to_pylist() for c in findings.column_names}
        for i in range(min(findings.num_rows, limit)):
            sheet.write_row(
                i + 1,
                0,
                [
                    columns["case_id"][i],
                    columns["hospital_id"][i],
                    columns["rule_id"][i],
                    names.get(columns["rule_id"][i], ""),
                    LEVEL_LABELS.get(columns["level"][i], columns["level"][i]),
                    field_label(columns["field"][i]),
                    columns["value"][i],
                    columns["message"][i],
                ],
            )
        if findings.num_rows > limit:
            sheet.write_row(
                limit + 1,
                0,
                [
                    f"……另有 {findings.num_rows - limit:,} 条问题超出 Excel 行数上限，见 findings.parquet"
                ],
            )
        sheet.set_column(0, 1, 16)
        sheet.set_column(2, 2, 12)
        sheet.set_column(3, 3, 30)
        sheet.set_column(5, 6, 18)
        sheet.set_column(7, 7, 60)
    finally:
        book.close()
    return path


__all__ = ["EXCEL_MAX_ROWS", "QcOutputs", "write_outputs", "write_workbook"]
