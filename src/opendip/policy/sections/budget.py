"""以收定支: the DIP budget from the fund's expected income, and the point-value forecast."""

from __future__ import annotations

from decimal import Decimal

from opendip.policy.sections.base import NonNegative, Positive, Section, Share


class PoolIncome(Section):
    """One pool's fund income plan (yuan, shares as decimals).

    DIP budget = (expected income + carry-over) × (1 − risk reserve share) × inpatient share
    × (1 − other payment methods share), rounded half up to the fen.
    """

    #: 统筹基金当年预计收入.
    expected_income_yuan: Positive
    #: 上年结余中用于当年的部分.
    carryover_yuan: NonNegative = Decimal(0)
    #: 风险储备/当年结余留存 held back from the income.
    risk_reserve_share: Share = Decimal(0)
    #: 住院统筹基金占比 (the rest pays outpatient care).
    inpatient_share: Share
    #: Inpatient fund paid by other methods (床日、项目、异地就医 …), not by DIP.
    other_methods_share: Share = Decimal(0)


class BudgetPolicy(Section):
    #: Income plan per pool (optional): `opendip forecast budget` computes each pool's DIP
    #: budget from it and compares it with `settlement.budget.<pool>.fund_budget_yuan`.
    plan: dict[str, PoolIncome] = {}
    #: The year-end point value forecast warns when it drifts from the budget point value by
    #: more than this share (either way).
    forecast_tolerance: Share = Decimal("0.05")
