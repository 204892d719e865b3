"""Bench stage: import the current year as a GBK CSV with Chinese headers and yuan amounts."""

from __future__ import annotations

import pyarrow.parquet as pq

from opendip.bench import BenchContext, StageResult
from opendip.ingest.export import write_settlement_csv
from opendip.ingest.importer import read_cases, write_outputs


def run(ctx: BenchContext) -> StageResult:
    source = ctx.artifacts.get("cases")
    if source is None:
        return StageResult(0, "无输入病例，跳过")
    csv_path = write_settlement_csv(
        pq.read_table(source), ctx.workdir / "upload" / "settlement_list_gbk.csv"
    )
    result = read_cases([csv_path])
    paths = write_outputs(result, ctx.workdir / "imported", "cases")
    ctx.artifacts["imported_cases"] = paths["accepted"]
    ctx.artifacts["quarantine"] = paths["quarantine"]
    return StageResult(
        result.read, f"接收 {result.accepted.num_rows:,}，隔离 {result.quarantine.num_rows:,}"
    )
