"""Pages and their API: dashboard, case list and detail, pre-grouping, directory,
a monthly run in the background with progress, approval and publication."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from tests.web.conftest import REGION


def test_every_page_renders_for_each_role(clients) -> None:
    pages = {
        "admin": [
            "/",
            "/cases",
            "/pregroup",
            "/directory",
            "/runs",
            "/publication",
            "/applications",
            "/uploads",
            "/leads",
            "/admin/users",
            "/admin/audit",
        ],
        "agency": [
            "/",
            "/cases",
            "/pregroup",
            "/directory",
            "/runs",
            "/publication",
            "/applications",
            "/uploads",
            "/leads",
        ],
        "h1": [
            "/",
            "/cases",
            "/pregroup",
            "/directory",
            "/publication",
            "/applications",
            "/uploads",
            "/applications/new",
        ],
        "expert": ["/", "/directory", "/applications"],
    }
    for user, urls in pages.items():
        c = clients(user)
        for url in urls:
            r = c.get(url)
            assert r.status_code == 200, (user, url, r.text[:200])
            assert '<html lang="zh-CN">' in r.text


def test_case_list_filters_and_pages(clients) -> None:
    agency = clients("agency")
    cases = pq.read_table(REGION / "cases_2026.parquet").to_pylist()
    march = [c for c in cases if c["settle_month"] == "2026-03"]
    r = agency.get("/api/cases", params={"month": "2026-03", "page_size": 7}).json()
    assert r["total"] == len(march) and len(r["rows"]) == min(7, len(march))
    assert [x["case_id"] for x in r["rows"]] == sorted(c["case_id"] for c in march)[:7]
    p2 = agency.get("/api/cases", params={"month": "2026-03", "page_size": 7, "page": 2}).json()
    assert [x["case_id"] for x in p2["rows"]] == sorted(c["case_id"] for c in march)[7:14]
    h003 = [c for c in cases if c["hospital_id"] == "H003"]
    assert agency.get("/api/cases", params={"hospital_id": "H003"}).json()["total"] == len(h003)
    grouped = pq.read_table(REGION / "grouped.parquet").to_pylist()
    code = grouped[0]["group_code"]
    n = sum(g["group_code"] == code for g in grouped)
    r = agency.get("/api/cases", params={"group_code": code, "page_size": 500}).json()
    assert r["total"] == n and {x["group_code"] for x in r["rows"]} == {code}
    dept = cases[0]["department"]
    assert agency.get("/api/cases", params={"department": dept}).json()["total"] == sum(
        c["department"] == dept for c in cases
    )
    assert agency.get("/api/cases", params={"month": "2026-13"}).json()["total"] == len(
        cases
    )  # invalid month ignored
    html = agency.get("/cases", params={"month": "2026-03"}, headers={"HX-Request": "true"})
    assert html.status_code == 200 and "<html" not in html.text and "共" in html.text


def test_case_detail_has_grouping_explanation(clients) -> None:
    case = pq.read_table(REGION / "cases_2026.parquet").slice(0, 1).to_pylist()[0]
    c = clients("agency")
    d = c.get(f"/api/cases/{case['case_id']}").json()
    assert d["case"]["case_id"] == case["case_id"] and d["grouping"]["group_code"]
    assert d["explanation"] and any("结论" in line for line in d["explanation"])
    assert "入组过程" in c.get(f"/cases/{case['case_id']}").text


def test_pregroup_matches_batch_grouping(clients) -> None:
    case = pq.read_table(REGION / "cases_2026.parquet").slice(0, 1).to_pylist()[0]
    grouped = {g["case_id"]: g for g in pq.read_table(REGION / "grouped.parquet").to_pylist()}
    body = {
        "hospital_id": case["hospital_id"],
        "insurance_type": case["insurance_type"],
        "sex": case["sex"],
        "age": case["age"],
        "discharge_date": case["discharge_date"].isoformat(),
        "los_days": case["los_days"],
        "main_diagnosis": case["main_diagnosis"],
        "other_diagnoses": case["other_diagnoses"],
        "main_procedure": case["main_procedure"],
        "other_procedures": case["other_procedures"],
        "total_cost_yuan": f"{case['total_cost'] / 100:.2f}",
        "discharge_method": case["discharge_method"] or "1",
    }
    r = clients("agency").post("/api/pregroup", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["group_code"] == grouped[case["case_id"]]["group_code"]
    h1 = clients("h1")
    # a hospital user is pinned to its own hospital even if it names another
    assert h1.post("/api/pregroup", json={**body, "hospital_id": "H002"}).status_code == 200
    bad = h1.post("/api/pregroup", json={**body, "total_cost_yuan": "-5"})
    assert bad.status_code == 422 and "请求参数有误" in bad.json()["detail"]
    form = h1.post(
        "/pregroup",
        data={
            "csrf_token": h1.headers["X-CSRF-Token"],
            "main_diagnosis": "",
            "total_cost_yuan": "abc",
        },
    )
    assert form.status_code == 422 and "输入有误" in form.text


def test_directory_browse_and_diff(clients, region_dir) -> None:
    c = clients("h1")
    d = c.get("/api/directory").json()
    assert d["total"] == pq.read_metadata(REGION / "directory.parquet").num_rows
    (region_dir / "directories").mkdir()
    t = pq.read_table(REGION / "directory.parquet")
    pq.write_table(t.slice(1), region_dir / "directories" / "v2025.parquet")
    diff = c.get("/api/directory/diff", params={"old": "v2025", "new": "directory"}).json()
    assert diff["counts"] == {"added": 1, "removed": 0, "changed": 0}
    assert (
        c.get("/api/directory/diff", params={"old": "nope", "new": "directory"}).status_code == 404
    )
    assert (
        "版本差异" in c.get("/directory", params={"version": "directory", "compare": "v2025"}).text
    )


def test_monthly_run_approve_publish(clients) -> None:
    agency = clients("agency")
    r = agency.post("/api/runs", json={"kind": "monthly", "period": "2026-02"})
    assert r.status_code == 200, r.text
    run = agency.get(f"/api/runs/{r.json()['id']}").json()
    assert run["status"] == "succeeded", run["message"]
    cases = pq.read_table(REGION / "cases_2026.parquet").to_pylist()
    assert run["manifest"]["cases"] == sum(c["settle_month"] == "2026-02" for c in cases)
    assert "run.start" in [e["action"] for e in clients("admin").get("/api/audit").json()]
    progress = agency.get(f"/runs/{run['id']}/progress")
    assert "已完成" in progress.text and "hx-trigger" not in progress.text
    assert agency.post(f"/api/runs/{run['id']}/publish").status_code == 400  # approve first
    assert agency.post(f"/api/runs/{run['id']}/approve").json()["status"] == "approved"
    assert agency.post(f"/api/runs/{run['id']}/publish").json()["status"] == "published"
    pub = agency.get("/api/publication").json()
    assert pub[0]["run_id"] == run["id"] and len(pub[0]["hospitals"]) > 1
    # Hospitals see the region's published table, as posted publicly, their rows marked.
    seen = clients("h1").get("/api/publication").json()
    assert seen[0]["hospitals"] == [
        {**h, "own": h["hospital_id"] == "H001"} for h in pub[0]["hospitals"]
    ]
    assert any(h["own"] for h in seen[0]["hospitals"])
    page = clients("h1").get("/publication").text
    assert 'class="own"' in page and "本院" in page


def test_run_input_errors(clients) -> None:
    agency = clients("agency")
    assert agency.post("/api/runs", json={"kind": "monthly", "period": "2026"}).status_code == 409
    r = agency.post("/api/runs", json={"kind": "annual", "period": "2031"})
    assert r.status_code == 200 and r.json()["status"] == "failed"
    assert "2031 年没有结算病例" in r.json()["message"]
    r = agency.post("/api/runs", json={"kind": "monthly", "period": "2031-01"})
    assert r.json()["status"] == "failed" and "没有结算病例" in r.json()["message"]


def test_background_run_survives_reload(make_app) -> None:
    from tests.web.conftest import login

    app = make_app(background_runs=True)
    agency = login(app, "agency")
    run_id = agency.post("/api/runs", json={"kind": "monthly", "period": "2026-04"}).json()["id"]
    page = agency.get(f"/runs/{run_id}")
    assert page.status_code == 200 and "run-progress" in page.text
    app.state.runs.wait(run_id)
    assert agency.get(f"/api/runs/{run_id}").json()["status"] == "succeeded"
    assert "已完成" in agency.get(f"/runs/{run_id}").text


def test_interrupted_runs_are_marked_failed_on_restart(make_app) -> None:
    from opendip.store import Run

    app = make_app()
    with app.state.store.session() as s:
        s.add(Run(kind="monthly", period="2026-05", status="running"))
    app2 = make_app()
    with app2.state.store.session() as s:
        run = s.query(Run).filter_by(period="2026-05").one()
        assert run.status == "failed" and "服务重启" in run.message


def test_users_admin(clients) -> None:
    admin = clients("admin")
    r = admin.post(
        "/api/users",
        json={
            "username": "h9",
            "password": "password-9",
            "role": "hospital",
            "hospital_id": "H009",
        },
    )
    assert r.status_code == 200 and r.json()["hospital_id"] == "H009"
    r = admin.post(
        "/api/users", json={"username": "x", "password": "password-9", "role": "hospital"}
    )
    assert r.status_code == 400 and "必须指定" in r.json()["detail"]
    me = next(u for u in admin.get("/api/users").json() if u["username"] == "admin")
    assert admin.patch(f"/api/users/{me['id']}", json={"active": False}).status_code == 400
    r = admin.post(
        "/admin/users",
        data={
            "csrf_token": admin.headers["X-CSRF-Token"],
            "username": "y",
            "password": "short",
            "role": "agency",
        },
    )
    assert (r.status_code == 400 and "密码至少" in r.text) or "至少 8" in r.text


def test_annual_clearing_run(clients) -> None:
    """The year-end clearing runs on the region's year and reports the final point values."""
    agency = clients("agency")
    r = agency.post("/api/runs", json={"kind": "annual", "period": "2026"})
    body = r.json()
    assert r.status_code == 200 and body["status"] == "succeeded", body
    assert set(body["manifest"]["point_values"]) == {"employee", "resident"}
    assert body["manifest"]["steps"][-1] == "年终清算"


