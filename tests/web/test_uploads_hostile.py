"""Issue 20 items 5, 10, 13 through the platform: imports run off the event loop within the
platform's bounds, a huge field never turns an upload page into a 500, long names keep
their extension."""

from __future__ import annotations

import asyncio
import io
import threading

from tests.web.conftest import settlement_csv


def _up(client, name: str, data: bytes):
    return client.post("/api/uploads", files={"file": (name, io.BytesIO(data), "text/csv")})


def test_import_runs_in_a_worker_thread(app, clients, tmp_path, monkeypatch) -> None:
    """Item 5: the import must not run on the event loop (one upload froze every request)."""
    import opendip.web.uploads as uploads

    seen: list[tuple[str, bool]] = []
    real = uploads.process_upload

    def spy(*args, **kwargs):
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        seen.append((threading.current_thread().name, on_loop))
        return real(*args, **kwargs)

    monkeypatch.setattr(uploads, "process_upload", spy)
    r = _up(clients("h1"), "a.csv", settlement_csv(tmp_path, {"H001": 2}))
    assert r.status_code == 200, r.text
    assert r.json()["rows_accepted"] == 2
    assert seen and seen[0][1] is False


class _Gate:
    """Holds an upload's import at its first "rows read" progress note until released."""

    def __init__(self, monkeypatch) -> None:
        import opendip.web.uploads as uploads

        self.reading = threading.Event()
        self.release = threading.Event()
        self.done = threading.Event()
        monkeypatch.setattr(uploads, "PROGRESS_INTERVAL", 0.0)
        real_note, real_execute = uploads.UploadService._progress, uploads.UploadService.execute
        gate = self

        def note(service, upload_id: int):
            inner = real_note(service, upload_id)

            def held(step: str, rows: int) -> None:
                inner(step, rows)
                if step == "读取数据行" and not gate.reading.is_set():
                    gate.reading.set()
                    gate.release.wait(120)  # deadlock guard only; the order is asserted

            return held

        def execute(service, upload_id: int) -> None:
            try:
                real_execute(service, upload_id)
            finally:
                gate.done.set()

        monkeypatch.setattr(uploads.UploadService, "_progress", note)
        monkeypatch.setattr(uploads.UploadService, "execute", execute)


