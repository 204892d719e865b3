"""`opendip forecast budget|point-value|backtest`: 以收定支 and the point value forecast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opendip.cli.common import console, fail
from opendip.settlement.output import yuan

app = typer.Typer(
    no_args_is_help=True,
    help="预算与点值预测：以收定支、年终点值预测与回测 / budget and point value forecast",
)
History = Annotated[
    list[Path], typer.Option("--history", help="历史年度结算清单 Parquet（估计各月累计占比）")
]


@app.command("budget")
def budget_cmd(policy: Annotated[Path, typer.Option("--policy", help="政策文件")]) -> None:
    """以收定支：由统筹基金预计收入与政策比例测算各险种 DIP 预算，并与政策预算对照。"""
    from opendip.forecast import ForecastError, dip_budget
    from opendip.policy import PolicyError, PolicyFile

    try:
        lines = dip_budget(PolicyFile.read(policy).periods()[-1][2])
    except (ForecastError, PolicyError) as exc:
        fail(str(exc))
    t = Table(title="以收定支 DIP 预算测算（元）")
    for c in (
        "险种",
        "预计收入",
        "上年结余",
        "扣除风险储备后",
        "住院统筹",
        "DIP 预算",
        "政策预算",
        "差额",
    ):
        t.add_column(c)
    for b in lines:
        t.add_row(
            b.pool, yuan(b.income_fen), yuan(b.carryover_fen), yuan(b.after_reserve_fen),
            yuan(b.inpatient_fen), yuan(b.dip_budget_fen), yuan(b.policy_budget_fen),
            yuan(b.difference_fen),
        )  # fmt: skip
    console.print(t)


@app.command("point-value")
def point_value_cmd(
    policy: Annotated[Path, typer.Option("--policy", help="政策文件")],
    month_run: Annotated[
        list[Path], typer.Option("--month-run", help="本年度各月预结算运行目录（可重复）")
    ],
    history: History,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="写出 forecast.json 的目录（如最新月度运行目录，月报读取）"),
    ] = None,
) -> None:
    """据本年已结算月份预测年终结算点值（含区间），偏离预算点值超过容差时提示。"""
    from opendip.forecast import ForecastError
    from opendip.forecast.run import forecast_from_months
    from opendip.policy import PolicyError
    from opendip.scoring import ScoringError

    try:
        rows = forecast_from_months(policy, month_run, history)
    except (ForecastError, PolicyError, ScoringError) as exc:
        fail(str(exc))
    for f in rows:
        console.print(("[bold red]预警[/] " if f.warning else "") + f.message())
    if out is not None:
        from opendip.forecast.run import FORECAST_FILE, write_forecast

        out.mkdir(parents=True, exist_ok=True)
        console.print(f"预测 → {write_forecast(rows, out / FORECAST_FILE)}")


@app.command("backtest")
def backtest_cmd(
    run: Annotated[Path, typer.Option("--run", help="年终清算运行目录")],
    history: History,
    out: Annotated[Path | None, typer.Option("--out", help="输出 Parquet")] = None,
) -> None:
    """回测：以清算年度的 1—k 月（k=1..11）预测年终点值，与实际结算点值比较。"""
    import pyarrow.parquet as pq

    from opendip.forecast import ForecastError
    from opendip.forecast.run import backtest

    try:
        table = backtest(run, history)
    except ForecastError as exc:
        fail(str(exc))
    t = Table(title="年终点值预测回测（误差 = 预测 ÷ 实际 − 1）")
    for c in ("险种", "依据月份", "预测", "区间", "实际", "误差", "落入区间"):
        t.add_column(c)
    for r in table.to_pylist():
        t.add_row(
            r["pool"], f"1—{r['through_month']} 月", str(r["forecast"]),
            f"{r['low']}～{r['high']}", str(r["actual"]), f"{r['error'] * 100:.2f}%",
            "是" if r["within_interval"] else "否",
        )  # fmt: skip
    console.print(t)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out)
