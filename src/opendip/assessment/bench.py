"""Bench stage: the annual assessment of the current year from the policy's scorecard (QC
status, grouping, last year's cases); the settlement stage clears with its scores."""

from __future__ import annotations

from opendip.assessment.run import AssessFiles, run_assess
from opendip.bench import BenchContext, StageResult
from opendip.policy import PolicyFile


def run(ctx: BenchContext) -> StageResult:
    need = ("cases", "grouped", "hospitals")
    if any(k not in ctx.artifacts for k in need):
        return StageResult(0, "缺少上游产物，跳过")
    policy = PolicyFile.read(ctx.policy_path).periods()[-1][2]
    if policy.assessment is None:
        return StageResult(0, "政策未设考核评分表，跳过")
    history = ctx.artifacts.get("history") or []
    files = AssessFiles(
        policy=ctx.policy_path,
        cases=ctx.artifacts["cases"],
        grouped=ctx.artifacts["grouped"],
        hospitals=ctx.artifacts["hospitals"],
        case_status=ctx.artifacts.get("case_status"),
        previous_cases=history[-1] if history else None,
    )
    out = ctx.workdir / "assessment"
    s = run_assess(files, policy.year, out, engine=ctx.engine)
    ctx.artifacts["assessment"] = out / "assessment.parquet"
    return StageResult(int(s["hospitals"]), f"考核总分 {s['min']}～{s['max']}")
