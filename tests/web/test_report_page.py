"""自动化报告 in the platform: a settlement run's report page, PDF, Excel and 结算公示表;
monthly runs settle through opendip.settlement (withholding and advance per hospital)."""

from __future__ import annotations

import io
from decimal import ROUND_HALF_UP, Decimal

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
    assert m["steps"] == ["质控", "入组", "计分", "月度预结算"]
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


def test_home_and_cases_follow_the_latest_published_run(clients, make_app) -> None:
    agency = clients("agency")
    before = agency.get("/api/dashboard").json()
    assert before["results_source"] == "区域数据目录的入组与分值结果"
    run = _run(agency, "monthly", "2026-03")
    assert agency.post(f"/api/runs/{run['id']}/approve").status_code == 200
    assert agency.post(f"/api/runs/{run['id']}/publish").json()["status"] == "published"
    after = agency.get("/api/dashboard").json()
    assert after["results_source"] == f"第 {run['id']} 号运行（2026-03 月度预结算，已公示）"
    # The money shown is the published run's (its budget point values, its DIP cases).
    assert after["scored"]["n"] == run["manifest"]["scored_cases"]
    assert after["scored"]["fund_payable_fen"] == run["manifest"]["totals_fen"]["fund_payable_fen"]
    assert "已公示" in agency.get("/").text
    pub = agency.get("/publication")
    assert f'href="/runs/{run["id"]}/publication.pdf"' in pub.text
    assert "publication.pdf" not in clients("h1").get("/publication").text  # agency files only
    # A restarted platform shows the same.
    again = make_app()
    assert again.state.region.results.source == after["results_source"]


def test_supervision_run_from_the_platform(clients) -> None:
    agency = clients("agency")
    clearing = _run(agency, "annual", "2026")
    run = _run(agency, "supervision", "2026")
    m = run["manifest"]
    assert m["steps"] == ["智能监管"] and m["cases"] > 0
    assert m["results_from"] == f"第 {clearing['id']} 号年终清算运行"
    assert m["leads"] == sum(m["leads_by_type"].values())
    leads = agency.get("/api/leads").json()
    assert len(leads) >= m["leads_added"]
    page = agency.get(f"/runs/{run['id']}")
    assert "智能监管" in page.text and "监管线索" in page.text
    # A second run on the same data adds no duplicate leads (stable lead ids).
    again = _run(agency, "supervision", "2026")
    assert again["manifest"]["leads_added"] == 0
    bad = agency.post("/api/runs", json={"kind": "supervision", "period": "2026-03"})
    assert bad.status_code == 409 and "YYYY" in bad.json()["detail"]


def test_reports_are_built_with_the_run(clients, app) -> None:
    run = _run(clients("agency"), "annual", "2026")
    reports = app.state.settings.platform_dir / "runs" / str(run["id"]) / "reports"
    names = sorted(p.name for p in reports.iterdir())
    assert names == sorted(
        [
            f"report_{run['id']}.{x}"
            for x in ("json", "xlsx", "pdf", "fragment.html", "manifest.json")
        ]
        + [f"publication_{run['id']}.{x}" for x in ("json", "xlsx", "pdf", "manifest.json")]
    )
    assert "notes" not in run["manifest"] or not any("报告" in n for n in run["manifest"]["notes"])


def test_platform_report_compares_with_last_year(region_dir, make_app) -> None:
    """The region directory's previous-year settlement list is found for the platform's
    report (同比), though the run directory lives under platform/runs/<id>/."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from tests.web.conftest import login

    t = pq.read_table(region_dir / "cases_2026.parquet")
    last = t.set_column(
        t.schema.get_field_index("settle_month"),
        "settle_month",
        pc.replace_substring(t["settle_month"], "2026-", "2025-"),
    ).set_column(
        t.schema.get_field_index("case_id"),
        "case_id",
        pc.binary_join_element_wise(pa.scalar("Y"), t["case_id"], ""),
    )
    pq.write_table(last, region_dir / "cases_2025.parquet")
    agency = login(make_app(), "agency")
    run = _run(agency, "monthly", "2026-03")
    data = agency.get(f"/api/runs/{run['id']}/report").json()
    figures = {f["key"]: f for s in data["sections"] for f in s["figures"]}
    march = [r for r in last.to_pylist() if r["settle_month"] == "2025-03"]
    cost = sum(r["total_cost"] for r in march)
    expected = int((Decimal(cost) / len(march)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert figures["costs.cost_per_case_fen"]["previous"] == expected
    assert figures["costs.cases"]["previous"] == len(march)
