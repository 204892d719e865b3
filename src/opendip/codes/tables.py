"""Code tables: the insurance editions a region groups with."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
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
from opendip.contract import (
    CODE_MAPPING,
    DIAGNOSIS_CODES,
    PROCEDURE_CODES,
    TableContract,
    normalise_header,
)

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "codes"


class CodeTableError(ValueError):
    """A code table file that cannot be used; the message names file, row and field."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        #: every problem found, one line each (file 第 N 行 字段 F: message)
        self.errors: list[str] = errors if errors is not None else [message]


@dataclass(frozen=True)
class CodeTables:
    """Diagnosis and procedure tables of one insurance edition."""

    diagnoses: pa.Table
    procedures: pa.Table
    source: str = ""
    _diag: dict[str, dict[str, object]] = field(default_factory=dict, repr=False, compare=False)
    _proc: dict[str, dict[str, object]] = field(default_factory=dict, repr=False, compare=False)

    def diagnosis(self, code: str) -> dict[str, object] | None:
        """The table row of a (normalised) diagnosis code, or None: O(1) after the first
        call builds the index. The row is shared; treat it as read-only."""
        if not self._diag:
            self._diag.update({r["code"]: r for r in self.diagnoses.to_pylist()})
        return self._diag.get(code)

    def procedure(self, code: str) -> dict[str, object] | None:
        """The table row of a (normalised) procedure code, or None (shared, read-only)."""
        if not self._proc:
            self._proc.update({r["code"]: r for r in self.procedures.to_pylist()})
        return self._proc.get(code)

    def write(self, directory: str | Path) -> tuple[Path, Path]:
        """Write diagnoses.parquet and procedures.parquet (read back with `read_code_tables`)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = (d / "diagnoses.parquet", d / "procedures.parquet")
        pq.write_table(self.diagnoses, paths[0], compression="zstd")
        pq.write_table(self.procedures, paths[1], compression="zstd")
        return paths


@cache
def demo_code_tables() -> CodeTables:
    """The shipped demo tables (structurally realistic, not official)."""
    return CodeTables(
        pq.ParquetFile(DEMO_DIR / "diagnoses.parquet").read(),
        pq.ParquetFile(DEMO_DIR / "procedures.parquet").read(),
        source="demo",
    )


#: Extra header aliases seen in regions' published tables (beyond the contract's).
_EXTRA_ALIASES: dict[str, str] = {
    "主诊断标识": "valid_as_main",
    "可作为主要诊断": "valid_as_main",
    "适用性别": "sex_restriction",
    "年龄下限(天)": "age_min_days",
    "年龄上限(天)": "age_max_days",
    "操作类型": "procedure_type",
    "手术级别类型": "procedure_type",
    "诊断编码": "code",
    "手术操作编码": "code",
    # national insurance-edition layout (完整分类与代码) and the 1307/1308 catalogue feeds
    "DIAG_CODE": "code",
    "DIAG_NAME": "name",
    "OPRN_OPRT_CODE": "code",
    "OPRN_OPRT_NAME": "name",
    "类目代码": "_category",
    "CGY_CODE": "_category",
    "亚目代码": "_subcategory",
    "SOR_CODE": "_subcategory",
    "有效标志": "_valid",
    "VALI_FLAG": "_valid",
    "手术操作代码": "code",
}
_TRUE = frozenset(("1", "是", "y", "yes", "true", "t", "可", "允许", "√"))
_FALSE = frozenset(("0", "否", "n", "no", "false", "f", "不可", "不允许", "×"))
_SEX = {"1": "1", "男": "1", "男性": "1", "2": "2", "女": "2", "女性": "2"}
_PROCEDURE_TYPES = {
    "诊断性操作": "diagnostic",
    "治疗性操作": "therapeutic",
    "介入治疗": "interventional",
    "介入": "interventional",
    "手术": "surgery",
} | {t: t for t in ("diagnostic", "therapeutic", "interventional", "surgery")}
#: Well-formed codes after normalisation: K35.800x001, I10.x00, C34 / 47.0100x001, 28.2x00.
DIAGNOSIS_PATTERN = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Zx]{1,3}(x[0-9]{3})?)?$")
PROCEDURE_PATTERN = re.compile(r"^[0-9]{2}(\.[0-9x]{1,4}(x[0-9]{3})?)?$")
_MAX_ERRORS = 50


class _Errors:
    """Collects every problem of a file so the user fixes them in one pass."""

    def __init__(self) -> None:
        self._found: list[tuple[int, int, str]] = []
        self._files: dict[Path, int] = {}

    @property
    def items(self) -> list[str]:
        """Problems in file order, then row order."""
        return [text for _, _, text in sorted(self._found, key=lambda e: e[:2])]

    def add(self, path: Path, row: int, field: str, message: str) -> None:
        index = self._files.setdefault(path, len(self._files))
        self._found.append((index, row, f"{path} 第 {row} 行 字段 {field}: {message}"))

    def raise_if_any(self) -> None:
        if self._found:
            shown = self.items[:_MAX_ERRORS]
            more = len(self.items) - len(shown)
            tail = f"\n……另有 {more} 处错误" if more else ""
            raise CodeTableError("\n".join(shown) + tail, self.items)


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.exists():
        raise CodeTableError(f"{path}: 文件不存在")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a bad workbook
            raise CodeTableError(f"{path}: 无法读取 Excel 文件（{exc}）") from exc
        sheet = book.worksheets[0]
        rows = [
            ["" if v is None else _cell(v) for v in r] for r in sheet.iter_rows(values_only=True)
        ]
        book.close()
    elif path.suffix.lower() == ".parquet":
        table = pq.read_table(path)
        rows = [table.column_names] + [
            ["" if v is None else _cell(v) for v in row.values()] for row in table.to_pylist()
        ]
    else:
        raw = path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:  # pragma: no cover - gb18030 decodes every byte string
            raise CodeTableError(f"{path}: 无法识别文件编码（应为 UTF-8 或 GBK/GB18030）")
        rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise CodeTableError(f"{path}: 文件为空")
    return rows[0], rows[1:]


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_table(
    path: Path, contract: TableContract, needed: tuple[str, ...], errors: _Errors
) -> list[dict[str, object]]:
    header, rows = _read_rows(path)
    aliases = contract.alias_map() | {normalise_header(k): v for k, v in _EXTRA_ALIASES.items()}
    names = [aliases.get(normalise_header(h)) for h in header]
    missing = [n for n in needed if n not in names]
    if missing:
        labels = "、".join(f"{n}（{contract.column(n).label}）" for n in missing)
        raise CodeTableError(f"{path}: 缺少列 {labels}；表头为 {header}")
    out: list[dict[str, object]] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):
        record: dict[str, object] = {
            n: (row[i].strip() if i < len(row) else "") for i, n in enumerate(names) if n
        }
        code = normalise_code(str(record.get("code", "")))
        if not code:
            errors.add(path, number, "code", "代码为空")
            continue
        if code in seen:
            errors.add(path, number, "code", f"代码 {code} 与第 {seen[code]} 行重复")
            continue
        seen[code] = number
        if "name" in needed and not record.get("name"):
            errors.add(path, number, "name", f"代码 {code} 的名称为空")
        record["code"] = code
        record["_row"] = number
        out.append(record)
    return out


def _flag(value: object, default: bool, err: Callable[[str], None]) -> bool:
    text = str(value or "").strip().lower()
    if not text:
        return default
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    err(f"无效值 {value!r}（应为 是/否 或 1/0）")
    return default


def _sex(value: object, err: Callable[[str], None]) -> str | None:
    text = str(value or "").strip()
    if text in ("", "0", "9", "不限"):
        return None
    if text not in _SEX:
        err(f"无效值 {value!r}（应为 1/男、2/女 或空）")
        return None
    return _SEX[text]


def _days(value: object, err: Callable[[str], None]) -> int | None:
    text = str(value or "").strip()
    if not text:
        return None
    if not text.isdigit() or not text.isascii():
        err(f"无效值 {value!r}（应为非负整数天数）")
        return None
    return int(text)


@dataclass
class LoadReport:
    """What loading official tables found besides errors (for the CLI summary)."""

    #: Codes the feed marks as no longer valid (有效标志 VALI_FLAG = 0): left out, counted.
    retired: dict[str, list[str]] = field(
        default_factory=lambda: {"diagnosis": [], "procedure": []}
    )
    #: Procedures whose type (手术/介入/治疗性/诊断性) came from the attribute table, or — when
    #: neither the table nor an attribute file gives it — from the code's position (推定).
    types_from_attributes: int = 0
    types_inferred: list[str] = field(default_factory=list)


def _is_retired(record: dict[str, object]) -> bool:
    return str(record.get("_valid", "")).strip() in ("0", "否", "无效", "n", "N")


def load_code_tables(
    diagnosis_file: str | Path,
    procedure_file: str | Path,
    procedure_attributes: str | Path | None = None,
    report: LoadReport | None = None,
) -> CodeTables:
    """Read a region's official tables (CSV UTF-8/GBK, .xlsx or Parquet; Chinese headers).

    Accepts the national published layout (章 … 类目代码 类目名称 亚目代码 亚目名称 诊断代码
    诊断名称, and the 1307/1308 feed columns): the 类目/亚目 columns must agree with the code;
    rows with 有效标志 0 are retired (left out, listed in `report`). The national procedure
    table has no procedure type: it then comes from `procedure_attributes` (code + 手术操作类别),
    else from the code's position (listed in `report.types_inferred`).
    Every problem is collected; `CodeTableError` lists them all with file, row and field.
    """
    dpath, ppath = Path(diagnosis_file), Path(procedure_file)
    report = report if report is not None else LoadReport()
    errors = _Errors()
    drows = []
    for r in _read_table(dpath, DIAGNOSIS_CODES, ("code", "name"), errors):
        code, row = str(r["code"]), int(r["_row"])  # type: ignore[call-overload]

        def err(message: str, field: str, row: int = row) -> None:
            errors.add(dpath, row, field, message)

        if not DIAGNOSIS_PATTERN.match(code):
            err(f"代码 {code!r} 不符合 ICD-10 医保版格式（如 K35.800x001、I10.x00）", "code")
            continue
        if _is_retired(r):
            report.retired["diagnosis"].append(code)
            continue
        _check_hierarchy(r, diagnosis_category(code), diagnosis_subcategory(code), err)
        age_min = _days(r.get("age_min_days"), lambda m: err(m, "最小年龄(天)"))
        age_max = _days(r.get("age_max_days"), lambda m: err(m, "最大年龄(天)"))
        if age_min is not None and age_max is not None and age_min > age_max:
            err(f"最小年龄 {age_min} 天大于最大年龄 {age_max} 天", "最大年龄(天)")
        drows.append(
            {
                "code": code,
                "name": r["name"],
                "chapter": diagnosis_chapter(code),
                "block": diagnosis_block(code),
                "category": diagnosis_category(code),
                "subcategory": diagnosis_subcategory(code),
                "valid_as_main": _flag(
                    r.get("valid_as_main"), True, lambda m: err(m, "可作主要诊断")
                ),
                "sex_restriction": _sex(r.get("sex_restriction"), lambda m: err(m, "性别限制")),
                "age_min_days": age_min,
                "age_max_days": age_max,
            }
        )
    prows = []
    header, _ = _read_rows(ppath)
    folded = {normalise_header(h) for h in header}
    national = bool(folded & {normalise_header(h) for h in ("类目代码", "CGY_CODE", "细目代码")})
    attributes = _procedure_attributes(procedure_attributes, errors) if procedure_attributes else {}
    needed = ("code", "name") if national else ("code", "name", "procedure_type")
    for r in _read_table(ppath, PROCEDURE_CODES, needed, errors):
        code, row = str(r["code"]), int(r["_row"])  # type: ignore[call-overload]

        def perr(message: str, field: str, row: int = row) -> None:
            errors.add(ppath, row, field, message)

        if not PROCEDURE_PATTERN.match(code):
            perr(f"代码 {code!r} 不符合 ICD-9-CM-3 医保版格式（如 47.0100x001）", "code")
            continue
        if _is_retired(r):
            report.retired["procedure"].append(code)
            continue
        _check_hierarchy(r, code[:2], procedure_subcategory(code)[:4], perr)
        if not str(r.get("procedure_type") or "").strip():
            if code in attributes:
                r["procedure_type"] = attributes[code]
                report.types_from_attributes += 1
            else:
                from opendip.codes.demo_build import procedure_type

                r["procedure_type"] = procedure_type(code)
                report.types_inferred.append(code)
        kind = _PROCEDURE_TYPES.get(str(r["procedure_type"]).strip())
        if kind is None:
            perr(
                f"无效值 {r['procedure_type']!r}（应为 诊断性操作/治疗性操作/介入治疗/手术）",
                "手术操作类别",
            )
            continue
        prows.append(
            {
                "code": code,
                "name": r["name"],
                "category": procedure_category(code),
                "subcategory": procedure_subcategory(code),
                "procedure_type": kind,
                "sex_restriction": _sex(r.get("sex_restriction"), lambda m: perr(m, "性别限制")),
            }
        )
    errors.raise_if_any()
    return CodeTables(
        pa.Table.from_pylist(drows, schema=DIAGNOSIS_CODES.schema),
        pa.Table.from_pylist(prows, schema=PROCEDURE_CODES.schema),
        source=f"{dpath}; {ppath}",
    )


def _check_hierarchy(
    record: dict[str, object], category: str, subcategory: str, err: Callable[[str, str], None]
) -> None:
    """The national layout's 类目代码 / 亚目代码 columns must agree with the code itself."""
    given = str(record.get("_category") or "").strip()
    if given and normalise_code(given) != category:
        err(f"类目代码 {given} 与代码 {record['code']} 不符（应为 {category}）", "类目代码")
    given = str(record.get("_subcategory") or "").strip()
    if given and normalise_code(given) != subcategory:
        err(f"亚目代码 {given} 与代码 {record['code']} 不符（应为 {subcategory}）", "亚目代码")


