"""Playwright (Debian's headless chromium): the hospital side of issue 19. The admin issues
an API key to H001's system; the system pushes in-stay cases through /api/v1/cases, one of
them far over its group's high-multiple threshold; the hospital user sees it flagged on
在院病例 (cases and by-department views), a re-push updates it, the Excel export downloads."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from tests.e2e.conftest import ARTIFACTS, browser_login

pytestmark = pytest.mark.browser

#: The platform's date (Settings.today), as in tests/web/test_hospital_api.py: the cases are
#: admitted three days before it, so nothing depends on the day the test runs.
TODAY = dt.date(2026, 11, 20)
ADMITTED = TODAY - dt.timedelta(days=3)


@pytest.fixture
def server_settings() -> dict:
    return {"today": TODAY}


def _case(case_id: str, cost: str, department: str, doctor: str) -> dict:
    return {
        "case_id": case_id,
        "status": "in_stay",
        "admit_date": ADMITTED.isoformat(),
        "department": department,
        "doctor": doctor,
        "age": 40,
        "main_diagnosis": "A09.900x001",
        "total_cost_yuan": cost,
        "patient_id": f"P-{case_id}",
        "doctor_id": "H001-D01-01",
        "admission_route": "1",
        "birth_date": "1986-01-01",
    }


def test_instay_monitor_flags_a_pushed_case_over_the_high_threshold(server) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, _tmp = server
    expect.set_options(timeout=30_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        login = browser_login(p, base, width=1500, accept_downloads=True)
        browser = login.browser

        admin = login("admin")
        admin.goto(f"{base}/admin/api-keys")
        admin.select_option("select[name=hospital_id]", "H001")
        admin.fill("input[name=name]", "HIS 接口")
        admin.click("form.card button")
        secret = admin.locator("code.secret").inner_text().strip()
        assert secret.startswith("odk_")
        admin.screenshot(path=ARTIFACTS / "30-admin-api-keys.png", full_page=True)

        his = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"})
        r = his.post(
            "/api/v1/cases",
            json={
                "cases": [
                    _case("ZY-HIGH-1", "80000.00", "消化内科", "张医生"),
                    _case("ZY-NORM-1", "3000.00", "消化内科", "李医生"),
                    _case("ZY-NORM-2", "2500.00", "感染科", "王医生"),
                ]
            },
        )
        assert r.status_code == 200, r.text
        assert "over_high" in r.json()["results"][0]["result"]["flags"]

        hosp = login("h1")
        hosp.click("nav.side a[href='/instay']")
        table = hosp.locator("#instay-cases")
        high = table.locator("tr[data-case='ZY-HIGH-1']")
        expect(high).to_contain_text("已超高倍率")
        expect(high).to_contain_text("80,000.00")
        expect(high).to_contain_text("2026-11-17")  # admitted 3 days before the platform's date
        expect(high.locator("td", has_text="3 / ")).to_have_count(1)  # in hospital 3 days
        expect(table.locator("tr[data-case='ZY-NORM-1']")).not_to_contain_text("已超高倍率")
        # sorted by cost / high threshold: the case over the threshold comes first
        expect(table.locator("tbody tr").first).to_have_attribute("data-case", "ZY-HIGH-1")
        hosp.screenshot(path=ARTIFACTS / "31-hospital-instay.png", full_page=True)

        hosp.select_option("select[name=flag]", "over_high")
        hosp.click("form.filters button[type=submit]")
        expect(table.locator("tbody tr")).to_have_count(1)

        # the system re-pushes the case at a lower cost: the page follows, no duplicate
        r = his.post(
            "/api/v1/cases", json={"cases": [_case("ZY-HIGH-1", "2800.00", "消化内科", "张医生")]}
        )
        assert r.json()["results"][0]["version"] == 2
        hosp.goto(f"{base}/instay")
        expect(table.locator("tr[data-case='ZY-HIGH-1']")).not_to_contain_text("已超高倍率")
        expect(table.locator("tr[data-case='ZY-HIGH-1']")).to_contain_text("第2次推送")
        expect(table.locator("tbody tr")).to_have_count(3)

        hosp.select_option("select[name=view]", "departments")
        hosp.click("form.filters button[type=submit]")
        depts = hosp.locator("#instay-departments")
        expect(depts).to_contain_text("消化内科")
        expect(depts).to_contain_text("感染科")
        hosp.screenshot(path=ARTIFACTS / "32-hospital-instay-departments.png", full_page=True)
        with hosp.expect_download() as dl:
            hosp.click("a[href^='/instay/export.xlsx']")
        assert dl.value.suggested_filename == "在院病例_H001.xlsx"

        hosp.click("nav.side a[href='/reconcile']")
        expect(hosp.locator("h1")).to_contain_text("结算对账")
        hosp.screenshot(path=ARTIFACTS / "33-hospital-reconcile.png", full_page=True)
        browser.close()
