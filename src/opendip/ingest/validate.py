"""From a raw file to contract rows plus a per-row error list (vectorised).

Import checks structure only: a value is present where the contract requires it, parses as
its type, is not negative where that is meaningless, lies in its column's code set, has the
shape of a code, and the age is possible. Meaning (codes exist in the insurance edition, sex
and age conflicts, date order, sums) is quality control's job (`opendip.qc`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from opendip.contract import Column, TableContract, normalise_header
from opendip.contract.ids import ID_FIELDS, id_reasons, normalise_id_array
from opendip.ingest.readers import RawFile, ReadError
from opendip.ingest.values import (
    DIAGNOSIS_SHAPE,
    PROCEDURE_SHAPE,
    allowed_text,
    clean_text,
    map_values,
    parse_code,
    parse_code_list,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_int,
    parse_money,
    parse_month,
)

DIAGNOSIS_CODE_COLUMNS = frozenset({"main_diagnosis", "other_diagnoses"})
PROCEDURE_CODE_COLUMNS = frozenset({"main_procedure", "other_procedures"})
MONTH_COLUMNS = frozenset({"settle_month"})
#: Structural sanity limit, not a regional parameter: nobody is older than this.
MAX_AGE_YEARS = 130
_MAX_AGE_DAYS = int(MAX_AGE_YEARS * 365.25)

#: Error kinds (`rule` column of the error table) and their Chinese names.
RULES: dict[str, str] = {
    "missing": "必填项缺失",
    "bad_number": "数值无效",
    "bad_date": "日期无效",
    "bad_month": "月份无效",
    "bad_code_shape": "代码格式无效",
    "not_in_code_set": "取值不在代码集",
    "negative": "不能为负",
    "absurd_age": "年龄不合理",
    "duplicate_key": "主键重复",
    "ragged_row": "列数不符",
    "orphan_record": "孤立子记录",
    "parent_quarantined": "所属清单已隔离",
    "no_main_diagnosis": "无主要诊断行",
    "bad_id": "编号无效",
    "formula_no_value": "公式无计算结果",
    "merged_cell": "合并单元格",
    "field_too_long": "字段过长",
    "unbalanced_quote": "引号不成对",
}

ERROR_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("row_number", pa.int64()),
        ("field", pa.string()),
        ("value", pa.string()),
        ("rule", pa.string()),
        ("message", pa.string()),
    ]
)


class MissingColumnsError(ReadError):
    """A file lacks columns the contract requires."""

    def __init__(self, contract: TableContract, missing: list[str]) -> None:
        self.missing = missing
        labels = "、".join(f"{contract.column(c).label}（{c}）" for c in missing)
        super().__init__(f"缺少必填列：{labels}")


class ColumnTypeError(ReadError):
    """A Parquet column whose type cannot hold the contract's values."""


@dataclass
class Validated:
    """One file's rows in the contract (all rows, with errors or not) and its errors."""

    source: str
    table: pa.Table  # contract columns, nullable (rows with errors may hold nulls)
    row_numbers: pa.Array
    original: pa.Table  # the file's own columns and text, for the quarantine file
    errors: pa.Table
    warnings: list[str] = field(default_factory=list)


def map_headers(raw: RawFile, contract: TableContract) -> tuple[dict[str, str], list[str]]:
    """Original header → canonical column name, and warnings for ignored headers.

    Raises `MissingColumnsError` naming every required column the file lacks.
    """
    aliases = contract.alias_map()
    mapping: dict[str, str] = {}
    warnings: list[str] = []
    for header in raw.table.column_names:
        name = aliases.get(normalise_header(header))
        if name is None:
            warnings.append(f"未识别的列“{header}”已忽略")
        elif name in mapping.values():
            first = next(h for h, n in mapping.items() if n == name)
            warnings.append(f"列“{header}”与“{first}”同为 {name}，已忽略")
        else:
            mapping[header] = name
    missing = [c for c in contract.required_columns if c not in mapping.values()]
    if missing:
        raise MissingColumnsError(contract, missing)
    return mapping, warnings


