"""Scoring parameters resolved from the policy, shared by the batch and single-case paths.

Arithmetic contract (both paths, exact decimals, half-up rounding):
  base       = group score × auxiliary coefficient                     (8 decimals, exact)
  ratio      = total cost ÷ reference mean                               (6 decimals, half up)
  multiplier = 1 | ratio (low) | 1 + share × (ratio − high) (high, add_excess)
               | ratio − high + hospital coefficient (high, coefficient_folded)
  case score = base × multiplier                                        (score decimals, half up)
  settled    = case score × hospital coefficient (not for basic groups unless the policy says;
               not again when the coefficient was folded into the high formula)
  amount fen = settled × point value × 100                              (whole fen, half up)
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from opendip.policy import Policy


class ScoringError(ValueError):
    """Money cannot be computed: a parameter or an input it depends on is missing."""


def half_up(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Band:
    score_min: Decimal | None
    score_max: Decimal | None
    high: Decimal
    low: Decimal

    def contains(self, score: Decimal) -> bool:
        return (self.score_min is None or score >= self.score_min) and (
            self.score_max is None or score < self.score_max
        )


def hospital_coefficient(
    policy: Policy, hospital_id: str, level: str | None, own_bonus: Decimal | None
) -> Decimal:
    levels = policy.scoring.hospital_coefficient.levels
    if level is None:
        raise ScoringError(f"医疗机构 {hospital_id} 未填写等级，无法确定医疗机构系数")
    if level not in levels:
        raise ScoringError(f"政策 scoring.hospital_coefficient.levels 缺少等级 {level} 的系数")
    coef = Decimal(levels[level])
    for bonus in policy.scoring.hospital_coefficient.bonuses:
        if hospital_id in bonus.hospital_ids:
            coef += bonus.coefficient
    return half_up(coef + (own_bonus or Decimal(0)), 4)


def budget_point_value(policy: Policy, pool: str, all_case_mean_fen: int | None) -> Decimal:
    """预算点值: the policy's value, else history's cost per point (all-case mean ÷ base score)."""
    given = policy.settlement.budget[pool].budget_point_value
    if given is not None:
        return half_up(Decimal(given), policy.settlement.point_value_decimals)
    if not all_case_mean_fen:
        raise ScoringError(
            f"缺少 settlement.budget.{pool}.budget_point_value，且没有历史全部病例次均费用可推算预算点值"
        )
    yuan = Decimal(all_case_mean_fen) / 100
    return half_up(yuan / policy.directory.base_score, policy.settlement.point_value_decimals)
