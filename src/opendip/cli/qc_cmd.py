"""`opendip qc`: settlement-list quality control (结算清单质控)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opendip.cli.common import console, fail
from opendip.cli.inputs import (
    Engine,
    EngineOpt,
    load_codes,
    load_policy_file,
    open_engine,
    read_tables,
)
from opendip.qc import RuleSetError, codes_to_ibis, load_rule_set, rules_for_policy, run_qc
from opendip.qc.export import write_outputs
from opendip.qc.summary import evaluate_labels


def qc(
    policy: Annotated[
        Path, typer.Option("--policy", help="政策文件（qc: 规则集、停用规则、参数）")
    ],
    cases: Annotated[list[Path], typer.Option("--cases", help="病例 Parquet 文件或目录")],
    out: Annotated[Path, typer.Option("--out", help="输出目录")],
    codes_dir: Annotated[
        Path | None, typer.Option("--codes-dir", help="医保版代码表目录（默认：示范代码表）")
    ] = None,
    rules: Annotated[
        Path | None, typer.Option("--rules", help="规则集文件（默认：政策 qc.rule_set）")
    ] = None,
    run_date: Annotated[
        str | None,
        typer.Option(
            "--run-date", help="质控日期 YYYY-MM-DD（晚于它的日期为错误；默认：政策或今天）"
        ),
    ] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="合成数据 labels.parquet：报告查全率与查准率")
    ] = None,
    excel: Annotated[bool, typer.Option("--excel/--no-excel", help="是否导出 Excel")] = True,
    engine: EngineOpt = Engine.duckdb,
) -> None:
    """结算清单质控 / settlement-list quality control."""
    pf, pol = load_policy_file(policy)
    when = None
    if run_date:
        try:
            when = dt.date.fromisoformat(run_date)
        except ValueError:
            fail(f"--run-date 不是 YYYY-MM-DD 日期：{run_date}")
    try:
        rule_set = load_rule_set(rules) if rules else rules_for_policy(pol, pf.source)
    except RuleSetError as exc:
        fail(str(exc))
    code_tables = load_codes(codes_dir)
    con = open_engine(engine)
    case_table = read_tables(con, cases)
    try:
        result = run_qc(case_table, codes_to_ibis(con, code_tables), rule_set, pol, when)
    except RuleSetError as exc:
        fail(str(exc))
    outputs = write_outputs(
        result,
        out,
        excel=excel,
        context={
            "政策": f"{pol.region.name} {pol.year}（{pol.version}）",
            "病例文件": ", ".join(map(str, cases)),
        },
    )
    head = outputs.overall

    table = Table(
        title=f"结算清单质控：{result.rules.name}（{result.rules.version}），质控日期 {result.run_date}"
    )
    table.add_column("指标")
    table.add_column("值", justify="right")
    table.add_row("检查病例数", f"{head['cases']:,}")
    table.add_row("通过（无错误与警告）", f"{head['passed']:,}")
    table.add_row("合格率", f"{head['pass_rate']:.2%}" if head["pass_rate"] is not None else "—")
    table.add_row("[red]阻断（有错误，不予入组）[/]", f"{head['blocking']:,}")
    table.add_row(
        "错误 / 警告 / 提示", f"{head['errors']:,} / {head['warnings']:,} / {head['infos']:,}"
    )
    console.print(table)

    top = Table(title="问题最多的规则")
    for name in ("规则", "名称", "级别", "涉及病例"):
        top.add_column(name, justify="right" if name == "涉及病例" else "left")
    ranked = sorted((r for r in outputs.rules.to_pylist() if r["cases"]), key=lambda r: -r["cases"])
    for r in ranked[:10]:
        top.add_row(r["rule_id"], r["rule_name"], r["level_label"], f"{r['cases']:,}")
    if ranked:
        console.print(top)

    worst = sorted(
        (h for h in outputs.hospitals.to_pylist() if h["pass_rate"] is not None),
        key=lambda h: h["pass_rate"],
    )[:5]
    if worst:
        low = Table(title="合格率最低的医疗机构")
        for name in ("医疗机构", "病例数", "合格率", "阻断"):
            low.add_column(name, justify="left" if name == "医疗机构" else "right")
        for h in worst:
            low.add_row(
                h["hospital_id"], f"{h['cases']:,}", f"{h['pass_rate']:.2%}", f"{h['blocking']:,}"
            )
        console.print(low)

    if labels:
        if not labels.exists():
            fail(f"文件不存在：{labels}")
        per_label, clean = evaluate_labels(
            result.findings, con.read_parquet(str(labels)), case_table, result.rules
        )
        m = Table(title="对照注入标签：查全率与查准率")
        for name in ("标签", "注入", "查出", "查全率", "标记", "查准率"):
            m.add_column(name, justify="left" if name == "标签" else "right")
        for r in per_label.to_pyarrow().to_pylist():
            m.add_row(
                r["label"],
                f"{r['injected']:,}",
                f"{r['found']:,}",
                "—" if r["recall"] is None else f"{r['recall']:.2%}",
                f"{r['flagged']:,}",
                "—" if r["precision"] is None else f"{r['precision']:.2%}",
            )
        console.print(m)
        wrong = clean.count().to_pyarrow().as_py()
        console.print(f"无注入错误却被判为错误的病例记录：{wrong:,}")

    console.print(f"输出目录：{out}（{', '.join(p.name for p in outputs.paths.values())}）")
