"""The demo's 病案首页 uploads: made once through the upload path at the first start, their
findings on the upload pages, and the credit rating's 病案首页质控通过率 = passes ÷ pages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import func, select

from opendip.store import repositories as repo
from opendip.store.models import Upload
from opendip.web.demo_frontpages import demo_front_pages, ensure_demo_front_pages
from tests.web.conftest import REGION
from tests.web.test_credit_rerate import _publish_annual

TODAY = dt.date(2026, 12, 6)


def test_window_pages_are_the_hospitals_recent_discharges() -> None:
    # 4 windows of 7 days ending 2026-12-06: discharges 2026-11-09 … 2026-12-06
    cases = pq.read_table(REGION / "cases_2026.parquet")
    h1 = cases.filter(pc.equal(cases["hospital_id"], "H001"))
    recent = h1.filter(
        pc.and_(
            pc.greater_equal(h1["discharge_date"], dt.date(2026, 11, 9)),
            pc.less_equal(h1["discharge_date"], TODAY),
        )
    )
    batches = demo_front_pages(REGION / "cases_2026.parquet", "H001", TODAY, 7)
    assert [len(p) for _d, p, _e in batches] == [2, 3, 3]
    assert [d for d, _p, _e in batches] == [
        dt.date(2026, 11, 15),
        dt.date(2026, 11, 22),
        dt.date(2026, 11, 29),
    ]
    ids = sorted(p["BAH"] for _d, pages, _e in batches for p in pages)
    assert ids == sorted(recent["case_id"].to_pylist()) and len(ids) == 8
    # 6 % of 8 pages rounds to 0: still one page carries a coding error
    assert [e for _d, _p, errors in batches for e in errors] == ["C202600000351"]


def test_demo_front_pages_uploaded_once_and_rated(app, make_app, clients, region_dir) -> None:
    # the demo region's upload log (DATA/credit/submissions.parquet), which the rating needs
    (region_dir / "credit").mkdir()
    log = pa.table(
        {
            "hospital_id": ["H001", "H002"],
            "settle_month": ["2026-11", "2026-11"],
            "submitted_at": pa.array([dt.datetime(2026, 12, 3)] * 2, pa.timestamp("us")),
        }
    )
    pq.write_table(log, region_dir / "credit" / "submissions.parquet")
    _publish_annual(app, "2026")
    done = ensure_demo_front_pages(app, ["H001", "H002"], TODAY)
    summary = [(u["hospital_id"], u["status"], u["pages"], u["passed"]) for u in done]
    assert done[-1]["rerated"] is True
    assert summary == [
        ("H001", "imported", 2, 2),
        ("H001", "imported", 3, 2),
        ("H001", "imported", 3, 3),
        ("H002", "imported", 1, 1),
        ("H002", "imported", 1, 0),
    ]
    # a second call, and a restart of the platform on the same data directory, add nothing
    assert ensure_demo_front_pages(app, ["H001", "H002"], TODAY) == []
    assert ensure_demo_front_pages(make_app(), ["H001", "H002"], TODAY) == []
    with app.state.store.session() as s:
        assert s.scalar(select(func.count()).select_from(Upload)) == 5
        dated = [u.created_at for u in s.scalars(select(Upload).order_by(Upload.id))][:3]
        assert [d.date() for d in dated] == [
            dt.date(2026, 11, 15),
            dt.date(2026, 11, 22),
            dt.date(2026, 11, 29),
        ]
    # the page with another main diagnosis, compared with its own settlement list
    h1 = clients("h1")
    second = done[1]["id"]
    page = h1.get(f"/uploads/{second}").text
    assert "病案首页 3 份：首页质控通过 2 份（通过率 66.67%）" in page
    assert "与结算清单比对 3 份" in page
    cases = pq.read_table(REGION / "cases_2026.parquet")
    row = cases.filter(pc.equal(cases["case_id"], "C202600000351")).to_pylist()[0]
    wrong = (row["other_diagnoses"] or ["R69.x00"])[0]
    assert f"主要诊断编码不一致：病案首页 {wrong}，结算清单 {row['main_diagnosis']}" in page
    assert "C202600000351" in page and "main_diagnosis" not in page
    listing = h1.get("/uploads").text
    assert "病案首页_H001_20261129.csv" in listing and "病案首页_H002_" not in listing
    # the re-rate counts the front pages: H001 7 of 8 pass, H002 1 of 2
    with app.state.store.session() as s:
        from opendip.store import credit as store_credit

        ratings = {r.hospital_id: r for r in store_credit.ratings(s, "2026")}
        items = {h: {b["item"]: b for b in ratings[h].breakdown} for h in ("H001", "H002")}
    fp1, fp2 = items["H001"]["front_page"], items["H002"]["front_page"]
    assert (fp1["numerator"], fp1["denominator"]) == (7, 8)
    assert Decimal(fp1["value"]) == Decimal("0.8750")
    assert (fp2["numerator"], fp2["denominator"]) == (1, 2)
    detail = clients("agency").get("/credit/H001").text
    assert "病案首页质控通过率" in detail and "0.8750" in detail
    # the list: one column per item of any rating; a hospital without front pages shows "—"
    listing = clients("agency").get("/credit?period=2026").text
    table = listing.split('id="credit-ratings"')[1].split("</table>")[0]
    head, body = table.split("</thead>")
    assert head.count("</th>") == 5 + 6 + 1 and "病案首页质控通过率" in head
    rows = body.split("<tr>")[1:]
    assert len(rows) > 2 and all(r.count("</td>") == 12 for r in rows)
    h3 = next(r for r in rows if "<td>H003<br>" in r)
    assert h3.split("<td")[-2].endswith(">—</td>") and "评分明细" in h3.split("<td")[-1]
    with app.state.store.session() as s:
        assert repo.audit_entries(s, action="demo.front_pages")[1] == 1
