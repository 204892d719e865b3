"""院端分析 page and API: the latest settlement run, per hospital, with access control."""

from __future__ import annotations

import shutil
from decimal import Decimal

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import PASSWORD, REGION, USERS, login


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory):
    """One platform for the module, after a year-end clearing run of 2026 (run inline):
    (app, run, clients by user name). Tests here only read it."""
    from argon2 import PasswordHasher

    from opendip.store import repositories as repo
    from opendip.web import Settings, create_app

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            "opendip.store.passwords._HASHER",
            PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
        )
        region = tmp_path_factory.mktemp("analysis") / "region"
        shutil.copytree(REGION, region)
        app = create_app(Settings(data_dir=region, background_runs=False))
        with app.state.store.session() as s:
            for name, (role, hid) in USERS.items():
                repo.create_user(s, name, PASSWORD, role, name, hid)
        cache: dict[str, TestClient] = {}

        def clients(name: str) -> TestClient:
            if name not in cache:
                cache[name] = login(app, name)
            return cache[name]

        r = clients("agency").post("/api/runs", json={"kind": "annual", "period": "2026"})
        assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
        _publish(clients("agency"), r.json()["id"])
        yield app, r.json(), clients


def _publish(agency: TestClient, run_id: int) -> None:
    """Hospitals analyse only what the agency approved or published."""
    for step in ("approve", "publish"):
        assert agency.post(f"/api/runs/{run_id}/{step}").status_code == 200


@pytest.fixture
def settled(app, clients):
    """A platform of its own (for tests that change the region), after an annual run."""
    r = clients("agency").post("/api/runs", json={"kind": "annual", "period": "2026"})
    assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
    _publish(clients("agency"), r.json()["id"])
    return app, r.json()


def _scored(app, run: dict, hospital: str):
    path = app.state.settings.platform_dir / "runs" / str(run["id"]) / "settlement"
    t = pq.read_table(path / "cases.parquet")
    return t.filter(pc.equal(t["hospital_id"], hospital))


def test_no_settlement_yet(clients) -> None:
    r = clients("h1").get("/api/analysis")
    assert r.status_code == 200
    body = r.json()
    assert body["message"] == "尚无经办机构审核或公示的结算结果"
    assert body["report"] is None
    page = clients("h1").get("/analysis")
    assert page.status_code == 200 and "尚无经办机构审核或公示的结算结果" in page.text
    agency = clients("agency").get("/api/analysis").json()
    assert agency["message"] == "尚无结算结果：请先完成一次年终清算或月度预结算"


def test_hospitals_see_only_approved_or_published_runs(clients) -> None:
    """A run awaiting review is the agency's; a hospital sees it once approved, and a
    published run before a newer approved one."""
    agency = clients("agency")
    annual = agency.post("/api/runs", json={"kind": "annual", "period": "2026"}).json()
    assert clients("h1").get("/api/analysis").json()["run"] is None
    assert agency.get("/api/analysis").json()["run"]["id"] == annual["id"]
    _publish(agency, annual["id"])
    monthly = agency.post("/api/runs", json={"kind": "monthly", "period": "2026-03"}).json()
    assert clients("h1").get("/api/analysis").json()["run"]["id"] == annual["id"]
    assert agency.post(f"/api/runs/{monthly['id']}/approve").status_code == 200
    # Published first, then approved: the published annual clearing stays the default.
    assert clients("h1").get("/api/analysis").json()["run"]["id"] == annual["id"]


def test_hospital_user_sees_own_hospital(shared) -> None:
    app, run, clients = shared
    r = clients("h1").get("/api/analysis")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hospital_id"] == "H001"
    assert body["run"] == {"id": run["id"], "kind": "annual", "period": "2026"}
    figures = {f["key"]: f for s in body["report"]["sections"] for f in s["figures"]}
    t = _scored(app, run, "H001")
    assert figures["hospital.cases"]["value"] == t.num_rows
    assert figures["hospital.dip_amount_fen"]["value"] == pc.sum(t["dip_amount_fen"]).as_py()
    assert figures["hospital.fund_balance_fen"]["value"] == (
        pc.sum(t["fund_payable_fen"]).as_py() - pc.sum(t["ffs_fund_fen"]).as_py()
    )
    page = clients("h1").get("/analysis")
    assert page.status_code == 200
    assert "院端分析" in page.text and "科室盈亏" in page.text and "临界病例" in page.text
    assert 'id="chart-hospital-balance_by_department"' in page.text
    assert "echarts-6.1.0.common.min.js" in page.text
    assert 'name="hospital_id"' in page.text and '<select name="hospital_id"' not in page.text


def test_hospital_user_cannot_name_another_hospital(shared) -> None:
    _, _, clients = shared
    for path in ("/api/analysis", "/analysis"):
        r = clients("h1").get(path, params={"hospital_id": "H002"})
        assert r.status_code == 404
        assert "未找到该医疗机构" in r.text
        # Their own id is fine.
        assert clients("h1").get(path, params={"hospital_id": "H001"}).status_code == 200
    htmx = clients("h1").get(
        "/analysis", params={"hospital_id": "H002"}, headers={"HX-Request": "true"}
    )
    assert htmx.status_code == 404 and "未找到该医疗机构" in htmx.text