def _procedure_attributes(path: str | Path, errors: _Errors) -> dict[str, str]:
    """code → procedure type from an attribute table (手术操作代码 + 手术操作类别)."""
    path = Path(path)
    out: dict[str, str] = {}
    for r in _read_table(path, PROCEDURE_CODES, ("code", "procedure_type"), errors):
        kind = _PROCEDURE_TYPES.get(str(r["procedure_type"]).strip())
        if kind is None:
            errors.add(path, int(r["_row"]), "手术操作类别", f"无效值 {r['procedure_type']!r}")  # type: ignore[call-overload]
            continue
        out[str(r["code"])] = kind
    return out


def read_code_tables(directory: str | Path) -> CodeTables:
    """Tables written by `CodeTables.write` / `opendip codes load` (diagnoses/procedures.parquet)."""
    d = Path(directory)
    for name in ("diagnoses.parquet", "procedures.parquet"):
        if not (d / name).exists():
            raise CodeTableError(f"{d / name}: 文件不存在（请先运行 opendip codes load）")
    return CodeTables(
        DIAGNOSIS_CODES.conform(pq.read_table(d / "diagnoses.parquet")),
        PROCEDURE_CODES.conform(pq.read_table(d / "procedures.parquet")),
        source=str(d),
    )


_MAPPING_KINDS = {
    "diagnosis": "diagnosis",
    "诊断": "diagnosis",
    "疾病诊断": "diagnosis",
    "procedure": "procedure",
    "手术": "procedure",
    "操作": "procedure",
    "手术操作": "procedure",
}


