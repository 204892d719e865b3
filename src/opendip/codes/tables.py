"""Code tables: the insurance editions a region groups with."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opendip.codes.hierarchy import (
    diagnosis_block,
    diagnosis_category,
    diagnosis_chapter,
    diagnosis_subcategory,
    procedure_category,
    procedure_subcategory,
)
from opendip.codes.normalise import normalise_code
from opendip.contract import DIAGNOSIS_CODES, PROCEDURE_CODES, TableContract, normalise_header

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "codes"


class CodeTableError(ValueError):
    """A code table file that cannot be used; the message names file, row and field."""


@dataclass(frozen=True)
class CodeTables:
    """Diagnosis and procedure tables of one insurance edition."""

    diagnoses: pa.Table
    procedures: pa.Table
    source: str = ""
    _diag: dict[str, dict[str, object]] = field(default_factory=dict, repr=False, compare=False)
    _proc: dict[str, dict[str, object]] = field(default_factory=dict, repr=False, compare=False)

    def diagnosis(self, code: str) -> dict[str, object] | None:
        if not self._diag:
            self._diag.update({r["code"]: r for r in self.diagnoses.to_pylist()})
        return self._diag.get(code)

    def procedure(self, code: str) -> dict[str, object] | None:
        if not self._proc:
            self._proc.update({r["code"]: r for r in self.procedures.to_pylist()})
        return self._proc.get(code)


@cache
def demo_code_tables() -> CodeTables:
    """The shipped demo tables (structurally realistic, not official)."""
    return CodeTables(
        pq.read_table(DEMO_DIR / "diagnoses.parquet"),
        pq.read_table(DEMO_DIR / "procedures.parquet"),
        source="demo",
    )


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        sheet = load_workbook(path, read_only=True, data_only=True).worksheets[0]
        rows = [["" if v is None else str(v) for v in r] for r in sheet.iter_rows(values_only=True)]
    else:
        import csv
        import io

        raw = path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise CodeTableError(f"{path}: 无法识别文件编码（应为 UTF-8 或 GBK/GB18030）")
        rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise CodeTableError(f"{path}: 文件为空")
    return rows[0], rows[1:]


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "是", "y", "yes", "true", "t", "可", "允许")


def _read_table(path: Path, contract: TableContract, needed: tuple[str, ...]) -> list[dict]:
    header, rows = _read_rows(path)
    aliases = contract.alias_map()
    names = [aliases.get(normalise_header(h)) for h in header]
    missing = [n for n in needed if n not in names]
    if missing:
        labels = "、".join(f"{n}（{contract.column(n).label}）" for n in missing)
        raise CodeTableError(f"{path}: 缺少列 {labels}")
    out = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):
        record = {n: (row[i].strip() if i < len(row) else "") for i, n in enumerate(names) if n}
        code = normalise_code(record.get("code"))
        if not code:
            raise CodeTableError(f"{path} 第 {number} 行 字段 code: 代码为空")
        if code in seen:
            raise CodeTableError(
                f"{path} 第 {number} 行 字段 code: 代码 {code} 与第 {seen[code]} 行重复"
            )
        seen[code] = number
        record["code"] = code
        record["_row"] = number
        out.append(record)
    return out


def load_code_tables(diagnosis_file: str | Path, procedure_file: str | Path) -> CodeTables:
    """Read a region's official tables (CSV UTF-8/GBK or .xlsx, Chinese headers)."""
    dpath, ppath = Path(diagnosis_file), Path(procedure_file)
    drows = []
    for r in _read_table(dpath, DIAGNOSIS_CODES, ("code", "name")):
        code = str(r["code"])
        sex = (r.get("sex_restriction") or "").replace("男", "1").replace("女", "2") or None
        if sex not in (None, "1", "2"):
            raise CodeTableError(f"{dpath} 第 {r['_row']} 行 字段 性别限制: 无效值 {sex!r}")
        drows.append(
            {
                "code": code,
                "name": r["name"],
                "chapter": diagnosis_chapter(code),
                "block": diagnosis_block(code),
                "category": diagnosis_category(code),
                "subcategory": diagnosis_subcategory(code),
                "valid_as_main": _truthy(r["valid_as_main"]) if r.get("valid_as_main") else True,
                "sex_restriction": sex,
                "age_min_days": int(r["age_min_days"]) if r.get("age_min_days") else None,
                "age_max_days": int(r["age_max_days"]) if r.get("age_max_days") else None,
            }
        )
    types = {"诊断性操作": "diagnostic", "治疗性操作": "therapeutic", "介入治疗": "interventional"}
    types |= {"手术": "surgery", "介入": "interventional"}
    prows = []
    for r in _read_table(ppath, PROCEDURE_CODES, ("code", "name", "procedure_type")):
        code = str(r["code"])
        kind = types.get(str(r["procedure_type"]), str(r["procedure_type"]))
        if kind not in ("diagnostic", "therapeutic", "interventional", "surgery"):
            raise CodeTableError(
                f"{ppath} 第 {r['_row']} 行 字段 手术操作类别: 无效值 {r['procedure_type']!r}"
                "（应为 诊断性操作/治疗性操作/介入治疗/手术）"
            )
        sex = (r.get("sex_restriction") or "").replace("男", "1").replace("女", "2") or None
        prows.append(
            {
                "code": code,
                "name": r["name"],
                "category": procedure_category(code),
                "subcategory": procedure_subcategory(code),
                "procedure_type": kind,
                "sex_restriction": sex,
            }
        )
    return CodeTables(
        pa.Table.from_pylist(drows, schema=DIAGNOSIS_CODES.schema),
        pa.Table.from_pylist(prows, schema=PROCEDURE_CODES.schema),
        source=f"{dpath}; {ppath}",
    )


