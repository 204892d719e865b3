"""Generate a whole synthetic region: hospitals, cases per year, ground-truth labels."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opendip import __version__
from opendip.codes import CodeTables, demo_code_tables
from opendip.contract import CASES, LABELS
from opendip.engine import write_parquet
from opendip.synth.anomalies import (
    Labels,
    Rates,
    inject_behaviours,
    inject_qc_errors,
    split_pairs,
)
from opendip.synth.cases import add_tcm_treatments, generate_clean
from opendip.synth.catalogue import CHAPTER_DEPARTMENT, FORCED, build_catalogue
from opendip.synth.hospitals import make_hospitals
from opendip.synth.patients import STAY_COLUMNS, patient_ids, separate_close_stays

DEPARTMENTS = sorted({*CHAPTER_DEPARTMENT.values(), *(f[4] for f in FORCED), "内科"})
_STRING_COLUMNS = ("department", "discharge_method", "admission_route", "sex", "insurance_type")
_NULL_IF_NEGATIVE = (
    "age_days",
    "newborn_birth_weight_g",
    "newborn_admit_weight_g",
    "los_days",
    "fund_paid",
)


MIN_HOSPITALS = 4
MIN_CASES = 100


class SynthError(ValueError):
    """Generator arguments that cannot make a region (message in Chinese)."""


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
    """Write hospitals.parquet, cases_<year>.parquet, labels.parquet and manifest.json.

    Deterministic: the same arguments give byte-identical files. Raises `SynthError` for
    arguments no region can be made from.
    """
    if hospitals < MIN_HOSPITALS:
        raise SynthError(f"医疗机构数至少为 {MIN_HOSPITALS}（每个等级至少一家），收到 {hospitals}")
    if not years:
        raise SynthError("至少需要一个年份")
    if len(set(years)) != len(years):
        raise SynthError(f"年份重复：{list(years)}")
    sizes = {y: cases_for_year(y) if cases_for_year else cases_per_year for y in years}
    if min(sizes.values()) < MIN_CASES:
        raise SynthError(f"每年病例数至少为 {MIN_CASES}，收到 {min(sizes.values())}")
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
    previous: dict[str, np.ndarray] | None = None  # last month's stays of the year before
    for year in years:
        n = sizes[year]
        year_rng = np.random.default_rng([seed, year])
        frame = generate_clean(year, n - split_pairs(n, rates), hosp, catalogue, year_rng)
        if year == max(years):  # 中医优势病种 treatments in the current year only
            add_tcm_treatments(frame, np.random.default_rng([seed, year, 22]))
        frame, labels = inject_behaviours(
            frame, year, hosp["hospital_id"], catalogue, rates, year_rng, target=n
        )
        split = np.array(labels.label) == "split_admission"
        pairs = np.column_stack([np.array(labels.row)[split], np.array(labels.partner)[split]])
        separate_close_stays(
            frame, year, pairs.astype(np.int64), rates.readmission_window_days, previous
        )
        late = frame["discharge_date"] >= np.datetime64(f"{year}-12-01")
        previous = {c: frame[c][late] for c in STAY_COLUMNS}
        for name in _STRING_COLUMNS:
            frame[name] = frame[name].astype(object)
        frame["doctor_department"] = frame["department"].copy()
        duplicates = inject_qc_errors(frame, labels, rates.qc_error, year_rng)
        cases, label_table = _to_arrow(
            year, frame, labels, duplicates, hosp["hospital_id"], year_rng
        )
        write_parquet(cases, out / f"cases_{year}.parquet")  # row groups: parallel reads
        label_tables.append(label_table)
        counts[str(year)] = cases.num_rows
        if on_year:
            on_year(year)
    labels_all = pa.concat_tables(label_tables) if label_tables else LABELS.empty()
    pq.write_table(labels_all, out / "labels.parquet")
    label_counts = {
        str(k): int(v)
        for k, v in zip(
            *np.unique(labels_all["label"].to_numpy(zero_copy_only=False), return_counts=True),
            strict=True,
        )
    }
    total = sum(counts.values())
    manifest = {
        "generator": f"opendip {__version__}",
        "seed": seed,
        "hospitals": hospitals,
        "cases_per_year": cases_per_year,
        "years": list(years),
        "rows": counts,
        "rates": asdict(rates),
        "labels": label_counts,
        "label_rates": {k: round(v / max(total, 1), 6) for k, v in label_counts.items()},
        "combinations": catalogue.size,
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return manifest


def _doctor_ids(hid: pa.Array, department: np.ndarray, slot: np.ndarray) -> pa.Array:
    """'H001-D03-02': hospital, the doctor's department (its position in DEPARTMENTS, D99 if
    unknown) and a slot; null where the doctor id was left out."""
    position = pc.index_in(pa.array(department, pa.string()), value_set=pa.array(DEPARTMENTS))
    dept = pc.utf8_lpad(pc.cast(position.fill_null(99), pa.string()), 2, "0")
    number = pc.utf8_lpad(pc.cast(pa.array(np.maximum(slot, 0)), pa.string()), 2, "0")
    ids = pc.binary_join_element_wise(hid, "-D", dept, "-", number, "")
    return pc.if_else(pa.array(slot < 0), pa.scalar(None, pa.string()), ids)


def _case_ids(year: int, numbers: np.ndarray) -> pa.Array:
    """'C2026' + 8 digits."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), 8, "0")
    return pc.binary_join_element_wise(f"C{year}", digits, "")


def _to_arrow(
    year: int,
    frame: dict[str, np.ndarray],
    labels: Labels,
    duplicates: tuple[np.ndarray, np.ndarray],
    hospital_ids: np.ndarray,
    rng: np.random.Generator,
) -> tuple[pa.Table, pa.Table]:
    n = len(frame["total_cost"])
    order = np.lexsort((frame["hospital_idx"], frame["discharge_date"]))
    position = np.empty(n, np.int64)
    position[order] = np.arange(n)
    row_number = position + 1  # case number of original row r (file order)
    # A duplicated id reuses the id of a clean row EARLIER in the file: the later row is the
    # labelled duplicate (what a "second occurrence" QC rule flags).
    dups, candidates = duplicates
    if not len(candidates):  # pragma: no cover - a year of ≥ 100 cases always has some
        raise SynthError("没有可供重复清单号引用的正常病例")
    candidates = candidates[np.argsort(position[candidates])]
    earlier = np.searchsorted(position[candidates], position[dups])
    pick = np.floor(rng.random(len(dups)) * np.maximum(earlier, 1)).astype(np.int64)
    row_number[dups] = row_number[candidates[pick]]
    sorted_frame = {k: v[order] for k, v in frame.items()}

    hid = pa.array(hospital_ids[sorted_frame["hospital_idx"]], pa.string())
    columns: dict[str, pa.Array] = {
        "case_id": _case_ids(year, row_number[order]),
        "hospital_id": hid,
        "patient_id": patient_ids(sorted_frame["patient_key"]),
        "doctor_id": _doctor_ids(
            hid, sorted_frame["doctor_department"], sorted_frame["doctor_slot"]
        ),
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

    details = [
        d if p < 0 else f"{d}（关联病例 C{year}{row_number[p]:08d}）"
        for d, p in zip(labels.detail, labels.partner, strict=True)
    ]
    label_table = pa.table(
        {
            "case_id": _case_ids(year, row_number[np.array(labels.row, dtype=np.int64)]),
            "label": pa.array(labels.label, pa.string()),
            "detail": pa.array(details, pa.string()),
        }
    )
    return cases, LABELS.conform(
        label_table.sort_by([("case_id", "ascending"), ("label", "ascending")])
    )
