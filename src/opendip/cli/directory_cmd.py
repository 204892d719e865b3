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
from opendip.contract.tables import DIRECTORY_KIND_LABELS
from opendip.directory import DirectoryBuildError, build_directory
from opendip.directory.io import (
    DIFF_SHEETS,
    TYPE_LABELS,
    DirectoryFileError,
    diff_directories,
    directory_kinds,
    export_diff_excel,
    export_excel,
    load_official_directory,
    read_directory,
)
from opendip.directory.names import name_groups
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
    pq.write_table(name_groups(built.table, codes), out)
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


@app.command(
    "load",
    help="导入地区已发布的病种目录（CSV/Excel）；--format national 导入国家分组方案并用本地历史"
    "数据本地化 / load an official directory, or localise the national scheme",
)
def load(
    file: Annotated[Path, typer.Argument(help="病种目录 CSV 或 Excel")],
    out: Annotated[Path, typer.Option("--out", help="输出 directory.parquet")],
    codes_dir: CodesOpt = None,
    fmt: Annotated[
        str, typer.Option("--format", help="regional（地区目录，默认）或 national（国家分组方案）")
    ] = "regional",
    history: Annotated[
        list[Path] | None, typer.Option("--history", help="本地历史病例（national 时必需）")
    ] = None,
    hospitals: Annotated[
        Path | None, typer.Option("--hospitals", help="hospitals.parquet（national 时必需）")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="政策文件（national 时必需）")
    ] = None,
    cases: Annotated[
        list[Path] | None, typer.Option("--cases", help="当年病例：按本地目录入组，报告入组率")
    ] = None,
    exclusions: Annotated[
        Path | None,
        typer.Option(
            "--exclusions", help="国家方案的手术操作除外表（代码、类型 灰码/非必选/中医必选）"
        ),
    ] = None,
) -> None:
    if fmt not in ("regional", "national"):
        fail(f"--format 应为 regional 或 national，收到 {fmt!r}")
    codes = load_codes(codes_dir)
    if fmt == "regional":
        try:
            table = load_official_directory(file, codes)
        except DirectoryFileError as exc:
            fail(str(exc))
        pq.write_table(table, out)
        kinds = "，".join(
            f"{DIRECTORY_KIND_LABELS[k]} {n:,}" for k, n in directory_kinds(table).items() if n
        )
        console.print(f"已导入 {table.num_rows} 个病种（{kinds}）→ {out}")
        return
    _load_national(file, out, codes, history, hospitals, policy, cases, exclusions)


def _load_national(
    file: Path,
    out: Path,
    codes: object,
    history: list[Path] | None,
    hospitals: Path | None,
    policy: Path | None,
    cases: list[Path] | None,
    exclusions_file: Path | None = None,
) -> None:
    from opendip.directory.national import (
        entry_rate,
        load_exclusions,
        load_national_scheme,
        localise,
        with_exclusions,
    )

    if not history or hospitals is None or policy is None:
        fail("--format national 需要 --history、--hospitals 与 --policy（用本地历史数据本地化）")
    _, pol = load_policy_file(policy)
    try:
        frame = load_national_scheme(file, codes)  # type: ignore[arg-type]
        exclusions = load_exclusions(exclusions_file) if exclusions_file else None
    except DirectoryFileError as exc:
        fail(str(exc))
    con = connect()
    pt, dc = procedure_types(con, codes), diagnosis_codes(con, codes)  # type: ignore[arg-type]
    with progress() as bar:
        task = bar.add_task("本地化国家分组方案", total=None)
        result = localise(
            frame, read_tables(con, history), con.read_parquet(str(hospitals)), pt, pol, dc,
            exclusions,
        )  # fmt: skip
        bar.update(task, total=1, completed=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(result.table, out)
    frame_path = out.with_name(f"{out.stem}.national.parquet")
    pq.write_table(result.frame, frame_path)
    merged_path = out.with_name(f"{out.stem}.merged.csv")
    with merged_path.open("w", encoding="utf-8-sig", newline="") as fh:
        import csv

        w = csv.writer(fh)
        w.writerow(["病种编码", "病种名称", "本地病例数", "临界值", "并入综合病种", "原因"])
        for r in result.merged.to_pylist():
            w.writerow([r["group_code"], r["group_name"], r["cases"], r["threshold"],
                        r["merged_into"], r["reason"]])  # fmt: skip
    metrics = dict(result.metrics)
    if cases:
        grouped, total = entry_rate(
            read_tables(con, cases), result.table, pt, with_exclusions(pol, exclusions), dc
        )
        metrics["entry_cases"], metrics["entry_total"] = grouped, total
        metrics["entry_rate"] = round(grouped / total, 6) if total else None
    if exclusions is not None and exclusions.num_rows:
        import yaml

        snippet = out.with_name(f"{out.stem}.exclusions.yaml")
        ignore = with_exclusions(pol, exclusions).grouping.ignore_procedure_prefixes
        snippet.write_text(
            "# 国家方案除外的手术操作：请并入政策文件的 grouping.ignore_procedure_prefixes\n"
            + yaml.safe_dump({"grouping": {"ignore_procedure_prefixes": ignore}},
                             allow_unicode=True),
            encoding="utf-8",
        )  # fmt: skip
        console.print(
            f"[yellow]提示[/] 除外手术操作 {exclusions.num_rows} 个已用于本地化；入组时请把 "
            f"{snippet} 中的 grouping.ignore_procedure_prefixes 并入政策文件"
        )
    metrics_path = out.with_name(f"{out.stem}.metrics.json")
    metrics_path.write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
    table = Table(title="国家分组方案本地化 / national scheme localised")
    table.add_column("项目")
    table.add_column("数量", justify="right")
    labels = {
        "frame_groups": "国家方案病种数", "frame_core_groups": "其中核心病种",
        "threshold": "本地临界值（病例数）", "merged_core_groups": "低于临界值并入综合的核心病种",
        "merged_with_cases": "其中有本地病例的", "added_comprehensive_groups": "新增综合病种",
        "dropped_groups": "本地无病例而未列入的病种", "local_groups": "本地目录病种数",
        "local_core_groups": "其中核心病种", "history_cases_in_groups": "入组的历史病例",
    }  # fmt: skip
    for key, label in labels.items():
        table.add_row(label, f"{metrics[key]:,}")
    if "entry_rate" in metrics:
        table.add_row(
            "当年入组率",
            f"{metrics['entry_rate']:.2%}（{metrics['entry_cases']:,}/{metrics['entry_total']:,}）",
        )
    console.print(table)
    console.print(
        f"本地目录 → {out}；国家框架 → {frame_path}（对比：opendip directory diff {frame_path} "
        f"{out}）；合并说明 → {merged_path}；指标 → {metrics_path}"
    )


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
    "groups_by_kind": "病种数（核心/综合/基层/特殊/新增）",
    "local_groups_missing": "政策所列新增病种未在目录中（病种编码）",
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
    if key == "groups_by_kind" and isinstance(value, dict):
        return "，".join(f"{DIRECTORY_KIND_LABELS.get(t, t)} {n:,}" for t, n in value.items())
    if key == "local_groups_missing" and isinstance(value, list):
        return "、".join(value)
    if key == "core_case_share" and isinstance(value, float):
        return f"{value:.2%}"
    if key == "all_case_mean_fen" and isinstance(value, int):
        return f"{fen_to_yuan(value):,}"
    if isinstance(value, bool):
        return "是" if value else "否（已达轮数上限）"
    if isinstance(value, int):
        return f"{value:,}"
    return json.dumps(value, ensure_ascii=False)
