"""The annual report of a generated region, rendered: the PDF's pages rendered to PNG,
their text holds the report's figures as formatted, every chart is drawn, and every
character is drawn with the embedded Noto CJK font (no missing-glyph boxes)."""

from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import pypdfium2 as pdfium
import pytest

from opendip.reports.model import Report
from opendip.reports.region import build_publication, build_report
from opendip.reports.render import fmt_value, render_html, write_report
from tests.reports.test_render_report import (
    _cjk_cmap,
    _page_texts,
    _save_pages,
    _Text,
)
from tests.reports.test_render_report import (
    test_pdf_charts_are_embedded_and_drawn as check_charts_drawn,
)


@pytest.fixture(scope="module")
def annual(region: Path) -> Report:
    return build_report(region / "settlement")


@pytest.fixture(scope="module")
def written(annual: Report, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_report(annual, tmp_path_factory.mktemp("annual"), "年度运行分析报告_2026")


@pytest.fixture(scope="module")
def pdf(written: dict[str, Path]) -> pdfium.PdfDocument:
    return pdfium.PdfDocument(written["pdf"])


def test_pdf_pages_show_the_figures(
    pdf: pdfium.PdfDocument, annual: Report, tmp_path: Path
) -> None:
    assert len(_save_pages(pdf, tmp_path)) == len(pdf) >= 5
    text = "".join(_page_texts(pdf))
    assert re.sub(r"\s+", "", annual.title) in text
    for section in annual.sections:
        assert re.sub(r"\s+", "", section.title) in text, section.title
    for key in (
        "overview.cases",
        "overview.grouping_rate",
        "fund.fund_payable_fen",
        "fund.ffs_fund_fen",
        "fund.hospitals_surplus",
        "clearing.point_value.employee",
        "costs.cost_per_case_fen",
        "basic.settlement_rate.tertiary",
        "supervision.leads",
    ):
        f = annual.figure(key)
        assert re.sub(r"\s+", "", fmt_value(f.value, f.unit)) in text, (key, f.value)
    # The 结余/超支 hospitals table lists every hospital.
    for row in annual.table("fund.by_hospital").rows:
        assert str(row["hospital_id"]) in text


def test_pdf_charts_drawn(pdf: pdfium.PdfDocument, annual: Report) -> None:
    assert len([c for s in annual.sections for c in s.charts]) >= 7
    check_charts_drawn(pdf, annual)


def test_pdf_no_missing_glyphs(pdf: pdfium.PdfDocument, annual: Report) -> None:
    parser = _Text()
    parser.feed(render_html(annual, chart_images={}))
    chars = {ch for ch in "".join(parser.parts) if not ch.isspace()}
    path, cmap = _cjk_cmap()
    assert not sorted(ch for ch in chars if ord(ch) not in cmap), path
    import ctypes

    import pypdfium2.raw as raw

    names = set()
    buf = ctypes.create_string_buffer(512)
    flags = ctypes.c_int()
    for page in pdf:
        tp = page.get_textpage()
        for i in range(tp.count_chars()):
            if (
                raw.FPDFText_IsGenerated(tp, i) == 1
                or chr(raw.FPDFText_GetUnicode(tp, i)).isspace()
            ):
                continue
            raw.FPDFText_GetFontInfo(tp, i, buf, len(buf), ctypes.byref(flags))
            names.add(buf.value.decode("utf-8", "replace"))
    assert names and all(re.search(r"Noto.?Sans.?CJK", n) for n in names), names


def test_excel_workbook(written: dict[str, Path], annual: Report) -> None:
    wb = openpyxl.load_workbook(written["xlsx"])
    assert wb.sheetnames[0] == "封面" and len(wb.sheetnames) == len(annual.sections) + 1
    values = {c for ws in wb for row in ws.iter_rows(values_only=True) for c in row}
    total = annual.figure("fund.fund_payable_fen").value
    assert round(total / 100, 2) in values  # the exact 元 amount, as a number


def test_publication_pdf_and_excel(region: Path, tmp_path: Path) -> None:
    pub = build_publication(region / "settlement")
    written = write_report(pub, tmp_path, "结算公示_2026", formats=("xlsx", "pdf"))
    text = "".join(_page_texts(pdfium.PdfDocument(written["pdf"])))
    assert "结算公示表" in text and "职工合计" in text and "居民合计" in text
    total = next(r for r in pub.table("publication.clearing").rows if r.get("is_total"))
    assert fmt_value(total["clearing_payment_fen"], "fen") in text
    wb = openpyxl.load_workbook(written["xlsx"])
    cells = [c for ws in wb for row in ws.iter_rows(values_only=True) for c in row]
    assert "职工合计" in cells
