"""`opendip directory build|load|diff|export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pyarrow.parquet as pq
import typer
from rich.table import Table

from opendip.cli.common import console, fail, progress
from opendip.cli.inputs import connect, load_codes, load_policy_file, procedure_types, read_tables
from opendip.directory import DirectoryBuildError, build_directory
from opendip.directory.io import (
    DirectoryFileError,
    diff_directories,
    export_excel,
    load_official_directory,
)

app = typer.Typer(
    no_args_is_help=True, help="病种目录库：构建、导入、对比、导出 / the group directory"
)

PolicyOpt = Annotated[Path, typer.Option("--policy", help="政策文件 / policy YAML")]
CodesOpt = Annotated[Path | None, typer.Option("--codes-dir", help="代码表目录（默认示范代码表）")]


@app.command("build", help="由历史数据构建病种目录 / build the directory from history")
def build(
    policy: PolicyOpt,
    history: Annotated[list[Path], typer.Option("--history", help="历史病例 Parquet 文件或目录")],
    out: Annotated[Path, typer.Option("--out", help="输出 directory.parquet")],
    hospitals: Annotated[Path, typer.Option("--hospitals", help="hospitals.parquet")],
    codes_dir: CodesOpt = None,
    excel: Annotated[Path | None, typer.Option("--excel", help="同时导出公示用 Excel")] = None,
) -> None:
    _, pol = load_policy_file(policy)
    codes = load_codes(codes_dir)
    con = connect()
    with progress() as bar:
        task = bar.add_task("构建病种目录", total=None)
        try:
            built = build_directory(
                read_tables(con, history),
                con.read_parquet(str(hospitals)),
                procedure_types(con, codes),
                pol,
            )
        except DirectoryBuildError as exc:
            fail(str(exc))
        bar.update(task, total=1, completed=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(built.table, out)
    out.with_suffix(".metrics.json").write_text(
        json.dumps(built.metrics, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    if excel:
        export_excel(built.table, excel, built.metrics)
    table = Table(title=f"病种目录 {out}")
    table.add_column("指标")
    table.add_column("值", justify="right")
    for k, v in built.metrics.items():
        table.add_row(k, json.dumps(v, ensure_ascii=False))
    console.print(table)


@app.command("load", help="导入地区已发布的病种目录（CSV/Excel）/ load an official directory")
def load(
    file: Annotated[Path, typer.Argument(help="病种目录 CSV 或 Excel")],
    out: Annotated[Path, typer.Option("--out", help="输出 directory.parquet")],
    codes_dir: CodesOpt = None,
) -> None:
    try:
        table = load_official_directory(file, load_codes(codes_dir))
    except DirectoryFileError as exc:
        fail(str(exc))
    pq.write_table(table, out)
    console.print(f"已导入 {table.num_rows} 个病种 → {out}")


@app.command("diff", help="对比两个目录版本 / compare two directory versions")
def diff(
    old: Annotated[Path, typer.Argument(help="旧目录 parquet")],
    new: Annotated[Path, typer.Argument(help="新目录 parquet")],
    out: Annotated[Path | None, typer.Option("--out", help="输出目录（Excel 与 Parquet）")] = None,
) -> None:
    result = diff_directories(pq.read_table(old), pq.read_table(new))
    labels = {"added": "新增病种", "removed": "删除病种", "score_changes": "分值变化"}
    for key, t in result.items():
        console.print(f"{labels.get(key, key)}：{t.num_rows}")
    if out:
        out.mkdir(parents=True, exist_ok=True)
        for key, t in result.items():
            pq.write_table(t, out / f"{key}.parquet")
        console.print(f"已写入 {out}")


@app.command("export", help="导出公示用 Excel / export for publication")
def export(
    directory: Annotated[Path, typer.Argument(help="directory.parquet")],
    out: Annotated[Path, typer.Option("--out", help="输出 .xlsx")],
) -> None:
    export_excel(pq.read_table(directory), out)
    console.print(f"已导出 {out}")
