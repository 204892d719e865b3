"""信用评价 re-rated from the platform's own data, end to end: a published annual clearing,
an imported settlement-list upload (upload log), uploaded 病案首页 (front-page QC pass rate),
a substantiated complaint and a dispute decided against the hospital (counted as a violation
by the demo policy's `credit.count_lost_disputes`) → `/credit/rate` → stored ratings whose
items are the hand-counted inputs; then 信用修复 and a second re-rate keep the repair."""

from __future__ import annotations

import datetime as dt
import io
from decimal import ROUND_HALF_UP, Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from opendip.store import credit as store_credit
from opendip.store import repositories as repo
from tests.web.conftest import BOTH_STORES, REGION, app_on_both_stores, login


@pytest.fixture(params=BOTH_STORES)
def app(request, make_app):
    """The app on SQLite and on PostgreSQL."""
    yield from app_on_both_stores(request, make_app)


def _up(client, name: str, data: bytes):
    return client.post("/api/uploads", files={"file": (name, io.BytesIO(data), "text/csv")})


def _publish_annual(app, year: str) -> int:
    from opendip.store import Run

    with app.state.store.session() as s:
        me = next(u for u in repo.list_users(s) if u.username == "agency")
        run = app.state.runs.start(s, me, "annual", year)
    with app.state.store.session() as s:
        done = s.get(Run, run.id)
        assert done.status == "succeeded", done.message
        me = s.merge(me)
        repo.advance_run(s, me, done, "approve")
        repo.advance_run(s, me, done, "publish")
        s.commit()
        return done.id


def _items(rating) -> dict[str, dict]:
    return {b["item"]: b for b in rating.breakdown}


