"""Access control for every route that takes an id: a hospital never reaches another
hospital's cases, uploads, applications or attachments (404, not 403), an expert only
its assigned reviews. The route table is checked against the app, so a new id-taking
route without a test here fails. Every test runs on SQLite and on PostgreSQL (the store
behind the app), as the store tests do."""

from __future__ import annotations

import io

import pytest
from starlette.routing import Route

from tests.web.conftest import BOTH_STORES, app_on_both_stores, settlement_csv


@pytest.fixture(params=BOTH_STORES)
def app(request, make_app):
    """The app on SQLite and on PostgreSQL."""
    yield from app_on_both_stores(request, make_app)


# (method, path template) → the test below that covers it
COVERED = {
    ("GET", "/cases/{case_id}"),
    ("GET", "/api/cases/{case_id}"),
    ("GET", "/uploads/{upload_id}"),
    ("GET", "/api/uploads/{upload_id}"),
    ("GET", "/uploads/{upload_id}/quarantine.csv"),
    ("GET", "/uploads/{upload_id}/progress"),
    ("GET", "/applications/{app_id}"),
    ("GET", "/api/applications/{app_id}"),
    ("POST", "/applications/{app_id}/transition"),
    ("POST", "/api/applications/{app_id}/transition"),
    ("POST", "/applications/{app_id}/comment"),
    ("POST", "/api/applications/{app_id}/comments"),
    ("POST", "/applications/{app_id}/attachments"),
    ("GET", "/applications/{app_id}/attachments/{att_id}"),
    ("GET", "/runs/{run_id}"),
    ("GET", "/api/runs/{run_id}"),
    ("GET", "/runs/{run_id}/progress"),
    ("POST", "/runs/{run_id}/{action}"),
    ("POST", "/api/runs/{run_id}/approve"),
    ("POST", "/api/runs/{run_id}/publish"),
    ("POST", "/admin/users/{user_id}"),
    ("POST", "/admin/users/{user_id}/scope"),
    ("PATCH", "/api/users/{user_id}"),
    ("POST", "/leads/{lead_id}"),
    ("POST", "/api/leads/{lead_id}"),
}


def test_every_id_route_is_covered() -> None:
    from opendip.web.routers import admin, applications, auth, data, pages, runs

    found = set()
    for module in (admin, applications, auth, data, pages, runs):
        for route in module.router.routes:
            if isinstance(route, Route) and "{" in route.path:
                for method in route.methods or ():
                    if method != "HEAD":
                        found.add((method, route.path))
    assert found == COVERED


@pytest.fixture
def world(app, clients, case_ids, tmp_path):
    """An H001 application with an attachment, assigned to `expert`; an H001 upload; a run."""
    h1 = clients("h1")
    own = case_ids["H001"][0]
    r = h1.post(
        "/api/applications",
        json={
            "kind": "dispute",
            "title": "入组有误",
            "reason": "主诊断应为 K35",
            "case_ids": [own],
        },
    )
    assert r.status_code == 200, r.text
    app_id = r.json()["id"]
    r = h1.post(
        f"/applications/{app_id}/attachments",
        files={"file": ("病案首页.pdf", b"%PDF-1.4 demo", "application/pdf")},
    )
    assert r.status_code == 303
    att_id = h1.get(f"/api/applications/{app_id}").json()["attachments"][0]["id"]
    agency = clients("agency")
    agency.post(f"/api/applications/{app_id}/transition", json={"action": "accept", "version": 1})
    expert_id = next(
        u["id"] for u in clients("admin").get("/api/users").json() if u["username"] == "expert"
    )
    r = agency.post(
        f"/api/applications/{app_id}/transition",
        json={"action": "assign", "version": 2, "expert_id": expert_id},
    )
    assert r.status_code == 200, r.text
    csv = settlement_csv(tmp_path, {"H001": 3, "H002": 1})
    r = h1.post("/api/uploads", files={"file": ("h1.csv", io.BytesIO(csv), "text/csv")})
    assert r.status_code == 200, r.text
    upload_id = r.json()["id"]
    from opendip.store import Run

    with app.state.store.session() as s:  # a finished run (the pipeline is tested elsewhere)
        run = Run(kind="monthly", period="2026-01", status="succeeded")
        s.add(run)
        s.flush()
        run_id = run.id
    return {
        "app": app_id,
        "att": att_id,
        "upload": upload_id,
        "run": run_id,
        "own_case": own,
        "other_case": case_ids["H002"][0],
    }


def _requests(w):
    a, att, up, run = w["app"], w["att"], w["upload"], w["run"]
    return [
        ("GET", f"/cases/{w['own_case']}", None),
        ("GET", f"/api/cases/{w['own_case']}", None),
        ("GET", f"/uploads/{up}", None),
        ("GET", f"/api/uploads/{up}", None),
        ("GET", f"/uploads/{up}/quarantine.csv", None),
        ("GET", f"/uploads/{up}/progress", None),
        ("GET", f"/applications/{a}", None),
        ("GET", f"/api/applications/{a}", None),
        ("POST", f"/applications/{a}/transition", {"data": {"action": "withdraw", "version": "3"}}),
        (
            "POST",
            f"/api/applications/{a}/transition",
            {"json": {"action": "withdraw", "version": 3}},
        ),
        ("POST", f"/applications/{a}/comment", {"data": {"comment": "看看"}}),
        ("POST", f"/api/applications/{a}/comments", {"json": {"comment": "看看"}}),
        (
            "POST",
            f"/applications/{a}/attachments",
            {"files": {"file": ("x.pdf", b"%PDF", "application/pdf")}},
        ),
        ("GET", f"/applications/{a}/attachments/{att}", None),
    ], [
        ("GET", f"/runs/{run}", None),
        ("GET", f"/api/runs/{run}", None),
        ("GET", f"/runs/{run}/progress", None),
        ("POST", f"/runs/{run}/approve", {"data": {}}),
        ("POST", f"/api/runs/{run}/approve", None),
        ("POST", f"/api/runs/{run}/publish", None),
        ("GET", f"/runs/{run}/report", None),
        ("GET", f"/runs/{run}/report.pdf", None),
        ("GET", f"/runs/{run}/report.xlsx", None),
        ("GET", f"/runs/{run}/publication.pdf", None),
        ("GET", f"/api/runs/{run}/report", None),
        ("POST", f"/runs/{run}/report/refresh", {"data": {}}),
    ]


