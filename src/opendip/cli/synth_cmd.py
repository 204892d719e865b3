"""`opendip synth`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opendip.cli.common import console, fail, progress
from opendip.synth import Rates, SynthError, generate_region
from opendip.synth.region import BLOCK_CASES, MAX_BLOCK_CASES, MIN_BLOCK_CASES, block_sizes


def _years(text: str) -> tuple[int, ...]:
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-", 1))
            return tuple(range(lo, hi + 1))
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        fail(f"年份格式应为 2023-2026 或 2025,2026，收到 {text!r}")


WHOLE_YEAR_FORMATS = ("xlsx", "json")


def _check_record_formats(formats: list[str], cases_per_year: int) -> None:
    """Refuse unknown formats, and whole-file formats for years no import would accept."""
    from opendip.ingest.limits import DEFAULT_LIMITS

    unknown = sorted(set(formats) - {"csv", *WHOLE_YEAR_FORMATS})
    if unknown:
        fail(f"--records 只能是 csv、xlsx、json，收到 {'、'.join(unknown)}")
    whole = [f for f in formats if f in WHOLE_YEAR_FORMATS]
    if whole and cases_per_year > DEFAULT_LIMITS.max_rows:
        fail(
            f"--records {'、'.join(whole)}：每年 {cases_per_year:,} 例超过单个文件的导入上限 "
            f"{DEFAULT_LIMITS.max_rows:,} 行；大区域请用 csv（逐块写出，按上限分文件）"
        )


def _write_records(out: Path, years: tuple[int, ...], formats: list[str]) -> list[Path]:
    """settlement_lists_<year>/ in the multi-record structure, per requested format. CSV is
    written a slice of cases at a time (any size of year); xlsx and json are one file each,
    built from the whole year (refused beforehand above the import's row limit)."""
    if not formats:
        return []
    import pyarrow.parquet as pq

    from opendip.codes import demo_code_tables
    from opendip.ingest.settlement_export import (
        flat_file_records,
        records_from_flat,
        write_records,
        write_records_csv,
    )

    codes = demo_code_tables()
    paths: list[Path] = []
    for year in years:
        cases = out / f"cases_{year}.parquet"
        target = out / f"settlement_lists_{year}"
        if "csv" in formats:
            paths += write_records_csv(flat_file_records(cases, codes), target / "csv")
        whole = [f for f in formats if f in WHOLE_YEAR_FORMATS]
        if whole:
            records = records_from_flat(pq.read_table(cases), codes)
            paths += write_records(records, target, whole)
    return paths


def synth(
    out: Annotated[Path, typer.Option("--out", help="输出目录 / output directory")],
    hospitals: Annotated[int, typer.Option(help="医疗机构数 / hospitals", min=4)] = 40,
    cases_per_year: Annotated[
        int, typer.Option(help="每年病例数 / cases per year", min=100)
    ] = 200_000,
    years: Annotated[str, typer.Option(help="年份范围 / years, e.g. 2023-2026")] = "2023-2026",
    seed: Annotated[int, typer.Option(help="随机种子 / seed")] = 7,
    qc_error_rate: Annotated[
        float, typer.Option(help="结算清单错误病例占比 / share with a QC error", min=0, max=0.5)
    ] = Rates.qc_error,
    split_admission_rate: Annotated[
        float, typer.Option(help="分解住院病例占比 / split admissions", min=0, max=0.2)
    ] = Rates.split_admission,
    low_standard_rate: Annotated[
        float, typer.Option(help="低标准入院占比 / low-standard admissions", min=0, max=0.2)
    ] = Rates.low_standard_admission,
    overlong_stay_rate: Annotated[
        float, typer.Option(help="超长住院占比 / overlong stays", min=0, max=0.2)
    ] = Rates.overlong_stay,
    records: Annotated[
        list[str] | None,
        typer.Option(
            "--records",
            help="另写出多记录结构的结算清单（可重复）：csv（每类记录一个文件）、xlsx、json / "
            "also write the multi-record settlement lists",
        ),
    ] = None,
    block_cases: Annotated[
        int,
        typer.Option(
            help="每块病例数：逐块生成并写出，内存取决于块大小而非病例总数 / cases per block "
            "(memory depends on it, not on the number of cases)",
            min=MIN_BLOCK_CASES,
            max=MAX_BLOCK_CASES,
        ),
    ] = BLOCK_CASES,
) -> None:
    """生成合成示范区域（含注入异常及真实标签）/ generate a synthetic region with labels."""
    year_list = _years(years)
    _check_record_formats(records or [], cases_per_year)
    if not year_list or any(not 2000 <= y <= 2100 for y in year_list):
        fail(f"年份应在 2000–2100 之间，收到 {years!r}")
    rates = Rates(
        qc_error=qc_error_rate,
        split_admission=split_admission_rate,
        low_standard_admission=low_standard_rate,
        overlong_stay=overlong_stay_rate,
    )
    try:
        blocks = len(block_sizes(cases_per_year, block_cases)) * len(year_list)
        with progress() as bar:
            task = bar.add_task("生成合成区域", total=blocks)
            manifest = generate_region(
                out,
                hospitals=hospitals,
                cases_per_year=cases_per_year,
                years=year_list,
                seed=seed,
                rates=rates,
                block_cases=block_cases,
                on_block=lambda y, b, k: bar.update(
                    task, advance=1, description=f"已生成 {y} 年第 {b + 1}/{k} 块"
                ),
            )
    except SynthError as exc:
        fail(str(exc))
    written = _write_records(out, year_list, records or [])
    table = Table(title=f"合成区域 {out}")
    table.add_column("项目")
    table.add_column("数量", justify="right")
    table.add_row("医疗机构", str(hospitals))
    table.add_row("随机种子", str(seed))
    table.add_row("病种组合", f"{manifest['combinations']:,}")
    if "block_cases" in manifest:
        table.add_row("每块病例数（逐块生成）", f"{manifest['block_cases']:,}")
    for year, rows in manifest["rows"].items():  # type: ignore[union-attr]
        table.add_row(f"{year} 年病例", f"{rows:,}")
    for label, count in manifest["labels"].items():  # type: ignore[union-attr]
        rate = manifest["label_rates"][label]  # type: ignore[index]
        table.add_row(f"注入标签 {label}", f"{count:,}（{rate:.2%}）")
    console.print(table)
    console.print(
        f"输出目录 {out}：hospitals.parquet、cases_<年>.parquet、labels.parquet、manifest.json"
    )
    if written:
        console.print(
            f"多记录结构结算清单 {len(written)} 个文件：{out}/settlement_lists_<年>/"
            "（导入：opendip import settlement-lists）"
        )
