"""Write settlement lists in the multi-record structure: from a flat `cases` table (the
synthetic generator's, or any accepted import) to main + child records, and those records to
CSV (one file per record type, national field codes as headers), Excel (one sheet per record
type, Chinese headers) or JSON (nested records per case, 4101 node and field names).

`flatten(records_from_flat(cases))` gives `cases` back (a test checks it); the times the flat
table does not hold are made up consistently: admission 08:00, discharge 16:00, main procedure
09:30–10:40 with anaesthesia 09:10–10:55 on the procedure date (anaesthesia method on every
procedure the code table calls surgery), ICU from two hours after
admission for (ICU days × 24 h − 2 h), settlement 30 minutes after discharge, upload three
days later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from opendip.contract import TableContract
from opendip.contract.settlement import (
    FEE_CATEGORIES,
    RECORD_TYPES,
)
from opendip.ingest.settlement import JSON_NODES

_TS = pa.timestamp("s")
#: Data rows of one Excel sheet (1 048 576 rows less the header).
EXCEL_DATA_ROWS = 1_048_575
_STR = pa.string()
#: TCM pair written for every 20th case of a TCM-capable department (demo codes).
TCM_PAIR = (("A04.01.03", "胸痹心痛病（示范）"), ("B04.01.02", "气虚血瘀证（示范）"))


def _at(dates: pa.Array, seconds: int) -> pa.Array:
    """date + a time of day (seconds after midnight) as timestamp[s]."""
    base = pc.cast(pc.cast(pc.cast(dates, pa.timestamp("s")), pa.int64()), pa.int64())
    return pc.cast(pc.add(base, seconds), _TS)


def _plus(ts: pa.Array, seconds: pa.Array | int) -> pa.Array:
    return pc.cast(pc.add(pc.cast(ts, pa.int64()), seconds), _TS)


def _repeat(value: object, n: int, type_: pa.DataType = _STR) -> pa.Array:
    return pa.array([value] * n, type_) if n else pa.array([], type_)


def records_from_flat(
    cases: pa.Table, codes: object | None = None, first: np.ndarray | None = None
) -> dict[str, pa.Table]:
    """Main and child records (contract tables of `opendip.contract.settlement`) of a flat
    `cases` table. With `codes` (a `CodeTables`), diagnosis and procedure names are filled.

    `first` marks the rows that carry child records (the first occurrence of each 结算清单号,
    `first_occurrences`); by default it is computed on `cases` itself. A caller converting a
    large table slice by slice passes each slice's part of the whole table's mask, so that a
    number repeated across slices still has its children once."""
    cases = cases.combine_chunks()
    n = cases.num_rows
    admit = _at(cases["admit_date"], 8 * 3600)
    discharge = _at(cases["discharge_date"], 16 * 3600)
    icu_days = pc.fill_null(cases["icu_days"], 0)
    on_vent = pc.greater(icu_days, 0)
    header = {
        "case_id": cases["case_id"],
        "hospital_id": cases["hospital_id"],
        "patient_id": cases["patient_id"],
        "record_no": pc.binary_join_element_wise("BA", cases["case_id"], ""),
        "insurance_type": cases["insurance_type"],
        "sex": cases["sex"],
        "birth_date": cases["birth_date"],
        "age": cases["age"],
        "age_days": cases["age_days"],
        "newborn_birth_weight_g": cases["newborn_birth_weight_g"],
        "newborn_admit_weight_g": cases["newborn_admit_weight_g"],
        "inpatient_type": _repeat("1", n),
        "treatment_type": _repeat("1", n),
        "admit_time": admit,
        "discharge_time": discharge,
        "los_days": cases["los_days"],
        "admission_route": cases["admission_route"],
        "discharge_method": cases["discharge_method"],
        "department": cases["department"],
        "doctor_id": cases["doctor_id"],
        "outpatient_diagnosis_code": cases["main_diagnosis"],
        "ventilator_days": pc.if_else(
            on_vent, pc.subtract(icu_days, 1), pa.scalar(None, pa.int32())
        ),
        "ventilator_hours": pc.if_else(on_vent, 20, pa.scalar(None, pa.int64())),
        "ventilator_minutes": pc.if_else(on_vent, 0, pa.scalar(None, pa.int64())),
        "payment_method": _repeat("3", n),
        "settle_begin_date": cases["admit_date"],
        "settle_end_date": cases["discharge_date"],
        "settle_time": _plus(discharge, 1800),
        "upload_time": _plus(discharge, 3 * 86_400),
        "settle_month": cases["settle_month"],
        "total_cost": cases["total_cost"],
        "personal_copay": cases["personal_copay"],
        "personal_selfpay": cases["personal_selfpay"],
    }
    records = {"settlement_lists": _conform(RECORD_TYPES["settlement_lists"], header)}
    # A repeated 结算清单号 cannot carry its own child records (they join by that number): the
    # children are written for the first occurrence only; the importer quarantines the repeat.
    if first is None:
        first = first_occurrences(cases["case_id"])
    elif len(first) != n:
        raise ValueError(f"first: {len(first)} flags for {n} cases")
    cases = cases.filter(pa.array(first))
    admit, discharge, icu_days = (a.filter(pa.array(first)) for a in (admit, discharge, icu_days))
    records["diagnoses"] = _diagnoses(cases, codes)
    records["procedures"] = _procedures(cases, codes)
    has_icu = pc.greater(icu_days, 0)
    icu_cases = cases.filter(has_icu)
    icu_in = _plus(admit.filter(has_icu), 7200)
    minutes = pc.subtract(pc.multiply(pc.cast(icu_days.filter(has_icu), pa.int64()), 1440), 120)
    records["icu"] = _conform(
        RECORD_TYPES["icu"],
        {
            "case_id": icu_cases["case_id"],
            "ward_type": _repeat("综合ICU", icu_cases.num_rows),
            "in_time": icu_in,
            "out_time": _plus(icu_in, pc.multiply(minutes, 60)),
        },
    )
    records["fees"] = _fees(cases)
    records["funds"] = _funds(cases)
    return records


def first_occurrences(case_ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True on the first row of each 结算清单号 (missing numbers count as one number)."""
    first = np.zeros(len(case_ids), dtype=bool)
    if len(case_ids):
        _, first_index = np.unique(
            pc.fill_null(case_ids, "").to_numpy(zero_copy_only=False), return_index=True
        )
        first[first_index] = True
    return first


