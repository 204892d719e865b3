"""/api/pregroup answers from caches (issue 16 §4) without serving stale access or data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from opendip.policy import demo_policy_path
from opendip.store import repositories as repo
from tests.web.conftest import REGION


def _case_body() -> dict:
    case = pq.read_table(REGION / "cases_2026.parquet").slice(0, 1).to_pylist()[0]
    return {
        "hospital_id": case["hospital_id"],
        "main_diagnosis": case["main_diagnosis"],
        "other_diagnoses": case["other_diagnoses"],
        "main_procedure": case["main_procedure"],
        "other_procedures": case["other_procedures"],
        "discharge_date": case["discharge_date"].isoformat(),
        "total_cost_yuan": f"{case['total_cost'] / 100:.2f}",
    }


def test_logout_is_refused_at_once_although_sessions_are_cached(clients) -> None:
    c = clients("agency")
    assert c.post("/api/pregroup", json=_case_body()).status_code == 200
    assert c.post("/api/pregroup", json=_case_body()).status_code == 200  # from the cache
    assert c.post("/api/auth/logout").status_code == 200
    assert c.post("/api/pregroup", json=_case_body()).status_code == 401


def test_deactivated_user_is_refused_at_once(app, clients) -> None:
    c = clients("h1")
    assert c.post("/api/pregroup", json=_case_body()).status_code == 200
    with app.state.store.session() as s:
        repo.user_by_name(s, "h1").active = False
    assert c.post("/api/pregroup", json=_case_body()).status_code == 401


def test_csrf_is_still_checked_on_a_cached_session(clients) -> None:
    c = clients("agency")
    assert c.post("/api/pregroup", json=_case_body()).status_code == 200
    token = c.headers.pop("X-CSRF-Token")
    try:
        assert c.post("/api/pregroup", json=_case_body()).status_code == 403
    finally:
        c.headers["X-CSRF-Token"] = token


def test_a_replaced_directory_is_used_on_the_next_call(clients, region_dir: Path) -> None:
    c = clients("agency")
    body = _case_body()
    first = c.post("/api/pregroup", json=body).json()
    assert first["group_code"]
    directory = pq.read_table(region_dir / "directory.parquet")
    keep = directory.filter(pc.not_equal(directory["group_code"], first["group_code"]))
    assert keep.num_rows == directory.num_rows - 1
    pq.write_table(keep, region_dir / "directory.parquet")
    second = c.post("/api/pregroup", json=body).json()
    assert second["group_code"] != first["group_code"]


def test_an_edited_policy_is_used_on_the_next_call(make_app, region_dir: Path) -> None:
    from tests.web.conftest import login

    policy = region_dir / "policy.yaml"
    shutil.copy(demo_policy_path(), policy)
    app = make_app()
    c = login(app, "agency")
    body = _case_body()
    assert c.post("/api/pregroup", json=body).status_code == 200
    before = app.state.policy_cache.file(policy)
    policy.write_text(policy.read_text(encoding="utf-8") + "\n# 修订\n", encoding="utf-8")
    assert c.post("/api/pregroup", json=body).status_code == 200
    assert app.state.policy_cache.file(policy) is not before


def test_serve_builds_the_pregroup_caches_before_the_first_request(
    make_app, region_dir: Path, caplog
) -> None:
    from types import SimpleNamespace

    from opendip.web.services import pregroup_is_quick, warm_pregroup

    app = make_app()
    assert getattr(app.state, "grouping_index", None) is None
    warm_pregroup(app)
    built = app.state.grouping_index[1]
    assert built is not None and app.state.code_names and app.state.directory_rows[1]
    # the first request finds everything cached: answered on the event loop
    assert pregroup_is_quick(SimpleNamespace(app=app, scope={}))
    from tests.web.conftest import login

    c = login(app, "agency")
    assert c.post("/api/pregroup", json=_case_body()).status_code == 200
    assert app.state.grouping_index[1] is built
    # a region whose policy cannot be read: warm-up logs it and leaves the error to the
    # first request (the server still starts)
    broken = make_app()
    (region_dir / "policy.yaml").write_text("scoring: [\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="opendip.web"):
        warm_pregroup(broken)
    assert "pre-grouping caches not built at startup" in caplog.text
    assert getattr(broken.state, "grouping_index", None) is None


def test_the_pregroup_api_is_routed_first_and_documented_once(app, clients) -> None:
    first = app.router.routes[0]
    assert (first.path, first.methods) == ("/api/pregroup", {"POST"})
    assert first.include_in_schema is False  # a copy: the original documents it
    from opendip.web.routers.pages import api_pregroup

    assert first.endpoint is api_pregroup
    spec = app.openapi()
    assert list(spec["paths"]["/api/pregroup"]) == ["post"]
    assert spec["paths"]["/api/pregroup"]["post"]["tags"] == ["事前预分组"]
    c = clients("h1")
    assert c.post("/api/pregroup", json=_case_body()).status_code == 200
    assert c.get("/api/pregroup").status_code == 405  # as before: only POST