def test_annual_clearing_shows_each_hospitals_ratio_and_band(clients) -> None:
    """The run's per-hospital clearing table and the publication carry the DIP/FFS ratio
    used and the band applied (Chinese label), as the clearing's hospital lines say."""
    import pyarrow.parquet as pq

    agency = clients("agency")
    run = agency.post("/api/runs", json={"kind": "annual", "period": "2026"}).json()
    assert run["status"] == "succeeded", run
    page = agency.get(f"/runs/{run['id']}").text
    assert "DIP/按项目比值" in page and "适用分段" in page
    settlement = Path(run["manifest"]["outputs"]["settlement"])
    lines = pq.read_table(settlement / "hospitals.parquet").to_pylist()
    first = sorted(lines, key=lambda r: (r["hospital_id"], r["pool"]))[0]
    assert str(first["dip_ffs_ratio"]) in page
    assert first["ffs_band_label"] in page  # full label in the cell's title
    agency.post(f"/api/runs/{run['id']}/approve")
    agency.post(f"/api/runs/{run['id']}/publish")
    published = agency.get("/publication").text
    assert "DIP/按项目比值与适用分段" in published
    assert f"{first['dip_ffs_ratio']} {first['ffs_band_label']}" in published
    assert "比较口径：DIP 统筹应支付 ÷ 按项目统筹支付" in published


