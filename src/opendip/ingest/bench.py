"""Bench stage: import the current year as hospitals upload it — a GBK CSV with Chinese
headers and yuan amounts — and record the accepted cases for the next stages.

On a generated region the accepted rows become the region's current-year case file
(`cases_<year>.parquet`, what the platform reads too): rows quarantined at import are never
quality-checked, grouped or settled. The generated file, injected errors included, is kept
as `upload/<name>.generated.parquet` beside the uploaded CSV."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from opendip.bench import BenchContext, StageResult
from opendip.ingest.export import write_settlement_csv
from opendip.ingest.importer import read_cases, write_outputs

#: Cases generated when no earlier stage left any (the stage then still measures something).
FALLBACK_CASES = 20_000


def _source(ctx: BenchContext) -> pa.Table:
    path = ctx.artifacts.get("cases")
    if path is not None:
        return pq.read_table(path)
    from opendip.synth import generate_region

    out = ctx.workdir / "ingest_source"
    n = min(ctx.n_cases, FALLBACK_CASES) if ctx.n_cases > 0 else FALLBACK_CASES
    generate_region(out, hospitals=10, cases_per_year=n, years=(2026,), seed=ctx.seed)
    return pq.read_table(out / "cases_2026.parquet")


def run(ctx: BenchContext) -> StageResult:
    upload: Path = ctx.workdir / "upload" / "settlement_list_gbk.csv"
    write_settlement_csv(_source(ctx), upload, encoding="gb18030")
    start = time.perf_counter()
    result = read_cases([upload])
    seconds = time.perf_counter() - start
    paths = write_outputs(result, ctx.workdir / "imported", "cases")
    ctx.artifacts["imported_cases"] = paths["accepted"]
    ctx.artifacts["quarantine"] = paths["quarantine"]
    region_cases = ctx.artifacts.get("cases")
    if region_cases is not None:
        region_cases = Path(region_cases)
        generated = upload.parent / f"{region_cases.stem}.generated.parquet"
        shutil.move(region_cases, generated)
        shutil.copyfile(paths["accepted"], region_cases)
        ctx.artifacts["generated_cases"] = generated
    rate = result.read / seconds if seconds > 0 else 0.0
    return StageResult(
        result.read,
        f"仅导入 {seconds:.1f} 秒（{rate:,.0f} 行/秒，不含写 GBK CSV）；"
        f"接收 {result.accepted.num_rows:,}，隔离 {result.quarantine.num_rows:,}",
    )
