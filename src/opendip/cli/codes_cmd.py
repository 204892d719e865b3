"""`opendip codes load|show|map`."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import typer
from rich.table import Table

from opendip.cli.common import console, err_console, fail
from opendip.codes import (
    CodeTableError,
    CodeTables,
    apply_mapping,
    demo_code_tables,
    diagnosis_block,
    diagnosis_category,
    diagnosis_chapter,
    diagnosis_subcategory,
    load_code_tables,
    load_mapping,
    normalise_code,
    procedure_category,
    procedure_chapter,
    procedure_chapter_name,
    procedure_subcategory,
    read_code_tables,
)
from opendip.contract import CASES
from opendip.contract.cells import safe_row

app = typer.Typer(
    no_args_is_help=True, help="医保版疾病诊断与手术操作代码表 / insurance-edition code tables"
)

Out = Annotated[Path, typer.Option("--out", help="输出目录 / output directory")]
TablesDir = Annotated[
    Path | None,
    typer.Option(
        "--tables", help="codes load 输出的代码表目录（默认示范代码表）/ tables dir (default: demo)"
    ),
]
SEX = {"1": "仅男性", "2": "仅女性", None: "不限"}
TYPE = {
    "diagnostic": "诊断性操作",
    "therapeutic": "治疗性操作",
    "interventional": "介入治疗",
    "surgery": "手术",
}
PREVIEW_ROWS = 30


def _print_errors(exc: CodeTableError) -> None:
    err_console.print(f"[bold red]✗[/] 代码表校验失败，共 {len(exc.errors)} 处错误：")
    for line in exc.errors[:100]:
        err_console.print(f"  {line}", soft_wrap=True, markup=False, highlight=False)
    if len(exc.errors) > 100:
        err_console.print(f"  ……另有 {len(exc.errors) - 100} 处错误")


@app.command(
    "load",
    help="校验并导入代码表（含国家医保版发布格式），写出 Parquet；--version/--effective 按生效日期"
    "保存多个版本 / validate code tables, write parquet; dated versions",
)
def load(
    diagnoses: Annotated[Path, typer.Argument(help="疾病诊断代码表（CSV UTF-8/GBK 或 .xlsx）")],
    procedures: Annotated[Path, typer.Argument(help="手术操作代码表（CSV UTF-8/GBK 或 .xlsx）")],
    out: Out,
    version: Annotated[
        str | None, typer.Option("--version", help="版本号，如 医保版2.0 / version name")
    ] = None,
    effective: Annotated[
        str | None, typer.Option("--effective", help="生效日期 YYYY-MM-DD / effective date")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="国临版→医保版映射表（“灰码”记为灰码）")
    ] = None,
    grey: Annotated[
        Path | None,
        typer.Option("--grey", help="灰码/限制表：代码、限制（不可作主要诊断、仅男性…）、值"),
    ] = None,
    attributes: Annotated[
        Path | None,
        typer.Option("--procedure-attributes", help="手术操作属性表（代码、手术操作类别）"),
    ] = None,
) -> None:
    import datetime as dt

    from opendip.codes.tables import LoadReport
    from opendip.codes.versions import (
        CodeVersion,
        CodeVersions,
        apply_grey_list,
        load_grey_list,
        load_mapping_national,
    )

    if (version is None) != (effective is None):
        fail("--version 与 --effective 须同时给出")
    report = LoadReport()
    try:
        tables = load_code_tables(diagnoses, procedures, attributes, report)
        mapping_table, grey_table = load_mapping_national(mapping) if mapping else (None, None)
        if grey:
            listed = load_grey_list(grey)
            grey_table = listed if grey_table is None else pa.concat_tables([grey_table, listed])
        if grey_table is not None:
            tables = apply_grey_list(tables, grey_table)
    except CodeTableError as exc:
        _print_errors(exc)
        raise typer.Exit(1) from exc
    if version is None:
        dpath, ppath = tables.write(out)
    else:
        try:
            day = dt.date.fromisoformat(str(effective))
        except ValueError:
            fail(f"生效日期应为 YYYY-MM-DD，收到 {effective!r}")
        entry = CodeVersion(version, day, tables, mapping_table, grey_table)
        try:
            versions = (
                CodeVersions.read(out).add(entry)
                if (out / "versions.json").exists()
                else CodeVersions([entry])
            )
        except CodeTableError as exc:
            fail(str(exc))
        versions.write(out)
        dpath, ppath = out / version / "diagnoses.parquet", out / version / "procedures.parquet"
    table = Table(title="代码表导入结果 / code tables loaded")
    table.add_column("项目")
    table.add_column("数量", justify="right")
    table.add_column("说明")
    table.add_row("疾病诊断", f"{tables.diagnoses.num_rows:,}", str(dpath))
    table.add_row("手术操作", f"{tables.procedures.num_rows:,}", str(ppath))
    retired = report.retired
    if retired["diagnosis"] or retired["procedure"]:
        table.add_row(
            "已停用（有效标志为 0，未导入）",
            f"{len(retired['diagnosis']) + len(retired['procedure']):,}",
            "、".join((retired["diagnosis"] + retired["procedure"])[:5]),
        )
    if report.types_from_attributes:
        table.add_row("手术操作类别取自属性表", f"{report.types_from_attributes:,}", "")
    if report.types_inferred:
        table.add_row(
            "手术操作类别按编码位置推定",
            f"{len(report.types_inferred):,}",
            "请用 --procedure-attributes 提供官方类别",
        )
    if mapping_table is not None:
        table.add_row("国临版→医保版映射", f"{mapping_table.num_rows:,}", str(mapping))
    if grey_table is not None:
        table.add_row("灰码及限制", f"{grey_table.num_rows:,}", "")
        grey_procs = grey_table.filter(
            pc.and_(
                pc.equal(grey_table["kind"], "procedure"),
                pc.equal(grey_table["restriction"], "grey"),
            )
        )["code"].to_pylist()
        if grey_procs:
            import yaml

            snippet = out / "grey_procedures.yaml"
            out.mkdir(parents=True, exist_ok=True)
            snippet.write_text(
                "# 医保灰码手术操作不参与分组：请并入政策文件的 grouping.ignore_procedure_prefixes\n"
                + yaml.safe_dump(
                    {"grouping": {"ignore_procedure_prefixes": grey_procs}}, allow_unicode=True
                ),
                encoding="utf-8",
            )
            table.add_row("灰码手术操作（不参与分组）", f"{len(grey_procs):,}", str(snippet))
    if version is not None:
        table.add_row("版本", version, f"自 {effective} 起生效")
    console.print(table)


@app.command(
    "check",
    help="按出院日期所适用的代码表版本检查病例代码，统计停用、未知、未映射、灰码 / "
    "check cases against the code-table version in force at discharge",
)
def check(
    cases: Annotated[Path, typer.Argument(help="病例 cases.parquet")],
    versions_dir: Annotated[Path, typer.Option("--versions", help="codes load --version 的目录")],
    out: Annotated[Path | None, typer.Option("--out", help="写出统计 CSV（UTF-8 BOM）")] = None,
) -> None:
    from opendip.codes.versions import PROBLEM_LABELS, CodeVersions, check_cases

    try:
        versions = CodeVersions.read(versions_dir)
    except CodeTableError as exc:
        fail(str(exc))
    findings, report = check_cases(pq.read_table(cases), versions)
    table = Table(title="代码检查（按出院日期适用的版本） / codes by version in force")
    for col in ("版本", "问题", "类型", "代码", "次数", "病例数"):
        table.add_column(col)
    kinds = {"diagnosis": "诊断", "procedure": "手术操作"}
    for row in report.slice(0, PREVIEW_ROWS).to_pylist():
        table.add_row(
            row["version"], PROBLEM_LABELS[row["problem"]], kinds[row["kind"]], row["code"],
            f"{row['occurrences']:,}", f"{row['cases']:,}",
        )  # fmt: skip
    console.print(table)
    totals = pc.value_counts(findings["problem"]).to_pylist() if findings.num_rows else []
    for t in totals:
        console.print(f"{PROBLEM_LABELS[t['values']]}：{t['counts']:,} 处")
    if out is not None:
        with out.open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["版本", "问题", "类型", "代码", "次数", "病例数"])
            for row in report.to_pylist():
                w.writerow(
                    [row["version"], PROBLEM_LABELS[row["problem"]], kinds[row["kind"]],
                     row["code"], row["occurrences"], row["cases"]]
                )  # fmt: skip
        console.print(f"统计已写入 {out}")


def _tables(directory: Path | None) -> CodeTables:
    if directory is None:
        return demo_code_tables()
    try:
        return read_code_tables(directory)
    except CodeTableError as exc:
        fail(str(exc))


@app.command("show", help="显示代码的层级与标志 / show a code's hierarchy and flags")
def show(
    code: Annotated[str, typer.Argument(help="诊断或手术操作代码，如 K35.800x001、47.0100")],
    tables_dir: TablesDir = None,
) -> None:
    norm = normalise_code(code)
    if not norm:
        fail("代码为空")
    tables = _tables(tables_dir)
    table = Table(title=f"代码 {norm}（{'示范代码表' if tables_dir is None else tables_dir}）")
    table.add_column("项目")
    table.add_column("值")
    if norm[0].isalpha():
        row = tables.diagnosis(norm)
        table.add_row("类型", "疾病诊断（ICD-10 医保版）")
        table.add_row("章", diagnosis_chapter(norm) or "（未知）")
        table.add_row("节", diagnosis_block(norm) or "（未知）")
        table.add_row("类目", diagnosis_category(norm))
        table.add_row("亚目", diagnosis_subcategory(norm))
        if row is not None:
            table.add_row("名称", str(row["name"]))
            table.add_row("可作主要诊断", "是" if row["valid_as_main"] else "否")
            table.add_row("性别限制", SEX.get(row["sex_restriction"], "不限"))  # type: ignore[arg-type]
            ages = (row["age_min_days"], row["age_max_days"])
            if ages != (None, None):
                table.add_row("年龄限制(天)", f"{ages[0] or 0} – {ages[1] or '不限'}")
    else:
        row = tables.procedure(norm)
        table.add_row("类型", "手术操作（ICD-9-CM-3 医保版）")
        chapter = procedure_chapter(norm)
        table.add_row("章", f"{chapter} {procedure_chapter_name(norm)}" if chapter else "（未知）")
        table.add_row("类目", procedure_category(norm))
        table.add_row("亚目", procedure_subcategory(norm))
        if row is not None:
            table.add_row("名称", str(row["name"]))
            table.add_row("手术操作类别", TYPE.get(str(row["procedure_type"]), "?"))
            table.add_row("性别限制", SEX.get(row["sex_restriction"], "不限"))  # type: ignore[arg-type]
    console.print(table)
    if row is None:
        source = tables.diagnoses if norm[0].isalpha() else tables.procedures
        similar = source.filter(pc.starts_with(source["code"], norm)).slice(0, 10)
        err_console.print(f"[bold red]✗[/] 代码 {norm} 不在代码表中（以上层级由代码推导）")
        if similar.num_rows:
            err_console.print("以此开头的代码：")
            for r in similar.to_pylist():
                err_console.print(f"  {r['code']}  {r['name']}")
        raise typer.Exit(1)


@app.command("map", help="国临版 → 医保版代码映射，报告未映射代码 / map clinical codes")
def map_codes(
    cases: Annotated[Path, typer.Argument(help="病例 Parquet 文件（opendip import 的输出）")],
    mapping: Annotated[
        Path, typer.Option("--mapping", help="映射表（CSV/xlsx：类型,国临版代码,医保版代码）")
    ],
    out: Out,
) -> None:
    try:
        mapping_table = load_mapping(mapping)
    except CodeTableError as exc:
        _print_errors(exc)
        raise typer.Exit(1) from exc
    if not cases.exists():
        fail(f"{cases}: 文件不存在")
    try:
        table = pq.read_table(cases)
    except Exception as exc:  # pyarrow raises several error types for a bad file
        fail(f"{cases}: 无法读取 Parquet 文件（{exc}）")
    code_columns = ("main_diagnosis", "other_diagnoses", "main_procedure", "other_procedures")
    if not any(c in table.column_names for c in code_columns):
        fail(f"{cases}: 没有诊断或手术操作列（{', '.join(code_columns)}）")
    mapped, report = apply_mapping(table, mapping_table)
    if set(CASES.names) <= set(mapped.column_names):
        mapped = CASES.conform(mapped)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(mapped, out / "cases.parquet")
    with (out / "unmapped.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["类型", "国临版代码", "出现次数", "病例数"])
        for r in report.to_pylist():
            kind = "诊断" if r["kind"] == "diagnosis" else "手术操作"
            writer.writerow(safe_row([kind, r["clinical_code"], r["occurrences"], r["cases"]]))
    console.print(
        f"已映射 {mapped.num_rows:,} 例 → {out / 'cases.parquet'}；"
        f"未映射代码 {report.num_rows:,} 个（{sum(report['occurrences'].to_pylist()):,} 次）"
        f" → {out / 'unmapped.csv'}"
    )
    if report.num_rows:
        view = Table(title=f"未映射代码（前 {min(PREVIEW_ROWS, report.num_rows)} 个）")
        for col in ("类型", "国临版代码", "出现次数", "病例数"):
            view.add_column(col, justify="right" if col in ("出现次数", "病例数") else "left")
        for r in report.slice(0, PREVIEW_ROWS).to_pylist():
            kind = "诊断" if r["kind"] == "diagnosis" else "手术操作"
            view.add_row(kind, r["clinical_code"], f"{r['occurrences']:,}", f"{r['cases']:,}")
        console.print(view)
