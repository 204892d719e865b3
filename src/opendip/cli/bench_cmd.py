"""`opendip bench`."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opendip.bench import BenchContext, machine_description, run_bench
from opendip.cli.common import console, progress


def bench(
    cases: Annotated[int, typer.Option("--cases", help="病例数 / number of cases")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="随机种子 / seed")] = 7,
    workdir: Annotated[
        Path | None, typer.Option(help="工作目录（默认临时目录）/ working directory")
    ] = None,
    stage: Annotated[
        list[str] | None, typer.Option("--stage", help="只报告这些阶段 / report only these")
    ] = None,
) -> None:
    """性能基准：逐阶段计时 / benchmark: time each pipeline stage."""
    with tempfile.TemporaryDirectory(prefix="opendip-bench-") as tmp:
        ctx = BenchContext(workdir=workdir or Path(tmp), n_cases=cases, seed=seed)
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        with progress() as bar:
            task = bar.add_task("基准测试", total=None)
            timings = run_bench(ctx, stage, on_stage=lambda s: bar.update(task, description=s))
            bar.update(task, total=1, completed=1)
    table = Table(title=f"OpenDIP bench {dt.date.today()} · {machine_description()}")
    for col in ("阶段 stage", "行数 rows", "秒 s", "行/秒 rows/s", "峰值内存 MB", "说明"):
        table.add_column(col)
    for t in timings:
        table.add_row(
            f"{t.label} {t.name}",
            f"{t.rows:,}",
            f"{t.seconds:.2f}",
            f"{t.rows_per_second:,.0f}",
            f"{t.peak_rss_mb:,.0f}",
            t.note,
        )
    console.print(table)
