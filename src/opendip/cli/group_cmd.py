"""`opendip group`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq
import typer
from rich.table import Table

from opendip.cli.common import console, fail
from opendip.cli.inputs import (
    Engine,
    EngineOpt,
    diagnosis_codes,
    load_codes,
    load_policy_file,
    open_engine,
    procedure_types,
    read_tables,
)
from opendip.codes import CodeTables
from opendip.contract import GROUPED
from opendip.engine import fetch_arrow, write_parquet
from opendip.grouping import group_cases
from opendip.grouping.summary import compare_groupings, grouping_summary
from opendip.policy import Policy


def group(
    policy: Annotated[Path, typer.Option("--policy", help="政策文件")],
    directory: Annotated[Path, typer.Option("--directory", help="directory.parquet")],
    cases: Annotated[list[Path], typer.Option("--cases", help="病例 Parquet 文件或目录")],
    out: Annotated[Path, typer.Option("--out", help="输出 grouped.parquet")],
    case_status: Annotated[
        Path | None, typer.Option("--qc-status", help="质控 case_status.parquet（阻断病例不入组）")
    ] = None,
    compare: Annotated[
        Path | None, typer.Option("--compare", help="另一目录版本：列出入组或分值变化的病例")
    ] = None,
    codes_dir: Annotated[Path | None, typer.Option("--codes-dir", help="代码表目录")] = None,
    explain: Annotated[
        list[str] | None,
        typer.Option("--explain", help="逐条解释这些病例的入组过程（结算清单号，可重复）"),
    ] = None,
    auxiliary_file: Annotated[
        Path | None,
        typer.Option(
            "--auxiliary", help="辅助目录文件（合并症、严重程度、肿瘤、年龄；替代政策中的系数）"
        ),
    ] = None,
    engine: EngineOpt = Engine.duckdb,
) -> None:
    """病例入组 / group cases into the directory."""
    _, pol = load_policy_file(policy)
    auxiliary = None
    if auxiliary_file is not None:
        from opendip.directory.auxiliary import AuxiliaryError, load_auxiliary

        try:
            auxiliary = load_auxiliary(auxiliary_file)
        except AuxiliaryError as exc:
            fail(str(exc))
    codes = load_codes(codes_dir)
    con = open_engine(engine)
    for d in (directory, compare):
        if d is not None and not d.exists():
            fail(f"病种目录不存在：{d}")
    case_table = read_tables(con, cases)
    status = con.read_parquet(str(case_status)) if case_status else None
    pt, dc = procedure_types(con, codes), diagnosis_codes(con, codes)
    expr = group_cases(
        case_table, con.read_parquet(str(directory)), pt, pol, status, dc, auxiliary,
        carry=("hospital_id",),
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    # The batch plan keeps no row order; a stored order makes reruns byte-identical. The
    # engine sorts (in parallel) on every column, case id first: rows of a case id listed
    # twice then also come in one order whatever the input order or the engine's threads.
    result = fetch_arrow(expr.order_by(*GROUPED.names))
    grouped = GROUPED.conform(result)
    write_parquet(grouped, out)
    # Each row's hospital came with it: the summary reads neither the cases again nor
    # another engine.
    summary = grouping_summary(grouped, hospital=result["hospital_id"])
    summary_path = out.with_suffix(".summary.json")
    summary_path.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    target = float(pol.grouping.target_grouping_rate)
    table = Table(title=f"入组结果 {out}")
    table.add_column("指标")
    table.add_column("值", justify="right")
    table.add_row("病例数", f"{summary['cases']:,}")
    table.add_row("入组率", f"{summary['grouping_rate']:.2%}（目标 {target:.0%}）")
    table.add_row("入组率（质控通过病例）", f"{summary['grouping_rate_qc_clean']:.2%}")
    for k, v in summary["by_type"].items():
        table.add_row(f"  {TYPE_LABELS.get(k, k)}", f"{v:,}")
    for k, v in summary["unmatched_by_step"].items():
        table.add_row(f"未入组：{k}", f"{v:,}")
    console.print(table)
    low = {h: r for h, r in summary.get("grouping_rate_by_hospital", {}).items() if r < target}
    if low:
        console.print(f"入组率低于目标的医院 {len(low)} 家：" + "、".join(sorted(low)[:20]))
    console.print(f"入组结果 → {out}；汇总 → {summary_path}")
    if explain:
        blocked: set[str] = set()
        if status is not None:
            blocked = set(status.filter(status.blocking).case_id.to_pyarrow().to_pylist())
        directory_table = con.read_parquet(str(directory)).to_pyarrow()
        _explain(case_table, explain, directory_table, pol, codes, blocked, auxiliary)
    if compare:
        other = group_cases(
            case_table, con.read_parquet(str(compare)), pt, pol, status, dc, auxiliary
        ).to_pyarrow()
        diff = compare_groupings(grouped, other)
        path = out.with_name(out.stem + ".compare.parquet")
        pq.write_table(diff, path)
        console.print(
            f"目录 {directory.name} 与 {compare.name} 下入组或分值不同的病例：{diff.num_rows:,} → {path}"
        )


TYPE_LABELS = {
    "core": "核心病种",
    "basic": "基层病种",
    "comprehensive": "综合病种",
    "special": "特殊病种",
    "fallback": "空白病组",
    "unmatched": "未入组",
}


def _explain(
    case_table: ir.Table,
    case_ids: list[str],
    directory: pa.Table,
    pol: Policy,
    codes: CodeTables,
    blocked: set[str],
    auxiliary: object | None = None,
) -> None:
    from opendip.grouping import GroupingIndex, group_case

    index = GroupingIndex.build(directory, pol, codes, auxiliary)  # type: ignore[arg-type]
    found = case_table.filter(case_table.case_id.isin(case_ids)).to_pyarrow().to_pylist()
    for missing in sorted(set(case_ids) - {c["case_id"] for c in found}):
        console.print(f"[red]病例 {missing} 不在输入中[/red]")
    for case in found:
        result = group_case(case, index, blocked=case["case_id"] in blocked)
        console.print(f"[bold]病例 {case['case_id']}[/bold]：{result.group_code or '未入组'}")
        for line in result.explanation:
            console.print(f"  · {line}")
