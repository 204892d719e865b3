"""Spreadsheet-safe text for every CSV and Excel file OpenDIP writes.

A text value that a spreadsheet would take for a formula (it begins with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return) is *neutralised* in CSV by a leading apostrophe
(``'=HYPERLINK(…)``), which spreadsheets show as text; plain numbers such as ``-5`` or
``+86`` are left alone. Excel files are written with `EXCEL_OPTIONS`: strings are always
string cells (never formulas or links), so ``=HYPERLINK(…)`` shows as its own text.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

_FORMULA_START = r"^[=+\-@\t\r]"
_PLAIN_NUMBER = r"^[+-]?[0-9]+(?:\.[0-9]+)?$"
_FORMULA_RE = re.compile(_FORMULA_START)
_NUMBER_RE = re.compile(_PLAIN_NUMBER)

#: xlsxwriter Workbook options every writer uses: strings stay strings.
EXCEL_OPTIONS: dict[str, Any] = {
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
}


def safe_cell(value: Any) -> Any:
    """`value` as a CSV cell that cannot become a formula (non-strings pass through)."""
    if isinstance(value, str) and _FORMULA_RE.match(value) and not _NUMBER_RE.match(value):
        return "'" + value
    return value


def safe_row(values: list[Any]) -> list[Any]:
    return [safe_cell(v) for v in values]


def safe_text_array(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Vectorised `safe_cell` for a string column."""
    risky = pc.and_(
        pc.match_substring_regex(arr, _FORMULA_START),
        pc.invert(pc.match_substring_regex(arr, _PLAIN_NUMBER)),
    )
    return pc.if_else(risky, pc.binary_join_element_wise("'", arr, ""), arr)


def safe_text_table(table: pa.Table) -> pa.Table:
    """Every string column of `table` through `safe_text_array`."""
    for i, f in enumerate(table.schema):
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            table = table.set_column(i, f.name, safe_text_array(table.column(i)))
    return table


__all__ = ["EXCEL_OPTIONS", "safe_cell", "safe_row", "safe_text_array", "safe_text_table"]
