"""Scoring (分值) parameters: reference §4."""

from __future__ import annotations

import datetime as dt
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


class DeviationBand(Section):
    """High/low multiple thresholds for groups whose base score is in [score_min, score_max)."""

    score_min: NonNegative | None = None
    score_max: NonNegative | None = None
    high_multiple: Positive
    low_multiple: Positive
    #: High: cost > high × mean (false) or cost ≥ high × mean (true).
    high_inclusive: bool = False
    #: Low: cost < low × mean (false) or cost ≤ low × mean (true).
    low_inclusive: bool = False

    @model_validator(mode="after")
    def _low_below_high(self) -> DeviationBand:
        if self.low_multiple >= self.high_multiple:
            raise ValueError(
                "low_multiple 必须小于 high_multiple / low_multiple must be below high_multiple"
            )
        return self


class Extreme(Section):
    """Extreme band above which a case goes to expert review or is capped.

    review: paid provisionally by the high formula pending special review (特例单议);
    cap: the high formula at cost = multiple × mean;
    provisional_base: paid provisionally at the base score (× hospital coefficient) pending
    special review.
    """

    multiple: Positive
    action: Literal["review", "cap", "provisional_base"] = "review"
    #: Extreme: cost > multiple × mean (false) or ≥ (true).
    inclusive: bool = False


class Bonus(Section):
    """加成系数 for listed hospitals (key specialties, ethnic regions ...)."""

    name: str
    hospital_ids: list[str]
    coefficient: Decimal


class HospitalCoefficient(Section):
    """医疗机构系数 = level coefficient + bonuses (+ the hospitals table's own bonus)."""

    levels: dict[Literal["tertiary", "secondary", "primary", "unrated"], Positive]
    bonuses: list[Bonus] = []
    apply_to_basic_groups: bool = False


class TcmAdvantageGroup(Section):
    """中医/民族医优势病种: a disease (main diagnosis) treated with a listed TCM or ethnic
    medicine treatment (procedure/item code), paid as `TcmAdvantage.mode` says while the
    entry is valid (discharge date in [valid_from, valid_to])."""

    code: str
    name: str
    #: tcm 中医 / ethnic 民族医（藏医、蒙医 ...）
    medicine: Literal["tcm", "ethnic"] = "tcm"
    #: Main diagnosis codes (prefixes) of the disease.
    diagnosis_prefixes: list[str] = Field(min_length=1)
    #: The TCM treatment that qualifies: procedure/item codes (prefixes), any of them.
    treatment_codes: list[str] = Field(min_length=1)
    #: same_as_western: the directory group (western surgical group of the disease) whose
    #: score the case is paid at.
    western_group: str | None = None
    valid_from: dt.date
    valid_to: dt.date | None = None

    @model_validator(mode="after")
    def _dates(self) -> TcmAdvantageGroup:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise key_error("valid_to", "valid_to 早于 valid_from", "valid_to is before valid_from")
        return self


