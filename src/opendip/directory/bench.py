"""Bench stage: build the directory from the history years."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from opendip.bench import BenchContext, StageResult
from opendip.codes import demo_code_tables
from opendip.directory.build import build_directory
from opendip.directory.names import name_groups
from opendip.engine import connect
from opendip.grouping.inputs import diagnosis_codes, procedure_types
from opendip.policy import load_policy


def run(ctx: BenchContext) -> StageResult:
    history = ctx.artifacts.get("history")
    if not history:
        return StageResult(0, "无历史数据，跳过")
    con = connect()
    codes = ctx.artifacts.get("codes") or demo_code_tables()
    built = build_directory(
        con.read_parquet([str(p) for p in history]),
        con.read_parquet(str(ctx.artifacts["hospitals"])),
        procedure_types(con, codes),
        load_policy(ctx.policy_path),
        diagnosis_codes=diagnosis_codes(con, codes),
    )
    out = ctx.workdir / "directory.parquet"
    # The demo reads like a region: code-named groups get the code tables' Chinese names.
    pq.write_table(name_groups(built.table, codes), out)
    (ctx.workdir / "directory.metrics.json").write_text(
        json.dumps(built.metrics, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    ctx.artifacts["directory"] = out
    ctx.artifacts["directory_metrics"] = built.metrics
    m = built.metrics
    return StageResult(
        int(m["history_cases"]),
        f"{built.table.num_rows} 个病种，核心病种病例占比 {m['core_case_share']:.1%}，RIV {m['riv']}",
    )
