"""Issue 20 item 8 on the platform: a run whose outputs no longer match its manifest is
refused (run page, report), never shown with the changed money."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def test_tampered_run_is_refused_on_the_platform(app, clients) -> None:
    agency = clients("agency")
    r = agency.post("/api/runs", json={"kind": "monthly", "period": "2026-03"})
    assert r.status_code == 200, r.text
    run = agency.get(f"/api/runs/{r.json()['id']}").json()
    assert run["status"] == "succeeded", run
    assert agency.get(f"/runs/{run['id']}").status_code == 200
    settlement = Path(run["manifest"]["outputs"]["settlement"])
    path = settlement / "hospitals.parquet"
    t = pq.read_table(path)
    i = t.schema.get_field_index("advance_fen")
    col = t.column(i).combine_chunks()
    bumped = pa.concat_arrays([pc.add(col.slice(0, 1), 100_000_000), col.slice(1)])
    pq.write_table(t.set_column(i, "advance_fen", bumped), path)
    page = agency.get(f"/runs/{run['id']}")
    assert page.status_code == 409 and "与运行清单不一致" in page.text
    report = agency.get(f"/api/runs/{run['id']}/report")
    assert report.status_code == 409


def test_cached_publication_files_are_verified_before_they_are_served(app, clients) -> None:
    """Issue 20 item 8: the platform kept a run's publication and report files and served
    them as they were on disk; now they carry a manifest, a changed or half-written file is
    never served (built again from the verified run instead)."""
    import json

    from opendip.settlement.output import sha256_file

    agency = clients("agency")
    run = agency.post("/api/runs", json={"kind": "monthly", "period": "2026-03"}).json()
    first = agency.get(f"/runs/{run['id']}/publication.xlsx")
    assert first.status_code == 200 and first.content[:2] == b"PK"
    settlement = Path(
        agency.get(f"/api/runs/{run['id']}").json()["manifest"]["outputs"]["settlement"]
    )
    reports = settlement.parent / "reports"
    stem = f"publication_{run['id']}"
    manifest = json.loads((reports / f"{stem}.manifest.json").read_text(encoding="utf-8"))
    xlsx = reports / f"{stem}.xlsx"
    assert manifest["outputs"][xlsx.name] == sha256_file(xlsx)
    assert set(manifest["outputs"]) == {f"{stem}.{fmt}" for fmt in ("json", "xlsx", "pdf")}
    xlsx.write_bytes(first.content + b"+1000000")
    second = agency.get(f"/runs/{run['id']}/publication.xlsx")
    assert second.status_code == 200 and not second.content.endswith(b"+1000000")
    assert (
        sha256_file(xlsx)
        == json.loads((reports / f"{stem}.manifest.json").read_text(encoding="utf-8"))["outputs"][
            xlsx.name
        ]
    )
    (reports / f"{stem}.manifest.json").unlink()  # a build killed before its manifest
    xlsx.write_bytes(b"half")
    third = agency.get(f"/runs/{run['id']}/publication.xlsx")
    assert third.status_code == 200 and third.content[:2] == b"PK"


def test_supervision_refuses_a_clearing_run_whose_grouping_changed(app, clients) -> None:
    """Issue 20 item 8: the supervision run read the clearing run's grouped.parquet (an input
    recorded in the settlement manifest) without checking it."""
    agency = clients("agency")
    annual = agency.post("/api/runs", json={"kind": "annual", "period": "2026"}).json()
    assert annual["status"] == "succeeded", annual
    settlement = Path(annual["manifest"]["outputs"]["settlement"])
    grouped = settlement.parent / "grouped.parquet"
    t = pq.read_table(grouped)
    pq.write_table(t.slice(1), grouped)  # one case dropped from the grouping
    run = agency.post("/api/runs", json={"kind": "supervision", "period": "2026"}).json()
    assert run["status"] == "failed"
    assert "grouped.parquet 与其运行清单记录的输入不一致" in run["message"]
