"""病案首页 (inpatient front page, HQMS / 卫统4 export) → settlement lists.

Hospitals hold the front page; the settlement list is derived from it. `convert_front_pages`
maps one export (pinyin column codes, numbered diagnosis and procedure columns, GBK or
UTF-8 CSV or Excel) onto the settlement-list record types (main record, diagnoses,
procedures) as text in the national field codes, and reports every settlement-list field it
cannot derive. `import_front_pages` then imports the converted lists through the ordinary
multi-record import, so every rule of that import (ids, codes, quarantine per record type)
applies. The mapping is documented in docs/data-contract.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from opendip.contract import normalise_header
from opendip.contract.settlement import RECORD_TYPES
from opendip.ingest.readers import read_file
from opendip.ingest.values import parse_date

#: 首页 column → settlement-list field code (main record), values copied as they are.
HEADER_MAP: dict[str, str] = {
    "BAH": "MEDCASNO", "XB": "GEND", "CSRQ": "BRDY", "NL": "AGE", "XSECSTZ": "NWB_BIR_WT",
    "XSERYTZ": "NWB_ADM_WT", "RYTJ": "ADM_WAY", "RYKB": "ADM_CATY", "CYKB": "DSCG_CATY",
    "ZKKB": "REFLDEPT_DEPT", "SJZYTS": "ACT_IPT_DAYS", "MZZD": "OTP_WM_DISE",
    "JBBM": "WM_DISE_CODE", "LYFS": "DSCG_WAY", "ZZYS": "CHFPDR_NAME", "ZFY": "MEDFEE_SUMAMT",
}  # fmt: skip
#: 医疗付费方式 (YLFKFS, CV07.10.005) → 险种: 1 城镇职工 → 310; 2 城镇居民, 3 新农合 → 390.
#: 4 贫困救助 … 9 其他 (7 全自费 is not an insured case) have no insurance type.
PAYMENT_TO_INSUTYPE = {"1": "310", "01": "310", "2": "390", "02": "390", "3": "390", "03": "390"}
#: Settlement-list fields the front page does not hold (national-formats.md §2), and why.
UNDERIVABLE: dict[str, str] = {
    "PSN_NO": "首页没有医保人员编号：以病案号（院内患者标识）代替，需由医保结算记录更正",
    "FIXMEDINS_CODE": "首页为组织机构代码，不是医保定点医疗机构编号（用 --hospital-id 指定）",
    "CHFPDR_CODE": "首页只有主治医师姓名，没有医保医师代码",
    "SCS_CUTD_INPOOL_TIME": "重症监护记录来自护理/ICU 系统，首页没有",
    "VENT_USED_DURA": "呼吸机使用时长仅部分省级首页版本有",
    "MED_CHRGITM": "首页费用分类不能换算为结算清单 14 类收费项目，费用取自结算记录",
    "FUND_PAY_TYPE": "基金支付信息来自医保结算记录",
    "PSN_SELFPAY": "个人自付/自费/账户/现金来自医保结算记录",
    "SETL_BEGN_DATE": "结算期间与结算时间来自医保结算记录",
    "DCLA_TIME": "申报时间在上传时产生",
    "HI_PAYMTD": "医保支付方式由医保经办确定",
}
_NUMBERED = re.compile(r"^([A-Z_]+?)(\d+)$")


@dataclass
class FrontPageConversion:
    records: dict[str, pa.Table]  # text tables in national field codes, per record type
    underivable: pa.Table  # field, reason, cases
    warnings: list[str]


def _column(table: pa.Table, names: dict[str, str], code: str) -> pa.Array | None:
    header = names.get(code)
    if header is None:
        return None
    values = table[header].combine_chunks().cast(pa.string())
    values = pc.utf8_trim_whitespace(values)
    return pc.if_else(
        pc.is_in(values, pa.array(["", "-", "—"])), pa.scalar(None, pa.string()), values
    )


def _text_or_null(n: int, value: pa.Array | None) -> pa.Array:
    return value if value is not None else pa.nulls(n, pa.string())


def _datetime(date_text: pa.Array | None, hour_text: pa.Array | None, n: int) -> pa.Array:
    """'YYYY-MM-DD HH:00:00' from a 首页 date (any accepted form) and an optional hour."""
    if date_text is None:
        return pa.nulls(n, pa.string())
    dates, _ = parse_date(date_text)
    day = pc.strftime(dates, format="%Y-%m-%d")
    hour = pc.utf8_lpad(
        pc.fill_null(hour_text, "0") if hour_text is not None else pa.array(["0"] * n), 2, "0"
    )
    hour = pc.if_else(pc.match_substring_regex(hour, r"^\d{2}$"), hour, "00")
    return pc.binary_join_element_wise(day, pc.binary_join_element_wise(hour, "00:00", ":"), " ")


def convert_front_pages(
    paths: Sequence[str | Path],
    hospital_id: str | None = None,
    encoding: str | None = None,
) -> FrontPageConversion:
    """Front-page exports → settlement-list records (text, national field codes)."""
    headers_out: list[pa.Table] = []
    diagnoses: list[pa.Table] = []
    procedures: list[pa.Table] = []
    warnings: list[str] = []
    for path in paths:
        raw = read_file(path, encoding).table
        names = {normalise_header(h).upper(): h for h in raw.column_names}
        n = raw.num_rows
        bah = _column(raw, names, "BAH")
        times = _column(raw, names, "ZYCS")
        if bah is None:
            raise ValueError(f"{path}：缺少病案号（BAH）列，不是病案首页导出")
        case_id = pc.binary_join_element_wise(
            bah, pc.fill_null(times, "1") if times is not None else pa.array(["1"] * n), "-"
        )
        header: dict[str, pa.Array] = {"SETL_ID": case_id, "PSN_NO": bah}
        for code, target in HEADER_MAP.items():
            header[target] = _text_or_null(n, _column(raw, names, code))
        header["ADM_TIME"] = _datetime(_column(raw, names, "RYSJ"), _column(raw, names, "RYSJS"), n)
        header["DSCG_TIME"] = _datetime(
            _column(raw, names, "CYSJ"), _column(raw, names, "CYSJS"), n
        )
        payment = _column(raw, names, "YLFKFS")
        if payment is not None:
            idx = pc.index_in(payment, value_set=pa.array(list(PAYMENT_TO_INSUTYPE)))
            header["INSUTYPE"] = pc.take(pa.array(list(PAYMENT_TO_INSUTYPE.values())), idx)
        else:
            header["INSUTYPE"] = pa.nulls(n, pa.string())
        # age under one year: recomputed in days from birth and admission (HQMS gives months)
        birth, _ = parse_date(_text_or_null(n, _column(raw, names, "CSRQ")))
        admit, _ = parse_date(_text_or_null(n, _column(raw, names, "RYSJ")))
        days = pc.days_between(birth, admit)
        infant = pc.fill_null(pc.less(days, 365), False)
        header["NWB_AGE"] = pc.if_else(
            infant, pc.cast(days, pa.string()), pa.scalar(None, pa.string())
        )
        header["AGE"] = pc.if_else(infant, "0", header["AGE"])
        coma = []
        for prefix in ("RYQ", "RYH"):
            parts = [_column(raw, names, f"{prefix}{s}") for s in ("T", "XS", "F")]  # RYQ_T …
            if all(p is not None for p in parts):
                joined = pc.binary_join_element_wise(*[pc.fill_null(p, "0") for p in parts], "/")
                given = pc.or_(
                    pc.or_(pc.is_valid(parts[0]), pc.is_valid(parts[1])), pc.is_valid(parts[2])
                )
                coma.append(pc.if_else(given, joined, pa.scalar(None, pa.string())))
            else:
                coma.append(pa.nulls(n, pa.string()))
        header["PWCRY_BFADM_COMA_DURA"], header["PWCRY_AFADM_COMA_DURA"] = coma
        header["FIXMEDINS_CODE"] = pa.array([hospital_id] * n, pa.string())
        headers_out.append(pa.table(header))

        # diagnoses: main (JBDM, RYBQ, ZYZD) then QTZDn / JBDMn / RYBQn in number order
        numbered: dict[str, dict[int, str]] = {}
        for folded in names:
            m = _NUMBERED.match(folded)
            if m:
                numbered.setdefault(m.group(1), {})[int(m.group(2))] = folded
        rows = [
            (
                "1",
                "1",
                _column(raw, names, "JBDM"),
                _column(raw, names, "ZYZD"),
                _column(raw, names, "RYBQ"),
            )
        ]
        for k in sorted(numbered.get("JBDM", {})):
            rows.append(("2", "0", _column(raw, names, f"JBDM{k}"), _column(raw, names, f"QTZD{k}"),
                         _column(raw, names, f"RYBQ{k}")))  # fmt: skip
        for order, (dtype, flag, code, name, cond) in enumerate(rows):
            if code is None:
                continue
            keep = pc.is_valid(code)
            diagnoses.append(
                pa.table(
                    {
                        "SETL_ID": case_id.filter(keep), "DIAG_TYPE": pa.array([dtype] * n).filter(keep),
                        "MAINDIAG_FLAG": pa.array([flag] * n).filter(keep), "DIAG_CODE": code.filter(keep),
                        "DIAG_NAME": _text_or_null(n, name).filter(keep),
                        "ADM_COND_TYPE": _text_or_null(n, cond).filter(keep),
                        "_row": pa.array(np.arange(n), pa.int64()).filter(keep),
                        "_order": pa.array([order] * n, pa.int64()).filter(keep),
                    }
                )
            )  # fmt: skip
        for k in sorted(numbered.get("SSJCZBM", {})):
            code = _column(raw, names, f"SSJCZBM{k}")
            if code is None:
                continue
            keep = pc.is_valid(code)

            def col(
                c: str, k: int = k, keep: pa.Array = keep, raw: pa.Table = raw,
                names: dict[str, str] = names, n: int = n,
            ) -> pa.Array:  # fmt: skip
                return _text_or_null(n, _column(raw, names, f"{c}{k}")).filter(keep)

            procedures.append(
                pa.table(
                    {
                        "SETL_ID": case_id.filter(keep),
                        "OPRN_OPRT_TYPE": pa.array(["1" if k == 1 else "2"] * n).filter(keep),
                        "OPRN_OPRT_CODE": code.filter(keep), "OPRN_OPRT_NAME": col("SSJCZMC"),
                        "OPRN_OPRT_DATE": col("SSJCZRQ"), "ANST_WAY": col("MZFS"),
                        "OPER_DR_NAME": col("SZ"), "ANST_DR_NAME": col("MZYS"),
                        "_row": pa.array(np.arange(n), pa.int64()).filter(keep),
                        "_order": pa.array([k] * n, pa.int64()).filter(keep),
                    }
                )
            )  # fmt: skip
        if "ZFY" not in names:
            warnings.append(f"{path}：没有总费用（ZFY）列")
    header_table = pa.concat_tables(headers_out)
    records = {
        "settlement_lists": header_table,
        "diagnoses": _ordered(diagnoses),
        "procedures": _ordered(procedures),
    }
    n = header_table.num_rows
    reasons = dict(UNDERIVABLE)
    if hospital_id:
        reasons.pop("FIXMEDINS_CODE")
    counts = {field: n for field in reasons}
    # fields a front page could give but these rows leave empty
    for code, label in (("INSUTYPE", "医疗付费方式不是城镇职工/城镇居民/新农合（或为空）"),
                        ("ADM_TIME", "入院日期为空或无效"), ("DSCG_TIME", "出院日期为空或无效"),
                        ("MEDFEE_SUMAMT", "总费用为空")):  # fmt: skip
        missing = int(pc.sum(pc.is_null(header_table[code])).as_py() or 0)
        if missing:
            reasons[code] = label
            counts[code] = missing
    main_missing = n - len(
        set(
            records["diagnoses"]
            .filter(pc.equal(records["diagnoses"]["MAINDIAG_FLAG"], "1"))["SETL_ID"]
            .to_pylist()
        )
    )
    if main_missing:
        reasons["DIAG_CODE"] = "主要诊断编码（JBDM）为空：该清单将因无主要诊断行被隔离"
        counts["DIAG_CODE"] = main_missing
    labels = _labels()
    underivable = pa.table(
        {
            "field": list(reasons),
            "label": [labels.get(f, f) for f in reasons],
            "reason": list(reasons.values()),
            "cases": [counts[f] for f in reasons],
        }
    )
    return FrontPageConversion(records, underivable, warnings)


def _ordered(parts: list[pa.Table]) -> pa.Table:
    if not parts:
        return pa.table({"SETL_ID": pa.array([], pa.string())})
    t = pa.concat_tables(parts, promote_options="default")
    return t.sort_by([("_row", "ascending"), ("_order", "ascending")]).drop_columns(
        ["_row", "_order"]
    )


def _labels() -> dict[str, str]:
    out = {}
    for contract in RECORD_TYPES.values():
        for c in contract.columns:
            for alias in c.aliases:
                if alias.isascii() and alias.isupper():
                    out.setdefault(alias, c.label)
    return out


def write_converted(conversion: FrontPageConversion, directory: str | Path) -> list[Path]:
    """The converted records as UTF-8 CSV files (one per record type) for the import."""
    import pyarrow.csv as pacsv

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for record_type, table in conversion.records.items():
        path = directory / f"{record_type}.csv"
        pacsv.write_csv(table, path)
        paths.append(path)
    return paths


def map_clinical_codes(
    conversion: FrontPageConversion, mapping: pa.Table, codes: object | None = None
) -> pa.Table:
    """Map the converted diagnosis and procedure codes (国临版) to the insurance edition in
    place; returns the codes left unmapped (kind, clinical_code, occurrences) — a code that
    is already an insurance code (a mapping target, or in `codes`' tables) counts as mapped."""
    out = []
    for record_type, column, kind in (
        ("diagnoses", "DIAG_CODE", "diagnosis"),
        ("procedures", "OPRN_OPRT_CODE", "procedure"),
    ):
        table = conversion.records[record_type]
        if column not in table.column_names:
            continue
        rows = mapping.filter(pc.equal(mapping["kind"], kind))
        source, target = (
            rows["clinical_code"].combine_chunks(),
            rows["insurance_code"].combine_chunks(),
        )
        values = table[column].combine_chunks()
        mapped = pc.coalesce(pc.take(target, pc.index_in(values, value_set=source)), values)
        table_codes = getattr(codes, "diagnoses" if kind == "diagnosis" else "procedures", None)
        extra = [table_codes["code"].combine_chunks()] if table_codes is not None else []
        known = pa.concat_arrays([source, target, *extra])
        missing = pc.and_(pc.invert(pc.is_in(values, value_set=known)), pc.is_valid(values))
        conversion.records[record_type] = table.set_column(
            table.column_names.index(column), column, mapped
        )
        left = values.filter(pc.fill_null(missing, False))
        if len(left):
            counts = pc.value_counts(left)
            out.append(
                pa.table(
                    {
                        "kind": pa.array([kind] * len(counts), pa.string()),
                        "clinical_code": counts.field("values"),
                        "occurrences": pc.cast(counts.field("counts"), pa.int64()),
                    }
                )
            )
    schema = pa.schema(
        [("kind", pa.string()), ("clinical_code", pa.string()), ("occurrences", pa.int64())]
    )
    return pa.concat_tables(out) if out else schema.empty_table()