def first_occurrences_in_file(path: str | Path) -> np.ndarray:
    """`first_occurrences` of a Parquet file's `case_id` column, computed by DuckDB (out of
    core) so that a year of tens of millions of cases need not be held in Python."""
    import duckdb

    con = duckdb.connect()
    try:
        n = con.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()[0]
        rows = con.execute(
            "SELECT min(file_row_number) FROM read_parquet(?, file_row_number = true) "
            "GROUP BY coalesce(case_id, '')",
            [str(path)],
        ).fetchnumpy()
    finally:
        con.close()
    first = np.zeros(n, dtype=bool)
    first[next(iter(rows.values())).astype(np.int64)] = True
    return first


def flat_file_records(
    path: str | Path, codes: object | None = None, batch_rows: int = 122_880
) -> Iterator[dict[str, pa.Table]]:
    """The records of a flat cases Parquet file, a slice of `batch_rows` cases at a time
    (memory bounded by the slice, not by the year); concatenated, they equal
    `records_from_flat` of the whole file."""
    import pyarrow.parquet as pq

    first = first_occurrences_in_file(path)
    start = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        cases = pa.Table.from_batches([batch])
        yield records_from_flat(cases, codes, first[start : start + cases.num_rows])
        start += cases.num_rows


def _conform(contract: TableContract, columns: dict[str, pa.Array]) -> pa.Table:
    n = len(next(iter(columns.values())))
    arrays = {}
    for c in contract.columns:
        value = columns.get(c.name)
        arrays[c.name] = pa.nulls(n, c.type) if value is None else pc.cast(value, c.type)
    return pa.table(arrays, schema=pa.schema([pa.field(c.name, c.type) for c in contract.columns]))


