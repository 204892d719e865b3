"""Issue 22 §6, scoped roles: county agency users (县区经办), the read-only 卫健/财政
viewers and the hospital sub-roles (科主任, 医师). Every id-taking route of the app (pages
and API, from the app's own route table) is walked as each scope: no out-of-scope read or
write, including through downloads and exports; lists, dashboards, 院端分析 and 在院病例
are narrowed to the scope. On SQLite and PostgreSQL (the `app` fixture of test_access)."""

from __future__ import annotations

import io

import openpyxl
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from starlette.routing import Route

from opendip.store import AuditEntry
from opendip.store import repositories as repo
from tests.web.conftest import PASSWORD, REGION, login
from tests.web.test_access import (  # noqa: F401  (fixtures)
    _call,
    app,
    world,
)
from tests.web.test_cross_hospital_walk import (
    NOT_IDS,
    _all_routes,
    _id_routes,
    _kwargs,
    _state,
    _url,
)

CASES = pq.read_table(
    REGION / "cases_2026.parquet", columns=["case_id", "hospital_id", "department", "doctor_id"]
)
HOSPITALS = pq.read_table(REGION / "hospitals.parquet").to_pylist()
COUNTY_OF = {h["hospital_id"]: h["county"] for h in HOSPITALS}


def _h001() -> list[dict]:
    return CASES.filter(pc.equal(CASES["hospital_id"], "H001")).to_pylist()


def _own_case() -> dict:
    """The H001 case the `world` fixture files its application for (its first)."""
    return _h001()[0]


def _other(field: str) -> str:
    """Another H001 department / doctor than the own case's (out of scope for it)."""
    own = _own_case()[field]
    return next(r[field] for r in _h001() if r[field] and r[field] != own)


def _scoped_users() -> dict[str, tuple[str, str | None, dict[str, str]]]:
    own = _own_case()
    return {
        # 城关区 holds H001; 东城区 holds H002, not H001
        "county": ("agency", None, {"county": COUNTY_OF["H001"]}),
        "county2": ("agency", None, {"county": COUNTY_OF["H002"]}),
        "dept": ("hospital", "H001", {"department": own["department"]}),
        "dept2": ("hospital", "H001", {"department": _other("department")}),
        "doctor": ("hospital", "H001", {"doctor_id": own["doctor_id"]}),
        "doctor2": ("hospital", "H001", {"doctor_id": _other("doctor_id")}),
        "health": ("health", None, {}),
        "finance": ("finance", None, {}),
    }


#: Users who must not see the `world` (H001's case, application, upload; a finished run).
OUTSIDE = ("county2", "dept2", "doctor2", "health", "finance")


@pytest.fixture
def scoped(app):  # noqa: F811
    with app.state.store.session() as s:
        for name, (role, hid, scope) in _scoped_users().items():
            repo.create_user(s, name, PASSWORD, role, name, hid, **scope)
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cache[name] = login(app, name)
        return cache[name]

    return get


def test_counties_are_registry_data() -> None:
    """Several counties, each with several hospitals: the county of a hospital is data."""
    counties = {h["county"] for h in HOSPITALS}
    assert len(counties) == 8
    assert COUNTY_OF["H001"] != COUNTY_OF["H002"]
    assert sum(1 for h in HOSPITALS if h["county"] == COUNTY_OF["H001"]) == 5


