"""`opendip policy check|show`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opendip.cli.common import console, err_console
from opendip.policy import PolicyError, PolicyFile

app = typer.Typer(no_args_is_help=True, help="政策文件检查与查看 / check and show policy files")


@app.command("check", help="校验政策文件，逐条列出错误 / validate a policy file, list every error")
def check(file: Annotated[Path, typer.Argument(help="政策 YAML 文件")]) -> None:
    try:
        pf = PolicyFile.read(file)
        issues = pf.issues()
    except PolicyError as exc:
        issues = exc.issues
    if not issues:
        versions = ", ".join(d.isoformat() for d in pf.versions())
        console.print(f"[green]✓[/] {file}: 校验通过 / valid (版本生效日 versions: {versions})")
        return
    err_console.print(f"[bold red]✗[/] {file}: {len(issues)} 处错误 / errors")
    for issue in issues:
        err_console.print(f"  [yellow]{issue.path or '(根)'}[/]: {issue.message_zh}")
        err_console.print(f"      {issue.message_en}")
    raise typer.Exit(1)


@app.command("show", help="显示某日生效的完整参数 / print the resolved parameters at a date")
def show(
    file: Annotated[Path, typer.Argument(help="政策 YAML 文件")],
    at: Annotated[
        str | None, typer.Option("--at", help="生效日期 YYYY-MM-DD（默认生效期首日）")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="以 JSON 输出")] = False,
) -> None:
    try:
        pf = PolicyFile.read(file)
        policy = pf.at(dt.date.fromisoformat(at) if at else None)
    except PolicyError as exc:
        for issue in exc.issues:
            err_console.print(f"[red]{issue}[/]")
        raise typer.Exit(1) from exc
    data = policy.model_dump(mode="json")
    if as_json:
        console.print_json(json.dumps(data, ensure_ascii=False))
        return
    table = Table(title=f"{policy.region.name} {policy.year} 政策参数 (version {policy.version})")
    table.add_column("参数 key")
    table.add_column("值 value")
    for key, value in _flatten(data):
        table.add_row(key, value)
    console.print(table)
    console.print(f"文件哈希 sha256: {pf.sha256}")


def _flatten(node: object, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        rows: list[tuple[str, str]] = []
        for k, v in node.items():
            rows += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return rows
    if isinstance(node, list) and any(isinstance(v, dict | list) for v in node):
        rows = []
        for i, v in enumerate(node):
            rows += _flatten(v, f"{prefix}[{i}]")
        return rows
    return [(prefix, json.dumps(node, ensure_ascii=False) if not isinstance(node, str) else node)]
