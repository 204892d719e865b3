"""Bench stage: annual clearing of the current year (score + point value + money + clearing,
advances recomputed month by month)."""

from __future__ import annotations

from opendip.bench import BenchContext, StageResult
from opendip.engine import connect, read_parquet
from opendip.policy import PolicyFile
from opendip.scoring.bench import NEEDS, all_case_mean
from opendip.settlement.clearing import Inputs, settle_year
from opendip.settlement.output import write_parquet


def run(ctx: BenchContext) -> StageResult:
    missing = [k for k in NEEDS if k not in ctx.artifacts]
    if missing:
        return StageResult(0, f"缺少上游产物 {missing}，跳过")
    con = connect(ctx.engine)  # type: ignore[arg-type]
    pf = PolicyFile.read(ctx.policy_path)
    inputs = Inputs(
        cases=read_parquet(con, ctx.artifacts["cases"], "cases"),
        grouped=read_parquet(con, ctx.artifacts["grouped"], "grouped"),
        directory=read_parquet(con, ctx.artifacts["directory"], "directory"),
        hospitals=read_parquet(con, ctx.artifacts["hospitals"], "hospitals"),
        policy=pf,
        all_case_mean_fen=all_case_mean(ctx),
    )
    year = pf.periods()[-1][2].year
    r = settle_year(inputs, year)
    out = ctx.workdir / "settlement"
    write_parquet(r.hospitals, out / "hospitals.parquet")
    write_parquet(r.pools, out / "reconciliation.parquet")
    write_parquet(r.cases, out / "cases.parquet")
    ctx.artifacts["settlement"] = out
    ok = all(r.pools.column("cases_equal_hospitals").to_pylist())
    pv = "，".join(f"{k} {v}" for k, v in sorted(r.point_values.items()))
    return StageResult(
        r.counts["cases"], f"年终清算；结算点值 {pv}；对账{'一致' if ok else '不一致'}"
    )
