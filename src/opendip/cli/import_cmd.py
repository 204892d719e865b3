"""`opendip import cases|hospitals FILE… --out DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer
from rich.table import Table

from opendip.cli.common import console, err_console
from opendip.contract import CASES, HOSPITALS, TableContract
from opendip.ingest import ImportResult, import_table, write_outputs
from opendip.ingest.validate import RULES

app = typer.Typer(
    no_args_is_help=True, help="导入结算清单与机构表 / import settlement lists and hospitals"
)

Files = Annotated[
    list[Path], typer.Argument(help="CSV（UTF-8/GBK/GB18030）、Excel .xlsx 或 Parquet 文件")
]
Out = Annotated[Path, typer.Option("--out", help="输出目录 / output directory")]
Encoding = Annotated[
    str | None,
    typer.Option("--encoding", help="CSV 编码，如 utf-8、gbk（默认自动识别） / CSV encoding"),
]
Sheet = Annotated[
    str | None, typer.Option("--sheet", help="Excel 工作表名或序号（默认第一个） / sheet")
]

#: How many warnings per file and error kinds the summary shows.
SHOWN_WARNINGS = 5
SHOWN_ERROR_KINDS = 15


def _summary(result: ImportResult) -> Table:
    table = Table(title="导入结果 / import summary")
    for col, justify in (("文件", "left"), ("编码", "left"), ("读入", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    table.add_column("接收", justify="right", style="green")
    table.add_column("隔离", justify="right", style="yellow")
    table.add_column("说明")
    for f in result.files:
        note = "[red]无法读取（原因见下）[/]" if f.error else ""
        table.add_row(
            f.path, f.encoding or "", f"{f.read:,}", f"{f.accepted:,}", f"{f.quarantined:,}", note
        )
    accepted, quarantined = result.accepted.num_rows, result.quarantine.num_rows
    table.add_row(
        "合计", "", f"{result.read:,}", f"{accepted:,}", f"{quarantined:,}",
        f"读入 {result.read:,} = 接收 {accepted:,} + 隔离 {quarantined:,} ✓",
        style="bold",
    )  # fmt: skip
    return table


def _error_kinds(errors: pa.Table, contract: TableContract) -> Table | None:
    """Count of errors by field and kind, most frequent first."""
    if errors.num_rows == 0:
        return None
    counts = errors.group_by(["field", "rule"]).aggregate([("row_number", "count")])
    counts = counts.sort_by([("row_number_count", "descending")])
    table = Table(title="错误类型 / errors by kind")
    table.add_column("字段")
    table.add_column("错误类型")
    table.add_column("行数", justify="right")
    labels = {c.name: c.label for c in contract.columns}
    for row in counts.slice(0, SHOWN_ERROR_KINDS).to_pylist():
        field = row["field"] or ""
        table.add_row(
            labels.get(field, field) or "（整行）",
            RULES.get(row["rule"], row["rule"]),
            f"{row['row_number_count']:,}",
        )
    if counts.num_rows > SHOWN_ERROR_KINDS:
        table.caption = f"另有 {counts.num_rows - SHOWN_ERROR_KINDS} 类，见 errors.csv"
    return table


def _run(files: list[Path], out: Path, contract: TableContract, encoding: str | None,
         sheet: str | None) -> None:  # fmt: skip
    with err_console.status(f"正在导入 {len(files)} 个文件…"):
        result = import_table(files, contract, encoding, sheet)
        paths = write_outputs(result, out)
    console.print(_summary(result))
    kinds = _error_kinds(result.errors, contract)
    if kinds is not None:
        console.print(kinds)
    for f in result.files:
        for w in f.warnings[:SHOWN_WARNINGS]:
            console.print(f"[yellow]提示[/] {f.path}：{w}")
        if len(f.warnings) > SHOWN_WARNINGS:
            console.print(f"[yellow]提示[/] {f.path}：另有 {len(f.warnings) - SHOWN_WARNINGS} 条")
    console.print(
        f"接收 / accepted：{paths['accepted']}\n"
        f"隔离 / quarantine：{paths['quarantine']}\n"
        f"错误明细 / errors：{paths['errors']}"
    )
    for f in result.files:
        if f.error:
            err_console.print(f"[red]无法读取[/] {f.path}：{f.error}")
    if result.nothing_read:
        err_console.print("[bold red]错误[/]: 没有任何文件可以读取 / nothing could be read")
        raise typer.Exit(1)


@app.command("cases", help="导入医保结算清单 → cases.parquet / import settlement lists")
def cases(files: Files, out: Out, encoding: Encoding = None, sheet: Sheet = None) -> None:
    _run(files, out, CASES, encoding, sheet)


@app.command("hospitals", help="导入定点医疗机构表 → hospitals.parquet / import hospitals")
def hospitals(files: Files, out: Out, encoding: Encoding = None, sheet: Sheet = None) -> None:
    _run(files, out, HOSPITALS, encoding, sheet)


DiagnosisTypes = Annotated[
    str,
    typer.Option(
        "--diagnosis-types",
        help="诊断类别（DIAG_TYPE）编码约定：list = 1 西医主要 2 西医其他 3 中医主病 4 中医主证；"
        "platform = 1 西医 2 中医主病 3 中医主证 / DIAG_TYPE convention",
    ),
]


@app.command(
    "settlement-lists",
    help="导入多记录结构的医保结算清单（主记录 + 诊断、手术操作、重症监护、收费项目、基金支付）："
    "CSV 每类记录一个文件、Excel 每类一个工作表或嵌套 JSON → cases.parquet 及各记录表 / "
    "import multi-record settlement lists",
)
def settlement_lists(
    files: Annotated[
        list[Path],
        typer.Argument(help="CSV（每类记录一个文件）、Excel .xlsx（每类一个工作表）或 JSON 文件"),
    ],
    out: Out,
    encoding: Encoding = None,
    diagnosis_types: DiagnosisTypes = "list",
    codes_dir: Annotated[
        Path | None, typer.Option("--codes-dir", help="代码表目录（默认示范代码表） / code tables")
    ] = None,
    record_rules: Annotated[
        Path | None,
        typer.Option("--record-rules", help="子记录质控规则文件（默认内置） / record QC rules"),
    ] = None,
) -> None:
    from opendip.ingest.settlement import (
        SettlementImportError,
        import_settlement_lists,
        write_settlement_outputs,
    )

    try:
        with err_console.status(f"正在导入 {len(files)} 个文件…"):
            result = import_settlement_lists(files, encoding, diagnosis_types)
            paths = write_settlement_outputs(result, out)
    except SettlementImportError as exc:
        err_console.print(f"[bold red]错误[/]: {exc}")
        raise typer.Exit(1) from exc
    table = Table(title="导入结果（按记录类型） / import summary per record type")
    table.add_column("记录类型")
    table.add_column("读入", justify="right")
    table.add_column("接收", justify="right", style="green")
    table.add_column("隔离", justify="right", style="yellow")
    for r in result.records.values():
        read, accepted, quarantined = r.read, r.accepted.num_rows, r.quarantine.num_rows
        table.add_row(r.contract.label, f"{read:,}", f"{accepted:,}", f"{quarantined:,}")
    console.print(table)
    for r in result.records.values():
        kinds = _error_kinds(r.errors, r.contract)
        if kinds is not None:
            kinds.title = f"{r.contract.label}：错误类型"
            console.print(kinds)
        for f in r.files:
            if f.error:
                err_console.print(f"[red]无法读取[/] {f.path}：{f.error}")
            for w in f.warnings[:SHOWN_WARNINGS]:
                console.print(f"[yellow]提示[/] {f.path}：{w}")
    for w in result.warnings:
        console.print(f"[yellow]提示[/] {w}")
    _record_qc(result, out, codes_dir, record_rules)
    console.print(
        f"病例（扁平表） / flat cases：{paths['cases']}（{result.cases.num_rows:,} 例）\n"
        f"各记录表、隔离与错误明细 / records, quarantine, errors：{out}"
    )
    if result.records["settlement_lists"].nothing_read:
        err_console.print("[bold red]错误[/]: 结算清单主记录无法读取 / nothing could be read")
        raise typer.Exit(1)


def _record_qc(result: object, out: Path, codes_dir: Path | None, rules_path: Path | None) -> None:
    """Record-level QC of the accepted records → record_findings.parquet / .csv."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from opendip.cli.inputs import load_codes
    from opendip.qc.records import RecordRuleError, check_records, load_record_rules

    try:
        rules = load_record_rules(rules_path)
    except RecordRuleError as exc:
        err_console.print(f"[bold red]错误[/]: {exc}")
        raise typer.Exit(1) from exc
    records = {t: r.accepted for t, r in result.records.items()}  # type: ignore[attr-defined]
    findings = check_records(records, rules, load_codes(codes_dir).procedures)
    pq.write_table(findings, out / "record_findings.parquet")
    pacsv.write_csv(findings, out / "record_findings.csv")
    if findings.num_rows == 0:
        console.print("子记录质控：未发现问题 / record QC: no findings")
        return
    names = {r.id: r.name for r in rules.rules}
    counts = findings.group_by("rule_id").aggregate([("case_id", "count_distinct")])
    table = Table(title="子记录质控 / record QC")
    table.add_column("规则")
    table.add_column("名称")
    table.add_column("清单数", justify="right")
    for row in counts.sort_by("rule_id").to_pylist():
        rule_id = row["rule_id"]
        table.add_row(rule_id, names.get(rule_id, ""), f"{row['case_id_count_distinct']:,}")
    console.print(table)


