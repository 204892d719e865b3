"""Bench stage: generate hospitals, three history years (n/2 each) and the current year (n)."""

from __future__ import annotations

from opendip.bench import BenchContext, StageResult
from opendip.codes import demo_code_tables
from opendip.synth.region import generate_region

HISTORY = (2023, 2024, 2025)
CURRENT = 2026


def run(ctx: BenchContext) -> StageResult:
    out = ctx.workdir
    half = max(ctx.n_cases // 2, 1)
    manifest = generate_region(
        out,
        cases_per_year=ctx.n_cases,
        years=(*HISTORY, CURRENT),
        seed=ctx.seed,
        cases_for_year=lambda y: ctx.n_cases if y == CURRENT else half,
    )
    ctx.artifacts["hospitals"] = out / "hospitals.parquet"
    ctx.artifacts["history"] = [out / f"cases_{y}.parquet" for y in HISTORY]
    ctx.artifacts["cases"] = out / f"cases_{CURRENT}.parquet"
    ctx.artifacts["labels"] = out / "labels.parquet"
    ctx.artifacts["codes"] = demo_code_tables()
    rows = sum(int(v) for v in manifest["rows"].values())  # type: ignore[union-attr]
    return StageResult(rows, f"当年 {ctx.n_cases:,} 例 + 历史 3 年各 {half:,} 例")
