"""From a raw file to contract rows plus a per-row error list (vectorised)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from opendip.contract import Column, TableContract, normalise_header
from opendip.ingest.readers import RawFile, ReadError
from opendip.ingest.values import (
    DIAGNOSIS_SHAPE,
    PROCEDURE_SHAPE,
    clean_text,
    map_values,
    parse_code,
    parse_code_list,
    parse_date,
    parse_decimal,
    parse_int,
    parse_money,
    parse_month,
)

DIAGNOSIS_CODE_COLUMNS = {"main_diagnosis", "other_diagnoses"}
PROCEDURE_CODE_COLUMNS = {"main_procedure", "other_procedures"}
MONTH_COLUMNS = {"settle_month"}
MAX_AGE = 130

ERROR_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("row_number", pa.int64()),
        ("field", pa.string()),
        ("value", pa.string()),
        ("message", pa.string()),
    ]
)


@dataclass
class Validated:
    """One file's rows in the contract (all rows, errors or not) and its errors."""

    table: pa.Table
    row_numbers: pa.Array
    raw: pa.Table  # original text, canonical column names
    errors: pa.Table
    warnings: list[str] = field(default_factory=list)


def map_headers(raw: RawFile, contract: TableContract) -> tuple[dict[str, str], list[str]]:
    """Original header → canonical name, and warnings for ignored headers."""
    aliases = contract.alias_map()
    mapping: dict[str, str] = {}
    warnings = []
    for header in raw.table.column_names:
        name = aliases.get(normalise_header(header))
        if name is None:
            warnings.append(f"未识别的列“{header}”已忽略")
        elif name in mapping.values():
            warnings.append(f"列“{header}”与已识别的 {name} 重复，已忽略")
        else:
            mapping[header] = name
    missing = [c for c in contract.required_columns if c not in mapping.values()]
    if missing:
        labels = "、".join(f"{contract.column(c).label}（{c}）" for c in missing)
        raise ReadError(f"缺少必填列：{labels}")
    return mapping, warnings


def _as_text(arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if pa.types.is_list(arr.type):
        return pc.binary_join(arr.cast(pa.list_(pa.string())), "|")
    if pa.types.is_date(arr.type) or pa.types.is_timestamp(arr.type):
        return pc.strftime(arr, format="%Y-%m-%d")
    return arr.cast(pa.string())


def _parse(col: Column, text: pa.Array, typed_money: bool) -> tuple[pa.Array, pa.Array, str]:
    if col.name in DIAGNOSIS_CODE_COLUMNS | PROCEDURE_CODE_COLUMNS:
        shape = DIAGNOSIS_SHAPE if col.name in DIAGNOSIS_CODE_COLUMNS else PROCEDURE_SHAPE
        kind = "诊断" if col.name in DIAGNOSIS_CODE_COLUMNS else "手术操作"
        if col.is_list:
            values, bad = parse_code_list(text, shape)
        else:
            values, bad = parse_code(text, shape)
        return values, bad, f"{kind}代码格式无效"
    if col.name in MONTH_COLUMNS:
        values, bad = parse_month(text)
        return values, bad, "结算月份格式无效（应为 YYYY-MM）"
    if pa.types.is_date(col.type):
        values, bad = parse_date(text)
        return values, bad, "日期无效（应为 YYYY-MM-DD）"
    if col.is_money:
        values, bad = parse_int(text, pa.int64()) if typed_money else parse_money(text)
        return values, bad, "金额格式无效"
    if pa.types.is_integer(col.type):
        values, bad = parse_int(text, col.type)
        return values, bad, "不是有效整数"
    if pa.types.is_decimal(col.type):
        values, bad = parse_decimal(text, col.type)
        return values, bad, "不是有效数值"
    values = map_values(col.name, text)
    if col.allowed:
        ok = pc.is_in(values, value_set=pa.array(col.allowed))
        bad = pc.and_(pc.is_valid(values), pc.invert(ok))
        allowed = "、".join(col.allowed)
        return pc.if_else(bad, None, values), bad, f"取值不在代码集（允许：{allowed}）"
    return values, pa.array(np.zeros(len(text), bool)), ""


def validate(raw: RawFile, contract: TableContract) -> Validated:
    mapping, warnings = map_headers(raw, contract)
    n = raw.table.num_rows
    source = str(raw.path)
    texts: dict[str, pa.Array] = {}
    for header, name in mapping.items():
        texts[name] = clean_text(_as_text(raw.table.column(header)))
    errors: list[pa.Table] = []

    def report(col: Column, mask: pa.Array, message: str) -> None:
        idx = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
        if len(idx) == 0:
            return
        take = pa.array(idx)
        value = texts[col.name].take(take) if col.name in texts else pa.nulls(len(idx), pa.string())
        errors.append(
            pa.table(
                {
                    "file": pa.array([source] * len(idx), pa.string()),
                    "row_number": raw.row_numbers.take(take),
                    "field": pa.array([col.name] * len(idx), pa.string()),
                    "value": value,
                    "message": pa.array([f"{col.label}：{message}"] * len(idx), pa.string()),
                },
                schema=ERROR_SCHEMA,
            )
        )

    columns: dict[str, pa.Array] = {}
    for col in contract.columns:
        if col.name not in texts:
            columns[col.name] = pa.nulls(n, col.type)
            continue
        text = texts[col.name]
        values, bad, message = _parse(col, text, raw.typed)
        report(col, bad, message)
        if col.required and not col.is_list:
            report(col, pc.and_(pc.is_null(text), pc.invert(bad)), "必填项缺失")
        if pa.types.is_integer(col.type):
            report(
                col,
                pc.fill_null(pc.less(values, 0), False),
                "不能为负数" if not col.is_money else "金额不能为负",
            )
        if col.name == "age":
            report(
                col,
                pc.fill_null(pc.greater(values, MAX_AGE), False),
                f"超出合理范围（0–{MAX_AGE}）",
            )
        columns[col.name] = values.cast(col.type) if not col.is_list else values
    table = _assemble(columns, contract)
    error_table = pa.concat_tables(errors) if errors else ERROR_SCHEMA.empty_table()
    raw_text = pa.table({name: texts[name] for name in texts})
    return Validated(table, raw.row_numbers, raw_text, error_table, warnings)


def _assemble(columns: dict[str, pa.Array], contract: TableContract) -> pa.Table:
    """Rows with errors may hold nulls in required columns: build a nullable schema here;
    `contract.conform` is applied to accepted rows only."""
    fields = [pa.field(c.name, c.type, nullable=True) for c in contract.columns]
    return pa.table([columns[c.name] for c in contract.columns], schema=pa.schema(fields))
