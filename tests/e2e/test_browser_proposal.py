"""Playwright (Debian's headless chromium): the 意见征集 journey. The agency clears the year,
builds a variant in the 方案测算 form, waits for it, publishes it; a hospital sees its own
impact and comments; the agency replies and adopts it as a new policy version."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ARTIFACTS, browser_login

pytestmark = pytest.mark.browser


def test_proposal_comment_adopt_journey(server) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, _tmp = server
    expect.set_options(timeout=30_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        login = browser_login(p, base)
        browser = login.browser

        agency = login("agency")
        agency.goto(f"{base}/runs")
        agency.click("form:has(input[value=annual]) button[type=submit]")
        expect(agency.locator("#run-progress")).to_contain_text("已完成", timeout=240_000)

        agency.goto(f"{base}/scenarios")
        agency.fill("input[name=title]", "二级医疗机构系数上调")
        agency.fill("textarea[name=description]", "二级医疗机构系数由 0.88 调整为 0.92")
        agency.fill("input[name='field__scoring.hospital_coefficient.levels.secondary']", "1.5x")
        agency.click("#scenario-form button[type=submit]")
        expect(agency.locator("#scenario-error")).to_contain_text("二级医疗机构系数：必须是数字")
        agency.screenshot(path=ARTIFACTS / "21-agency-scenario-invalid.png", full_page=True)
        agency.fill("input[name='field__scoring.hospital_coefficient.levels.secondary']", "0.92")
        agency.click("#scenario-form button[type=submit]")
        expect(agency.locator("#scenario-status")).to_contain_text("测算完成", timeout=240_000)
        expect(agency.locator("#scenario-summary")).to_contain_text("二级医疗机构系数上调")
        agency.screenshot(path=ARTIFACTS / "22-agency-scenario-result.png", full_page=True)
        url = agency.url
        agency.click("button[value=publish]")
        expect(agency.locator("#scenario-status")).to_contain_text("意见征集中")

        hosp = login("h1")
        hosp.goto(f"{base}/scenarios")
        hosp.click("#proposal-list a")
        expect(hosp.locator("#scenario-hospitals")).to_contain_text("H001")
        expect(hosp.locator("#scenario-hospitals")).not_to_contain_text("H002")
        hosp.fill("#comment-form textarea[name=body]", "本院为三级医院，建议同步评估三级系数。")
        hosp.click("#comment-form button[value=comment]")
        expect(hosp.locator("#comments")).to_contain_text("建议同步评估三级系数")
        hosp.screenshot(path=ARTIFACTS / "23-hospital-comment.png", full_page=True)

        agency.goto(url)
        expect(agency.locator("#comments")).to_contain_text("建议同步评估三级系数")
        agency.fill("#comments input[name=body]", "三级系数将在下一轮测算中评估。")
        agency.click("#comments button[value=reply]")
        expect(agency.locator("#comments")).to_contain_text("下一轮测算")
        agency.click("button[value=adopt]")
        expect(agency.locator("#adopted")).to_contain_text("新政策版本文件")
        agency.screenshot(path=ARTIFACTS / "24-agency-adopted.png", full_page=True)

        hosp.goto(url)
        expect(hosp.locator("#comments")).to_contain_text("下一轮测算")
        expect(hosp.locator("main")).to_contain_text("已采纳")
        hosp.screenshot(path=ARTIFACTS / "25-hospital-sees-reply.png", full_page=True)
        browser.close()
