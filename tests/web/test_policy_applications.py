"""政策异议: an application about the budget, directory, a score or a coefficient, with no
case, through the same workflow (accept → expert → decision on the whole application)."""

from __future__ import annotations

from opendip.workflow import OVERALL


def _expert_id(clients) -> int:
    users = clients("admin").get("/api/users").json()
    return next(u["id"] for u in users if u["username"] == "expert")


def test_policy_application_without_cases(clients) -> None:
    h1, agency, expert = clients("h1"), clients("agency"), clients("expert")
    body = {"kind": "policy", "title": "胸痛病种分值偏低", "reason": "近三年费用上涨，分值未调整"}
    missing = h1.post("/api/applications", json=body)
    assert missing.status_code == 400 and "政策异议的事项" in missing.json()["detail"]
    r = h1.post("/api/applications", json={**body, "subject": "score"})
    assert r.status_code == 200, r.text
    app = r.json()
    assert app["case_ids"] == [] and app["subject"] == "score"
    app_id = app["id"]
    agency.post(f"/api/applications/{app_id}/transition", json={"action": "accept", "version": 1})
    agency.post(
        f"/api/applications/{app_id}/transition",
        json={"action": "assign", "version": 2, "expert_id": _expert_id(clients)},
    )
    bad = expert.post(
        f"/api/applications/{app_id}/transition",
        json={"action": "decide", "version": 3, "decisions": []},
    )
    assert bad.status_code == 409 and OVERALL in bad.json()["detail"]
    r = expert.post(
        f"/api/applications/{app_id}/transition",
        json={
            "action": "decide",
            "version": 3,
            "decisions": [{"case_id": OVERALL, "decision": "accept", "opinion": "建议下年度调整"}],
        },
    )
    assert r.status_code == 200 and r.json()["state"] == "feedback", r.text
    page = h1.get(f"/applications/{app_id}")
    assert (
        "病种分值" in page.text and "不涉及具体病例" in page.text and "建议下年度调整" in page.text
    )
    listing = h1.get("/applications?kind=policy")
    assert "胸痛病种分值偏低" in listing.text


def test_dispute_still_needs_a_case(clients) -> None:
    r = clients("h1").post(
        "/api/applications",
        json={"kind": "dispute", "title": "x", "reason": "y", "subject": "score"},
    )
    assert r.status_code == 400 and "至少填写一个结算清单号" in r.json()["detail"]


def test_policy_form(clients) -> None:
    h1 = clients("h1")
    page = h1.get("/applications/new?kind=policy")
    assert "政策异议事项" in page.text
    r = h1.post(
        "/applications",
        data={"kind": "policy", "title": "预算偏紧", "reason": "本年收治增加", "subject": "budget"},
    )
    assert r.status_code == 303, r.text
