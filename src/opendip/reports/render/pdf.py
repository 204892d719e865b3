"""A report as PDF: the standalone HTML (A4 print CSS) laid out by WeasyPrint.

WeasyPrint needs Pango (libpango-1.0-0, libpangoft2-1.0-0) and the PDF a CJK font
("Noto Sans CJK SC", Debian package fonts-noto-cjk); scripts/report-deps.sh installs both.
Without them `ReportRenderError` / `ReportFontError` is raised with a Chinese message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opendip.reports.model import Report
from opendip.reports.render.charts import find_cjk_font, render_charts
from opendip.reports.render.errors import ReportRenderError
from opendip.reports.render.html import render_html

DEPS_MESSAGE = (
    "无法生成 PDF：缺少 WeasyPrint 或其依赖的 Pango 库，请运行 scripts/report-deps.sh 安装"
    "（pip install weasyprint；apt-get install libpango-1.0-0 libpangoft2-1.0-0）"
)


def _weasyprint_html() -> Any:
    """WeasyPrint's HTML class; ReportRenderError when it or Pango cannot be loaded."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: libpango / libgobject not found
        raise ReportRenderError(f"{DEPS_MESSAGE}：{exc}") from exc
    return HTML


def check_pdf_deps() -> None:
    """Raise ReportRenderError / ReportFontError when a PDF cannot be made here."""
    _weasyprint_html()
    find_cjk_font()


def write_pdf(report: Report, path: Path, *, chart_images: dict[str, bytes] | None = None) -> Path:
    """Write the report as an A4 PDF at `path`; `chart_images` are PNGs by chart key
    (rendered here when not given)."""
    html_class = _weasyprint_html()
    find_cjk_font()  # ReportFontError rather than a PDF of empty boxes
    images = render_charts(report) if chart_images is None else chart_images
    document = render_html(report, standalone=True, chart_images=images)
    try:
        # The document title (PDF metadata) comes from the HTML <title>.
        html_class(string=document, base_url=str(path.parent)).write_pdf(str(path))
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise ReportRenderError(f"无法写出 PDF {path}：{exc}") from exc
    return path