def _as_text(arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        return pc.binary_join(arr.cast(pa.list_(pa.string())), "|")
    if pa.types.is_timestamp(arr.type):
        return pc.strftime(arr, format="%Y-%m-%d %H:%M:%S")
    if pa.types.is_date(arr.type):
        return pc.strftime(arr, format="%Y-%m-%d")
    return arr.cast(pa.string())


def _type_ok(col: Column, type_: pa.DataType) -> bool:
    """Which Parquet column types can hold a contract column (money must be integer fen)."""
    t = type_.value_type if pa.types.is_dictionary(type_) else type_
    text = pa.types.is_string(t) or pa.types.is_large_string(t)
    if col.is_money or pa.types.is_integer(col.type):
        return pa.types.is_integer(t)
    if pa.types.is_date(col.type) or pa.types.is_timestamp(col.type):
        return pa.types.is_date(t) or pa.types.is_timestamp(t) or text
    if col.is_list:
        return pa.types.is_list(t) or pa.types.is_large_list(t) or text
    if pa.types.is_decimal(col.type):
        return pa.types.is_decimal(t) or pa.types.is_integer(t) or text
    return text or pa.types.is_integer(t)


def check_parquet_types(raw: RawFile, mapping: dict[str, str], contract: TableContract) -> None:
    """Parquet input is already canonical: a money column in float yuan is refused."""
    wrong = []
    for header, name in mapping.items():
        col = contract.column(name)
        type_ = raw.table.schema.field(header).type
        if not _type_ok(col, type_):
            want = "int64（分）" if col.is_money else str(col.type)
            wrong.append(f"{header} 应为 {want}，实为 {type_}")
    if wrong:
        raise ColumnTypeError("Parquet 列类型不符：" + "；".join(wrong))


def _parse(col: Column, text: pa.Array, typed: bool) -> tuple[pa.Array, pa.Array, str, str]:
    """Typed values, bad mask, rule and Chinese message for one column."""
    if col.name in ID_FIELDS:
        ids = normalise_id_array(text, col.name)
        return ids.values, ids.bad, "bad_id", ""
    if col.name in DIAGNOSIS_CODE_COLUMNS | PROCEDURE_CODE_COLUMNS:
        diagnosis = col.name in DIAGNOSIS_CODE_COLUMNS
        shape = DIAGNOSIS_SHAPE if diagnosis else PROCEDURE_SHAPE
        values, bad = parse_code_list(text, shape) if col.is_list else parse_code(text, shape)
        form = "ICD-10，如 K35.800x001" if diagnosis else "ICD-9-CM-3，如 47.0100x001"
        kind = "诊断" if diagnosis else "手术操作"
        return values, bad, "bad_code_shape", f"{kind}代码格式无效（应为{form}）"
    if col.name in MONTH_COLUMNS:
        values, bad = parse_month(text)
        return values, bad, "bad_month", "结算月份无效（应为 YYYY-MM，如 2026-05）"
    if pa.types.is_timestamp(col.type):
        values, bad = parse_datetime(text)
        return (
            values,
            bad,
            "bad_date",
            "时间无效（应为 YYYY-MM-DD HH:MM:SS，如 2026-01-05 09:30:00）",
        )
    if pa.types.is_date(col.type):
        values, bad = parse_date(text)
        return values, bad, "bad_date", "日期无效（应为 YYYY-MM-DD，如 2026-01-05）"
    if col.is_money:
        values, bad = parse_int(text, pa.int64()) if typed else parse_money(text)
        return values, bad, "bad_number", "金额无效（应为以元为单位的数字，如 1234.56）"
    if pa.types.is_integer(col.type):
        values, bad = parse_int(text, col.type)
        return values, bad, "bad_number", "不是有效整数"
    if pa.types.is_decimal(col.type):
        values, bad = parse_decimal(text, col.type)
        return values, bad, "bad_number", f"不是有效数值（最多 {col.type.scale} 位小数）"
    values = map_values(col.name, text)
    if col.allowed:
        bad = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, pa.array(col.allowed))))
        allowed = allowed_text(col.name, col.allowed)
        values = pc.if_else(bad, pa.scalar(None, pa.string()), values)
        return values, bad, "not_in_code_set", f"取值不在代码集（允许：{allowed}）"
    return values, pa.array(np.zeros(len(text), dtype=bool)), "", ""