@app.command(
    "front-pages",
    help="导入病案首页导出（HQMS/卫统4 格式）并转换为结算清单，列出无法从首页取得的字段 / "
    "import front-page exports as settlement lists",
)
def front_pages(
    files: Annotated[list[Path], typer.Argument(help="病案首页 CSV（UTF-8/GBK）或 Excel")],
    out: Out,
    hospital_id: Annotated[
        str | None, typer.Option("--hospital-id", help="定点医疗机构编号（首页没有）")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="国临版→医保版映射表（首页为国临版代码）")
    ] = None,
    encoding: Encoding = None,
    codes_dir: Annotated[
        Path | None, typer.Option("--codes-dir", help="代码表目录（默认示范代码表）")
    ] = None,
    lists: Annotated[
        Path | None,
        typer.Option("--lists", help="医保结算清单 Parquet（病案首页质控：首页与清单编码比对）"),
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="政策文件（qc.front_page_*；默认取默认值）")
    ] = None,
    submitted: Annotated[
        str | None, typer.Option("--submitted", help="首页上传日期 YYYY-MM-DD（默认今天）")
    ] = None,
) -> None:
    from opendip.codes import CodeTableError
    from opendip.codes.versions import load_mapping_national
    from opendip.ingest.frontpage import convert_front_pages, map_clinical_codes, write_converted
    from opendip.ingest.settlement import import_settlement_lists, write_settlement_outputs

    try:
        conversion = convert_front_pages(files, hospital_id, encoding)
    except (ValueError, OSError) as exc:
        err_console.print(f"[bold red]错误[/]: {exc}")
        raise typer.Exit(1) from exc
    if mapping is not None:
        try:
            rows, _grey = load_mapping_national(mapping)
        except CodeTableError as exc:
            err_console.print(f"[bold red]错误[/]: {exc}")
            raise typer.Exit(1) from exc
        from opendip.cli.inputs import load_codes

        unmapped = map_clinical_codes(conversion, rows, load_codes(codes_dir))
        if unmapped.num_rows:
            console.print(
                f"[yellow]提示[/] 未映射的国临版代码 {unmapped.num_rows} 个（"
                + "、".join(unmapped["clinical_code"].to_pylist()[:5])
                + "），见 unmapped_codes.csv"
            )
        out.mkdir(parents=True, exist_ok=True)
        import pyarrow.csv as pacsv

        pacsv.write_csv(unmapped, out / "unmapped_codes.csv")
    converted = write_converted(conversion, out / "converted")
    result = import_settlement_lists(converted)
    write_settlement_outputs(result, out)
    _record_qc(result, out, codes_dir, None)
    table = Table(title="病案首页 → 结算清单 / front pages converted")
    table.add_column("记录类型")
    table.add_column("读入", justify="right")
    table.add_column("接收", justify="right", style="green")
    table.add_column("隔离", justify="right", style="yellow")
    for r in result.records.values():
        if r.read:
            table.add_row(
                r.contract.label, f"{r.read:,}", f"{r.accepted.num_rows:,}",
                f"{r.quarantine.num_rows:,}",
            )  # fmt: skip
    console.print(table)
    fields = Table(title="无法从首页取得的结算清单字段 / fields not derivable")
    for col in ("字段", "名称", "原因", "清单数"):
        fields.add_column(col)
    import csv

    with (out / "underivable.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["字段", "名称", "原因", "清单数"])
        for r in conversion.underivable.to_pylist():
            w.writerow([r["field"], r["label"], r["reason"], r["cases"]])
            fields.add_row(r["field"], r["label"], r["reason"], f"{r['cases']:,}")
    console.print(fields)
    for w_ in conversion.warnings:
        console.print(f"[yellow]提示[/] {w_}")
    console.print(
        f"转换后的结算清单 → {out / 'converted'}；扁平病例 → {out / 'cases.parquet'}；"
        f"字段说明 → {out / 'underivable.csv'}"
    )
    _front_page_qc(conversion, out, lists, policy, submitted)


def _front_page_qc(
    conversion: object, out: Path, lists: Path | None, policy: Path | None, submitted: str | None
) -> None:
    """病案首页质控 of an imported export: findings, per-page status, pass rate per hospital."""
    import datetime as dt

    import pyarrow.parquet as pq

    from opendip.engine import connect
    from opendip.policy.sections.qc import QcPolicy
    from opendip.qc.frontpage import (
        FrontPageRuleError,
        front_pages_from_conversion,
        rules_for_qc_policy,
        run_front_page_qc,
    )

    try:
        day = dt.date.fromisoformat(submitted) if submitted else dt.date.today()
    except ValueError as exc:
        err_console.print(f"[bold red]错误[/]: --submitted 不是 YYYY-MM-DD 日期：{submitted}")
        raise typer.Exit(1) from exc
    qc, base = QcPolicy(), None
    if policy is not None:
        from opendip.cli.inputs import load_policy_file

        _pf, pol = load_policy_file(policy)
        qc, base = pol.qc, policy.resolve().parent
    if lists is not None and not lists.exists():
        err_console.print(f"[bold red]错误[/]: 文件不存在：{lists}")
        raise typer.Exit(1)
    list_table = (
        pq.read_table(lists)
        if lists is not None
        else pa.table({"case_id": pa.array([], pa.string())})
    )
    try:
        rules = rules_for_qc_policy(qc, base)
        result = run_front_page_qc(
            connect(), front_pages_from_conversion(conversion, day), list_table, qc, rules
        )
    except (FrontPageRuleError, ValueError) as exc:
        err_console.print(f"[bold red]错误[/]: {exc}")
        raise typer.Exit(1) from exc
    pq.write_table(result.findings, out / "front_page_findings.parquet")
    pq.write_table(result.status, out / "front_page_status.parquet")
    table = Table(title=f"病案首页质控（上传日期 {day}，时限 {qc.front_page_submit_days} 天）")
    for col in ("医疗机构", "首页数", "通过", "通过率"):
        table.add_column(col, justify="left" if col == "医疗机构" else "right")
    for r in result.by_hospital.to_pylist():
        rate = r["passed"] / r["checked"] if r["checked"] else None
        table.add_row(
            r["hospital_id"] or "（空）",
            f"{r['checked']:,}",
            f"{r['passed']:,}",
            "—" if rate is None else f"{rate:.2%}",
        )
    console.print(table)
    for f in result.findings.slice(0, 10).to_pylist():
        console.print(f"  {f['case_id']}  {f['rule_id']}  {f['message']}")
    if lists is None:
        console.print("[yellow]提示[/] 未给 --lists：首页与结算清单编码一致性未比对")
    console.print(
        f"首页质控问题 {result.findings.num_rows:,} 条 → {out / 'front_page_findings.parquet'}；"
        f"逐份结果 → {out / 'front_page_status.parquet'}（opendip assess --front-page-status）"
    )
