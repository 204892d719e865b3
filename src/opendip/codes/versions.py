"""Dated versions of the official code tables, and checking cases against the version in force.

A region holds several versions side by side (医保版 2.0 and a later update, say), each with
the date it takes effect. A directory of versions holds ``versions.json`` and one sub-directory
per version with ``diagnoses.parquet``, ``procedures.parquet`` and, where given,
``mapping.parquet`` (国临版 → 医保版) and ``grey.parquet`` (grey-listed codes and their
restrictions). The top-level ``diagnoses.parquet`` / ``procedures.parquet`` are the latest
version's, so commands that take one code-table directory keep working.

`check_cases` judges every case against the version in force on its discharge date: codes
unknown to that version are *retired* when another version knows them, else *unknown*; a
main diagnosis the version does not allow as main is reported; grey-listed procedures are
reported. The check is vectorised (one pass per version over the cases it governs).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opendip.codes.normalise import normalise_code
from opendip.codes.tables import (
    CodeTableError,
    CodeTables,
    _Errors,
    _read_rows,
    apply_mapping,
    read_code_tables,
)
from opendip.contract import CODE_MAPPING, normalise_header

#: Literal the national mapping workbooks put in the insurance columns of a grey code.
GREY_TEXT = "灰码"
#: Grey-list restrictions: the code may not be a main diagnosis / only male / only female /
#: a minimum or maximum age in days / a grey code (not used for grouping, not as main).
GREY_RESTRICTIONS = {
    "not_main": "not_main", "不可作主要诊断": "not_main", "不能作为主要诊断": "not_main",
    "male_only": "male_only", "仅男性": "male_only", "男": "male_only",
    "female_only": "female_only", "仅女性": "female_only", "女": "female_only",
    "min_age_days": "min_age_days", "年龄下限(天)": "min_age_days", "最小年龄(天)": "min_age_days",
    "max_age_days": "max_age_days", "年龄上限(天)": "max_age_days", "最大年龄(天)": "max_age_days",
    "grey": "grey", "灰码": "grey", "医保灰码": "grey",
}  # fmt: skip
GREY_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("code", pa.string()),
        ("restriction", pa.string()),
        ("value", pa.int32()),
    ]
)
PROBLEM_LABELS = {
    "unknown": "不在任何版本的代码表中",
    "retired": "在出院日生效的版本中已停用（其他版本有此代码）",
    "not_main": "在出院日生效的版本中不可作主要诊断",
    "grey": "医保灰码（不参与分组）",
    "unmapped": "不在该版本代码表中，也没有映射到医保版（国临版代码未映射）",
}
FINDING_SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("version", pa.string()),
        ("field", pa.string()),
        ("code", pa.string()),
        ("problem", pa.string()),
    ]
)
REPORT_SCHEMA = pa.schema(
    [
        ("version", pa.string()),
        ("problem", pa.string()),
        ("kind", pa.string()),
        ("code", pa.string()),
        ("occurrences", pa.int64()),
        ("cases", pa.int64()),
    ]
)
_KIND_OF_FIELD = {
    "main_diagnosis": "diagnosis",
    "other_diagnoses": "diagnosis",
    "main_procedure": "procedure",
    "other_procedures": "procedure",
}


def _kind_of(code: str) -> str:
    return "diagnosis" if code[:1].isalpha() else "procedure"


def load_mapping_national(path: str | Path) -> tuple[pa.Table, pa.Table]:
    """A mapping workbook in the published layout (国临版代码 | 国临版名称 | 医保版代码 |
    医保版名称, with or without a 类型 column): (CODE_MAPPING rows, grey rows). A 灰码 in the
    insurance columns makes the clinical code grey instead of mapping it; the kind follows
    the code's shape when there is no 类型 column."""
    path = Path(path)
    header, rows = _read_rows(path)
    aliases = {
        normalise_header(k): v
        for k, v in {
            "国临版代码": "clinical_code", "临床版代码": "clinical_code",
            "国家临床版代码": "clinical_code", "CLNC_DIAG_CODE": "clinical_code",
            "CLNC_OPRN_OPRT_CODE": "clinical_code", "医保版代码": "insurance_code",
            "医保版2.0代码": "insurance_code", "DIAG_CODE": "insurance_code",
            "OPRN_OPRT_CODE": "insurance_code", "类型": "kind", "代码类型": "kind",
        }.items()
    }  # fmt: skip
    names = [aliases.get(normalise_header(h)) for h in header]
    missing = [n for n in ("clinical_code", "insurance_code") if n not in names]
    if missing:
        labels = "、".join(CODE_MAPPING.column(n).label for n in missing)
        raise CodeTableError(f"{path}: 缺少列 {labels}；表头为 {header}")
    errors = _Errors()
    mapping: list[dict[str, str]] = []
    grey: list[dict[str, object]] = []
    seen: dict[tuple[str, str], int] = {}
    for number, row in enumerate(rows, start=2):
        record = {n: (row[i].strip() if i < len(row) else "") for i, n in enumerate(names) if n}
        clinical = normalise_code(record["clinical_code"])
        if not clinical:
            errors.add(path, number, "国临版代码", "代码为空")
            continue
        kind_text = record.get("kind", "")
        kind = {"诊断": "diagnosis", "疾病诊断": "diagnosis", "diagnosis": "diagnosis",
                "手术操作": "procedure", "手术": "procedure", "procedure": "procedure"}.get(
            kind_text, _kind_of(clinical) if not kind_text else ""
        )  # fmt: skip
        if not kind:
            errors.add(path, number, "类型", f"无效值 {kind_text!r}（应为 诊断 或 手术操作）")
            continue
        if (kind, clinical) in seen:
            errors.add(path, number, "国临版代码", f"{clinical} 与第 {seen[kind, clinical]} 行重复")
            continue
        seen[kind, clinical] = number
        insurance_text = record["insurance_code"].strip()
        if insurance_text == GREY_TEXT:
            grey.append({"kind": kind, "code": clinical, "restriction": "grey", "value": None})
            continue
        insurance = normalise_code(insurance_text)
        if not insurance:
            errors.add(path, number, "医保版代码", "代码为空（无对应医保版代码时应写“灰码”）")
            continue
        mapping.append({"kind": kind, "clinical_code": clinical, "insurance_code": insurance})
    errors.raise_if_any()
    return (
        pa.Table.from_pylist(mapping, schema=CODE_MAPPING.schema),
        pa.Table.from_pylist(grey, schema=GREY_SCHEMA),
    )


