"""`opendip supervise`: ranked leads, monthly indicators, Excel workbook."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pyarrow.parquet as pq
import typer
from rich.table import Table

from opendip.cli.common import console, ensure_dir, err_console, fail
from opendip.cli.inputs import Engine, EngineOpt, load_policy_file, open_engine, parquet_files
from opendip.engine import read_parquet
from opendip.money import format_yuan
from opendip.supervision import LEAD_TYPES, SupervisionError, SupervisionInputs, supervise
from opendip.supervision.excel import write_workbook
from opendip.supervision.tables import SEVERITY_LABELS


def _optional(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    if not path.exists():
        fail(f"{what}文件不存在：{path}")
    return str(path)


def supervise_command(
    policy: Annotated[Path, typer.Option("--policy", help="政策文件")],
    cases: Annotated[
        list[Path], typer.Option("--cases", help="本期病例 Parquet 文件或目录（可重复）")
    ],
    out: Annotated[Path, typer.Option("--out", help="输出目录")],
    history: Annotated[
        list[Path] | None,
        typer.Option("--history", help="历史期病例（本院历史比较、同比；可重复）"),
    ] = None,
    grouped: Annotated[
        Path | None, typer.Option("--grouped", help="入组结果 grouped.parquet")
    ] = None,
    scored: Annotated[Path | None, typer.Option("--scored", help="分值结果 scored.parquet")] = None,
    hospitals: Annotated[
        Path | None, typer.Option("--hospitals", help="医疗机构表 hospitals.parquet（同级比较）")
    ] = None,
    excel: Annotated[bool, typer.Option("--excel/--no-excel", help="是否输出 Excel")] = True,
    engine: EngineOpt = Engine.duckdb,
) -> None:
    """智能监管：分解住院、高套分值、低标准入院、超长住院、费用转嫁线索与月度指标。"""
    _, pol = load_policy_file(policy)
    con = open_engine(engine)
    current_files = parquet_files(cases)
    history_files = parquet_files(history) if history else []
    overlap = sorted(set(current_files) & set(history_files))
    if overlap:
        fail(f"同一文件既是本期又是历史期：{overlap[0]}")
    try:
        inputs = SupervisionInputs(
            cases=read_parquet(con, current_files),
            history=read_parquet(con, history_files) if history_files else None,
            hospitals=con.read_parquet(p) if (p := _optional(hospitals, "医疗机构表")) else None,
            grouped=con.read_parquet(p) if (p := _optional(grouped, "入组结果")) else None,
            scored=con.read_parquet(p) if (p := _optional(scored, "分值结果")) else None,
        )
        with err_console.status("智能监管运行中…"):
            result = supervise(inputs, pol)
    except SupervisionError as exc:
        fail(str(exc))
    ensure_dir(out)
    pq.write_table(result.leads, out / "leads.parquet")
    pq.write_table(result.indicators, out / "indicators.parquet")
    names: dict[str, str] = {}
    if hospitals is not None:
        h = pq.read_table(hospitals)
        if "name" in h.column_names:
            names = dict(zip(h["hospital_id"].to_pylist(), h["name"].to_pylist(), strict=True))
    written = [out / "leads.parquet", out / "indicators.parquet"]
    if excel:
        written.append(
            write_workbook(
                out / "supervision.xlsx", result.leads, result.indicators, names, result.notes
            )
        )
    _summary(result, pol.supervision.top_leads, names)
    for path in written:
        console.print(f"已写入 {path}")


def _summary(result, top: int, names: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    leads = result.leads
    table = Table(title=f"监管线索汇总（{result.period}）")
    for h in ("线索类型", "线索数", "高", "中", "低", "涉及病例", "涉及金额(元)"):
        table.add_column(h, justify="left" if h == "线索类型" else "right")
    rows = leads.select(["lead_type", "severity", "case_count", "impact_fen"]).to_pylist()
    for lead_type, label in LEAD_TYPES.items():
        mine = [r for r in rows if r["lead_type"] == lead_type]
        sev = {k: sum(1 for r in mine if r["severity"] == k) for k in SEVERITY_LABELS}
        table.add_row(
            label,
            f"{len(mine):,}",
            f"{sev['high']:,}",
            f"{sev['medium']:,}",
            f"{sev['low']:,}",
            f"{sum(r['case_count'] for r in mine):,}",
            format_yuan(sum(r["impact_fen"] for r in mine)),
        )
    console.print(table)
    head = leads.slice(0, min(10, top)).to_pylist()
    if head:
        t = Table(title="涉及金额最高的线索（证据见 Excel / leads.parquet）")
        for h in ("排名", "类型", "机构", "严重程度", "病例数", "涉及金额(元)", "线索编号"):
            t.add_column(h)
        for r in head:
            t.add_row(
                str(r["rank_overall"]),
                r["type_label"],
                names.get(r["hospital_id"], r["hospital_id"]),
                SEVERITY_LABELS[r["severity"]],
                str(r["case_count"]),
                format_yuan(r["impact_fen"]),
                r["lead_id"],
            )
        console.print(t)
    anomalies = result.indicators.filter(result.indicators["anomaly"]).num_rows
    console.print(f"月度指标 {result.indicators.num_rows:,} 行，异常 {anomalies:,} 行。")
    for note in result.notes:
        console.print(f"[yellow]说明[/]：{note}")
