"""Issue 20: fuzzing import files (encodings, line endings, quoting, sizes, xlsx structure).

Whatever the file, the import never raises: a file is either refused as a whole with a
Chinese message, or read = accepted + quarantined, where *read* equals the number of data
rows the generator wrote (counted here, independently of the reader)."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import openpyxl
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from opendip.ingest import read_cases
from opendip.ingest.export import to_export_table

REGION = Path(__file__).resolve().parents[1] / "web" / "region"
_T = to_export_table(pq.read_table(REGION / "cases_2026.parquet").slice(0, 30))
HEADER = _T.column_names
ROWS = [[("" if v is None else str(v)) for v in r.values()] for r in _T.to_pylist()]
ID = HEADER.index("结算清单号")
DEPT = HEADER.index("出院科别")

CORRUPTIONS = (
    "none",
    "none",
    "none",
    "short",  # a field missing (ragged)
    "long_row",  # a field too many (ragged)
    "blank",  # an empty line or ',,,' (not a data row)
    "huge_field",  # 40,000 characters (over the field bound)
    "newline_in_value",  # a quoted value with a line break (one row)
    "zero_width_id",
    "control_id",
    "formula",
    "wide_chars",
)


@st.composite
def tables(draw) -> tuple[list[list[str]], list[str]]:
    n = draw(st.integers(0, 12))
    rows, kinds = [], []
    for i in range(n):
        row = list(ROWS[draw(st.integers(0, len(ROWS) - 1))])
        row[ID] = f"F{i:04d}"
        kind = draw(st.sampled_from(CORRUPTIONS))
        if kind == "short":
            row = row[:-1]
        elif kind == "long_row":
            row = [*row, "多余"]
        elif kind == "blank":
            row = [""] * draw(st.sampled_from([0, len(HEADER)]))
        elif kind == "huge_field":
            row[DEPT] = "长" * 40_000
        elif kind == "newline_in_value":
            row[DEPT] = "内科\n一病区"
        elif kind == "zero_width_id":
            row[ID] += "\u200b"
        elif kind == "control_id":
            row[ID] += draw(st.sampled_from(["\x00", "\x07", "\u202e", "\ufeff"]))
        elif kind == "formula":
            row[DEPT] = '=HYPERLINK("http://x","y")'
        elif kind == "wide_chars":
            row[ID] = row[ID].replace("F", "Ｆ")
        rows.append(row)
        kinds.append(kind)
    return rows, kinds


def _expected(kinds: list[str]) -> int:
    return sum(k != "blank" for k in kinds)


def _check(result, expected: int) -> None:
    f = result.files[0]
    result.check_invariant()
    if f.error is not None:
        assert f.read == 0 and result.accepted.num_rows == 0
        assert re.search(r"[\u4e00-\u9fff]", f.error), f.error  # a Chinese message
        return
    assert f.read == expected == f.accepted + f.quarantined, (f.read, expected)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tables(),
    st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    st.booleans(),
)
def test_csv_fuzz(tmp_path_factory, table, encoding, newline, quoting, trailing) -> None:
    rows, kinds = table
    if newline == "\r":  # classic Mac: a value's own line break is a CR too
        rows = [[c.replace("\n", "\r") for c in r] for r in rows]
    out = io.StringIO()
    csv.writer(out, lineterminator=newline, quoting=quoting).writerows([HEADER, *rows])
    text = out.getvalue() if trailing else out.getvalue().rstrip(newline)
    path = tmp_path_factory.mktemp("fuzz") / "f.csv"
    path.write_bytes(text.encode(encoding, errors="replace"))
    _check(read_cases([path]), _expected(kinds))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tables(),
    st.booleans(),
    st.sampled_from(["none", "formula", "merged"]),
)
def test_xlsx_fuzz(tmp_path_factory, table, lie_about_dimension, structure) -> None:
    rows, kinds = table
    folder = tmp_path_factory.mktemp("fuzzx")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER)
    for r in rows:
        # openpyxl cannot store C0 control characters: they are dropped here (the CSV
        # test covers them), the row stays a data row.
        ws.append([ILLEGAL_CHARACTERS_RE.sub("", c)[:32_767] for c in r])
    data_rows = [i + 2 for i, k in enumerate(kinds) if k != "blank"]
    if structure == "formula" and data_rows:
        ws.cell(row=data_rows[0], column=DEPT + 1, value="=1+1")
    if structure == "merged" and len(data_rows) >= 2:
        ws.merge_cells(
            start_row=data_rows[0], end_row=data_rows[0] + 1, start_column=1, end_column=1
        )
    path = folder / "f.xlsx"
    wb.save(path)
    if lie_about_dimension:
        lying = folder / "lying.xlsx"
        with zipfile.ZipFile(path) as zin, zipfile.ZipFile(lying, "w") as zout:
            for info in zin.infolist():
                body = zin.read(info.filename)
                if info.filename.startswith("xl/worksheets/"):
                    body = re.sub(
                        rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:B2"/>', body
                    )
                zout.writestr(info, body)
        path = lying
    # Excel holds no ragged rows: a short row is a row with an empty last cell, a long row
    # has content beyond the header (ignored with a warning); blank rows are not data.
    expected = _expected(kinds)
    if structure == "merged" and len(data_rows) >= 2:
        expected += data_rows[0] + 1 not in data_rows  # a merged blank row becomes a row
    _check(read_cases([path]), expected)