def load_grey_list(path: str | Path) -> pa.Table:
    """Grey-listed codes: 代码, 类型 (诊断/手术操作; optional), 限制 (不可作主要诊断, 仅男性,
    仅女性, 年龄下限(天), 年龄上限(天), 灰码), 值 (days, for the age limits)."""
    path = Path(path)
    header, rows = _read_rows(path)
    aliases = {
        normalise_header(k): v
        for k, v in {
            "代码": "code", "诊断代码": "code", "手术操作代码": "code", "编码": "code",
            "类型": "kind", "限制": "restriction", "限制类型": "restriction", "值": "value",
            "天数": "value",
        }.items()
    }  # fmt: skip
    names = [aliases.get(normalise_header(h)) for h in header]
    missing = [n for n in ("code", "restriction") if n not in names]
    if missing:
        raise CodeTableError(f"{path}: 缺少列 {'、'.join(missing)}（代码、限制）；表头为 {header}")
    errors = _Errors()
    out: list[dict[str, object]] = []
    for number, row in enumerate(rows, start=2):
        record = {n: (row[i].strip() if i < len(row) else "") for i, n in enumerate(names) if n}
        code = normalise_code(record["code"])
        if not code:
            errors.add(path, number, "代码", "代码为空")
            continue
        restriction = GREY_RESTRICTIONS.get(record["restriction"])
        if restriction is None:
            allowed = "不可作主要诊断、仅男性、仅女性、年龄下限(天)、年龄上限(天)、灰码"
            errors.add(path, number, "限制", f"无效值 {record['restriction']!r}（应为 {allowed}）")
            continue
        value = None
        if restriction in ("min_age_days", "max_age_days"):
            text = record.get("value", "")
            if not text.isdigit():
                errors.add(path, number, "值", f"年龄限制须为天数，收到 {text!r}")
                continue
            value = int(text)
        kind = {"诊断": "diagnosis", "手术操作": "procedure", "手术": "procedure"}.get(
            record.get("kind", ""), _kind_of(code)
        )
        out.append({"kind": kind, "code": code, "restriction": restriction, "value": value})
    errors.raise_if_any()
    return pa.Table.from_pylist(out, schema=GREY_SCHEMA)


