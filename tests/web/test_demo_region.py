"""After `opendip demo` the platform shows the demo's results: the monthly runs of the year
and the annual clearing are published runs (the engine's files), the annual clearing is
what the home page, 结算公示 and 院端分析 show, and the deposit return is visible."""

from __future__ import annotations

import html
import json
import re
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
    # 信息公开: the demo's published runs are on the public page, without login.
    public = TestClient(app).get("/public")
    assert public.status_code == 200
    for doc in ("publication.pdf", "qc.csv", "surplus.csv"):
        assert f'href="/public/runs/{annual["id"]}/{doc}"' in public.text, doc
    assert f'href="/public/runs/{month["id"]}/publication.pdf"' in public.text
    # A month's QC evaluation counts that month's cases only (the demo shares one QC run).
    rows = TestClient(app).get(f"/public/runs/{month['id']}/qc.csv").text.splitlines()[1:]
    in_month = pq.read_table(root / "cases_2026.parquet", columns=["settle_month"])
    n = sum(1 for m in in_month["settle_month"].to_pylist() if m == month["period"])
    assert sum(int(r.split(",")[2]) for r in rows) == n


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


# -- Screens in Chinese ---------------------------------------------------------------------
#: Latin words a page may show: names of things (file formats, the product), abbreviations a
#: reader knows. Upper-case tokens and tokens with digits are codes (ICD, ids, chapters).
ALLOWED = {"OpenDIP", "Excel", "Parquet", "xlsx", "csv", "pdf"}
_TAGS = re.compile(r"<(script|style)[^>]*>.*?</\1>", re.S)
_PATH = re.compile(
    r"(?:[A-Za-z]:)?(?:/[\w.@~-]+)+/?|[\w.-]+\.(?:yaml|yml|parquet|csv|xlsx|json|pdf)\b"
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def english_words(page: str, allowed: set[str]) -> set[str]:
    """Words of a page's visible text that are English or identifiers (snake_case,
    lower-case words), outside the allow-list; file paths and codes are not words."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", _TAGS.sub(" ", page)))
    text = _PATH.sub(" ", text)
    found = set()
    for word in _WORD.findall(text):
        word = word.strip(".")
        if word in allowed or not word or any(c.isdigit() for c in word):
            continue  # codes and ids carry digits
        if "_" in word or any(c.islower() for c in word):
            found.add(word)
    return found


def test_english_words_are_found() -> None:
    page = "<p>结算 cost_shifting · fund_plus_personal · annual · K35.800x001 · OpenDIP</p>"
    assert english_words(page, ALLOWED) == {"cost_shifting", "fund_plus_personal", "annual"}
    assert (
        english_words("<p>运行目录 /tmp/demo-data/settlement 代码 XIV BD-F20</p>", ALLOWED) == set()
    )


def test_every_page_and_report_is_chinese(demo) -> None:
    root, _app, clients = demo
    agency, h1 = clients("agency"), clients("h1")
    # A special review from submission to archive, so its pages have history to show.
    settled = pq.read_table(root / "settlement" / "cases.parquet")
    case_id = settled.filter(pc.equal(settled["hospital_id"], "H001"))["case_id"][0].as_py()
    created = h1.post(
        "/api/applications",
        json={
            "kind": "special_review",
            "title": "高费用病例",
            "reason": "使用高值耗材",
            "case_ids": [case_id],
        },
    ).json()
    app_id = created["id"]
    experts = [u for u in clients("admin").get("/api/users").json() if u["role"] == "expert"]
    steps = [
        (agency, {"action": "accept"}),
        (agency, {"action": "assign", "expert_id": experts[0]["id"]}),
        (
            clients("expert"),
            {
                "action": "decide",
                "decisions": [{"case_id": case_id, "decision": "accept", "reviewed_score": "120"}],
            },
        ),
        (agency, {"action": "archive"}),
    ]
    for client, body in steps:
        version = client.get(f"/api/applications/{app_id}").json()["version"]
        r = client.post(f"/api/applications/{app_id}/transition", json={**body, "version": version})
        assert r.status_code == 200, r.text
    runs = agency.get("/api/runs").json()
    annual = next(r for r in runs if r["kind"] == "annual")
    month = next(r for r in runs if r["kind"] == "monthly")
    common = ["/", "/directory", "/directory?q=阑尾", "/applications?kind=special_review",
              "/applications?kind=dispute", "/applications?kind=special_review&archived=1",
              f"/applications/{app_id}", "/public"]  # fmt: skip
    region = ["/cases", f"/cases/{case_id}", "/pregroup", "/publication", "/analysis",
              "/uploads", "/runs", f"/runs/{annual['id']}", f"/runs/{month['id']}",
              f"/runs/{annual['id']}/report", f"/runs/{month['id']}/report", "/leads",
              "/leads?sort=amount&severity=high", "/analysis?hospital_id=H002"]  # fmt: skip
    pages = {
        "admin": [*common, *region, "/admin/users", "/admin/audit"],
        "agency": [*common, *region],
        "h1": [
            *common,
            "/cases",
            f"/cases/{case_id}",
            "/pregroup",
            "/publication",
            "/analysis",
            "/uploads",
            "/applications/new",
        ],
        "expert": common,
    }
    allowed = ALLOWED | set(USERS)  # user names are data
    problems = {}
    for user, urls in pages.items():
        for url in urls:
            r = clients(user).get(url)
            assert r.status_code == 200, (user, url, r.text[:300])
            words = english_words(r.text, allowed)
            if words:
                problems[f"{user} {url}"] = sorted(words)
    assert not problems, "\n".join(f"{k}: {v}" for k, v in sorted(problems.items()))
    # Pre-grouping's result, and the directory search by a Chinese name.
    body = {"hospital_id": "H001", "main_diagnosis": "k35.800x001", "total_cost_yuan": "9000"}
    r = h1.post("/pregroup", data={**body, "csrf_token": h1.headers["X-CSRF-Token"]},
                headers={"HX-Request": "true"})  # fmt: skip
    assert r.status_code == 200 and not english_words(r.text, allowed), english_words(
        r.text, allowed
    )
    # The directory reads like a region's: every group has a Chinese name, searchable.
    names = pq.read_table(root / "directory.parquet")["group_name"].to_pylist()
    assert all(re.search(r"[\u4e00-\u9fff]", n) for n in names), [
        n for n in names if not re.search(r"[\u4e00-\u9fff]", n)
    ]
    word = next(n for n in names if "（" in n and not n.startswith("综合"))[:2]
    found = agency.get("/directory", params={"q": word}).text.split("<tbody>")[-1]
    assert word in found and "<td>" in found


def test_a_demo_run_whose_outputs_changed_is_not_registered(demo, tmp_path) -> None:
    """Issue 20 item 8: the demo's runs were registered from summary.json (the money shown on
    the run list) without checking it against the run's manifest."""
    import shutil

    from opendip.store import Store, sqlite_url

    root, _app, _clients = demo
    copy = tmp_path / "demo-data"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("platform"))
    index = json.loads((copy / INDEX).read_text(encoding="utf-8"))
    march = next(e for e in index if e["period"] == "2026-03")
    summary = copy / march["settlement"] / "summary.json"
    data = json.loads(summary.read_text(encoding="utf-8"))
    data["totals"]["advance_fen"] = int(data["totals"]["advance_fen"]) + 100_000_000
    summary.write_text(json.dumps(data), encoding="utf-8")
    store = Store(sqlite_url(copy))
    try:
        assert load_demo_runs(store, copy) == len(index) - 1
        from opendip.store import Run

        with store.session() as s:
            periods = {r.period for r in s.query(Run).all()}
        assert "2026-03" not in periods and "2026-04" in periods
    finally:
        store.dispose()