def test_upload_page_shows_progress_then_the_result(make_app, tmp_path, monkeypatch) -> None:
    """Item 5: an upload's page shows its status and the rows read so far while the worker
    imports (htmx polls /uploads/{id}/progress), then the counts."""
    from tests.web.conftest import login

    gate = _Gate(monkeypatch)
    app = make_app(background_runs=True)
    h1 = login(app, "h1")
    data = settlement_csv(tmp_path, {"H001": 7})
    r = h1.post(
        "/uploads",
        files={"file": ("big.csv", io.BytesIO(data), "text/csv")},
        data={"csrf_token": h1.headers["X-CSRF-Token"]},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200, r.text[:500]
    assert "正在导入" in r.text and "接收" not in r.text
    upload_id = h1.get("/api/uploads").json()[0]["id"]
    assert f'hx-get="/uploads/{upload_id}/progress"' in r.text
    assert gate.reading.wait(60)
    page = h1.get(f"/uploads/{upload_id}/progress")
    assert "正在导入</b> · 读取数据行" in page.text and "已处理 <b>7</b> 行" in page.text
    assert 'hx-trigger="every 1s"' in page.text
    assert h1.get(f"/api/uploads/{upload_id}").json()["status"] == "importing"
    listing = h1.get("/uploads").text
    assert "正在导入（已处理 7 行）" in listing
    gate.release.set()
    app.state.uploads.wait(upload_id)
    page = h1.get(f"/uploads/{upload_id}/progress")
    assert '接收 <b class="ok">7</b> 行' in page.text and "hx-get" not in page.text
    body = h1.get(f"/api/uploads/{upload_id}").json()
    assert (body["status"], body["rows_read"], body["rows_accepted"]) == ("imported", 7, 7)
    assert h1.get(f"/uploads/{upload_id}/progress").status_code == 200
    assert login(app, "h2").get(f"/uploads/{upload_id}/progress").status_code == 404


def test_other_requests_are_answered_while_an_import_runs(make_app, tmp_path, monkeypatch) -> None:
    """Item 5, against a loopback server: while one upload's import is held mid-read, another
    request is answered; the import finishes only after that answer. (Imports on the event
    loop answered nothing until the import ended.)"""
    import socket

    import httpx
    import uvicorn

    gate = _Gate(monkeypatch)
    app = make_app(background_runs=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        while not server.started:
            thread.join(0.05)
        with httpx.Client(base_url=base, timeout=180) as h1:
            r = h1.post("/api/auth/login", json={"username": "h1", "password": "password-123"})
            h1.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            upload: dict = {}

            def post() -> None:
                data = settlement_csv(tmp_path, {"H001": 4})
                files = {"file": ("big.csv", io.BytesIO(data), "text/csv")}
                upload.update(h1.post("/api/uploads", files=files).json())

            poster = threading.Thread(target=post)
            poster.start()
            assert gate.reading.wait(60)
            other = h1.get("/api/uploads")
            import_done_when_answered = gate.done.is_set()
            gate.release.set()
            poster.join(120)
        assert other.status_code == 200
        assert other.json()[0]["status"] == "importing"
        assert import_done_when_answered is False
        assert (upload["status"], upload["rows_read"], upload["rows_accepted"]) == (
            "imported",
            4,
            4,
        )
    finally:
        gate.release.set()
        server.should_exit = True
        thread.join(10)


def test_uploads_interrupted_by_a_restart_are_marked_rejected(make_app) -> None:
    """Item 5: an upload left importing by a stopped server is not shown as importing forever."""
    from opendip.store import Upload

    app = make_app()
    with app.state.store.session() as s:
        s.add(Upload(filename="a.csv", stored_path="", status="importing", message="x"))
    assert app.state.uploads.recover() == 1
    with app.state.store.session() as s:
        upload = s.query(Upload).one()
        assert (upload.status, upload.message) == (
            "rejected",
            "服务重启，导入中断，请重新上传该文件",
        )


def test_platform_bounds_refuse_with_a_message(make_app, tmp_path) -> None:
    """Item 5: the platform's own (stricter) bounds apply to uploads."""
    from opendip.ingest.limits import ImportLimits
    from tests.web.conftest import login

    app = make_app(import_limits=ImportLimits(max_rows=3))
    body = _up(login(app, "h1"), "a.csv", settlement_csv(tmp_path, {"H001": 5})).json()
    assert body["status"] == "rejected" and "3 行的上限" in body["message"]


def test_refused_upload_keeps_no_progress_count(make_app, tmp_path, monkeypatch) -> None:
    """Item 5: progress notes write the rows scanned so far; a file refused by a bound must
    end with 0 rows read (it showed the last progress count, 1,000,000, as 读入)."""
    import opendip.ingest.limits as limits
    import opendip.ingest.readers as readers
    import opendip.web.uploads as uploads
    from opendip.ingest.limits import ImportLimits
    from tests.ingest.test_hostile_files import _rows, _xlsx
    from tests.web.conftest import login

    notes: list[tuple[str, int]] = []
    real_note = uploads.UploadService._progress

    def counting(service, upload_id: int):
        inner = real_note(service, upload_id)

        def note(step: str, rows: int) -> None:
            notes.append((step, rows))
            inner(step, rows)

        return note

    monkeypatch.setattr(uploads.UploadService, "_progress", counting)
    monkeypatch.setattr(uploads, "PROGRESS_INTERVAL", 0.0)
    monkeypatch.setattr(limits, "PROGRESS_EVERY", 1)
    monkeypatch.setattr(readers, "PROGRESS_EVERY", 1)
    app = make_app(import_limits=ImportLimits(max_rows=3))
    path = _xlsx(tmp_path / "five.xlsx", _rows(5))
    body = _up(login(app, "h1"), "five.xlsx", path.read_bytes()).json()
    assert ("检查文件结构", 4) in notes
    assert body["status"] == "rejected" and "3 行的上限" in body["message"]
    assert body["rows_read"] == 0


def test_huge_field_then_upload_pages_still_work(clients, tmp_path) -> None:
    """Item 10: a quarantined field over 128 KB made POST /uploads and GET /uploads/{id} 500."""
    text = settlement_csv(tmp_path, {"H001": 3}).decode("gb18030").splitlines()
    cells = text[2].split(",")
    cells[15] = '"' + "长" * 200_000 + '"'
    text[2] = ",".join(cells)
    data = ("\n".join(text) + "\n").encode("utf-8")
    h1 = clients("h1")
    r = h1.post(
        "/uploads",
        files={"file": ("long.csv", io.BytesIO(data), "text/csv")},
        data={"csrf_token": h1.headers["X-CSRF-Token"]},
    )
    assert r.status_code == 200, r.text[:500]
    assert "过长" in r.text
    upload_id = _up(h1, "long2.csv", data + b"\n").json()["id"]
    page = h1.get(f"/uploads/{upload_id}")
    assert page.status_code == 200 and "过长（200,000 个字符" in page.text


def test_long_file_name_keeps_its_extension(clients, tmp_path) -> None:
    """Item 13: a 300-character name lost '.csv' and the file was refused."""
    name = "结算清单" * 75 + ".csv"
    body = _up(clients("h1"), name, settlement_csv(tmp_path, {"H001": 2})).json()
    assert body["status"] == "imported", body
    assert body["filename"].endswith(".csv") and len(body["filename"]) <= 120


def test_upload_result_shows_qc_findings_in_chinese(clients, tmp_path) -> None:
    """The upload result listed QC findings as `error` / `main_diagnosis` (identifiers on a
    user-facing page)."""
    agency = clients("agency")
    data = settlement_csv(tmp_path, {"H001": 5, "H002": 3}, "E")
    r = agency.post(
        "/uploads",
        files={"file": ("qc.csv", io.BytesIO(data), "text/csv")},
        data={"csrf_token": agency.headers["X-CSRF-Token"]},
    )
    assert r.status_code == 200 and "质控提示" in r.text, r.text[:500]
    assert "<td>错误</td><td>主要诊断代码</td>" in r.text
    assert "main_diagnosis" not in r.text and "<td>error</td>" not in r.text
