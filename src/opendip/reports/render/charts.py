"""Report charts (`opendip.reports.model.Chart`) drawn with matplotlib into PNG or SVG.

Matplotlib is used through its object API (``matplotlib.figure.Figure`` saved by the Agg
canvas); pyplot is never imported, so no global backend or figure registry is touched and
rendering works headless. rcParams are set per chart inside ``rc_context`` under a lock
(rcParams are process-global; the web platform renders from several threads).

Chinese text needs a CJK font: "Noto Sans CJK SC" (or its TC/JP/HK/KR variants, or
WenQuanYi); without one `ReportFontError` is raised rather than drawing empty boxes.

Data conventions (values may be int, Decimal, float or numeric strings; converted to float
only for plotting):

- ``line``: x are category labels (e.g. "2026-01") in order of first appearance across
  series; one line per series; a series without a point for a category has a gap.
- ``bar``: x are category labels; one bar colour per series, grouped side by side.
- ``histogram``: **pre-binned**. Each point is (bin label, count), e.g. ("0.9–1.0", 12), in
  bin order; bins are drawn as contiguous bars. Binning belongs to the builder, which
  counts in the engine over all cases (see `opendip.reports.hospital.build._histogram`).
- ``scatter``: numeric x and y; one colour per series, with a legend.
- ``pie``: (label, value) with values ≥ 0; one pie per series; the legend gives each
  slice's share (computed exactly, 1 decimal).
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Literal

import matplotlib
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from opendip.reports.model import Chart, Report
from opendip.reports.render.errors import ReportFontError, ReportRenderError
from opendip.reports.render.fmt import to_decimal

#: CJK font families looked for, in order of preference.
CJK_FONT_FAMILIES: tuple[str, ...] = (
    "Noto Sans CJK SC",
    "Noto Sans CJK TC",
    "Noto Sans CJK JP",
    "Noto Sans CJK HK",
    "Noto Sans CJK KR",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
)
FONT_ERROR = "缺少中文字体（Noto Sans CJK）：请运行 scripts/report-deps.sh 安装 fonts-noto-cjk"

#: Figure size in inches and resolution: 1080 × 540 px, fits an A4 text width at ~160 dpi.
FIGSIZE = (7.2, 3.6)
DPI = 150
#: At most this many category labels are written under an axis (the others are thinned).
MAX_TICK_LABELS = 24
PALETTE = (
    "#1f5fa8",
    "#d9822b",
    "#2e8b57",
    "#c23b3b",
    "#7b5ea7",
    "#8c6d31",
    "#d46fa8",
    "#6b6b6b",
    "#a6a632",
    "#2aa7b8",
)
NO_DATA = "无数据"

_LOCK = threading.Lock()


@dataclass(frozen=True)
class CjkFont:
    family: str
    path: Path


def _font_entries() -> list[Any]:
    return list(font_manager.fontManager.ttflist)


def _pick(entries: Iterable[Any]) -> CjkFont | None:
    by_family: dict[str, list[Any]] = {}
    for entry in entries:
        by_family.setdefault(entry.name, []).append(entry)
    for family in CJK_FONT_FAMILIES:
        candidates = by_family.get(family)
        if candidates:
            # Regular upright face first (weight closest to 400).
            best = min(
                candidates,
                key=lambda e: (e.style != "normal", abs(_weight(e.weight) - 400)),
            )
            return CjkFont(family, Path(best.fname))
    return None


def _weight(weight: Any) -> int:
    if isinstance(weight, int):
        return weight
    return font_manager.weight_dict.get(str(weight), 400)


def _rescan() -> None:
    """Register CJK font files installed after matplotlib built its font cache."""
    known = {str(Path(e.fname)) for e in _font_entries()}
    for path in font_manager.findSystemFonts():
        name = Path(path).name.lower()
        if str(Path(path)) in known:
            continue
        if "cjk" in name or "wqy" in name or "wenquanyi" in name:
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue


def find_cjk_font() -> CjkFont:
    """The CJK font charts (and the PDF) use; `ReportFontError` when none is installed."""
    found = _pick(_font_entries())
    if found is None:
        _rescan()
        found = _pick(_font_entries())
    if found is None:
        raise ReportFontError(FONT_ERROR)
    return found


def _rc(font: CjkFont) -> dict[str, Any]:
    return {
        "font.family": [font.family],
        "axes.unicode_minus": False,
        "font.size": 9,
        "axes.titlesize": 11,
        "figure.titlesize": 12,
        "axes.labelsize": 9,
        "legend.fontsize": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.formatter.useoffset": False,
        "svg.fonttype": "path",
        "svg.hashsalt": "opendip",  # deterministic SVG ids
    }


def _num(value: Any) -> float:
    """Plot coordinate of a value (float only here); NaN for missing values."""
    d = to_decimal(value)
    return math.nan if d is None else float(d)


def _tick(value: float, _pos: Any = None) -> str:
    """Axis tick text with thousands separators: 1500000 → "1,500,000", 0.25 → "0.25"."""
    if math.isclose(value, round(value), abs_tol=1e-9):
        return f"{round(value):,}"
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _width(text: str) -> int:
    """Display width: CJK (wide) characters count 2."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _categories(chart: Chart) -> list[str]:
    seen: dict[str, None] = {}
    for series in chart.series:
        for x, _ in series.points:
            seen.setdefault(str(x), None)
    return list(seen)


