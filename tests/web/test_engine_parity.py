"""A platform run is the engine run: an annual clearing started in 结算管理 and the CLI chain
`opendip qc` → `opendip group --qc-status` → `opendip assess` → `opendip settle year` on the same region give the
same per-case table, point values and per-hospital amounts, to the fen; a monthly run's QC
counts are the month's settlement lists."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
from typer.testing import CliRunner

from opendip.cli.main import app as cli
from opendip.policy import demo_policy_path


def _cli(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output


def _engine_year(region: Path, out: Path) -> Path:
    policy = str(demo_policy_path())
    cases = str(region / "cases_2026.parquet")
    directory = str(region / "directory.parquet")
    _cli("qc", "--policy", policy, "--cases", cases, "--out", str(out / "qc"), "--no-excel")
    _cli(
        "group",
        "--policy",
        policy,
        "--directory",
        directory,
        "--cases",
        cases,
        "--qc-status",
        str(out / "qc" / "case_status.parquet"),
        "--out",
        str(out / "grouped.parquet"),
    )
    _cli(
        "assess",
        "--policy",
        policy,
        "--year",
        "2026",
        "--cases",
        cases,
        "--grouped",
        str(out / "grouped.parquet"),
        "--hospitals",
        str(region / "hospitals.parquet"),
        "--qc-status",
        str(out / "qc" / "case_status.parquet"),
        "--previous-cases",
        str(region / "cases_2025.parquet"),
        "--out",
        str(out / "assessment"),
    )
    _cli(
        "settle",
        "year",
        "--policy",
        policy,
        "--year",
        "2026",
        "--cases",
        cases,
        "--grouped",
        str(out / "grouped.parquet"),
        "--directory",
        directory,
        "--hospitals",
        str(region / "hospitals.parquet"),
        "--assessment",
        str(out / "assessment" / "assessment.parquet"),
        # 预付金 base as the platform takes it without a published 2025 clearing
        "--previous-cases",
        str(region / "cases_2025.parquet"),
        "--out",
        str(out / "settle"),
        "--no-excel",
    )
    return out / "settle"


def _last_year(region: Path) -> None:
    """Last year's settlement lists (the scorecard's cost growth needs them): this year's
    cases a year earlier, with their own ids."""
    t = pq.read_table(region / "cases_2026.parquet")
    shifted = {
        "case_id": pc.binary_join_element_wise("P", t["case_id"], ""),
        "settle_month": pc.replace_substring(t["settle_month"], "2026-", "2025-"),
    }
    for name, col in shifted.items():
        t = t.set_column(t.schema.get_field_index(name), name, col)
    pq.write_table(t, region / "cases_2025.parquet")


def test_platform_annual_run_is_the_engine_run(clients, region_dir: Path, tmp_path: Path) -> None:
    _last_year(region_dir)
    agency = clients("agency")
    r = agency.post("/api/runs", json={"kind": "annual", "period": "2026"})
    assert r.status_code in (200, 201), r.text
    run = agency.get(f"/api/runs/{r.json()['id']}").json()
    assert run["status"] == "succeeded", run.get("message")
    platform = Path(run["manifest"]["outputs"]["settlement"])
    engine = _engine_year(region_dir, tmp_path / "engine")

    # QC is part of the run: blocking cases are excluded exactly as the CLI excludes them.
    qc_status = pq.read_table(platform.parent / "qc" / "case_status.parquet")
    blocking = int(pc.sum(qc_status["blocking"]).as_py())
    assert blocking > 0  # the test region has QC errors, so the check can fail
    assert run["manifest"]["qc_blocking"] == blocking
    assert pq.read_table(platform.parent / "grouped.parquet").equals(
        pq.read_table(tmp_path / "engine" / "grouped.parquet")
    )

    # Per-case table, per-hospital amounts and point values: identical to the fen.
    for name in ("cases.parquet", "hospitals.parquet", "not_dip.parquet"):
        mine, theirs = pq.read_table(platform / name), pq.read_table(engine / name)
        assert mine.num_rows > 0
        assert mine.equals(theirs), name
    mine = json.loads((platform / "summary.json").read_text(encoding="utf-8"))
    theirs = json.loads((engine / "summary.json").read_text(encoding="utf-8"))
    assert mine["point_values"] == theirs["point_values"]
    assert mine["pools"] == theirs["pools"]
    assert run["manifest"]["point_values"] == mine["point_values"]
    # The deposit is returned by the same assessment scores (年度考核 as `opendip assess`).
    assert pq.read_table(platform.parent / "assessment" / "assessment.parquet").equals(
        pq.read_table(tmp_path / "engine" / "assessment" / "assessment.parquet")
    )
    # QC-blocking cases are not paid by DIP.
    paid = set(pq.read_table(platform / "cases.parquet")["case_id"].to_pylist())
    blocked = set(qc_status.filter(qc_status["blocking"])["case_id"].to_pylist())
    assert blocked and not (paid & blocked)


def test_monthly_run_checks_the_months_cases(clients) -> None:
    agency = clients("agency")
    r = agency.post("/api/runs", json={"kind": "monthly", "period": "2026-03"})
    run = agency.get(f"/api/runs/{r.json()['id']}").json()
    assert run["status"] == "succeeded", run.get("message")
    out = Path(run["manifest"]["outputs"]["settlement"]).parent
    status = pq.read_table(out / "qc" / "case_status.parquet")
    cases = pq.read_table(out / "cases.parquet")
    assert status.num_rows == cases.num_rows == run["manifest"]["cases"]
    settled = pq.read_table(out / "settlement" / "cases.parquet")
    blocked = set(status.filter(status["blocking"])["case_id"].to_pylist())
    assert not (set(settled["case_id"].to_pylist()) & blocked)
