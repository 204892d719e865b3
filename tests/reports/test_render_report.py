"""A hand-made report rendered with write_report: JSON, Excel, HTML and PDF, checked by
reading the files back (openpyxl, pypdfium2, fontTools).

Set OPENDIP_TEST_ARTIFACTS=1 to also copy the rendered PDF pages (PNG) into
test-artifacts/reports/ under the repository root.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw
import pytest
from fontTools.ttLib import TTCollection, TTFont
from matplotlib import font_manager

from opendip.reports.model import (
    Chart,
    ColumnSpec,
    Figure,
    Report,
    Section,
    Series,
    Table,
)
from opendip.reports.render import ReportRenderError, render_html, write_report
from opendip.reports.render.excel import sheet_names

ROOT = Path(__file__).resolve().parents[2]
TITLE = "拉萨市 DIP 年度运行报告（2026 年）"
SCRIPT = "<script>alert(1)</script>"
LONG_ROWS = 90  # enough for the doctors table to break across PDF pages


def sample_report() -> Report:
    """A small report with every chart kind, money/ratio/count columns and Chinese text
    (醫, 藏, 拉萨, full-width punctuation)."""
    fund = Section(
        "fund",
        "基金运行概况",
        [
            "本年度统筹基金支出 3,055,000.00 元，较上年增长 13.15%；西藏自治区藏醫院、"
            "拉萨市人民医院病例数居前。",
            "说明：「点值」按《拉萨市 DIP 实施细则》计算！数据截至 2026 年 12 月 31 日？",
        ],
        [
            Figure("fund.total_fen", "统筹基金支出", 305_500_000, "fen", previous=270_000_000),
            Figure(
                "fund.use_rate",
                "基金使用率",
                Decimal("0.933549"),
                "ratio",
                previous=Decimal("0.9215"),
            ),
            Figure("fund.cases", "结算病例数", 12_345, "count", previous=11_000),
            Figure(
                "fund.point_value", "结算点值", Decimal("0.987654"), "point_value", note="职工医保"
            ),
            Figure("fund.cmi", "CMI", Decimal("1.0857"), "coefficient"),
            Figure("fund.balance_fen", "结余(+)/亏损(−)", -8_400_000, "fen"),
            Figure("fund.missing", "异地就医病例", None, "count", note="无数据"),
        ],
        [
            Table(
                "fund.hospitals",
                "各医疗机构结算情况",
                [
                    ColumnSpec("name", "医疗机构"),
                    ColumnSpec("cases", "病例数", "count"),
                    ColumnSpec("paid_fen", "统筹支付", "fen"),
                    ColumnSpec("balance_rate", "结余率", "ratio"),
                ],
                [
                    {
                        "name": "西藏自治区藏醫院",
                        "cases": 5_321,
                        "paid_fen": 123_456_789,
                        "balance_rate": Decimal("-0.0513"),
                    },
                    {
                        "name": "拉萨市人民医院",
                        "cases": 4_000,
                        "paid_fen": 98_765_400,
                        "balance_rate": Decimal("0.1234"),
                    },
                    {"name": SCRIPT, "cases": 24, "paid_fen": None, "balance_rate": None},
                ],
                note="注：按统筹支付降序。",
            )
        ],
        [
            Chart(
                "fund.monthly",
                "月度统筹支出（万元）",
                "line",
                [
                    Series(
                        "2026 年", [(f"2026-{m:02d}", Decimal(200 + 7 * m)) for m in range(1, 13)]
                    ),
                    Series("2025 年", [(f"2026-{m:02d}", 190 + 5 * m) for m in range(1, 13)]),
                ],
                x_label="月份",
                y_label="万元",
            ),
            Chart(
                "fund.by_level",
                "各级医院结余（元）",
                "bar",
                [Series("结余", [("三级", Decimal("-51000.5")), ("二级", 33000), ("一级", 1200)])],
                x_label="医院级别",
                y_label="结余（元）",
            ),
        ],
    )
    analysis = Section(
        "analysis",
        "病种与费用分析",
        ["费用比 = 医疗总费用 ÷ 参照均值；藏医特色病种单列。"],
        [],
        [],
        [
            Chart(
                "analysis.scatter",
                "CMI 与结余率",
                "scatter",
                [
                    Series("三级", [(Decimal("1.21"), Decimal("-0.05")), (Decimal("1.4"), 0.02)]),
                    Series("二级", [(Decimal("0.83"), Decimal("0.11")), (0.9, Decimal("0.07"))]),
                ],
                x_label="CMI",
                y_label="结余率",
            ),
            Chart(
                "analysis.ratio_histogram",
                "费用比分布（病例数）",
                "histogram",
                [
                    Series(
                        "病例数",
                        [(f"{i / 10:.1f}–{(i + 1) / 10:.1f}", i * (30 - i)) for i in range(30)]
                        + [("≥3.0", 4)],
                    )
                ],
                x_label="费用比",
                y_label="病例数",
            ),
            Chart(
                "analysis.pools",
                "基金支出构成",
                "pie",
                [Series("", [("职工医保", 300), ("居民医保", Decimal("200.5")), ("异地", 12)])],
            ),
        ],
    )
    doctors = Section(
        "doctors",
        "医师明细",
        tables=[
            Table(
                "doctors.all",
                "医师盈亏",
                [
                    ColumnSpec("doctor", "主诊医师"),
                    ColumnSpec("cases", "病例数", "count"),
                    ColumnSpec("balance_fen", "结余", "fen"),
                ],
                [
                    {"doctor": f"医师{i:03d}", "cases": i, "balance_fen": (i - 45) * 10_001}
                    for i in range(1, LONG_ROWS + 1)
                ],
            )
        ],
    )
    return Report(
        "annual",
        "2026",
        TITLE,
        "西藏自治区拉萨市",
        [fund, analysis, doctors],
        {
            "run_dir": "/srv/opendip/runs/2026-annual/settlement",
            "manifest_sha256": "ab" * 32,
            "policy_version": "lhasa.2026.1",
            "code_version": "0.1.0",
        },
    )


@pytest.fixture(scope="module")
def report() -> Report:
    return sample_report()


@pytest.fixture(scope="module")
def written(report: Report, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("render") / "out" / "nested"
    return write_report(report, out, "年度报告_拉萨_2026")


def _all_charts(report: Report) -> list[Chart]:
    return [c for s in report.sections for c in s.charts]


def test_write_report_writes_every_format(written: dict[str, Path], report: Report) -> None:
    assert sorted(written) == ["html", "json", "pdf", "xlsx"]
    for fmt, path in written.items():
        assert path.name == f"年度报告_拉萨_2026.{fmt}"
        assert path.stat().st_size > 0
    data = json.loads(written["json"].read_text(encoding="utf-8"))
    assert data["title"] == TITLE
    assert data["sections"][0]["figures"][1]["value"] == "0.933549"


def test_write_report_rejects_bad_arguments(report: Report, tmp_path: Path) -> None:
    with pytest.raises(ReportRenderError, match="未知的报告格式：docx"):
        write_report(report, tmp_path, "x", formats=("json", "docx"))
    with pytest.raises(ReportRenderError, match="文件名不合法"):
        write_report(report, tmp_path, "../x")
    assert list(tmp_path.iterdir()) == []
    assert write_report(report, tmp_path / "j", "only", formats=("json",)) == {
        "json": tmp_path / "j" / "only.json"
    }


# ---------------------------------------------------------------- PDF


def _save_pages(pdf: pdfium.PdfDocument, tmp_path: Path) -> list[Path]:
    pngs = []
    for i, page in enumerate(pdf):
        path = tmp_path / f"page-{i + 1:02d}.png"
        page.render(scale=1.5).to_pil().save(path)
        pngs.append(path)
    if os.environ.get("OPENDIP_TEST_ARTIFACTS"):
        target = ROOT / "test-artifacts" / "reports"
        target.mkdir(parents=True, exist_ok=True)
        for png in pngs:
            shutil.copy(png, target / f"render-sample-{png.name}")
    return pngs


@pytest.fixture(scope="module")
def pdf(written: dict[str, Path]) -> pdfium.PdfDocument:
    return pdfium.PdfDocument(written["pdf"])


def _page_texts(pdf: pdfium.PdfDocument) -> list[str]:
    return [re.sub(r"\s+", "", page.get_textpage().get_text_range()) for page in pdf]


def test_pdf_text(pdf: pdfium.PdfDocument, report: Report, tmp_path: Path) -> None:
    pngs = _save_pages(pdf, tmp_path)
    assert len(pdf) >= 2 and len(pngs) == len(pdf)
    texts = _page_texts(pdf)
    text = "".join(texts)
    for expected in [
        TITLE,
        *(s.title for s in report.sections),
        "3,055,000.00",  # the money figure, 元
        "305.50万元",
        "93.35%",
        "+13.15%",  # change of the money figure
        "+1.20个百分点",  # change of the ratio
        "1,234,567.89",  # a table cell
        "西藏自治区藏醫院",
        "−5.13%",
        SCRIPT,  # escaped in the HTML, so shown as text
        "第1页",
        "数据来源",
        "lhasa.2026.1",
    ]:
        assert re.sub(r"\s+", "", expected) in text, expected
    # The long table breaks across pages, its header repeated on each.
    pages_with_rows = [t for t in texts if "医师001" in t or "医师090" in t or "医师050" in t]
    assert len(pages_with_rows) >= 2
    assert all("主诊医师" in t for t in pages_with_rows)


def test_pdf_charts_are_embedded_and_drawn(pdf: pdfium.PdfDocument, report: Report) -> None:
    n_charts = len(_all_charts(report))
    images = []
    for page in pdf:
        bitmap = None
        for obj in page.get_objects(filter=[pdfium_raw.FPDF_PAGEOBJ_IMAGE]):
            if bitmap is None:  # 1 px per PDF point
                bitmap = page.render(scale=1.0).to_pil().convert("L")
            left, bottom, right, top = obj.get_bounds()
            height = page.get_height()
            box = (int(left), int(height - top), int(right), int(height - bottom))
            histogram = bitmap.crop(box).histogram()  # grey levels 0..255
            share = sum(histogram[:200]) / sum(histogram)  # not white-ish
            images.append((box, share))
    assert len(images) >= n_charts
    for box, share in images:
        assert box[2] - box[0] > 200 and box[3] - box[1] > 80  # a real size on the page
        assert share > 0.01, f"blank chart region {box}"


def _cjk_cmap() -> tuple[str, set[int]]:
    path = font_manager.findfont(
        font_manager.FontProperties(family="Noto Sans CJK SC"), fallback_to_default=False
    )
    fonts = TTCollection(path).fonts if path.lower().endswith(".ttc") else [TTFont(path)]
    for font in fonts:
        if font["name"].getDebugName(1) == "Noto Sans CJK SC":
            return path, set(font.getBestCmap())
    pytest.fail(f"Noto Sans CJK SC not in {path}")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        self._skip += tag in ("style", "script")
        self.parts += [v for k, v in attrs if k == "alt" and v]

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def test_pdf_has_no_missing_glyphs(report: Report, pdf: pdfium.PdfDocument) -> None:
    # Every character the report shows (its HTML text, which the PDF lays out) is in the
    # cmap of the Noto Sans CJK SC face the renderers use.
    parser = _Text()
    parser.feed(render_html(report, chart_images={}))
    chars = {ch for ch in "".join(parser.parts) + "第页" if not ch.isspace()}
    assert {
        "醫",
        "藏",
        "拉",
        "萨",
        "（",
        "）",
        "，",
        "；",
        "！",
        "？",
        "「",
        "」",
        "《",
        "》",
    } <= chars
    path, cmap = _cjk_cmap()
    missing = sorted(ch for ch in chars if ord(ch) not in cmap)
    assert not missing, f"not in {path}: {missing}"
    # And the PDF draws every character with an embedded Noto CJK font, no fallback font.
    fonts: dict[str, set[str]] = {}
    buf = ctypes.create_string_buffer(512)
    flags = ctypes.c_int()
    for page in pdf:
        textpage = page.get_textpage()
        for i in range(textpage.count_chars()):
            ch = chr(pdfium_raw.FPDFText_GetUnicode(textpage, i))
            if ch.isspace() or pdfium_raw.FPDFText_IsGenerated(textpage, i) == 1:
                continue
            pdfium_raw.FPDFText_GetFontInfo(textpage, i, buf, len(buf), ctypes.byref(flags))
            fonts.setdefault(buf.value.decode("utf-8", "replace"), set()).add(ch)
    assert fonts
    assert all(re.search(r"Noto.?Sans.?CJK", name) for name in fonts), sorted(fonts)
    assert not any("DejaVu" in name for name in fonts)
    assert "醫" in set().union(*fonts.values())


# ---------------------------------------------------------------- Excel


@pytest.fixture(scope="module")
def workbook(written: dict[str, Path]) -> openpyxl.Workbook:
    return openpyxl.load_workbook(written["xlsx"])


def _find(ws, value):
    for row in ws.iter_rows():
        for cell in row:
            if cell.value == value:
                return cell
    raise AssertionError(f"{value!r} not in sheet {ws.title}")


def test_excel_sheets(workbook: openpyxl.Workbook, report: Report) -> None:
    assert workbook.sheetnames == ["封面", "基金运行概况", "病种与费用分析", "医师明细"]
    cover = workbook["封面"]
    assert cover["A1"].value == TITLE
    assert _find(cover, "地区").offset(column=1).value == "西藏自治区拉萨市"
    assert _find(cover, "期间").offset(column=1).value == "2026"
    assert _find(cover, "政策版本").offset(column=1).value == "lhasa.2026.1"
    assert _find(cover, "清单哈希（SHA-256）").offset(column=1).value == "ab" * 32
    for section in report.sections:
        ws = workbook[section.title]
        assert ws["A1"].value == section.title
        assert len(ws._images) == len(section.charts)


def test_excel_figures_are_numbers(workbook: openpyxl.Workbook) -> None:
    ws = workbook["基金运行概况"]
    header = _find(ws, "指标")
    assert [header.offset(column=i).value for i in range(5)] == [
        "指标",
        "数值",
        "上期/同期",
        "变化",
        "说明",
    ]
    assert header.font.b
    money = _find(ws, "统筹基金支出（元）").offset(column=1)
    assert money.value == 3_055_000.00
    assert "#,##0.00" in money.number_format
    assert money.offset(column=1).value == 2_700_000.00
    assert money.offset(column=2).value == "+13.15%"
    rate = _find(ws, "基金使用率").offset(column=1)
    assert rate.value == pytest.approx(0.933549, abs=0) and rate.number_format == "0.00%"
    assert rate.offset(column=2).value == "+1.20个百分点"
    cases = _find(ws, "结算病例数").offset(column=1)
    assert cases.value == 12_345 and cases.number_format == "#,##0"
    loss = _find(ws, "结余(+)/亏损(−)（元）").offset(column=1)
    assert loss.value == -84_000.00
    assert _find(ws, "结算点值").offset(column=1).number_format == "#,##0.000000"
    missing = _find(ws, "异地就医病例")
    assert missing.offset(column=1).value is None and missing.offset(column=4).value == "无数据"


def test_excel_table(workbook: openpyxl.Workbook) -> None:
    ws = workbook["基金运行概况"]
    name = _find(ws, "医疗机构")
    headers = [name.offset(column=i) for i in range(4)]
    assert [h.value for h in headers] == ["医疗机构", "病例数", "统筹支付（元）", "结余率"]
    assert all(h.font.b for h in headers)
    row = _find(ws, "西藏自治区藏醫院")
    cases, paid, rate = (row.offset(column=i) for i in (1, 2, 3))
    assert cases.value == 5_321 and cases.number_format == "#,##0"
    assert paid.value == 1_234_567.89 and "#,##0.00" in paid.number_format
    assert rate.value == -0.0513 and rate.number_format == "0.00%"
    script = _find(ws, SCRIPT)  # plain text in a cell
    assert script.offset(column=2).value is None
    (table,) = ws.tables.values()  # an Excel table: filter buttons on the header
    assert table.ref.startswith(name.coordinate)
    assert table.autoFilter is not None
    assert _find(ws, "注：按统筹支付降序。")
    assert ws.column_dimensions[name.column_letter].width >= 16  # 西藏自治区藏醫院 is wide


def test_excel_single_table_sheet_freezes_header(workbook: openpyxl.Workbook) -> None:
    ws = workbook["医师明细"]
    header = _find(ws, "主诊医师")
    assert ws.freeze_panes == f"A{header.row + 1}"
    assert _find(ws, "医师090").offset(column=2).value == 4_500.45  # 45 × 10,001 fen


def test_sheet_names_are_valid_and_unique() -> None:
    assert sheet_names(["a[b]:c*?/\\d", "x" * 40, "X" * 40, "封面", "", "'引号'"]) == [
        "abcd",
        "x" * 31,
        "X" * 28 + "(2)",
        "封面(2)",
        "第5节",
        "引号",
    ]


# ---------------------------------------------------------------- HTML


def test_html_standalone_and_fragment(written: dict[str, Path], report: Report) -> None:
    doc = written["html"].read_text(encoding="utf-8")
    assert doc.lstrip().startswith("<!DOCTYPE html>") and "<html" in doc
    assert "@page" in doc and 'counter(page) " 页"' in doc
    assert "display: table-header-group" in doc
    fragment = render_html(report, standalone=False, chart_images={})
    assert "<html" not in fragment and "@page" not in fragment and "<style" not in fragment
    assert fragment.strip().startswith('<div class="report') and fragment.strip().endswith("</div>")
    for html in (doc, fragment):
        assert SCRIPT not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        for figure in report.figures():
            assert f"<dt>{figure.label}</dt>" in html
        for section in report.sections:
            assert section.title in html


def test_html_charts_are_embedded_images(written: dict[str, Path], report: Report) -> None:
    doc = written["html"].read_text(encoding="utf-8")
    imgs = re.findall(r"<img [^>]*>", doc)
    assert len(imgs) == len(_all_charts(report))
    for chart, img in zip(_all_charts(report), imgs, strict=True):
        assert f'alt="{chart.title}"' in img
        assert f'data-chart-key="{chart.key}"' in img
        assert 'src="data:image/png;base64,iVBORw0KGgo' in img  # the PNG signature


def test_html_figures_and_values(written: dict[str, Path]) -> None:
    doc = written["html"].read_text(encoding="utf-8")
    assert "3,055,000.00" in doc and "合 305.50 万元" in doc
    assert "上期/同期 2,700,000.00，变化 +13.15%" in doc
    assert 'class="value neg">−84,000.00' in doc
    assert '<td class="num">1,234,567.89</td>' in doc
    assert '<td class="num neg">−5.13%</td>' in doc
    assert "一、基金运行概况" in doc and "三、医师明细" in doc