def apply_mapping(cases: pa.Table, mapping: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Map clinical-edition codes to the insurance edition (CODE_MAPPING table).

    Returns (mapped cases, unmapped report: kind, clinical_code, cases). Codes without a
    mapping are kept as they are and counted, so nothing is silently lost.
    """
    diag = _lookup(mapping, "diagnosis")
    proc = _lookup(mapping, "procedure")
    unmapped: dict[tuple[str, str], int] = {}

    def one(value: str | None, table: dict[str, str], kind: str) -> str | None:
        if value is None:
            return None
        if value in table:
            return table[value]
        unmapped[(kind, value)] = unmapped.get((kind, value), 0) + 1
        return value

    columns = {name: cases.column(name) for name in cases.column_names}
    for name, table, kind in (
        ("main_diagnosis", diag, "diagnosis"),
        ("main_procedure", proc, "procedure"),
    ):
        if name in columns:
            columns[name] = pa.array(
                [one(v, table, kind) for v in columns[name].to_pylist()], pa.string()
            )
    for name, table, kind in (
        ("other_diagnoses", diag, "diagnosis"),
        ("other_procedures", proc, "procedure"),
    ):
        if name in columns:
            columns[name] = pa.array(
                [[one(v, table, kind) for v in (lst or [])] for lst in columns[name].to_pylist()],
                pa.list_(pa.string()),
            )
    mapped = pa.table(columns)
    report = pa.table(
        {
            "kind": [k for k, _ in unmapped],
            "clinical_code": [c for _, c in unmapped],
            "cases": pa.array(list(unmapped.values()), pa.int64()),
        }
    )
    if report.num_rows:
        report = report.sort_by([("cases", "descending"), ("clinical_code", "ascending")])
    return mapped, report


def _lookup(mapping: pa.Table, kind: str) -> dict[str, str]:
    rows = mapping.filter(pc.equal(mapping["kind"], kind))
    return dict(
        zip(rows["clinical_code"].to_pylist(), rows["insurance_code"].to_pylist(), strict=True)
    )
