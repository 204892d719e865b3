"""Issue 20 item 12: security headers, no inline script anywhere, secure cookies on demand,
owner-only store and uploads, the first administrator from a command, audit of every
administrative action."""

from __future__ import annotations

import io
import re
import stat
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from opendip.web.security import CSP
from tests.web.conftest import PASSWORD, login, settlement_csv

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "opendip" / "web" / "templates"


def test_security_headers_on_pages_and_api(clients) -> None:
    agency = clients("agency")
    for url in ("/", "/cases", "/api/cases", "/login"):
        r = agency.get(url)
        assert r.headers["content-security-policy"] == CSP, url
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.headers["cache-control"] == "no-store", url
    static = agency.get("/static/app.css")
    assert static.status_code == 200 and static.headers.get("cache-control") != "no-store"
    script_src = re.search(r"script-src ([^;]+)", CSP).group(1)
    assert script_src == "'self'" and "frame-ancestors 'none'" in CSP


def test_templates_hold_no_inline_script() -> None:
    """Everything a page runs comes from /static (the CSP forbids inline script)."""
    for path in TEMPLATES.glob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", text), path.name
        assert not re.search(r"\son[a-z]+\s*=", text), path.name
        assert "javascript:" not in text, path.name
        assert "hx-on" not in text, path.name


def test_secure_cookies_when_asked(make_app) -> None:
    app = make_app(secure_cookies=True)
    c = TestClient(app, follow_redirects=False)
    page = c.get("/login")
    assert "secure" in page.headers["set-cookie"].lower()
    r = c.post("/api/auth/login", json={"username": "agency", "password": PASSWORD})
    assert r.status_code == 200 and "secure" in r.headers["set-cookie"].lower()
    assert r.headers["strict-transport-security"].startswith("max-age=")


def test_store_and_uploads_are_owner_only(app, clients, region_dir, tmp_path) -> None:
    platform = region_dir / "platform"
    assert stat.S_IMODE(platform.stat().st_mode) == 0o700
    assert stat.S_IMODE((platform / "opendip.db").stat().st_mode) == 0o600
    body = (
        clients("h1")
        .post(
            "/api/uploads",
            files={
                "file": ("a.csv", io.BytesIO(settlement_csv(tmp_path, {"H001": 2})), "text/csv")
            },
        )
        .json()
    )
    folder = platform / "uploads" / str(body["id"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "a.csv").stat().st_mode) == 0o600
    written = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert {"cases.parquet", "quarantine.csv", "errors.csv"} <= set(written)
    assert set(written.values()) == {0o600}, written


def test_real_region_admin_from_a_command(region_dir, monkeypatch) -> None:
    from opendip.cli.main import app as cli
    from opendip.store import Store, sqlite_url
    from opendip.store import repositories as repo
    from opendip.web.demo_accounts import is_demo_region

    assert not is_demo_region(region_dir)  # no demo accounts for it by default
    runner = CliRunner()
    monkeypatch.setenv("OPENDIP_ADMIN_PASSWORD", "short")
    r = runner.invoke(cli, ["users", "create-admin", "--data", str(region_dir)])
    assert r.exit_code == 1 and "至少 8" in r.output
    monkeypatch.setenv("OPENDIP_ADMIN_PASSWORD", "a-long-secret-1")
    r = runner.invoke(
        cli, ["users", "create-admin", "--data", str(region_dir), "--username", "chief"]
    )
    assert r.exit_code == 0, r.output
    store = Store(sqlite_url(region_dir))
    with store.session() as s:
        user = repo.user_by_name(s, "chief")
        assert user.role == "admin"
        assert any(e.action == "user.create" for e in repo.audit_entries(s, 10)[0])
    store.dispose()


def test_every_admin_action_is_audited(app, clients) -> None:
    admin = clients("admin")
    with app.state.store.session() as s:
        from opendip.store import repositories as repo

        before = repo.audit_entries(s, 1)[1]
    r = admin.post(
        "/api/users",
        json={"username": "new1", "password": "password-9", "role": "agency", "display_name": "新"},
    )
    uid = r.json()["id"]
    steps = [
        admin.patch(f"/api/users/{uid}", json={"active": False}),
        admin.patch(f"/api/users/{uid}", json={"active": True}),
        admin.patch(f"/api/users/{uid}", json={"unlock": True}),
        admin.patch(f"/api/users/{uid}", json={"password": "password-10"}),
        admin.post(
            f"/admin/users/{uid}",
            data={"action": "deactivate", "csrf_token": admin.headers["X-CSRF-Token"]},
        ),
    ]
    assert all(x.status_code in (200, 303) for x in steps)
    with app.state.store.session() as s:
        rows, total = repo.audit_entries(s, 20)
    assert total - before == 1 + len(steps)
    assert {e.action for e in rows[: len(steps) + 1]} == {"user.create", "user.update"}
    login(app, "agency")  # logins are audited too (see test_auth)


ADMIN_AREAS = {"users", "api_keys", "audit"}


