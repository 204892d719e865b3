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
    import opendip.web.routers.data as data_router
    import opendip.web.uploads as uploads

    seen: list[tuple[str, bool]] = []
    real = uploads.import_upload

    def spy(*args, **kwargs):
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        seen.append((threading.current_thread().name, on_loop))
        return real(*args, **kwargs)

    monkeypatch.setattr(data_router, "import_upload", spy)
    r = _up(clients("h1"), "a.csv", settlement_csv(tmp_path, {"H001": 2}))
    assert r.status_code == 200, r.text
    assert seen and seen[0][1] is False


def test_platform_bounds_refuse_with_a_message(make_app, tmp_path) -> None:
    """Item 5: the platform's own (stricter) bounds apply to uploads."""
    from opendip.ingest.limits import ImportLimits
    from tests.web.conftest import login

    app = make_app(import_limits=ImportLimits(max_rows=3))
    body = _up(login(app, "h1"), "a.csv", settlement_csv(tmp_path, {"H001": 5})).json()
    assert body["status"] == "rejected" and "3 行的上限" in body["message"]


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
