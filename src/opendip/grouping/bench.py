"""Bench stage: group the current year (batch), and time the single-case path."""

from __future__ import annotations

import time

import pyarrow.parquet as pq

from opendip.bench import BenchContext, StageResult
from opendip.codes import demo_code_tables
from opendip.engine import connect, table_from_arrow
from opendip.grouping.batch import group_cases
from opendip.grouping.single import GroupingIndex, group_case
from opendip.grouping.summary import grouping_summary
from opendip.policy import load_policy

SINGLE_SAMPLE = 20_000


def run(ctx: BenchContext) -> StageResult:
    if "directory" not in ctx.artifacts or "cases" not in ctx.artifacts:
        return StageResult(0, "无目录或病例，跳过")
    policy = load_policy(ctx.policy_path)
    codes = ctx.artifacts.get("codes") or demo_code_tables()
    con = connect()
    status = ctx.artifacts.get("case_status")
    grouped = group_cases(
        con.read_parquet(str(ctx.artifacts["cases"])),
        con.read_parquet(str(ctx.artifacts["directory"])),
        table_from_arrow(
            con, codes.procedures.select(["code", "procedure_type"]), "procedure_types"
        ),
        policy,
        con.read_parquet(str(status)) if status else None,
    ).to_pyarrow()
    out = ctx.workdir / "grouped.parquet"
    pq.write_table(grouped, out)
    ctx.artifacts["grouped"] = out
    summary = grouping_summary(grouped)
    ctx.artifacts["grouping_summary"] = summary

    # The single-case path on a sample (explanations included).
    index = GroupingIndex.build(pq.read_table(ctx.artifacts["directory"]), policy, codes)
    sample = pq.read_table(ctx.artifacts["cases"]).slice(0, SINGLE_SAMPLE).to_pylist()
    start = time.perf_counter()
    for case in sample:
        group_case(case, index)
    per_second = len(sample) / (time.perf_counter() - start) if sample else 0
    ctx.artifacts["single_cases_per_second"] = per_second
    return StageResult(
        grouped.num_rows,
        f"入组率 {summary['grouping_rate']:.2%}；单病例（含解释）{per_second:,.0f} 例/秒",
    )
