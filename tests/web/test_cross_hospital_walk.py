"""Issue 20: every id-taking route of the app (pages and API, found from the app's own route
table, so a new route is walked without editing this test) as the wrong hospital, an
unassigned expert and every other role: no cross-hospital read or write, no 5xx, including
through uploaded data."""

from __future__ import annotations

import io
import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from starlette.routing import Route

from opendip.ingest.export import write_settlement_csv
from tests.web.conftest import REGION
from tests.web.test_access import (
    _call,
    world,  # noqa: F401  (the fixture)
)

#: Path parameters that are not object ids, and the value used for them.
NOT_IDS = {"fmt": "pdf", "action": "approve"}


def _all_routes(routes) -> list:
    """Routes, looking inside included routers (FastAPI keeps them as included objects)."""
    out = []
    for r in routes:
        inner = getattr(r, "original_router", None)
        out += _all_routes(inner.routes) if inner is not None else [r]
    return out


def _id_routes(app) -> list[tuple[str, str, list[str]]]:
    out = []
    for route in _all_routes(app.routes):
        if not isinstance(route, Route) or "{" not in route.path:
            continue
        params = re.findall(r"{(\w+)}", route.path)
        if not set(params) - set(NOT_IDS):
            continue  # e.g. /analysis.{fmt}: no object id
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                out.append((method, route.path, params))
    return out


def _url(path: str, ids: dict[str, object]) -> str:
    """Known objects by name; any other id parameter gets 1 (an object that is not theirs
    or does not exist: still must not leak or fail)."""
    return re.sub(r"{(\w+)}", lambda m: str(ids.get(m.group(1), 1)), path)


def _kwargs(method: str, path: str) -> dict | None:
    if method == "GET":
        return None
    if path.startswith("/api/"):
        return {"json": {"action": "withdraw", "version": 3, "comment": "看看", "unlock": True}}
    if path.endswith("/attachments"):
        return {"files": {"file": ("x.pdf", b"%PDF", "application/pdf")}, "data": {}}
    return {"data": {"action": "withdraw", "version": "3", "comment": "看看"}}


def _state(app, w) -> tuple:
    from opendip.store import repositories as repo
    from opendip.workflow import Actor

    with app.state.store.session() as s:
        a = repo.get_application(s, Actor(role="agency", user_id=0, hospital_id=None), w["app"])
        return (a.state, a.version, len(a.events), len(a.attachments))


def test_every_id_route_as_every_role(app, clients, world, case_ids) -> None:  # noqa: F811
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
        **NOT_IDS,
    }
    routes = _id_routes(app)
    assert len(routes) >= 25  # the app has 28 today
    secret = world["own_case"]
    before = _state(app, world)
    for role in ("h2", "expert2", "expert", "agency", "admin", "h1"):
        client = clients(role)
        for method, path, _params in routes:
            kwargs = _kwargs(method, path)
            if role in ("agency", "admin", "h1", "expert") and method != "GET":
                continue  # their writes are tested in the workflow tests; here: reads
            r = _call(client, method, _url(path, ids), kwargs)
            assert r.status_code < 500, (role, method, path, r.status_code)
            if role in ("h2", "expert2"):
                # /api/v1 takes a hospital system's API key, never a person's session: 401
                # (key scoping between hospitals: tests/web/test_hospital_api.py).
                refused = (401,) if path.startswith("/api/v1/") else (403, 404, 405, 409, 422)
                assert r.status_code in refused, (role, method, path)
                assert secret not in r.text, (role, method, path)
    assert _state(app, world) == before  # no write by the wrong hospital or expert landed


def test_no_cross_hospital_access_through_uploaded_data(app, clients, case_ids, tmp_path) -> None:
    """H002 uploads H001's case under its own code and under H001's code: both quarantined;
    H001's case is unchanged, H002 never sees it."""
    cases = pq.read_table(REGION / "cases_2026.parquet")
    victim = cases.filter(pc.equal(cases["case_id"], case_ids["H001"][0]))
    total = victim["total_cost"][0].as_py()
    as_h2 = victim.set_column(
        victim.schema.get_field_index("hospital_id"), "hospital_id", pa.array(["H002"])
    )
    as_h1 = victim.set_column(
        victim.schema.get_field_index("total_cost"), "total_cost", pa.array([1], pa.int64())
    )
    h2 = clients("h2")
    for name, table in (("a.csv", as_h2), ("b.csv", as_h1)):
        data = write_settlement_csv(table, tmp_path / name).read_bytes()
        r = h2.post("/api/uploads", files={"file": (name, io.BytesIO(data), "text/csv")})
        assert r.status_code == 200 and r.json()["rows_quarantined"] == 1, r.text
    secret = case_ids["H001"][0]
    assert h2.get(f"/api/cases/{secret}").status_code == 404
    listed = h2.get("/api/cases", params={"case_id": secret}).json()
    assert listed["total"] == 0
    detail = clients("h1").get(f"/api/cases/{secret}").json()
    assert detail["case"]["hospital_id"] == "H001" and detail["case"]["total_cost"] == total
    r = h2.post(
        "/api/applications",
        json={"kind": "dispute", "title": "t", "reason": "r", "case_ids": [secret]},
    )
    assert r.status_code == 409
