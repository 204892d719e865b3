"""Issue 20 items 11 and 12: a bad attachment refuses the whole application (nothing filed),
attachments are served as octet-stream unless their type is allow-listed."""

from __future__ import annotations


def _submit(client, case_id: str, files):
    return client.post(
        "/applications",
        data={
            "kind": "dispute",
            "title": "入组有误",
            "reason": "主诊断应为 K35",
            "case_ids": case_id,
            "submit_token": "tok-1",
            "csrf_token": client.headers["X-CSRF-Token"],
        },
        files=files,
    )


def test_bad_attachment_files_nothing(clients, case_ids) -> None:
    h1 = clients("h1")
    own = case_ids["H001"][0]
    for files in (
        [("attachments", ("病案.pdf", b"%PDF-1.4 ok", "application/pdf")),
         ("attachments", ("virus.exe", b"MZ", "application/octet-stream"))],
        [("attachments", ("empty.pdf", b"", "application/pdf"))],
    ):  # fmt: skip
        r = _submit(h1, own, files)
        assert r.status_code == 400, r.status_code
        assert "附件" in r.text and "入组有误" in r.text  # the form comes back, filled in
        assert h1.get("/api/applications").json() == []
    r = _submit(h1, own, [("attachments", ("病案.pdf", b"%PDF-1.4 ok", "application/pdf"))])
    assert r.status_code == 303
    apps = h1.get("/api/applications").json()
    assert len(apps) == 1 and len(apps[0]["attachments"]) == 1


def test_attachment_types_are_not_taken_from_the_client(clients, case_ids) -> None:
    h1 = clients("h1")
    own = case_ids["H001"][0]
    files = [
        ("attachments", ("a.txt", b"<script>alert(1)</script>", "text/html")),
        ("attachments", ("b.pdf", b"%PDF-1.4", "text/html")),
    ]
    assert _submit(h1, own, files).status_code == 303
    app = h1.get("/api/applications").json()[0]
    served = {}
    for att in app["attachments"]:
        r = h1.get(f"/applications/{app['id']}/attachments/{att['id']}")
        served[att["filename"]] = r.headers
    assert served["a.txt"]["content-type"].startswith("application/octet-stream")
    assert served["b.pdf"]["content-type"] == "application/pdf"
    for headers in served.values():
        assert headers["content-disposition"].startswith("attachment")
        assert headers["x-content-type-options"] == "nosniff"
