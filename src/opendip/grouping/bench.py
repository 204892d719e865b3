"""Bench stage: group the current year (batch); also time the single-case path and, for
comparison, a naive per-case Python loop that scans the directory for every case."""

from __future__ import annotations

import json
import time
from typing import Any

import pyarrow.parquet as pq

from opendip.bench import BenchContext, StageResult
from opendip.codes import demo_code_tables, diagnosis_subcategory
from opendip.engine import connect
from opendip.grouping.single import GroupingIndex, group_case
from opendip.grouping.summary import grouping_summary
from opendip.pipeline import group_checked
from opendip.policy import load_policy

SINGLE_SAMPLE = 20_000
NAIVE_SAMPLE = 1_000


def naive_group(case: dict[str, Any], rows: list[dict[str, Any]]) -> str | None:
    """The obvious loop (no index): scan every directory row for each case. Timing only."""
    dx = diagnosis_subcategory(case["main_diagnosis"])
    procs = {case.get("main_procedure"), *(case.get("other_procedures") or [])} - {None}
    best = None
    for r in rows:
        if r["group_type"] in ("core", "basic") and r["diagnosis_key"] == dx:
            listed = {p for p in (r["procedure_key"] or "").split("+") if p}
            if listed <= procs and (best is None or len(listed) > best[0]):
                best = (len(listed), r["group_code"])
    return best[1] if best else None


def _group_previous_year(ctx: BenchContext, con: Any, codes: Any, policy: Any) -> str:
    """Last year's settlement lists grouped with this year's directory (its own QC applied),
    written as `grouped_<year-1>.parquet` beside them: the reports' and the dashboard's
    year-on-year figures (per-group cost change, basic-group cases by level) read it."""
    from opendip.pipeline import quality_control

    history = list(ctx.artifacts.get("history") or [])
    if not history:
        return ""
    year = policy.year - 1
    path = history[-1]
    if path.name != f"cases_{year}.parquet":
        return ""
    cases = con.read_parquet(str(path))
    qc = quality_control(con, cases, codes, policy, ctx.policy_path)
    grouped = group_checked(
        con, cases, con.read_parquet(str(ctx.artifacts["directory"])), codes, policy, qc.case_status
    )
    out = ctx.workdir / f"grouped_{year}.parquet"
    pq.write_table(grouped, out)
    ctx.artifacts["previous_grouped"] = out
    return f"；上年（{year}）{grouped.num_rows:,} 例同目录入组（同比用）"


def run(ctx: BenchContext) -> StageResult:
    if "directory" not in ctx.artifacts or "cases" not in ctx.artifacts:
        return StageResult(0, "无目录或病例，跳过")
    policy = load_policy(ctx.policy_path)
    codes = ctx.artifacts.get("codes") or demo_code_tables()
    con = connect()
    status = ctx.artifacts.get("case_status")
    start = time.perf_counter()
    grouped = group_checked(
        con,
        con.read_parquet(str(ctx.artifacts["cases"])),
        con.read_parquet(str(ctx.artifacts["directory"])),
        codes,
        policy,
        con.read_parquet(str(status)) if status else None,
    )
    batch_seconds = time.perf_counter() - start
    out = ctx.workdir / "grouped.parquet"
    pq.write_table(grouped, out)
    ctx.artifacts["grouped"] = out
    summary = grouping_summary(grouped)
    ctx.artifacts["grouping_summary"] = summary
    previous = _group_previous_year(ctx, con, codes, policy)

    # The single-case path on a sample (explanations included), and the naive loop.
    directory = pq.read_table(ctx.artifacts["directory"])
    index = GroupingIndex.build(directory, policy, codes)
    sample = pq.read_table(ctx.artifacts["cases"]).slice(0, SINGLE_SAMPLE).to_pylist()
    start = time.perf_counter()
    for case in sample:
        group_case(case, index)
    single_rate = len(sample) / (time.perf_counter() - start) if sample else 0.0
    rows = directory.to_pylist()
    naive = sample[:NAIVE_SAMPLE]
    start = time.perf_counter()
    for case in naive:
        naive_group(case, rows)
    naive_rate = len(naive) / (time.perf_counter() - start) if naive else 0.0
    batch_rate = grouped.num_rows / batch_seconds if batch_seconds else 0.0
    timings = {
        "batch_seconds": round(batch_seconds, 3),
        "batch_cases_per_second": round(batch_rate),
        "single_cases_per_second": round(single_rate),
        "naive_loop_cases_per_second": round(naive_rate),
    }
    ctx.artifacts["grouping_timings"] = timings
    (ctx.workdir / "grouping.summary.json").write_text(
        json.dumps(summary | timings, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return StageResult(
        grouped.num_rows,
        f"入组率 {summary['grouping_rate']:.2%}（质控通过 {summary['grouping_rate_qc_clean']:.2%}）；"
        f"批量 {batch_rate:,.0f} 例/秒（{batch_seconds:.2f} 秒）；"
        f"单病例（含解释）{single_rate:,.0f} 例/秒；朴素逐例循环 {naive_rate:,.0f} 例/秒"
        + previous,
    )
