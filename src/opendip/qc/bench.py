"""Bench stage: QC the current year (batch, full default rule set), time the single path."""

from __future__ import annotations

import time

import pyarrow.parquet as pq

from opendip.bench import BenchContext, StageResult
from opendip.codes import demo_code_tables
from opendip.engine import connect
from opendip.pipeline import quality_control
from opendip.policy import load_policy
from opendip.qc.export import write_outputs
from opendip.qc.single import CaseChecker
from opendip.qc.summary import evaluate_labels

SINGLE_SAMPLE = 5_000


def run(ctx: BenchContext) -> StageResult:
    if "cases" not in ctx.artifacts:
        return StageResult(0, "无病例，跳过")
    policy = load_policy(ctx.policy_path)
    codes = ctx.artifacts.get("codes") or demo_code_tables()
    con = connect()
    cases = con.read_parquet(str(ctx.artifacts["cases"]))
    start = time.perf_counter()
    result = quality_control(con, cases, codes, policy, ctx.policy_path)
    rules = result.rules
    outputs = write_outputs(result, ctx.workdir / "qc", excel=False)
    ctx.artifacts["case_status"] = outputs.paths["case_status"]
    ctx.artifacts["qc_findings"] = outputs.paths["findings"]
    batch_seconds = time.perf_counter() - start
    ctx.artifacts["qc_batch_seconds"] = batch_seconds
    head = outputs.overall
    note = (
        f"批处理 {batch_seconds:.1f} 秒（含写出）；合格率 {head['pass_rate']:.2%}，"
        f"阻断 {head['blocking']:,} 例"
    )

    if "labels" in ctx.artifacts:
        per_label, clean = evaluate_labels(
            result.findings, con.read_parquet(str(ctx.artifacts["labels"])), cases, result.rules
        )
        rows = per_label.to_pyarrow().to_pylist()
        injected = sum(r["injected"] for r in rows)
        found = sum(r["found"] for r in rows)
        ctx.artifacts["qc_label_metrics"] = rows
        note += f"；注入错误查出 {found:,}/{injected:,}，无错病例误判 {clean.count().to_pyarrow().as_py():,}"

    checker = CaseChecker(codes, rules, policy)
    sample = pq.read_table(ctx.artifacts["cases"]).slice(0, SINGLE_SAMPLE).to_pylist()
    start = time.perf_counter()
    for case in sample:
        checker.check(case)
    per_second = len(sample) / (time.perf_counter() - start) if sample else 0
    ctx.artifacts["qc_single_cases_per_second"] = per_second
    return StageResult(head["cases"], f"{note}；单病例 {per_second:,.0f} 例/秒")
