"""Settlement-list quality control (结算清单质控) parameters: reference §2.

The rules themselves live in a rule-set file (`rule_set`); the numbers those rules compare
against are regional choices and live here, referenced from a rule as `{param: name}`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import Field

from opendip.policy.sections.base import NonNegative, Section


class QcPolicy(Section):
    #: Rule set file (relative to the policy file, or a packaged name such as "default").
    rule_set: str = "default"
    #: Rule ids switched off in this region.
    disabled_rules: list[str] = []
    #: A same-day stay counts as this many days (most regions: 1).
    same_day_los: int = Field(default=1, ge=0, le=1)
    #: The "today" of future-date checks (dates after it are errors); None = the day QC runs.
    #: Set it to re-run a past month's QC reproducibly.
    run_date: dt.date | None = None
    #: Total cost above this (yuan) is an absurd amount (error): a typing slip, not a stay.
    max_total_cost_yuan: NonNegative = Decimal("5000000")
    #: Stays longer than this many days are flagged for checking (warning, not blocking).
    max_los_days: int = Field(default=365, ge=1)
    #: Age (周岁) above this is an error.
    max_age_years: int = Field(default=120, ge=1)
    #: A case younger than this many days is a newborn: both newborn weights are required.
    newborn_age_days: int = Field(default=28, ge=0)
    #: Newborn birth/admission weight must lie in this range (grams; national spec 200–20000).
    newborn_weight_min_g: int = Field(default=200, ge=0)
    newborn_weight_max_g: int = Field(default=20000, ge=1)
    #: Allowed difference (yuan) between the fee categories / payment split and the total.
    sum_tolerance_yuan: NonNegative = Decimal("0")
    #: 病案首页质控 rule file (relative to the policy file, or the packaged "default").
    front_page_rule_set: str = "default"
    #: A front page must be submitted at most this many days after discharge (病案首页上传时限).
    front_page_submit_days: int = Field(default=7, ge=0, le=365)
