"""以收定支 budget and the year-end point value forecast, with its back-test.

Budget (`dip_budget`): DIP budget = (income + carry-over) × (1 − risk reserve) × inpatient
share × (1 − other methods), per pool, half up to the fen (policy `budget.plan`).

Forecast (`forecast_point_value`): after month k of the year, each pool's year-end total
settled score, patients' share and non-DIP fee-for-service are projected as "so far ÷ the
share of the year that months 1..k carried in history" (seasonality: cumulative share of the
year's total cost by month, per pool, from past years' settlement lists). The point value
follows with the engine's own formula (`pool_funds`, `final_point_value`); its interval uses
the smallest and largest historical share. A warning is raised when the forecast drifts from
the budget point value by more than `budget.forecast_tolerance`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal

import ibis
import ibis.expr.types as ir

from opendip.policy import Policy
from opendip.settlement.pointvalue import budget_point_value, final_point_value, pool_funds


class ForecastError(ValueError):
    """The forecast cannot be made (Chinese message naming the input or key)."""


@dataclass(frozen=True)
class BudgetLine:
    pool: str
    income_fen: int
    carryover_fen: int
    after_reserve_fen: int
    inpatient_fen: int
    dip_budget_fen: int
    policy_budget_fen: int

    @property
    def difference_fen(self) -> int:
        return self.dip_budget_fen - self.policy_budget_fen


def _fen(yuan: Decimal) -> int:
    return int((Decimal(yuan) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def dip_budget(policy: Policy) -> list[BudgetLine]:
    """The DIP budget of each pool from its income plan (policy `budget.plan`)."""
    if not policy.budget.plan:
        raise ForecastError("政策文件没有以收定支收入计划（budget.plan），无法测算预算")
    out = []
    for pool in policy.pool_ids:
        p = policy.budget.plan.get(pool)
        if p is None:
            raise ForecastError(f"budget.plan 缺少统筹区 {pool} 的收入计划")
        total = Decimal(p.expected_income_yuan) + Decimal(p.carryover_yuan)
        after = total * (1 - p.risk_reserve_share)
        inpatient = after * p.inpatient_share
        dip = inpatient * (1 - p.other_methods_share)
        out.append(
            BudgetLine(
                pool=pool,
                income_fen=_fen(p.expected_income_yuan),
                carryover_fen=_fen(p.carryover_yuan),
                after_reserve_fen=_fen(after),
                inpatient_fen=_fen(inpatient),
                dip_budget_fen=_fen(dip),
                policy_budget_fen=_fen(policy.settlement.budget[pool].fund_budget_yuan),
            )
        )
    return out


def seasonality(history: ir.Table) -> dict[str, dict[int, tuple[Decimal, Decimal, Decimal]]]:
    """pool → month k → (mean, min, max) over history years of the share of the year's total
    cost settled in months 1..k. `history`: settlement lists with insurance_type, settle_month,
    total_cost (fen)."""
    t = history.select(
        pool=history.insurance_type.cast("string"),
        year=history.settle_month.substr(0, 4),
        month=history.settle_month.substr(5, 2).cast("int32"),
        cost=history.total_cost.cast("int64"),
    )
    m = t.group_by(["pool", "year", "month"]).aggregate(cost=t.cost.sum().cast("int64"))
    w = ibis.cumulative_window(group_by=["pool", "year"], order_by="month")
    y = ibis.window(group_by=["pool", "year"])
    m = m.mutate(cum=m.cost.sum().over(w).cast("int64"), total=m.cost.sum().over(y).cast("int64"))
    m = m.mutate(months=m.month.count().over(y))
    rows = m.filter(m.months == 12).order_by(["pool", "year", "month"]).to_pyarrow().to_pylist()
    shares: dict[str, dict[int, list[Decimal]]] = {}
    for r in rows:
        share = Decimal(r["cum"]) / Decimal(r["total"]) if r["total"] else Decimal(0)
        shares.setdefault(r["pool"], {}).setdefault(int(r["month"]), []).append(share)
    if not shares:
        raise ForecastError("历史结算清单中没有完整 12 个月的年度，无法估计季节性")
    return {
        pool: {k: (sum(v) / len(v), min(v), max(v)) for k, v in months.items()}
        for pool, months in shares.items()
    }


@dataclass(frozen=True)
class PoolForecast:
    pool: str
    through_month: int
    months_known: int
    score_so_far: Decimal
    projected_score: Decimal
    point_value: Decimal
    point_value_low: Decimal
    point_value_high: Decimal
    budget_point_value: Decimal
    drift: Decimal
    tolerance: Decimal
    warning: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def message(self) -> str:
        from opendip.contract.tables import INSURANCE_TYPE_LABELS

        way = "高于" if self.drift > 0 else "低于"
        text = (
            f"{INSURANCE_TYPE_LABELS.get(self.pool, self.pool)}：据 1—{self.through_month} 月预测年终结算点值 {self.point_value} 元/分"
            f"（区间 {self.point_value_low}～{self.point_value_high}），{way}预算点值 "
            f"{self.budget_point_value} 元/分 {abs(self.drift) * 100:.2f}%"
        )
        if self.warning:
            text += f"，超过容差 {self.tolerance * 100:.0f}%，请关注"
        return text


def _sums(scored: ir.Table, not_dip: ir.Table | None, k: int, year: int) -> dict[str, dict]:
    months = [f"{year}-{m:02d}" for m in range(1, k + 1)]
    s = scored.filter(scored.settle_month.isin(months))
    rows = {
        r["pool"]: {
            "score": Decimal(r["score"] or 0),
            "personal": int(r["personal"] or 0),
            "n_months": int(r["n_months"]),
            "non_dip": 0,
        }
        for r in s.group_by("pool")
        .aggregate(
            score=s.settled_score.sum(),
            personal=s.personal_share_fen.sum().cast("int64"),
            n_months=s.settle_month.nunique(),
        )
        .to_pyarrow()
        .to_pylist()
    }
    if not_dip is not None:
        nd = not_dip.filter(not_dip.settle_month.isin(months) & (not_dip.status == "按项目付费"))
        for r in (
            nd.group_by("pool")
            .aggregate(ffs=nd.ffs_fund_fen.fill_null(0).sum().cast("int64"))
            .to_pyarrow()
            .to_pylist()
        ):
            if r["pool"] in rows:
                rows[r["pool"]]["non_dip"] = int(r["ffs"] or 0)
    return rows


def forecast_point_value(
    scored: ir.Table,
    not_dip: ir.Table | None,
    through_month: int,
    seasons: dict[str, dict[int, tuple[Decimal, Decimal, Decimal]]],
    policy: Policy,
    history=None,
) -> list[PoolForecast]:
    """Year-end point value per pool from the months 1..through_month of `scored` (SCORED
    columns + settle_month) and `not_dip` (pool, settle_month, status, ffs_fund_fen)."""
    if not 1 <= through_month <= 12:
        raise ForecastError(f"预测所依据的月份须在 1—12 之间（当前 {through_month}）")
    year = policy.year
    sums = _sums(scored, not_dip, through_month, year)
    if not sums:
        raise ForecastError(f"{year} 年 1—{through_month} 月没有 DIP 病例，无法预测")
    tol = policy.budget.forecast_tolerance
    out = []
    for pool in sorted(sums):
        if pool not in seasons or through_month not in seasons[pool]:
            raise ForecastError(f"历史数据中没有统筹区 {pool} 第 {through_month} 月的累计占比")
        mean, low_share, high_share = seasons[pool][through_month]
        s = sums[pool]

        def pv(share: Decimal, s: dict = s, pool: str = pool) -> tuple[Decimal, Decimal]:
            score = s["score"] / share
            non_dip = (Decimal(s["non_dip"]) / share).quantize(Decimal(1), ROUND_HALF_UP)
            personal = (Decimal(s["personal"]) / share).quantize(Decimal(1), ROUND_HALF_UP)
            funds = pool_funds(policy, pool, int(non_dip))
            value, _ = final_point_value(policy, funds, score, int(personal))
            return value, score

        value, projected = pv(mean)
        # More of the year still to come (small share so far) → more score → lower value.
        low, _ = pv(low_share)
        high, _ = pv(high_share)
        low, high = min(low, high), max(low, high)
        budget = budget_point_value(policy, pool, history)
        drift = ((value - budget) / budget).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        out.append(
            PoolForecast(
                pool=pool,
                through_month=through_month,
                months_known=s["n_months"],
                score_so_far=s["score"],
                projected_score=projected.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
                point_value=value,
                point_value_low=low,
                point_value_high=high,
                budget_point_value=budget,
                drift=drift,
                tolerance=tol,
                warning=abs(drift) > tol,
            )
        )
    return out
