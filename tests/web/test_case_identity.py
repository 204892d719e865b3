"""Case identity (issue 20, items 1–3): a case is (hospital_id, case_id) with normalised ids,
it belongs to the hospital that first submitted it, and a re-upload by that hospital is a
new version that replaces the old one in every run (exactly one row per case)."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opendip.store import repositories as repo
from tests.web.conftest import REGION


def _csv(tmp_path: Path, table: pa.Table, name: str) -> bytes:
    from opendip.ingest.export import write_settlement_csv

    return write_settlement_csv(table, tmp_path / name).read_bytes()


def _region_cases() -> pa.Table:
    return pq.read_table(REGION / "cases_2026.parquet")


def _rows(hospital: str, n: int, start: int = 0) -> pa.Table:
    t = _region_cases()
    return t.filter(pc.equal(t["hospital_id"], hospital)).slice(start, n)


def _set(t: pa.Table, name: str, values: list) -> pa.Table:
    i = t.schema.get_field_index(name)
    return t.set_column(i, name, pa.array(values, t.schema.field(name).type))


def _up(client, name: str, data: bytes):
    r = client.post("/api/uploads", files={"file": (name, io.BytesIO(data), "text/csv")})
    assert r.status_code == 200, r.text
    return r.json()


def _current(app, case_id: str) -> list[dict]:
    region = app.state.region
    with app.state.store.session() as s:
        uploads = repo.accepted_upload_files(s)
    cases = region.cases_expr(uploads)
    return cases.filter(cases.case_id == case_id).to_pyarrow().to_pylist()


def test_hospital_cannot_take_another_hospitals_case(app, clients, tmp_path) -> None:
    """Item 1: H001 uploads H002's case with 定点医疗机构代码 changed to H001."""
    stolen = _rows("H002", 1)
    case_id = stolen["case_id"][0].as_py()
    stolen = _set(stolen, "hospital_id", ["H001"])
    body = _up(clients("h1"), "steal.csv", _csv(tmp_path, stolen, "steal.csv"))
    assert (body["rows_read"], body["rows_accepted"], body["rows_quarantined"]) == (1, 0, 1)
    # the case still belongs to H002, once
    rows = _current(app, case_id)
    assert [r["hospital_id"] for r in rows] == ["H002"]
    assert clients("h2").get(f"/api/cases/{case_id}").status_code == 200
    assert clients("h1").get(f"/api/cases/{case_id}").status_code == 404
    # the agency sees the collision and its reason
    agency = clients("agency")
    q = agency.get(f"/uploads/{body['id']}/quarantine.csv").content.decode("utf-8-sig")
    assert f"结算清单号 {case_id} 已由其他定点医疗机构提交" in q
    audit = agency.get("/api/uploads").json()
    assert any(u["id"] == body["id"] for u in audit)
    with app.state.store.session() as s:
        actions = [e.action for e in repo.audit_entries(s, limit=20)[0]]
    assert "upload.case_collision" in actions


def test_first_uploader_owns_a_new_case(app, clients, tmp_path) -> None:
    """Item 1 via uploads only: H002 uploads a new case; H001's later upload of the same id
    is quarantined, and the case stays H002's."""
    new = _set(_rows("H002", 1), "case_id", ["NEW001"])
    _up(clients("h2"), "h2.csv", _csv(tmp_path, new, "h2.csv"))
    copy = _set(new, "hospital_id", ["H001"])
    body = _up(clients("h1"), "h1.csv", _csv(tmp_path, copy, "h1.csv"))
    assert body["rows_quarantined"] == 1
    assert [r["hospital_id"] for r in _current(app, "NEW001")] == ["H002"]


