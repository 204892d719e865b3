"""Bench stage: generate hospitals, three history years (n/2 each) and the current year (n);
for a region of other than 100 000 cases a year, the demo policy with budgets sized to it."""

from __future__ import annotations

from opendip.bench import BenchContext, StageResult
from opendip.codes import demo_code_tables
from opendip.policy import demo_policy_path
from opendip.synth.policy import DEMO_CASES_PER_YEAR, scaled_demo_policy
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
    if ctx.policy_path == demo_policy_path() and ctx.n_cases != DEMO_CASES_PER_YEAR:
        # The demo budgets are for 100 000 cases a year: size them to this region.
        ctx.policy_path = scaled_demo_policy(ctx.n_cases, out / "policy.yaml")
    rows = sum(int(v) for v in manifest["rows"].values())  # type: ignore[union-attr]
    return StageResult(rows, f"当年 {ctx.n_cases:,} 例 + 历史 3 年各 {half:,} 例")
