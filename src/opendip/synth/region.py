"""Generate a whole synthetic region: hospitals, cases per year, ground-truth labels."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
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
from opendip.engine import PARQUET_ROW_GROUP_ROWS
from opendip.synth.anomalies import (
    Labels,
    Rates,
    inject_behaviours,
    inject_qc_errors,
    split_pairs,
)
from opendip.synth.cases import add_tcm_treatments, generate_clean
from opendip.synth.catalogue import CHAPTER_DEPARTMENT, FORCED, Catalogue, build_catalogue
from opendip.synth.hospitals import make_hospitals
from opendip.synth.patients import (
    MAX_BLOCKS,
    STAY_COLUMNS,
    block_key_offset,
    patient_ids,
    separate_close_stays,
)

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
#: A year is generated in blocks of at most this many cases (one at a time in memory, each
#: written as it is made): memory depends on the block size, not on the number of cases.
BLOCK_CASES = 250_000
MIN_BLOCK_CASES = 1_000
MAX_BLOCK_CASES = 1_000_000  # < BLOCK_FRESH_ROWS: a block's fresh patient keys fit its range
#: Labels are buffered up to this many rows, then streamed to labels.parquet.
LABEL_BUFFER_ROWS = 1 << 20


class SynthError(ValueError):
    """Generator arguments that cannot make a region (message in Chinese)."""


def block_sizes(cases: int, block_cases: int = BLOCK_CASES) -> list[int]:
    """A year of `cases` cut into the fewest blocks of at most `block_cases`, as equal as
    possible (the first ones one larger). Block b holds the year's case numbers after
    sum(sizes[:b])."""
    count = -(-cases // block_cases)
    return [cases // count + (i < cases % count) for i in range(count)]


def block_rng(seed: int, year: int, block: int, *stream: int) -> np.random.Generator:
    """The random stream of one block of a year (and of its sub-stream `stream`).

    Block 0 draws from the streams a one-block region always used ([seed, year] and
    [seed, year, 22]); block b ≥ 1 from numpy's independent child stream b of the same
    seed sequence. Each block's draws depend only on (seed, year, block) and the block's
    size, so blocks can be made one after the other in constant memory."""
    entropy = [seed, year, *stream]
    if block == 0:
        return np.random.default_rng(entropy)
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(block,)))


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
    block_cases: int = BLOCK_CASES,
    on_block: Callable[[int, int, int], None] | None = None,
) -> dict[str, object]:
    """Write hospitals.parquet, cases_<year>.parquet, labels.parquet and manifest.json.

    Deterministic: the same arguments give byte-identical files. A year is generated in
    blocks of at most `block_cases` (`block_sizes`), each with its own random stream
    (`block_rng`), case numbers and patients (`opendip.synth.patients.block_key_offset`);
    the features linking stays (split admissions, duplicate ids, close stays, a patient's
    stays across years) are made within a block (and the same block of the previous year),
    and each block is written as one row group as soon as it is made. A year of at most
    `block_cases` is one block: such regions are what they were before blocks existed.
    `on_block(year, block, blocks_in_year)` is called after each block. Raises `SynthError`
    for arguments no region can be made from.
    """
    if hospitals < MIN_HOSPITALS:
        raise SynthError(f"医疗机构数至少为 {MIN_HOSPITALS}（每个等级至少一家），收到 {hospitals}")
    if not years:
        raise SynthError("至少需要一个年份")
    if len(set(years)) != len(years):
        raise SynthError(f"年份重复：{list(years)}")
    if not MIN_BLOCK_CASES <= block_cases <= MAX_BLOCK_CASES:
        raise SynthError(
            f"每块病例数应在 {MIN_BLOCK_CASES:,}–{MAX_BLOCK_CASES:,} 之间，收到 {block_cases:,}"
        )
    sizes = {y: cases_for_year(y) if cases_for_year else cases_per_year for y in years}
    if min(sizes.values()) < MIN_CASES:
        raise SynthError(f"每年病例数至少为 {MIN_CASES}，收到 {min(sizes.values())}")
    most = max(sizes.values())
    if -(-most // block_cases) > MAX_BLOCKS:
        raise SynthError(
            f"每年病例数 {most:,} 按每块 {block_cases:,} 例超过 {MAX_BLOCKS:,} 块；请加大每块病例数"
        )
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

    counts: dict[str, int] = {}
    labels = _LabelSink(out / "labels.parquet")
    with tempfile.TemporaryDirectory(prefix=".synth-", dir=out) as tmp:
        # The previous year's late stays of each block (never more than one block in memory).
        late = _LateStays(Path(tmp))
        for index, year in enumerate(years):
            blocks = block_sizes(sizes[year], block_cases)
            width = max(8, len(str(sizes[year])))
            first = 0
            writer: pq.ParquetWriter | None = None
            try:
                for block, size in enumerate(blocks):
                    previous = late.get(years[index - 1], block) if index else None
                    cases, label_table, stays = _generate_block(
                        year,
                        block,
                        size,
                        first,
                        width,
                        seed,
                        current=year == max(years),
                        hosp=hosp,
                        catalogue=catalogue,
                        rates=rates,
                        previous=previous,
                    )
                    late.put(year, block, stays)
                    if writer is None:
                        writer = pq.ParquetWriter(out / f"cases_{year}.parquet", cases.schema)
                    # Row groups of DuckDB's size: a block is scanned in parallel.
                    writer.write_table(cases, row_group_size=PARQUET_ROW_GROUP_ROWS)
                    labels.add(label_table)
                    first += size
                    del cases, label_table, stays, previous
                    if on_block:
                        on_block(year, block, len(blocks))
            finally:
                if writer is not None:
                    writer.close()
            if index:
                late.drop(years[index - 1])
            counts[str(year)] = first
            if on_year:
                on_year(year)
    label_counts = labels.close()
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
    if max(len(block_sizes(n, block_cases)) for n in sizes.values()) > 1:
        manifest["block_cases"] = block_cases
    (out / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return manifest


def _generate_block(
    year: int,
    block: int,
    n: int,
    first: int,
    width: int,
    seed: int,
    *,
    current: bool,
    hosp: dict[str, np.ndarray],
    catalogue: Catalogue,
    rates: Rates,
    previous: dict[str, np.ndarray] | None,
) -> tuple[pa.Table, pa.Table, dict[str, np.ndarray]]:
    """One block of `n` cases of `year`, numbered after `first`: (cases, labels, the block's
    stays discharged from December on, for the next year's same block)."""
    year_rng = block_rng(seed, year, block)
    frame = generate_clean(year, n - split_pairs(n, rates, first), hosp, catalogue, year_rng)
    if current:  # 中医优势病种 treatments in the current year only
        add_tcm_treatments(frame, block_rng(seed, year, block, 22))
    frame, labels = inject_behaviours(
        frame, year, hosp["hospital_id"], catalogue, rates, year_rng, target=n, before=first
    )
    split = np.array(labels.label) == "split_admission"
    pairs = np.column_stack([np.array(labels.row)[split], np.array(labels.partner)[split]])
    separate_close_stays(
        frame, year, pairs.astype(np.int64), rates.readmission_window_days, previous, block=block
    )
    late = frame["discharge_date"] >= np.datetime64(f"{year}-12-01")
    stays = {c: frame[c][late] for c in STAY_COLUMNS}
    for name in _STRING_COLUMNS:
        frame[name] = frame[name].astype(object)
    frame["doctor_department"] = frame["department"].copy()
    duplicates = inject_qc_errors(frame, labels, rates.qc_error, year_rng, before=first)
    cases, label_table = _to_arrow(
        year,
        frame,
        labels,
        duplicates,
        hosp["hospital_id"],
        year_rng,
        first=first,
        width=width,
        key_offset=block_key_offset(block),
    )
    return cases, label_table, stays


class _LateStays:
    """Each block's late stays of a year, kept on disk until the next year's same block."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, year: int, block: int) -> Path:
        return self.root / f"late_{year}_{block}.npz"

    def put(self, year: int, block: int, stays: dict[str, np.ndarray]) -> None:
        np.savez(self._path(year, block), **stays)

    def get(self, year: int, block: int) -> dict[str, np.ndarray] | None:
        path = self._path(year, block)
        if not path.is_file():
            return None  # the previous year had fewer blocks
        with np.load(path) as saved:
            return {c: saved[c] for c in STAY_COLUMNS}

    def drop(self, year: int) -> None:
        for path in self.root.glob(f"late_{year}_*.npz"):
            path.unlink()


class _LabelSink:
    """labels.parquet written in year and case order: buffered, then streamed in row groups
    once the buffer passes LABEL_BUFFER_ROWS (a small region's file is written in one go,
    as it always was). `close` returns the count of each label, by label."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.buffer: list[pa.Table] = []
        self.rows = 0
        self.writer: pq.ParquetWriter | None = None
        self.counts: Counter[str] = Counter()

    def add(self, table: pa.Table) -> None:
        values, counts = np.unique(
            table["label"].to_numpy(zero_copy_only=False), return_counts=True
        )
        self.counts.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
        self.buffer.append(table)
        self.rows += table.num_rows
        if self.rows >= LABEL_BUFFER_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, LABELS.schema)
        if self.buffer:
            self.writer.write_table(pa.concat_tables(self.buffer))
        self.buffer, self.rows = [], 0

    def close(self) -> dict[str, int]:
        if self.writer is None:
            table = pa.concat_tables(self.buffer) if self.buffer else LABELS.empty()
            pq.write_table(table, self.path)
        else:
            self._flush()
            self.writer.close()
        self.buffer = []
        return {k: int(self.counts[k]) for k in sorted(self.counts)}