def test_case_list_names_each_group_and_code(clients) -> None:
    """The list shows what a code means: group names from the directory, diagnosis and
    procedure names from the code tables, under each code."""
    from opendip.codes import demo_code_tables

    first = pq.read_table(REGION / "cases_2026.parquet").sort_by("case_id").slice(0, 1)
    case = first.to_pylist()[0]
    grouped = pq.read_table(REGION / "grouped.parquet").to_pylist()
    code = next(g["group_code"] for g in grouped if g["case_id"] == case["case_id"])
    directory = {
        r["group_code"]: r for r in pq.read_table(REGION / "directory.parquet").to_pylist()
    }
    diagnoses = demo_code_tables().diagnoses.to_pylist()
    diagnosis_name = next(d["name"] for d in diagnoses if d["code"] == case["main_diagnosis"])
    html = clients("agency").get("/cases", params={"case_id": case["case_id"]}).text
    assert f'{code}<br><small class="muted">{directory[code]["group_name"]}</small>' in html
    assert f'<br><small class="muted">{diagnosis_name}</small>' in html


def test_file_pickers_are_labelled_in_chinese(clients) -> None:
    """Every upload form uses the Chinese picker (the browser's own "Choose File" follows the
    browser's language), and the real input keeps its name, required flag and filter."""
    import re

    wanted = {
        ("agency", "/uploads"): ('name="file"', " required"),
        ("agency", "/reconcile"): ('name="file"', " required"),
        ("h1", "/applications/new"): ('name="attachments"', " multiple"),
    }
    for (user, url), (name, flag) in wanted.items():
        r = clients(user).get(url)
        assert r.status_code == 200, (user, url)
        inputs = re.findall(r"<input type=\"file\"[^>]*>", r.text)
        assert inputs and all(name in i and flag in i for i in inputs), (url, inputs)
        picker = re.search(r'<span class="file-pick">(.*?)</span></span>', r.text, re.S)
        assert picker and "选择文件" in picker.group(1) and "未选择文件" in picker.group(1), url
