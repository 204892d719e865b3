"""Directory building (病种目录库) parameters: reference §3."""

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


class Trim(Section):
    """Outlier trimming before group means are computed."""

    method: Literal["none", "log_sd", "percentile"] = "log_sd"
    #: log_sd: drop cases outside mean ± k·sd of log cost (per group).
    k: Positive = Decimal(3)
    #: percentile: keep cases between these percentiles (per group).
    lower_pct: Share = Decimal("0.025")
    upper_pct: Share = Decimal("0.975")

    @model_validator(mode="after")
    def _keys_apply_to_method(self) -> Trim:
        used = {"log_sd": {"k"}, "percentile": {"lower_pct", "upper_pct"}, "none": set()}
        for key in ("k", "lower_pct", "upper_pct"):
            if explicit(self, key) and key not in used[self.method]:
                raise key_error(
                    key,
                    f"{key} 不适用于 method = {self.method}，请删除",
                    f"{key} does not apply to method {self.method}; remove it",
                )
        if self.lower_pct >= self.upper_pct:
            raise key_error(
                "upper_pct",
                "upper_pct 必须大于 lower_pct",
                "upper_pct must be above lower_pct",
            )
        return self


class CoreThreshold(Section):
    """临界值: `fixed` keeps combinations with ≥ min_cases; `coverage` picks the smallest
    count that keeps core groups at ≥ min_share of all cases."""

    method: Literal["fixed", "coverage"] = "fixed"
    min_cases: int | None = Field(default=15, ge=1)
    min_share: Share | None = None

    @model_validator(mode="after")
    def _method_has_its_parameter(self) -> CoreThreshold:
        if self.method == "fixed" and self.min_cases is None:
            raise ValueError("method=fixed 需要 min_cases / method=fixed needs min_cases")
        if self.method == "coverage" and self.min_share is None:
            raise ValueError("method=coverage 需要 min_share / method=coverage needs min_share")
        unused = {"fixed": "min_share", "coverage": "min_cases"}[self.method]
        if explicit(self, unused) and getattr(self, unused) is not None:
            raise key_error(
                unused,
                f"{unused} 不适用于 method = {self.method}，请删除（或写 null）",
                f"{unused} does not apply to method {self.method}; remove it (or write null)",
            )
        return self


class Comprehensive(Section):
    """综合病种: aggregation of non-core cases by category and procedure type."""

    min_cases: int = Field(default=5, ge=1)
    #: Where a category is thin, fall back through these levels in order.
    levels: list[Literal["category", "block", "chapter"]] = ["category", "block", "chapter"]


class BasicGroup(Section):
    """基层病种: same score at every level, no hospital coefficient."""

    diagnosis: str
    procedure_key: str = ""
    name: str = ""


class SpecialGroup(Section):
    """Special groups routed before core groups (日间手术, 按床日, 日间病房 ...)."""

    code: str
    name: str
    kind: Literal["day_surgery", "day_ward", "bed_day", "tcm", "new_technology"]
    diagnosis_prefixes: list[str] = []
    procedure_prefixes: list[str] = []
    departments: list[str] = []
    max_los_days: int | None = Field(default=None, ge=1)
    #: bed_day groups: score per bed day (paid per day).
    score_per_day: NonNegative | None = None

    @model_validator(mode="after")
    def _bed_day_needs_rate(self) -> SpecialGroup:
        if self.kind == "bed_day" and self.score_per_day is None:
            raise ValueError("按床日病种需要 score_per_day / bed_day groups need score_per_day")
        if self.kind != "bed_day" and self.score_per_day is not None:
            raise key_error(
                "score_per_day",
                f"score_per_day 只用于按床日病种（kind: bed_day），不适用于 {self.kind}，请删除",
                f"score_per_day only applies to bed_day groups, not {self.kind}; remove it",
            )
        return self


class LocalGroup(Section):
    """新增病种: a directory group added locally beyond the national frame, with who added
    it, when and by which decision document (marked in the directory built from history)."""

    group_code: str
    added_by: str
    added_on: dt.date
    added_basis: str


class AgeBand(Section):
    label: str
    min_age_years: int | None = None
    max_age_years: int | None = None
    coefficient: Positive


class ComorbidityLevel(Section):
    """CCI-like severity level by how many listed comorbidities the case has."""

    level: int = Field(ge=1)
    min_matches: int = Field(ge=1)
    coefficient: Positive


class Auxiliary(Section):
    """辅助目录: coefficients that refine a core group's score."""

    age_bands: list[AgeBand] = []
    comorbidity_prefixes: list[str] = []
    comorbidity_levels: list[ComorbidityLevel] = []
    tumour_metastasis_prefixes: list[str] = []
    tumour_metastasis_coefficient: Positive | None = None
    #: An auxiliary directory file (opendip.directory.auxiliary) that replaces the coefficients
    #: above: "demo" for the shipped demo file, or a YAML path (relative to the policy file).
    file: str | None = None


class DirectoryPolicy(Section):
    #: Year → weight (e.g. {2023: 1, 2024: 2, 2025: 7}).
    year_weights: dict[int, Positive]
    trim: Trim = Trim()
    core_threshold: CoreThreshold = CoreThreshold()
    diagnosis_level: Literal["subcategory", "category"] = "subcategory"
    #: Score of the all-case mean (基准分值): 100 or 1000.
    base_score: Positive = Decimal(100)
    score_decimals: int = Field(default=4, ge=0, le=8)
    comprehensive: Comprehensive = Comprehensive()
    basic_groups: list[BasicGroup] = []
    special_groups: list[SpecialGroup] = []
    #: 新增病种 of the built directory (origin local, with their provenance).
    local_groups: list[LocalGroup] = []
    auxiliary: Auxiliary = Auxiliary()