def apply_grey_list(tables: CodeTables, grey: pa.Table) -> CodeTables:
    """The tables with the grey list's restrictions folded into their flags (vectorised)."""
    d = tables.diagnoses
    codes = d["code"]

    def listed(restriction: str) -> pa.Table:
        rows = grey.filter(
            pc.and_(pc.equal(grey["kind"], "diagnosis"), pc.equal(grey["restriction"], restriction))
        )
        return rows

    def hit(restriction: str) -> pa.Array:
        return pc.is_in(codes, value_set=listed(restriction)["code"])

    not_main = pc.or_(hit("not_main"), hit("grey"))
    d = d.set_column(
        d.schema.get_field_index("valid_as_main"),
        "valid_as_main",
        pc.if_else(not_main, False, d["valid_as_main"]),
    )
    sex = pc.if_else(
        hit("male_only"), "1", pc.if_else(hit("female_only"), "2", d["sex_restriction"])
    )
    d = d.set_column(d.schema.get_field_index("sex_restriction"), "sex_restriction", sex)
    for restriction, column in (("min_age_days", "age_min_days"), ("max_age_days", "age_max_days")):
        rows = listed(restriction)
        value = pc.take(rows["value"], pc.index_in(codes, value_set=rows["code"]))
        d = d.set_column(
            d.schema.get_field_index(column), column, pc.coalesce(value, d[column]).cast(pa.int32())
        )
    return CodeTables(d, tables.procedures, source=tables.source)


@dataclass(frozen=True)
class CodeVersion:
    version: str
    effective_from: dt.date
    tables: CodeTables
    mapping: pa.Table | None = None
    grey: pa.Table | None = None