def test_demo_shows_year_on_year_and_tcm_paid_as_the_policy_says(demo) -> None:
    """The demo groups last year too, so 首页 and the annual report carry the same
    year-on-year counts; its TCM advantage-group cases are paid 中西医同病同价 (the western
    group's score, or their own when the year's directory lacks it), the explanation saying so."""
    from opendip.reports.region import build_report

    root, _app, clients = demo
    assert (root / "grouped_2025.parquet").is_file()
    yoy = clients("agency").get("/api/dashboard").json()["yoy"]
    report = build_report(root / "settlement")
    assert yoy["groups_compared"] == report.figure("yoy.groups_compared").value > 0
    assert yoy["cheaper"] == report.figure("yoy.groups_cheaper").value
    assert yoy["basic_cases"] == report.figure("yoy.basic_cases").value
    scored = pq.read_table(root / "settlement" / "cases.parquet")
    tcm = scored.filter(pc.is_valid(scored["tcm_group"])).to_pylist()
    assert tcm
    assert all("中西医同病同价" in r["rule_note"] for r in tcm)
    western = [r for r in tcm if "不在本期病种目录" not in r["rule_note"]]
    directory = {
        r["group_code"]: r["score"] for r in pq.read_table(root / "directory.parquet").to_pylist()
    }
    for r in western:  # paid from the western group's score, named in the note
        code = r["rule_note"].split("按西医手术病种")[1].split("分值")[0]
        assert r["paid_base_score"] == directory[code]
