"""Settlement (结算): point value, monthly pre-settlement, annual clearing, reconciliation."""

from opendip.settlement.clearing import (
    AnnualResult,
    Inputs,
    MonthlyResult,
    settle_month,
    settle_year,
)
from opendip.settlement.errors import NoCasesError, SettlementError
from opendip.settlement.pointvalue import budget_point_value, final_point_value, pool_funds

__all__ = [
    "AnnualResult",
    "Inputs",
    "MonthlyResult",
    "NoCasesError",
    "SettlementError",
    "budget_point_value",
    "final_point_value",
    "pool_funds",
    "settle_month",
    "settle_year",
]