class CodeVersions:
    """The dated versions of a region's code tables."""

    def __init__(self, versions: list[CodeVersion]) -> None:
        if not versions:
            raise CodeTableError("没有任何代码表版本")
        dates = [v.effective_from for v in versions]
        if len(set(dates)) != len(dates):
            raise CodeTableError("两个代码表版本的生效日期相同")
        names = [v.version for v in versions]
        if len(set(names)) != len(names):
            raise CodeTableError("代码表版本号重复")
        self.versions = sorted(versions, key=lambda v: v.effective_from)

    def in_force(self, day: dt.date) -> CodeVersion | None:
        """The version in force on `day` (the latest that took effect on or before it)."""
        current = None
        for v in self.versions:
            if v.effective_from <= day:
                current = v
        return current

    # --- storage ---------------------------------------------------------------------

    def write(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        entries = []
        for v in self.versions:
            sub = d / v.version
            v.tables.write(sub)
            for name, table in (("mapping", v.mapping), ("grey", v.grey)):
                path = sub / f"{name}.parquet"
                if table is not None:
                    pq.write_table(table, path)
                elif path.exists():
                    path.unlink()
            entries.append({"version": v.version, "effective_from": v.effective_from.isoformat()})
        (d / "versions.json").write_text(
            json.dumps(entries, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        latest = d / self.versions[-1].version
        for name in ("diagnoses.parquet", "procedures.parquet"):
            shutil.copyfile(latest / name, d / name)
        return d / "versions.json"

    @classmethod
    def read(cls, directory: str | Path) -> CodeVersions:
        d = Path(directory)
        index = d / "versions.json"
        if not index.exists():
            raise CodeTableError(f"{index}: 文件不存在（请用 opendip codes load --version 导入）")
        versions = []
        for entry in json.loads(index.read_text(encoding="utf-8")):
            sub = d / entry["version"]
            optional = {
                name: pq.read_table(sub / f"{name}.parquet")
                if (sub / f"{name}.parquet").exists()
                else None
                for name in ("mapping", "grey")
            }
            versions.append(
                CodeVersion(
                    entry["version"],
                    dt.date.fromisoformat(entry["effective_from"]),
                    read_code_tables(sub),
                    optional["mapping"],
                    optional["grey"],
                )
            )
        return cls(versions)

    def add(self, version: CodeVersion) -> CodeVersions:
        """These versions with `version` added (replacing one of the same name)."""
        kept = [v for v in self.versions if v.version != version.version]
        return CodeVersions([*kept, version])


def _values(cases: pa.Table, field: str) -> tuple[pa.Array, pa.Array]:
    """(row index, code) of one code field, lists flattened."""
    column = cases[field].combine_chunks()
    rows = pa.array(np.arange(cases.num_rows, dtype=np.int64))
    if pa.types.is_list(column.type):
        column = pc.if_else(column.is_valid(), column, pa.scalar([], column.type))
        return pc.take(rows, pc.list_parent_indices(column)), pc.list_flatten(column)
    valid = column.is_valid()
    return rows.filter(valid), column.filter(valid)


def check_cases(cases: pa.Table, versions: CodeVersions) -> tuple[pa.Table, pa.Table]:
    """Judge every case against the code-table version in force on its discharge date.

    Returns (findings: case_id, version, field, code, problem; report: version, problem,
    kind, code, occurrences, cases — the counts per code). With a version's mapping, its
    clinical codes are mapped first, and a code that is then still unknown is reported as
    'unmapped'; cases discharged before the first version are judged against the first.
    """
    findings: list[pa.Table] = []
    discharge = cases["discharge_date"].combine_chunks()
    all_diag = pa.concat_arrays(
        [v.tables.diagnoses["code"].combine_chunks() for v in versions.versions]
    )
    all_proc = pa.concat_arrays(
        [v.tables.procedures["code"].combine_chunks() for v in versions.versions]
    )
    for i, v in enumerate(versions.versions):
        start = pa.scalar(v.effective_from if i else dt.date.min, pa.date32())
        in_force = pc.greater_equal(discharge, start)
        if i + 1 < len(versions.versions):
            end = pa.scalar(versions.versions[i + 1].effective_from, pa.date32())
            in_force = pc.and_(in_force, pc.less(discharge, end))
        governed = cases.filter(pc.fill_null(in_force, False))
        if governed.num_rows == 0:
            continue
        ids = governed["case_id"].combine_chunks()
        has_mapping = v.mapping is not None and v.mapping.num_rows > 0
        if has_mapping:
            # clinical codes → this version's insurance codes; what stays unknown is unmapped
            governed, _ = apply_mapping(governed, v.mapping)
        grey_codes = (
            v.grey.filter(pc.equal(v.grey["restriction"], "grey"))["code"]
            if v.grey is not None
            else pa.array([], pa.string())
        )
        for field, kind in _KIND_OF_FIELD.items():
            if field not in governed.column_names:
                continue
            rows, codes = _values(governed, field)
            table = v.tables.diagnoses if kind == "diagnosis" else v.tables.procedures
            known_here = pc.is_in(codes, value_set=table["code"])
            known_anywhere = pc.is_in(
                codes, value_set=all_diag if kind == "diagnosis" else all_proc
            )
            problem = pc.case_when(
                pc.make_struct(
                    pc.is_in(codes, value_set=grey_codes),
                    known_here,
                    known_anywhere,
                ),
                "grey",
                pa.scalar(None, pa.string()),
                "retired",
                "unmapped" if has_mapping else "unknown",
            )
            if field == "main_diagnosis":
                invalid = table.filter(pc.invert(table["valid_as_main"]))["code"]
                problem = pc.if_else(
                    pc.and_(known_here, pc.is_in(codes, value_set=invalid)), "not_main", problem
                )
            keep = pc.is_valid(problem)
            findings.append(
                pa.table(
                    {
                        "case_id": pc.take(ids, rows.filter(keep)),
                        "version": pa.array(
                            [v.version] * int(pc.sum(keep).as_py() or 0), pa.string()
                        ),
                        "field": pa.array([field] * int(pc.sum(keep).as_py() or 0), pa.string()),
                        "code": codes.filter(keep).cast(pa.string()),
                        "problem": problem.filter(keep),
                    },
                    schema=FINDING_SCHEMA,
                )
            )
    found = pa.concat_tables(findings) if findings else FINDING_SCHEMA.empty_table()
    kinds = pc.take(
        pa.array(list(_KIND_OF_FIELD.values())),
        pc.index_in(found["field"], value_set=pa.array(list(_KIND_OF_FIELD))),
    )
    with_kind = found.append_column("kind", kinds)
    grouped = with_kind.group_by(
        ["version", "problem", "kind", "code"], use_threads=False
    ).aggregate([("case_id", "count"), ("case_id", "count_distinct")])
    report = pa.table(
        {
            "version": grouped["version"],
            "problem": grouped["problem"],
            "kind": grouped["kind"],
            "code": grouped["code"],
            "occurrences": grouped["case_id_count"].cast(pa.int64()),
            "cases": grouped["case_id_count_distinct"].cast(pa.int64()),
        },
        schema=REPORT_SCHEMA,
    ).sort_by([("occurrences", "descending"), ("version", "ascending"), ("code", "ascending")])
    return found, report