def _names(codes_col: pa.Array, table: pa.Table | None) -> pa.Array | None:
    if table is None:
        return None
    idx = pc.index_in(codes_col, value_set=table["code"].combine_chunks())
    return pc.take(table["name"].combine_chunks(), idx)


def _explode(cases: pa.Table, column: str) -> tuple[pa.Array, pa.Array]:
    """(case_id, code) per element of a list column, in list order."""
    lists = cases[column].combine_chunks()
    parents = pc.list_parent_indices(lists)
    return pc.take(cases["case_id"].combine_chunks(), parents), pc.list_flatten(lists)


def _diagnoses(cases: pa.Table, codes: object | None) -> pa.Table:
    table = getattr(codes, "diagnoses", None)
    main = cases.filter(pc.is_valid(cases["main_diagnosis"]))
    m = main.num_rows
    other_ids, other_codes = _explode(cases, "other_diagnoses")
    k = len(other_codes)
    # condition on admission: 1 有 for the main diagnosis; for the others 3 情况不明 on every
    # third of a case's list, else 1 (by position in the case, so any slice gives the same)
    lists = cases["other_diagnoses"].combine_chunks()
    starts = lists.offsets.to_numpy()[pc.list_parent_indices(lists).to_numpy()]
    in_case = np.arange(k) + lists.offsets[0].as_py() - starts
    conditions = np.where(in_case % 3 == 2, "3", "1")
    tcm = cases.filter(
        pc.and_(
            pc.equal(pc.utf8_slice_codeunits(cases["case_id"], -2), "20"),
            pc.is_valid(cases["main_diagnosis"]),
        )
    )
    t = tcm.num_rows
    columns = {
        "case_id": pa.concat_arrays(
            [main["case_id"].combine_chunks(), other_ids, *(tcm["case_id"].combine_chunks(),) * 2]
        ),
        "diagnosis_kind": pa.array(
            ["wm"] * (m + k) + ["tcm_disease"] * t + ["tcm_syndrome"] * t, pa.string()
        ),
        "main_flag": pa.array(["1"] * m + ["0"] * (k + 2 * t), pa.string()),
        "diagnosis_code": pa.concat_arrays(
            [
                main["main_diagnosis"].combine_chunks(),
                other_codes,
                _repeat(TCM_PAIR[0][0], t),
                _repeat(TCM_PAIR[1][0], t),
            ]
        ),
        "admission_condition": pa.array(
            ["1"] * m + list(conditions) + ["1"] * (2 * t), pa.string()
        ),
    }
    names = _names(columns["diagnosis_code"], table)
    if names is not None:
        tcm_names = [TCM_PAIR[0][1]] * t + [TCM_PAIR[1][1]] * t
        columns["diagnosis_name"] = pa.concat_arrays(
            [names.slice(0, m + k), pa.array(tcm_names, pa.string())]
        )
    out = _conform(RECORD_TYPES["diagnoses"], columns)
    return _by_case(out, cases)


def _by_case(records: pa.Table, cases: pa.Table) -> pa.Table:
    """Child rows grouped by case in the cases' order, the rows of a case in their order."""
    pos = pc.index_in(records["case_id"], value_set=cases["case_id"])
    order = pa.array(np.arange(records.num_rows, dtype=np.int64))
    t = records.append_column("_pos", pos).append_column("_seq", order)
    t = t.sort_by([("_pos", "ascending"), ("_seq", "ascending")])
    return t.drop_columns(["_pos", "_seq"])


