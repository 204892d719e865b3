"""Readers: encodings, CSV shapes, Excel, Parquet, and unreadable files."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opendip.ingest.readers import (
    ReadError,
    canonical_encoding,
    detect_encoding,
    read_file,
    unique_headers,
)


def _write(tmp_path: Path, text: str, name: str = "f.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_utf8_with_and_without_bom_gives_the_same_text(tmp_path: Path) -> None:
    text = "结算清单号,主要诊断代码\nA1,K35.800x001\n"
    plain = read_file(_write(tmp_path, text, "a.csv", "utf-8"))
    bom = read_file(_write(tmp_path, text, "b.csv", "utf-8-sig"))
    assert plain.encoding == bom.encoding == "utf-8"
    assert plain.table.column_names == bom.table.column_names == ["结算清单号", "主要诊断代码"]
    assert bom.table.to_pylist() == [{"结算清单号": "A1", "主要诊断代码": "K35.800x001"}]


def test_gbk_is_detected_as_gb18030(tmp_path: Path) -> None:
    raw = read_file(_write(tmp_path, "姓名,科室\n张三,普外科\n", encoding="gbk"))
    assert raw.encoding == "gb18030"
    assert raw.table.to_pylist() == [{"姓名": "张三", "科室": "普外科"}]


def test_gb18030_only_characters(tmp_path: Path) -> None:
    # U+20000 and U+9FA6 are not in GBK, only in GB18030 (four-byte sequences).
    text = "姓名,备注\n\U00020000\u9fa6,x\n"
    with pytest.raises(UnicodeEncodeError):
        text.encode("gbk")
    raw = read_file(_write(tmp_path, text, encoding="gb18030"))
    assert raw.encoding == "gb18030"
    assert raw.table.column("姓名").to_pylist() == ["\U00020000\u9fa6"]


def test_given_encoding_that_does_not_decode_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "a,b\n1,2\n张,三\n", encoding="gbk")
    with pytest.raises(ReadError, match=r"无法按 UTF-8 编码读取（第 3 行附近）"):
        read_file(path, encoding="utf-8")


def test_encoding_names() -> None:
    assert canonical_encoding("GBK") == canonical_encoding("gb2312") == "gb18030"
    assert canonical_encoding("UTF8") == canonical_encoding("utf_8_sig") == "utf-8"
    assert canonical_encoding("latin-1") == "iso8859-1"
    with pytest.raises(ReadError, match="不支持的编码"):
        canonical_encoding("nonsense")


def test_detect_encoding_refuses_what_is_neither() -> None:
    assert detect_encoding("中文".encode()) == "utf-8"
    assert detect_encoding("中文".encode("gbk")) == "gb18030"
    with pytest.raises(ReadError, match="无法识别文件编码"):
        detect_encoding(b"\x81\x20\xff\xfe")


def test_all_values_stay_text(tmp_path: Path) -> None:
    raw = read_file(_write(tmp_path, "a,b,c\n007,47.0100,1.50\n"))
    assert raw.table.schema == pa.schema(
        [("a", pa.string()), ("b", pa.string()), ("c", pa.string())]
    )
    assert raw.table.to_pylist() == [{"a": "007", "b": "47.0100", "c": "1.50"}]


def test_row_numbers_count_blank_lines_and_multiline_values(tmp_path: Path) -> None:
    text = 'a,b\n\n1,2\n3\n"x\ny",5\n,\n6,7,8\n9,10\n'
    raw = read_file(_write(tmp_path, text))
    # header 1, blank 2, '1,2' 3, ragged 4, quoted two-line value 5, blank ',' 6, ragged 7, 8
    assert raw.row_numbers.to_pylist() == [3, 5, 8]
    assert raw.table.column("a").to_pylist() == ["1", "x\ny", "9"]
    assert [(n, t) for n, t, _ in raw.bad_rows] == [(4, "3"), (7, "6,7,8")]
    assert "应为 2 列，实为 3 列" in raw.bad_rows[1][2]


def test_crlf_and_quoted_commas(tmp_path: Path) -> None:
    raw = read_file(_write(tmp_path, 'a,b\r\n"1,234.50",x\r\n'))
    assert raw.table.to_pylist() == [{"a": "1,234.50", "b": "x"}]
    assert raw.row_numbers.to_pylist() == [2]


def test_tab_separated(tmp_path: Path) -> None:
    raw = read_file(_write(tmp_path, "a\tb\n1\t2\n", "f.tsv"))
    assert raw.table.to_pylist() == [{"a": "1", "b": "2"}]


def test_repeated_headers_are_renamed_with_a_warning(tmp_path: Path) -> None:
    raw = read_file(_write(tmp_path, "费用,费用,\n1,2,3\n"))
    assert raw.table.column_names == ["费用", "费用#2", "第3列"]
    assert raw.warnings == ["列名“费用”重复，第 2 个改名为“费用#2”"]
    assert unique_headers(["\ufeffa", " a "]) == (["a", "a#2"], ["列名“a”重复，第 2 个改名为“a#2”"])


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="文件为空"):
        read_file(_write(tmp_path, "  \n\n"))
    raw = read_file(_write(tmp_path, "a,b\n", "h.csv"))
    assert raw.table.num_rows == 0 and raw.table.column_names == ["a", "b"]


def test_unsupported_missing_and_old_excel(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"不支持的文件类型 \.json"):
        read_file(_write(tmp_path, "{}", "x.json"))
    with pytest.raises(ReadError, match=r"旧版 Excel \.xls"):
        read_file(_write(tmp_path, "x", "x.xls"))
    with pytest.raises(ReadError, match="文件不存在"):
        read_file(tmp_path / "nope.csv")


def _workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


def test_excel_cells_as_users_see_them(tmp_path: Path) -> None:
    path = _workbook(
        tmp_path / "f.xlsx",
        {
            "清单": [
                ["结算清单号", "入院日期", "出院时间", "医疗总费用", "年龄", None],
                ["A1", dt.datetime(2026, 3, 1), dt.datetime(2026, 3, 5, 10, 30), 1234.5, 45.0],
                [None, None, None, None, None],
                ["A2", dt.date(2026, 3, 2), "2026/3/9", 0.1 + 0.2, 7],
            ]
        },
    )
    raw = read_file(path)
    assert raw.table.column_names == ["结算清单号", "入院日期", "出院时间", "医疗总费用", "年龄"]
    assert raw.row_numbers.to_pylist() == [2, 4]  # the blank row 3 is skipped, not renumbered
    assert raw.table.to_pylist() == [
        {"结算清单号": "A1", "入院日期": "2026-03-01", "出院时间": "2026-03-05 10:30:00",
         "医疗总费用": "1234.5", "年龄": "45"},
        {"结算清单号": "A2", "入院日期": "2026-03-02", "出院时间": "2026/3/9",
         "医疗总费用": "0.3", "年龄": "7"},
    ]  # fmt: skip


def test_excel_sheet_by_name_or_number(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "f.xlsx", {"说明": [["x"], ["1"]], "清单": [["a"], ["2"]]})
    assert read_file(path).table.column_names == ["x"]
    assert read_file(path, sheet="清单").table.to_pylist() == [{"a": "2"}]
    assert read_file(path, sheet="2").table.to_pylist() == [{"a": "2"}]
    with pytest.raises(ReadError, match="没有工作表 '明细'（现有：说明、清单）"):
        read_file(path, sheet="明细")


def test_excel_empty_and_damaged(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="文件为空"):
        read_file(_workbook(tmp_path / "e.xlsx", {"s": []}))
    with pytest.raises(ReadError, match="无法打开 Excel 文件") as damaged:
        read_file(_write(tmp_path, "not a zip", "d.xlsx"))
    good = _workbook(tmp_path / "g.xlsx", {"s": [["a"], ["1"]]})
    odd = tmp_path / "odd.xlsx"  # openpyxl refuses an unknown attribute with a TypeError
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(odd, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.startswith("xl/worksheets/"):
                data = re.sub(rb"<dimension ref=", b'<dimension x="1" ref=', data)
            zout.writestr(info, data)
    with pytest.raises(ReadError, match=r"文件结构不符合 \.xlsx 规范") as broken:
        read_file(odd)
    for exc in (damaged.value, broken.value):  # Chinese only: no Python exception text
        assert set(re.findall(r"[A-Za-z]+", str(exc))) <= {"Excel", "xlsx", "CSV"}, exc


def test_parquet_keeps_types_and_numbers_rows_from_one(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"case_id": ["A", "B"], "total_cost": [1, 2]}), path)
    raw = read_file(path)
    assert raw.typed and raw.row_numbers.to_pylist() == [1, 2]
    assert raw.table.schema.field("total_cost").type == pa.int64()
    with pytest.raises(ReadError, match="无法读取 Parquet"):
        read_file(_write(tmp_path, "nope", "bad.parquet"))


def test_transcoding_in_slices_splits_no_character(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import opendip.ingest.readers as readers

    monkeypatch.setattr(readers, "_SLICE", 5)  # cuts through two- and four-byte sequences
    text = "姓名,备注\n张三,\U00020000普外科\n李四,x\n"
    raw = read_file(_write(tmp_path, text, encoding="gb18030"))
    assert raw.table.to_pylist() == [
        {"姓名": "张三", "备注": "\U00020000普外科"},
        {"姓名": "李四", "备注": "x"},
    ]
    assert read_file(_write(tmp_path, text, "u.csv", "utf-8-sig")).table.equals(raw.table)
    bad = _write(tmp_path, "a,b\n1,2\n3,4\n", "bad.csv").read_bytes() + b"\xff\xfe,1\n"
    (tmp_path / "bad.csv").write_bytes(bad)
    with pytest.raises(ReadError, match=r"无法按 UTF-8 编码读取（第 4 行附近）"):
        read_file(tmp_path / "bad.csv", encoding="utf-8")