def _areas(route) -> set[str]:
    """The permission areas a route's `require(area)` dependencies name."""
    out: set[str] = set()
    dependant = getattr(route, "dependant", None)
    for dep in dependant.dependencies if dependant is not None else ():
        for cell in getattr(dep.call, "__closure__", None) or ():
            if isinstance(cell.cell_contents, str):
                out.add(cell.cell_contents)
    return out


def test_every_admin_write_route_is_audited(app, clients) -> None:
    """Item 12: every state-changing route of the administrator's areas (found from the route
    table: a new one fails here until it is called below) leaves exactly one audit entry
    naming the action."""
    from starlette.routing import Route

    from opendip.store import repositories as repo
    from tests.web.test_cross_hospital_walk import _all_routes

    found = {
        (m, r.path)
        for r in _all_routes(app.routes)
        if isinstance(r, Route) and _areas(r) & ADMIN_AREAS
        for m in (r.methods or set()) - {"GET", "HEAD"}
    }
    admin = clients("admin")
    csrf = {"csrf_token": admin.headers["X-CSRF-Token"]}

    def last() -> tuple[int, str]:
        with app.state.store.session() as s:
            rows, total = repo.audit_entries(s, 1)
            return total, rows[0].action

    calls = [
        ("POST", "/api/users", {"json": {"username": "n1", "password": "password-9", "role": "agency"}}, "user.create"),
        ("PATCH", "/api/users/{uid}", {"json": {"active": False}}, "user.update"),
        ("POST", "/admin/users", {"data": {"username": "n2", "password": "password-9", "role": "expert", **csrf}}, "user.create"),
        ("POST", "/admin/users/{uid}", {"data": {"action": "activate", **csrf}}, "user.update"),
        ("POST", "/admin/users/{uid}/scope", {"data": {"county": "", **csrf}}, "user.update"),
        ("POST", "/api/admin/api-keys", {"json": {"hospital_id": "H001", "name": "HIS"}}, "api_key.issue"),
        ("POST", "/api/admin/api-keys/{kid}/revoke", {}, "api_key.revoke"),
        ("POST", "/admin/api-keys", {"data": {"hospital_id": "H002", "name": "HIS", **csrf}}, "api_key.issue"),
        ("POST", "/admin/api-keys/{kid}/revoke", {"data": csrf}, "api_key.revoke"),
    ]  # fmt: skip
    assert found == {
        (m, p.replace("{uid}", "{user_id}").replace("{kid}", "{key_id}")) for m, p, _, _ in calls
    }
    ids: dict[str, int] = {}
    for method, path, kwargs, action in calls:
        if "{kid}" in path:
            ids["kid"] = max(k["id"] for k in admin.get("/api/admin/api-keys").json())
        before, _ = last()
        r = admin.request(method, path.format(**ids), **kwargs)
        assert r.status_code in (200, 303), (path, r.status_code, r.text[:300])
        if path == "/api/users":
            ids["uid"] = r.json()["id"]
        total, latest = last()
        assert (total - before, latest) == (1, action), path


def test_serve_takes_secure_cookies_and_proxy_headers_from_the_environment(
    region_dir, monkeypatch
) -> None:
    """Item 12: production set-up from the environment (docs/platform.md, "Running in
    production"): secure cookies + HSTS and the proxy's headers, and no demo accounts for
    a real region."""
    import uvicorn

    from opendip.cli.main import app as cli
    from opendip.store import repositories as repo

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setenv("OPENDIP_SECURE_COOKIES", "1")
    monkeypatch.setenv("OPENDIP_PROXY_HEADERS", "1")
    monkeypatch.setenv("OPENDIP_FORWARDED_ALLOW_IPS", "10.0.0.5")
    r = CliRunner().invoke(cli, ["serve", "--data", str(region_dir), "--port", "8123"])
    assert r.exit_code == 0, r.output
    assert "https://127.0.0.1:8123/" in r.output and "opendip users create-admin" in r.output
    app = seen["app"]
    assert app.state.settings.secure_cookies is True
    assert (seen["proxy_headers"], seen["forwarded_allow_ips"]) == (True, "10.0.0.5")
    with app.state.store.session() as s:
        assert repo.list_users(s) == []
    page = TestClient(app).get("/login")
    assert "secure" in page.headers["set-cookie"].lower()
    assert page.headers["strict-transport-security"] == "max-age=31536000"


def test_api_docs_are_served_from_vendored_assets_under_the_page_csp(app) -> None:
    """/docs loads Swagger UI from /static/vendor (agency networks are closed: no CDN) and
    runs under the same CSP as every page (no inline script)."""
    import re

    from fastapi.testclient import TestClient

    from opendip.web.security import CSP

    c = TestClient(app)
    r = c.get("/docs")
    assert r.status_code == 200 and r.headers["content-security-policy"] == CSP
    urls = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert urls and all(u.startswith("/static/") for u in urls), urls
    for u in urls:
        assert c.get(u).status_code == 200, u
    assert "<script>" not in r.text
    assert c.get("/redoc").status_code == 404
    assert c.get("/openapi.json").json()["info"]["title"] == "OpenDIP 平台 API"