def test_race_between_uploads_resolves_to_first_owner(app, tmp_path) -> None:
    """cases_expr guards even when the import-time check was bypassed (two uploads at once):
    the earliest upload owns the case id, the other hospital's row is not used."""
    region = app.state.region
    a = _set(_rows("H002", 1), "case_id", ["RACE1"])
    b = _set(_set(a, "hospital_id", ["H001"]), "total_cost", [1])
    pq.write_table(a, tmp_path / "a.parquet")
    pq.write_table(b, tmp_path / "b.parquet")
    cases = region.cases_expr([str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")])
    rows = cases.filter(cases.case_id == "RACE1").to_pyarrow().to_pylist()
    assert [r["hospital_id"] for r in rows] == ["H002"]
    cases = region.cases_expr([str(tmp_path / "b.parquet"), str(tmp_path / "a.parquet")])
    rows = cases.filter(cases.case_id == "RACE1").to_pyarrow().to_pylist()
    assert [(r["hospital_id"], r["total_cost"]) for r in rows] == [("H001", 1)]


def test_zero_width_and_control_ids_are_quarantined(clients, tmp_path) -> None:
    """Item 2: the same case id with a zero-width space, NUL, bidi override, a very long id
    and hospital id 'H001\\u200b' are refused with a reason naming the field."""
    base = _rows("H001", 6)
    own = base["case_id"][0].as_py()
    ids = [own + "\u200b", "A\x00B", "\u202eABC", "X" * 5000, "OK0001", "OK0002"]
    t = _set(base, "case_id", ids)
    t = _set(t, "hospital_id", ["H001"] * 5 + ["H001\u200b"])
    body = _up(clients("h1"), "ids.csv", _csv(tmp_path, t, "ids.csv"))
    assert (body["rows_read"], body["rows_accepted"], body["rows_quarantined"]) == (6, 1, 5)
    q = clients("h1").get(f"/uploads/{body['id']}/quarantine.csv").content.decode("utf-8-sig")
    assert q.count("结算清单号：含不可见或控制字符") == 3
    assert "结算清单号：过长（最多 64 个字符）" in q
    assert "定点医疗机构代码：含不可见或控制字符" in q


def test_full_width_id_is_the_same_case(app, clients, tmp_path) -> None:
    """Item 2: 'Ｕ００００１' (full width) after NFKC is 'U00001': one case, not two."""
    t = _set(_rows("H001", 1), "case_id", ["U00001"])
    _up(clients("h1"), "a.csv", _csv(tmp_path, t, "a.csv"))
    wide = _set(_set(t, "case_id", [" Ｕ００００１ "]), "total_cost", [123456])
    body = _up(clients("h1"), "b.csv", _csv(tmp_path, wide, "b.csv"))
    assert body["rows_accepted"] == 1
    rows = _current(app, "U00001")
    assert [(r["hospital_id"], r["total_cost"]) for r in rows] == [("H001", 123456)]


def test_correction_replaces_earlier_version(app, clients, tmp_path) -> None:
    """Item 3: a re-upload of a region case and of an uploaded case by the same hospital:
    exactly one row each, the latest version; the versions stay in the upload history."""
    own = _rows("H001", 1)
    case_id = own["case_id"][0].as_py()
    first = _set(own, "total_cost", [111100])
    second = _set(own, "total_cost", [222200])
    h1 = clients("h1")
    one = _up(h1, "v1.csv", _csv(tmp_path, first, "v1.csv"))
    assert [r["total_cost"] for r in _current(app, case_id)] == [111100]
    two = _up(h1, "v2.csv", _csv(tmp_path, second, "v2.csv"))
    assert "更正" in two["message"]
    assert [r["total_cost"] for r in _current(app, case_id)] == [222200]
    # uploading version 1 again makes it the latest (not swallowed as a duplicate file)
    three = _up(h1, "v1.csv", _csv(tmp_path, first, "v1.csv"))
    assert three["id"] not in (one["id"], two["id"])
    assert [r["total_cost"] for r in _current(app, case_id)] == [111100]
    with app.state.store.session() as s:
        entries = [e for e in repo.audit_entries(s, limit=50)[0] if e.action == "upload.imported"]
    assert sorted(e.details.get("replaced") for e in entries) == [1, 1, 1]


def test_corrected_case_is_paid_once_in_a_run(app, clients, tmp_path) -> None:
    """Item 3 end to end: after a correction, the monthly run holds the case once."""
    own = _rows("H001", 1)
    case_id = own["case_id"][0].as_py()
    month = own["settle_month"][0].as_py()
    h1 = clients("h1")
    _up(h1, "v1.csv", _csv(tmp_path, _set(own, "total_cost", [111100]), "v1.csv"))
    _up(h1, "v2.csv", _csv(tmp_path, _set(own, "total_cost", [222200]), "v2.csv"))
    r = clients("agency").post("/api/runs", json={"kind": "monthly", "period": month})
    assert r.status_code == 200, r.text
    run_id = r.json()["id"]
    run = clients("agency").get(f"/api/runs/{run_id}").json()
    assert run["status"] == "succeeded", run
    cases = pq.read_table(app.state.runs.run_dir(run_id) / "cases.parquet")
    mine = cases.filter(pc.equal(cases["case_id"], case_id))
    assert mine["total_cost"].to_pylist() == [222200]