def load_mapping(path: str | Path) -> pa.Table:
    """A clinical → insurance edition mapping file (CODE_MAPPING; CSV/xlsx/Parquet)."""
    path = Path(path)
    errors = _Errors()
    rows = _read_table_mapping(path, errors)
    errors.raise_if_any()
    return pa.Table.from_pylist(rows, schema=CODE_MAPPING.schema)


def _read_table_mapping(path: Path, errors: _Errors) -> list[dict[str, object]]:
    header, rows = _read_rows(path)
    aliases = CODE_MAPPING.alias_map() | {
        normalise_header(k): v
        for k, v in {
            "国家临床版代码": "clinical_code",
            "国临版编码": "clinical_code",
            "医保版编码": "insurance_code",
            "医保版2.0代码": "insurance_code",
            "代码类型": "kind",
        }.items()
    }
    names = [aliases.get(normalise_header(h)) for h in header]
    missing = [n for n in CODE_MAPPING.names if n not in names]
    if missing:
        labels = "、".join(f"{n}（{CODE_MAPPING.column(n).label}）" for n in missing)
        raise CodeTableError(f"{path}: 缺少列 {labels}；表头为 {header}")
    out: list[dict[str, object]] = []
    seen: dict[tuple[str, str], int] = {}
    for number, row in enumerate(rows, start=2):
        record = {n: (row[i].strip() if i < len(row) else "") for i, n in enumerate(names) if n}
        kind = _MAPPING_KINDS.get(record["kind"].lower())
        clinical = normalise_code(record["clinical_code"])
        insurance = normalise_code(record["insurance_code"])
        if kind is None:
            errors.add(path, number, "类型", f"无效值 {record['kind']!r}（应为 诊断 或 手术操作）")
            continue
        if not clinical or not insurance:
            field = "国临版代码" if not clinical else "医保版代码"
            errors.add(path, number, field, "代码为空")
            continue
        if (kind, clinical) in seen:
            errors.add(
                path,
                number,
                "国临版代码",
                f"{clinical} 与第 {seen[kind, clinical]} 行重复（一个国临版代码只能映射一次）",
            )
            continue
        seen[kind, clinical] = number
        out.append({"kind": kind, "clinical_code": clinical, "insurance_code": insurance})
    return out


