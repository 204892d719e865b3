"""Import settlement lists in their real, multi-record structure and derive the flat table.

Sources: CSV/Parquet (one file per record type, the type told by the file name or else by
its headers), Excel (one sheet per record type) and JSON (nested records per case: the 4101
payload with ``setlinfo``, ``diseinfo``, ``oprninfo``, ``icuinfo``, ``iteminfo``, ``payinfo``;
a list of such payloads, or envelopes with ``input``). Every record type is validated
against its contract (`opendip.contract.settlement`), then cross-record rules apply:

- a child record whose 结算清单号 has no main record is quarantined (孤立子记录);
- a main record without a main-diagnosis row (MAINDIAG_FLAG=1 among the western diagnoses)
  is quarantined, and so are the child records of every quarantined main record
  (所属清单已隔离).

Per record type: rows read = accepted + quarantined. `flatten` then derives the engine's
flat `cases` table from the accepted records (relational, vectorised).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opendip.contract import CASES, QUARANTINE, normalise_header
from opendip.contract.settlement import (
    CHILD_TYPES,
    DIAGNOSIS_TYPE_CONVENTIONS,
    FEE_CATEGORIES,
    FUND_COLUMNS,
    RECORD_TYPE_ALIASES,
    RECORD_TYPES,
)
from opendip.ingest.importer import (
    ImportResult,
    import_raw,
    write_errors_csv,
    write_quarantine_csv,
)
from opendip.ingest.readers import EXCEL_SUFFIXES, RawFile, ReadError, read_file
from opendip.ingest.validate import ERROR_SCHEMA

#: JSON node names of each record type (4101 / 4101A payload).
JSON_NODES: dict[str, str] = {
    "settlement_lists": "setlinfo",
    "diagnoses": "diseinfo",
    "procedures": "oprninfo",
    "icu": "icuinfo",
    "fees": "iteminfo",
    "funds": "payinfo",
}
#: Nodes of the payload that the platform does not use (reported, not an error).
IGNORED_JSON_NODES = ("bldinfo", "opspdiseinfo")
_SECONDS_PER_DAY = 86_400


class SettlementImportError(ValueError):
    """Input that cannot be imported at all (message in Chinese)."""


@dataclass
class SettlementImport:
    """Per record type: the import result after the cross-record rules; and the flat cases."""

    records: dict[str, ImportResult]
    cases: pa.Table
    warnings: list[str] = field(default_factory=list)

    def check_invariant(self) -> None:
        for result in self.records.values():
            result.check_invariant()

    def counts(self) -> dict[str, tuple[int, int, int]]:
        """record type → (read, accepted, quarantined)."""
        return {
            t: (r.read, r.accepted.num_rows, r.quarantine.num_rows) for t, r in self.records.items()
        }


# --- finding each record type's sources ---------------------------------------------------


def record_type_of_name(name: str) -> str | None:
    """The record type a file or sheet name names (canonical name or an alias), or None."""
    folded = normalise_header(Path(name).stem if "." in name else name)
    for record_type in RECORD_TYPES:
        if normalise_header(record_type) in folded:
            return record_type
    for record_type, aliases in RECORD_TYPE_ALIASES.items():
        if any(normalise_header(a) in folded for a in aliases):
            return record_type
    return None


def record_type_of_headers(headers: Sequence[str]) -> str | None:
    """The record type whose required columns the headers hold, the most matching first."""
    folded = {normalise_header(h) for h in headers}
    best: tuple[int, str] | None = None
    for record_type, contract in RECORD_TYPES.items():
        aliases = contract.alias_map()
        names = {aliases[h] for h in folded if h in aliases}
        if not set(contract.required_columns) <= names:
            continue
        score = len(names - {"case_id"})
        if best is None or score > best[0]:
            best = (score, record_type)
    return best[1] if best else None


Source = tuple[str, Callable[[], RawFile] | str]


def _sheet_names(path: Path) -> list[str]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise ReadError(
            "无法打开 Excel 文件：文件结构不符合 .xlsx 规范（可能已损坏或由其他软件生成）；"
            "请在 Excel 中另存为新的 .xlsx 或 CSV 后重新上传"
        ) from exc
    try:
        return list(book.sheetnames)
    finally:
        book.close()


def _read_sheet(path: Path, sheet: str) -> RawFile:
    """One sheet, named 'file#sheet' in reports, errors and the quarantine."""
    raw = read_file(path, None, sheet)
    raw.path = Path(f"{path}#{sheet}")
    return raw


def _json_records(path: Path) -> dict[str, list[dict[str, object]]]:
    """record type → rows (dicts of text) of a nested JSON file; children carry SETL_ID.
    The file is held within the import limits (size, rows per record type)."""
    from opendip.ingest.limits import DEFAULT_LIMITS as limits
    from opendip.ingest.limits import mib

    size = path.stat().st_size
    if size > limits.max_decompressed_bytes:
        raise ReadError(
            f"JSON 文件 {mib(size)} 超过上限 {mib(limits.max_decompressed_bytes)}，请拆分后导入"
        )
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReadError(f"JSON 格式错误：{exc}") from exc
    if isinstance(data, dict):
        data = data.get("cases", data.get("data", [data]))
    if not isinstance(data, list):
        raise ReadError("JSON 应为结算清单对象的数组（每个对象含 setlinfo、diseinfo 等节点）")
    out: dict[str, list[dict[str, object]]] = {t: [] for t in RECORD_TYPES}
    for number, item in enumerate(data, start=1):
        if isinstance(item, dict) and isinstance(item.get("input"), dict):
            item = item["input"]
        if not isinstance(item, dict) or not isinstance(item.get("setlinfo"), dict):
            raise ReadError(f"第 {number} 条清单没有 setlinfo 节点（结算清单主记录）")
        header = {str(k): v for k, v in item["setlinfo"].items()}
        case_id = next(
            (v for k, v in header.items() if normalise_header(k) in ("setlid", "结算清单号")),
            None,
        )
        out["settlement_lists"].append(header)
        for record_type in CHILD_TYPES:
            rows = item.get(JSON_NODES[record_type]) or []
            if isinstance(rows, dict):
                rows = [rows]
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ReadError(f"第 {number} 条清单的 {JSON_NODES[record_type]} 应为对象数组")
            for row in rows:
                child = {str(k): v for k, v in row.items()}
                if not any(normalise_header(k) == "setlid" for k in child):
                    child = {"setl_id": case_id, **child}
                out[record_type].append(child)
    for record_type, rows in out.items():
        if len(rows) > limits.max_rows:
            raise ReadError(
                f"{JSON_NODES[record_type]} 共 {len(rows):,} 条，超过单次导入上限 "
                f"{limits.max_rows:,} 条，请拆分后导入"
            )
    return out


def _json_raw(path: Path, rows: list[dict[str, object]], node: str) -> RawFile:
    headers = list(dict.fromkeys(k for r in rows for k in r))
    if not headers:
        headers = ["setl_id"]

    def text(v: object) -> str:
        return "" if v is None else str(v)

    table = pa.table({h: pa.array([text(r.get(h)) for r in rows], pa.string()) for h in headers})
    numbers = pa.array(np.arange(1, len(rows) + 1, dtype=np.int64))
    return RawFile(Path(f"{path}#{node}"), table, numbers)


def collect_sources(
    paths: Sequence[str | Path], encoding: str | None = None
) -> tuple[dict[str, list[Source]], list[str]]:
    """Sources of each record type, and warnings (files or sheets of no known type)."""
    sources: dict[str, list[Source]] = {t: [] for t in RECORD_TYPES}
    warnings: list[str] = []
    for path in map(Path, paths):
        suffix = path.suffix.lower()
        if not path.is_file():
            raise SettlementImportError(f"{path}：文件不存在")
        if suffix == ".json":
            try:
                records = _json_records(path)
            except ReadError as exc:
                raise SettlementImportError(f"{path}：{exc}") from exc
            for record_type, rows in records.items():
                node = JSON_NODES[record_type]
                raw = _json_raw(path, rows, node)
                sources[record_type].append((str(raw.path), partial(lambda r: r, raw)))
            continue
        if suffix in EXCEL_SUFFIXES:
            try:
                sheets = _sheet_names(path)
            except ReadError as exc:
                raise SettlementImportError(f"{path}：{exc}") from exc
            for sheet in sheets:
                record_type = record_type_of_name(sheet)
                if record_type is None:
                    raw = read_file(path, sheet=sheet)
                    record_type = record_type_of_headers(raw.table.column_names)
                if record_type is None:
                    warnings.append(f"{path} 工作表“{sheet}”：不是已知的记录类型，已跳过")
                    continue
                sources[record_type].append((f"{path}#{sheet}", partial(_read_sheet, path, sheet)))
            continue
        record_type = record_type_of_name(path.name)
        if record_type is None:
            try:
                raw = read_file(path, encoding)
            except ReadError as exc:
                raise SettlementImportError(f"{path}：{exc}") from exc
            record_type = record_type_of_headers(raw.table.column_names)
        if record_type is None:
            raise SettlementImportError(
                f"{path}：无法判断记录类型（文件名或列名应表明是结算清单主记录、诊断、手术操作、"
                "重症监护、收费项目或基金支付）"
            )
        sources[record_type].append((str(path), partial(read_file, path, encoding)))
    if not sources["settlement_lists"]:
        raise SettlementImportError("没有结算清单主记录（setlinfo）文件或工作表")
    return sources, warnings


def _with_diagnosis_kind(loader: Callable[[], RawFile], convention: str) -> RawFile:
    """DIAG_TYPE codes → canonical kinds by the chosen convention; where the file has no
    MAINDIAG_FLAG and the convention is the list's (1 = 西医主要诊断), derive the flag."""
    raw = loader()
    codes = DIAGNOSIS_TYPE_CONVENTIONS[convention]
    aliases = RECORD_TYPES["diagnoses"].alias_map()
    by_name = {aliases.get(normalise_header(h)): h for h in raw.table.column_names}
    header = by_name.get("diagnosis_kind")
    if header is None:
        return raw
    text = pc.utf8_trim_whitespace(raw.table[header].combine_chunks().cast(pa.string()))
    idx = pc.index_in(text, value_set=pa.array(list(codes)))
    kinds = pc.if_else(pc.is_valid(idx), pc.take(pa.array(list(codes.values())), idx), text)
    table = raw.table.set_column(raw.table.column_names.index(header), header, kinds)
    if "main_flag" not in by_name and convention == "list":
        flag = pc.if_else(pc.equal(text, "1"), "1", "0")
        table = table.append_column("MAINDIAG_FLAG", flag)
    raw.table = table
    return raw


