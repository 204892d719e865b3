"""`opendip directory build|load|diff|export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pyarrow.parquet as pq
import typer
from rich.table import Table

from opendip.cli.common import console, fail, progress
from opendip.cli.inputs import (
    Engine,
    EngineOpt,
    connect,
    diagnosis_codes,
    load_codes,
    load_policy_file,
    open_engine,
    procedure_types,
    read_tables,
)
from opendip.directory import DirectoryBuildError, build_directory
from opendip.directory.io import (
    DIFF_SHEETS,
    TYPE_LABELS,
    DirectoryFileError,
    diff_directories,
    export_diff_excel,
    export_excel,
    load_official_directory,
    read_directory,
)
from opendip.money import fen_to_yuan

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
    case_status: Annotated[
        Path | None, typer.Option("--qc-status", help="质控 case_status.parquet（阻断病例不参与）")
    ] = None,
    engine: EngineOpt = Engine.duckdb,
) -> None:
    _, pol = load_policy_file(policy)
    codes = load_codes(codes_dir)
    con = open_engine(engine)
    status = con.read_parquet(str(case_status)) if case_status else None
    with progress() as bar:
        task = bar.add_task("构建病种目录", total=None)
        try:
            built = build_directory(
                read_tables(con, history),
                con.read_parquet(str(hospitals)),
                procedure_types(con, codes),
                pol,
                status,
                diagnosis_codes(con, codes),
            )
        except DirectoryBuildError as exc:
            fail(str(exc))
        bar.update(task, total=1, completed=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(built.table, out)
    metrics_path = out.with_suffix(".metrics.json")
    metrics_path.write_text(
        json.dumps(built.metrics, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    if excel:
        export_excel(built.table, excel, built.metrics)
    table = Table(title=f"病种目录 {out}")
    table.add_column("指标")
    table.add_column("值", justify="right")
    for k, v in built.metrics.items():
        table.add_row(METRIC_LABELS.get(k, k), _metric_text(k, v))
    console.print(table)
    console.print(f"目录 → {out}；指标 → {metrics_path}" + (f"；Excel → {excel}" if excel else ""))


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
    cases: Annotated[
        list[Path] | None,
        typer.Option("--cases", help="病例：按两个版本分别入组，找出拆分/合并与涉及病例"),
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="政策文件（给出 --cases 时需要）")
    ] = None,
    codes_dir: CodesOpt = None,
) -> None:
    for path in (old, new):
        if not path.exists():
            fail(f"病种目录不存在：{path}")
    old_t, new_t = pq.read_table(old), pq.read_table(new)
    grouped_old = grouped_new = None
    if cases:
        if policy is None:
            fail("给出 --cases 时需要 --policy")
        from opendip.grouping import group_cases

        _, pol = load_policy_file(policy)
        codes = load_codes(codes_dir)
        con = connect()
        case_table = read_tables(con, cases)
        pt, dc = procedure_types(con, codes), diagnosis_codes(con, codes)
        grouped_old, grouped_new = (
            group_cases(case_table, con.read_parquet(str(d)), pt, pol, None, dc).to_pyarrow()
            for d in (old, new)
        )
    result = diff_directories(old_t, new_t, grouped_old, grouped_new)
    table = Table(title=f"目录对比 {old.name} → {new.name}")
    table.add_column("项目")
    table.add_column("数量", justify="right")
    for key, t in result.items():
        table.add_row(DIFF_SHEETS[key][0], f"{t.num_rows:,}")
    if "case_moves" in result:
        moves = result["case_moves"]
        table.add_row("迁移病例", f"{sum(moves['cases'].to_pylist()):,}")
    console.print(table)
    changes = result["score_changes"]
    if changes.num_rows:
        top = Table(title="分值变化最大的病种")
        for col in ("病种编码", "原分值", "新分值", "变化(%)"):
            top.add_column(col)
        rows = sorted(changes.to_pylist(), key=lambda r: -abs(r["change_pct"] or 0))[:10]
        for r in rows:
            top.add_row(
                r["group_code"], str(r["old_score"]), str(r["new_score"]), str(r["change_pct"])
            )
        console.print(top)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        for key, t in result.items():
            pq.write_table(t, out / f"{key}.parquet")
        book = export_diff_excel(result, out / "目录对比.xlsx")
        console.print(f"已写入 {out}（Excel：{book}）")


@app.command("export", help="导出公示用 Excel / export for publication")
def export(
    directory: Annotated[Path, typer.Argument(help="directory.parquet")],
    out: Annotated[Path, typer.Option("--out", help="输出 .xlsx")],
) -> None:
    if not directory.exists():
        fail(f"病种目录不存在：{directory}")
    metrics_path = directory.with_suffix(".metrics.json")
    metrics = (
        json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else None
    )
    export_excel(read_directory(directory), out, metrics)
    console.print(f"已导出 {out}")


METRIC_LABELS = {
    "groups_by_type": "病种数（按类型）",
    "core_threshold": "核心病种临界值（病例数）",
    "history_cases": "历史病例数",
    "cases_after_trimming": "剔除异常值后病例数",
    "core_case_share": "核心病种病例占比",
    "riv": "费用变异减少系数 RIV",
    "cv_quantiles": "组内变异系数 CV 分位数",
    "all_case_mean_fen": "全部病例次均费用（元）",
    "assignment_rounds": "核心病种归属计算轮数",
    "assignment_settled": "核心病种均值已收敛",
}


def _metric_text(key: str, value: object) -> str:
    if key == "groups_by_type" and isinstance(value, dict):
        return "，".join(f"{TYPE_LABELS.get(t, t)} {n:,}" for t, n in value.items())
    if key == "core_case_share" and isinstance(value, float):
        return f"{value:.2%}"
    if key == "all_case_mean_fen" and isinstance(value, int):
        return f"{fen_to_yuan(value):,}"
    if isinstance(value, bool):
        return "是" if value else "否（已达轮数上限）"
    if isinstance(value, int):
        return f"{value:,}"
    return json.dumps(value, ensure_ascii=False)