def test_hospital_user_cannot_see_another_hospitals_cases(shared) -> None:
    app, run, clients = shared
    other = set(_scored(app, run, "H002")["case_id"].to_pylist())
    body = clients("h1").get("/api/analysis", params={"near_band": "1"}).json()
    shown = {
        str(r.get("case_id"))
        for s in body["report"]["sections"]
        for t in s["tables"]
        for r in t["rows"]
        if "case_id" in r
    }
    assert shown and not shown & other


def test_agency_chooses_a_hospital(shared) -> None:
    _, _, clients = shared
    agency = clients("agency")
    body = agency.get("/api/analysis").json()
    assert body["message"] == "请选择医疗机构" and body["report"] is None
    page = agency.get("/analysis")
    assert '<select name="hospital_id">' in page.text and "请选择医疗机构" in page.text
    r = agency.get("/api/analysis", params={"hospital_id": "H002"})
    assert r.status_code == 200 and r.json()["report"]["provenance"]["hospital_id"] == "H002"


def test_agency_unknown_hospital(shared) -> None:
    _, _, clients = shared
    r = clients("agency").get("/api/analysis", params={"hospital_id": "H999"})
    assert r.status_code == 404
    assert r.json()["detail"] == "医疗机构 H999 不在本次结算的医疗机构表中（hospitals.parquet）"


def test_department_filter_with_htmx(shared) -> None:
    app, run, clients = shared
    t = _scored(app, run, "H001")
    body = clients("h1").get("/api/analysis").json()
    departments = next(
        tb
        for s in body["report"]["sections"]
        for tb in s["tables"]
        if tb["key"] == "hospital.departments"
    )["rows"]
    dept = departments[0]["department"]
    r = clients("h1").get("/analysis", params={"department": dept}, headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert "<html" not in r.text and f"科室：{dept}" in r.text
    api = clients("h1").get("/api/analysis", params={"department": dept}).json()
    cases = next(
        f for s in api["report"]["sections"] for f in s["figures"] if f["key"] == "hospital.cases"
    )
    assert cases["value"] == departments[0]["cases"]
    assert sum(d["cases"] for d in departments) == t.num_rows


def test_near_band_parameter(shared) -> None:
    _, _, clients = shared
    narrow = clients("h1").get("/api/analysis", params={"near_band": "0.05"}).json()
    wide = clients("h1").get("/api/analysis", params={"near_band": "0.5"}).json()

    def count(body, key):
        return next(
            f["value"] for s in body["report"]["sections"] for f in s["figures"] if f["key"] == key
        )

    assert narrow["near_band"] == "0.05" and wide["near_band"] == "0.5"
    assert count(narrow, "hospital.near_low_cases") <= count(wide, "hospital.near_low_cases")
    assert Decimal(count(wide, "hospital.near_band")) == Decimal("0.5")


def test_bad_near_band(shared) -> None:
    _, _, clients = shared
    for band in ("abc", "0", "-1", "2", "NaN", "Infinity", "1e-999999999", "0.12345"):
        r = clients("h1").get("/api/analysis", params={"near_band": band})
        assert r.status_code == 422, band
        assert "临界区间宽度" in r.json()["detail"]
    page = clients("h1").get("/analysis", params={"near_band": "abc"})
    assert page.status_code == 422 and "临界区间宽度不是数字" in page.text


def test_expert_is_refused(shared) -> None:
    _, _, clients = shared
    assert clients("expert").get("/api/analysis").status_code == 403
    assert clients("expert").get("/analysis").status_code == 403


def test_login_required(app) -> None:
    from fastapi.testclient import TestClient

    r = TestClient(app, follow_redirects=False).get("/api/analysis")
    assert r.status_code == 401


def test_nav_link(clients) -> None:
    assert 'href="/analysis"' in clients("h1").get("/").text
    assert 'href="/analysis"' not in clients("expert").get("/").text


def test_changed_region_directory_is_reported(settled, clients) -> None:
    """A directory rebuilt after the run no longer matches the manifest: said, not guessed."""
    app, _ = settled
    directory = app.state.settings.data_dir / "directory.parquet"
    directory.write_bytes(directory.read_bytes() + b"\0")
    r = clients("agency").get("/api/analysis", params={"hospital_id": "H003"})
    assert r.status_code == 409
    assert "找不到结算运行的输入文件 directory" in r.json()["detail"]


def test_second_hospital_login(shared) -> None:
    app, _, _ = shared
    h2 = login(app, "h2")
    body = h2.get("/api/analysis").json()
    assert body["hospital_id"] == "H002"
    assert h2.get("/api/analysis", params={"hospital_id": "H001"}).status_code == 404


def test_generated_requests_never_fail(shared) -> None:
    """schemathesis on GET /api/analysis with a settlement present: no 500, only 200/404/422."""
    app, _, _ = shared
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    op = next(
        r.ok()
        for r in schema.get_all_operations()
        if r.ok().path == "/api/analysis" and r.ok().method.upper() == "GET"
    )
    seen: list[int] = []

    def run_as(user: str) -> None:
        client = login(app, user)
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        headers = {"X-CSRF-Token": client.headers["X-CSRF-Token"], "Cookie": cookie}

        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy(), _=st.none())
        def check(case, _) -> None:
            response = case.call(headers=headers)
            seen.append(response.status_code)
            assert response.status_code in (200, 404, 422), response.text[:300]

        check()

    run_as("agency")
    run_as("h1")
    assert len(seen) >= 2


