"""A report as HTML (Jinja2 template ``reports/templates/report.html``, autoescaped).

``render_html(report)`` gives a whole document with embedded CSS, including the A4 print
rules WeasyPrint uses for the PDF (page numbers "第 N 页", a section with a table of more
than 8 columns on landscape pages, table headers repeated on each page). ``standalone=False`` gives only the
``<div class="report">`` fragment for a web page, which styles it itself (class names:
report, cover, section, figures/figure, data-table, num, neg, chart, provenance).

Charts are embedded as ``<img src="data:image/png;base64,…" alt="<title>"
data-chart-key="<key>">``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from opendip.reports.model import Chart, Figure, Report, Section, Table, Value
from opendip.reports.render.charts import render_charts
from opendip.reports.render.fmt import (
    fmt_change,
    fmt_value,
    fmt_wan,
    kind_label,
    provenance_label,
    to_decimal,
    unit_suffix,
)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
#: Tables with more columns than this are printed on landscape pages.
WIDE_TABLE_COLUMNS = 8
#: Text columns whose every cell is at most this long are kept on one line.
SHORT_TEXT = 16
#: Money figures at or above this many fen (100 万元) also show their 万元 value.
WAN_FROM_FEN = 100_000_000

_ENV = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)

_CN_DIGITS = "零一二三四五六七八九"


def cn_number(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 21 → 二十一 (for n < 100; larger n as digits)."""
    if not 0 < n < 100:
        return str(n)
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _CN_DIGITS[tens] + "十")
    return head + (_CN_DIGITS[ones] if ones else "")


def _negative(value: Value) -> bool:
    d = to_decimal(value)
    return d is not None and d < 0


@dataclass
class _FigureView:
    key: str
    label: str
    value: str
    suffix: str
    negative: bool
    wan: str
    previous: str
    change: str
    note: str


@dataclass
class _Cell:
    text: str
    numeric: bool
    negative: bool
    #: A short text column (codes, names, labels) is not wrapped: long free text (evidence,
    #: explanations) takes the width that is left instead of squeezing it to one character.
    nowrap: bool = False


@dataclass
class _TableView:
    key: str
    title: str
    headers: list[tuple[str, bool]]
    rows: list[list[_Cell]]
    note: str
    wide: bool
    many: bool
    #: Indices of 合计 rows (a row dict with a true "is_total"), shown in bold.
    totals: frozenset[int] = frozenset()


@dataclass
class _ChartView:
    key: str
    title: str
    note: str
    src: str


@dataclass
class _SectionView:
    key: str
    number: str
    title: str
    paragraphs: list[str]
    wide: bool = False
    figures: list[_FigureView] = field(default_factory=list)
    tables: list[_TableView] = field(default_factory=list)
    charts: list[_ChartView] = field(default_factory=list)


def _figure(f: Figure) -> _FigureView:
    d = to_decimal(f.value)
    wan = fmt_wan(f.value) if f.unit == "fen" and d is not None and abs(d) >= WAN_FROM_FEN else ""
    has_previous = f.previous is not None
    return _FigureView(
        key=f.key,
        label=f.label,
        value=fmt_value(f.value, f.unit),
        suffix=unit_suffix(f.unit) if f.value is not None else "",
        negative=_negative(f.value) and f.unit != "text",
        wan=wan,
        previous=fmt_value(f.previous, f.unit) if has_previous else "",
        change=fmt_change(f.value, f.previous, f.unit) if has_previous else "",
        note=f.note,
    )


def _table(t: Table) -> _TableView:
    headers = []
    for c in t.columns:
        suffix = unit_suffix(c.unit)
        headers.append((f"{c.label}（{suffix}）" if suffix else c.label, c.unit != "text"))
    rows = [
        [
            _Cell(
                fmt_value(r.get(c.name), c.unit),
                c.unit != "text",
                c.unit != "text" and _negative(r.get(c.name)),
            )
            for c in t.columns
        ]
        for r in t.rows
    ]
    for j, c in enumerate(t.columns):
        if c.unit == "text" and all(len(row[j].text) <= SHORT_TEXT for row in rows):
            for row in rows:
                row[j].nowrap = True
    n = len(t.columns)
    totals = frozenset(i for i, r in enumerate(t.rows) if r.get("is_total"))
    return _TableView(t.key, t.title, headers, rows, t.note, n > WIDE_TABLE_COLUMNS, n > 12, totals)


def _chart(c: Chart, images: dict[str, bytes]) -> _ChartView | None:
    png = images.get(c.key)
    if png is None:
        return None
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return _ChartView(c.key, c.title, c.note, src)


def _section(i: int, s: Section, images: dict[str, bytes]) -> _SectionView:
    charts = [v for c in s.charts if (v := _chart(c, images)) is not None]
    tables = [_table(t) for t in s.tables]
    return _SectionView(
        key=s.key,
        number=cn_number(i),
        title=s.title,
        paragraphs=list(s.paragraphs),
        wide=any(t.wide for t in tables),
        figures=[_figure(f) for f in s.figures],
        tables=tables,
        charts=charts,
    )


def render_html(
    report: Report, *, standalone: bool = True, chart_images: dict[str, bytes] | None = None
) -> str:
    """The report as HTML: a whole document (standalone) or the ``<div class="report">``
    fragment. `chart_images` are PNGs by chart key (rendered here when not given)."""
    images = render_charts(report) if chart_images is None else chart_images
    sections = [_section(i, s, images) for i, s in enumerate(report.sections, start=1)]
    return _ENV.get_template("report.html").render(
        standalone=standalone,
        title=report.title,
        kind=report.kind,
        kind_label=kind_label(report.kind),
        region=report.region,
        period=report.period,
        sections=sections,
        # The cover shares the first section's page and the provenance footer the last's
        # (portrait or landscape), so neither leaves a page of its own.
        cover_wide=bool(sections) and sections[0].wide,
        footer_wide=bool(sections) and sections[-1].wide,
        provenance=[(provenance_label(k), str(v)) for k, v in report.provenance.items()],
    )
