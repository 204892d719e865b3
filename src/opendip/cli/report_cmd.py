"""`opendip report …`: monthly and annual reports, settlement publication, hospital analysis.

Each command reads a settlement run directory (`opendip settle month|year --out DIR`) and
writes the report as JSON, Excel, HTML and PDF with its own manifest
(`opendip.reports.sealed.write_sealed`: output hashes, staged, manifest last).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from opendip.cli import report_hospital_cmd
from opendip.cli.common import console, ensure_dir, fail, progress
from opendip.reports.model import Report
from opendip.reports.region import Extras, build_publication, build_report
from opendip.reports.source import ReportInputError

app = typer.Typer(
    no_args_is_help=True,
    help="报告：月报、年报、结算公示、院端分析 / reports",
)

RunOpt = Annotated[Path, typer.Option("--run", help="结算运行目录（opendip settle 的输出）")]
OutOpt = Annotated[Path, typer.Option("--out", help="输出目录 / output directory")]
QcOpt = Annotated[
    Path | None, typer.Option("--qc", help="质控结果 case_status.parquet（默认在运行目录旁查找）")
]
SupOpt = Annotated[
    Path | None, typer.Option("--supervision", help="智能监管输出目录（含 leads.parquet）")
]
PrevOpt = Annotated[Path | None, typer.Option("--previous", help="上年结算清单病例文件（同比用）")]
AppsOpt = Annotated[
    Path | None,
    typer.Option("--applications", help="特例单议与争议申请（JSON 或 CSV，列 kind、state）"),
]
STEMS = {"annual": "年度运行分析报告", "monthly": "月度运行分析报告", "publication": "结算公示"}


def write(report: Report, out: Path, stem: str) -> dict[str, Path]:
    """Write the report as JSON, Excel, HTML and PDF with `<stem>.manifest.json` (output
    hashes), staged and moved into place manifest last (`opendip.reports.sealed`); a
    missing font or Pango: a clear error, and `out` unchanged."""
    from opendip.reports.render import ReportRenderError
    from opendip.reports.sealed import write_sealed

    ensure_dir(out)
    try:
        return write_sealed(report, out, stem)
    except ReportRenderError as exc:
        fail(str(exc))


def read_applications(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        fail(f"申请文件不存在：{path}")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                data = list(csv.DictReader(fh))
    except (OSError, ValueError) as exc:
        fail(f"无法读取申请文件 {path}：{exc}")
    if not isinstance(data, list) or any(
        not isinstance(r, dict) or "kind" not in r or "state" not in r for r in data
    ):
        fail(f"申请文件 {path} 应为记录列表，每条含 kind 与 state")
    return data


def _region_report(
    kind: str,
    run: Path,
    out: Path,
    qc: Path | None,
    sup: Path | None,
    prev: Path | None,
    apps: Path | None,
) -> None:
    extras = Extras(
        qc_case_status=qc,
        supervision_dir=sup,
        previous_cases=prev,
        applications=read_applications(apps) if apps else None,
    )
    with progress() as bar:
        task = bar.add_task("汇总结算结果", total=2)
        try:
            report = build_report(run, extras)
        except ReportInputError as exc:
            fail(str(exc))
        if report.kind != kind:
            other = "年终清算" if report.kind == "annual" else "月度预结算"
            fail(f"{run} 是{other}运行，请用 opendip report {report.kind}")
        bar.update(task, advance=1, description="生成 PDF、Excel、HTML")
        written = write(report, out, f"{STEMS[kind]}_{report.period}")
        bar.update(task, advance=1, description="完成")
    _done(report, written)


def _done(report: Report, written: dict[str, Path]) -> None:
    console.print(f"[bold]{report.title}[/]")
    for fmt, path in sorted(written.items()):
        console.print(f"  {fmt}: {path}")


@app.command("annual")
def annual(
    run: RunOpt,
    out: OutOpt,
    qc: QcOpt = None,
    supervision: SupOpt = None,
    previous: PrevOpt = None,
    applications: AppsOpt = None,
) -> None:
    """年度运行分析报告（年终清算运行）：PDF、Excel、HTML、JSON。"""
    _region_report("annual", run, out, qc, supervision, previous, applications)


@app.command("monthly")
def monthly(
    run: RunOpt,
    out: OutOpt,
    qc: QcOpt = None,
    supervision: SupOpt = None,
    previous: PrevOpt = None,
    applications: AppsOpt = None,
) -> None:
    """月度运行分析报告（月度预结算运行）：PDF、Excel、HTML、JSON。"""
    _region_report("monthly", run, out, qc, supervision, previous, applications)


@app.command("publication")
def publication(run: RunOpt, out: OutOpt) -> None:
    """结算公示表（每家医疗机构、每个统筹区一行，含合计）：Excel、PDF。"""
    with progress() as bar:
        task = bar.add_task("读取结算结果", total=2)
        try:
            report = build_publication(run)
        except ReportInputError as exc:
            fail(str(exc))
        bar.update(task, advance=1, description="生成 PDF、Excel")
        written = write(report, out, f"{STEMS['publication']}_{report.period}")
        bar.update(task, advance=1, description="完成")
    _done(report, written)


app.command("hospital", help="院端分析：科室、医师、病种盈亏 / hospital analysis")(
    report_hospital_cmd.hospital
)
