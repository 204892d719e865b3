"""Supervision (智能监管) parameters: reference §6."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field

from opendip.policy.sections.base import Positive, Section, Share


class SupervisionPolicy(Section):
    readmission_window_days: int = Field(default=15, ge=1)
    readmission_scope: Literal["same_hospital", "any_hospital"] = "any_hospital"
    #: Planned cycles (chemotherapy, radiotherapy) not counted as readmissions.
    readmission_exclude_prefixes: list[str] = ["Z51"]
    low_standard_max_los_days: int = Field(default=2, ge=1)
    low_standard_max_cost_ratio: Share = Decimal("0.3")
    overlong_stay_days: int = Field(default=60, ge=1)
    out_of_list_share_alert: Share = Decimal("0.15")
    upcoding_shift_alert: Positive = Decimal("2")
    top_leads: int = Field(default=100, ge=1)