def _category_axis(ax: Axes, labels: Sequence[str]) -> None:
    n = len(labels)
    step = max(1, math.ceil(n / MAX_TICK_LABELS))
    positions = list(range(0, n, step))
    shown = [labels[i] for i in positions]
    ax.set_xticks(positions, shown)
    if sum(_width(s) for s in shown) > 70 or any(_width(s) > 14 for s in shown):
        for label in ax.get_xticklabels():
            label.set_rotation(40)
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
    ax.set_xlim(-0.6, n - 0.4)


def _value_axis(ax: Axes, values: Iterable[float]) -> None:
    values = [v for v in values if not math.isnan(v)]
    ax.yaxis.set_major_formatter(FuncFormatter(_tick))
    if values and all(v == int(v) for v in values):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.25 ticks
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    if any(v < 0 for v in values):
        ax.axhline(0, color="#444444", linewidth=0.8)


def _by_category(points: Sequence[tuple[Any, Any]]) -> dict[str, float]:
    return {str(x): _num(y) for x, y in points}


def _line(ax: Axes, chart: Chart) -> None:
    cats = _categories(chart)
    values: list[float] = []
    for i, series in enumerate(chart.series):
        by_cat = _by_category(series.points)
        ys = [by_cat.get(c, math.nan) for c in cats]
        values += ys
        ax.plot(
            range(len(cats)),
            ys,
            marker="o",
            markersize=3.5,
            linewidth=1.6,
            color=PALETTE[i % len(PALETTE)],
            label=series.name,
        )
    _category_axis(ax, cats)
    _value_axis(ax, values)


def _bar(ax: Axes, chart: Chart) -> None:
    cats = _categories(chart)
    k = len(chart.series)
    width = 0.8 / k
    values: list[float] = []
    for i, series in enumerate(chart.series):
        by_cat = _by_category(series.points)
        ys = [by_cat.get(c, math.nan) for c in cats]
        values += ys
        xs = [j - 0.4 + width * (i + 0.5) for j in range(len(cats))]
        ax.bar(xs, ys, width=width, color=PALETTE[i % len(PALETTE)], label=series.name)
    _category_axis(ax, cats)
    _value_axis(ax, values)


def _histogram(ax: Axes, chart: Chart) -> None:
    cats = _categories(chart)
    values: list[float] = []
    for i, series in enumerate(chart.series):
        by_cat = _by_category(series.points)
        ys = [by_cat.get(c, math.nan) for c in cats]
        values += ys
        ax.bar(
            range(len(cats)),
            ys,
            width=1.0,
            color=PALETTE[i % len(PALETTE)],
            edgecolor="white",
            linewidth=0.5,
            alpha=1.0 if len(chart.series) == 1 else 0.6,
            label=series.name,
        )
    _category_axis(ax, cats)
    _value_axis(ax, values)


