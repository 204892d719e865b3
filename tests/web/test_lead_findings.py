"""A supervision lead confirmed with its decision and adjustment changes money at the next
annual clearing of its year; an invalid adjustment is refused naming the field."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from opendip.store import repositories as repo


def _lead(app, hospital: str, cases: list[str]) -> int:
    with app.state.store.session() as s:
        repo.import_leads(
            s,
            [
                {
                    "lead_id": "UPC-T1",
                    "hospital_id": hospital,
                    "lead_type": "upcoding",
                    "type_label": "高套分值",
                    "case_ids": cases,
                    "evidence": "合并症编码集中",
                }
            ],
        )
        s.commit()
        return repo.list_leads(s)[0].id


def test_confirmed_lead_is_deducted_at_the_clearing(app, clients, case_ids) -> None:
    agency = clients("agency")
    lead_id = _lead(app, "H001", case_ids["H001"][:2])
    with app.state.store.session() as s:
        me = next(u for u in repo.list_users(s) if u.username == "agency")
    r = agency.post(f"/api/leads/{lead_id}", json={"action": "assign", "version": 1,
                                                   "assignee_id": me.id})  # fmt: skip
    assert r.status_code == 200
    bad = agency.post(
        f"/leads/{lead_id}",
        data={"action": "confirm", "version": 2, "kind": "deduct", "year": "2026",
              "case_id": case_ids["H001"][0], "amount_yuan": "-1", "conclusion": "扣款"},
    )  # fmt: skip
    assert bad.status_code == 409 and "amount_yuan" in bad.text
    ok = agency.post(
        f"/leads/{lead_id}",
        data={"action": "confirm", "version": 2, "kind": "deduct", "year": "2026",
              "case_id": case_ids["H001"][0], "amount_yuan": "100.00",
              "conclusion": "经核实高套，扣款 100 元"},
    )  # fmt: skip
    assert ok.status_code == 303, ok.text
    page = agency.get("/leads")
    assert "确认违规" in page.text and "扣减金额" in page.text

    with app.state.store.session() as s:
        run = app.state.runs.start(s, me, "annual", "2026")
    with app.state.store.session() as s:
        from opendip.store import Run

        done = s.get(Run, run.id)
        assert done.status == "succeeded", done.message
        settlement = app.state.runs.settlement_dir(done)
    h = pq.read_table(Path(settlement) / "hospitals.parquet").to_pylist()
    deducted = {(r["hospital_id"], r["pool"]): r["findings_deducted_fen"] for r in h}
    assert sum(deducted.values()) == 10_000
    assert [k[0] for k, v in deducted.items() if v] == ["H001"]
    listed = pq.read_table(Path(settlement) / "findings.parquet").to_pylist()
    assert listed[0]["decision"] == "经核实高套，扣款 100 元"
    for p in pq.read_table(Path(settlement) / "reconciliation.parquet").to_pylist():
        assert p["clearing_identity"] and p["cases_equal_hospitals"]
