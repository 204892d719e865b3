"""Multi-record settlement lists written slice by slice (`opendip synth --records csv` for
years of any size): the same files as writing the whole year at once, a 结算清单号 repeated
across slices still carrying its child records once, and whole-file formats refused where
no import would take them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from opendip.cli.main import app
from opendip.codes import demo_code_tables
from opendip.ingest.settlement import import_settlement_lists
from opendip.ingest.settlement_export import (
    first_occurrences,
    first_occurrences_in_file,
    flat_file_records,
    records_from_flat,
    write_records_csv,
)

REGION = Path(__file__).resolve().parents[1] / "web" / "region"


@pytest.fixture(scope="module")
def cases() -> pa.Table:
    """400 cases of the test region, then cases 10, 150 and 390 again (repeated numbers, the
    repeats far from their first rows), and a case without a number twice."""
    region = pq.read_table(REGION / "cases_2026.parquet").slice(0, 400)
    at = region.schema.get_field_index("case_id")
    region = region.cast(region.schema.set(at, pa.field("case_id", pa.string())))  # nullable
    repeats = pa.concat_tables([region.slice(i, 1) for i in (10, 150, 390)])
    no_id = region.slice(5, 2).set_column(at, "case_id", pa.nulls(2, pa.string()))
    return pa.concat_tables([region, repeats, no_id]).combine_chunks()


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_first_occurrences_in_a_file_equal_those_in_memory(cases: pa.Table, tmp_path) -> None:
    path = tmp_path / "cases.parquet"
    pq.write_table(cases, path, row_group_size=64)
    in_memory = first_occurrences(cases["case_id"])
    assert np.array_equal(first_occurrences_in_file(path), in_memory)
    # 400 distinct numbers, the missing number once: 3 repeats and 1 missing are not first
    assert in_memory.sum() == 401
    assert not in_memory[[400, 401, 402, 404]].any() and in_memory[403]


@pytest.mark.parametrize("batch_rows", [1, 97, 406])
def test_slices_write_the_same_files_as_the_whole_year(
    cases: pa.Table, tmp_path: Path, batch_rows: int
) -> None:
    codes = demo_code_tables()
    path = tmp_path / "cases.parquet"
    pq.write_table(cases, path, row_group_size=128)
    whole = write_records_csv(
        records_from_flat(cases, codes), tmp_path / "whole", max_rows_per_file=500
    )
    sliced = write_records_csv(
        flat_file_records(path, codes, batch_rows=batch_rows),
        tmp_path / "sliced",
        max_rows_per_file=500,
    )
    assert [p.name for p in sliced] == [p.name for p in whole]
    assert _files(tmp_path / "sliced") == _files(tmp_path / "whole")
    # fees run over 500 rows (numbered parts); the 406 lists fit one file (no number)
    names = [p.name for p in whole]
    assert "settlement_lists.csv" in names and "fees_001.csv" in names and "fees_002.csv" in names


def test_a_number_repeated_in_a_later_slice_has_its_children_once(
    cases: pa.Table, tmp_path: Path
) -> None:
    path = tmp_path / "cases.parquet"
    pq.write_table(cases, path)
    files = write_records_csv(flat_file_records(path, batch_rows=100), tmp_path / "csv")
    result = import_settlement_lists(files)
    repeated = cases["case_id"][10].as_py()
    diagnoses = result.records["diagnoses"].accepted
    main_rows = diagnoses.filter(
        pc.and_(pc.equal(diagnoses["case_id"], repeated), pc.equal(diagnoses["main_flag"], "1"))
    )
    assert main_rows.num_rows == 1
    lists = result.records["settlement_lists"]
    assert lists.read == cases.num_rows  # every list row read: accepted + quarantined
    assert lists.read == lists.accepted.num_rows + lists.quarantine.num_rows


def test_a_record_type_without_rows_still_gets_its_header(cases: pa.Table, tmp_path) -> None:
    no_icu = cases.filter(pc.fill_null(pc.equal(cases["icu_days"], 0), True)).slice(0, 50)
    path = tmp_path / "cases.parquet"
    pq.write_table(no_icu, path)
    files = write_records_csv(flat_file_records(path, batch_rows=7), tmp_path / "csv")
    icu = tmp_path / "csv" / "icu.csv"
    assert icu in files and len(icu.read_text(encoding="utf-8").splitlines()) == 1


def test_whole_year_formats_are_refused_above_the_import_row_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opendip.ingest import limits

    monkeypatch.setattr(limits, "DEFAULT_LIMITS", limits.ImportLimits(max_rows=150))
    args = ["synth", "--out", str(tmp_path / "r"), "--hospitals", "4", "--cases-per-year", "200"]
    result = CliRunner().invoke(app, [*args, "--years", "2026", "--records", "json"])
    assert result.exit_code != 0
    assert "--records json：每年 200 例超过单个文件的导入上限 150 行" in result.output
    assert not (tmp_path / "r").exists()  # refused before anything was generated
    result = CliRunner().invoke(app, [*args, "--years", "2026", "--records", "csv"])
    assert result.exit_code == 0, result.output
    parts = sorted(p.name for p in (tmp_path / "r" / "settlement_lists_2026" / "csv").iterdir())
    assert "settlement_lists_001.csv" in parts and "settlement_lists_002.csv" in parts