def _doctor_ids(hid: pa.Array, department: np.ndarray, slot: np.ndarray) -> pa.Array:
    """'H001-D03-02': hospital, the doctor's department (its position in DEPARTMENTS, D99 if
    unknown) and a slot; null where the doctor id was left out."""
    position = pc.index_in(pa.array(department, pa.string()), value_set=pa.array(DEPARTMENTS))
    dept = pc.utf8_lpad(pc.cast(position.fill_null(99), pa.string()), 2, "0")
    number = pc.utf8_lpad(pc.cast(pa.array(np.maximum(slot, 0)), pa.string()), 2, "0")
    ids = pc.binary_join_element_wise(hid, "-D", dept, "-", number, "")
    return pc.if_else(pa.array(slot < 0), pa.scalar(None, pa.string()), ids)


def _case_ids(year: int, numbers: np.ndarray, width: int = 8) -> pa.Array:
    """'C2026' + 8 digits (`width` digits for a year of 100 M cases or more)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(f"C{year}", digits, "")


def _to_arrow(
    year: int,
    frame: dict[str, np.ndarray],
    labels: Labels,
    duplicates: tuple[np.ndarray, np.ndarray],
    hospital_ids: np.ndarray,
    rng: np.random.Generator,
    first: int = 0,
    width: int = 8,
    key_offset: int = 0,
) -> tuple[pa.Table, pa.Table]:
    """The block as CASES and LABELS tables: rows sorted by discharge date and hospital,
    numbered first + 1, first + 2, … in that order; patient keys shifted by `key_offset`."""
    n = len(frame["total_cost"])
    order = np.lexsort((frame["hospital_idx"], frame["discharge_date"]))
    position = np.empty(n, np.int64)
    position[order] = np.arange(n)
    row_number = position + 1 + first  # case number of original row r (file order)
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
        "case_id": _case_ids(year, row_number[order], width),
        "hospital_id": hid,
        "patient_id": patient_ids(sorted_frame["patient_key"] + np.uint64(key_offset)),
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
        d if p < 0 else f"{d}（关联病例 C{year}{row_number[p]:0{width}d}）"
        for d, p in zip(labels.detail, labels.partner, strict=True)
    ]
    label_table = pa.table(
        {
            "case_id": _case_ids(year, row_number[np.array(labels.row, dtype=np.int64)], width),
            "label": pa.array(labels.label, pa.string()),
            "detail": pa.array(details, pa.string()),
        }
    )
    return cases, LABELS.conform(
        label_table.sort_by([("case_id", "ascending"), ("label", "ascending")])
    )
