"""`opendip scenario run`: what-if on policy and directory (方案测算)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opendip.cli.common import console, fail, progress
from opendip.cli.inputs import load_codes
from opendip.policy import PolicyError
from opendip.scenario import Variant, VariantError
from opendip.settlement.output import yuan

app = typer.Typer(
    no_args_is_help=True, help="方案测算：政策与目录的假设分析 / policy and directory what-if"
)


@app.command("run")
def run_cmd(
    base: Annotated[Path, typer.Option("--base", help="已完成的年终清算运行目录")],
    variant: Annotated[
        list[Path], typer.Option("--variant", help="方案文件 YAML（可重复，最多不限）")
    ],
    out: Annotated[Path, typer.Option("--out", help="输出目录")],
    search: Annotated[
        list[Path] | None, typer.Option("--search", help="查找基准运行输入文件的其他目录")
    ] = None,
    codes_dir: Annotated[Path | None, typer.Option("--codes-dir", help="代码表目录")] = None,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="另输出 方案测算.pdf")] = False,
) -> None:
    """在一个已清算年度上按各方案重新入组、计算分值并清算，逐院对比基准。"""
    from opendip.scenario.run import run_scenario

    try:
        variants = [Variant.read(p) for p in variant]
        with progress() as bar:
            task = bar.add_task("方案测算", total=len(variants) + 2)

            def on_step(label: str) -> None:
                bar.update(task, description=label, advance=1)

            result = run_scenario(
                base,
                variants,
                out,
                codes=load_codes(codes_dir),
                search_dirs=tuple(search or ()),
                on_step=on_step,
            )
    except (VariantError, PolicyError) as exc:
        fail(str(exc))
    table = Table(title=f"{result['year']} 年方案测算（基准 {result['base_run']}）")
    for col in ("方案", "险种", "点值", "点值变化%", "清算应付(元)", "较基准(元)", "增/减家数"):
        table.add_column(col)
    for r in result["summary"]:
        table.add_row(
            r["variant_name"],
            r["pool"],
            str(r["point_value"]),
            str(r["point_value_change_pct"]),
            yuan(r["clearing_total_fen"]),
            yuan(r["clearing_change_fen"]),
            f"{r['hospitals_gaining']}/{r['hospitals_losing']}",
        )
    console.print(table)
    if pdf:
        from opendip.reports.render.errors import ReportRenderError
        from opendip.scenario.report import write_scenario_pdf

        try:
            console.print(f"PDF → {write_scenario_pdf(out)}")
        except ReportRenderError as exc:
            fail(str(exc))
    ok = "一致（逐分相符）" if result["base_reproduced"] else "不一致！"
    console.print(f"基准重算与原清算结果：{ok}；输出 {out}（manifest.json、方案测算.xlsx）")
    if not result["base_reproduced"]:
        raise typer.Exit(2)
