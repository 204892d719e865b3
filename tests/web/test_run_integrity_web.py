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
