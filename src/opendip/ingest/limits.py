"""Bounds on what one import may cost, and an xlsx check that does not trust the file.

`ImportLimits` bounds rows, cells, the length of one field and, for Excel, the decompressed
size of the archive (total, per-member compression ratio and the shared-strings part), so a
small hostile file cannot take the memory or the time of a whole server. Everything over a
bound is refused with a Chinese message saying which bound and how to split the file. These
are operational limits (the web platform sets its own in `Settings.import_limits`), not
regional policy.

`scan_xlsx` reads a worksheet's XML once, streamed, independently of openpyxl and of the
sheet's `<dimension>` tag: it counts the rows that hold a value, checks the bounds as it goes
and finds formula cells without a cached value and merged cells (both would otherwise read
as empty cells). The Excel reader compares its own count with the scan's: a difference is an
error, never a silently shorter import.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

#: Called while a file is read with (step in Chinese, rows so far), e.g. so that the
#: platform can show an upload's progress; called every `PROGRESS_EVERY` rows at most.
Progress = Callable[[str, int], None]
PROGRESS_EVERY = 20_000


@dataclass(frozen=True)
class ImportLimits:
    #: Data rows of one file.
    max_rows: int = 2_000_000
    #: Rows × columns of one file (cells of a worksheet that hold a value for Excel).
    max_cells: int = 100_000_000
    #: Characters of one field (Excel's own cell limit); longer fields quarantine the row.
    max_field_chars: int = 32_767
    #: Decompressed size of all parts of an .xlsx archive, or of a Parquet file's data.
    max_decompressed_bytes: int = 1 << 30
    #: Decompressed / compressed size of one archive part (zip bombs), for parts over 1 MiB.
    max_xlsx_ratio: int = 200
    #: Decompressed size of the shared-strings part (openpyxl holds it all in memory).
    max_shared_strings_bytes: int = 256 << 20


DEFAULT_LIMITS = ImportLimits()


class LimitExceeded(ValueError):
    """A file over an `ImportLimits` bound (Chinese message)."""


def mib(n: int) -> str:
    if n < 1 << 20:
        return f"{max(1, round(n / 1024)):,} KB"
    return f"{n / (1 << 20):,.0f} MB"


def check_xlsx_archive(path: Path, limits: ImportLimits) -> None:
    """Refuse an .xlsx whose parts would decompress beyond the bounds (before opening it)."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise LimitExceeded(
            "无法打开 Excel 文件：不是有效的 .xlsx（文件不是 xlsx 压缩包或已损坏）；"
            "请在 Excel 中另存为新的 .xlsx 或 CSV 后重新上传"
        ) from exc
    total = sum(i.file_size for i in infos)
    if total > limits.max_decompressed_bytes:
        raise LimitExceeded(
            f"Excel 文件解压后 {mib(total)}，超过上限 {mib(limits.max_decompressed_bytes)}；"
            "请拆分为多个文件或另存为 CSV 后上传"
        )
    for info in infos:
        if info.filename.lower().endswith("sharedstrings.xml") and (
            info.file_size > limits.max_shared_strings_bytes
        ):
            raise LimitExceeded(
                f"Excel 文件的共享字符串解压后 {mib(info.file_size)}，超过上限 "
                f"{mib(limits.max_shared_strings_bytes)}；请拆分文件或另存为 CSV 后上传"
            )
        if info.file_size > 1 << 20 and info.file_size > limits.max_xlsx_ratio * max(
            info.compress_size, 1
        ):
            raise LimitExceeded(
                f"Excel 文件的部件 {info.filename} 压缩比异常（{mib(info.compress_size)} 解压为 "
                f"{mib(info.file_size)}），疑似恶意文件，已拒收"
            )


