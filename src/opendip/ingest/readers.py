"""Reading settlement-list files into all-text tables: CSV (UTF-8 / GBK / GB18030), Excel,
Parquet. Encoding is detected unless given; ragged rows are kept aside, never dropped."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

#: Tried in order when no encoding is given. GB18030 is a superset of GBK and GB2312.
ENCODINGS = ("utf-8", "gb18030")


class ReadError(ValueError):
    """A whole file that cannot be read; the message says which and why (in Chinese)."""


@dataclass
class RawFile:
    """A file as text columns with the original headers; `row_numbers` as a user sees them
    (the header is row 1, the first data row is row 2)."""

    path: Path
    table: pa.Table  # all string columns, original header names
    row_numbers: pa.Array  # int64, one per table row
    encoding: str | None = None
    bad_rows: list[tuple[int, str, str]] = field(default_factory=list)  # (row, text, why)
    typed: bool = False  # Parquet: columns already typed


def _decode_check(raw: bytes, encoding: str) -> str:
    try:
        raw.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ReadError(
            f"文件无法按 {encoding} 编码读取（第 {line} 行附近）；请确认编码为 UTF-8 或 GBK/GB18030"
        ) from exc
    return encoding


def detect_encoding(raw: bytes) -> str:
    for encoding in ENCODINGS:
        try:
            return _decode_check(raw, encoding)
        except ReadError:
            continue
    raise ReadError("无法识别文件编码（应为 UTF-8 或 GBK/GB18030）")


def read_csv(path: Path, encoding: str | None = None) -> RawFile:
    raw = path.read_bytes()
    if not raw.strip():
        raise ReadError("文件为空")
    encoding = _decode_check(raw, _canonical(encoding)) if encoding else detect_encoding(raw)
    text = raw.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    bad: list[tuple[int, str, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        number = (row.number or 0) if row.number is not None else 0
        bad.append(
            (
                number,
                row.text,
                f"列数不符：应为 {row.expected_columns} 列，实为 {row.actual_columns} 列",
            )
        )
        return "skip"

    # Every column is text here: "47.0100" must not become the float 47.01.
    first_line = text.split("\n", 1)[0]
    header = next(csv.reader([first_line]), [])
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(block_size=1 << 26, use_threads=False),
            parse_options=pacsv.ParseOptions(
                invalid_row_handler=on_invalid, newlines_in_values=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=False,
                auto_dict_encode=False,
                include_missing_columns=False,
                check_utf8=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise ReadError(f"CSV 格式错误：{exc}") from exc
    table = pa.table({name: table.column(name).cast(pa.string()) for name in table.column_names})
    numbers = _row_numbers(text, table.num_rows, {b[0] for b in bad})
    return RawFile(path, table, numbers, encoding, bad)


def _row_numbers(text: str, n: int, skipped: set[int]) -> pa.Array:
    """Row numbers of parsed rows: data rows start at 2; ragged rows are skipped."""
    if not skipped:
        return pa.array(range(2, n + 2), pa.int64())
    numbers = []
    row = 2
    while len(numbers) < n:
        if row not in skipped:
            numbers.append(row)
        row += 1
    return pa.array(numbers, pa.int64())


def _canonical(encoding: str) -> str:
    e = encoding.lower().replace("_", "-")
    return {"utf8": "utf-8", "utf-8-sig": "utf-8", "gbk": "gb18030", "gb2312": "gb18030"}.get(e, e)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_excel(path: Path, sheet: str | None = None) -> RawFile:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise ReadError(f"无法打开 Excel 文件：{exc}") from exc
    if sheet is not None and sheet not in book.sheetnames:
        raise ReadError(f"Excel 中没有工作表 {sheet!r}（现有：{'、'.join(book.sheetnames)}）")
    ws = book[sheet] if sheet else book.worksheets[0]
    rows = ws.iter_rows(values_only=True)
    header = [_cell(v) for v in next(rows, ())]
    if not any(header):
        raise ReadError("文件为空")
    columns: list[list[str]] = [[] for _ in header]
    for row in rows:
        if row is None or all(v is None for v in row):
            continue
        for i in range(len(header)):
            columns[i].append(_cell(row[i]) if i < len(row) else "")
    table = pa.table(
        {h: pa.array(c, pa.string()) for h, c in zip(header, columns, strict=True) if h}
    )
    return RawFile(path, table, pa.array(range(2, table.num_rows + 2), pa.int64()))


def read_parquet(path: Path) -> RawFile:
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise ReadError(f"无法读取 Parquet 文件：{exc}") from exc
    return RawFile(path, table, pa.array(range(1, table.num_rows + 1), pa.int64()), typed=True)


def read_file(path: str | Path, encoding: str | None = None, sheet: str | None = None) -> RawFile:
    path = Path(path)
    if not path.exists():
        raise ReadError("文件不存在")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return read_excel(path, sheet)
    if suffix == ".parquet":
        return read_parquet(path)
    if suffix in (".csv", ".txt", ""):
        return read_csv(path, encoding)
    raise ReadError(f"不支持的文件类型 {suffix}（支持 CSV、Excel .xlsx、Parquet）")