def test_every_id_route_as_every_scope(app, clients, world, scoped) -> None:  # noqa: F811
    h1_id = next(
        u["id"] for u in clients("admin").get("/api/users").json() if u["username"] == "h1"
    )
    ids = {
        "case_id": world["own_case"],
        "upload_id": world["upload"],
        "app_id": world["app"],
        "att_id": world["att"],
        "run_id": world["run"],
        "user_id": h1_id,
        "lead_id": 1,
        "proposal_id": 1,
        "key_id": 1,
        "name": "settlement",
        **NOT_IDS,
    }
    routes = _id_routes(app)
    secret = world["own_case"]
    before = _state(app, world)
    for name in (*OUTSIDE, "dept", "doctor", "county"):
        client = scoped(name)
        for method, path, _params in routes:
            if name == "county" and method != "GET":
                continue  # the county user acts on its county: tested below
            r = _call(client, method, _url(path, ids), _kwargs(method, path))
            assert r.status_code < 500, (name, method, path, r.status_code)
            if name in OUTSIDE:
                # (400: a malformed form, refused before any object is looked up)
                refused = (401,) if path.startswith("/api/v1/") else (400, 403, 404, 405, 409, 422)
                assert r.status_code in refused, (name, method, path, r.status_code)
                assert secret not in r.text, (name, method, path)
                if name in ("health", "finance") and method != "GET":
                    assert r.status_code in (401, 403), (name, method, path)
            elif name in ("dept", "doctor") and "/cases/{" not in path:
                # sub-roles see cases only: no application, upload, run or other object
                assert secret not in r.text, (name, method, path)
    assert _state(app, world) == before  # nothing written from outside the scope
    # in scope: the county user sees H001's objects, the sub-roles the case in their scope
    county = scoped("county")
    for url in (
        f"/cases/{secret}",
        f"/api/cases/{secret}",
        f"/applications/{world['app']}",
        f"/api/applications/{world['app']}",
    ):
        assert county.get(url).status_code == 200, url
    # a county user sees its county's hospitals' uploads (read only; H001 is in its county)
    assert county.get(f"/api/uploads/{world['upload']}").status_code == 200
    assert county.get(f"/uploads/{world['upload']}").status_code == 200
    assert world["upload"] in [u["id"] for u in county.get("/api/uploads").json()]
    for name in ("dept", "doctor"):
        assert scoped(name).get(f"/api/cases/{secret}").status_code == 200
        assert scoped(name).get(f"/applications/{world['app']}").status_code == 403
        assert scoped(name).get(f"/api/uploads/{world['upload']}").status_code == 403
    for name in ("dept2", "doctor2", "county2"):
        r = scoped(name).get(f"/cases/{secret}")
        assert r.status_code == 404 and "未找到" in r.text


def test_county_user_acts_on_its_county_only(app, clients, world, scoped) -> None:  # noqa: F811
    """The 城关区 user accepts H001's application; the 东城区 user cannot even see it."""
    app_id = world["app"]
    other = scoped("county2")
    r = other.post(f"/api/applications/{app_id}/comments", json={"comment": "看看"})
    assert r.status_code == 404
    assert other.get("/api/applications").json() == []
    r = scoped("county").post(f"/api/applications/{app_id}/comments", json={"comment": "已收到"})
    assert r.status_code == 200, r.text
    listed = scoped("county").get("/api/applications").json()
    assert [a["id"] for a in listed] == [app_id]
    # filing for another county's hospital is refused (404), for its own accepted
    r = other.post(
        "/api/applications",
        json={"kind": "dispute", "title": "t", "reason": "r", "case_ids": [world["own_case"]],
              "hospital_id": "H001"},
    )  # fmt: skip
    assert r.status_code == 404
    # a new H001 application: the other county cannot accept it, H001's county can
    r = clients("h1").post(
        "/api/applications",
        json={"kind": "dispute", "title": "再议", "reason": "r", "case_ids": [world["own_case"]]},
    )
    new = r.json()["id"]
    for url in (f"/api/applications/{new}/transition", f"/applications/{new}/transition"):
        r = _call(other, "POST", url, {"json": {"action": "accept", "version": 1}}
                  if url.startswith("/api/") else {"data": {"action": "accept", "version": "1"}})  # fmt: skip
        assert r.status_code == 404, (url, r.status_code)
    assert clients("agency").get(f"/api/applications/{new}").json()["state"] == "submitted"
    r = scoped("county").post(
        f"/api/applications/{new}/transition", json={"action": "accept", "version": 1}
    )
    assert r.status_code == 200 and r.json()["state"] != "submitted", r.text
    # supervision leads: the county's hospitals only
    from opendip.store import SupervisionLead

    with app.state.store.session() as s:
        for hid in ("H001", "H002"):
            s.add(SupervisionLead(hospital_id=hid, rule="r", title=f"线索{hid}", case_ids=[]))
    for name, own, other in (("county", "H001", "H002"), ("county2", "H002", "H001")):
        leads = scoped(name).get("/api/leads").json()
        assert [x["hospital_id"] for x in leads] == [own], name
        page = scoped(name).get("/leads").text
        assert f"线索{own}" in page and f"线索{other}" not in page
        hidden = next(
            x for x in clients("agency").get("/api/leads").json() if x["hospital_id"] == other
        )
        r = scoped(name).post(
            f"/api/leads/{hidden['id']}", json={"action": "assign", "version": 1, "assignee_id": 1}
        )
        assert r.status_code == 404, (name, r.text)
    # region-level functions are the prefecture's
    for url in ("/runs", "/scenarios", "/admin/users"):
        assert scoped("county").get(url).status_code == 403, url


