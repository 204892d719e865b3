"""`opendip group`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pyarrow.compute as pc
import pyarrow.parquet as pq
import typer
from rich.table import Table

from opendip.cli.common import console, fail
from opendip.cli.inputs import connect, load_codes, load_policy_file, procedure_types, read_tables
from opendip.grouping import group_cases
from opendip.grouping.summary import grouping_summary


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
) -> None:
    """病例入组 / group cases into the directory."""
    _, pol = load_policy_file(policy)
    codes = load_codes(codes_dir)
    con = connect()
    if not directory.exists():
        fail(f"病种目录不存在：{directory}")
    case_table = read_tables(con, cases)
    status = con.read_parquet(str(case_status)) if case_status else None
    pt = procedure_types(con, codes)
    grouped = group_cases(
        case_table, con.read_parquet(str(directory)), pt, pol, status
    ).to_pyarrow()
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(grouped, out)
    summary = grouping_summary(grouped, case_table.select("case_id", "hospital_id").to_pyarrow())
    table = Table(title=f"入组结果 {out}")
    table.add_column("指标")
    table.add_column("值", justify="right")
    table.add_row("病例数", f"{summary['cases']:,}")
    table.add_row("入组率", f"{summary['grouping_rate']:.2%}")
    for k, v in summary["by_type"].items():
        table.add_row(f"  {k}", f"{v:,}")
    for k, v in summary["unmatched_by_reason"].items():
        table.add_row(f"未入组：{k}", f"{v:,}")
    console.print(table)
    if compare:
        other = group_cases(
            case_table, con.read_parquet(str(compare)), pt, pol, status
        ).to_pyarrow()
        changed = pc.or_(
            pc.not_equal(
                pc.fill_null(grouped["group_code"], ""), pc.fill_null(other["group_code"], "")
            ),
            pc.not_equal(
                pc.fill_null(grouped["base_score"].cast("string"), ""),
                pc.fill_null(other["base_score"].cast("string"), ""),
            ),
        )
        diff = (
            grouped.select(["case_id", "group_code", "base_score"])
            .append_column("other_group_code", other["group_code"])
            .append_column("other_base_score", other["base_score"])
            .filter(changed)
        )
        path = out.with_name(out.stem + ".compare.parquet")
        pq.write_table(diff, path)
        console.print(f"两个目录版本下入组或分值变化的病例：{diff.num_rows:,} → {path}")
