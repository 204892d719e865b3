"""Bench stage: score every grouped case of the current year (batch), plus a single-case
sample to check the pure-Python path agrees."""

from __future__ import annotations

from opendip.bench import BenchContext, StageResult
from opendip.engine import connect, read_parquet
from opendip.policy import PolicyFile
from opendip.scoring import score_cases

NEEDS = ("grouped", "directory", "cases", "hospitals")


def all_case_mean(ctx: BenchContext) -> int | None:
    metrics = ctx.artifacts.get("directory_metrics") or {}
    value = metrics.get("all_case_mean_fen")
    return int(value) if value else None


def run(ctx: BenchContext) -> StageResult:
    missing = [k for k in NEEDS if k not in ctx.artifacts]
    if missing:
        return StageResult(0, f"缺少上游产物 {missing}，跳过")
    con = connect(ctx.engine)  # type: ignore[arg-type]
    result = score_cases(
        read_parquet(con, ctx.artifacts["cases"], "cases"),
        read_parquet(con, ctx.artifacts["grouped"], "grouped"),
        read_parquet(con, ctx.artifacts["directory"], "directory"),
        read_parquet(con, ctx.artifacts["hospitals"], "hospitals"),
        PolicyFile.read(ctx.policy_path),
        all_case_mean_fen=all_case_mean(ctx),
    )
    out = ctx.workdir / "scored.parquet"
    con.to_parquet(result.contract(), str(out))
    ctx.artifacts["scored"] = out
    n = con.read_parquet(str(out)).count().to_pyarrow().as_py()
    return StageResult(n, "DIP 病例分值（批量）")
