"""System-to-system API (issue 19 §1): hospital-scoped API keys, POST /api/v1/cases."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from opendip.store.models import ApiKey, AuditEntry, PushedCase


def _issue(clients, hospital_id: str) -> dict:
    r = clients("admin").post(
        "/api/admin/api-keys", json={"hospital_id": hospital_id, "name": "HIS 接口"}
    )
    assert r.status_code == 200, r.text
    return r.json()


def _system(app, secret: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    client.headers["Authorization"] = f"Bearer {secret}"
    return client


#: The platform's date in these tests (Settings.today): no answer depends on the day they run.
TODAY = dt.date(2026, 11, 20)


@pytest.fixture
def app(make_app):
    return make_app(today=TODAY)


def _case(case_id: str, **extra) -> dict:
    today = TODAY
    return {
        "case_id": case_id,
        "status": "in_stay",
        "admit_date": (today - dt.timedelta(days=4)).isoformat(),
        "department": "消化内科",
        "doctor": "张医生",
        "age": 40,
        "main_diagnosis": "A09.900x001",
        "total_cost_yuan": "3000",
        **extra,
    }


@pytest.fixture
def keys(app, clients):
    a, b = _issue(clients, "H001"), _issue(clients, "H002")
    return {"A": _system(app, a["secret"]), "B": _system(app, b["secret"]), "a": a, "b": b}


def test_key_is_stored_hashed_and_shown_once(app, clients) -> None:
    issued = _issue(clients, "H001")
    assert issued["secret"].startswith("odk_") and issued["prefix"] == issued["secret"][:12]
    with app.state.store.session() as s:
        row = s.get(ApiKey, issued["id"])
        assert row.key_hash != issued["secret"] and len(row.key_hash) == 64
        assert issued["secret"] not in str(row.__dict__)
    listed = clients("admin").get("/api/admin/api-keys").json()
    assert all("secret" not in k for k in listed)
    # only the admin issues keys
    r = clients("agency").post("/api/admin/api-keys", json={"hospital_id": "H001", "name": "x"})
    assert r.status_code == 403
    r = clients("h1").post("/api/admin/api-keys", json={"hospital_id": "H001", "name": "x"})
    assert r.status_code == 403


def test_push_answers_group_score_payment_and_qc(app, keys) -> None:
    r = keys["A"].post("/api/v1/cases", json={"cases": [_case("HIS-0001")]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] == 1 and out["rejected"] == 0
    res = out["results"][0]
    assert res["accepted"] and res["case_id"] == "HIS-0001" and res["version"] == 1
    result = res["result"]
    # The same answer as the pre-grouping service for the same case (shared engine).
    assert result["group_code"] == "基层:A09.9"
    assert result["deviation"] == "normal"
    assert result["estimated_amount_fen"] > 0
    assert result["explanation"]
    assert isinstance(result["qc_findings"], list)
    th = result["thresholds"]
    assert th["low_fen"] < th["mean_fen"] < th["high_fen"]
    assert result["los_days"] == 4


def test_push_is_the_pregroup_answer(app, keys, clients) -> None:
    case = _case("HIS-0009", status="discharged", discharge_date=TODAY.isoformat())
    r = keys["A"].post("/api/v1/cases", json={"cases": [case]})
    result = r.json()["results"][0]["result"]
    pre = (
        clients("h1")
        .post(
            "/api/pregroup",
            json={
                "main_diagnosis": "A09.900x001",
                "total_cost_yuan": "3000",
                "los_days": 4,
                "age": 40,
                "discharge_date": TODAY.isoformat(),
            },
        )
        .json()
    )
    for k in ("group_code", "deviation", "settled_score", "estimated_amount_fen"):
        assert str(result[k]) == str(pre[k]), k


def test_repush_updates_never_duplicates(app, keys) -> None:
    keys["A"].post("/api/v1/cases", json={"cases": [_case("HIS-0002")]})
    # a full-width spelling of the same id is the same case (one normaliser)
    r = keys["A"].post(
        "/api/v1/cases", json={"cases": [_case("ＨＩＳ-０００２", total_cost_yuan="9000")]}
    )
    assert r.status_code == 200
    assert r.json()["results"][0]["version"] == 2
    with app.state.store.session() as s:
        rows = s.query(PushedCase).filter_by(case_id="HIS-0002").all()
        assert len(rows) == 1 and rows[0].version == 2
        assert rows[0].result["total_cost_fen"] == 900000
    listed = keys["A"].get("/api/v1/cases").json()
    assert [c["case_id"] for c in listed] == ["HIS-0002"]


def test_batch_with_bad_cases_accepts_the_good_ones(app, keys) -> None:
    today = TODAY
    batch = [
        _case("HIS-0010"),
        _case("HIS-0011", total_cost_yuan="abc"),
        _case("HIS-0012", admit_date="2026-13-01"),
        {"case_id": "HIS-0013"},
        _case("HIS\u200b0014"),
        _case("HIS-0015", status="discharged"),
        _case("HIS-0010"),
        "not an object",
        _case("HIS-0016", status="discharged", discharge_date=today.isoformat()),
    ]
    r = keys["A"].post("/api/v1/cases", json={"cases": batch})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] == 2 and out["rejected"] == 7
    res = out["results"]
    assert [x["accepted"] for x in res] == [True] + [False] * 7 + [True]
    msgs = {x["index"]: " ".join(e["message"] for e in x["errors"]) for x in res}
    fields = {x["index"]: {e["field"] for e in x["errors"]} for x in res}
    assert fields[1] == {"total_cost_yuan"} and "医疗总费用：须为数字" in msgs[1]
    assert fields[2] == {"admit_date"} and "入院日期" in msgs[2]
    assert {"status", "admit_date", "total_cost_yuan"} <= fields[3]
    assert "结算清单号：含不可见或控制字符" in msgs[4]
    assert "出院日期：出院病例必填" in msgs[5]
    assert "同一批次中重复" in msgs[6]
    assert "须为 JSON 对象" in msgs[7]
    with app.state.store.session() as s:
        assert {p.case_id for p in s.query(PushedCase)} == {"HIS-0010", "HIS-0016"}


def test_all_bad_is_422_and_bad_envelope_is_4xx_never_500(app, keys) -> None:
    r = keys["A"].post("/api/v1/cases", json={"cases": [{"case_id": "X"}]})
    assert r.status_code == 422 and r.json()["accepted"] == 0
    for body in ({}, {"cases": []}, {"cases": "x"}, [1, 2]):
        r = keys["A"].post("/api/v1/cases", json=body)
        assert r.status_code == 422, body
        assert "请求参数有误" in r.json()["detail"]
    r = keys["A"].post(
        "/api/v1/cases", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422


def test_key_scoping_on_every_route(app, keys, case_ids) -> None:
    A, B = keys["A"], keys["B"]
    assert A.post("/api/v1/cases", json={"cases": [_case("HIS-A1")]}).status_code == 200
    # B cannot read A's case, nor list it
    assert B.get("/api/v1/cases/HIS-A1").status_code == 404
    assert A.get("/api/v1/cases/HIS-A1").status_code == 200
    assert [c["case_id"] for c in B.get("/api/v1/cases").json()] == []
    assert [c["case_id"] for c in B.get("/api/v1/cases?status=in_stay").json()] == []
    # B cannot write A's case (pushed through the API) …
    r = B.post("/api/v1/cases", json={"cases": [_case("HIS-A1", total_cost_yuan="1")]})
    assert r.status_code == 422
    assert "已由其他定点医疗机构提交" in r.json()["results"][0]["errors"][0]["message"]
    # … nor one of H001's cases from the region's case file
    theirs = case_ids["H001"][0]
    r = B.post("/api/v1/cases", json={"cases": [_case(theirs)]})
    assert r.status_code == 422
    assert "已由其他定点医疗机构提交" in r.json()["results"][0]["errors"][0]["message"]
    assert B.get(f"/api/v1/cases/{theirs}").status_code == 404
    with app.state.store.session() as s:
        row = s.query(PushedCase).filter_by(case_id="HIS-A1").one()
        assert row.hospital_id == "H001" and row.result["total_cost_fen"] == 300000
        assert s.query(AuditEntry).filter_by(action="api.case_collision").count() == 2


def test_session_and_missing_key_are_refused(app, clients) -> None:
    # a person's session is not an API key
    assert clients("h1").get("/api/v1/cases").status_code == 401
    anon = TestClient(app)
    assert anon.get("/api/v1/cases").status_code == 401
    bad = _system(app, "odk_nonsense")
    r = bad.post("/api/v1/cases", json={"cases": [_case("X1")]})
    assert r.status_code == 401 and r.json()["detail"] == "API 密钥无效或已吊销"


def test_revoked_key_refused(app, clients, keys) -> None:
    assert keys["A"].get("/api/v1/cases").status_code == 200
    r = clients("admin").post(f"/api/admin/api-keys/{keys['a']['id']}/revoke")
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert keys["A"].get("/api/v1/cases").status_code == 401
    assert keys["A"].post("/api/v1/cases", json={"cases": [_case("X2")]}).status_code == 401
    assert keys["B"].get("/api/v1/cases").status_code == 200


def test_rate_limit_per_key(make_app) -> None:
    from tests.web.conftest import login

    app = make_app(api_rate_limit=3, api_rate_window=3600.0, today=TODAY)
    admin = login(app, "admin")
    a = admin.post("/api/admin/api-keys", json={"hospital_id": "H001", "name": "a"}).json()
    b = admin.post("/api/admin/api-keys", json={"hospital_id": "H002", "name": "b"}).json()
    A, B = _system(app, a["secret"]), _system(app, b["secret"])
    assert [A.get("/api/v1/cases").status_code for _ in range(3)] == [200, 200, 200]
    r = A.get("/api/v1/cases")
    assert r.status_code == 429 and "调用过于频繁" in r.json()["detail"]
    assert int(r.headers["Retry-After"]) > 0
    # the limit is per key: B is not affected
    assert B.get("/api/v1/cases").status_code == 200


def test_every_call_audited_and_last_use_set(app, keys) -> None:
    keys["A"].get("/api/v1/cases")
    keys["A"].post("/api/v1/cases", json={"cases": [_case("HIS-0020")]})
    with app.state.store.session() as s:
        key = s.get(ApiKey, keys["a"]["id"])
        assert key.last_used_at is not None
        calls = s.query(AuditEntry).filter_by(action="api.call", object_id=str(key.id)).all()
        assert [c.details["call"] for c in calls] == ["GET /api/v1/cases", "POST /api/v1/cases"]
        push = s.query(AuditEntry).filter_by(action="api.push").one()
        assert push.details["accepted"] == ["HIS-0020"]


def test_qc_findings_and_flags_of_an_in_stay_case(app, keys) -> None:
    complete = _case(
        "HIS-0030",
        patient_id="P0030",
        doctor_id="H001-D01-01",
        admission_route="1",
        birth_date="1986-01-01",
    )
    partial = _case("HIS-0031")  # no patient id, doctor code, admission route
    r = keys["A"].post("/api/v1/cases", json={"cases": [complete, partial]})
    done, missing = (x["result"] for x in r.json()["results"])
    # in stay: the fee breakdown is not known yet, its sum rule does not count
    assert done["qc_blocking"] == 0 and "qc_blocking" not in done["flags"]
    assert not [f for f in done["qc_findings"] if f["field"] == "total_cost"]
    blocking = {f["field"] for f in missing["qc_findings"] if f["level"] == "error"}
    assert blocking == {"patient_id", "doctor_id", "admission_route"}
    assert "qc_blocking" in missing["flags"]
    # cost 3000 yuan, 4 days: neither near the high threshold nor over the group's mean stay
    assert done["flags"] == []
    big = (
        keys["A"]
        .post("/api/v1/cases", json={"cases": [{**complete, "total_cost_yuan": "80000"}]})
        .json()["results"][0]["result"]
    )
    assert big["flags"] == ["over_high"]
    assert big["total_cost_fen"] > big["thresholds"]["high_fen"]
    # the demo policy's monitoring.near_high_share is the default 0.8: 9,000 yuan is between
    # 0.8 × the high threshold and the threshold; 1,000 yuan is under the low threshold
    # 基层:A09.9 (score 14.8501 < 100): same-level (tertiary) mean 341,828 fen × the demo
    # band's high multiple 3 = 1,025,484 fen and × low multiple 0.5 = 170,914 fen
    assert big["thresholds"]["mean_fen"] == 341828
    assert big["thresholds"]["high_fen"] == 1025484 and big["thresholds"]["low_fen"] == 170914
    for cost, expected in (("8203.87", []), ("8203.88", ["near_high"]), ("1000", ["likely_low"])):
        got = (
            keys["A"]
            .post("/api/v1/cases", json={"cases": [{**complete, "total_cost_yuan": cost}]})
            .json()["results"][0]["result"]
        )
        assert got["flags"] == expected, cost


def test_instay_page_and_export_are_scoped_to_the_hospital(app, keys, clients) -> None:
    keys["A"].post("/api/v1/cases", json={"cases": [_case("HIS-SECRET-A", department="骨科")]})
    keys["B"].post("/api/v1/cases", json={"cases": [_case("HIS-B-1")]})
    h1, h2 = clients("h1"), clients("h2")
    assert "HIS-SECRET-A" in h1.get("/instay").text
    page = h2.get("/instay")
    assert page.status_code == 200 and "HIS-B-1" in page.text and "HIS-SECRET-A" not in page.text
    assert h2.get("/instay?hospital_id=H001").status_code == 404
    assert h2.get("/instay/export.xlsx?hospital_id=H001").status_code == 404
    assert "骨科" not in h2.get("/instay?view=departments").text
    x = h2.get("/instay/export.xlsx")
    assert x.status_code == 200 and b"HIS-SECRET-A" not in x.content
    # the agency chooses a hospital; experts have no access
    assert "HIS-SECRET-A" in clients("agency").get("/instay?hospital_id=H001").text
    assert clients("expert").get("/instay").status_code == 403


def test_concurrent_first_push_of_one_case_id_is_one_row(app, keys, monkeypatch) -> None:
    """Two systems push the same new case id at once: the loser's insert hits the unique
    case id, is retried and becomes a version (same hospital) — one row, never a 500."""
    region = app.state.region
    real = region.case_hospitals
    calls = {"n": 0}

    def racing(ids, uploads=()):
        calls["n"] += 1
        if calls["n"] == 1:  # another request stores the case between our read and write
            with app.state.store.session() as other:
                other.add(PushedCase(case_id="HIS-RACE", hospital_id="H001", status="in_stay",
                                     department="", doctor="", payload={}, result={},
                                     version=1))  # fmt: skip
                other.commit()
        return real(ids, uploads)

    monkeypatch.setattr(region, "case_hospitals", racing)
    r = keys["A"].post("/api/v1/cases", json={"cases": [_case("HIS-RACE")]})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["version"] == 2 and calls["n"] == 2
    with app.state.store.session() as s:
        assert s.query(PushedCase).filter_by(case_id="HIS-RACE").count() == 1