def _scatter(ax: Axes, chart: Chart) -> None:
    values: list[float] = []
    for i, series in enumerate(chart.series):
        xs = [_num(x) for x, _ in series.points]
        ys = [_num(y) for _, y in series.points]
        if any(math.isnan(x) for x in xs):
            raise ReportRenderError(f"散点图「{chart.title}」的横坐标须为数值")
        values += ys
        ax.scatter(xs, ys, s=14, alpha=0.8, color=PALETTE[i % len(PALETTE)], label=series.name)
    ax.xaxis.set_major_formatter(FuncFormatter(_tick))
    ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
    _value_axis(ax, values)


def _shares(values: Sequence[Decimal]) -> list[str]:
    total = sum(values, Decimal(0))
    return [
        f"{(v / total * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%" for v in values
    ]


def _pie(fig: MplFigure, chart: Chart) -> None:
    series_list = [s for s in chart.series if s.points]
    axes = fig.subplots(1, len(series_list), squeeze=False)[0]
    for ax, series in zip(axes, series_list, strict=True):
        labels = [str(x) for x, _ in series.points]
        values = [to_decimal(y) or Decimal(0) for _, y in series.points]
        if any(v < 0 for v in values):
            raise ReportRenderError(f"饼图「{chart.title}」的数值不能为负")
        if sum(values, Decimal(0)) == 0:
            _no_data(ax)
            continue
        colors = [PALETTE[j % len(PALETTE)] for j in range(len(values))]
        wedges, *_ = ax.pie(
            [float(v) for v in values],
            colors=colors,
            startangle=90,
            counterclock=False,
            wedgeprops={"edgecolor": "white", "linewidth": 0.8},
        )
        ax.set_aspect("equal")
        ax.legend(
            wedges,
            [f"{lab}  {share}" for lab, share in zip(labels, _shares(values), strict=True)],
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            frameon=False,
        )
        if len(series_list) > 1 and series.name:
            ax.set_title(series.name)


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, NO_DATA, ha="center", va="center", transform=ax.transAxes, color="#888888")
    ax.set_xticks([])
    ax.set_yticks([])


_DRAW = {"line": _line, "bar": _bar, "histogram": _histogram, "scatter": _scatter}


def _draw(chart: Chart) -> MplFigure:
    fig = MplFigure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    fig.suptitle(chart.title)
    has_points = any(s.points for s in chart.series)
    if chart.kind == "pie" and has_points:
        _pie(fig, chart)
        return fig
    ax = fig.subplots()
    if not has_points:
        _no_data(ax)
        return fig
    draw = _DRAW.get(chart.kind)
    if draw is None:
        raise ReportRenderError(f"不支持的图表类型：{chart.kind}（图表「{chart.title}」）")
    draw(ax, chart)
    if chart.x_label:
        ax.set_xlabel(chart.x_label)
    if chart.y_label:
        ax.set_ylabel(chart.y_label)
    named = [s for s in chart.series if s.name]
    if len(chart.series) > 1 or (chart.kind in ("line", "scatter") and named):
        ax.legend(frameon=False)
    return fig


def render_chart(chart: Chart, fmt: Literal["png", "svg"] = "png") -> bytes:
    """One chart as PNG (or SVG) bytes; `ReportFontError` without a CJK font."""
    font = find_cjk_font()
    buf = io.BytesIO()
    with _LOCK, matplotlib.rc_context(_rc(font)):
        fig = _draw(chart)
        fig.savefig(buf, format=fmt, dpi=DPI, facecolor="white", metadata=_metadata(fmt))
    return buf.getvalue()


def _metadata(fmt: str) -> dict[str, Any]:
    # No creation date / software version: the same chart gives the same bytes.
    return {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}


def render_chart_png(chart: Chart) -> bytes:
    return render_chart(chart, "png")


def render_chart_svg(chart: Chart) -> str:
    return render_chart(chart, "svg").decode("utf-8")


def render_charts(report: Report) -> dict[str, bytes]:
    """PNG of every chart of the report by chart key (keys must be unique)."""
    images: dict[str, bytes] = {}
    for section in report.sections:
        for chart in section.charts:
            if chart.key in images:
                raise ReportRenderError(f"图表键重复：{chart.key}")
            images[chart.key] = render_chart_png(chart)
    return images
