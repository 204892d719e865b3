"""Reading uploaded files into all-text tables: CSV (UTF-8 / GBK / GB18030), Excel, Parquet.

Every reader returns a `RawFile`: the file's columns as text under their original headers,
and for each row its number as a spreadsheet shows it (header = row 1, first data row = row
2; Parquet has no header, its first row is row 1). Completely blank rows are skipped and not
counted; rows with the wrong number of fields are kept aside (`bad_rows`), never dropped.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from opendip.ingest.limits import (
    DEFAULT_LIMITS,
    PROGRESS_EVERY,
    ImportLimits,
    LimitExceeded,
    Progress,
    check_parquet_metadata,
    check_table_size,
    check_xlsx_archive,
    scan_xlsx,
)

#: Characters of a refused row's raw text kept for quarantine.csv.
RAW_TEXT_KEPT = 2000

#: Tried in order when no encoding is given. GB18030 is a superset of GBK and GB2312.
DETECTED_ENCODINGS = ("utf-8", "gb18030")
#: What users type for `--encoding` → the codec used.
ENCODING_NAMES = {
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8",
    "utf8-sig": "utf-8",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "gb18030": "gb18030",
    "cp936": "gb18030",
}
CSV_SUFFIXES = (".csv", ".txt", ".tsv", "")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")


class ReadError(ValueError):
    """A whole file that cannot be read; the message says why, in Chinese."""


@dataclass
class RawFile:
    """One file as text columns under its original headers."""

    path: Path
    table: pa.Table  # all string columns (Parquet: typed), original (de-duplicated) headers
    row_numbers: pa.Array  # int64, one per table row, as a spreadsheet shows them
    encoding: str | None = None
    #: Rows that could not be split into the header's columns: (row number, text, why).
    #: (row number, text, why[, error kind]); the kind defaults to ragged_row.
    bad_rows: list[tuple] = field(default_factory=list)
    typed: bool = False  # Parquet: columns keep their types
    warnings: list[str] = field(default_factory=list)


def canonical_encoding(name: str) -> str:
    """'GBK' → 'gb18030', 'UTF8' → 'utf-8'; other Python codec names pass through."""
    key = name.strip().lower().replace("_", "-")
    if key in ENCODING_NAMES:
        return ENCODING_NAMES[key]
    try:
        return codecs.lookup(key).name
    except LookupError:
        raise ReadError(f"不支持的编码 {name!r}（可用：UTF-8、GBK、GB18030）") from None


#: Transcoding works in slices of this many bytes, so that a large file is never held as
#: one Python string (that would triple the memory).
_SLICE = 1 << 24


def _transcode(raw: bytes, encoding: str) -> bytes:
    """`raw` decoded from `encoding` as UTF-8 bytes without BOM (UTF-8 input is only
    checked, not copied). Raises `ReadError` naming the line where decoding failed."""
    codec = "utf-8-sig" if encoding == "utf-8" else encoding
    decoder = codecs.getincrementaldecoder(codec)()
    parts: list[bytes] = []
    for start in range(0, len(raw), _SLICE):
        chunk = raw[start : start + _SLICE]
        try:
            text = decoder.decode(chunk, final=start + _SLICE >= len(raw))
        except UnicodeDecodeError as exc:
            position = start + max(exc.start, 0)
            line = raw[:position].count(b"\n") + 1
            shown = {"utf-8": "UTF-8", "gb18030": "GBK/GB18030"}.get(encoding, encoding)
            raise ReadError(
                f"文件无法按 {shown} 编码读取（第 {line} 行附近）；"
                "请确认编码为 UTF-8 或 GBK/GB18030，或去掉 --encoding 自动识别"
            ) from exc
        if encoding != "utf-8":
            parts.append(text.encode("utf-8"))
    if encoding == "utf-8":
        return raw[3:] if raw.startswith(codecs.BOM_UTF8) else raw
    return b"".join(parts)


def detect_encoding(raw: bytes) -> str:
    """The first of UTF-8, GB18030 in which `raw` decodes."""
    for encoding in DETECTED_ENCODINGS:
        try:
            _transcode(raw, encoding)
        except ReadError:
            continue
        return encoding
    raise ReadError("无法识别文件编码（应为 UTF-8 或 GBK/GB18030）")


def _utf8_text(raw: bytes, encoding: str | None) -> tuple[bytes, str]:
    """The file as UTF-8 bytes (no BOM) and the encoding it was read in."""
    if encoding is not None:
        encoding = canonical_encoding(encoding)
        return _transcode(raw, encoding), encoding
    for candidate in DETECTED_ENCODINGS:
        try:
            return _transcode(raw, candidate), candidate
        except ReadError:
            continue
    raise ReadError("无法识别文件编码（应为 UTF-8 或 GBK/GB18030）")


def _header(data: bytes) -> tuple[list[str], str]:
    """The header row and the delimiter (',' unless the header has tabs and no commas)."""
    first = data[: 1 << 16].decode("utf-8", errors="replace")
    line = first.splitlines()[0] if first.splitlines() else ""
    delimiter = "\t" if "\t" in line and "," not in line else ","
    try:
        header = next(csv.reader(io.StringIO(first, newline=""), delimiter=delimiter), [])
    except csv.Error as exc:
        raise ReadError(f"CSV 表头无法解析（第 1 行）：{exc}") from exc
    return header, delimiter


def unique_headers(header: list[str]) -> tuple[list[str], list[str]]:
    """Headers made unique ('费用', '费用#2') with a warning for each repeat."""
    seen: dict[str, int] = {}
    out: list[str] = []
    warnings: list[str] = []
    for i, h in enumerate(header):
        name = h.strip().lstrip("\ufeff") or f"第{i + 1}列"
        if name in seen:
            seen[name] += 1
            warnings.append(f"列名“{name}”重复，第 {seen[name]} 个改名为“{name}#{seen[name]}”")
            name = f"{name}#{seen[name]}"
        else:
            seen[name] = 1
        out.append(name)
    return out, warnings


def read_csv(
    path: Path,
    encoding: str | None = None,
    limits: ImportLimits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> RawFile:
    raw = path.read_bytes()
    if not raw.strip():
        raise ReadError("文件为空")
    data, encoding = _utf8_text(raw, encoding)
    del raw
    if b"\r" in data and b"\n" not in data:  # classic Mac line endings (CR only)
        data = data.replace(b"\r", b"\n")
    header, delimiter = _header(data)
    names, warnings = unique_headers(header)
    table, bad = _parse_csv(data, names, delimiter, use_threads=True)
    if bad:  # row numbers of refused rows are only known in a single-threaded parse
        table, bad = _parse_csv(data, names, delimiter, use_threads=False)
        bad = _explain_quotes(bad, len(names), delimiter)
    try:
        check_table_size(table.num_rows + len(bad), len(names), limits, "CSV 文件")
    except LimitExceeded as exc:
        raise ReadError(str(exc)) from exc
    numbers = np.arange(2, table.num_rows + len(bad) + 2, dtype=np.int64)
    if bad:
        numbers = numbers[~np.isin(numbers, [b[0] for b in bad])]
    table, numbers = _drop_blank_rows(table, numbers)
    if progress is not None:
        progress("读取数据行", table.num_rows + len(bad))
    return RawFile(path, table, pa.array(numbers), encoding, bad, warnings=warnings)


def _explain_quotes(bad: list[tuple[int, str, str]], expected: int, delimiter: str) -> list[tuple]:
    """A refused row spanning several lines whose inner lines look like whole records is an
    unclosed double quote that swallowed the following rows: refuse the file naming the row
    (silently counting 15 cases as one would lose them). A single refused line with an odd
    number of quotes says so in its reason."""
    out: list[tuple] = []
    for number, text, why in bad:
        lines = text.splitlines()
        swallowed = [ln for ln in lines[1:] if ln.count(delimiter) + 1 >= expected]
        if len(lines) > 1 and swallowed:
            raise ReadError(
                f"CSV 格式错误：第 {number} 行的双引号没有闭合，其后 {len(lines) - 1} 行被并入同一条"
                '记录；请检查该行的双引号（值内的引号应写成两个 ""）后重新上传'
            )
        if text.count('"') % 2:
            out.append(
                (number, text[:RAW_TEXT_KEPT], why + "（该行双引号不成对）", "unbalanced_quote")
            )
        else:
            out.append((number, text[:RAW_TEXT_KEPT], why))
    return out


def _parse_csv(
    data: bytes, names: list[str], delimiter: str, use_threads: bool
) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    bad: list[tuple[int, str, str]] = []
    expected = len(names)

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad.append(
            (
                row.number or 0,
                row.text,
                f"列数不符：应为 {expected} 列，实为 {row.actual_columns} 列",
            )
        )
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, use_threads=use_threads, block_size=1 << 24
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                invalid_row_handler=on_invalid,
                newlines_in_values=True,
                ignore_empty_lines=False,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
    except pa.ArrowInvalid as exc:
        raise ReadError(f"CSV 格式错误：{exc}") from exc
    if bad and use_threads is False:
        # With skip_rows=1 the parser numbers the header as row 1 already.
        bad.sort()
    return table, bad


def _drop_blank_rows(table: pa.Table, numbers: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    """Rows where every cell is empty (a blank line, ',,,') are not data."""
    if table.num_rows == 0 or table.num_columns == 0:
        return table, numbers
    first = pc.equal(pc.utf8_trim_whitespace(table.column(0)), "").to_numpy(zero_copy_only=False)
    candidates = np.flatnonzero(first)  # usually none: only these rows are checked further
    if len(candidates) == 0:
        return table, numbers
    rows = table.take(pa.array(candidates))
    blank = np.ones(len(candidates), dtype=bool)
    for column in rows.columns:
        blank &= pc.equal(pc.utf8_trim_whitespace(column), "").to_numpy(zero_copy_only=False)
    if not blank.any():
        return table, numbers
    keep = np.ones(table.num_rows, dtype=bool)
    keep[candidates[blank]] = False
    return table.filter(pa.array(keep)), numbers[keep]


def _cell(value: object) -> str:
    """An Excel cell as the text a user sees (dates ISO, whole floats without '.0')."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else format(Decimal(repr(value)), "f")
    return str(value)


