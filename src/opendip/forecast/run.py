"""The forecast from files: monthly runs so far, or an annual run back-tested month by month."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import ibis
import pyarrow as pa

from opendip.engine import connect
from opendip.forecast.engine import ForecastError, PoolForecast, forecast_point_value, seasonality
from opendip.policy import PolicyFile
from opendip.reports.source import ReportInputError, read_manifest, resolve_run


def _history(con, paths: list[Path]):
    if not paths:
        raise ForecastError("需要至少一个历史年度的结算清单（--history），用于估计各月累计占比")
    for p in paths:
        if not p.is_file():
            raise ForecastError(f"历史结算清单文件不存在：{p}")
    t = con.read_parquet([str(p) for p in paths])
    return t.select("insurance_type", "settle_month", "total_cost")


def forecast_from_months(
    policy: Path, month_runs: list[Path], history: list[Path]
) -> list[PoolForecast]:
    """Forecast from monthly pre-settlement runs (`opendip settle month --out DIR` each)."""
    pf = PolicyFile.read(policy)
    final = pf.periods()[-1][2]
    con = connect()
    past = _history(con, history)
    scored, not_dip, months = [], [], []
    for run in month_runs:
        try:
            manifest, _ = read_manifest(run)
        except ReportInputError as exc:
            raise ForecastError(str(exc)) from exc
        month = (manifest.get("parameters") or {}).get("month")
        if not month:
            raise ForecastError(f"{run} 不是月度预结算运行目录（清单中没有 month）")
        if not str(month).startswith(f"{final.year}-"):
            raise ForecastError(f"{run} 是 {month} 的运行，不属于政策年度 {final.year}")
        months.append(str(month))
        s = con.read_parquet(str(run / "cases.parquet"))
        scored.append(
            s.select("pool", "settled_score", "personal_share_fen").mutate(
                settle_month=ibis.literal(str(month))
            )
        )
        nd = con.read_parquet(str(run / "not_dip.parquet"))
        not_dip.append(nd.select("pool", "settle_month", "status", "ffs_fund_fen"))
    if not scored:
        raise ForecastError("至少需要一个月度预结算运行目录（--month-run）")
    if len(set(months)) != len(months):
        raise ForecastError(f"月度运行重复：{sorted(months)}")
    through = max(int(m[5:]) for m in months)
    missing = [f"{final.year}-{k:02d}" for k in range(1, through + 1)
               if f"{final.year}-{k:02d}" not in months]  # fmt: skip
    if missing:
        raise ForecastError(
            f"缺少 {'、'.join(missing)} 的月度预结算运行：预测需要 1—{through} 月全部结果"
        )
    seasons = seasonality(past)
    return forecast_point_value(ibis.union(*scored), ibis.union(*not_dip), through, seasons, final)


def backtest(annual_run: Path, history: list[Path]) -> pa.Table:
    """For k = 1..11: the forecast from the annual run's months 1..k against the settled point
    value of the run (reconciliation), per pool; error = forecast ÷ actual − 1."""
    try:
        src = resolve_run(annual_run)
    except ReportInputError as exc:
        raise ForecastError(str(exc)) from exc
    if src.kind != "annual":
        raise ForecastError(f"{annual_run} 不是年终清算运行目录")
    final = src.policy.periods()[-1][2]
    con = connect()
    s = con.read_parquet(str(annual_run / "cases.parquet"))
    raw = con.read_parquet(str(src.paths["cases"]))
    raw = raw.select(r_case=raw.case_id, settle_month=raw.settle_month)
    scored = s.join(raw, s.case_id == raw.r_case).select(
        "pool", "settled_score", "personal_share_fen", "settle_month"
    )
    nd = con.read_parquet(str(annual_run / "not_dip.parquet"))
    nd = nd.select("pool", "settle_month", "status", "ffs_fund_fen")
    actual = {
        r["pool"]: Decimal(r["point_value"])
        for r in con.read_parquet(str(annual_run / "reconciliation.parquet"))
        .to_pyarrow()
        .to_pylist()
    }
    seasons = seasonality(_history(con, history))
    rows = []
    for k in range(1, 12):
        for f in forecast_point_value(scored, nd, k, seasons, final):
            err = (f.point_value / actual[f.pool] - 1).quantize(
                Decimal("0.0001"), rounding=ROUND_HALF_UP
            )
            rows.append(
                {
                    "pool": f.pool,
                    "through_month": k,
                    "forecast": f.point_value,
                    "low": f.point_value_low,
                    "high": f.point_value_high,
                    "actual": actual[f.pool],
                    "error": err,
                    "within_interval": f.point_value_low <= actual[f.pool] <= f.point_value_high,
                }
            )
    return pa.Table.from_pylist(rows)


FORECAST_FILE = "forecast.json"


def write_forecast(rows: list[PoolForecast], path: Path) -> Path:
    """The forecast as JSON (Decimals as text), read by the monthly report."""
    from opendip.settlement.output import write_json

    return write_json(
        {"pools": [{**r.as_dict(), "message": r.message()} for r in rows]}, Path(path)
    )


def read_forecast(run_dir: Path) -> list[dict] | None:
    """forecast.json beside a monthly run (its directory or the platform run above it)."""
    import json

    for d in (Path(run_dir), Path(run_dir).parent):
        p = d / FORECAST_FILE
        if p.is_file():
            try:
                return list(json.loads(p.read_text(encoding="utf-8"))["pools"])
            except (OSError, ValueError, KeyError):
                return None
    return None
