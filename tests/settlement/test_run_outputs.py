"""What a settlement run writes when the per-case table outgrows Excel: Parquet only, and the
summary says why (the cap is lowered here so a small region exceeds it)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from opendip.settlement import run as settlement_run
from opendip.settlement.run import InputFiles, run_month, run_year
from opendip.synth.policy import scaled_demo_policy

REGION = Path(__file__).resolve().parents[1] / "web" / "region"


@pytest.fixture
def files(tmp_path: Path) -> InputFiles:
    return InputFiles(
        policy=scaled_demo_policy(400, tmp_path / "policy.yaml"),
        cases=REGION / "cases_2026.parquet",
        grouped=REGION / "grouped.parquet",
        directory=REGION / "directory.parquet",
        hospitals=REGION / "hospitals.parquet",
    )


def test_case_excel_within_the_limit(files: InputFiles, tmp_path: Path) -> None:
    summary = run_year(files, 2026, tmp_path / "year")
    assert summary["notes"] == []
    assert (tmp_path / "year" / "病例明细_2026.xlsx").is_file()


def test_case_excel_beyond_the_limit(
    files: InputFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settlement_run, "EXCEL_MAX_ROWS", 10)
    year = run_year(files, 2026, tmp_path / "year")
    rows = pq.read_metadata(tmp_path / "year" / "cases.parquet").num_rows
    assert rows > 10
    assert year["notes"] == [
        f"病例明细 {rows:,} 行超过 Excel 单表上限 10 行，未生成病例明细 Excel，请使用 cases.parquet"
    ]
    assert not (tmp_path / "year" / "病例明细_2026.xlsx").exists()
    assert (tmp_path / "year" / "结算公示表_2026.xlsx").is_file()  # per hospital: still there
    month = run_month(files, "2026-03", tmp_path / "month")
    assert month["notes"] and not (tmp_path / "month" / "病例明细_2026-03.xlsx").exists()
    saved = json.loads((tmp_path / "month" / "summary.json").read_text(encoding="utf-8"))
    assert saved["notes"] == month["notes"]