def check_parquet_metadata(path: Path, limits: ImportLimits) -> None:
    """Refuse a Parquet file whose rows or decompressed data exceed the bounds (from its
    footer, before any data is read)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    if meta.num_rows > limits.max_rows:
        raise LimitExceeded(
            f"Parquet 文件有 {meta.num_rows:,} 行，超过 {limits.max_rows:,} 行的上限；请拆分后上传"
        )
    if meta.num_rows * meta.num_columns > limits.max_cells:
        raise LimitExceeded(f"Parquet 文件超过 {limits.max_cells:,} 个单元格的上限；请拆分后上传")
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if size > limits.max_decompressed_bytes:
        raise LimitExceeded(
            f"Parquet 文件解压后 {mib(size)}，超过上限 {mib(limits.max_decompressed_bytes)}；"
            "请拆分后上传"
        )


def check_table_size(rows: int, columns: int, limits: ImportLimits, what: str) -> None:
    if rows > limits.max_rows:
        raise LimitExceeded(
            f"{what}有 {rows:,} 行，超过 {limits.max_rows:,} 行的上限；请拆分后上传"
        )
    if rows * columns > limits.max_cells:
        raise LimitExceeded(
            f"{what}有 {rows * columns:,} 个单元格，超过 {limits.max_cells:,} 的上限；请拆分后上传"
        )


_CELL_REF = re.compile(r"^([A-Z]+)(\d+)$")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def column_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


@dataclass
class SheetScan:
    """What `scan_xlsx` found in one worksheet."""

    #: Numbers of the rows that hold at least one value (cached value or inline string).
    value_rows: int = 0
    cells: int = 0
    #: Row number → first cell reference of a formula without a cached value.
    formula_rows: dict[int, str] = field(default_factory=dict)
    #: Merged ranges as written ("A2:A5").
    merged: list[str] = field(default_factory=list)

    def merged_rows(self, first_data_row: int = 2) -> dict[int, tuple[str, str]]:
        """Row number → (cell, range) for every cell of a merged range except its top-left
        one (those cells read as empty), data rows only."""
        out: dict[int, tuple[str, str]] = {}
        for ref in self.merged:
            if ":" not in ref:
                continue
            a, b = ref.split(":", 1)
            ma, mb = _CELL_REF.match(a), _CELL_REF.match(b)
            if not ma or not mb:
                continue
            c1, r1, c2, r2 = column_number(ma[1]), int(ma[2]), column_number(mb[1]), int(mb[2])
            for row in range(max(r1, first_data_row), r2 + 1):
                if row == r1 and c1 == c2:
                    continue
                cell = f"{mb[1] if row == r1 else ma[1]}{row}"
                out.setdefault(row, (cell, ref))
        return out


def scan_xlsx(source, limits: ImportLimits, progress: Progress | None = None) -> SheetScan:
    """Stream one worksheet's XML (a binary file object); raise `LimitExceeded` as soon as
    a bound is passed. `progress` hears ("检查文件结构", rows scanned) as it goes."""
    scan = SheetScan()
    rows_seen = 0
    row_has_value = False
    row_number = 0
    in_cell_formula = in_cell_value = False
    cell_ref = ""
    sheet_data = None
    for event, elem in ET.iterparse(source, events=("start", "end")):
        tag = _local(elem.tag)
        if event == "start":
            if tag == "sheetData":
                sheet_data = elem
            elif tag == "row":
                rows_seen += 1
                row_has_value = False
                if progress is not None and rows_seen % PROGRESS_EVERY == 0:
                    progress("检查文件结构", rows_seen)
                r = elem.get("r")
                row_number = int(r) if r and r.isdigit() else row_number + 1
                if rows_seen > limits.max_rows + 1:
                    raise LimitExceeded(
                        f"Excel 工作表超过 {limits.max_rows:,} 行的上限；请拆分为多个文件上传"
                    )
            elif tag == "c":
                in_cell_formula = in_cell_value = False
                cell_ref = elem.get("r") or ""
            continue
        if tag == "v":
            in_cell_value = in_cell_value or bool(elem.text)
        elif tag == "is":
            in_cell_value = True
        elif tag == "f":
            in_cell_formula = True
        elif tag == "c":
            if in_cell_value:
                row_has_value = True
                scan.cells += 1
                if scan.cells > limits.max_cells:
                    raise LimitExceeded(
                        f"Excel 工作表超过 {limits.max_cells:,} 个单元格的上限；请拆分为多个文件上传"
                    )
            elif in_cell_formula:
                scan.formula_rows.setdefault(row_number, cell_ref)
            elem.clear()
        elif tag == "row":
            if row_has_value:
                scan.value_rows += 1
            if sheet_data is not None:
                sheet_data.clear()  # keep memory flat: finished rows are dropped
            else:
                elem.clear()
        elif tag == "mergeCell":
            ref = elem.get("ref")
            if ref:
                scan.merged.append(ref)
    return scan


__all__ = [
    "DEFAULT_LIMITS",
    "PROGRESS_EVERY",
    "ImportLimits",
    "LimitExceeded",
    "Progress",
    "SheetScan",
    "check_parquet_metadata",
    "check_table_size",
    "check_xlsx_archive",
    "scan_xlsx",
]