def _procedures(cases: pa.Table, codes: object | None) -> pa.Table:
    table = getattr(codes, "procedures", None)
    main = cases.filter(pc.is_valid(cases["main_procedure"]))
    m = main.num_rows
    other_ids, other_codes = _explode(cases, "other_procedures")
    k = len(other_codes)
    date_of = pc.index_in(other_ids, value_set=cases["case_id"])
    other_dates = pc.take(
        pc.coalesce(cases["main_procedure_date"], cases["admit_date"]).combine_chunks(), date_of
    )
    dates = pa.concat_arrays([main["main_procedure_date"].combine_chunks(), other_dates])
    main_dates = main["main_procedure_date"].combine_chunks()
    columns = {
        "case_id": pa.concat_arrays([main["case_id"].combine_chunks(), other_ids]),
        "main_flag": pa.array(["1"] * m + ["0"] * k, pa.string()),
        "procedure_code": pa.concat_arrays([main["main_procedure"].combine_chunks(), other_codes]),
        "procedure_date": dates,
        "begin_time": pa.concat_arrays([_at(main_dates, 9 * 3600 + 1800), pa.nulls(k, _TS)]),
        "end_time": pa.concat_arrays([_at(main_dates, 10 * 3600 + 2400), pa.nulls(k, _TS)]),
        "anaesthesia_method": pa.array(["1"] * m + [None] * k, pa.string()),  # see below
        "anaesthesia_begin": pa.concat_arrays([_at(main_dates, 9 * 3600 + 600), pa.nulls(k, _TS)]),
        "anaesthesia_end": pa.concat_arrays([_at(main_dates, 10 * 3600 + 3300), pa.nulls(k, _TS)]),
        "operator_code": pa.concat_arrays(
            [main["doctor_id"].combine_chunks(), pa.nulls(k, pa.string())]
        ),
    }
    names = _names(columns["procedure_code"], table)
    if names is not None:
        columns["procedure_name"] = names
        assert table is not None
        idx = pc.index_in(columns["procedure_code"], value_set=table["code"].combine_chunks())
        kind = pc.take(table["procedure_type"].combine_chunks(), idx)
        surgery = pc.fill_null(pc.is_in(kind, pa.array(["surgery", "interventional"])), False)
        columns["anaesthesia_method"] = pc.if_else(surgery, "1", columns["anaesthesia_method"])
    return _by_case(_conform(RECORD_TYPES["procedures"], columns), cases)


def _fees(cases: pa.Table) -> pa.Table:
    parts = []
    amounts = {name: cases[name] for name in FEE_CATEGORIES.values()}
    # 全自费金额 of the case on its largest fee row
    stacked = (
        np.column_stack(
            [pc.fill_null(a, -1).to_numpy(zero_copy_only=False) for a in amounts.values()]
        )
        if cases.num_rows
        else np.zeros((0, len(amounts)), np.int64)
    )
    largest = stacked.argmax(axis=1) if cases.num_rows else np.zeros(0, np.int64)
    for i, (category, name) in enumerate(FEE_CATEGORIES.items()):
        present = pc.is_valid(amounts[name])
        rows = cases.filter(present)
        on_row = pa.array(largest == i).filter(present)
        selfpay = pc.if_else(on_row, rows["out_of_list_cost"], pa.scalar(None, pa.int64()))
        parts.append(
            _conform(
                RECORD_TYPES["fees"],
                {
                    "case_id": rows["case_id"],
                    "fee_category": _repeat(category, rows.num_rows),
                    "amount": rows[name],
                    "full_selfpay": selfpay,
                },
            )
        )
    return _by_case(pa.concat_tables(parts), cases)


def _funds(cases: pa.Table) -> pa.Table:
    employee = pc.fill_null(pc.equal(cases["insurance_type"], "employee"), False)
    spec = (
        ("fund_paid", pc.if_else(employee, "310100", "390100")),
        ("serious_illness_paid", pc.if_else(employee, "330100", "390200")),
        ("medical_aid_paid", _repeat("610100", cases.num_rows)),
    )
    parts = []
    for column, fund_type in spec:
        present = pc.is_valid(cases[column])
        rows = cases.filter(present)
        parts.append(
            _conform(
                RECORD_TYPES["funds"],
                {
                    "case_id": rows["case_id"],
                    "fund_type": pc.filter(fund_type, present),
                    "amount": rows[column],
                },
            )
        )
    return _by_case(pa.concat_tables(parts), cases)


# --- writers --------------------------------------------------------------------------------


def national_code(contract: TableContract, name: str) -> str:
    """The national field code of a column (its first upper-case ASCII alias), else its name."""
    column = contract.column(name)
    for alias in column.aliases:
        if alias.isascii() and alias.upper() == alias and any(ch.isalpha() for ch in alias):
            return alias
    return name.upper()


