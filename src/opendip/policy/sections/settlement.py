"""Budget, point value and payment (点值、月度预结算、年终清算) parameters: reference §5."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from opendip.policy.sections.base import (
    NonNegative,
    Positive,
    Section,
    Share,
    explicit,
    key_error,
)


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


#: Chinese names of the FFS band rules (clearing tables, publication, reports).
FFS_RULE_LABELS = {
    "keep_surplus": "结余留用",
    "pay_dip": "按DIP支付",
    "share_loss": "超支分担",
}
#: Chinese names of the comparison bases (settlement.ffs_basis).
FFS_BASIS_LABELS = {
    "fund": "DIP 统筹应支付 ÷ 按项目统筹支付",
    "total": "DIP 总金额 ÷ 按项目医疗总费用",
}


class FfsBand(Section):
    """DIP side ÷ FFS side (settlement.ffs_basis) in [ratio_min, ratio_max) → rule.

    keep_surplus: surplus S = DIP − FFS; kept = round(S × share) (share default 1), at most
    round(FFS × cap_share) when cap_share is given; the rest is clawed back.
    pay_dip: the DIP amount, no adjustment (share and cap_share refused).
    share_loss: loss L = FFS − DIP; round(L × share) is paid on top (share required;
    cap_share refused).
    """

    ratio_min: NonNegative | None = None
    ratio_max: NonNegative | None = None
    rule: Literal["keep_surplus", "pay_dip", "share_loss"]
    #: keep_surplus: share of the surplus the hospital keeps (default all of it);
    #: share_loss: share of the loss paid on top of DIP (from the reserve).
    share: Share | None = None
    #: keep_surplus: kept surplus at most this share of the FFS side.
    cap_share: Share | None = None

    @model_validator(mode="after")
    def _keys_apply_to_rule(self) -> FfsBand:
        if self.rule == "pay_dip":
            for key in ("share", "cap_share"):
                if explicit(self, key):
                    raise key_error(
                        key,
                        f"{key} 不适用于 pay_dip（按DIP支付，无结余留用或超支分担），请删除",
                        f"{key} does not apply to rule pay_dip; remove it",
                    )
        if self.rule == "share_loss":
            if explicit(self, "cap_share"):
                raise key_error(
                    "cap_share",
                    "cap_share 是结余留用的封顶比例，不适用于 share_loss（超支分担），请删除",
                    "cap_share (surplus cap) does not apply to rule share_loss; remove it",
                )
            if self.share is None:
                raise key_error(
                    "share",
                    "share_loss（超支分担）须给出分担比例 share",
                    "rule share_loss needs share (share of the loss paid)",
                )
        if (
            self.ratio_min is not None
            and self.ratio_max is not None
            and self.ratio_min >= self.ratio_max
        ):
            raise key_error(
                "ratio_max",
                "ratio_max 必须大于 ratio_min（分段为 [ratio_min, ratio_max)）",
                "ratio_max must be above ratio_min (band is [ratio_min, ratio_max))",
            )
        return self

    @property
    def kept_share(self) -> Decimal:
        """keep_surplus: the retained share of the surplus (1 when not given)."""
        return Decimal(1) if self.share is None else self.share

    def label(self) -> str:
        """The band as a hospital reads it, e.g. "结余留用（比值≥1.00；留用50%，封顶按项目10%）",
        "按DIP支付（比值≥0.85且<1.00）", "超支分担（比值<0.85；分担50%）"."""
        lo = "" if self.ratio_min is None else f"≥{self.ratio_min:.2f}"
        hi = "" if self.ratio_max is None else f"<{self.ratio_max:.2f}"
        where = "比值" + ("且".join(x for x in (lo, hi) if x) or "不限")
        name = FFS_RULE_LABELS[self.rule]
        if self.rule == "keep_surplus":
            detail = f"留用{_pct(self.kept_share)}"
            if self.cap_share is not None:
                detail += f"，封顶按项目{_pct(self.cap_share)}"
            return f"{name}（{where}；{detail}）"
        if self.rule == "share_loss":
            return f"{name}（{where}；分担{_pct(self.share or Decimal(0))}）"
        return f"{name}（{where}）"


def _pct(share: Decimal) -> str:
    return f"{(share * 100).normalize():f}%"


class SettlementPolicy(Section):
    budget: dict[str, PoolBudget]
    #: 区域调剂金: share of the budget held back.
    reserve_share: Share = Decimal("0.08")
    #: fund_plus_personal: (fund budget + patients' share of DIP cases) ÷ total score;
    #: fund_only: fund budget ÷ total score; fund_over_ratio: fund ÷ ratio ÷ total score.
    point_value_formula: Literal["fund_plus_personal", "fund_only", "fund_over_ratio"] = (
        "fund_plus_personal"
    )
    #: At most 6: the point value column holds 6 decimals.
    point_value_decimals: int = Field(default=6, ge=2, le=6)
    #: 质量保证金 withheld from monthly advances.
    withholding_share: Share = Decimal("0.05")
    assessment_bands: list[AssessmentBand] = []
    ffs_bands: list[FfsBand] = []
    #: What the FFS bands compare: `fund` = fund payable under DIP ÷ fund paid by item;
    #: `total` = DIP total (fund + patients' share) ÷ total cost by item. Caps and shares of
    #: the bands apply to the same two amounts; reports and the publication show this basis.
    ffs_basis: Literal["fund", "total"] = "fund"
    #: Where a surplus clawed back above a keep_surplus cap goes: back to the regional
    #: reserve (区域调剂金) or stays in the fund (统筹基金).
    surplus_clawback_to: Literal["fund", "reserve"] = "fund"
    #: Where a withheld deposit not returned (assessment) goes: reserve or fund.
    deducted_deposit_to: Literal["fund", "reserve"] = "fund"
    #: The deposit when the annual clearing is given no assessment scores: `withhold` (none
    #: returned), `return_all`, or `default_score` (every hospital as if it scored
    #: `default_assessment_score`, through assessment_bands).
    deposit_without_assessment: Literal["withhold", "return_all", "default_score"] = "withhold"
    default_assessment_score: NonNegative | None = None
    #: 医共体: members' results are netted inside the community.
    community_netting: bool = False
    rounding: Literal["half_up"] = "half_up"
    #: Fund paid by item for cases outside DIP (unmatched) comes out of the pool's fund
    #: before the point value is computed.
    deduct_non_dip_ffs: bool = True

    @model_validator(mode="after")
    def _bands_ordered(self) -> SettlementPolicy:
        scores = [b.min_score for b in self.assessment_bands]
        if scores != sorted(scores, reverse=True) or len(set(scores)) != len(scores):
            raise ValueError(
                "assessment_bands 须按 min_score 从高到低排列且互不相同（相同的分数线后一条永不"
                "生效） / assessment_bands must be ordered by min_score, highest first, "
                "without repeats (a repeated score line would never apply)"
            )
        return self

    @model_validator(mode="after")
    def _default_assessment(self) -> SettlementPolicy:
        if self.deposit_without_assessment != "default_score":
            if self.default_assessment_score is not None:
                raise key_error(
                    "default_assessment_score",
                    "默认考核得分只用于 deposit_without_assessment = default_score，当前为 "
                    f"{self.deposit_without_assessment}，请删除",
                    "default_assessment_score only applies to deposit_without_assessment "
                    f"default_score (not {self.deposit_without_assessment}); remove it",
                )
            return self
        if self.default_assessment_score is None:
            raise key_error(
                "default_assessment_score",
                "deposit_without_assessment 为 default_score 时须给出默认考核得分",
                "deposit_without_assessment default_score needs default_assessment_score",
            )
        if not self.assessment_bands:
            raise key_error(
                "assessment_bands",
                "deposit_without_assessment 为 default_score 时须有考核得分分段",
                "deposit_without_assessment default_score needs assessment_bands",
            )
        return self

    @model_validator(mode="after")
    def _ffs_bands_disjoint(self) -> SettlementPolicy:
        lo = Decimal("-1")
        for i, b in sorted(
            enumerate(self.ffs_bands),
            key=lambda ib: -1 if ib[1].ratio_min is None else ib[1].ratio_min,
        ):
            start = Decimal("-1") if b.ratio_min is None else b.ratio_min
            if start < lo:
                raise key_error(
                    f"ffs_bands[{i}]",
                    "与另一分段重叠（重叠部分只有一条规则会生效）",
                    "overlaps another band (only one rule would apply where they overlap)",
                )
            lo = Decimal("Infinity") if b.ratio_max is None else b.ratio_max
        return self

    @model_validator(mode="after")
    def _ratio_only_for_its_formula(self) -> SettlementPolicy:
        if self.point_value_formula == "fund_over_ratio":
            return self
        for pool, b in self.budget.items():
            if b.reimbursement_ratio is not None:
                raise key_error(
                    f"budget.{pool}.reimbursement_ratio",
                    f"报销比例只用于 point_value_formula = fund_over_ratio，当前公式为 "
                    f"{self.point_value_formula}，请删除",
                    f"reimbursement_ratio is only used by point_value_formula fund_over_ratio "
                    f"(not {self.point_value_formula}); remove it",
                )
        return self
