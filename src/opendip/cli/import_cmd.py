"""`opendip import cases|hospitals`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opendip.cli.common import console, err_console
from opendip.ingest import ImportResult, read_cases, read_hospitals, write_outputs

app = typer.Typer(
    no_args_is_help=True, help="导入结算清单与机构表 / import settlement lists and hospitals"
)

Files = Annotated[list[Path], typer.Argument(help="CSV（UTF-8/GBK）、Excel .xlsx 或 Parquet 文件")]
Out = Annotated[Path, typer.Option("--out", help="输出目录 / output directory")]
Encoding = Annotated[
    str | None, typer.Option("--encoding", help="CSV 编码（默认自动识别：UTF-8 / GBK）")
]
Sheet = Annotated[str | None, typer.Option("--sheet", help="Excel 工作表名（默认第一个）")]


def _finish(result: ImportResult, out: Path, name: str) -> None:
    paths = write_outputs(result, out, name)
    table = Table(title="导入结果 / import summary")
    for col in ("文件", "编码", "读入", "接收", "隔离", "说明"):
        table.add_column(col)
    for f in result.files:
        note = f.error or "；".join(f.warnings[:3])
        table.add_row(
            f.path, f.encoding or "", f"{f.read:,}", f"{f.accepted:,}", f"{f.quarantined:,}", note
        )
    table.add_row(
        "合计", "", f"{result.read:,}", f"{result.accepted.num_rows:,}", f"{result.quarantine.num_rows:,}",
        "读入 = 接收 + 隔离 ✓",
    )  # fmt: skip
    console.print(table)
    console.print(
        f"接收: {paths['accepted']}\n隔离: {paths['quarantine']}\n错误明细: {paths['errors']}"
    )
    for f in result.files:
        if f.error:
            err_console.print(f"[red]无法读取 {f.path}：{f.error}[/]")
    if result.nothing_read:
        err_console.print("[bold red]错误[/]: 没有任何文件可以读取")
        raise typer.Exit(1)


@app.command("cases", help="导入医保结算清单 / import settlement lists into cases.parquet")
def cases(files: Files, out: Out, encoding: Encoding = None, sheet: Sheet = None) -> None:
    _finish(read_cases(files, encoding, sheet), out, "cases")


@app.command("hospitals", help="导入定点医疗机构表 / import the hospitals table")
def hospitals(files: Files, out: Out, encoding: Encoding = None, sheet: Sheet = None) -> None:
    _finish(read_hospitals(files, encoding, sheet), out, "hospitals")