def _cell_texts(table: pa.Table, contract: TableContract) -> dict[str, list[str]]:
    """Column → text cells: money in yuan with 2 decimals, times 'YYYY-MM-DD HH:MM:SS'."""
    out: dict[str, list[str]] = {}
    for c in contract.columns:
        col = table[c.name].combine_chunks()
        if c.name == "insurance_type":  # 险种 as the national code
            col = pc.case_when(
                pc.make_struct(pc.equal(col, "employee"), pc.equal(col, "resident")),
                "310",
                "390",
                col,
            )
        if c.name == "diagnosis_kind":  # DIAG_TYPE in the list's convention (1–4)
            main = pc.fill_null(pc.equal(table["main_flag"].combine_chunks(), "1"), False)
            col = pc.case_when(
                pc.make_struct(pc.equal(col, "tcm_disease"), pc.equal(col, "tcm_syndrome"), main),
                "3",
                "4",
                "1",
                "2",
            )
        if c.is_money:
            cents = col.to_pylist()
            out[c.name] = ["" if v is None else str(Decimal(v).scaleb(-2)) for v in cents]
            continue
        if pa.types.is_timestamp(col.type):
            col = pc.strftime(col, format="%Y-%m-%d %H:%M:%S")
        elif pa.types.is_date(col.type):
            col = pc.strftime(col, format="%Y-%m-%d")
        out[c.name] = pc.fill_null(col.cast(pa.string()), "").to_pylist()
    return out


def write_records_csv(
    records: dict[str, pa.Table] | Iterable[dict[str, pa.Table]],
    directory: str | Path,
    encoding: str = "utf-8",
    max_rows_per_file: int | None = None,
) -> list[Path]:
    """One CSV per record type (``settlement_lists.csv``, ``diagnoses.csv`` …) with the
    national field codes as headers (UTF-8 by default; GBK/GB18030 as many exports are).

    A record type with more rows than `max_rows_per_file` (default: the import's per-file
    row limit, `ImportLimits.max_rows`) is written as numbered parts (``fees_001.csv``,
    ``fees_002.csv`` …), as large exports are split, so that every part can be imported.
    `records` may also be an iterable of record slices (`flat_file_records`): they are
    written as they come, giving the same files as their concatenation."""
    from opendip.ingest.limits import DEFAULT_LIMITS

    slices = [records] if isinstance(records, dict) else records
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with _CsvParts(directory, encoding, max_rows_per_file or DEFAULT_LIMITS.max_rows) as parts:
        for piece in slices:
            for record_type, table in piece.items():
                parts.write(record_type, table)
    return parts.paths()


class _CsvParts:
    """Open part files per record type; a part is closed when it holds `limit` rows. A record
    type written as a single part is named without a number (``fees.csv``)."""

    def __init__(self, directory: Path, encoding: str, limit: int) -> None:
        self.directory, self.encoding, self.limit = directory, encoding, limit
        self.written: dict[str, list[Path]] = {}
        self.open: dict[str, tuple[Any, Any, int]] = {}  # type → (file, writer, rows in it)

    def __enter__(self) -> _CsvParts:
        return self

    def __exit__(self, *exc: object) -> None:
        for fh, _, _ in self.open.values():
            fh.close()
        self.open.clear()
        if exc[0] is None:
            self._name_single_parts()

    def write(self, record_type: str, table: pa.Table) -> None:
        contract = RECORD_TYPES[record_type]
        self.written.setdefault(record_type, [])
        if not self.written[record_type]:
            self._next_part(record_type)  # a record type without rows still gets its header
        done = 0
        while done < table.num_rows:
            fh, writer, rows = self.open[record_type]
            if rows == self.limit:
                self._next_part(record_type)
                fh, writer, rows = self.open[record_type]
            part = table.slice(done, self.limit - rows)
            cells = _cell_texts(part, contract)
            writer.writerows(zip(*(cells[c] for c in contract.names), strict=True))
            self.open[record_type] = (fh, writer, rows + part.num_rows)
            done += part.num_rows

    def _next_part(self, record_type: str) -> None:
        import csv

        if record_type in self.open:
            self.open.pop(record_type)[0].close()
        contract = RECORD_TYPES[record_type]
        paths = self.written[record_type]
        path = self.directory / f"{record_type}_{len(paths) + 1:03d}.csv"
        fh = path.open("w", encoding=self.encoding, newline="")
        writer = csv.writer(fh)
        writer.writerow([national_code(contract, c) for c in contract.names])
        paths.append(path)
        self.open[record_type] = (fh, writer, 0)

    def _name_single_parts(self) -> None:
        for record_type, paths in self.written.items():
            if len(paths) == 1:
                single = self.directory / f"{record_type}.csv"
                paths[0].replace(single)
                paths[0] = single

    def paths(self) -> list[Path]:
        return [p for paths in self.written.values() for p in paths]


