"""Annual assessment (年度考核) scorecard: indicators, weights, targets, scoring rule."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from opendip.policy.sections.base import NonNegative, Positive, Section

#: Measures the assessment engine computes (opendip.assessment.measures), with their
#: Chinese names; each is a ratio of two integer counts per hospital.
MEASURES = {
    "qc_pass_rate": "结算清单质控通过率",
    "front_page_qc_pass_rate": "病案首页质控通过率",
    "grouping_rate": "入组率",
    "readmission_rate": "出院后再入院率",
    "confirmed_leads_per_1000": "每千例确认违规线索数",
    "cost_growth_per_case": "次均费用增长率",
    "selfpay_share": "自费费用占比",
    "basic_group_share": "基层病种病例占比",
}
LEVELS = ("tertiary", "secondary", "primary", "unrated")


class Indicator(Section):
    """One line of the scorecard.

    Points = weight × (value − zero_at) ÷ (target − zero_at), clamped to [0, weight] and
    rounded half up to the scorecard's decimals: full points at or beyond the target, none
    at or beyond `zero_at`, linear in between. target > zero_at: higher is better;
    target < zero_at: lower is better.
    """

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str | None = None
    measure: Literal[
        "qc_pass_rate",
        "front_page_qc_pass_rate",
        "grouping_rate",
        "readmission_rate",
        "confirmed_leads_per_1000",
        "cost_growth_per_case",
        "selfpay_share",
        "basic_group_share",
    ]
    weight: Positive
    target: Decimal
    zero_at: Decimal
    #: Hospital levels the indicator applies to (default all); a hospital's total is its
    #: points × total_points ÷ the weights of the indicators that apply to it.
    levels: list[Literal["tertiary", "secondary", "primary", "unrated"]] = list(LEVELS)

    @model_validator(mode="after")
    def _distinct_ends(self) -> Indicator:
        if self.target == self.zero_at:
            raise ValueError(
                "target 与 zero_at 不能相同（满分线与零分线之间线性计分） / "
                "target and zero_at must differ"
            )
        return self

    @property
    def label(self) -> str:
        return self.name or MEASURES[self.measure]


class CoefficientBand(Section):
    """Assessment total ≥ min_score → clearing coefficient (考核清算系数)."""

    min_score: NonNegative
    coefficient: Decimal = Field(gt=0, le=2)


class AssessmentPolicy(Section):
    indicators: list[Indicator] = Field(min_length=1)
    #: The full mark of the assessment (满分).
    total_points: Positive = Decimal(100)
    #: Decimals of indicator points and of the total.
    decimals: int = Field(default=2, ge=0, le=4)
    #: Readmission: a patient admitted again within this many days of discharge (any
    #: hospital) counts against the discharging hospital.
    readmission_days: int = Field(default=15, ge=1, le=365)
    #: Readmissions whose main diagnosis starts with these (planned cycles) are not counted.
    readmission_exclude_prefixes: list[str] = []
    #: Optional 考核清算系数 (highest min_score first): the hospital's clearing total changes
    #: by fund payable × (coefficient − 1); empty: the assessment only returns the deposit.
    clearing_coefficient_bands: list[CoefficientBand] = []

    @model_validator(mode="after")
    def _unique_and_ordered(self) -> AssessmentPolicy:
        ids = [i.id for i in self.indicators]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"indicators 的 id 重复：{dup} / duplicate indicator ids {dup}")
        scores = [b.min_score for b in self.clearing_coefficient_bands]
        if scores != sorted(set(scores), reverse=True):
            raise ValueError(
                "clearing_coefficient_bands 须按 min_score 从高到低排列且互不相同 / "
                "clearing_coefficient_bands must be ordered by min_score, highest first"
            )
        return self
