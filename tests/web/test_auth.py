"""Login, lockout, CSRF, expiry and logout through the HTTP interface."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import update

from opendip.store import LoginSession
from tests.web.conftest import PASSWORD, login


def _login_form(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200 and "登录" in page.text
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def test_pages_redirect_to_login_and_api_says_401(app) -> None:
    c = TestClient(app, follow_redirects=False)
    r = c.get("/cases")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/cases")
    r = c.get("/api/cases")
    assert r.status_code == 401 and "请重新登录" in r.json()["detail"]


def test_form_login_sets_a_safe_cookie(app) -> None:
    c = TestClient(app, follow_redirects=False)
    token = _login_form(c)
    r = c.post(
        "/login",
        data={"username": "agency", "password": PASSWORD, "csrf_token": token, "next": "/cases"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/cases"
    cookie = r.headers["set-cookie"]
    assert "opendip_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert c.get("/cases").status_code == 200


def test_login_form_needs_its_csrf_token(app) -> None:
    c = TestClient(app, follow_redirects=False)
    _login_form(c)
    r = c.post("/login", data={"username": "agency", "password": PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 403 and "安全校验失败" in r.text


def test_open_redirect_is_refused(app) -> None:
    c = TestClient(app, follow_redirects=False)
    token = _login_form(c)
    r = c.post(
        "/login",
        data={
            "username": "agency",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example",
        },
    )
    assert r.headers["location"] == "/"


def test_lockout_after_configured_failures(make_app) -> None:
    app = make_app(max_failed_logins=3)
    c = TestClient(app)
    msgs = [
        c.post("/api/auth/login", json={"username": "h1", "password": "wrong"}).json()["detail"]
        for _ in range(3)
    ]
    assert len(set(msgs)) == 1 and "用户名或密码错误" in msgs[0] and "锁定" in msgs[0]
    r = c.post("/api/auth/login", json={"username": "h1", "password": PASSWORD})
    assert r.status_code == 401 and "锁定" in r.json()["detail"]
    # an admin unlocks
    admin = login(app, "admin")
    uid = next(u["id"] for u in admin.get("/api/users").json() if u["username"] == "h1")
    assert admin.patch(f"/api/users/{uid}", json={"unlock": True}).status_code == 200
    assert (
        c.post("/api/auth/login", json={"username": "h1", "password": PASSWORD}).status_code == 200
    )
    actions = [e["action"] for e in admin.get("/api/audit").json()]
    assert "user.locked" in actions and "login.failed" in actions and "user.update" in actions


def test_csrf_missing_or_wrong_is_refused(app, clients) -> None:
    c = clients("h1")
    good = c.headers.pop("X-CSRF-Token")
    body = {"kind": "dispute", "title": "t", "reason": "r", "case_ids": ["X"]}
    r = c.post("/api/applications", json=body)
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = c.post("/api/applications", json=body, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    r = c.post(
        "/applications", data={"kind": "dispute", "title": "t", "reason": "r", "case_ids": "X"}
    )
    assert r.status_code == 403 and "安全校验失败" in r.text
    r = c.post("/logout")
    assert r.status_code == 403
    c.headers["X-CSRF-Token"] = good
    assert c.post("/api/auth/logout").status_code == 200


def test_expired_session(app, clients) -> None:
    c = clients("agency")
    assert c.get("/api/auth/me").status_code == 200
    with app.state.store.session() as s:
        s.execute(update(LoginSession).values(expires_at=dt.datetime(2000, 1, 1)))
    r = c.get("/api/auth/me")
    assert r.status_code == 401
    r = c.get("/runs")
    assert r.status_code == 303 and "expired=1" in r.headers["location"]
    assert "会话已过期" in c.get(r.headers["location"]).text


def test_idle_timeout(make_app) -> None:
    app = make_app(session_idle=dt.timedelta(minutes=10))
    c = login(app, "agency")
    with app.state.store.session() as s:
        s.execute(update(LoginSession).values(last_seen_at=dt.datetime(2000, 1, 1)))
    assert c.get("/api/auth/me").status_code == 401


def test_logout_ends_the_session(app, clients) -> None:
    c = clients("agency")
    r = c.post("/logout", data={"csrf_token": c.headers["X-CSRF-Token"]})
    assert r.status_code == 303
    assert c.get("/api/auth/me").status_code == 401


def test_roles_are_enforced(clients) -> None:
    assert clients("h1").get("/runs").status_code == 403
    assert "无权访问" in clients("h1").get("/runs").text
    assert clients("expert").get("/api/cases").status_code == 403
    assert clients("agency").get("/api/users").status_code == 403
    assert clients("agency").get("/admin/audit").status_code == 403
    assert clients("admin").get("/admin/audit").status_code == 200
    assert (
        clients("h1").post("/api/runs", json={"kind": "monthly", "period": "2026-01"}).status_code
        == 403
    )


def test_one_client_is_throttled_across_user_names(make_app) -> None:
    """Issue 20 item 4: guessing many user names from one address is throttled (429)."""
    app = make_app(client_max_failed_logins=4)
    c = TestClient(app)
    codes = [
        c.post("/api/auth/login", json={"username": f"u{i}", "password": "wrong-pw"}).status_code
        for i in range(4)
    ]
    assert codes == [401] * 4
    r = c.post("/api/auth/login", json={"username": "h1", "password": PASSWORD})
    assert r.status_code == 429 and "过于频繁" in r.json()["detail"]
    actions = [e.action for e in _audit(app)]
    assert "login.throttled" in actions


def _audit(app):
    from opendip.store import repositories as repo

    with app.state.store.session() as s:
        return repo.audit_entries(s, limit=50)[0]
