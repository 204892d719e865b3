"""`opendip synth`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opendip.cli.common import console, fail, progress
from opendip.synth import generate_region


def _years(text: str) -> tuple[int, ...]:
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-", 1))
            return tuple(range(lo, hi + 1))
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        fail(f"年份格式应为 2023-2026 或 2025,2026，收到 {text!r}")


def synth(
    out: Annotated[Path, typer.Option("--out", help="输出目录 / output directory")],
    hospitals: Annotated[int, typer.Option(help="医疗机构数 / hospitals", min=4)] = 40,
    cases_per_year: Annotated[
        int, typer.Option(help="每年病例数 / cases per year", min=100)
    ] = 200_000,
    years: Annotated[str, typer.Option(help="年份范围 / years, e.g. 2023-2026")] = "2023-2026",
    seed: Annotated[int, typer.Option(help="随机种子 / seed")] = 7,
) -> None:
    """生成合成示范区域（含注入异常及真实标签）/ generate a synthetic region with labels."""
    year_list = _years(years)
    with progress() as bar:
        task = bar.add_task("生成合成区域", total=len(year_list))
        manifest = generate_region(
            out,
            hospitals=hospitals,
            cases_per_year=cases_per_year,
            years=year_list,
            seed=seed,
            on_year=lambda y: bar.update(task, advance=1, description=f"已生成 {y} 年"),
        )
    table = Table(title=f"合成区域 {out}")
    table.add_column("项目")
    table.add_column("数量", justify="right")
    table.add_row("医疗机构", str(hospitals))
    table.add_row("病种组合", f"{manifest['combinations']:,}")
    for year, rows in manifest["rows"].items():  # type: ignore[union-attr]
        table.add_row(f"{year} 年病例", f"{rows:,}")
    for label, count in manifest["labels"].items():  # type: ignore[union-attr]
        table.add_row(f"注入标签 {label}", f"{count:,}")
    console.print(table)
