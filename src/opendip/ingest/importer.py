"""Import: files → accepted contract rows + quarantined rows with their reasons.

Invariant: rows read = accepted + quarantined, per file and in total (checked on every
import). A file that cannot be read at all is reported in its `FileReport` and the other
files are still imported.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opendip.contract import CASES, HOSPITALS, QUARANTINE, TableContract
from opendip.contract.cells import safe_row
from opendip.ingest.limits import ImportLimits, Progress
from opendip.ingest.readers import (
    RawFile,
    ReadError,
    canonical_encoding,
    detect_encoding,
    read_file,
)
from opendip.ingest.validate import (
    ERROR_SCHEMA,
    RULES,
    MissingColumnsError,
    Validated,
    validate,
)

#: Header of the raw line of a row that could not be split into columns.
RAGGED_TEXT_HEADER = "原始行内容"


class InvariantError(AssertionError):
    """Rows read ≠ accepted + quarantined: a bug, never a data problem."""


@dataclass
class FileReport:
    """What happened to one input file."""

    path: str
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    error: str | None = None  # the file could not be read at all (Chinese)
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    """Accepted rows (exactly the contract's schema), quarantined rows (QUARANTINE schema),
    one row per error (`ERROR_SCHEMA`), and per-file counts."""

    accepted: pa.Table
    quarantine: pa.Table
    errors: pa.Table
    files: list[FileReport]
    contract: TableContract = CASES
    #: Where each accepted row came from (file, row_number), aligned with `accepted`.
    sources: pa.Table | None = None

    @property
    def read(self) -> int:
        return sum(f.read for f in self.files)

    @property
    def nothing_read(self) -> bool:
        """True when no file could be read (the CLI then exits non-zero)."""
        return all(f.error is not None for f in self.files)

    def check_invariant(self) -> None:
        """input = accepted + quarantined, per file and in total."""
        for f in self.files:
            if f.read != f.accepted + f.quarantined:
                raise InvariantError(
                    f"{f.path}：读入 {f.read} ≠ 接收 {f.accepted} + 隔离 {f.quarantined}"
                )
        accepted, quarantined = self.accepted.num_rows, self.quarantine.num_rows
        if self.read != accepted + quarantined:
            raise InvariantError(f"读入 {self.read} ≠ 接收 {accepted} + 隔离 {quarantined}")
        if sum(f.accepted for f in self.files) != accepted:
            raise InvariantError("各文件接收行数之和与接收表不符")


def import_table(
    paths: Sequence[str | Path],
    contract: TableContract = CASES,
    encoding: str | None = None,
    sheet: str | None = None,
    limits: ImportLimits | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Read, validate and split `paths` into accepted and quarantined rows of `contract`
    (each file within `limits`, default `opendip.ingest.limits.DEFAULT_LIMITS`);
    `progress` hears (step, rows so far) while each file is read."""
    sources: list[tuple[str, Callable[[], RawFile] | str]] = []
    seen: set[Path] = set()
    for path in paths:
        if Path(path).resolve() in seen:
            sources.append((str(path), "与前面列出的文件是同一个文件，已跳过"))
            continue
        seen.add(Path(path).resolve())
        sources.append((str(path), partial(read_file, path, encoding, sheet, limits, progress)))
    return import_raw(sources, contract, encoding)


def import_raw(
    sources: Sequence[tuple[str, Callable[[], RawFile] | str]],
    contract: TableContract = CASES,
    encoding: str | None = None,
) -> ImportResult:
    """Validate and split raw tables into accepted and quarantined rows of `contract`.

    Each source is (name, loader): the loader returns the `RawFile` (or raises `ReadError`);
    a plain string instead of a loader is the reason the source is skipped.
    """
    reports: list[FileReport] = []
    parts: list[tuple[FileReport, Validated]] = []
    ragged: list[pa.Table] = []
    for path, loader in sources:
        report = FileReport(path)
        reports.append(report)
        if isinstance(loader, str):
            report.error = loader
            continue
        try:
            raw = loader()
            report.encoding = raw.encoding
            validated = validate(raw, contract)
        except MissingColumnsError as exc:
            report.error = str(exc) + _encoding_hint(path, encoding)
            continue
        except ReadError as exc:
            report.error = str(exc)
            continue
        report.warnings = validated.warnings
        report.read = validated.table.num_rows + len(raw.bad_rows)
        if raw.bad_rows:
            ragged.append(_ragged_errors(str(path), raw.bad_rows))
        parts.append((report, validated))

    error_table = pa.concat_tables(
        [v.errors for _, v in parts] + ragged + _duplicate_key_errors(parts, contract)
    ) if parts else ERROR_SCHEMA.empty_table()  # fmt: skip

    accepted_parts: list[pa.Table] = []
    source_parts: list[pa.Table] = []
    quarantine_parts: list[pa.Table] = []
    for report, v in parts:
        in_file = error_table.filter(pc.equal(error_table["file"], v.source))
        bad = pc.is_in(v.row_numbers, in_file["row_number"]).to_numpy(zero_copy_only=False)
        keep = pa.array(~bad)
        accepted_parts.append(v.table.filter(keep))
        numbers = v.row_numbers.filter(keep)
        source_parts.append(
            pa.table(
                {
                    "file": pa.repeat(v.source, len(numbers)).cast(pa.string()),
                    "row_number": numbers,
                }
            )
        )
        report.accepted = int((~bad).sum())
        report.quarantined = report.read - report.accepted
        quarantine_parts.append(_quarantine_rows(v, np.flatnonzero(bad), in_file))
    for table in ragged:
        quarantine_parts.append(_quarantine_ragged(table))

    accepted = (
        contract.conform(pa.concat_tables(accepted_parts)) if accepted_parts else contract.empty()
    )
    quarantine = (
        pa.concat_tables(quarantine_parts).sort_by([("file", "ascending"), ("row_number", "ascending")])
        if quarantine_parts
        else QUARANTINE.empty()
    )  # fmt: skip
    sources = (
        pa.concat_tables(source_parts)
        if source_parts
        else pa.table({"file": pa.array([], pa.string()), "row_number": pa.array([], pa.int64())})
    )
    result = ImportResult(accepted, quarantine, _sorted(error_table), reports, contract, sources)
    result.check_invariant()
    return result


def _sorted(errors: pa.Table) -> pa.Table:
    return errors.sort_by([("file", "ascending"), ("row_number", "ascending")])


def _encoding_hint(path: str | Path, given: str | None) -> str:
    """When an encoding was given and the file decodes as another one, say so."""
    if given is None or not Path(path).is_file():
        return ""
    try:
        detected = detect_encoding(Path(path).read_bytes()[: 1 << 16])
    except (ReadError, OSError):
        return ""
    if detected != canonical_encoding(given):
        return f"；指定的编码 {given} 可能不对，文件看来是 {detected}（可去掉 --encoding 自动识别）"
    return ""


def _ragged_errors(source: str, bad_rows: list[tuple]) -> pa.Table:
    n = len(bad_rows)
    return pa.table(
        [
            pa.array([source] * n, pa.string()),
            pa.array([b[0] for b in bad_rows], pa.int64()),
            pa.array([""] * n, pa.string()),
            pa.array([b[1] for b in bad_rows], pa.string()),
            pa.array([b[3] if len(b) > 3 else "ragged_row" for b in bad_rows], pa.string()),
            pa.array([b[2] for b in bad_rows], pa.string()),
        ],
        schema=ERROR_SCHEMA,
    )


def _reasons(errors: pa.Table) -> pa.Table:
    """One row per (file, row): fields, values and messages of its errors joined."""
    if errors.num_rows == 0:
        return pa.table(
            {
                "file": pa.array([], pa.string()),
                "row_number": pa.array([], pa.int64()),
                "field": pa.array([], pa.string()),
                "value": pa.array([], pa.string()),
                "reason": pa.array([], pa.string()),
            }
        )
    value = pc.fill_null(errors["value"], "")
    errors = errors.set_column(errors.schema.get_field_index("value"), "value", value)
    grouped = errors.group_by(["file", "row_number"], use_threads=False).aggregate(
        [("field", "list"), ("value", "list"), ("message", "list")]
    )
    return pa.table(
        {
            "file": grouped["file"],
            "row_number": grouped["row_number"],
            "field": pc.binary_join(grouped["field_list"], "、"),
            "value": pc.binary_join(grouped["value_list"], " | "),
            "reason": pc.binary_join(grouped["message_list"], "；"),
        }
    )


def _quarantine_rows(v: Validated, idx: np.ndarray, errors: pa.Table) -> pa.Table:
    """Quarantined rows of one file: reasons and the original values as a JSON object."""
    if len(idx) == 0:
        return QUARANTINE.empty()
    take = pa.array(idx)
    numbers = v.row_numbers.take(take)
    originals = v.original.take(take).to_pylist()  # only the refused rows: a short loop
    original = pa.array([json.dumps(o, ensure_ascii=False) for o in originals], pa.string())
    reasons = _reasons(errors)
    rows = pa.table({"row_number": numbers, "original": original}).join(
        reasons.drop_columns(["file"]), "row_number", join_type="left outer"
    )
    rows = rows.append_column("file", pa.repeat(v.source, rows.num_rows).cast(pa.string()))
    return QUARANTINE.conform(rows)


def _quarantine_ragged(errors: pa.Table) -> pa.Table:
    original = [
        json.dumps({RAGGED_TEXT_HEADER: t}, ensure_ascii=False) for t in errors["value"].to_pylist()
    ]
    return QUARANTINE.conform(
        pa.table(
            {
                "file": errors["file"],
                "row_number": errors["row_number"],
                "reason": errors["message"],
                "original": pa.array(original, pa.string()),
            }
        )
    )  # fmt: skip


def _duplicate_key_errors(
    parts: list[tuple[FileReport, Validated]], contract: TableContract
) -> list[pa.Table]:
    """Second and later rows with an already-seen key (across all files of one import) are
    errors naming the first row; the first is kept."""
    if not contract.key or not parts:
        return []
    key = contract.key[0]
    ids = pa.concat_tables([v.table.select([key]) for _, v in parts])[key].combine_chunks()
    files = pa.chunked_array(
        [pa.repeat(v.source, v.table.num_rows).cast(pa.string()) for _, v in parts], pa.string()
    ).combine_chunks()
    rows = pa.chunked_array([v.row_numbers for _, v in parts], pa.int64()).combine_chunks()
    if len(ids) == 0:
        return []
    present = pc.is_valid(ids).to_numpy(zero_copy_only=False)
    # a missing key has a null code (numpy would make the codes floats): only present keys
    # are compared, so any filler will do
    codes = pc.fill_null(ids.dictionary_encode().indices, 0).to_numpy(zero_copy_only=False)
    n_ids = int(pc.count_distinct(ids).as_py())
    if n_ids == int(present.sum()):
        return []
    positions = np.flatnonzero(present)
    present_codes = codes[positions]
    first_of_code = np.zeros(int(present_codes.max()) + 1, dtype=np.int64)
    uniq, first_index = np.unique(present_codes, return_index=True)
    first_of_code[uniq] = positions[first_index]
    first_pos = first_of_code[present_codes]
    dup = first_pos != positions
    dup_pos = pa.array(positions[dup])
    of = pa.array(first_pos[dup])
    label = contract.column(key).label
    same_file = pc.equal(pc.take(files, dup_pos), pc.take(files, of))
    first_row = pc.cast(pc.take(rows, of), pa.string())
    message = pc.if_else(
        same_file,
        pc.binary_join_element_wise(f"{label}：与第 ", first_row, " 行重复", ""),
        pc.binary_join_element_wise(
            f"{label}：与文件 ", pc.take(files, of), " 第 ", first_row, " 行重复", ""
        ),
    )
    return [
        pa.table(
            [
                pc.take(files, dup_pos),
                pc.take(rows, dup_pos),
                pa.repeat(key, len(dup_pos)).cast(pa.string()),
                pc.take(ids, dup_pos),
                pa.repeat("duplicate_key", len(dup_pos)).cast(pa.string()),
                message,
            ],
            schema=ERROR_SCHEMA,
        )
    ]


def read_cases(
    paths: Sequence[str | Path],
    encoding: str | None = None,
    sheet: str | None = None,
    limits: ImportLimits | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import settlement-list files (CSV/Excel/Parquet) into the `cases` contract."""
    return import_table(paths, CASES, encoding, sheet, limits, progress)


def read_hospitals(
    paths: Sequence[str | Path], encoding: str | None = None, sheet: str | None = None
) -> ImportResult:
    """Import hospital tables into the `hospitals` contract."""
    return import_table(paths, HOSPITALS, encoding, sheet)


#: errors.csv columns (Chinese headers for users).
ERROR_HEADERS = {
    "file": "文件",
    "row_number": "行号",
    "field": "字段",
    "value": "值",
    "rule": "错误类型",
    "message": "错误说明",
}
#: First columns of quarantine.csv; the row's original columns follow.
QUARANTINE_HEADERS = ("文件", "原始行号", "隔离原因")


def write_outputs(
    result: ImportResult, out: str | Path, name: str | None = None
) -> dict[str, Path]:
    """DIR/<name>.parquet (default: the contract's name, e.g. cases.parquet),
    DIR/quarantine.csv (reasons + original values) and DIR/errors.csv, both CSVs UTF-8 with
    BOM so that Excel opens them."""
    out = Path(out)
    name = name or result.contract.name
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "accepted": out / f"{name}.parquet",
        "quarantine": out / "quarantine.csv",
        "errors": out / "errors.csv",
    }
    pq.write_table(result.accepted, paths["accepted"])
    write_quarantine_csv(result.quarantine, paths["quarantine"])
    write_errors_csv(result.errors, paths["errors"], result.contract)
    return paths


def write_quarantine_csv(quarantine: pa.Table, path: Path) -> None:
    """One line per quarantined row: file, row number, all reasons, then the original
    values under their original headers (union of the headers of all files)."""
    originals = [json.loads(o) for o in quarantine["original"].to_pylist()]
    headers = list(dict.fromkeys(h for o in originals for h in o))
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*QUARANTINE_HEADERS, *headers])
        for file, number, reason, original in zip(
            quarantine["file"].to_pylist(),
            quarantine["row_number"].to_pylist(),
            quarantine["reason"].to_pylist(),
            originals,
            strict=True,
        ):
            w.writerow(safe_row([file, number, reason, *(original.get(h) or "" for h in headers)]))


def write_errors_csv(errors: pa.Table, path: Path, contract: TableContract = CASES) -> None:
    """One line per error; the field as 'label（name）', the rule in Chinese."""
    labels = {c.name: f"{c.label}（{c.name}）" for c in contract.columns}
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(ERROR_HEADERS.values()))
        for row in errors.to_pylist():
            row["rule"] = RULES.get(row["rule"], row["rule"])
            row["field"] = labels.get(row["field"], row["field"])
            w.writerow(safe_row(["" if row[k] is None else row[k] for k in ERROR_HEADERS]))
