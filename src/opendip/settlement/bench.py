"""Bench stage: annual clearing of the current year (score + point value + money + clearing,
advances recomputed month by month), written as a settlement run directory (manifest,
result tables, 结算公示表) that reports and the hospital analysis read."""

from __future__ import annotations

from opendip.bench import BenchContext, StageResult
from opendip.policy import PolicyFile
from opendip.scoring.bench import NEEDS, all_case_mean
from opendip.settlement.run import InputFiles, run_year


def run(ctx: BenchContext) -> StageResult:
    missing = [k for k in NEEDS if k not in ctx.artifacts]
    if missing:
        return StageResult(0, f"缺少上游产物 {missing}，跳过")
    year = PolicyFile.read(ctx.policy_path).periods()[-1][2].year
    files = InputFiles(
        policy=ctx.policy_path,
        cases=ctx.artifacts["cases"],
        grouped=ctx.artifacts["grouped"],
        directory=ctx.artifacts["directory"],
        hospitals=ctx.artifacts["hospitals"],
        all_case_mean_fen=all_case_mean(ctx),
        # last year's credit grades set this year's withholding share (policy `credit`)
        credit=ctx.artifacts.get("credit_previous"),
        prepayment_base=ctx.artifacts.get("prepayment_base"),
        previous_assessment=ctx.artifacts.get("previous_assessment"),
    )
    out = ctx.workdir / "settlement"
    # Per-case Excel is for a hospital's own download, not for a region of millions of rows.
    # The assessment stage's scores return the withheld deposit by the policy's bands.
    summary = run_year(
        files,
        year,
        out,
        assessment=ctx.artifacts.get("assessment"),
        excel=True,
        case_excel=False,
        engine=ctx.engine,
    )
    ctx.artifacts["settlement"] = out
    pools = summary["pools"]
    ok = all(p["cases_equal_hospitals"] for p in pools)  # type: ignore[union-attr]
    pv = "，".join(f"{k} {v}" for k, v in sorted(summary["point_values"].items()))  # type: ignore[union-attr]
    cases = summary["cases"]["cases"]  # type: ignore[index]
    return StageResult(int(cases), f"年终清算；结算点值 {pv}；对账{'一致' if ok else '不一致'}")