def apply_mapping(cases: pa.Table, mapping: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Map clinical-edition codes to the insurance edition (CODE_MAPPING table), vectorised.

    Maps main_diagnosis, other_diagnoses, main_procedure and other_procedures (list order
    kept). Returns (mapped cases, unmapped report: kind, clinical_code, occurrences, cases)
    sorted by occurrences. Codes without a mapping are kept unchanged and counted, so
    nothing is silently lost; codes already in the insurance edition (a mapping target)
    count as mapped.
    """
    columns = {name: cases.column(name) for name in cases.column_names}
    row_ids = pa.array(np.arange(cases.num_rows, dtype=np.int64))
    found: list[pa.Table] = []
    for name, kind in (
        ("main_diagnosis", "diagnosis"),
        ("other_diagnoses", "diagnosis"),
        ("main_procedure", "procedure"),
        ("other_procedures", "procedure"),
    ):
        if name not in columns:
            continue
        rows = mapping.filter(pc.equal(mapping["kind"], kind))
        source = rows["clinical_code"].combine_chunks()
        target = rows["insurance_code"].combine_chunks()
        known = pa.concat_arrays([source, target])
        column = columns[name].combine_chunks()
        is_list = pa.types.is_list(column.type)
        if is_list:
            valid = column.is_valid()
            if column.null_count:  # null lists become empty so offsets and values line up
                column = pc.if_else(valid, column, pa.scalar([], column.type))
            values = pc.list_flatten(column)
            owner = pc.take(row_ids, pc.list_parent_indices(column))
        else:
            values, owner = column, row_ids
        mapped_values, missing = _map_values(values, source, target, known)
        if is_list:
            offsets = pc.subtract(column.offsets, column.offsets[0])
            columns[name] = pa.ListArray.from_arrays(offsets, mapped_values, mask=pc.invert(valid))
        else:
            columns[name] = mapped_values
        codes = values.filter(missing).cast(pa.string())
        found.append(
            pa.table(
                {
                    "kind": pa.array(np.full(len(codes), kind, dtype=object), pa.string()),
                    "clinical_code": codes,
                    "row": owner.filter(missing),
                }
            )
        )
    mapped = pa.table(columns)
    empty = pa.table(
        {
            "kind": pa.array([], pa.string()),
            "clinical_code": pa.array([], pa.string()),
            "row": pa.array([], pa.int64()),
        }
    )
    unmapped = pa.concat_tables([empty, *found])
    report = unmapped.group_by(["kind", "clinical_code"]).aggregate(
        [("row", "count"), ("row", "count_distinct")]
    )
    report = pa.table(
        {
            "kind": report["kind"],
            "clinical_code": report["clinical_code"].cast(pa.string()),
            "occurrences": report["row_count"].cast(pa.int64()),
            "cases": report["row_count_distinct"].cast(pa.int64()),
        }
    )
    report = report.sort_by(
        [("occurrences", "descending"), ("kind", "ascending"), ("clinical_code", "ascending")]
    )
    return mapped, report


def _map_values(
    values: pa.Array, source: pa.Array, target: pa.Array, known: pa.Array
) -> tuple[pa.Array, pa.Array]:
    """(mapped values, mask of non-null values that have no mapping)."""
    values = values.cast(pa.string())
    index = pc.index_in(values, value_set=source)
    mapped = pc.coalesce(pc.take(target, index), values)
    missing = pc.and_(pc.invert(pc.is_in(values, value_set=known)), pc.is_valid(values))
    return mapped, missing.fill_null(False)