# --- cross-record rules ---------------------------------------------------------------------


def _move_to_quarantine(
    result: ImportResult, refuse: np.ndarray, rule: str, field_name: str, reasons: pa.Array
) -> None:
    """Move accepted rows (mask `refuse`) to the quarantine with their reasons."""
    idx = np.flatnonzero(refuse)
    if len(idx) == 0:
        return
    assert result.sources is not None
    take = pa.array(idx)
    rows = result.accepted.take(take)
    files = result.sources["file"].take(take)
    numbers = result.sources["row_number"].take(take)
    contract = result.contract
    # Only the refused rows: their values (under the contract's Chinese labels) as JSON.
    originals = [
        json.dumps(
            {contract.column(k).label: _text(v) for k, v in r.items() if v is not None},
            ensure_ascii=False,
        )
        for r in rows.to_pylist()
    ]
    values = rows[field_name].combine_chunks().cast(pa.string())
    quarantine = QUARANTINE.conform(
        pa.table(
            {
                "file": files,
                "row_number": numbers,
                "field": pa.repeat(field_name, len(idx)).cast(pa.string()),
                "value": values,
                "reason": reasons.take(take) if len(reasons) == len(refuse) else reasons,
                "original": pa.array(originals, pa.string()),
            }
        )
    )
    errors = pa.table(
        [
            files,
            numbers,
            pa.repeat(field_name, len(idx)).cast(pa.string()),
            values,
            pa.repeat(rule, len(idx)).cast(pa.string()),
            quarantine["reason"],
        ],
        schema=ERROR_SCHEMA,
    )
    keep = pa.array(~refuse)
    result.accepted = result.accepted.filter(keep)
    result.sources = result.sources.filter(keep)
    result.quarantine = pa.concat_tables([result.quarantine, quarantine]).sort_by(
        [("file", "ascending"), ("row_number", "ascending")]
    )
    result.errors = pa.concat_tables([result.errors, errors]).sort_by(
        [("file", "ascending"), ("row_number", "ascending")]
    )
    moved = pc.value_counts(files).to_pylist()
    per_file = {m["values"]: m["counts"] for m in moved}
    for report in result.files:
        n = per_file.get(report.path, 0)
        report.accepted -= n
        report.quarantined += n


