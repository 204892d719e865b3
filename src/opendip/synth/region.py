"""Generate a whole synthetic region: hospitals, cases per year, ground-truth labels."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from opendip import __version__
from opendip.codes import CodeTables, demo_code_tables
from opendip.contract import CASES, LABELS
from opendip.synth.anomalies import Labels, Rates, inject_behaviours, inject_qc_errors
from opendip.synth.cases import generate_clean
from opendip.synth.catalogue import CHAPTER_DEPARTMENT, FORCED, build_catalogue
from opendip.synth.hospitals import make_hospitals

DEPARTMENTS = sorted({*CHAPTER_DEPARTMENT.values(), *(f[4] for f in FORCED), "内科"})
_STRING_COLUMNS = ("department", "discharge_method", "admission_route", "sex", "insurance_type")
_NULL_IF_NEGATIVE = (
    "age_days",
    "newborn_birth_weight_g",
    "newborn_admit_weight_g",
    "los_days",
    "fund_paid",
)


def generate_region(
    out: str | Path,
    hospitals: int = 40,
    cases_per_year: int = 200_000,
    years: tuple[int, ...] = (2023, 2024, 2025, 2026),
    seed: int = 7,
    rates: Rates | None = None,
    codes: CodeTables | None = None,
    cases_for_year: Callable[[int], int] | None = None,
    on_year: Callable[[int], None] | None = None,
) -> dict[str, object]:
    """Write hospitals.parquet, cases_<year>.parquet, labels.parquet and manifest.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rates = rates or Rates()
    codes = codes or demo_code_tables()
    rng = np.random.default_rng(seed)
    catalogue = build_catalogue(codes, rng)
    hosp_table = make_hospitals(hospitals, rng)
    pq.write_table(hosp_table, out / "hospitals.parquet")
    hosp = {
        k: np.array(hosp_table[k].to_pylist()) for k in ("hospital_id", "level", "county", "beds")
    }

    label_tables = []
    counts: dict[str, int] = {}
    for year in years:
        n = cases_for_year(year) if cases_for_year else cases_per_year
        year_rng = np.random.default_rng([seed, year])
        frame = generate_clean(year, n, hosp, catalogue, year_rng)
        frame, labels = inject_behaviours(
            frame, year, hosp["hospital_id"], catalogue, rates, year_rng
        )
        for name in _STRING_COLUMNS:
            frame[name] = frame[name].astype(object)
        duplicates = inject_qc_errors(frame, labels, rates.qc_error, year_rng)
        cases, label_table = _to_arrow(year, frame, labels, duplicates, hosp["hospital_id"])
        pq.write_table(cases, out / f"cases_{year}.parquet")
        label_tables.append(label_table)
        counts[str(year)] = cases.num_rows
        if on_year:
            on_year(year)
    labels_all = pa.concat_tables(label_tables) if label_tables else LABELS.empty()
    pq.write_table(labels_all, out / "labels.parquet")
    manifest = {
        "generator": f"opendip {__version__}",
        "seed": seed,
        "hospitals": hospitals,
        "cases_per_year": cases_per_year,
        "years": list(years),
        "rows": counts,
        "rates": asdict(rates),
        "labels": {
            k: int(v)
            for k, v in zip(
                *np.unique(labels_all["label"].to_numpy(zero_copy_only=False), return_counts=True),
                strict=True,
            )
        },
        "combinations": catalogue.size,
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return manifest


def _to_arrow(
    year: int,
    frame: dict[str, np.ndarray],
    labels: Labels,
    duplicates: list[tuple[int, int]],
    hospital_ids: np.ndarray,
) -> tuple[pa.Table, pa.Table]:
    n = len(frame["total_cost"])
    order = np.lexsort((frame["hospital_idx"], frame["discharge_date"]))
    position = np.empty(n, np.int64)
    position[order] = np.arange(n)
    ids = np.char.add(f"C{year}", np.char.zfill(np.arange(1, n + 1).astype(str), 8)).astype(object)
    row_id = ids[position]  # case id of original row r
    for dup, original in duplicates:
        row_id[dup] = row_id[original]
    sorted_frame = {k: v[order] for k, v in frame.items()}
    case_id = row_id[order]

    hid = hospital_ids[sorted_frame["hospital_idx"]]
    dept = sorted_frame["department"]
    slot = sorted_frame["doctor_slot"]
    dept_code = {d: f"D{i:02d}" for i, d in enumerate(DEPARTMENTS)}
    doctor = np.array(
        [
            None if s < 0 or d is None else f"{h}-{dept_code.get(d, 'D99')}-{s:02d}"
            for h, d, s in zip(hid, dept, slot, strict=True)
        ],
        dtype=object,
    )
    columns: dict[str, pa.Array] = {
        "case_id": pa.array(case_id, pa.string()),
        "hospital_id": pa.array(hid, pa.string()),
        "doctor_id": pa.array(doctor, pa.string()),
        "settle_month": pa.array(
            np.datetime_as_string(sorted_frame["discharge_date"], unit="M"), pa.string()
        ),
    }
    for name in CASES.names:
        if name in columns:
            continue
        col = CASES.column(name)
        values = sorted_frame.get(name)
        if values is None:
            continue
        if name in _NULL_IF_NEGATIVE:
            columns[name] = pa.array(values, col.type, mask=values < 0)
        elif pa.types.is_list(col.type):
            columns[name] = pa.array(list(values), col.type)
        elif pa.types.is_date(col.type):
            columns[name] = pa.array(values.astype("datetime64[D]"), col.type)
        else:
            columns[name] = pa.array(values, col.type)
    cases = CASES.conform(pa.table(columns))

    partner_id = [row_id[p] if p >= 0 else None for p in labels.partner]
    details = [
        d if p is None else f"{d}（关联病例 {p}）"
        for d, p in zip(labels.detail, partner_id, strict=True)
    ]
    label_table = pa.table(
        {
            "case_id": pa.array([row_id[r] for r in labels.row], pa.string()),
            "label": pa.array(labels.label, pa.string()),
            "detail": pa.array(details, pa.string()),
        }
    )
    return cases, LABELS.conform(
        label_table.sort_by([("case_id", "ascending"), ("label", "ascending")])
    )