def test_rerate_from_platform_data_then_repair_survives(app, tmp_path) -> None:
    from opendip.credit.engine import deadline_of
    from opendip.ingest.export import write_settlement_csv
    from opendip.policy import demo_policy_path, load_policy
    from opendip.store.models import Application

    h1, agency = login(app, "h1"), login(app, "agency")
    cases = pq.read_table(REGION / "cases_2026.parquet")
    # two new H001 cases (FPA-1, FPB-1) uploaded as lists, then their front pages: FPA
    # agrees and is on time, FPB has another main diagnosis → 1 of 2 pass
    two = cases.filter(pc.equal(cases["hospital_id"], "H001")).slice(0, 2)
    two = two.set_column(
        two.schema.get_field_index("case_id"), "case_id", pa.array(["FPA-1", "FPB-1"])
    )
    lists = _up(h1, "清单.csv", write_settlement_csv(two, tmp_path / "l.csv").read_bytes())
    assert lists.json()["rows_accepted"] == 2, lists.text
    dx = two["main_diagnosis"].to_pylist()
    px = [p or "" for p in two["main_procedure"].to_pylist()]
    recent = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)).isoformat()
    text = (
        "BAH,ZYCS,XB,CSRQ,RYSJ,CYSJ,CYKB,JBDM,SSJCZBM1\n"
        f"FPA,1,1,1960-01-01,{recent},{recent},A03,{dx[0]},{px[0]}\n"
        f"FPB,1,2,1970-01-01,{recent},{recent},A03,X99.900,{px[1]}\n"
    )
    fp = _up(h1, "首页.csv", text.encode("gb18030"))
    assert "首页质控通过 1 份" in fp.json()["message"], fp.text
    # a substantiated complaint against H001 in 2026, one not substantiated (not counted)
    for sub in ("1", ""):
        r = agency.post("/credit/complaints", data={"hospital_id": "H001", "received_on":
                        "2026-03-01", "summary": "重复收费", "substantiated": sub})  # fmt: skip
        assert r.status_code == 303
    # H002 lost three disputes about its 2026 cases; a dispute it won is not counted
    h2_case = cases.filter(pc.equal(cases["hospital_id"], "H002"))["case_id"][0].as_py()
    with app.state.store.session() as s:
        for outcome in ("rejected", "rejected", "rejected", "upheld"):
            s.add(Application(kind="dispute", hospital_id="H002", title="争议", reason="不服",
                              case_ids=[h2_case], state="archived", outcome=outcome))  # fmt: skip
        s.commit()

    run_id = _publish_annual(app, "2026")
    # the annual run keeps the uploaded front pages' QC status beside it (assessment, report)
    with app.state.store.session() as s:
        from opendip.store import Run

        run_dir = app.state.runs.run_dir(run_id)
    status = pq.read_table(run_dir / "qc" / "front_page_status.parquet").sort_by("case_id")
    assert status["case_id"].to_pylist() == ["FPA-1", "FPB-1"]
    assert status["passed"].to_pylist() == [True, False]

    r = agency.post("/credit/rate", data={"year": "2026"})
    assert r.status_code == 303 and r.headers["location"] == "/credit?period=2026", r.text
    with app.state.store.session() as s:
        h001 = store_credit.ratings(s, "2026", "H001")[0]
        h002 = store_credit.ratings(s, "2026", "H002")[0]
        entries, _ = repo.audit_entries(s, action="credit.rate")
        assert entries and f"第 {run_id} 号运行" in entries[0].details["origin"]
        assert s.get(Run, run_id).status == "published"
    one = _items(h001)
    # front pages 1/2 = 0.5 below zero_at 0.80 → 0 of 10
    assert (one["front_page"]["numerator"], one["front_page"]["denominator"]) == (1, 2)
    assert Decimal(one["front_page"]["points"]) == 0
    # one substantiated complaint: 10 − 5
    assert (one["complaints"]["numerator"], Decimal(one["complaints"]["points"])) == (1, 5)
    # the upload log: the list upload (today) for its cases' months, late after the 10th
    pol = load_policy(demo_policy_path())
    months = sorted(set(two["settle_month"].to_pylist()))
    with app.state.store.session() as s:
        from opendip.store import Upload

        uploaded = s.get(Upload, lists.json()["id"]).created_at.date()
    late = sum(uploaded > deadline_of(m, pol.credit) for m in months)
    assert one["uploads"]["numerator"] == late
    # H002: the lost disputes are three confirmed violations (30 − 3 × 10 = 0); no upload:
    # no late month; no front page: that item does not apply to it. At most 20 + 0 + 10 +
    # 10 + 30 = 70 points: C or D
    two_items = _items(h002)
    v = two_items["violations"]
    assert (v["numerator"], Decimal(v["points"])) == (3, 0)
    assert "front_page" not in two_items and two_items["uploads"]["numerator"] == 0
    # the score is Σ points × 100 ÷ Σ weights of the items that apply, half up
    for rating in (h001, h002):
        pts = sum(Decimal(b["points"]) for b in rating.breakdown)
        w = sum(Decimal(b["weight"]) for b in rating.breakdown)
        assert rating.score == (pts * 100 / w).quantize(Decimal("0.01"), ROUND_HALF_UP)
    page = agency.get("/credit/H001").text
    assert "病案首页质控通过率" in page and "经核实的投诉举报" in page

    # 信用修复 after remediation, then a re-rate: the computed grade is rewritten, the repair
    # stays in force
    before = h002.grade
    with app.state.store.session() as s:
        from opendip.credit.engine import repaired_grade

        target = repaired_grade(pol.credit, before)
    assert before in ("C", "D") and target == {"C": "B", "D": "C"}[before]
    ok = agency.post(f"/credit/ratings/{h002.id}/repair", data={"remediation": "已整改"})
    assert ok.status_code == 303
    assert agency.post("/credit/rate", data={"year": "2026"}).status_code == 303
    with app.state.store.session() as s:
        again = store_credit.ratings(s, "2026", "H002")[0]
        assert again.id == h002.id and again.grade == before
        assert again.grade_in_force == target
        assert len(repo.audit_entries(s, action="credit.rate")[0]) == 2


def test_rerate_is_refused_for_hospitals_and_without_csrf(app) -> None:
    h1 = login(app, "h1")
    r = h1.post("/credit/rate", data={"year": "2026"})
    assert r.status_code == 403
    agency = login(app, "agency")
    del agency.headers["X-CSRF-Token"]
    r = agency.post("/credit/rate", data={"year": "2026"})
    assert r.status_code == 403 and "安全校验失败（CSRF 令牌缺失或错误）" in r.text
    with app.state.store.session() as s:
        assert store_credit.periods(s) == []