def test_hospital_without_cases_is_an_explicit_empty_report(shared) -> None:
    _, _, clients = shared
    body = clients("agency").get("/api/analysis", params={"hospital_id": "H021"}).json()
    report = body["report"]
    assert report["provenance"]["empty"] == "true"
    figures = {f["key"]: f["value"] for s in report["sections"] for f in s["figures"]}
    assert figures["hospital.cases"] == 0 and figures["hospital.balance_fen"] is None
    page = clients("agency").get("/analysis", params={"hospital_id": "H021"})
    assert page.status_code == 200 and "本期该院没有 DIP 结算病例" in page.text
    assert "chart-hospital" not in page.text


def test_download_pdf_and_excel(shared) -> None:
    import io

    import openpyxl
    import pypdfium2

    _, _, clients = shared
    h1 = clients("h1")
    page = h1.get("/analysis")
    assert 'id="analysis-pdf"' in page.text
    pdf = h1.get("/analysis.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    from urllib.parse import quote

    assert quote("院端分析_H001_2026.pdf") in pdf.headers["content-disposition"]
    text = pypdfium2.PdfDocument(pdf.content)[0].get_textpage().get_text_range()
    assert "H001" in text and "院端盈亏分析" in text
    xlsx = h1.get("/analysis.xlsx", params={"department": "外科"})
    assert xlsx.status_code == 200
    assert "封面" in openpyxl.load_workbook(io.BytesIO(xlsx.content)).sheetnames
    # Another hospital's file is as unreachable as its page; unknown formats are 404.
    assert h1.get("/analysis.pdf", params={"hospital_id": "H002"}).status_code == 404
    assert h1.get("/analysis.exe").status_code == 404
    assert clients("expert").get("/analysis.pdf").status_code == 403


def test_department_head_and_doctor_see_their_cases_only(shared) -> None:
    """Issue 22 §6: 科主任 sees their department's cases, 医师 the cases they are attending
    doctor of, whatever they ask for; the counts are those of the settled cases."""
    from collections import Counter

    from opendip.store import repositories as repo

    app, run, _ = shared
    settled = set(_scored(app, run, "H001")["case_id"].to_pylist())
    base = pq.read_table(
        REGION / "cases_2026.parquet", columns=["case_id", "hospital_id", "department", "doctor_id"]
    ).to_pylist()
    mine = [r for r in base if r["hospital_id"] == "H001" and r["case_id"] in settled]
    dept, _ = Counter(r["department"] for r in mine).most_common(1)[0]
    doctor, _ = Counter(r["doctor_id"] for r in mine if r["doctor_id"]).most_common(1)[0]
    in_dept = {r["case_id"] for r in mine if r["department"] == dept}
    own = {r["case_id"] for r in mine if r["doctor_id"] == doctor}
    with app.state.store.session() as s:
        repo.create_user(s, "a-dept", PASSWORD, "hospital", "科主任", "H001", department=dept)
        repo.create_user(s, "a-doc", PASSWORD, "hospital", "医师", "H001", doctor_id=doctor)
    for name, expected, other in (("a-dept", in_dept, {"department": "不存在的科"}),
                                  ("a-doc", own, {"department": ""})):  # fmt: skip
        client = login(app, name)
        for params in ({}, other, {"hospital_id": "H001"}):
            body = client.get("/api/analysis", params={**params, "near_band": "1"}).json()
            figures = {f["key"]: f for s in body["report"]["sections"] for f in s["figures"]}
            assert figures["hospital.cases"]["value"] == len(expected), (name, params)
            shown = {
                str(r["case_id"])
                for s in body["report"]["sections"]
                for t in s["tables"]
                for r in t["rows"]
                if "case_id" in r
            }
            assert shown and shown <= expected, (name, params)
            doctors = next(
                t
                for s in body["report"]["sections"]
                for t in s["tables"]
                if t["key"] == "hospital.doctors"
            )
            if name == "a-doc":
                assert {r["doctor_id"] for r in doctors["rows"]} == {doctor}
        assert client.get("/api/analysis", params={"hospital_id": "H002"}).status_code == 404
        xlsx = client.get("/analysis.xlsx")
        assert xlsx.status_code == 200
        import io

        import openpyxl

        book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
        cells = {str(c) for ws in book for row in ws.iter_rows(values_only=True) for c in row}
        hidden = {r["case_id"] for r in mine} - expected
        assert not cells & hidden, name
        page = client.get("/analysis")
        assert page.status_code == 200 and "院端分析" in page.text