class _Errors:
    """Collects error rows of one file, vectorised per (column, rule)."""

    def __init__(self, source: str, row_numbers: pa.Array, texts: dict[str, pa.Array]) -> None:
        self.source = source
        self.row_numbers = row_numbers
        self.texts = texts
        self.parts: list[pa.Table] = []

    def add(self, col: Column, mask: pa.Array, rule: str, message: str) -> None:
        idx = np.flatnonzero(pc.fill_null(mask, False).to_numpy(zero_copy_only=False))
        if len(idx) == 0:
            return
        take = pa.array(idx)
        text = self.texts.get(col.name)
        value = text.take(take) if text is not None else pa.nulls(len(idx), pa.string())
        n = len(idx)
        self.parts.append(
            pa.table(
                [
                    pa.repeat(self.source, n).cast(pa.string()),
                    self.row_numbers.take(take),
                    pa.repeat(col.name, n).cast(pa.string()),
                    value,
                    pa.repeat(rule, n).cast(pa.string()),
                    pa.repeat(f"{col.label}：{message}", n).cast(pa.string()),
                ],
                schema=ERROR_SCHEMA,
            )
        )

    def table(self) -> pa.Table:
        return pa.concat_tables(self.parts) if self.parts else ERROR_SCHEMA.empty_table()


def validate(raw: RawFile, contract: TableContract) -> Validated:
    """Parse and check every row of `raw` against `contract` (all rows are returned)."""
    mapping, warnings = map_headers(raw, contract)
    if raw.typed:
        check_parquet_types(raw, mapping, contract)
    n = raw.table.num_rows
    texts = {name: clean_text(_as_text(raw.table.column(h))) for h, name in mapping.items()}
    errors = _Errors(str(raw.path), raw.row_numbers, texts)
    columns: dict[str, pa.Array] = {}
    for col in contract.columns:
        if col.name not in texts:
            columns[col.name] = pa.nulls(n, col.type)
            continue
        text = texts[col.name]
        values, bad, rule, message = _parse(col, text, raw.typed)
        if rule == "bad_id":
            _add_id_errors(col, text, errors)
        else:
            errors.add(col, bad, rule, message)
        if col.required and not col.is_list:
            errors.add(col, pc.and_(pc.is_null(text), pc.invert(bad)), "missing", "必填项缺失")
        if pa.types.is_integer(col.type) or pa.types.is_decimal(col.type):
            negative = pc.less(values, pa.scalar(0, values.type))
            errors.add(col, negative, "negative", "金额不能为负" if col.is_money else "不能为负数")
        columns[col.name] = values
    _check_age(contract, columns, errors)
    table = pa.table(
        [columns[c.name].cast(c.type) for c in contract.columns],
        schema=pa.schema([pa.field(c.name, c.type, nullable=True) for c in contract.columns]),
    )
    original = _original_text(raw)
    return Validated(
        str(raw.path), table, raw.row_numbers, original, errors.table(), raw.warnings + warnings
    )


def _add_id_errors(col: Column, text: pa.Array, errors: _Errors) -> None:
    """One error per refused id, with the reason (control characters, length, characters)."""
    ids = normalise_id_array(text, col.name)
    reasons = id_reasons(col.name)
    for mask_name, reason in reasons.items():
        errors.add(col, getattr(ids, mask_name), "bad_id", reason)


def _check_age(contract: TableContract, columns: dict[str, pa.Array], errors: _Errors) -> None:
    """Age over 130 years, or a birth date that makes the patient older than that at
    admission or born after discharge."""
    names = set(contract.names)
    if "age" in names:
        errors.add(
            contract.column("age"),
            pc.greater(columns["age"], MAX_AGE_YEARS),
            "absurd_age",
            f"超出合理范围（0–{MAX_AGE_YEARS} 岁）",
        )
    if {"birth_date", "admit_date", "discharge_date"} <= names:
        birth = columns["birth_date"]
        too_old = pc.greater(
            pc.days_between(birth, columns["admit_date"]), pa.scalar(_MAX_AGE_DAYS, pa.int64())
        )
        unborn = pc.greater(birth, columns["discharge_date"])
        errors.add(
            contract.column("birth_date"),
            pc.or_(pc.fill_null(too_old, False), pc.fill_null(unborn, False)),
            "absurd_age",
            f"不合理（入院时超过 {MAX_AGE_YEARS} 岁或晚于出院日期）",
        )


def _original_text(raw: RawFile) -> pa.Table:
    """Every column of the file as text, under its original header (for quarantine.csv)."""
    if not raw.typed:
        return raw.table
    return pa.table({h: _as_text(raw.table.column(h)) for h in raw.table.column_names})