def _call(client, method, url, kwargs):
    kwargs = dict(kwargs or {})
    if "data" in kwargs:
        kwargs["data"] = {**kwargs["data"], "csrf_token": client.headers["X-CSRF-Token"]}
    return client.request(method, url, **kwargs)


def test_other_hospital_gets_404_everywhere(clients, world) -> None:
    h2 = clients("h2")
    hospital_routes, region_routes = _requests(world)
    for method, url, kwargs in hospital_routes:
        r = _call(h2, method, url, kwargs)
        assert r.status_code == 404, (method, url, r.status_code)
        assert "未找到" in r.text
    for method, url, kwargs in region_routes:  # region-level areas: role refused
        assert _call(h2, method, url, kwargs).status_code == 403, url
    # the owner reaches its own objects
    h1 = clients("h1")
    for method, url, kwargs in hospital_routes[:7] + hospital_routes[-1:]:
        assert _call(h1, method, url, kwargs).status_code == 200, url


def test_unassigned_expert_gets_404(clients, world) -> None:
    other = clients("expert2")
    hospital_routes, _ = _requests(world)
    for method, url, kwargs in hospital_routes:
        r = _call(other, method, url, kwargs)
        assert r.status_code in (403, 404), url
        if ("/applications/" in url or "/cases/" in url) and not url.endswith("/attachments"):
            assert r.status_code == 404, url  # (filing attachments is a hospital role: 403)
    expert = clients("expert")
    assert expert.get(f"/api/applications/{world['app']}").status_code == 200
    assert expert.get(f"/cases/{world['own_case']}").status_code == 200  # a case under review
    assert expert.get(f"/cases/{world['other_case']}").status_code == 404


def test_hospital_cannot_read_other_hospital_case(clients, world) -> None:
    h1 = clients("h1")
    assert h1.get(f"/cases/{world['other_case']}").status_code == 404
    assert h1.get(f"/api/cases/{world['other_case']}").status_code == 404
    assert h1.get("/api/cases/NO-SUCH-CASE").status_code == 404


def test_hospital_lists_are_pinned_to_own_hospital(clients) -> None:
    h1 = clients("h1")
    rows = h1.get("/api/cases", params={"hospital_id": "H002", "page_size": 500}).json()["rows"]
    assert rows and {r["hospital_id"] for r in rows} == {"H001"}
    assert "H002" not in {
        r["hospital_id"] for r in h1.get("/api/cases?page_size=500").json()["rows"]
    }
    assert h1.get("/api/dashboard").json()["cases"] == h1.get("/api/cases").json()["total"]
    assert clients("h2").get("/api/uploads").json() == [] or all(
        u["hospital_id"] == "H002" for u in clients("h2").get("/api/uploads").json()
    )
    assert clients("h2").get("/api/applications").json() == []


def test_guessed_ids_for_missing_objects_are_404(clients) -> None:
    agency = clients("agency")
    for url in (
        "/api/applications/99999",
        "/api/uploads/99999",
        "/api/runs/99999",
        "/applications/99999/attachments/1",
    ):
        assert agency.get(url).status_code == 404
    assert (
        agency.post("/api/leads/99999", json={"action": "close", "version": 1}).status_code == 404
    )
    admin = clients("admin")
    assert admin.patch("/api/users/99999", json={"unlock": True}).status_code == 404
    assert (
        admin.post(
            "/admin/users/99999",
            data={"action": "unlock", "csrf_token": admin.headers["X-CSRF-Token"]},
        ).status_code
        == 404
    )
    assert (
        admin.post(
            "/admin/users/99999/scope",
            data={"county": "", "csrf_token": admin.headers["X-CSRF-Token"]},
        ).status_code
        == 404
    )
    # only an admin may change a scope, whatever the id
    assert (
        agency.post(
            "/admin/users/1/scope",
            data={"county": "", "csrf_token": agency.headers["X-CSRF-Token"]},
        ).status_code
        == 403
    )
    assert (
        agency.post(
            "/leads/99999",
            data={"action": "close", "version": "1", "csrf_token": agency.headers["X-CSRF-Token"]},
        ).status_code
        == 404
    )


def test_filing_for_another_hospitals_case_is_refused(clients, case_ids) -> None:
    h1 = clients("h1")
    r = h1.post(
        "/api/applications",
        json={
            "kind": "special_review",
            "title": "t",
            "reason": "r",
            "case_ids": [case_ids["H002"][0]],
        },
    )
    assert r.status_code == 409 and "不属于申请医院" in r.json()["detail"]
    # and the message does not differ between "exists elsewhere" and "does not exist"
    r2 = h1.post(
        "/api/applications",
        json={"kind": "special_review", "title": "t", "reason": "r", "case_ids": ["NOPE"]},
    )
    assert r2.json()["detail"].replace("NOPE", "") == r.json()["detail"].replace(
        case_ids["H002"][0], ""
    )
