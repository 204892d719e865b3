"""Bench stage: import the current year as the agency receives it — the settlement lists in
their multi-record structure (main record, diagnoses, procedures, ICU, fees, funds), one GB18030
CSV per record type with national field codes and yuan amounts — and record the derived flat
cases for the next stages.

On a generated region the accepted (derived flat) cases become the region's current-year case
file (`cases_<year>.parquet`, what the platform reads too): lists quarantined at import are
never quality-checked, grouped or settled. The generated file, injected errors included, is
kept as `upload/<name>.generated.parquet` beside the uploaded CSV files."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from opendip.bench import BenchContext, StageResult
from opendip.codes import demo_code_tables
from opendip.ingest.settlement import import_settlement_lists, write_settlement_outputs
from opendip.ingest.settlement_export import records_from_flat, write_records_csv

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
    upload: Path = ctx.workdir / "upload" / "settlement_lists"
    records = records_from_flat(_source(ctx), ctx.artifacts.get("codes") or demo_code_tables())
    files = write_records_csv(records, upload, encoding="gb18030")
    start = time.perf_counter()
    result = import_settlement_lists(files)
    seconds = time.perf_counter() - start
    paths = write_settlement_outputs(result, ctx.workdir / "imported")
    ctx.artifacts["imported_cases"] = paths["cases"]
    ctx.artifacts["quarantine"] = paths["quarantine_settlement_lists"]
    region_cases = ctx.artifacts.get("cases")
    if region_cases is not None:
        region_cases = Path(region_cases)
        generated = upload.parent / f"{region_cases.stem}.generated.parquet"
        shutil.move(region_cases, generated)
        shutil.copyfile(paths["cases"], region_cases)
        ctx.artifacts["generated_cases"] = generated
    from opendip.qc.records import check_records

    codes = ctx.artifacts.get("codes") or demo_code_tables()
    findings = check_records(
        {t: r.accepted for t, r in result.records.items()}, procedures=codes.procedures
    )
    pq.write_table(findings, ctx.workdir / "imported" / "record_findings.parquet")
    ctx.artifacts["record_findings"] = ctx.workdir / "imported" / "record_findings.parquet"
    header = result.records["settlement_lists"]
    rows = sum(r.read for r in result.records.values())
    rate = rows / seconds if seconds > 0 else 0.0
    return StageResult(
        header.read,
        f"多记录结构导入 {seconds:.1f} 秒（{rows:,} 条记录，{rate:,.0f} 条/秒，不含写 CSV）；"
        f"清单接收 {header.accepted.num_rows:,}，隔离 {header.quarantine.num_rows:,}；"
        f"子记录质控问题 {findings.num_rows:,} 条",
    )
