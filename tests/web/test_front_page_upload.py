"""病案首页 upload: checked by front-page QC against the lists the hospital submitted."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tests.web.conftest import REGION


def _up(client, name: str, data: bytes):
    return client.post("/api/uploads", files={"file": (name, io.BytesIO(data), "text/csv")})


def test_front_page_upload_compares_with_the_lists(clients, tmp_path) -> None:
    from opendip.ingest.export import write_settlement_csv

    h1 = clients("h1")
    cases = pq.read_table(REGION / "cases_2026.parquet")
    two = cases.filter(pc.equal(cases["hospital_id"], "H001")).slice(0, 2)
    two = two.set_column(
        two.schema.get_field_index("case_id"), "case_id", pa.array(["FPA-1", "FPB-1"])
    )
    lists = _up(h1, "清单.csv", write_settlement_csv(two, tmp_path / "l.csv").read_bytes())
    assert lists.json()["rows_accepted"] == 2, lists.text
    dx = two["main_diagnosis"].to_pylist()
    px = [p or "" for p in two["main_procedure"].to_pylist()]
    today = dt.datetime.now(dt.UTC).date()
    recent, old = (today - dt.timedelta(days=2)).isoformat(), "2026-01-02"
    # FPA agrees and is on time; FPB has another main diagnosis and was discharged long ago
    text = (
        "BAH,ZYCS,XB,CSRQ,RYSJ,CYSJ,CYKB,JBDM,SSJCZBM1\n"
        f"FPA,1,1,1960-01-01,{recent},{recent},A03,{dx[0]},{px[0]}\n"
        f"FPB,1,2,1970-01-01,2026-01-01,{old},A03,X99.900,{px[1]}\n"
    )
    r = _up(h1, "首页.csv", text.encode("gb18030"))
    body = r.json()
    assert r.status_code == 200 and body["status"] == "imported", r.text
    assert (body["rows_read"], body["rows_accepted"]) == (2, 2)
    assert "首页质控通过 1 份（通过率 50.00%）" in body["message"]
    page = h1.get(f"/uploads/{body['id']}").text
    late = (today - dt.date(2026, 1, 2)).days
    assert f"主要诊断编码不一致：病案首页 X99.900，结算清单 {dx[1]}" in page
    assert f"在出院后第 {late} 天，超过 7 天时限" in page
    assert "病案首页·首页上传日期" in page and "front_pages" not in page
    assert "FPA-1" not in page.split("质控提示（前")[1]  # the agreeing page has no finding