def test_case_lists_and_dashboards_per_scope(app, clients, scoped) -> None:  # noqa: F811
    county_hospitals = {h for h, c in COUNTY_OF.items() if c == COUNTY_OF["H001"]}
    expected = {
        "county": [r for r in CASES.to_pylist() if r["hospital_id"] in county_hospitals],
        "dept": [r for r in _h001() if r["department"] == _own_case()["department"]],
        "doctor": [r for r in _h001() if r["doctor_id"] == _own_case()["doctor_id"]],
    }
    assert len(expected["county"]) > len(_h001()) > len(expected["dept"]) > 1
    assert len(expected["dept"]) > len(expected["doctor"]) >= 1
    for name, rows in expected.items():
        client = scoped(name)
        got = client.get("/api/cases", params={"page_size": 500}).json()
        assert got["total"] == len(rows), name
        assert {r["case_id"] for r in got["rows"]} == {r["case_id"] for r in rows}, name
        # asking for another hospital never widens the scope
        other = client.get("/api/cases", params={"hospital_id": "H002"}).json()
        assert other["total"] == (0 if name == "county" else len(rows)), name
        assert client.get("/api/dashboard").json()["cases"] == len(rows), name
        page = client.get("/cases")
        assert page.status_code == 200
        hidden = [r["case_id"] for r in _h001() if r["case_id"] not in {x["case_id"] for x in rows}]
        assert not any(c in page.text for c in hidden[:50]), name
    # a county user picks hospitals of its county only
    page = scoped("county").get("/cases").text
    assert "H009" in page and "H002 " not in page
    assert scoped("county").get("/instay?hospital_id=H002").status_code == 404
    assert scoped("county").get("/analysis?hospital_id=H002").status_code == 404


def test_read_only_departments_change_nothing(app, clients, scoped) -> None:  # noqa: F811
    """Every state-changing route refuses the 卫健/财政 viewers with a Chinese 403 page
    (logging out excepted); they see published results and region aggregates only."""
    for name in ("health", "finance"):
        client = scoped(name)
        for route in _all_routes(app.routes):
            if not isinstance(route, Route):
                continue
            for method in sorted((route.methods or set()) - {"GET", "HEAD", "OPTIONS"}):
                if route.path in ("/login", "/api/auth/login", "/logout", "/api/auth/logout"):
                    continue
                url = _url(route.path, {"fmt": "pdf", "action": "approve"})
                r = _call(client, method, url, _kwargs(method, route.path))
                expected = 401 if route.path.startswith("/api/v1/") else 403
                assert r.status_code == expected, (name, method, route.path, r.status_code)
                if expected == 403 and not route.path.startswith("/api/"):
                    assert "只读账户" in r.text, (name, route.path)
        for url in ("/", "/publication", "/directory", "/public"):
            assert client.get(url).status_code == 200, (name, url)
        for url in ("/cases", "/api/cases", "/runs", "/uploads", "/applications", "/analysis"):
            assert client.get(url).status_code == 403, (name, url)
        assert client.get("/api/dashboard").status_code == 403  # the case-data API


def test_instay_and_its_export_per_sub_role(app, clients, scoped) -> None:  # noqa: F811
    from tests.web.test_hospital_api import _case, _issue, _system

    key = _system(app, _issue(clients, "H001")["secret"])
    pushed = [
        _case("HIS-BONE-1", department="骨科", doctor_id="H001-D24-01"),
        _case("HIS-BONE-2", department="骨科", doctor_id="H001-D24-02"),
        _case("HIS-BIRTH-1", department="产科", doctor_id="H001-D01-01"),
    ]
    assert key.post("/api/v1/cases", json={"cases": pushed}).status_code == 200
    with app.state.store.session() as s:
        repo.create_user(s, "bone", PASSWORD, "hospital", "骨科主任", "H001", department="骨科")
        repo.create_user(s, "d2401", PASSWORD, "hospital", "医师", "H001", doctor_id="H001-D24-01")
    expected = {
        "bone": {"HIS-BONE-1", "HIS-BONE-2"},
        "d2401": {"HIS-BONE-1"},
        "h1": {"HIS-BONE-1", "HIS-BONE-2", "HIS-BIRTH-1"},
    }
    every = {c["case_id"] for c in pushed}
    for name, ids in expected.items():
        client = clients(name) if name == "h1" else login(app, name)
        page = client.get("/instay").text
        assert {c for c in every if c in page} == ids, name
        depts = client.get("/instay?view=departments").text
        assert ("产科" in depts) == (name == "h1"), name
        x = client.get("/instay/export.xlsx")
        assert x.status_code == 200
        book = openpyxl.load_workbook(io.BytesIO(x.content))
        listed = {row[0] for row in book["在院病例"].iter_rows(min_row=2, values_only=True)}
        assert listed == ids, name
        assert client.get("/instay?hospital_id=H002").status_code == 404
    # a sub-role cannot reconcile the whole hospital
    assert login(app, "bone").get("/reconcile").status_code == 403


