"""After `opendip demo` the platform shows the demo's results: the monthly runs of the year
and the annual clearing are published runs (the engine's files), the annual clearing is
what the home page, 结算公示 and 院端分析 show, and the deposit return is visible."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from opendip.bench import BenchContext, run_bench
from opendip.web.demo_runs import INDEX, load_demo_runs, settle_demo_months
from tests.web.conftest import PASSWORD, USERS, login


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A small demo region (`opendip demo` without serving) and a platform on it."""
    from argon2 import PasswordHasher

    from opendip.store import repositories as repo
    from opendip.web import Settings, create_app

    root = tmp_path_factory.mktemp("demo") / "demo-data"
    ctx = BenchContext(workdir=root, n_cases=800, seed=11)
    run_bench(ctx)
    settle_demo_months(ctx)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            "opendip.store.passwords._HASHER",
            PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
        )
        app = create_app(Settings(data_dir=root, background_runs=False))
        with app.state.store.session() as s:
            for name, (role, hid) in USERS.items():
                repo.create_user(s, name, PASSWORD, role, name, hid)
        cache: dict[str, TestClient] = {}

        def clients(name: str) -> TestClient:
            if name not in cache:
                cache[name] = login(app, name)
            return cache[name]

        yield root, app, clients


def test_demo_runs_are_published_in_the_platform(demo) -> None:
    root, app, clients = demo
    index = json.loads((root / INDEX).read_text(encoding="utf-8"))
    months = [e["period"] for e in index if e["kind"] == "monthly"]
    assert months == [f"2026-{m:02d}" for m in range(1, 13)]
    runs = clients("agency").get("/api/runs").json()
    assert sorted((r["kind"], r["period"]) for r in runs) == sorted(
        [("monthly", m) for m in months] + [("annual", "2026")]
    )
    assert {r["status"] for r in runs} == {"published"}
    # Loaded once: a restart does not list them twice.
    assert load_demo_runs(app.state.store, root) == 0
    annual = next(r for r in runs if r["kind"] == "annual")
    # The run's money is the engine's files.
    engine = json.loads((root / "settlement" / "summary.json").read_text(encoding="utf-8"))
    assert annual["manifest"]["point_values"] == {
        k: str(v) for k, v in engine["point_values"].items()
    }
    # Home page: the published annual clearing.
    dash = clients("agency").get("/api/dashboard").json()
    assert dash["results_source"] == f"第 {annual['id']} 号运行（2026 年终清算，已公示）"
    settled = pq.read_table(root / "settlement" / "cases.parquet")
    assert dash["scored"]["n"] == settled.num_rows
    # A hospital's analysis reads the published annual clearing.
    assert clients("h1").get("/api/analysis").json()["run"]["id"] == annual["id"]
    page = clients("agency").get(f"/runs/{annual['id']}")
    assert "职工结算点值（元/分）" in page.text and "预算点值" not in page.text
    month = next(r for r in runs if r["kind"] == "monthly")
    assert "职工预算点值（元/分）" in clients("agency").get(f"/runs/{month['id']}").text


def test_demo_returns_the_deposit_by_assessment_score(demo) -> None:
    root, _app, _clients = demo
    scores = pq.read_table(root / "assessment" / "assessment.parquet")
    h = pq.read_table(root / "settlement" / "hospitals.parquet")
    assert h.num_rows and set(h["hospital_id"].to_pylist()) <= set(
        scores["hospital_id"].to_pylist()
    )
    returned = pc.sum(h["returned_fen"]).as_py()
    withheld = pc.sum(h["withheld_fen"]).as_py()
    assert 0 < returned < withheld  # some bands return all, some part, some none
    assert set(h["assessment_status"].to_pylist()) == {"按考核得分返还"}


def test_demo_months_are_the_platform_monthly_run(demo) -> None:
    """A monthly run started in 结算管理 on the demo region equals the demo's month."""
    root, _app, clients = demo
    agency = clients("agency")
    run = agency.post("/api/runs", json={"kind": "monthly", "period": "2026-05"}).json()
    assert run["status"] == "succeeded", run.get("message")
    mine = Path(run["manifest"]["outputs"]["settlement"])
    theirs = root / "settlement-months" / "2026-05"
    for name in ("cases.parquet", "hospitals.parquet"):
        assert pq.read_table(mine / name).equals(pq.read_table(theirs / name)), name
