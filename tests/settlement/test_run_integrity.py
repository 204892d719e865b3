"""Issue 20 item 8: a run's outputs are verified against its manifest wherever it is read,
and a run is written to a staging directory moved into place only when complete."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from opendip.settlement import run as settlement_run
from opendip.settlement.output import OutputIntegrityError, verify_outputs
from tests.cases.clearing.test_clearing_outputs import _write_run

EXAMPLE = "11-比较基数-DIP总额对医疗总费用.yaml"


def _add_million_yuan(path: Path) -> None:
    t = pq.read_table(path)
    i = t.schema.get_field_index("clearing_payment_fen")
    col = t.column(i).combine_chunks()
    bumped = pa.concat_arrays(
        [pc.add(col.slice(0, 1), 100_000_000), col.slice(1)]
    )  # ¥1,000,000 more for the first hospital
    pq.write_table(t.set_column(i, "clearing_payment_fen", bumped), path)


def test_tampered_output_is_refused_by_publication(tmp_path: Path) -> None:
    from opendip.reports.region import build_publication
    from opendip.reports.source import ReportInputError

    run = _write_run(tmp_path, EXAMPLE)
    verify_outputs(run)  # as written: fine
    build_publication(run)
    _add_million_yuan(run / "hospitals.parquet")
    with pytest.raises(OutputIntegrityError, match=r"hospitals.parquet（内容与清单不符）"):
        verify_outputs(run)
    with pytest.raises(ReportInputError, match="与运行清单不一致"):
        build_publication(run)
    (run / "not_dip.parquet").unlink()
    with pytest.raises(OutputIntegrityError, match=r"not_dip.parquet（缺失）"):
        verify_outputs(run)


def test_killed_rerun_leaves_the_previous_run_intact(tmp_path: Path, monkeypatch) -> None:
    run = _write_run(tmp_path, EXAMPLE)
    before = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    # A rerun with different money that dies after writing its Parquet files.
    cases = pq.read_table(tmp_path / "cases.parquet")
    total = cases.schema.get_field_index("total_cost")
    cases = cases.set_column(total, "total_cost", pc.multiply(cases.column(total), 2))
    pq.write_table(cases, tmp_path / "cases.parquet")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(settlement_run, "write_excel", killed)
    with pytest.raises(KeyboardInterrupt):
        settlement_run.run_year(
            settlement_run.InputFiles(
                policy=tmp_path / "policy.yaml",
                cases=tmp_path / "cases.parquet",
                grouped=tmp_path / "grouped.parquet",
                directory=tmp_path / "directory.parquet",
                hospitals=tmp_path / "hospitals.parquet",
            ),
            2026,
            run,
            case_excel=False,
        )
    assert json.loads((run / "manifest.json").read_text(encoding="utf-8")) == before
    verify_outputs(run)  # the old outputs, unchanged, still match the old manifest
    assert not [p for p in run.iterdir() if p.name.startswith(".staging-")]
