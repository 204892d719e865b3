"""信用评价 pages: the agency sees every hospital's grade, breakdown and history and records
repairs and complaints; a hospital sees only its own grade and why (other hospitals: 404)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from opendip.store import credit as store_credit
from tests.web.conftest import BOTH_STORES, app_on_both_stores, login


@pytest.fixture(params=BOTH_STORES)
def app(request, make_app):
    """The app on SQLite and on PostgreSQL."""
    yield from app_on_both_stores(request, make_app)


def _line(item: str, name: str, points: str) -> dict:
    return {"subject": "hospital", "item": item, "item_name": name, "measure": item,
            "value": Decimal(1), "numerator": 1, "denominator": 1, "weight": Decimal(30),
            "points": Decimal(points)}  # fmt: skip


def _seed(app) -> None:
    rows = [
        {"subject": "hospital", "hospital_id": "H001", "doctor_id": None,
         "credit_score": Decimal("93.5"), "grade": "A"},
        {"subject": "hospital", "hospital_id": "H002", "doctor_id": None,
         "credit_score": Decimal("61.25"), "grade": "C"},
        {"subject": "doctor", "hospital_id": "H002", "doctor_id": "DR9",
         "credit_score": Decimal("55.5"), "grade": "D"},
    ]  # fmt: skip
    lines = [
        {**_line("violations", "经核实的违规行为", "20"), "hospital_id": "H001"},
        {**_line("violations", "经核实的违规行为", "10"), "hospital_id": "H002"},
    ]
    with app.state.store.session() as s:
        store_credit.save_ratings(s, "2025", rows, lines, {"origin": "测试"})
        store_credit.save_ratings(
            s,
            "2024",
            [{**rows[1], "credit_score": Decimal("80"), "grade": "B"}],
            [],
            {"origin": "测试"},
        )
        s.commit()


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


ENGLISH = re.compile(r"\b[a-z]+_[a-z_]+\b")


def test_agency_sees_every_hospital_with_history(app) -> None:
    _seed(app)
    agency = login(app, "agency")
    r = agency.get("/credit")
    assert r.status_code == 200
    text = _text(r.text)
    assert "H001" in text and "H002" in text and "93.50" in text and "61.25" in text
    assert "2024：B" in text and "2025：C" in text
    assert not ENGLISH.findall(text), ENGLISH.findall(text)
    d = agency.get("/credit/H002")
    assert d.status_code == 200
    assert "DR9" in d.text and "信用修复" in d.text and "经核实的违规行为" in d.text
    assert not ENGLISH.findall(_text(d.text))


def test_a_hospital_sees_only_its_own_grade(app) -> None:
    _seed(app)
    h1 = login(app, "h1")
    r = h1.get("/credit")
    assert r.status_code == 303 and r.headers["location"] == "/credit/H001"
    own = h1.get("/credit/H001")
    assert own.status_code == 200 and "93.50" in own.text and "经核实的违规行为" in own.text
    assert "61.25" not in own.text and "H002" not in own.text
    assert "登记整改" not in own.text  # no repair form for hospitals
    other = h1.get("/credit/H002")
    assert other.status_code == 404 and "61.25" not in other.text
    with app.state.store.session() as s:
        rating = store_credit.ratings(s, "2025", "H002")[0]
    refused = h1.post(f"/credit/ratings/{rating.id}/repair", data={"remediation": "整改"})
    assert refused.status_code == 403
    assert h1.post("/credit/complaints", data={"hospital_id": "H002", "received_on": "2025-03-01",
                   "summary": "x", "substantiated": "1"}).status_code == 403  # fmt: skip
    assert h1.post("/credit/rate", data={"year": "2025"}).status_code == 403


def test_repair_raises_the_grade_by_the_policy_rule_and_is_audited(app) -> None:
    """Demo policy: repair_steps 1, repair_highest_grade B: C → B, then no further."""
    from opendip.store import repositories as repo

    _seed(app)
    agency = login(app, "agency")
    with app.state.store.session() as s:
        rating = store_credit.ratings(s, "2025", "H002")[0]
    r = agency.post(f"/credit/ratings/{rating.id}/repair", data={"remediation": "已退回违规费用"})
    assert r.status_code == 303
    with app.state.store.session() as s:
        again = store_credit.ratings(s, "2025", "H002")[0]
        assert (again.grade, again.grade_in_force) == ("C", "B")
        entries, _ = repo.audit_entries(s, action="credit.repair")
        assert entries and entries[0].details["to"] == "B"
    page = agency.get("/credit/H002").text
    assert "C → B" in page and "已退回违规费用" in page and "已是信用修复可达的最高等级" in page
    second = agency.post(f"/credit/ratings/{rating.id}/repair", data={"remediation": "再次整改"})
    assert second.status_code == 400
    # recomputing the period keeps the repair in force
    with app.state.store.session() as s:
        store_credit.save_ratings(
            s, "2025", [{"subject": "hospital", "hospital_id": "H002", "credit_score": Decimal(50),
                         "grade": "D"}], [], {"origin": "测试"})  # fmt: skip
        s.commit()
        kept = store_credit.ratings(s, "2025", "H002")[0]
        assert (kept.grade, kept.grade_in_force) == ("D", "B")


def test_complaints_recorded_by_the_agency(app) -> None:
    agency = login(app, "agency")
    r = agency.post(
        "/credit/complaints",
        data={"hospital_id": "H002", "received_on": "2026-03-01", "summary": "重复收费",
              "substantiated": "1"},
    )  # fmt: skip
    assert r.status_code == 303
    assert agency.post("/credit/complaints", data={"hospital_id": "H999", "received_on":
                       "2026-03-01", "summary": "x"}).status_code == 400  # fmt: skip
    with app.state.store.session() as s:
        assert store_credit.substantiated_complaints(s, 2026) == [{"hospital_id": "H002"}]
        assert store_credit.substantiated_complaints(s, 2025) == []
    assert "重复收费" in agency.get("/credit").text


def test_rating_a_year_without_a_published_clearing_is_refused(app) -> None:
    agency = login(app, "agency")
    r = agency.post("/credit/rate", data={"year": "2026"})
    assert r.status_code == 409 and "没有已公示的年终清算" in r.text


def test_county_users_see_their_county_and_sub_roles_nothing(app) -> None:
    """A county user (县区经办) sees the grades of its county's hospitals only and cannot
    rate or repair; a hospital's department head and doctors have no credit page; the
    read-only departments neither."""
    import pyarrow.parquet as pq

    from opendip.store import repositories as repo
    from tests.web.conftest import PASSWORD, REGION

    county = {
        h["hospital_id"]: h["county"]
        for h in pq.read_table(REGION / "hospitals.parquet").to_pylist()
    }
    assert county["H001"] != county["H002"]
    _seed(app)
    with app.state.store.session() as s:
        repo.create_user(s, "c1", PASSWORD, "agency", "县区经办", county=county["H001"])
        repo.create_user(s, "doc", PASSWORD, "hospital", "医师", "H001", doctor_id="D1")
        repo.create_user(s, "wj", PASSWORD, "health", "卫健")
        s.commit()
    c1 = login(app, "c1")
    page = c1.get("/credit")
    assert page.status_code == 200
    assert "93.50" in page.text and "61.25" not in page.text
    assert c1.get("/credit/H001").status_code == 200
    assert c1.get("/credit/H002").status_code == 404
    assert "按平台数据重新评价" not in page.text
    with app.state.store.session() as s:
        own = store_credit.ratings(s, "2025", "H001")[0]
    assert c1.post(f"/credit/ratings/{own.id}/repair", data={"remediation": "x"}).status_code == 403
    for name in ("doc", "wj"):
        assert login(app, name).get("/credit/H001").status_code == 403


def test_leads_ordered_by_the_hospitals_credit_grade(app) -> None:
    """Demo policy: C → 4 inspections a year (重点检查), A → 1 (低频抽查). H001 (A, 2025) has
    the riskiest lead (rank 1), H002 (C, 2025) rank 2 and H003 (no grade) rank 3: the
    default order is H002, H001, H003; by risk H001, H002, H003. After 信用修复 of H002 to
    B (2 inspections) it still comes before H001."""
    from opendip.store import repositories as repo

    _seed(app)
    with app.state.store.session() as s:
        repo.import_leads(s, [{"lead_id": f"L{i}", "hospital_id": h, "lead_type": "upcoding",
                               "type_label": "高套分值", "case_ids": [], "evidence": "集中",
                               "rank_overall": i} for i, h in
                              ((1, "H001"), (2, "H002"), (3, "H003"))])  # fmt: skip
        s.commit()
    agency = login(app, "agency")

    def order(query: str = "") -> list[str]:
        html = agency.get(f"/leads{query}").text
        body = html.split('id="leads"')[1]
        return re.findall(r"<tr><td>\d+</td><td>(H\d+)", body)

    assert order() == ["H002", "H001", "H003"]
    assert order("?sort=risk") == ["H001", "H002", "H003"]
    page = _text(agency.get("/leads").text)
    assert "C 级（2025 年）" in page and "重点检查，每年 4 次" in page and "未评价" in page
    assert "A 级（2025 年）" in page and "低频抽查，每年 1 次" in page
    with app.state.store.session() as s:
        rating = store_credit.ratings(s, "2025", "H002")[0]
    agency.post(f"/credit/ratings/{rating.id}/repair", data={"remediation": "已整改"})
    assert order() == ["H002", "H001", "H003"]
    assert "B 级（2025 年）" in _text(agency.get("/leads").text)
