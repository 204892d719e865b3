"""数据上传: good files show accepted/quarantined at once; bad ones get Chinese messages."""

from __future__ import annotations

import io

from tests.web.conftest import settlement_csv


def _up(client, name: str, data: bytes, ctype: str = "text/csv"):
    return client.post("/api/uploads", files={"file": (name, io.BytesIO(data), ctype)})


def test_gbk_upload_imports_and_quarantines_other_hospitals(clients, tmp_path) -> None:
    h1 = clients("h1")
    r = _up(h1, "清单.csv", settlement_csv(tmp_path, {"H001": 4, "H002": 2}))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["rows_read"], body["rows_accepted"], body["rows_quarantined"]) == (6, 4, 2)
    assert body["encoding"].lower().startswith("gb")
    q = h1.get(f"/uploads/{body['id']}/quarantine.csv")
    assert q.status_code == 200 and "不是本院（H001）" in q.content.decode("utf-8-sig")
    # the accepted cases now show in the hospital's case list
    rows = h1.get("/api/cases", params={"case_id": "U0"}).json()
    assert rows["total"] == 4
    # the same file again is not imported twice
    again = _up(h1, "清单.csv", settlement_csv(tmp_path, {"H001": 4, "H002": 2})).json()
    assert again["duplicate_of_previous"] and again["id"] == body["id"]


def test_htmx_upload_shows_counts_at_once(clients, tmp_path) -> None:
    agency = clients("agency")
    r = agency.post(
        "/uploads",
        files={
            "file": ("a.csv", io.BytesIO(settlement_csv(tmp_path, {"H003": 3}, "A")), "text/csv")
        },
        data={"csrf_token": agency.headers["X-CSRF-Token"]},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200
    assert '接收 <b class="ok">3</b>' in r.text and '隔离 <b class="bad">0</b>' in r.text


def test_bad_uploads_get_chinese_messages(make_app, tmp_path) -> None:
    from tests.web.conftest import login

    app = make_app(max_upload_bytes=2000)
    h1 = login(app, "h1")
    cases = [
        ("big.csv", b"x" * 5000, 400, "文件过大"),
        ("empty.csv", b"", 400, "为空"),
        ("virus.exe", b"MZ....", 400, "不支持的文件类型"),
    ]
    for name, data, status, msg in cases:
        r = _up(h1, name, data)
        assert r.status_code == status, (name, r.text)
        assert msg in r.json()["detail"]
    # not multipart at all
    r = h1.post(
        "/api/uploads", content=b"garbage", headers={"content-type": "application/octet-stream"}
    )
    assert (r.status_code == 400 and "请选择" in r.json()["detail"]) or "无法解析" in r.json()[
        "detail"
    ]
    r = h1.post("/api/uploads", data={"nofile": "1"})
    assert r.status_code == 400 and "请选择" in r.json()["detail"]


def test_malformed_and_wrong_encoding_files_are_rejected_not_500(clients) -> None:
    h1 = clients("h1")
    for name, data in (
        ("junk.csv", bytes(range(256)) * 4),
        ("broken.xlsx", b"PK\x03\x04 not really a zip"),
        ("broken.parquet", b"PAR1 nope"),
        ("headers.csv", "甲,乙\n1,2\n".encode("utf-16")),
    ):
        r = _up(h1, name, data)
        assert r.status_code == 200, (name, r.status_code, r.text)
        body = r.json()
        assert body["status"] in ("rejected", "imported"), body
        if body["status"] == "rejected":
            assert body["message"] and not body["message"].isascii(), body["message"]
        else:
            assert body["rows_accepted"] == 0
    listed = h1.get("/api/uploads").json()
    assert len(listed) == 4  # nothing lost: every attempt is recorded


def test_upload_page_renders_history(clients, tmp_path) -> None:
    h1 = clients("h1")
    _up(h1, "h.csv", settlement_csv(tmp_path, {"H001": 1}, "B"))
    page = h1.get("/uploads")
    assert page.status_code == 200 and "h.csv" in page.text and "上传记录" in page.text
