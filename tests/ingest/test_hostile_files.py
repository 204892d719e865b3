"""Issue 20 items 5, 6, 10, 13: import files that crashed, froze or silently shrank an import.
Each is refused with a Chinese message naming the row or bound, or quarantined with a reason;
input = accepted + quarantined always holds."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import openpyxl
import pyarrow.parquet as pq
import pytest

from opendip.ingest import read_cases
from opendip.ingest.export import to_export_table
from opendip.ingest.limits import ImportLimits

REGION = Path(__file__).resolve().parents[1] / "web" / "region"


def _rows(n: int = 50) -> list[list[str]]:
    """Header + n settlement-list rows as text (Chinese headers, yuan)."""
    t = to_export_table(pq.read_table(REGION / "cases_2026.parquet").slice(0, n))
    body = [[("" if v is None else str(v)) for v in r.values()] for r in t.to_pylist()]
    return [t.column_names, *body]


def _csv_text(rows: list[list[str]], newline: str = "\n") -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerows(rows)
    return out.getvalue()


def _xlsx(path: Path, rows: list[list[str]]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def _rewrite_sheet(src: Path, dst: Path, change) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.startswith("xl/worksheets/sheet"):
                data = change(data)
            zout.writestr(info, data)
    return dst


def _counts(result) -> tuple[int, int, int]:
    f = result.files[0]
    result.check_invariant()
    return f.read, f.accepted, f.quarantined


def test_xlsx_rows_counted_beyond_a_lying_dimension(tmp_path: Path) -> None:
    """Item 6: 50 data rows with <dimension ref="A1:AU11"> are all read."""
    good = _xlsx(tmp_path / "good.xlsx", _rows(50))
    lying = _rewrite_sheet(
        good,
        tmp_path / "lying.xlsx",
        lambda d: re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:AU11"/>', d),
    )
    assert b'ref="A1:AU11"' in zipfile.ZipFile(lying).read("xl/worksheets/sheet1.xml")
    assert _counts(read_cases([lying])) == (50, 50, 0)


def test_formula_without_cached_value_and_merged_cells_are_named(tmp_path: Path) -> None:
    """Item 13: not '必填项缺失' but what is wrong with which cell."""
    rows = _rows(10)
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    ws["A4"] = '=CONCAT("C","1")'  # openpyxl stores no cached value
    ws.merge_cells("C7:C9")
    wb.save(tmp_path / "f.xlsx")
    result = read_cases([tmp_path / "f.xlsx"])
    assert _counts(result) == (10, 7, 3)
    reasons = dict(
        zip(
            result.quarantine["row_number"].to_pylist(),
            result.quarantine["reason"].to_pylist(),
            strict=True,
        )
    )
    assert "单元格 A4 是公式但文件中没有保存计算结果" in reasons[4]
    assert reasons[8].startswith("单元格 C8 位于合并单元格 C7:C9 中")
    assert reasons[9].startswith("单元格 C9 位于合并单元格 C7:C9 中")
    assert 7 not in reasons  # the top-left cell holds the value
    assert not any("必填项缺失" in r for r in reasons.values() if "合并" in r)


def test_cr_only_line_endings(tmp_path: Path) -> None:
    """Item 13: classic Mac line endings were a traceback."""
    path = tmp_path / "cr.csv"
    path.write_text(_csv_text(_rows(20), "\r"), encoding="utf-8")
    assert _counts(read_cases([path])) == (20, 20, 0)


def test_unbalanced_quote_that_swallows_rows_refuses_the_file_naming_the_row(
    tmp_path: Path,
) -> None:
    """Item 13: a stray quote merged 15 records into one '列数不符' row."""
    lines = _csv_text(_rows(30)).splitlines()
    lines[5] = lines[5].replace(",", ',"', 1)  # row 6 opens a quote it never closes
    path = tmp_path / "q.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = read_cases([path])
    assert result.files[0].error is not None
    assert "第 6 行的双引号没有闭合" in result.files[0].error
    assert result.accepted.num_rows == 0


def test_long_field_is_quarantined_with_its_length(tmp_path: Path) -> None:
    """Item 10: a 200 KB field is bounded at import (quarantine.csv stays readable)."""
    rows = _rows(5)
    rows[2][rows[0].index("出院科别")] = "长" * 200_000
    path = tmp_path / "long.csv"
    path.write_text(_csv_text(rows), encoding="utf-8")
    result = read_cases([path])
    assert _counts(result) == (5, 4, 1)
    reason = result.quarantine["reason"][0].as_py()
    assert "过长（200,000 个字符，上限 32,767）" in reason
    assert len(result.quarantine["original"][0].as_py()) < 5000


def test_xlsx_bombs_and_row_bounds_are_refused_before_reading(tmp_path: Path) -> None:
    """Item 5: shared strings that expand enormously, too many rows or cells."""
    good = _xlsx(tmp_path / "good.xlsx", _rows(3))
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info.filename))
        sst = b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        zout.writestr(
            "xl/sharedStrings.xml", sst + b"<si><t>" + b"A" * (2 << 20) + b"</t></si></sst>"
        )
    assert bomb.stat().st_size < 100_000
    small = ImportLimits(max_shared_strings_bytes=1 << 20)
    error = read_cases([bomb], limits=small).files[0].error
    assert error is not None and "共享字符串解压后 2 MB" in error
    error = read_cases([bomb], limits=ImportLimits(max_xlsx_ratio=50)).files[0].error
    assert error is not None and "压缩比异常" in error
    error = read_cases([bomb], limits=ImportLimits(max_decompressed_bytes=1 << 20)).files[0].error
    assert error is not None and "超过上限 1 MB" in error
    many = _xlsx(tmp_path / "many.xlsx", _rows(60))
    error = read_cases([many], limits=ImportLimits(max_rows=40)).files[0].error
    assert error is not None and "40 行的上限" in error
    error = read_cases([many], limits=ImportLimits(max_cells=500)).files[0].error
    assert error is not None and "500 个单元格的上限" in error


def test_csv_and_parquet_row_bounds(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(_csv_text(_rows(30)), encoding="utf-8")
    error = read_cases([path], limits=ImportLimits(max_rows=20)).files[0].error
    assert error is not None and "20 行的上限" in error
    pq.write_table(
        pq.read_table(REGION / "cases_2026.parquet").slice(0, 30), tmp_path / "p.parquet"
    )
    error = read_cases([tmp_path / "p.parquet"], limits=ImportLimits(max_rows=20)).files[0].error
    assert error is not None and "20 行的上限" in error


@pytest.mark.parametrize("n", [0, 1])
def test_quoted_multiline_value_is_still_one_row(tmp_path: Path, n: int) -> None:
    """A legitimate quoted value with a line break is one row, not a refused file."""
    rows = _rows(3)
    rows[2][rows[0].index("出院科别")] = "内科\n一病区" if n else "内科"
    path = tmp_path / "m.csv"
    path.write_text(_csv_text(rows), encoding="utf-8")
    result = read_cases([path])
    assert result.files[0].error is None and result.files[0].read == 3