class TcmAdvantage(Section):
    """How a case qualifying for a 中医/民族医优势病种 is paid (the case keeps its group;
    its base score is adjusted before the auxiliary coefficient and the deviation formula):

    same_as_western: 中西医同病同价, the base score is the score of the entry's
    `western_group`; added_score: base + added_score; coefficient: base × coefficient
    (4 decimals, half up). The deviation band and the reference mean stay the group's own.
    """

    mode: Literal["same_as_western", "added_score", "coefficient"] = "same_as_western"
    added_score: Positive | None = None
    coefficient: Positive | None = None
    #: same_as_western only: an entry's western group absent from the period's directory
    #: (a group with too few cases that year) stops scoring naming it (refuse), or the case
    #: keeps its own group's score, said in its explanation (own_score).
    western_group_missing: Literal["refuse", "own_score"] = "refuse"
    groups: list[TcmAdvantageGroup] = []

    @model_validator(mode="after")
    def _mode_keys(self) -> TcmAdvantage:
        needs = {"added_score": "added_score", "coefficient": "coefficient"}
        for key in ("added_score", "coefficient"):
            if getattr(self, key) is not None and needs.get(self.mode) != key:
                raise key_error(
                    key,
                    f"{key} 不适用于 mode = {self.mode}，请删除",
                    f"{key} does not apply to mode {self.mode}; remove it",
                )
        if self.mode in needs and getattr(self, needs[self.mode]) is None:
            raise key_error(
                needs[self.mode],
                f"mode = {self.mode} 需要 {needs[self.mode]}",
                f"mode {self.mode} needs {needs[self.mode]}",
            )
        if self.mode != "same_as_western" and explicit(self, "western_group_missing"):
            raise key_error(
                "western_group_missing",
                f"western_group_missing 只用于 mode = same_as_western，当前为 {self.mode}，请删除",
                "western_group_missing only applies to mode same_as_western; remove it",
            )
        for i, g in enumerate(self.groups):
            if self.mode == "same_as_western" and not g.western_group:
                raise key_error(
                    f"groups[{i}].western_group",
                    f"中西医同病同价（mode = same_as_western）需要优势病种 {g.code} 的西医手术病种编码",
                    "mode same_as_western needs each group's western_group",
                )
            if self.mode != "same_as_western" and g.western_group:
                raise key_error(
                    f"groups[{i}].western_group",
                    f"western_group 只用于 mode = same_as_western，当前为 {self.mode}，请删除",
                    "western_group only applies to mode same_as_western; remove it",
                )
        codes = [g.code for g in self.groups]
        if len(set(codes)) != len(codes):
            raise key_error("groups", "优势病种编码重复", "duplicated group code")
        return self


class NewTechnology(Section):
    """新技术新项目: a new procedure/item (code prefix); a case using it and discharged in
    the transition period [valid_from, valid_to] is settled by item (by_item: out of DIP,
    paid by the fee-for-service amount) or with added_score points on its base score."""

    code: str
    name: str
    valid_from: dt.date
    valid_to: dt.date
    mode: Literal["by_item", "added_score"]
    added_score: Positive | None = None

    @model_validator(mode="after")
    def _keys(self) -> NewTechnology:
        if self.valid_to < self.valid_from:
            raise key_error(
                "valid_to", "过渡期结束日期早于开始日期", "valid_to is before valid_from"
            )
        if self.mode == "added_score" and self.added_score is None:
            raise key_error(
                "added_score", "mode = added_score 需要 added_score", "mode added_score needs it"
            )
        if self.mode == "by_item" and self.added_score is not None:
            raise key_error(
                "added_score",
                "added_score 不适用于 mode = by_item（按项目付费），请删除",
                "added_score does not apply to mode by_item; remove it",
            )
        return self


