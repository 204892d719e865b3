"""信息公开 (issue 22 item 5): a public page without login listing the published runs with
their date and downloads; nothing unpublished reachable, with or without a login."""

from __future__ import annotations

import csv
import io

import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from opendip.policy import demo_policy_path


def _run(agency, kind: str, period: str) -> dict:
    r = agency.post("/api/runs", json={"kind": kind, "period": period})
    body = r.json()
    assert r.status_code == 200 and body["status"] == "succeeded", body
    return body


def _publish(agency, run_id: int) -> None:
    assert agency.post(f"/api/runs/{run_id}/approve").status_code == 200
    assert agency.post(f"/api/runs/{run_id}/publish").json()["status"] == "published"


def _csv(resp) -> list[list[str]]:
    assert resp.status_code == 200, resp.text[:300]
    assert resp.content.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: opens in Excel
    return list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))


def test_public_page_lists_published_runs_only(app, clients) -> None:
    agency = clients("agency")
    annual = _run(agency, "annual", "2026")
    _publish(agency, annual["id"])
    approved = _run(agency, "monthly", "2026-03")
    assert agency.post(f"/api/runs/{approved['id']}/approve").status_code == 200
    succeeded = _run(agency, "monthly", "2026-04")
    anon = TestClient(app, follow_redirects=False)

    page = anon.get("/public")
    assert page.status_code == 200
    assert "信息公开" in page.text and "年终清算 2026 · 公示于" in page.text
    for doc in ("publication.pdf", "publication.xlsx", "qc.csv", "surplus.csv"):
        assert f'href="/public/runs/{annual["id"]}/{doc}"' in page.text
    for hidden in (approved["id"], succeeded["id"]):
        assert f"/public/runs/{hidden}/" not in page.text
    assert "2026-03" not in page.text and "2026-04" not in page.text

    # QC evaluation by hospital, counted here from the run's per-case QC status.
    out = app.state.settings.platform_dir / "runs" / str(annual["id"])
    status = pq.read_table(out / "qc" / "case_status.parquet").to_pylist()
    checked: dict[str, list[int]] = {}
    for r in status:
        c = checked.setdefault(str(r["hospital_id"]), [0, 0])
        c[0] += 1
        c[1] += bool(r["passed"])
    rows = _csv(anon.get(f"/public/runs/{annual['id']}/qc.csv"))
    assert rows[0] == ["医疗机构代码", "医疗机构名称", "质控病例数", "质控通过病例数", "质控通过率"]
    assert {r[0]: (int(r[2]), int(r[3])) for r in rows[1:]} == {
        h: (n, p) for h, (n, p) in checked.items()
    }
    for r in rows[1:]:
        n, p = checked[r[0]]
        assert r[4] == f"{p / n:.2%}"

    # Surplus/deficit by hospital and pool: DIP side − fee-for-service side, sign → label.
    lines = pq.read_table(out / "settlement" / "hospitals.parquet").to_pylist()
    rows = _csv(anon.get(f"/public/runs/{annual['id']}/surplus.csv"))
    assert len(rows) == 1 + len(lines)
    labels = set()
    for got, h in zip(rows[1:], lines, strict=True):
        diff = h["compare_dip_fen"] - h["compare_ffs_fen"]
        assert got[0] == h["hospital_id"]
        assert got[5] == f"{diff / 100:.2f}"
        assert got[6] == ("结余" if diff > 0 else "超支" if diff < 0 else "持平")
        labels.add(got[6])
    assert got[5] in page.text.replace(",", "") or f"{diff / 100:,.2f}" in page.text

    pdf = anon.get(f"/public/runs/{annual['id']}/publication.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert anon.get(f"/public/runs/{annual['id']}/publication.xlsx").status_code == 200


def test_nothing_unpublished_is_reachable(app, clients) -> None:
    agency = clients("agency")
    published = _run(agency, "annual", "2026")
    _publish(agency, published["id"])
    approved = _run(agency, "monthly", "2026-03")
    assert agency.post(f"/api/runs/{approved['id']}/approve").status_code == 200
    succeeded = _run(agency, "annual", "2026")
    anon = TestClient(app, follow_redirects=False)
    for client in (anon, agency, clients("h1")):
        for run_id in (approved["id"], succeeded["id"], 999999):
            for doc in ("publication.pdf", "publication.xlsx", "qc.csv", "surplus.csv"):
                r = client.get(f"/public/runs/{run_id}/{doc}")
                assert r.status_code == 404, (run_id, doc, r.status_code)
        # Unknown documents/formats of the published run, and paths out of the run.
        for bad in (
            "publication.json",
            "report.pdf",
            "qc.xlsx",
            "cases.parquet",
            "..%2Fsettlement%2Fcases.parquet",
            "manifest.json",
        ):
            assert client.get(f"/public/runs/{published['id']}/{bad}").status_code == 404, bad
        assert client.get("/public/runs/abc/qc.csv").status_code in (404, 422)
    # The agency's own report routes stay behind the login.
    r = anon.get(f"/runs/{approved['id']}/publication.pdf")
    assert r.status_code in (302, 303, 401) and r.headers.get("location", "").startswith("/login")


def test_policy_chooses_what_is_disclosed(app, clients, region_dir) -> None:
    agency = clients("agency")
    run = _run(agency, "annual", "2026")
    _publish(agency, run["id"])
    text = demo_policy_path().read_text(encoding="utf-8")
    old = "  contents: [settlement, qc, surplus_deficit]"
    assert old in text
    (region_dir / "policy.yaml").write_text(
        text.replace(old, "  contents: [settlement]"), encoding="utf-8"
    )
    anon = TestClient(app, follow_redirects=False)
    page = anon.get("/public")
    assert page.status_code == 200 and "publication.pdf" in page.text
    assert "结算清单质控评价" not in page.text and "医疗机构结余超支情况" not in page.text
    assert "qc.csv" not in page.text and "surplus.csv" not in page.text
    assert anon.get(f"/public/runs/{run['id']}/qc.csv").status_code == 404
    assert anon.get(f"/public/runs/{run['id']}/surplus.csv").status_code == 404
    assert anon.get(f"/public/runs/{run['id']}/publication.pdf").status_code == 200

    (region_dir / "policy.yaml").write_text(
        text.replace("  public_page: true", "  public_page: false"), encoding="utf-8"
    )
    assert anon.get("/public").status_code == 404
    assert anon.get(f"/public/runs/{run['id']}/publication.pdf").status_code == 404


def test_changed_outputs_are_never_disclosed(app, clients) -> None:
    """A published run whose settlement outputs were changed after the run (a hospital's
    clearing line edited in hospitals.parquet) is not disclosed: its manifest no longer
    matches, as for every other reader of a run."""
    agency = clients("agency")
    annual = _run(agency, "annual", "2026")
    _publish(agency, annual["id"])
    anon = TestClient(app, follow_redirects=False)
    assert anon.get(f"/public/runs/{annual['id']}/surplus.csv").status_code == 200

    path = app.state.settings.platform_dir / "runs" / str(annual["id"]) / "settlement"
    table = pq.read_table(path / "hospitals.parquet")
    column = table.column("compare_dip_fen").to_pylist()
    column[0] += 100_000_000  # ¥1,000,000 more on the first line
    table = table.set_column(
        table.column_names.index("compare_dip_fen"), "compare_dip_fen", [column]
    )
    pq.write_table(table, path / "hospitals.parquet")

    assert anon.get(f"/public/runs/{annual['id']}/surplus.csv").status_code == 404
    page = anon.get("/public")
    assert f'href="/public/runs/{annual["id"]}/surplus.csv"' not in page.text
