"""Writing cases the way hospitals' systems export them: Chinese headers, yuan, GBK."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from opendip.contract import CASES, TableContract
from opendip.contract.cells import safe_text_table


def fen_to_yuan_text(fen: pa.Array) -> pa.Array:
    """Exact '1234.50' text from int64 fen (no float)."""
    sign = pc.if_else(pc.less(fen, 0), "-", "")
    mag = pc.abs(fen)
    whole = pc.cast(pc.divide(mag, 100), pa.string())
    cents = pc.utf8_lpad(
        pc.cast(pc.subtract(mag, pc.multiply(pc.divide(mag, 100), 100)), pa.string()), 2, "0"
    )
    return pc.binary_join_element_wise(sign, whole, ".", cents, "")


def to_export_table(table: pa.Table, contract: TableContract = CASES) -> pa.Table:
    columns = {}
    for col in contract.columns:
        if col.name not in table.column_names:
            continue
        arr = table.column(col.name).combine_chunks()
        if col.is_money:
            arr = fen_to_yuan_text(arr)
        elif col.is_list:
            arr = pc.binary_join(arr, "|")
        columns[col.label] = arr.cast(pa.string())
    return pa.table(columns)


def write_settlement_csv(table: pa.Table, path: str | Path, encoding: str = "gb18030") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text_path = path.with_suffix(".utf8.tmp")
    pacsv.write_csv(safe_text_table(to_export_table(table)), text_path)
    path.write_bytes(text_path.read_text(encoding="utf-8").encode(encoding))
    text_path.unlink()
    return path
