"""Charts (matplotlib) with Chinese text, the data conventions, and the missing-dependency
errors of the renderers; plus a real 院端分析 report through every renderer."""

from __future__ import annotations

import io
import math
import sys
import warnings
from decimal import Decimal
from pathlib import Path

import matplotlib
import openpyxl
import pytest
from PIL import Image

from opendip.reports.hospital import build_hospital_report
from opendip.reports.model import Chart, Report, Section, Series
from opendip.reports.render import (
    ReportFontError,
    ReportRenderError,
    render_chart_png,
    render_chart_svg,
    write_report,
)
from opendip.reports.render import charts as charts_mod
from opendip.reports.render.pdf import write_pdf
from tests.reports.test_hospital_handmade import make_run
from tests.reports.test_render_report import sample_report

FONT_MESSAGE = "缺少中文字体（Noto Sans CJK）：请运行 scripts/report-deps.sh 安装 fonts-noto-cjk"


def _charts() -> list[Chart]:
    return [c for s in sample_report().sections for c in s.charts]


def test_every_kind_renders_without_missing_glyphs() -> None:
    kinds = set()
    with warnings.catch_warnings():
        # matplotlib warns "Glyph … missing from font(s) …" for a character it cannot draw
        warnings.simplefilter("error")
        for chart in _charts():
            png = render_chart_png(chart)
            kinds.add(chart.kind)
            image = Image.open(io.BytesIO(png)).convert("L")
            assert image.size == (1080, 540)
            histogram = image.histogram()
            assert sum(histogram[:200]) / sum(histogram) > 0.01  # something is drawn
    assert kinds == {"line", "bar", "scatter", "histogram", "pie"}


def test_missing_glyph_is_detected() -> None:
    # The check above is meaningful: a character outside the CJK font does warn.
    chart = Chart("x", "医院 \U0001f3e5", "bar", [Series("a", [("甲", 1)])])
    with warnings.catch_warnings(), pytest.raises(UserWarning, match="missing from font"):
        warnings.simplefilter("error")
        render_chart_png(chart)


def test_svg() -> None:
    svg = render_chart_svg(_charts()[0])
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg


def _drawn(chart: Chart):
    with matplotlib.rc_context(charts_mod._rc(charts_mod.find_cjk_font())):
        return charts_mod._draw(chart)


def test_histogram_is_pre_binned() -> None:
    chart = Chart(
        "h",
        "费用比分布",
        "histogram",
        [Series("病例数", [("0.0–0.5", 3), ("0.5–1.0", 7), ("≥1.0", 0)])],
    )
    (ax,) = _drawn(chart).axes
    assert [p.get_height() for p in ax.patches] == [3, 7, 0]
    assert [p.get_width() for p in ax.patches] == [1.0, 1.0, 1.0]  # contiguous bins
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.0–0.5", "0.5–1.0", "≥1.0"]


def test_bar_line_pie_values() -> None:
    bar = Chart("b", "结余", "bar", [Series("结余", [("外科", Decimal("-51000.5")), ("内科", 7)])])
    (ax,) = _drawn(bar).axes
    assert [p.get_height() for p in ax.patches] == [-51000.5, 7.0]
    line = Chart(
        "l",
        "趋势",
        "line",
        [Series("甲", [("1月", 1), ("2月", 2)]), Series("乙", [("2月", 5), ("3月", 6)])],
    )
    (ax,) = _drawn(line).axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1月", "2月", "3月"]
    second = ax.get_lines()[1].get_ydata()
    assert math.isnan(second[0]) and list(second[1:]) == [5, 6]  # no point: a gap
    pie = Chart("p", "构成", "pie", [Series("", [("职工", 300), ("居民", Decimal("200.5"))])])
    (ax,) = _drawn(pie).axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["职工  59.9%", "居民  40.1%"]


def test_bad_chart_data() -> None:
    with pytest.raises(ReportRenderError, match="饼图「构成」的数值不能为负"):
        render_chart_png(Chart("p", "构成", "pie", [Series("", [("甲", -1), ("乙", 2)])]))
    with pytest.raises(ReportRenderError, match="横坐标须为数值"):
        render_chart_png(Chart("s", "散点", "scatter", [Series("a", [("甲", 1)])]))
    empty = render_chart_png(Chart("e", "无数据的图", "line", [Series("a", [])]))
    assert empty.startswith(b"\x89PNG")
    twice = Section("s", "节", charts=[_charts()[0], _charts()[0]])
    with pytest.raises(ReportRenderError, match="图表键重复"):
        write_report(Report("annual", "2026", "标题", "地区", [twice]), Path("/nonexistent"), "x")


def test_no_cjk_font(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(charts_mod, "CJK_FONT_FAMILIES", ("没有这种字体",))
    with pytest.raises(ReportFontError) as excinfo:
        render_chart_png(_charts()[0])
    assert str(excinfo.value) == FONT_MESSAGE
    report = sample_report()
    with pytest.raises(ReportFontError):
        write_report(report, tmp_path / "out", "x")
    assert not (tmp_path / "out").exists()  # nothing half-written
    no_charts = Report("annual", "2026", "标题", "地区", [Section("s", "节", ["正文"])])
    with pytest.raises(ReportFontError):  # a PDF without charts still needs the font
        write_pdf(no_charts, tmp_path / "x.pdf")


def test_no_weasyprint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import weasyprint → ImportError
    with pytest.raises(ReportRenderError, match=r"scripts/report-deps\.sh"):
        write_pdf(sample_report(), tmp_path / "x.pdf")
    with pytest.raises(ReportRenderError, match="无法生成 PDF"):
        write_report(sample_report(), tmp_path / "out", "x")
    assert not (tmp_path / "out").exists()
    written = write_report(sample_report(), tmp_path / "out", "x", formats=("json", "html"))
    assert sorted(written) == ["html", "json"]


def test_real_hospital_report(tmp_path: Path) -> None:
    report = build_hospital_report(make_run(tmp_path / "run"), "HA")
    written = write_report(report, tmp_path / "out", "院端分析_HA_2026")
    assert sorted(written) == ["html", "json", "pdf", "xlsx"]
    wb = openpyxl.load_workbook(written["xlsx"])
    assert wb.sheetnames[0] == "封面" and wb.sheetnames[1:] == [s.title for s in report.sections]
    ws = wb["盈亏概况"]
    cell = next(c for row in ws.iter_rows() for c in row if c.value == "医疗总费用（元）")
    assert cell.offset(column=1).value == 298_000.00  # 29,800,000 fen
    assert len(wb["科室盈亏"]._images) == 1 and len(wb["临界病例"]._images) == 1
    html = written["html"].read_text(encoding="utf-8")
    assert 'data-chart-key="hospital.ratio_histogram"' in html
    assert "298,000.00" in html and "−28.19%" in html
    assert written["pdf"].read_bytes().startswith(b"%PDF")
