"""A report as an Excel workbook (xlsxwriter).

Sheets: "封面" (title, region, period, report kind, provenance, links to the sections), then
one sheet per section (its title cut to Excel's 31 characters, without []:*?/\\, unique):
the paragraphs, a figures block (指标, 数值, 上期/同期, 变化, 说明), each table, then the
charts as PNG images.

Cells hold numbers, not text: money as 元 (exact Decimal fen ÷ 100, converted to float only
at the cell write) formatted "#,##0.00"; ratios as fractions formatted "0.00%"; counts
"#,##0"; scores/coefficients with their own decimal places. Each non-empty table is an
Excel table (bold header, filter buttons; Excel shows its header in place of the column
letters while scrolling through it); a section with a single table near the top also gets
frozen panes under that header.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from opendip.contract.cells import EXCEL_OPTIONS
from opendip.reports.model import Figure, Report, Section, Table, Unit, Value
from opendip.reports.render.charts import FIGSIZE, render_charts
from opendip.reports.render.fmt import (
    decimal_places,
    fmt_change,
    fmt_value,
    kind_label,
    provenance_label,
    to_decimal,
    unit_suffix,
)

COVER = "封面"
SHEET_NAME_MAX = 31
FIGURE_HEADERS = ("指标", "数值", "上期/同期", "变化", "说明")
#: Freeze the header of a section's only table when it starts within this many rows.
FREEZE_MAX_ROW = 12
MIN_WIDTH, MAX_WIDTH = 8, 60
#: Default row height in pixels (15 pt) and chart image height in rows.
ROW_PX = 20
CHART_ROWS = math.ceil(FIGSIZE[1] * 96 / ROW_PX) + 2
PARAGRAPH_COLUMNS = 8

_INVALID_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def _display_width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def sheet_names(titles: list[str]) -> list[str]:
    """Valid, unique (case-insensitively, and not "封面") sheet names for section titles."""
    used = {COVER.lower(), "history"}  # "History" is reserved by Excel
    names = []
    for i, title in enumerate(titles, start=1):
        base = _INVALID_SHEET_CHARS.sub("", title).strip().strip("'").strip()
        base = base[:SHEET_NAME_MAX] or f"第{i}节"
        name, n = base, 1
        while name.lower() in used:
            n += 1
            suffix = f"({n})"
            name = base[: SHEET_NAME_MAX - len(suffix)] + suffix
        used.add(name.lower())
        names.append(name)
    return names


class _Formats:
    """xlsxwriter formats, created once per workbook."""

    def __init__(self, wb: Workbook) -> None:
        self.wb = wb
        self._cache: dict[str, Format] = {}
        self.title = wb.add_format({"bold": True, "font_size": 18})
        self.h1 = wb.add_format({"bold": True, "font_size": 14})
        self.h2 = wb.add_format({"bold": True, "font_size": 11})
        self.bold = wb.add_format({"bold": True})
        self.header = wb.add_format(
            {"bold": True, "bg_color": "#E8EEF6", "border": 1, "text_wrap": True, "valign": "top"}
        )
        self.text = wb.add_format({"valign": "top"})
        self.wrap = wb.add_format({"text_wrap": True, "valign": "top"})
        self.note = wb.add_format({"italic": True, "font_color": "#555555"})
        self.link = wb.add_format({"font_color": "blue", "underline": 1})

    def number(self, num_format: str) -> Format:
        if num_format not in self._cache:
            self._cache[num_format] = self.wb.add_format({"num_format": num_format})
        return self._cache[num_format]


def num_format(value: Value, unit: Unit) -> str | None:
    """Excel number format of a value, None when it is written as text."""
    d = to_decimal(value)
    if unit == "text" or d is None:
        return None
    if unit == "fen":
        return "#,##0.00"
    if unit == "ratio":
        return "0.00%"
    places = 0 if unit in ("count", "days") and d == d.to_integral_value() else decimal_places(d)
    return "#,##0" + ("." + "0" * places if places else "")


def cell_number(value: Value, unit: Unit) -> float | None:
    """The number an Excel cell holds: 元 for money, the fraction for ratios."""
    d = to_decimal(value)
    if d is None or unit == "text":
        return None
    if unit == "fen":
        d = d / 100
    return float(d)  # the only float conversion: at the cell write


class _Sheet:
    """Writes one worksheet top to bottom, tracking column widths."""

    def __init__(self, ws: Worksheet, fmts: _Formats) -> None:
        self.ws = ws
        self.f = fmts
        self.row = 0
        self.widths: dict[int, int] = {}

    def track(self, col: int, text: str) -> None:
        self.widths[col] = max(self.widths.get(col, 0), _display_width(text))

    def text(self, col: int, text: str, fmt: Format | None = None, *, track: bool = True) -> None:
        self.ws.write_string(self.row, col, text, fmt)
        if track:
            self.track(col, text)

    def value(self, col: int, value: Value, unit: Unit) -> None:
        number = cell_number(value, unit)
        if value is None:
            self.ws.write_blank(self.row, col, None)
        elif number is None:
            self.text(col, str(value), self.f.text)
        else:
            self.ws.write_number(self.row, col, number, self.f.number(num_format(value, unit)))
            self.track(col, fmt_value(value, unit))

    def finish(self) -> None:
        for col, width in self.widths.items():
            self.ws.set_column(col, col, min(max(width + 2, MIN_WIDTH), MAX_WIDTH))
        self.ws.set_paper(9)  # A4
        self.ws.fit_to_pages(1, 0)


def _cover(wb: Workbook, fmts: _Formats, report: Report, names: list[str]) -> None:
    s = _Sheet(wb.add_worksheet(COVER), fmts)
    s.text(0, report.title, fmts.title, track=False)
    s.ws.set_row(0, 28)
    s.row = 2
    for label, value in (
        ("报告类型", kind_label(report.kind)),
        ("地区", report.region),
        ("期间", report.period),
    ):
        s.text(0, label, fmts.bold)
        s.text(1, value)
        s.row += 1
    s.row += 1
    s.text(0, "目录", fmts.h2)
    s.row += 1
    for section, name in zip(report.sections, names, strict=True):
        s.ws.write_url(s.row, 0, f"internal:'{name}'!A1", fmts.link, section.title)
        s.track(0, section.title)
        s.row += 1
    if report.provenance:
        s.row += 1
        s.text(0, "数据来源", fmts.h2)
        s.row += 1
        for key, value in report.provenance.items():
            s.text(0, provenance_label(key), fmts.bold)
            s.text(1, str(value))
            s.row += 1
    s.finish()


def _paragraphs(s: _Sheet, paragraphs: list[str]) -> None:
    # Merged across the first columns with wrapping; heights estimated from the text width
    # (Excel does not fit row heights to merged cells), assuming the final column widths.
    for text in paragraphs:
        s.ws.merge_range(s.row, 0, s.row, PARAGRAPH_COLUMNS - 1, text, s.f.wrap)
        s.row += 1
    s.row += 1 if paragraphs else 0


def _paragraph_heights(s: _Sheet, start: int, paragraphs: list[str]) -> None:
    width = sum(
        min(max(s.widths.get(c, 0) + 2, MIN_WIDTH), MAX_WIDTH) for c in range(PARAGRAPH_COLUMNS)
    )
    for i, text in enumerate(paragraphs):
        lines = max(1, math.ceil(_display_width(text) * 1.1 / max(width, 1)))
        s.ws.set_row(start + i, 15 * lines + 2)


def _figures(s: _Sheet, figures: list[Figure]) -> None:
    s.text(0, "主要指标", s.f.h2, track=False)
    s.row += 1
    for col, head in enumerate(FIGURE_HEADERS):
        s.text(col, head, s.f.header)
    s.row += 1
    for fig in figures:
        suffix = unit_suffix(fig.unit)
        s.text(0, f"{fig.label}（{suffix}）" if suffix else fig.label)
        s.value(1, fig.value, fig.unit)
        s.value(2, fig.previous, fig.unit)
        change = fmt_change(fig.value, fig.previous, fig.unit) if fig.previous is not None else ""
        if change:
            s.text(3, change)
        if fig.note:
            s.text(4, fig.note, s.f.text)
        s.row += 1
    s.row += 1


def _headers(table: Table) -> list[str]:
    seen: set[str] = set()
    out = []
    for col in table.columns:
        suffix = unit_suffix(col.unit)
        head = f"{col.label}（{suffix}）" if suffix else (col.label or col.name)
        base, n = head, 1
        while head in seen:  # Excel table headers must be unique
            n += 1
            head = f"{base}({n})"
        seen.add(head)
        out.append(head)
    return out


def _table(s: _Sheet, table: Table, *, freeze: bool) -> None:
    s.text(0, table.title, s.f.h2, track=False)
    s.row += 1
    headers = _headers(table)
    header_row = s.row
    for col, head in enumerate(headers):
        s.text(col, head, s.f.header)
    if freeze:
        s.ws.freeze_panes(header_row + 1, 0)
    s.row += 1
    if not table.rows:
        s.text(0, "（无数据）", s.f.note, track=False)
        s.row += 1
    for r in table.rows:
        for col, spec in enumerate(table.columns):
            s.value(col, r.get(spec.name), spec.unit)
        s.row += 1
    if table.rows:
        s.ws.add_table(
            header_row,
            0,
            s.row - 1,
            len(headers) - 1,
            {
                "style": "Table Style Light 1",
                "columns": [{"header": h, "header_format": s.f.header} for h in headers],
            },
        )
    if table.note:
        s.text(0, table.note, s.f.note, track=False)
        s.row += 1
    s.row += 1


def _section(
    wb: Workbook, fmts: _Formats, section: Section, name: str, images: dict[str, bytes]
) -> None:
    s = _Sheet(wb.add_worksheet(name), fmts)
    s.text(0, section.title, fmts.h1, track=False)
    s.ws.set_row(0, 22)
    s.row = 2
    paragraph_start = s.row
    _paragraphs(s, section.paragraphs)
    if section.figures:
        _figures(s, section.figures)
    for table in section.tables:
        freeze = len(section.tables) == 1 and s.row + 1 <= FREEZE_MAX_ROW
        _table(s, table, freeze=freeze)
    for chart in section.charts:
        png = images.get(chart.key)
        if png is None:
            continue
        s.ws.insert_image(
            s.row,
            0,
            f"{chart.key}.png",
            {"image_data": io.BytesIO(png), "object_position": 1, "description": chart.title},
        )
        s.row += CHART_ROWS
        if chart.note:
            s.text(0, chart.note, fmts.note, track=False)
            s.row += 2
    _paragraph_heights(s, paragraph_start, section.paragraphs)
    s.finish()


def write_xlsx(report: Report, path: Path, *, chart_images: dict[str, bytes] | None = None) -> Path:
    """Write the report as an .xlsx workbook at `path`; `chart_images` are PNGs by chart key
    (rendered here when not given)."""
    images = render_charts(report) if chart_images is None else chart_images
    names = sheet_names([s.title for s in report.sections])
    wb = xlsxwriter.Workbook(str(path), EXCEL_OPTIONS)
    wb.set_properties({"title": report.title, "subject": kind_label(report.kind)})
    fmts = _Formats(wb)
    try:
        _cover(wb, fmts, report, names)
        for section, name in zip(report.sections, names, strict=True):
            _section(wb, fmts, section, name, images)
    except BaseException:
        wb.close()
        path.unlink(missing_ok=True)  # no half-written workbook
        raise
    wb.close()
    return path