def write_records_excel(records: dict[str, pa.Table], path: str | Path) -> Path:
    """One workbook, one sheet per record type named by its Chinese label, Chinese headers."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    for record_type, table in records.items():
        contract = RECORD_TYPES[record_type]
        name = contract.label.split("（")[0] + f"（{JSON_NODES[record_type]}）"
        cells = _cell_texts(table, contract)
        rows = list(zip(*(cells[c] for c in contract.names), strict=True))
        # A sheet holds EXCEL_DATA_ROWS rows: more continue on sheets named …（iteminfo）2, 3 …
        for part, start in enumerate(range(0, max(len(rows), 1), EXCEL_DATA_ROWS), start=1):
            sheet = book.create_sheet(name if part == 1 else f"{name}{part}")
            sheet.append([contract.column(c).label for c in contract.names])
            for row in rows[start : start + EXCEL_DATA_ROWS]:
                sheet.append(list(row))
    path = Path(path)
    book.save(path)
    return path


def write_records_json(
    records: dict[str, pa.Table], path: str | Path, indent: int | None = None
) -> Path:
    """A JSON array of 4101-style payloads: ``setlinfo`` plus child nodes per case, field
    names as the national lower-case codes."""
    texts = {}
    for record_type, table in records.items():
        contract = RECORD_TYPES[record_type]
        cells = _cell_texts(table, contract)
        keys = {c: national_code(contract, c).lower() for c in contract.names}
        rows = [
            {keys[c]: v for c, v in zip(contract.names, values, strict=True) if v != ""}
            for values in zip(*(cells[c] for c in contract.names), strict=True)
        ]
        texts[record_type] = (table["case_id"].to_pylist(), rows)
    children: dict[str, dict[str, list[dict[str, str]]]] = {}
    for record_type, (ids, rows) in texts.items():
        if record_type == "settlement_lists":
            continue
        by_case: dict[str, list[dict[str, str]]] = {}
        for case_id, row in zip(ids, rows, strict=True):
            row.pop("setl_id", None)
            by_case.setdefault(case_id, []).append(row)
        children[record_type] = by_case
    ids, headers = texts["settlement_lists"]
    payload = []
    seen: set[str] = set()
    for case_id, row in zip(ids, headers, strict=True):
        # a repeated 结算清单号 gets no child records (they belong to its first occurrence)
        first = case_id not in seen
        seen.add(case_id)
        nodes = {
            JSON_NODES[t]: children[t].get(case_id, []) if first else []
            for t in RECORD_TYPES
            if t != "settlement_lists"
        }
        payload.append({"setlinfo": row, **nodes})
    path = Path(path)
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=indent), encoding="utf-8")
    return path


def write_records(
    records: dict[str, pa.Table], out: str | Path, formats: Sequence[str] = ("csv",)
) -> list[Path]:
    """Write `records` under directory `out` in each of `formats` (csv, xlsx, json)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for fmt in formats:
        if fmt == "csv":
            paths += write_records_csv(records, out / "csv")
        elif fmt == "xlsx":
            paths.append(write_records_excel(records, out / "settlement_lists.xlsx"))
        elif fmt == "json":
            paths.append(write_records_json(records, out / "settlement_lists.json"))
        else:
            raise ValueError(f"未知格式 {fmt!r}（可用：csv、xlsx、json）")
    return paths
