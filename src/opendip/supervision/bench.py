"""Bench stage: supervision (leads + monthly indicators) on the generated region."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from opendip.bench import BenchContext, StageResult
from opendip.engine import connect
from opendip.policy import PolicyFile
from opendip.supervision.prepare import SupervisionInputs
from opendip.supervision.run import supervise


def _read(con, path):  # type: ignore[no-untyped-def]
    if path is None:
        return None
    paths = [str(p) for p in path] if isinstance(path, list | tuple) else str(path)
    return con.read_parquet(paths) if paths else None


def run(ctx: BenchContext) -> StageResult:
    con = connect(ctx.engine)  # type: ignore[arg-type]
    policy = PolicyFile.read(ctx.policy_path).at()
    a = ctx.artifacts
    inputs = SupervisionInputs(
        cases=_read(con, a["cases"]),
        history=_read(con, a.get("history")),
        hospitals=_read(con, a.get("hospitals")),
        grouped=_read(con, a.get("grouped")),
        scored=_read(con, a.get("scored")),
    )
    result = supervise(inputs, policy)
    out = Path(ctx.workdir) / "supervision"
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(result.leads, out / "leads.parquet")
    pq.write_table(result.indicators, out / "indicators.parquet")
    a["leads"] = out / "leads.parquet"
    a["indicators"] = out / "indicators.parquet"
    rows = pq.read_metadata(a["cases"]).num_rows if not isinstance(a["cases"], list) else 0
    used = [k for k in ("history", "hospitals", "grouped", "scored") if a.get(k)]
    return StageResult(
        rows,
        f"线索 {result.leads.num_rows:,} 条，指标 {result.indicators.num_rows:,} 行；输入含 {'、'.join(used) or '仅本期病例'}",
    )
