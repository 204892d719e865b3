"""自动化报告 in the platform: a settlement run's report page, PDF, Excel and 结算公示表;
monthly runs settle through opendip.settlement (withholding and advance per hospital)."""

from __future__ import annotations

import io

import openpyxl
import pyarrow.parquet as pq
import pypdfium2


def _run(agency, kind: str, period: str) -> dict:
    r = agency.post("/api/runs", json={"kind": kind, "period": period})
    body = r.json()
    assert r.status_code == 200 and body["status"] == "succeeded", body
    return body


def test_monthly_run_settles_with_withholding(clients, app) -> None:
    agency = clients("agency")
    run = _run(agency, "monthly", "2026-03")
    m = run["manifest"]
    assert m["steps"] == ["入组", "计分", "月度预结算"]
    settlement = app.state.settings.platform_dir / "runs" / str(run["id"]) / "settlement"
    hospitals = pq.read_table(settlement / "hospitals.parquet").to_pylist()
    # The manifest's totals are the per-hospital table's, to the fen.
    for col in ("fund_payable_fen", "withheld_fen", "advance_fen"):
        assert m["totals_fen"][col] == sum(h[col] for h in hospitals)
    assert all(h["advance_fen"] == h["fund_payable_fen"] - h["withheld_fen"] for h in hospitals)
    page = agency.get(f"/runs/{run['id']}")
    assert page.status_code == 200
    assert "各医疗机构月度预结算" in page.text and "预留质量保证金" in page.text
    first = hospitals[0]
    assert f"{first['withheld_fen'] / 100:,.2f}" in page.text


def test_report_page_pdf_excel_and_publication(clients) -> None:
    agency = clients("agency")
    run = _run(agency, "annual", "2026")
    page = agency.get(f"/runs/{run['id']}/report")
    assert page.status_code == 200, page.text[:500]
    assert "年度运行分析报告" in page.text and "基金支付" in page.text
    assert 'class="report report-annual"' in page.text and "data:image/png;base64" in page.text
    data = agency.get(f"/api/runs/{run['id']}/report").json()
    figures = {f["key"]: f["value"] for s in data["sections"] for f in s["figures"]}
    assert figures["overview.dip_cases"] == run["manifest"]["scored_cases"]
    assert figures["fund.fund_payable_fen"] == run["manifest"]["totals_fen"]["fund_payable_fen"]

    pdf = agency.get(f"/runs/{run['id']}/report.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    doc = pypdfium2.PdfDocument(pdf.content)
    assert "年度运行分析报告" in doc[0].get_textpage().get_text_range()
    xlsx = agency.get(f"/runs/{run['id']}/report.xlsx")
    wb = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert "封面" in wb.sheetnames and len(wb.sheetnames) > 3
    pub = agency.get(f"/runs/{run['id']}/publication.xlsx")
    assert pub.status_code == 200
    text = " ".join(
        str(c)
        for ws in openpyxl.load_workbook(io.BytesIO(pub.content))
        for row in ws.iter_rows(values_only=True)
        for c in row
        if c
    )
    assert "职工合计" in text and "居民合计" in text
    assert agency.get(f"/runs/{run['id']}/report.exe").status_code == 404

    # 重新生成 rebuilds from the run (CSRF-protected form post).
    r = agency.post(
        f"/runs/{run['id']}/report/refresh", data={"csrf_token": agency.headers["X-CSRF-Token"]}
    )
    assert r.status_code == 303 and r.headers["location"] == f"/runs/{run['id']}/report"
    assert (
        agency.post(
            f"/runs/{run['id']}/report/refresh", data={}, headers={"X-CSRF-Token": ""}
        ).status_code
        == 403
    )


def test_report_of_a_failed_run_is_refused(clients) -> None:
    agency = clients("agency")
    r = agency.post("/api/runs", json={"kind": "annual", "period": "2031"})
    run_id = r.json()["id"]
    page = agency.get(f"/runs/{run_id}/report")
    assert page.status_code == 409 and "没有结算结果" in page.text
    assert agency.get("/runs/999999/report").status_code == 404


def test_hospital_and_expert_cannot_see_reports(clients) -> None:
    agency = clients("agency")
    run = _run(agency, "annual", "2026")
    for name in ("h1", "expert"):
        c = clients(name)
        for url in (f"/runs/{run['id']}/report", f"/runs/{run['id']}/report.pdf"):
            assert c.get(url).status_code == 403, (name, url)
