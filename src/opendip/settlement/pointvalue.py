"""Budget, reserve and point value per pool (点值), exact Decimal arithmetic.

Pool level numbers are a handful of values per run, computed in Python `Decimal`/`int`:
- budget_fen = fund_budget_yuan in fen; reserve_fen = round(budget × reserve_share);
- available_fen = budget − reserve (− fund paid by item for non-DIP cases, if the policy says);
- final point value (结算点值), yuan per point, rounded half up to `point_value_decimals`:
  fund_plus_personal: (available + personal share of DIP cases) ÷ total settled score;
  fund_only: available ÷ total settled score;
  fund_over_ratio: available ÷ reimbursement ratio ÷ total settled score;
- budget point value (预算点值): the policy's value, or Σ wᵧ·costᵧ ÷ Σ wᵧ·scoreᵧ over the
  history years with the directory's year weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal

import pyarrow as pa

from opendip.money import yuan_to_fen
from opendip.policy import Policy
from opendip.scoring.batch import PV_DECIMALS
from opendip.settlement.errors import MissingParameterError, NoCasesError, SettlementError

HISTORY_COLUMNS = ("pool", "year", "total_cost_fen", "total_score")


@dataclass(frozen=True)
class PoolFunds:
    pool: str
    budget_fen: int
    reserve_fen: int
    non_dip_ffs_fen: int
    available_fen: int

    def as_dict(self) -> dict[str, int | str]:
        return asdict(self)


def _round(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def check_decimals(policy: Policy) -> int:
    d = policy.settlement.point_value_decimals
    if d > PV_DECIMALS:
        raise SettlementError(
            f"政策参数 settlement.point_value_decimals = {d} 超过点值列精度 {PV_DECIMALS} 位小数"
        )
    return d


def pool_funds(policy: Policy, pool: str, non_dip_ffs_fen: int = 0) -> PoolFunds:
    s = policy.settlement
    if pool not in s.budget:
        raise MissingParameterError(f"settlement.budget.{pool}", "该统筹区没有年度预算")
    budget = yuan_to_fen(s.budget[pool].fund_budget_yuan)
    if budget <= 0:
        raise SettlementError(f"政策参数 settlement.budget.{pool}.fund_budget_yuan 必须大于 0")
    reserve = int((Decimal(budget) * s.reserve_share).quantize(Decimal(1), ROUND_HALF_UP))
    deducted = non_dip_ffs_fen if s.deduct_non_dip_ffs else 0
    available = budget - reserve - deducted
    if available <= 0:
        raise SettlementError(
            f"统筹区 {pool}：预算 {budget} 分扣除调剂金 {reserve} 分及非 DIP 病例按项目支付 "
            f"{deducted} 分后不大于 0，无法计算点值"
        )
    return PoolFunds(pool, budget, reserve, deducted, available)


def final_point_value(
    policy: Policy, funds: PoolFunds, total_score: Decimal, personal_fen: int
) -> tuple[Decimal, Decimal]:
    """(rounded point value, the exact numerator in yuan it divides) for one pool."""
    s = policy.settlement
    if total_score <= 0:
        raise NoCasesError(f"统筹区 {funds.pool} 没有 DIP 病例（总结算分值为 0），无法计算结算点值")
    available = Decimal(funds.available_fen) / 100
    if s.point_value_formula == "fund_plus_personal":
        numerator = available + Decimal(personal_fen) / 100
    elif s.point_value_formula == "fund_only":
        numerator = available
    else:
        ratio = s.budget[funds.pool].reimbursement_ratio
        if ratio is None or ratio == 0:
            raise MissingParameterError(
                f"settlement.budget.{funds.pool}.reimbursement_ratio",
                "point_value_formula = fund_over_ratio 需要该统筹区的报销比例",
            )
        numerator = available / ratio
    return _round(numerator / total_score, check_decimals(policy)), numerator


def budget_point_value(policy: Policy, pool: str, history: pa.Table | None = None) -> Decimal:
    """预算点值 of a pool: from the policy, else from history with the year weights."""
    s = policy.settlement
    given = s.budget[pool].budget_point_value if pool in s.budget else None
    if given is not None:
        return _round(Decimal(given), check_decimals(policy))
    if history is None:
        raise MissingParameterError(
            f"settlement.budget.{pool}.budget_point_value",
            "月度预结算需要预算点值：请在政策中给出，或提供历史数据（--history，列 pool, year, "
            "total_cost_fen, total_score）由历年加权费用 ÷ 加权分值计算",
        )
    missing = [c for c in HISTORY_COLUMNS if c not in history.column_names]
    if missing:
        raise SettlementError(f"历史数据缺少列 {missing}")
    weights = policy.directory.year_weights
    cost = Decimal(0)
    score = Decimal(0)
    for row in history.to_pylist():  # a few rows: pools × years
        if row["pool"] != pool or row["year"] not in weights:
            continue
        w = Decimal(weights[row["year"]])
        cost += w * Decimal(int(row["total_cost_fen"])) / 100
        score += w * Decimal(str(row["total_score"]))
    if score <= 0:
        raise MissingParameterError(
            f"settlement.budget.{pool}.budget_point_value",
            f"历史数据中没有统筹区 {pool} 在 directory.year_weights 年份 {sorted(weights)} 的分值",
        )
    return _round(cost / score, check_decimals(policy))