def test_admin_creates_scoped_users_audited(app, clients) -> None:  # noqa: F811
    admin = clients("admin")
    county = COUNTY_OF["H001"]
    token = admin.headers["X-CSRF-Token"]
    form = {"username": "cg", "password": "password-123", "role": "agency", "county": county,
            "csrf_token": token}  # fmt: skip
    assert admin.post("/admin/users", data=form).status_code == 303
    page = admin.get("/admin/users").text
    assert f"县区经办（{county}）" in page
    bad = admin.post("/admin/users", data={**form, "username": "x1", "county": "无此县"})
    assert bad.status_code == 400 and "区县 无此县 不在医疗机构名录中" in bad.text
    bad = admin.post(
        "/admin/users", data={**form, "username": "x2", "county": "", "department": "骨科"}
    )
    assert bad.status_code == 400 and "只有医院用户可以限定科室或主诊医师" in bad.text
    r = admin.post(
        "/api/users",
        json={"username": "doc", "password": "password-123", "role": "hospital",
              "hospital_id": "H001", "doctor_id": "H001-D24-01"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["scope_label"] == "医师（H001-D24-01）"
    r = admin.post(
        "/api/users",
        json={"username": "both", "password": "password-123", "role": "hospital",
              "hospital_id": "H001", "doctor_id": "D", "department": "骨科"},
    )  # fmt: skip
    assert r.status_code == 400 and "二选一" in r.json()["detail"]
    with app.state.store.session() as s:
        details = {
            e.details["username"]: e.details
            for e in s.query(AuditEntry).filter(AuditEntry.action == "user.create")
        }
    assert details["cg"]["county"] == county and details["cg"]["role"] == "agency"
    assert details["doc"]["doctor_id"] == "H001-D24-01"
    assert "x1" not in details and "both" not in details


def test_cli_creates_scoped_users(region_dir, monkeypatch) -> None:
    from typer.testing import CliRunner

    from opendip.cli.main import app as cli
    from opendip.store import Store, User, sqlite_url

    runner = CliRunner()
    monkeypatch.setenv("OPENDIP_USER_PASSWORD", "password-123")
    base = ["users", "create", "--data", str(region_dir)]
    r = runner.invoke(cli, [*base, "--username", "cg", "--role", "agency", "--county", "城关区"])
    assert r.exit_code == 0, r.output
    assert "县区经办（城关区）" in r.output
    r = runner.invoke(cli, [*base, "--username", "x", "--role", "agency", "--county", "无此县"])
    assert r.exit_code != 0 and "不在医疗机构名录中" in r.output
    r = runner.invoke(
        cli, [*base, "--username", "ks", "--role", "hospital", "--hospital", "H001",
              "--department", "骨科"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, [*base, "--username", "wj", "--role", "health"])
    assert r.exit_code == 0, r.output
    store = Store(sqlite_url(region_dir))
    try:
        with store.session() as s:
            users = {u.username: u for u in s.query(User)}
            assert users["cg"].county == "城关区" and users["ks"].department == "骨科"
            assert users["wj"].scope_label == "卫健部门（只读）"
            audited = [
                e.details for e in s.query(AuditEntry).filter(AuditEntry.action == "user.create")
            ]
            assert {"cg", "ks", "wj"} == {d["username"] for d in audited}
    finally:
        store.dispose()


def test_county_users_see_their_countys_uploads_only(app, clients, world, scoped) -> None:  # noqa: F811
    """城关区 sees H001's upload in its list and pages; 东城区 never (list, page, API, the
    quarantine download); neither may upload (data intake is the hospitals' and the
    prefecture's)."""
    upload = world["upload"]
    mine, other = scoped("county"), scoped("county2")
    page = mine.get("/uploads")
    assert page.status_code == 200 and f'href="/uploads/{upload}"' in page.text
    assert "上传记录" in page.text and 'action="/uploads"' not in page.text
    assert other.get("/uploads").status_code == 200
    assert f'href="/uploads/{upload}"' not in other.get("/uploads").text
    assert upload not in [u["id"] for u in other.get("/api/uploads").json()]
    for url in (f"/uploads/{upload}", f"/api/uploads/{upload}",
                f"/uploads/{upload}/progress", f"/uploads/{upload}/quarantine.csv"):  # fmt: skip
        r = other.get(url)
        assert r.status_code == 404 and "未找到" in r.text, url
    for client in (mine, other):
        r = client.post("/api/uploads", files={"file": ("x.csv", io.BytesIO(b"a,b\n1,2\n"))})
        assert r.status_code == 403
    # every upload a county user lists is of its county
    county_hospitals = {h for h, c in COUNTY_OF.items() if c == COUNTY_OF["H001"]}
    for u in mine.get("/api/uploads").json():
        assert u["hospital_id"] in county_hospitals


def test_admin_changes_a_users_scope(app, clients, scoped) -> None:  # noqa: F811
    """An admin moves the 东城区 user to 城关区 and narrows a DIP-office user to a department
    from the user page (audited, before → after; the new scope holds on the next request);
    a county outside the registry, a department on an agency user and a form without its
    CSRF token are refused in Chinese; nobody but an admin may change a scope."""
    admin = clients("admin")
    users = {u["username"]: u for u in admin.get("/api/users").json()}
    c2, h1 = users["county2"]["id"], users["h1"]["id"]
    page = admin.get("/admin/users")
    assert f'action="/admin/users/{c2}/scope"' in page.text and "修改范围" in page.text
    other_case = _own_case()["case_id"]  # H001's, in 城关区
    assert scoped("county2").get(f"/cases/{other_case}").status_code == 404
    r = admin.post(f"/admin/users/{c2}/scope", data={"county": COUNTY_OF["H001"]})
    assert r.status_code == 303
    assert scoped("county2").get(f"/cases/{other_case}").status_code == 200
    dept = _own_case()["department"]
    r = admin.patch(f"/api/users/{h1}", json={"scope": {"department": dept}})
    assert r.status_code == 200 and r.json()["department"] == dept
    with app.state.store.session() as s:
        entries, _ = repo.audit_entries(s, action="user.update")
        details = [e.details for e in entries]
    assert {"county": [COUNTY_OF["H002"], COUNTY_OF["H001"]]} in details
    assert {"department": [None, dept]} in details
    # back to the whole hospital (empty scope)
    assert admin.post(f"/admin/users/{h1}/scope", data={}).status_code == 303
    with app.state.store.session() as s:
        assert repo.get_user(s, h1).department is None
    bad = admin.post(f"/admin/users/{c2}/scope", data={"county": "不存在区"})
    assert bad.status_code == 400 and "区县 不存在区 不在医疗机构名录中" in bad.text
    bad = admin.post(f"/admin/users/{c2}/scope", data={"department": "骨科"})
    assert bad.status_code == 400 and "只有医院用户可以限定科室或主诊医师" in bad.text
    bad = admin.post(f"/admin/users/{h1}/scope", data={"department": "骨科", "doctor_id": "D1"})
    assert bad.status_code == 400 and "只能二选一" in bad.text
    assert admin.post("/admin/users/999999/scope", data={}).status_code == 404
    no_csrf = login(app, "admin")
    del no_csrf.headers["X-CSRF-Token"]
    r = no_csrf.post(f"/admin/users/{c2}/scope", data={"county": COUNTY_OF["H002"]})
    assert r.status_code == 403 and "安全校验失败（CSRF 令牌缺失或错误）" in r.text
    for name in ("agency", "h1"):
        r = clients(name).post(f"/admin/users/{c2}/scope", data={"county": COUNTY_OF["H002"]})
        assert r.status_code == 403, name
    r = scoped("county").patch(f"/api/users/{c2}", json={"scope": {"county": COUNTY_OF["H002"]}})
    assert r.status_code == 403
    with app.state.store.session() as s:
        assert repo.get_user(s, c2).county == COUNTY_OF["H001"]  # unchanged by the refusals
