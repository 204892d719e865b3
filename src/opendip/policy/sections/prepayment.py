"""Annual prepayment (预付金管理, issue 22 item 3; Lhasa's five mechanisms include
预付金管理, seed 001): eligible hospitals receive, at the start of the year, a number of
months of their average monthly DIP payment of the previous year; it is recovered from the
monthly advances in equal instalments, or all at the annual clearing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from opendip.policy.sections.base import NonNegative, Positive, Section, explicit, key_error


class PrepaymentPolicy(Section):
    #: Prepayment = months × the previous year's DIP fund payment ÷ the months it was paid
    #: in (its average monthly payment), half up to the fen, per hospital × pool.
    months: Positive = Decimal(1)
    #: Eligible: a credit grade whose `prepayment_eligible` is true (the previous year's
    #: rating) and, when given, a previous-year assessment score at least this.
    min_assessment_score: NonNegative | None = None
    #: instalments: recovered from the monthly advances in `recovery_months` equal
    #: instalments from `recovery_start_month` (what is left is recovered at the clearing);
    #: clearing: all recovered at the annual clearing.
    recovery: Literal["instalments", "clearing"] = "instalments"
    recovery_months: int = Field(default=10, ge=1, le=12)
    recovery_start_month: int = Field(default=1, ge=1, le=12)

    @model_validator(mode="after")
    def _instalments_fit_year(self) -> PrepaymentPolicy:
        if self.recovery == "clearing":
            for key in ("recovery_months", "recovery_start_month"):
                if explicit(self, key):
                    raise key_error(
                        key,
                        f"{key} 只用于按月分期扣回（recovery: instalments），请删除",
                        f"{key} only applies to recovery instalments; remove it",
                    )
        elif self.recovery_start_month + self.recovery_months - 1 > 12:
            raise key_error(
                "recovery_months",
                f"从 {self.recovery_start_month} 月起分 {self.recovery_months} 期扣回超出当年",
                "the instalments run past December",
            )
        return self
