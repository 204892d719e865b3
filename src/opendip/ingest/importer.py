"""Import: files → accepted contract rows + quarantined rows with reasons.

Invariant: rows read = accepted + quarantined, per file and in total.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opendip.contract import CASES, HOSPITALS, TableContract
from opendip.ingest.readers import ReadError, read_file
from opendip.ingest.validate import ERROR_SCHEMA, Validated, validate

QUARANTINE_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("row_number", pa.int64()),
        ("reason", pa.string()),
        ("original", pa.string()),  # JSON object of the original values by header
    ]
)


@dataclass
class FileReport:
    path: str
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    error: str | None = None
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    accepted: pa.Table
    quarantine: pa.Table
    errors: pa.Table
    files: list[FileReport]

    @property
    def read(self) -> int:
        return sum(f.read for f in self.files)

    @property
    def nothing_read(self) -> bool:
        return all(f.error is not None for f in self.files)

    def check_invariant(self) -> None:
        """input = accepted + quarantined; raises AssertionError if not (never expected)."""
        if self.read != self.accepted.num_rows + self.quarantine.num_rows:
            raise AssertionError(
                f"行数不守恒：读入 {self.read}，接收 {self.accepted.num_rows}，隔离 {self.quarantine.num_rows}"
            )


def import_table(
    paths: Sequence[str | Path],
    contract: TableContract = CASES,
    encoding: str | None = None,
    sheet: str | None = None,
) -> ImportResult:
    reports: list[FileReport] = []
    parts: list[tuple[str, Validated]] = []
    extra_quarantine: list[dict[str, object]] = []
    for path in paths:
        report = FileReport(str(path))
        reports.append(report)
        try:
            raw = read_file(path, encoding, sheet)
            report.encoding = raw.encoding
            validated = validate(raw, contract)
        except ReadError as exc:
            report.error = str(exc)
            continue
        report.warnings = validated.warnings
        report.read = validated.table.num_rows + len(raw.bad_rows)
        for number, text, why in raw.bad_rows:
            extra_quarantine.append(
                {
                    "file": str(path),
                    "row_number": number,
                    "reason": why,
                    "original": json.dumps({"text": text}, ensure_ascii=False),
                }
            )
        parts.append((str(path), validated))

    errors = [v.errors for _, v in parts]
    errors.extend(_duplicate_key_errors(parts, contract))
    error_table = pa.concat_tables(errors) if errors else ERROR_SCHEMA.empty_table()

    accepted_parts = []
    quarantine_rows = list(extra_quarantine)
    reasons = _reasons(error_table)
    for (source, v), report in zip(parts, [r for r in reports if r.error is None], strict=True):
        numbers = v.row_numbers.to_numpy()
        in_file = pc.equal(error_table["file"], source)
        bad = np.isin(numbers, pc.filter(error_table["row_number"], in_file).to_numpy())
        accepted_parts.append(v.table.filter(pa.array(~bad)))
        for i in np.flatnonzero(bad):
            original = {k: v.raw.column(k)[int(i)].as_py() for k in v.raw.column_names}
            quarantine_rows.append(
                {
                    "file": source,
                    "row_number": int(numbers[i]),
                    "reason": reasons[(source, int(numbers[i]))],
                    "original": json.dumps(original, ensure_ascii=False),
                }
            )
        report.accepted = int((~bad).sum())
        report.quarantined = report.read - report.accepted
    accepted = (
        contract.conform(pa.concat_tables(accepted_parts)) if accepted_parts else contract.empty()
    )
    quarantine = pa.Table.from_pylist(quarantine_rows, schema=QUARANTINE_SCHEMA)
    if quarantine.num_rows:
        quarantine = quarantine.sort_by([("file", "ascending"), ("row_number", "ascending")])
    result = ImportResult(accepted, quarantine, error_table, reports)
    result.check_invariant()
    return result


def _reasons(errors: pa.Table) -> dict[tuple[str, int], str]:
    out: dict[tuple[str, int], list[str]] = {}
    for f, r, m in zip(
        errors["file"].to_pylist(),
        errors["row_number"].to_pylist(),
        errors["message"].to_pylist(),
        strict=True,
    ):
        out.setdefault((f, r), []).append(m)
    return {k: "；".join(v) for k, v in out.items()}


def _duplicate_key_errors(
    parts: list[tuple[str, Validated]], contract: TableContract
) -> list[pa.Table]:
    """Second and later rows with an already-seen key are errors naming the first row."""
    if not contract.key or not parts:
        return []
    key = contract.key[0]
    ids = pa.chunked_array([v.table.column(key) for _, v in parts]).to_numpy(zero_copy_only=False)
    files = np.concatenate([[s] * v.table.num_rows for s, v in parts]) if parts else np.array([])
    rows = np.concatenate([v.row_numbers.to_numpy() for _, v in parts])
    present = np.array([i is not None for i in ids])
    if not present.any():
        return []
    ids_s = np.where(present, ids, "").astype(str)
    _, first, inverse = np.unique(ids_s, return_index=True, return_inverse=True)
    dup = present & (np.arange(len(ids_s)) != first[inverse])
    idx = np.flatnonzero(dup)
    if len(idx) == 0:
        return []
    f0 = first[inverse[idx]]
    label = contract.column(key).label
    messages = [f"{label}：与 {files[j]} 第 {rows[j]} 行重复" for j in f0]
    return [
        pa.table(
            {
                "file": pa.array(files[idx].tolist(), pa.string()),
                "row_number": pa.array(rows[idx], pa.int64()),
                "field": pa.array([key] * len(idx), pa.string()),
                "value": pa.array(ids_s[idx].tolist(), pa.string()),
                "message": pa.array(messages, pa.string()),
            },
            schema=ERROR_SCHEMA,
        )
    ]


def read_cases(
    paths: Sequence[str | Path], encoding: str | None = None, sheet: str | None = None
) -> ImportResult:
    """Import settlement-list files (CSV/Excel/Parquet) into the `cases` contract."""
    return import_table(paths, CASES, encoding, sheet)


def read_hospitals(
    paths: Sequence[str | Path], encoding: str | None = None, sheet: str | None = None
) -> ImportResult:
    return import_table(paths, HOSPITALS, encoding, sheet)


ERROR_HEADERS = {
    "file": "文件",
    "row_number": "行号",
    "field": "字段",
    "value": "值",
    "message": "错误说明",
}


def write_outputs(result: ImportResult, out: Path, name: str) -> dict[str, Path]:
    """DIR/<name>.parquet, DIR/quarantine.csv (original values + reason), DIR/errors.csv."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "accepted": out / f"{name}.parquet",
        "quarantine": out / "quarantine.csv",
        "errors": out / "errors.csv",
    }
    pq.write_table(result.accepted, paths["accepted"])
    originals = [json.loads(o) for o in result.quarantine["original"].to_pylist()]
    headers: list[str] = []
    for o in originals:
        headers += [h for h in o if h not in headers]
    with paths["quarantine"].open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["文件", "原始行号", "隔离原因", *headers])
        for row, original in zip(result.quarantine.to_pylist(), originals, strict=True):
            w.writerow(
                [
                    row["file"],
                    row["row_number"],
                    row["reason"],
                    *[original.get(h) or "" for h in headers],
                ]
            )
    with paths["errors"].open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(ERROR_HEADERS.values()))
        for row in result.errors.sort_by(
            [("file", "ascending"), ("row_number", "ascending")]
        ).to_pylist():
            w.writerow([row[k] if row[k] is not None else "" for k in ERROR_HEADERS])

    return paths
