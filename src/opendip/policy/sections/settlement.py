"""Budget, point value and payment (点值、月度预结算、年终清算) parameters: reference §5."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from opendip.policy.sections.base import NonNegative, Positive, Section, Share


class PoolBudget(Section):
    #: 统筹基金 inpatient budget for DIP in the year, yuan.
    fund_budget_yuan: Positive
    #: Start-of-year point value (预算点值), yuan per point; computed from history if absent.
    budget_point_value: Positive | None = None
    #: For point_value_formula = fund_over_ratio: the pool's reimbursement ratio.
    reimbursement_ratio: Share | None = None


class AssessmentBand(Section):
    """Assessment score ≥ min_score returns this share of the withheld deposit."""

    min_score: NonNegative
    return_share: Share


class FfsBand(Section):
    """DIP amount ÷ fee-for-service amount in [ratio_min, ratio_max) → rule."""

    ratio_min: NonNegative | None = None
    ratio_max: NonNegative | None = None
    #: keep_surplus: pay DIP, surplus kept up to `cap_share` of FFS above FFS;
    #: pay_dip: pay the DIP amount; share_loss: pay DIP + `share` of (FFS − DIP).
    rule: Literal["keep_surplus", "pay_dip", "share_loss"]
    share: Share = Decimal(0)
    cap_share: Share | None = None


class SettlementPolicy(Section):
    budget: dict[str, PoolBudget]
    #: 区域调剂金: share of the budget held back.
    reserve_share: Share = Decimal("0.08")
    #: fund_plus_personal: (fund budget + patients' share of DIP cases) ÷ total score;
    #: fund_only: fund budget ÷ total score; fund_over_ratio: fund ÷ ratio ÷ total score.
    point_value_formula: Literal["fund_plus_personal", "fund_only", "fund_over_ratio"] = (
        "fund_plus_personal"
    )
    point_value_decimals: int = Field(default=6, ge=2, le=10)
    #: 质量保证金 withheld from monthly advances.
    withholding_share: Share = Decimal("0.05")
    assessment_bands: list[AssessmentBand] = []
    ffs_bands: list[FfsBand] = []
    #: 医共体: members' results are netted inside the community.
    community_netting: bool = False
    rounding: Literal["half_up"] = "half_up"
    #: Fund paid by item for cases outside DIP (unmatched) comes out of the pool's fund
    #: before the point value is computed.
    deduct_non_dip_ffs: bool = True

    @model_validator(mode="after")
    def _bands_ordered(self) -> SettlementPolicy:
        scores = [b.min_score for b in self.assessment_bands]
        if scores != sorted(scores, reverse=True):
            raise ValueError(
                "assessment_bands 须按 min_score 从高到低排列 / "
                "assessment_bands must be ordered by min_score, highest first"
            )
        return self
