"""年终点值预测 on the home page: the forecast engine (`opendip.forecast`) on this year's
monthly pre-settlement runs and the region's history years, cached per set of runs."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from opendip.store import Run

log = logging.getLogger("opendip.web")
_CACHE: dict[tuple, list[dict[str, Any]]] = {}


def home_forecast(s: Session, runs: Any, data_dir: Path) -> list[dict[str, Any]]:
    """One row per pool (message, warning, value, interval), or [] when there is nothing to
    forecast from (no monthly run of the policy year, no history, no budget point value)."""
    from opendip.forecast import ForecastError
    from opendip.forecast.run import forecast_from_months
    from opendip.policy import PolicyError, PolicyFile, demo_policy_path

    policy = Path(runs.settings.policy_path or runs.region.policy_path() or demo_policy_path())
    try:
        year = PolicyFile.read(policy).periods()[-1][2].year
    except PolicyError:
        return []
    stmt = select(Run).where(
        Run.kind == "monthly",
        Run.period.startswith(f"{year}-"),
        Run.status.in_(("succeeded", "approved", "published")),
    )
    latest: dict[str, Path] = {}
    for run in s.scalars(stmt.order_by(Run.id)):
        d = runs.settlement_dir(run)
        if d is not None:
            latest[run.period] = d
    history = sorted(p for p in Path(data_dir).glob("cases_*.parquet") if p.stem[-4:] < str(year))
    if not latest or not history:
        return []
    key = (str(policy), tuple(sorted((k, str(v)) for k, v in latest.items())), tuple(history))
    if key not in _CACHE:
        try:
            rows = forecast_from_months(policy, list(latest.values()), history)
        except (ForecastError, PolicyError, ValueError) as exc:
            log.warning("forecast unavailable: %s", exc)
            return []
        _CACHE.clear()
        _CACHE[key] = [
            {
                "pool": r.pool,
                "message": r.message(),
                "warning": r.warning,
                "point_value": r.point_value,
                "low": r.point_value_low,
                "high": r.point_value_high,
                "budget": r.budget_point_value,
                "through_month": r.through_month,
            }
            for r in rows
        ]
    cleared = _cleared_point_values(s, runs, year)
    if not cleared:
        return _CACHE[key]
    return [_against_clearing(row, cleared, year) for row in _CACHE[key]]


def _cleared_point_values(s: Session, runs: Any, year: int) -> dict[str, Decimal]:
    """Settled point value per pool of the year's latest annual clearing, or {} before it."""
    stmt = (
        select(Run)
        .where(
            Run.kind == "annual",
            Run.period == str(year),
            Run.status.in_(("succeeded", "approved", "published")),
        )
        .order_by(Run.id.desc())
    )
    for run in s.scalars(stmt):
        d = runs.settlement_dir(run)
        if d is not None and (d / "reconciliation.parquet").is_file():
            table = pq.read_table(d / "reconciliation.parquet", columns=["pool", "point_value"])
            return {r["pool"]: Decimal(str(r["point_value"])) for r in table.to_pylist()}
    return {}


def _against_clearing(
    row: dict[str, Any], cleared: dict[str, Decimal], year: int
) -> dict[str, Any]:
    """Once the year is cleared, the forecast is history: show the settled value beside it."""
    from opendip.contract.tables import INSURANCE_TYPE_LABELS

    settled = cleared.get(row["pool"])
    if settled is None:
        return row
    label = INSURANCE_TYPE_LABELS.get(row["pool"], row["pool"])
    gap = (Decimal(str(row["point_value"])) - settled) / settled * 100 if settled else Decimal(0)
    message = (
        f"{label}：{year} 年年终清算已完成，结算点值 {settled} 元/分；"
        f"据 1—{row['through_month']} 月的预测为 {row['point_value']} 元/分"
        f"（区间 {row['low']}～{row['high']}），预测偏差 {gap:+.2f}%"
    )
    return {**row, "message": message, "warning": False, "settled": settled}