def _text(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _main_diagnosis_mask(diagnoses: pa.Table) -> pa.Array:
    western = pc.fill_null(pc.equal(diagnoses["diagnosis_kind"], "wm"), True)
    return pc.and_(western, pc.fill_null(pc.equal(diagnoses["main_flag"], "1"), False))


def apply_record_rules(records: dict[str, ImportResult]) -> None:
    """Quarantine main records without a main-diagnosis row, then every child record whose
    main record is missing (orphan) or quarantined."""
    header = records["settlement_lists"]
    diagnoses = records["diagnoses"].accepted
    with_main = pc.unique(diagnoses.filter(_main_diagnosis_mask(diagnoses))["case_id"])
    no_main = pc.invert(pc.is_in(header.accepted["case_id"], value_set=with_main))
    no_main_np = no_main.to_numpy(zero_copy_only=False)
    _move_to_quarantine(
        header,
        no_main_np,
        "no_main_diagnosis",
        "case_id",
        pa.repeat("无主要诊断行：诊断信息中没有主诊断标志为 1 的西医诊断", len(no_main_np)).cast(
            pa.string()
        ),
    )
    accepted_ids = header.accepted["case_id"]
    read_ids = pc.unique(
        pa.concat_arrays(
            [
                header.accepted["case_id"].combine_chunks(),
                _quarantined_ids(header),
            ]
        )
    )
    for record_type in CHILD_TYPES:
        result = records[record_type]
        ids = result.accepted["case_id"]
        missing = pc.invert(pc.is_in(ids, value_set=accepted_ids)).to_numpy(zero_copy_only=False)
        if not missing.any():
            continue
        known = pc.is_in(ids, value_set=read_ids).to_numpy(zero_copy_only=False)
        parent_out = missing & known
        label = result.contract.label
        _move_to_quarantine(
            result,
            parent_out,
            "parent_quarantined",
            "case_id",
            pa.repeat(f"所属结算清单已隔离（{label}随主记录一并隔离）", len(missing)).cast(
                pa.string()
            ),
        )
        still = pc.invert(pc.is_in(result.accepted["case_id"], value_set=accepted_ids)).to_numpy(
            zero_copy_only=False
        )
        _move_to_quarantine(
            result,
            still,
            "orphan_record",
            "case_id",
            pa.repeat("孤立子记录：找不到该结算清单号的主记录", len(still)).cast(pa.string()),
        )


def _quarantined_ids(result: ImportResult) -> pa.Array:
    """Case ids of quarantined main records (from their original values, where readable)."""
    ids: list[str] = []
    label = result.contract.column("case_id").label
    aliases = result.contract.alias_map()
    for original in result.quarantine["original"].to_pylist():  # quarantined rows only
        row = json.loads(original)
        for key, value in row.items():
            if key == label or aliases.get(normalise_header(key)) == "case_id":
                if value not in (None, ""):
                    ids.append(str(value).strip())
                break
    return pa.array(ids, pa.string())


# --- the flat view --------------------------------------------------------------------------


def _first_and_rest(
    table: pa.Table, is_main: pa.Array, code: str, extra: Sequence[str] = ()
) -> tuple[pa.Table, pa.Table]:
    """Per case: the main row (the first flagged one) and the other codes as a list in file
    order (a case without a flagged row has no main row: QC reports it)."""
    n = table.num_rows
    t = table.append_column("_order", pa.array(np.arange(n, dtype=np.int64)))
    t = t.append_column("_main", pc.fill_null(is_main, False))
    flagged = t.filter(t["_main"])
    first = flagged.group_by("case_id", use_threads=False).aggregate([("_order", "min")])
    main_order = first["_order_min"].combine_chunks()
    main = t.take(main_order).select(["case_id", code, *extra])
    rest = t.filter(pc.invert(pc.is_in(t["_order"], value_set=main_order)))
    rest = rest.sort_by([("_order", "ascending")])
    lists = rest.group_by("case_id", use_threads=False).aggregate([(code, "list")])
    return main, lists


def _pivot_sum(
    table: pa.Table, key: str, mapping: dict[str, str], value: str = "amount"
) -> pa.Table:
    """case_id × target column: the sum of `value` over rows whose `key` maps to it (null
    when a case has no such row)."""
    target = pc.take(
        pa.array(list(mapping.values())),
        pc.index_in(table[key], value_set=pa.array(list(mapping))),
    )
    t = pa.table({"case_id": table["case_id"], "target": target, "value": table[value]})
    t = t.filter(pc.is_valid(t["target"]))
    sums = t.group_by(["case_id", "target"], use_threads=False).aggregate([("value", "sum")])
    out = pa.table({"case_id": pc.unique(table["case_id"])})
    for column in dict.fromkeys(mapping.values()):
        part = sums.filter(pc.equal(sums["target"], column)).select(["case_id", "value_sum"])
        part = part.rename_columns(["case_id", column])
        out = out.join(part, "case_id", join_type="left outer")
    return out


def flatten(records: dict[str, pa.Table]) -> pa.Table:
    """The engine's flat `cases` table from accepted settlement-list records (one row per
    main record, in its order). Derivations (docs/data-contract.md):

    main diagnosis = the western row flagged MAINDIAG_FLAG=1 (the first, if several); other
    diagnoses = the other western rows in file order (TCM rows are not grouping input); main
    procedure = the row flagged main (else the first), its date = procedure date or the date
    of its start time; ICU days = ceil(Σ ICU minutes / 1440); fee columns = Σ fee rows by
    收费项目类别; total cost = 医疗总费用 of the main record, else Σ fee rows; out-of-list
    cost = Σ 全自费金额 of the fee rows; fund columns = Σ fund rows by 基金支付类型
    (`FUND_COLUMNS`); settle month = 结算月份, else the month of 结算时间, 结算结束日期 or
    出院时间."""
    h = records["settlement_lists"]
    base = h

    d = records["diagnoses"]
    western = d.filter(pc.fill_null(pc.equal(d["diagnosis_kind"], "wm"), True))
    main_dx, other_dx = _first_and_rest(western, _main_diagnosis_mask(western), "diagnosis_code")
    main_dx = main_dx.rename_columns(["case_id", "main_diagnosis"])
    other_dx = other_dx.rename_columns(["case_id", "other_diagnoses"])

    p = records["procedures"]
    p = p.append_column(
        "_date", pc.coalesce(p["procedure_date"], pc.cast(p["begin_time"], pa.date32()))
    )
    main_op, other_op = _first_and_rest(
        p, pc.equal(p["main_flag"], "1"), "procedure_code", ("_date",)
    )
    main_op = main_op.rename_columns(["case_id", "main_procedure", "main_procedure_date"])
    other_op = other_op.rename_columns(["case_id", "other_procedures"])

    icu = records["icu"]
    minutes = pc.divide(
        pc.cast(
            pc.subtract(pc.cast(icu["out_time"], pa.int64()), pc.cast(icu["in_time"], pa.int64())),
            pa.int64(),
        ),
        60,
    )
    icu_t = pa.table({"case_id": icu["case_id"], "minutes": pc.max_element_wise(minutes, 0)})
    icu_sum = icu_t.group_by("case_id", use_threads=False).aggregate([("minutes", "sum")])
    icu_days = pc.cast(
        pc.ceil(pc.divide(pc.cast(icu_sum["minutes_sum"], pa.float64()), 1440.0)), pa.int32()
    )
    icu_sum = pa.table({"case_id": icu_sum["case_id"], "icu_days": icu_days})

    fees = records["fees"]
    fee_cols = _pivot_sum(fees, "fee_category", FEE_CATEGORIES)
    fee_total = fees.group_by("case_id", use_threads=False).aggregate(
        [("amount", "sum"), ("full_selfpay", "sum"), ("full_selfpay", "count")]
    )
    fee_total = pa.table(
        {
            "case_id": fee_total["case_id"],
            "_fee_total": fee_total["amount_sum"],
            "out_of_list_cost": pc.if_else(
                pc.greater(fee_total["full_selfpay_count"], 0),
                fee_total["full_selfpay_sum"],
                pa.scalar(None, pa.int64()),
            ),
        }
    )
    funds = _pivot_sum(records["funds"], "fund_type", FUND_COLUMNS)

    t = {name: base[name] for name in base.column_names}
    ids = base["case_id"].combine_chunks()
    for part in (main_dx, other_dx, main_op, other_op, icu_sum, fee_cols, fee_total, funds):
        # a look-up by case id (Arrow joins cannot carry list columns)
        idx = pc.index_in(ids, value_set=part["case_id"].combine_chunks())
        for name in part.column_names:
            if name != "case_id":
                t[name] = pc.take(part[name].combine_chunks(), idx)

    empty = pa.scalar([], pa.list_(pa.string()))
    month = pc.coalesce(
        t["settle_month"],
        pc.strftime(t["settle_time"], format="%Y-%m"),
        pc.strftime(t["settle_end_date"], format="%Y-%m"),
        pc.strftime(t["discharge_time"], format="%Y-%m"),
    )
    columns: dict[str, pa.Array] = {
        "case_id": t["case_id"],
        "hospital_id": t["hospital_id"],
        "patient_id": t["patient_id"],
        "insurance_type": t["insurance_type"],
        "sex": t["sex"],
        "birth_date": t["birth_date"],
        "age": t["age"],
        "age_days": t["age_days"],
        "newborn_birth_weight_g": t["newborn_birth_weight_g"],
        "newborn_admit_weight_g": t["newborn_admit_weight_g"],
        "admit_date": pc.cast(t["admit_time"], pa.date32()),
        "discharge_date": pc.cast(t["discharge_time"], pa.date32()),
        "los_days": t["los_days"],
        "admission_route": t["admission_route"],
        "discharge_method": t["discharge_method"],
        "department": t["department"],
        "doctor_id": t["doctor_id"],
        "main_diagnosis": t["main_diagnosis"],
        "other_diagnoses": pc.coalesce(t["other_diagnoses"], empty),
        "main_procedure": t["main_procedure"],
        "main_procedure_date": t["main_procedure_date"],
        "other_procedures": pc.coalesce(t["other_procedures"], empty),
        "icu_days": pc.fill_null(t["icu_days"], 0),
        "total_cost": pc.coalesce(t["total_cost"], t["_fee_total"]),
        **{name: t[name] for name in dict.fromkeys(FEE_CATEGORIES.values())},
        **{name: t[name] for name in dict.fromkeys(FUND_COLUMNS.values())},
        "personal_copay": t["personal_copay"],
        "personal_selfpay": t["personal_selfpay"],
        "out_of_list_cost": t["out_of_list_cost"],
        "settle_month": month,
    }
    return CASES.conform(pa.table(columns))


# --- the whole import -----------------------------------------------------------------------


def import_settlement_lists(
    paths: Sequence[str | Path],
    encoding: str | None = None,
    diagnosis_types: str = "list",
) -> SettlementImport:
    """Import multi-record settlement lists; see the module docstring."""
    if diagnosis_types not in DIAGNOSIS_TYPE_CONVENTIONS:
        raise SettlementImportError(
            f"诊断类别编码约定应为 {'、'.join(DIAGNOSIS_TYPE_CONVENTIONS)}，收到 {diagnosis_types!r}"
        )
    sources, warnings = collect_sources(paths, encoding)
    diagnosis_sources = [
        (name, partial(_with_diagnosis_kind, loader, diagnosis_types))
        if not isinstance(loader, str)
        else (name, loader)
        for name, loader in sources["diagnoses"]
    ]
    sources["diagnoses"] = diagnosis_sources
    records = {
        record_type: import_raw(sources[record_type], contract, encoding)
        for record_type, contract in RECORD_TYPES.items()
    }
    apply_record_rules(records)
    result = SettlementImport(
        records, flatten({t: r.accepted for t, r in records.items()}), warnings
    )
    result.check_invariant()
    return result


def write_settlement_outputs(result: SettlementImport, out: str | Path) -> dict[str, Path]:
    """DIR/cases.parquet (the flat view), DIR/<record type>.parquet, and per record type
    DIR/quarantine_<type>.csv and DIR/errors_<type>.csv."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"cases": out / "cases.parquet"}
    pq.write_table(result.cases, paths["cases"])
    for record_type, r in result.records.items():
        paths[record_type] = out / f"{record_type}.parquet"
        pq.write_table(r.accepted, paths[record_type])
        q = out / f"quarantine_{record_type}.csv"
        e = out / f"errors_{record_type}.csv"
        write_quarantine_csv(r.quarantine, q)
        write_errors_csv(r.errors, e, r.contract)
        paths[f"quarantine_{record_type}"] = q
        paths[f"errors_{record_type}"] = e
    return paths