class ScoringPolicy(Section):
    #: The mean a case's cost is compared with: its group's mean at the same hospital level,
    #: or the regional mean.
    reference_mean: Literal["same_level", "regional", "score_times_factor"] = "same_level"
    #: score_times_factor: reference mean = base score × yuan per point of the pool.
    yuan_per_point: dict[str, Positive] = {}
    deviation_bands: list[DeviationBand] = Field(min_length=1)
    #: add_excess: base × (cost/mean − high + 1) × share of the excess paid;
    #: coefficient_folded: base × (cost/mean − high + hospital coefficient), no coefficient after.
    high_formula: Literal["add_excess", "coefficient_folded"] = "add_excess"
    high_excess_share: Share = Decimal(1)
    low_formula: Literal["proportional", "base"] = "proportional"
    #: Low cases: the hospital coefficient applies after (true) or not at all (false: the
    #: "coefficient folded" family scores low cases base × cost/mean, nothing more).
    low_applies_hospital_coefficient: bool = True
    extreme: Extreme | None = None
    #: Fallback (blank) groups: paid at this fraction of cost / all-case mean.
    fallback_fraction: Share = Decimal("0.7")
    #: Special review (特例单议) nominations per hospital, share of its discharged cases.
    special_review_max_share: Share = Decimal("0.05")
    hospital_coefficient: HospitalCoefficient
    score_decimals: int = Field(default=4, ge=0, le=8)
    #: The cost ratio (cost ÷ reference mean) rounded half up to this many decimals before it
    #: is compared with the thresholds and used in the formulas; null = exact.
    ratio_decimals: int | None = Field(default=None, ge=0, le=6)
    #: true: case score rounded to score_decimals, then × hospital coefficient rounded again
    #: (two roundings); false: the settled score is the exact case score × coefficient,
    #: rounded once (the case score column shows the case score rounded on its own).
    round_case_score_before_coefficient: bool = True
    #: same_level reference mean missing for a group at a level: use the group's regional
    #: mean (and say so in the explanation) or refuse to score.
    level_mean_missing: Literal["regional", "refuse"] = "regional"
    #: All-case mean cost (全部病例次均费用, yuan) that fallback (blank) groups are scored
    #: against: score = fallback_fraction × cost ÷ this × directory.base_score. Required as
    #: soon as a fallback case is scored (no default: money depends on it).
    all_case_mean_yuan: Positive | None = None
    #: Accepted special-review (特例单议) cases: the expert's score is the settled score
    #: (no hospital coefficient after) or the case score (× hospital coefficient).
    reviewed_score_is: Literal["settled_score", "case_score"] = "settled_score"
    #: 中医/民族医优势病种 and how qualifying cases are paid.
    tcm_advantage: TcmAdvantage = TcmAdvantage()
    #: 新技术新项目 with their transition periods (first matching entry applies).
    new_technologies: list[NewTechnology] = []

    @model_validator(mode="after")
    def _bands_cover_scores_once(self) -> ScoringPolicy:
        """deviation_bands split the base scores [0, ∞) into consecutive ranges: each score
        falls in exactly one band (no overlap, no gap)."""
        bands = sorted(
            enumerate(self.deviation_bands),
            key=lambda ib: Decimal(0) if ib[1].score_min is None else ib[1].score_min,
        )
        expected: Decimal | None = Decimal(0)
        for n, (i, b) in enumerate(bands):
            start = Decimal(0) if b.score_min is None else b.score_min
            if expected is None or start < expected:
                raise key_error(
                    f"deviation_bands[{i}]",
                    "与另一分段重叠（同一分值只能落在一个分段）",
                    "overlaps another band (a score must fall in exactly one band)",
                )
            if start > expected:
                raise key_error(
                    f"deviation_bands[{i}]",
                    f"与前一分段之间有空缺（分值 {expected}～{start} 不在任何分段内）",
                    f"leaves a gap before it (scores {expected}..{start} are in no band)",
                )
            if b.score_max is not None and b.score_max <= start:
                raise key_error(
                    f"deviation_bands[{i}]",
                    "score_max 必须大于 score_min",
                    "score_max must be above score_min",
                )
            expected = b.score_max
            if expected is None and n < len(bands) - 1:
                continue  # the next band overlaps: reported on the next round
        if expected is not None:
            raise key_error(
                f"deviation_bands[{bands[-1][0]}]",
                f"分值 {expected} 及以上不在任何分段内（最后一段应不写 score_max）",
                f"scores from {expected} up are in no band (leave score_max out of the last)",
            )
        return self

    @model_validator(mode="after")
    def _keys_apply_to_reference_mean(self) -> ScoringPolicy:
        if self.yuan_per_point and self.reference_mean != "score_times_factor":
            raise key_error(
                "yuan_per_point",
                f"yuan_per_point 只用于 reference_mean = score_times_factor，当前为 "
                f"{self.reference_mean}，请删除",
                f"yuan_per_point only applies to reference_mean score_times_factor "
                f"(not {self.reference_mean}); remove it",
            )
        if explicit(self, "level_mean_missing") and self.reference_mean != "same_level":
            raise key_error(
                "level_mean_missing",
                f"level_mean_missing 只用于 reference_mean = same_level（同级均值缺失时），当前为 "
                f"{self.reference_mean}，请删除",
                "level_mean_missing only applies to reference_mean same_level; remove it",
            )
        return self
