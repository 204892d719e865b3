"""`opendip report hospital`: 院端分析 of one hospital from a settlement run.

The command function is registered on the `report` sub-app (`opendip.cli.report_cmd`).
It writes the report (JSON, Excel, HTML, PDF) with its own manifest through
`opendip.reports.sealed.write_sealed`.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from opendip.cli.common import console, ensure_dir, fail
from opendip.reports.hospital import (
    DEFAULT_NEAR_BAND,
    HospitalAnalysisError,
    build_hospital_report,
    parse_near_band,
)
from opendip.reports.model import Report


def _write(report: Report, out: Path, stem: str) -> dict[str, Path]:
    from opendip.reports.render import ReportRenderError
    from opendip.reports.sealed import write_sealed

    try:
        return write_sealed(report, out, stem)
    except ReportRenderError as exc:
        fail(str(exc))


def hospital(
    run: Annotated[Path, typer.Option("--run", help="结算运行目录（opendip settle 的输出）")],
    hospital_id: Annotated[str, typer.Option("--hospital", help="医疗机构代码")],
    out: Annotated[Path, typer.Option("--out", help="输出目录 / output directory")],
    near_band: Annotated[
        str, typer.Option("--near-band", help="临界区间宽度（费用比），如 0.2")
    ] = str(DEFAULT_NEAR_BAND),
    department: Annotated[str | None, typer.Option("--department", help="只分析该科室")] = None,
    group_code: Annotated[str | None, typer.Option("--group", help="只分析该病种")] = None,
    cases: Annotated[
        Path | None, typer.Option("--cases", help="结算所用病例文件（不在运行目录旁时）")
    ] = None,
    grouped: Annotated[Path | None, typer.Option("--grouped", help="结算所用入组结果")] = None,
    directory: Annotated[Path | None, typer.Option("--directory", help="结算所用病种目录")] = None,
    hospitals: Annotated[
        Path | None, typer.Option("--hospitals", help="结算所用医疗机构表")
    ] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="结算所用政策文件")] = None,
) -> None:
    """院端分析：按科室、医师、病种的 DIP 盈亏，亏损最多的病种，接近高低倍率界值的病例。"""
    try:
        band = parse_near_band(near_band)
    except HospitalAnalysisError as exc:
        fail(str(exc))
    inputs = {
        k: v
        for k, v in {
            "cases": cases,
            "grouped": grouped,
            "directory": directory,
            "hospitals": hospitals,
            "policy": policy,
        }.items()
        if v is not None
    }
    try:
        report = build_hospital_report(
            run,
            hospital_id,
            near_band=band,
            department=department,
            group_code=group_code,
            inputs=inputs,
        )
    except HospitalAnalysisError as exc:
        fail(str(exc))
    ensure_dir(out)
    stem = f"院端分析_{hospital_id}_{report.period}"
    written = _write(report, out, stem)
    balance = report.figure("hospital.balance_fen").value
    cases_n = report.figure("hospital.cases").value
    if balance is None:
        console.print(f"{report.title}：本期没有 DIP 结算病例")
    else:
        word = "结余" if balance >= 0 else "亏损"
        console.print(
            f"{report.title}：{cases_n:,} 例，{word} {abs(Decimal(balance)) / 100:,.2f} 元"
        )
    for kind, path in sorted(written.items()):
        console.print(f"  {kind}: {path}")
