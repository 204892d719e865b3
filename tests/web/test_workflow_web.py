"""The dispute / special-review workflow through the API and pages, end to end."""

from __future__ import annotations

import re
import threading

from tests.web.conftest import login


def _expert_id(clients) -> int:
    return next(
        u["id"] for u in clients("admin").get("/api/users").json() if u["username"] == "expert"
    )


def test_special_review_flow_feeds_settlement(clients, case_ids) -> None:
    h1, agency, expert = clients("h1"), clients("agency"), clients("expert")
    cases = case_ids["H001"][:2]
    r = h1.post(
        "/api/applications",
        json={
            "kind": "special_review",
            "title": "高倍率病例",
            "reason": "合并严重并发症",
            "case_ids": cases,
        },
    )
    app_id = r.json()["id"]
    assert r.json()["state"] == "submitted" and r.json()["deadline"]
    assert (
        agency.post(
            f"/api/applications/{app_id}/transition", json={"action": "accept", "version": 1}
        ).json()["state"]
        == "accepted"
    )
    r = agency.post(
        f"/api/applications/{app_id}/transition",
        json={"action": "assign", "version": 2, "expert_id": _expert_id(clients)},
    )
    assert r.json()["state"] == "reviewing"
    bad = expert.post(
        f"/api/applications/{app_id}/transition",
        json={
            "action": "decide",
            "version": 3,
            "decisions": [{"case_id": cases[0], "decision": "accept"}],
        },
    )
    assert (
        bad.status_code == 409 and "评定分值" in bad.json()["detail"]
    ) or "尚未给出" in bad.json()["detail"]
    r = expert.post(
        f"/api/applications/{app_id}/transition",
        json={
            "action": "decide",
            "version": 3,
            "decisions": [
                {
                    "case_id": cases[0],
                    "decision": "accept",
                    "reviewed_score": "150.25",
                    "opinion": "同意",
                },
                {"case_id": cases[1], "decision": "reject"},
            ],
        },
    )
    assert r.status_code == 200 and r.json()["state"] == "feedback"
    assert (
        expert.post(f"/api/applications/{app_id}/comments", json={"comment": "已评审"}).status_code
        == 200
    )
    r = agency.post(
        f"/api/applications/{app_id}/transition", json={"action": "archive", "version": 4}
    )
    assert r.json()["state"] == "archived" and r.json()["outcome"] == "partly_upheld"
    assert agency.get("/api/special-reviews").json() == [
        {"case_id": cases[0], "decision": "accept", "reviewed_score": "150.2500"},
        {"case_id": cases[1], "decision": "reject", "reviewed_score": None},
    ]
    # archived: no more comments, and the hospital sees the result
    assert h1.post(f"/api/applications/{app_id}/comments", json={"comment": "x"}).status_code == 409
    page = h1.get(f"/applications/{app_id}")
    assert "已结案归档" in page.text and "150.2500" in page.text


def test_illegal_transition_via_form_is_refused_in_chinese(clients, case_ids) -> None:
    h1 = clients("h1")
    app_id = h1.post(
        "/api/applications",
        json={"kind": "dispute", "title": "t", "reason": "r", "case_ids": case_ids["H001"][:1]},
    ).json()["id"]
    r = h1.post(
        f"/applications/{app_id}/transition",
        data={"action": "archive", "version": "1", "csrf_token": h1.headers["X-CSRF-Token"]},
    )
    assert r.status_code == 409 and "不能执行" in r.text
    r = h1.post(
        f"/applications/{app_id}/transition",
        data={"action": "accept", "version": "1", "csrf_token": h1.headers["X-CSRF-Token"]},
    )
    assert r.status_code == 409 and "只能由" in r.text
    r = h1.post(
        f"/applications/{app_id}/transition",
        data={"action": "teleport", "version": "1", "csrf_token": h1.headers["X-CSRF-Token"]},
    )
    assert r.status_code == 400


