"""Playwright driving Debian's chromium (headless), as people would use the platform:
agency uploads a file, runs a monthly settlement, approves and publishes; a hospital
pre-groups a case and files a dispute; the agency accepts it and assigns an expert; the
expert decides; the hospital sees the decision. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re

from tests.e2e.conftest import ARTIFACTS, JOURNEY, browser_login
from tests.web.conftest import settlement_csv


def test_agency_hospital_expert_journey(server) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, tmp = server
    # Server work (an upload's import and QC in a worker thread) can take longer than the
    # default 5 s on a loaded 2-core machine.
    expect.set_options(timeout=30_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # screenshots of an earlier run must not count for this one
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    upload = tmp / "本月结算清单.csv"
    upload.write_bytes(settlement_csv(tmp, {"H001": 5, "H002": 3}, "E"))
    case_id = None

    with sync_playwright() as p:
        login = browser_login(p, base)
        browser = login.browser

        # -- agency: upload, monthly run, approve, publish ----------------------------
        agency = login("agency")
        agency.screenshot(path=ARTIFACTS / "01-agency-home.png", full_page=True)
        agency.goto(f"{base}/uploads")
        agency.set_input_files("input[name=file]", str(upload))
        # the picker is labelled in Chinese whatever the browser's language, with the name
        expect(agency.locator(".file-pick")).to_contain_text("选择文件")
        expect(agency.locator(".file-pick-name")).to_have_text(upload.name)
        agency.click("form[action='/uploads'] button[type=submit]")
        expect(agency.locator("#upload-summary")).to_contain_text("接收 8")
        agency.screenshot(path=ARTIFACTS / "02-agency-upload.png", full_page=True)

        agency.goto(f"{base}/runs")
        agency.select_option("form:has(input[value=monthly]) select[name=period]", "2026-01")
        agency.click("form:has(input[value=monthly]) button[type=submit]")
        expect(agency.locator("#run-progress")).to_contain_text("已完成", timeout=120_000)
        agency.screenshot(path=ARTIFACTS / "03-agency-run-done.png", full_page=True)
        expect(agency.locator("#run-hospitals")).to_contain_text("H001")  # withholding/advance
        run_url = agency.url
        agency.click("text=查看月度预结算分析报告")
        expect(agency.locator(".report h1")).to_contain_text("月度运行分析报告")
        expect(agency.locator(".report img[data-chart-key]").first).to_be_visible()
        agency.screenshot(path=ARTIFACTS / "03b-agency-monthly-report.png", full_page=True)
        agency.goto(run_url)
        agency.click("text=审核通过")
        expect(agency.locator("#run-progress")).to_contain_text("已审核")
        agency.click("button:has-text('公示')")
        expect(agency.locator("#run-progress")).to_contain_text("已公示")
        agency.goto(f"{base}/publication")
        expect(agency.locator("main")).to_contain_text("月度预结算 2026-01")
        agency.screenshot(path=ARTIFACTS / "04-agency-published.png", full_page=True)

        # -- hospital: pre-group, then file a dispute -------------------------------------
        hosp = login("h1")
        hosp.goto(f"{base}/pregroup")
        hosp.fill("input[name=main_diagnosis]", "K35.800")
        hosp.fill("input[name=total_cost_yuan]", "8500.00")
        hosp.click("form button[type=submit]")
        expect(hosp.locator("#pg-group")).not_to_be_empty()
        expect(hosp.locator("#pregroup-result")).to_contain_text("预分组结果")
        hosp.screenshot(path=ARTIFACTS / "05-hospital-pregroup.png", full_page=True)

        hosp.goto(f"{base}/cases?case_id=E")
        link = hosp.locator("#case-table tbody a").first
        case_id = link.inner_text()
        hosp.goto(f"{base}/applications/new?kind=dispute&case_id={case_id}")
        hosp.fill("input[name=title]", "主要诊断编码有误，申请复核")
        hosp.fill("textarea[name=reason]", "病案首页显示主要诊断应为阑尾炎伴穿孔。")
        hosp.click("form button[type=submit]")
        expect(hosp.locator("#app-state")).to_contain_text("提出申请")
        app_url = hosp.url
        hosp.screenshot(path=ARTIFACTS / "06-hospital-dispute.png", full_page=True)

        # -- agency: accept and assign the expert ------------------------------------------
        agency.goto(app_url)
        agency.click("button[value=accept]")
        expect(agency.locator("#app-state")).to_contain_text("已受理")
        agency.select_option("select[name=expert_id]", label="expert（expert）")
        agency.click("button[value=assign]")
        expect(agency.locator("#app-state")).to_contain_text("专家评审中")

        # -- expert: decide -------------------------------------------------------------------
        expert = login("expert")
        expert.goto(app_url)
        expert.select_option(f"select[name='decision__{case_id}']", "accept")
        expert.fill(f"input[name='score__{case_id}']", "95.5")
        expert.fill(f"input[name='opinion__{case_id}']", "同意调整")
        expert.click("button[value=decide]")
        expect(expert.locator("#app-state")).to_contain_text("处理意见反馈")
        expert.screenshot(path=ARTIFACTS / "07-expert-decided.png", full_page=True)

        # -- the hospital sees the decision --------------------------------------------------
        hosp.goto(app_url)
        expect(hosp.locator("#decisions")).to_contain_text("95.5000")
        hosp.screenshot(path=ARTIFACTS / "08-hospital-sees-decision.png", full_page=True)
        browser.close()
    shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
    assert len(shots) == 9, shots
    assert all(p.stat().st_size > 10_000 for p in ARTIFACTS.glob("*.png"))  # not blank


def test_pregroup_payment_special_review_annual_clearing_and_hospital_view(server) -> None:
    """A hospital pre-groups a case and sees a payment (and a refusal on bad input); a special
    review goes from submission to archive; the agency runs, approves and publishes the annual
    clearing; the hospital sees the region's published table and its analysis."""
    from playwright.sync_api import expect, sync_playwright

    base, _tmp = server
    expect.set_options(timeout=30_000)
    JOURNEY.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        login = browser_login(p, base)
        browser = login.browser

        # -- hospital: pre-grouping with a payment; a refusal is shown on the page --------
        hosp = login("h1")
        hosp.goto(f"{base}/pregroup")
        hosp.fill("input[name=main_diagnosis]", "a09.900x001")  # code tables: A09.900x001
        hosp.fill("input[name=total_cost_yuan]", "abc")
        hosp.click("form button[type=submit]")
        expect(hosp.locator("#pregroup-result [role=alert]")).to_contain_text("总费用格式不正确")
        hosp.fill("input[name=total_cost_yuan]", "3000")
        hosp.click("form button[type=submit]")
        expect(hosp.locator("#pg-diagnosis")).to_contain_text("A09.900x001")
        expect(hosp.locator("#pg-amount")).to_have_text(re.compile(r"^\d[\d,]*\.\d\d$"))
        expect(hosp.locator("#pg-point-value")).to_contain_text("预算点值")
        expect(hosp.locator("table.candidates")).to_contain_text("基层:A09.9")
        hosp.screenshot(path=JOURNEY / "11-hospital-pregroup-payment.png", full_page=True)

        # -- special review: submitted → accepted → reviewing → feedback → archived -------
        hosp.goto(f"{base}/cases")
        case_id = hosp.locator("#case-table tbody a").first.inner_text()
        hosp.goto(f"{base}/applications/new?kind=special_review&case_id={case_id}")
        hosp.fill("input[name=title]", "高值耗材病例申请特例单议")
        hosp.fill("textarea[name=reason]", "使用人工关节，费用远高于病种次均费用。")
        hosp.click("form button[type=submit]")
        expect(hosp.locator("#app-state")).to_contain_text("提出申请")
        app_url = hosp.url
        agency = login("agency")
        agency.goto(app_url)
        expect(agency.locator("button[value=accept]")).to_have_text("受理")
        agency.click("button[value=accept]")
        expect(agency.locator("#app-state")).to_contain_text("已受理")
        agency.select_option("select[name=expert_id]", label="expert（expert）")
        agency.click("button[value=assign]")
        expect(agency.locator("#app-state")).to_contain_text("专家评审中")
        expert = login("expert")
        expert.goto(app_url)
        expert.select_option(f"select[name='decision__{case_id}']", "accept")
        expert.fill(f"input[name='score__{case_id}']", "120")
        expert.fill(f"input[name='opinion__{case_id}']", "同意按特例单议计分")
        expert.click("button[value=decide]")
        expect(expert.locator("#app-state")).to_contain_text("处理意见反馈")
        agency.goto(app_url)
        agency.click("button[value=archive]")
        expect(agency.locator("#app-state")).to_contain_text("已结案归档")
        expect(agency.locator("main")).to_contain_text("结案归档")  # the history, in Chinese
        agency.screenshot(path=JOURNEY / "12-agency-special-review-archived.png", full_page=True)
        hosp.goto(f"{base}/applications?kind=special_review&archived=1")
        expect(hosp.locator("main table")).to_contain_text("结案")

        # -- agency: annual clearing, approval, publication ---------------------------------
        agency.goto(f"{base}/runs")
        agency.fill("form:has(input[value=annual]) input[name=period]", "2026")
        agency.click("form:has(input[value=annual]) button[type=submit]")
        expect(agency.locator("#run-progress")).to_contain_text("已完成", timeout=180_000)
        expect(agency.locator("main")).to_contain_text("职工结算点值")
        agency.click("text=审核通过")
        expect(agency.locator("#run-progress")).to_contain_text("已审核")
        agency.click("button:has-text('公示')")
        expect(agency.locator("#run-progress")).to_contain_text("已公示")
        agency.screenshot(path=JOURNEY / "13-agency-annual-published.png", full_page=True)

        # -- hospital: the region's published table and its own analysis --------------------
        hosp.goto(f"{base}/publication")
        expect(hosp.locator("main")).to_contain_text("年终清算 2026")
        expect(hosp.locator("table.publication tr.own").first).to_contain_text("本院")
        expect(hosp.locator("table.publication")).to_contain_text("H002")
        hosp.screenshot(path=JOURNEY / "14-hospital-publication.png", full_page=True)
        hosp.goto(f"{base}/analysis")
        expect(hosp.locator("main")).to_contain_text("H001")
        expect(hosp.locator("main")).not_to_contain_text("尚无经办机构审核或公示的结算结果")
        hosp.screenshot(path=JOURNEY / "15-hospital-analysis.png", full_page=True)
        browser.close()
