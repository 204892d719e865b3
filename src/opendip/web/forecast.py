"""年终点值预测 on the home page: the forecast engine (`opendip.forecast`) on this year's
monthly pre-settlement runs and the region's history years, cached per set of runs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

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
    return _CACHE[key]
