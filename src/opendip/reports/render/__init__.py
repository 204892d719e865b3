"""Renderers of a `opendip.reports.model.Report`: JSON, Excel, HTML and PDF (Chinese).

    write_report(report, out, "院端分析_H001_2026")  # → {"json": …, "xlsx": …, "html": …, "pdf": …}

Charts are drawn once (matplotlib, PNG) and shared by the Excel, HTML and PDF outputs.
Missing renderer dependencies (CJK font, WeasyPrint/Pango) raise `ReportFontError` /
`ReportRenderError` with a Chinese message pointing to scripts/report-deps.sh.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from opendip.reports.model import Report
from opendip.reports.render.charts import (
    find_cjk_font,
    render_chart_png,
    render_chart_svg,
    render_charts,
)
from opendip.reports.render.errors import ReportFontError, ReportRenderError
from opendip.reports.render.excel import write_xlsx
from opendip.reports.render.fmt import fmt_change, fmt_value, fmt_wan
from opendip.reports.render.html import render_html
from opendip.reports.render.pdf import check_pdf_deps, write_pdf

FORMATS = ("json", "xlsx", "html", "pdf")


def write_report(
    report: Report, out: Path, stem: str, formats: Iterable[str] = FORMATS
) -> dict[str, Path]:
    """Write `<stem>.<format>` for each format into `out` (created with its parents).

    Returns the written paths by format. Unknown formats, a stem that is not a plain file
    name, a missing CJK font and (for "pdf") missing WeasyPrint/Pango raise
    `ReportRenderError` (`ReportFontError`) before anything is written.
    """
    wanted = list(dict.fromkeys(formats))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown:
        raise ReportRenderError(
            f"未知的报告格式：{'、'.join(unknown)}（可选 {'、'.join(FORMATS)}）"
        )
    if not stem or stem in (".", "..") or "/" in stem or "\\" in stem or "\0" in stem:
        raise ReportRenderError(f"报告文件名不合法：{stem!r}")
    if "pdf" in wanted:
        check_pdf_deps()  # fail before writing the other formats
    images = render_charts(report) if {"xlsx", "html", "pdf"} & set(wanted) else {}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for fmt in wanted:
        path = out / f"{stem}.{fmt}"
        if fmt == "json":
            report.write_json(path)
        elif fmt == "xlsx":
            write_xlsx(report, path, chart_images=images)
        elif fmt == "html":
            path.write_text(render_html(report, chart_images=images), encoding="utf-8")
        else:
            write_pdf(report, path, chart_images=images)
        written[fmt] = path
    return written


__all__ = [
    "FORMATS",
    "ReportFontError",
    "ReportRenderError",
    "check_pdf_deps",
    "find_cjk_font",
    "fmt_change",
    "fmt_value",
    "fmt_wan",
    "render_chart_png",
    "render_chart_svg",
    "render_charts",
    "render_html",
    "write_pdf",
    "write_report",
    "write_xlsx",
]