def test_double_submitted_form_files_once(clients, case_ids) -> None:
    h1 = clients("h1")
    page = h1.get("/applications/new?kind=dispute")
    token = re.search(r'name="submit_token" value="([^"]+)"', page.text).group(1)
    form = {
        "csrf_token": h1.headers["X-CSRF-Token"],
        "submit_token": token,
        "kind": "dispute",
        "title": "重复提交",
        "reason": "r",
        "case_ids": case_ids["H001"][0],
    }
    first = h1.post("/applications", data=form)
    second = h1.post("/applications", data=form)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert len(h1.get("/api/applications").json()) == 1


def test_new_application_form_errors(clients) -> None:
    h1 = clients("h1")
    r = h1.post(
        "/applications",
        data={
            "csrf_token": h1.headers["X-CSRF-Token"],
            "kind": "dispute",
            "title": "t",
            "reason": "",
            "case_ids": "",
        },
    )
    assert r.status_code == 400 and "请填写" in r.text


def test_concurrent_decisions_over_http_one_wins(app, clients, case_ids) -> None:
    h1, agency = clients("h1"), clients("agency")
    app_id = h1.post(
        "/api/applications",
        json={"kind": "dispute", "title": "t", "reason": "r", "case_ids": case_ids["H001"][:1]},
    ).json()["id"]
    agency.post(f"/api/applications/{app_id}/transition", json={"action": "accept", "version": 1})
    agency.post(
        f"/api/applications/{app_id}/transition",
        json={"action": "assign", "version": 2, "expert_id": _expert_id(clients)},
    )
    a, b = login(app, "expert"), login(app, "expert")
    results = []
    barrier = threading.Barrier(2)

    def go(c, decision):
        barrier.wait()
        r = c.post(
            f"/api/applications/{app_id}/transition",
            json={
                "action": "decide",
                "version": 3,
                "decisions": [{"case_id": case_ids["H001"][0], "decision": decision}],
            },
        )
        results.append((r.status_code, r.json().get("detail", "")))

    ts = [
        threading.Thread(target=go, args=(a, "accept")),
        threading.Thread(target=go, args=(b, "reject")),
    ]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    codes = sorted(code for code, _ in results)
    assert codes == [200, 409], results
    assert any("已被他人" in d or "正被他人" in d for _, d in results)
    final = agency.get(f"/api/applications/{app_id}").json()
    assert final["version"] == 4 and len(final["decisions"]) == 1


def test_leads_page_without_data_says_not_enabled_or_empty(clients) -> None:
    r = clients("agency").get("/leads")
    assert r.status_code == 200 and ("尚未启用" in r.text or "暂无监管线索" in r.text)


def test_special_review_share_cap_at_submission(clients, case_ids) -> None:
    # H001 discharged 48 cases in 2026; 5% (scoring.special_review_max_share) → 2 cases
    h1 = clients("h1")
    cases = case_ids["H001"]
    assert len(cases) == 48

    def submit(ids: list[str], kind: str = "special_review"):
        body = {"kind": kind, "title": "特例", "reason": "费用极高", "case_ids": ids}
        return h1.post("/api/applications", json=body)

    assert submit(cases[:2]).status_code == 200
    r = submit(cases[2:3])
    assert r.status_code in (400, 409)
    assert r.json()["detail"] == (
        "特例单议申报超出上限：医院 H001 2026 年出院 48 例，按医保政策特例单议上限"
        "（出院病例的 5%）最多可申报 2 例；已申报 2 例，本次 1 例，"
        "合计 3 例，超出 1 例"
    )
    # a case already nominated does not count twice; disputes have no such cap
    assert submit(cases[:1]).status_code == 200
    assert submit(cases[2:5], kind="dispute").status_code == 200


def test_annual_run_override_reason_is_audited(clients) -> None:
    agency, admin = clients("agency"), clients("admin")
    r = agency.post(
        "/api/runs",
        json={"kind": "annual", "period": "2026", "review_cap_override": "专家组确认特殊情况"},
    )
    assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
    entries = [
        e for e in admin.get("/api/audit").json() if e["action"] == "run.review_cap_override"
    ]
    assert entries and entries[0]["details"] == {"reason": "专家组确认特殊情况"}
    # within the cap nothing was overridden: no clearing entry
    actions = [e["action"] for e in admin.get("/api/audit").json()]
    assert "clearing.review_cap_overridden" not in actions