def read_excel(
    path: Path,
    sheet: str | None = None,
    limits: ImportLimits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> RawFile:
    """The first (or named) worksheet as text. The archive is checked against `limits`
    before it is opened, the sheet's XML is scanned once independently of openpyxl and of
    its `<dimension>` tag (`limits.scan_xlsx`), and the rows read must match the rows
    scanned. Rows with a formula but no cached value, or inside a merged range, are kept
    aside with the reason (they would otherwise read as empty cells). `progress` hears the
    rows scanned, then the rows read."""
    from openpyxl import load_workbook

    try:
        check_xlsx_archive(path, limits)
    except LimitExceeded as exc:
        raise ReadError(str(exc)) from exc
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise ReadError(
            "无法打开 Excel 文件：文件结构不符合 .xlsx 规范（可能已损坏或由其他软件生成）；"
            "请在 Excel 中另存为新的 .xlsx 或 CSV 后重新上传"
        ) from exc
    try:
        ws = book[_sheet_name(book.sheetnames, sheet)]
        try:
            with book._archive.open(ws._worksheet_path) as src:
                scan = scan_xlsx(src, limits, progress)
        except LimitExceeded as exc:
            raise ReadError(str(exc)) from exc
        except ET.ParseError as exc:
            raise ReadError(f"Excel 工作表内容损坏：{exc}") from exc
        ws.reset_dimensions()  # never trust <dimension>: read every row there is
        rows = ws.iter_rows(values_only=True)
        header_row = next(rows, None)
        value_rows = int(any(v is not None for v in header_row or ()))
        header = [_cell(v) for v in header_row or ()]
        while header and not header[-1].strip():
            header.pop()
        if not any(h.strip() for h in header):
            raise ReadError("文件为空（第一行没有列名）")
        names, warnings = unique_headers(header)
        columns: list[list[str]] = [[] for _ in names]
        numbers: list[int] = []
        bad: list[tuple[int, str, str, str]] = []
        width = len(names)
        formulas = scan.formula_rows
        merged = scan.merged_rows()
        beyond: list[int] = []
        for number, row in enumerate(rows, start=2):
            if progress is not None and number % PROGRESS_EVERY == 0:
                progress("读取数据行", number - 1)
            value_rows += any(v is not None for v in row)
            cells = [_cell(v) for v in row[:width]]
            if number in formulas or number in merged:
                text = ",".join(cells)
                if number in formulas:
                    reason = (
                        f"单元格 {formulas[number]} 是公式但文件中没有保存计算结果："
                        "请在 Excel 中打开、重新计算并保存，或复制后“粘贴为数值”"
                    )
                    bad.append((number, text, reason, "formula_no_value"))
                else:
                    cell, ref = merged[number]
                    reason = f"单元格 {cell} 位于合并单元格 {ref} 中：请取消合并并在每一行填写"
                    bad.append((number, text, reason, "merged_cell"))
                continue
            if not any(c.strip() for c in cells):
                if any(_cell(v).strip() for v in row[width:]):
                    beyond.append(number)
                continue
            if any(_cell(v).strip() for v in row[width:]):
                beyond.append(number)
            cells += [""] * (width - len(cells))
            for i, c in enumerate(cells):
                columns[i].append(c)
            numbers.append(number)
    finally:
        book.close()
    if progress is not None:
        progress("读取数据行", len(numbers) + len(bad))
    if value_rows != scan.value_rows:
        raise ReadError(
            f"Excel 行数核对不符：工作表中有 {scan.value_rows} 行含数据，只读到 {value_rows} 行；"
            "文件可能已损坏，请另存为新的 .xlsx 或 CSV 后重新上传"
        )
    if beyond:
        shown = "、".join(str(n) for n in beyond[:5])
        warnings.append(f"第 {shown} 行等 {len(beyond)} 行在表头以外的列有内容，这些内容已忽略")
    table = pa.table({n: pa.array(c, pa.string()) for n, c in zip(names, columns, strict=True)})
    return RawFile(path, table, pa.array(numbers, pa.int64()), bad_rows=bad, warnings=warnings)


def _sheet_name(names: list[str], sheet: str | None) -> str:
    if sheet is None:
        return names[0]
    if sheet in names:
        return sheet
    if sheet.isdigit() and 1 <= int(sheet) <= len(names):
        return names[int(sheet) - 1]
    raise ReadError(f"Excel 中没有工作表 {sheet!r}（现有：{'、'.join(names)}）")


def read_parquet(
    path: Path, limits: ImportLimits = DEFAULT_LIMITS, progress: Progress | None = None
) -> RawFile:
    try:
        check_parquet_metadata(path, limits)
    except LimitExceeded as exc:
        raise ReadError(str(exc)) from exc
    except Exception as exc:
        raise ReadError(f"无法读取 Parquet 文件：{exc}") from exc
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise ReadError(f"无法读取 Parquet 文件：{exc}") from exc
    numbers = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
    if progress is not None:
        progress("读取数据行", table.num_rows)
    return RawFile(path, table, numbers, typed=True)


def read_file(
    path: str | Path,
    encoding: str | None = None,
    sheet: str | None = None,
    limits: ImportLimits | None = None,
    progress: Progress | None = None,
) -> RawFile:
    """Read one CSV / Excel / Parquet file (chosen by suffix) into a `RawFile`, within
    `limits` (default `DEFAULT_LIMITS`); rows with a field over `limits.max_field_chars`
    are kept aside with the reason. `progress` hears (step, rows so far) while reading."""
    path = Path(path)
    limits = limits or DEFAULT_LIMITS
    if not path.is_file():
        raise ReadError("文件不存在")
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        raw = read_excel(path, sheet, limits, progress)
    elif suffix == ".parquet":
        raw = read_parquet(path, limits, progress)
    elif suffix in CSV_SUFFIXES:
        raw = read_csv(path, encoding, limits, progress)
    elif suffix == ".xls":
        raise ReadError("不支持旧版 Excel .xls，请另存为 .xlsx 或 CSV")
    else:
        raise ReadError(f"不支持的文件类型 {suffix}（支持 CSV、Excel .xlsx、Parquet）")
    try:
        check_table_size(raw.table.num_rows, raw.table.num_columns, limits, "文件")
    except LimitExceeded as exc:
        raise ReadError(str(exc)) from exc
    return bound_fields(raw, limits.max_field_chars)


def bound_fields(raw: RawFile, max_chars: int) -> RawFile:
    """Rows with a text field longer than `max_chars` move to `bad_rows` (reason names the
    column and length; the kept text is cut), so no later step sees an unbounded field."""
    n = raw.table.num_rows
    if n == 0:
        return raw
    over = np.zeros(n, dtype=bool)
    first: dict[int, tuple[str, int]] = {}
    for name in raw.table.column_names:
        col = raw.table.column(name)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            continue
        lengths = pc.fill_null(pc.utf8_length(col), 0).to_numpy(zero_copy_only=False)
        hit = lengths > max_chars
        if hit.any():
            for i in np.flatnonzero(hit & ~over):  # only the refused rows: a short loop
                first[int(i)] = (name, int(lengths[i]))
            over |= hit
    if not over.any():
        return raw
    idx = np.flatnonzero(over)
    numbers = raw.row_numbers.to_numpy(zero_copy_only=False)
    refused = raw.table.take(pa.array(idx)).to_pylist()
    bad = list(raw.bad_rows)
    for i, row in zip(idx, refused, strict=True):
        name, length = first[int(i)]
        text = ",".join((v or "")[:200] if isinstance(v, str) else str(v) for v in row.values())
        reason = f"字段“{name}”过长（{length:,} 个字符，上限 {max_chars:,}）"
        bad.append((int(numbers[i]), text[:RAW_TEXT_KEPT], reason, "field_too_long"))
    bad.sort(key=lambda b: b[0])
    keep = pa.array(~over)
    return RawFile(
        raw.path,
        raw.table.filter(keep),
        pa.array(numbers[~over]),
        raw.encoding,
        bad,
        raw.typed,
        raw.warnings,
    )
