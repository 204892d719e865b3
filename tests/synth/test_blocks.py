"""A year generated in blocks (issue 16 §5): every block has its own random stream, case
numbers and patients, is written as one Parquet row group, and the year's anomalies keep
their counts and links across block boundaries. Tiny blocks (1 000) stand in for the
250 000 of a province-sized run; the memory benchmark is in docs/benchmarks.md."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from opendip.cli.main import app
from opendip.contract import CASES
from opendip.synth import QC_LABELS, Rates, SynthError, generate_region
from opendip.synth.anomalies import quota, split_pairs
from opendip.synth.patients import (
    BLOCK_FRESH_ROWS,
    BLOCK_FRESH_YEARS,
    BLOCK_KEY_BASE,
    BLOCK_KEY_SPAN,
    FRESH_KEY_BASE,
    FRESH_ROWS_PER_YEAR,
    MAX_BLOCKS,
    block_key_offset,
    fresh_key_base,
)
from opendip.synth.region import _case_ids, block_rng, block_sizes

BLOCK = 1_000
SIZES = {2025: 2_600, 2026: 4_500}  # 3 blocks of 867/867/866, then 5 blocks of 900


def _generate(out: Path, seed: int = 5, block_cases: int = BLOCK) -> dict[str, object]:
    return generate_region(
        out,
        hospitals=8,
        cases_per_year=4_500,
        years=tuple(SIZES),
        seed=seed,
        block_cases=block_cases,
        cases_for_year=SIZES.__getitem__,
    )


@pytest.fixture(scope="module")
def blocked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("blocked")
    _generate(out)
    return out


def _cases(region: Path, year: int) -> pa.Table:
    return pq.read_table(region / f"cases_{year}.parquet")


def _block_of(case_ids: list[str], year: int) -> np.ndarray:
    """The block a case number belongs to: block b holds numbers sum(sizes[:b]) + 1 …"""
    numbers = np.array([int(c[5:]) for c in case_ids])
    ends = np.cumsum(block_sizes(SIZES[year], BLOCK))
    return np.searchsorted(ends, numbers - 1, side="right")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_block_sizes_hand_computed() -> None:
    assert block_sizes(4_500, 1_000) == [900] * 5
    assert block_sizes(2_600, 1_000) == [867, 867, 866]
    assert block_sizes(1_000, 1_000) == [1_000]
    assert block_sizes(1_001, 1_000) == [501, 500]
    assert block_sizes(10_000_000, 250_000) == [250_000] * 40
    assert block_sizes(20_000) == [20_000]  # default 250 000: small regions are one block


@given(st.integers(1, 10**9), st.integers(1_000, 1_000_000))
def test_block_sizes_cover_the_year_evenly(cases: int, block: int) -> None:
    sizes = block_sizes(cases, block)
    assert sum(sizes) == cases
    assert len(sizes) == -(-cases // block)
    assert max(sizes) <= block and max(sizes) - min(sizes) <= 1


@given(st.integers(1, 10**8), st.integers(1_000, 1_000_000), st.floats(0, 0.5))
def test_block_quotas_add_up_to_the_years(cases: int, block: int, rate: float) -> None:
    starts = np.cumsum([0, *block_sizes(cases, block)])
    rates = Rates(split_admission=rate)
    assert sum(quota(rate, int(b - a), int(a)) for a, b in itertools.pairwise(starts)) == int(
        cases * rate
    )
    assert sum(
        split_pairs(int(b - a), rates, int(a)) for a, b in itertools.pairwise(starts)
    ) == split_pairs(cases, rates)


def test_patient_key_ranges_never_overlap() -> None:
    # block 0: the keys a one-block year always had (fresh keys up to year slot 2**20 - 1)
    assert block_key_offset(0) == 0
    assert FRESH_KEY_BASE + (1 << 20) * FRESH_ROWS_PER_YEAR <= BLOCK_KEY_BASE
    assert fresh_key_base(2026) == (FRESH_KEY_BASE + 2026 * FRESH_ROWS_PER_YEAR, 1 << 23)
    # block b ≥ 1: a natural or fresh local key below the span, added to the block's base
    assert block_key_offset(1) == 1 << 44
    assert block_key_offset(3) == (1 << 44) + 2 * (1 << 28)
    assert fresh_key_base(2026, 3) == (FRESH_KEY_BASE + (2026 % 128) * (1 << 20), 1 << 20)
    assert FRESH_KEY_BASE + BLOCK_FRESH_YEARS * BLOCK_FRESH_ROWS <= BLOCK_KEY_SPAN
    # the last block still fits the close-stay sort key (key << 17 in 64 bits)
    assert block_key_offset(MAX_BLOCKS - 1) + BLOCK_KEY_SPAN <= 1 << 47
    with pytest.raises(ValueError, match="block"):
        block_key_offset(MAX_BLOCKS)


def test_block_streams_are_independent_and_block_0_is_the_old_one() -> None:
    assert block_rng(5, 2026, 0).random() == np.random.default_rng([5, 2026]).random()
    assert block_rng(5, 2026, 0, 22).random() == np.random.default_rng([5, 2026, 22]).random()
    draws = {block_rng(5, 2026, b, *s).random() for b in range(4) for s in ((), (22,))}
    draws |= {block_rng(5, 2025, b).random() for b in range(4)}
    assert len(draws) == 12


def test_a_year_larger_than_a_block_is_written_block_by_block(blocked: Path) -> None:
    for year, size in SIZES.items():
        parquet = pq.ParquetFile(blocked / f"cases_{year}.parquet")
        assert parquet.schema_arrow == CASES.schema
        groups = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
        assert groups == block_sizes(size, BLOCK)
        for i in range(parquet.num_row_groups):
            block = parquet.read_row_group(i, columns=["case_id", "discharge_date"])
            assert set(_block_of(block["case_id"].to_pylist(), year)) == {i}
            dates = block["discharge_date"].to_pylist()
            assert dates == sorted(dates)  # sorted within its block
    manifest = _generate_manifest(blocked)
    assert manifest["rows"] == {"2025": 2_600, "2026": 4_500}
    assert manifest["block_cases"] == BLOCK
    assert {p.name for p in blocked.iterdir()} == {
        "hospitals.parquet",
        "cases_2025.parquet",
        "cases_2026.parquet",
        "labels.parquet",
        "manifest.json",
    }  # the late stays kept between years are gone


def _generate_manifest(region: Path) -> dict:
    import json

    return json.loads((region / "manifest.json").read_text(encoding="utf-8"))


def test_case_ids_unique_across_blocks_except_labelled_duplicates(blocked: Path) -> None:
    labels = pq.read_table(blocked / "labels.parquet")
    injected = set(
        labels.filter(pc.equal(labels["label"], "qc_duplicate_case_id"))["case_id"].to_pylist()
    )
    found = 0
    for year, size in SIZES.items():
        ids = _cases(blocked, year)["case_id"].to_pylist()
        assert all(len(c) == 13 for c in ids)  # 'C2026' + 8 digits
        counts = Counter(ids)
        duplicated = {c for c, k in counts.items() if k > 1}
        assert duplicated <= injected
        # the year's numbers 1…size, each once, but for those a duplicate row replaced
        numbers = {int(c[5:]) for c in ids}
        assert numbers <= set(range(1, size + 1))
        assert len(numbers) == size - sum(k - 1 for k in counts.values())
        blocks = _block_of(ids, year)
        position = defaultdict(list)
        for i, c in enumerate(ids):
            position[c].append(i)
        ends = np.cumsum(block_sizes(size, BLOCK))
        for c in duplicated:
            rows = np.array(position[c])
            assert len(set(np.searchsorted(ends, rows, side="right"))) == 1  # same row group
            assert set(blocks[rows]) == {np.searchsorted(ends, rows[0], side="right")}
        found += len(duplicated)
    assert found >= 5
    # labels in year then case order, one file for all blocks
    ids = labels["case_id"].to_pylist()
    assert ids == sorted(ids)


def test_patients_belong_to_one_block_and_return_across_years(blocked: Path) -> None:
    where: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for year in SIZES:
        cases = _cases(blocked, year)
        ids = cases["patient_id"].to_pylist()
        for pid, block in zip(ids, _block_of(cases["case_id"].to_pylist(), year), strict=True):
            where[pid].add((year, int(block)))
    assert all(len({b for _, b in places}) == 1 for places in where.values())
    returning = [p for p, places in where.items() if len({y for y, _ in places}) > 1]
    assert returning  # the same block of the next year is the same population
    stays = Counter(_cases(blocked, 2026)["patient_id"].to_pylist())
    assert max(stays.values()) >= 3  # e.g. chemotherapy cycles, within a block


def test_anomalies_keep_the_years_counts_and_links_across_blocks(blocked: Path) -> None:
    labels = pq.read_table(blocked / "labels.parquet").to_pylist()
    rates = Rates()
    for year, size in SIZES.items():
        mine = [r for r in labels if r["case_id"].startswith(f"C{year}")]
        counts = Counter(r["label"] for r in mine)
        # exactly what the same year made in one block would have
        assert counts["split_admission"] == 2 * split_pairs(size, rates)
        assert counts["overlong_stay"] == int(size * rates.overlong_stay)
        assert counts["low_standard_admission"] == int(size * rates.low_standard_admission)
        assert sum(counts[k] for k in QC_LABELS) == int(size * rates.qc_error)
        assert counts["qc_duplicate_case_id"] > 0
        rows = {r["case_id"]: r for r in _cases(blocked, year).to_pylist()}
        split = [r for r in mine if r["label"] == "split_admission"]
        for lab in split:
            other = lab["detail"].split("关联病例 ")[1].rstrip("）")
            a, b = rows[lab["case_id"]], rows[other]
            assert a["patient_id"] == b["patient_id"]
            assert _block_of([lab["case_id"]], year) == _block_of([other], year)
            first, second = sorted((a, b), key=lambda r: r["admit_date"])
            assert 1 <= (second["admit_date"] - first["discharge_date"]).days <= 14
    blocks_2026 = {
        int(_block_of([r["case_id"]], 2026)[0]) for r in labels if "C2026" in r["case_id"]
    }
    assert blocks_2026 == set(range(5))  # every block got its share


def test_no_unlabelled_readmission_within_or_across_blocks_and_years(blocked: Path) -> None:
    labels = pq.read_table(blocked / "labels.parquet")
    split = set(labels.filter(pc.equal(labels["label"], "split_admission"))["case_id"].to_pylist())
    qc = set(labels.filter(pc.starts_with(labels["label"], "qc_"))["case_id"].to_pylist())
    cases = pa.concat_tables(_cases(blocked, y) for y in SIZES).sort_by(
        [("patient_id", "ascending"), ("admit_date", "ascending")]
    )
    columns = ["case_id", "patient_id", "admit_date", "discharge_date", "main_diagnosis"]
    rows = [r for r in cases.select(columns).to_pylist() if r["case_id"] not in qc]
    close = 0
    for a, b in itertools.pairwise(rows):
        if a["patient_id"] != b["patient_id"] or (b["admit_date"] - a["discharge_date"]).days > 15:
            continue
        close += 1
        planned = a["main_diagnosis"] == b["main_diagnosis"] == "Z51.100"
        assert planned or (a["case_id"] in split and b["case_id"] in split), (a, b)
    assert close >= len(split) // 2


def test_deterministic_per_seed_and_block_size(tmp_path: Path, blocked: Path) -> None:
    _generate(tmp_path / "same")
    _generate(tmp_path / "seed", seed=6)
    _generate(tmp_path / "size", block_cases=2_000)
    files = ("cases_2025.parquet", "cases_2026.parquet", "labels.parquet", "manifest.json")
    assert [_sha(tmp_path / "same" / f) for f in files] == [_sha(blocked / f) for f in files]
    for other in ("seed", "size"):
        assert _sha(tmp_path / other / "cases_2026.parquet") != _sha(blocked / "cases_2026.parquet")


def test_a_year_of_one_block_does_not_depend_on_the_block_size(tmp_path: Path) -> None:
    for name, block in (("default", None), ("exact", 2_000), ("small", 1_000)):
        extra = {"block_cases": block} if block else {}
        generate_region(
            tmp_path / name, hospitals=8, cases_per_year=2_000, years=(2026,), seed=3, **extra
        )
    files = ("hospitals.parquet", "cases_2026.parquet", "labels.parquet", "manifest.json")
    default = [_sha(tmp_path / "default" / f) for f in files]
    assert [_sha(tmp_path / "exact" / f) for f in files] == default
    assert [_sha(tmp_path / "small" / f) for f in files] != default
    manifest = _generate_manifest(tmp_path / "default")
    assert "block_cases" not in manifest  # one block: the region is what it always was


def test_case_numbers_widen_for_a_year_of_100_million() -> None:
    ids = _case_ids(2026, np.array([1, 99_999_999, 100_000_000]), 9)
    assert ids.to_pylist() == ["C2026000000001", "C2026099999999", "C2026100000000"]
    assert _case_ids(2026, np.array([7]), 8).to_pylist() == ["C202600000007"]


def test_bad_block_sizes_are_refused(tmp_path: Path) -> None:
    for block in (999, 1_000_001):
        with pytest.raises(SynthError, match="每块病例数应在 1,000–1,000,000 之间"):
            generate_region(
                tmp_path, hospitals=8, cases_per_year=2_000, years=(2026,), **{"block_cases": block}
            )
    assert not list(tmp_path.iterdir())
    result = CliRunner().invoke(
        app, ["synth", "--block-cases", "10", "--out", str(tmp_path / "cli")]
    )
    assert result.exit_code == 2 and "block-cases" in result.output


def test_cli_synth_in_blocks(tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["synth", "--hospitals", "8", "--cases-per-year", "2500", "--years", "2026"]
    result = CliRunner().invoke(app, [*args, "--block-cases", "1000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "每块病例数（逐块生成）" in result.output and "1,000" in result.output
    parquet = pq.ParquetFile(out / "cases_2026.parquet")
    assert [parquet.metadata.row_group(i).num_rows for i in range(3)] == [834, 833, 833]


def test_each_block_sees_its_own_block_of_the_previous_year(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Close stays are kept apart across the new year within a block's population: block b
    gets block b's December stays of the year before (none if that year had fewer blocks)."""
    import opendip.synth.region as region

    seen: list[tuple[int, int, int | None, int]] = []
    original = region.separate_close_stays

    def spy(frame, year, pairs, window, previous=None, max_rounds=8, block=0):
        keys = None if previous is None else previous["patient_key"]
        seen.append((year, block, None if keys is None else len(keys), len(frame["patient_key"])))
        if keys is not None:  # the previous year's same block: its own local key range
            assert (previous["discharge_date"] >= np.datetime64(f"{year - 1}-12-01")).all()
        return original(frame, year, pairs, window, previous, max_rounds, block=block)

    monkeypatch.setattr(region, "separate_close_stays", spy)
    _generate(tmp_path)
    assert [(y, b) for y, b, _, _ in seen] == [(2025, b) for b in range(3)] + [
        (2026, b) for b in range(5)
    ]
    assert all(p is None for y, _, p, _ in seen if y == 2025)
    before = [p for y, b, p, _ in seen if y == 2026]
    assert before[3:] == [None, None]  # 2025 had three blocks
    # about a twelfth of an 867-case block was discharged in December
    assert all(p is not None and 30 < p < 150 for p in before[:3])


def test_labels_stream_in_row_groups_past_the_buffer(
    tmp_path: Path, blocked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A province's labels do not wait in memory: past LABEL_BUFFER_ROWS they are written in
    row groups as they come, with the same rows in the same order."""
    import opendip.synth.region as region

    monkeypatch.setattr(region, "LABEL_BUFFER_ROWS", 100)
    manifest = _generate(tmp_path)
    streamed = pq.ParquetFile(tmp_path / "labels.parquet")
    assert streamed.num_row_groups > 3
    assert streamed.schema_arrow == pq.ParquetFile(blocked / "labels.parquet").schema_arrow
    assert streamed.read().equals(pq.read_table(blocked / "labels.parquet"))
    assert manifest["labels"] == _generate_manifest(blocked)["labels"]
    assert (tmp_path / "cases_2026.parquet").read_bytes() == (
        blocked / "cases_2026.parquet"
    ).read_bytes()
