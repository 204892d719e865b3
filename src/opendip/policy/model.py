"""The region-year policy: every number DIP depends on, validated."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from opendip.policy.sections.assessment import AssessmentPolicy
from opendip.policy.sections.base import Section
from opendip.policy.sections.budget import BudgetPolicy
from opendip.policy.sections.credit import CreditPolicy
from opendip.policy.sections.directory import DirectoryPolicy
from opendip.policy.sections.disclosure import DisclosurePolicy
from opendip.policy.sections.grouping import GroupingPolicy
from opendip.policy.sections.prepayment import PrepaymentPolicy
from opendip.policy.sections.qc import QcPolicy
from opendip.policy.sections.reporting import ReportingPolicy
from opendip.policy.sections.scoring import ScoringPolicy
from opendip.policy.sections.settlement import SettlementPolicy
from opendip.policy.sections.supervision import SupervisionPolicy


class Region(Section):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str


class MonitoringPolicy(Section):
    """事中监控 (the hospital's in-stay monitor, 在院病例)."""

    #: An in-stay case is flagged 接近高倍率 once its cost reaches this share of the group's
    #: high-multiple threshold at the hospital's level.
    near_high_share: Decimal = Field(default=Decimal("0.8"), gt=0, le=1)


class Pool(Section):
    id: Literal["employee", "resident"]
    name: str


class Policy(Section):
    """One region's DIP rules for one year, resolved at one date."""

    region: Region
    year: int = Field(ge=2000, le=2100)
    version: str
    #: The documents (文件号) this policy implements.
    documents: list[str] = []
    effective_from: dt.date
    effective_to: dt.date
    pools: list[Pool] = Field(min_length=1)
    qc: QcPolicy = QcPolicy()
    directory: DirectoryPolicy
    grouping: GroupingPolicy = GroupingPolicy()
    scoring: ScoringPolicy
    settlement: SettlementPolicy
    supervision: SupervisionPolicy = SupervisionPolicy()
    #: 年度考核评分表; absent: no assessment is computed (a score file may still be given).
    assessment: AssessmentPolicy | None = None
    #: 以收定支 income plan and the point-value forecast's tolerance.
    budget: BudgetPolicy = BudgetPolicy()
    #: 信息公开: which documents of published runs the public page discloses.
    disclosure: DisclosurePolicy = DisclosurePolicy()
    #: 报表口径: the score bands the regional report counts cases in.
    reporting: ReportingPolicy = ReportingPolicy()
    #: 事中监控 thresholds of the 在院病例 page.
    monitoring: MonitoringPolicy = MonitoringPolicy()
    #: 信用评价 scorecard, grades and their effects; absent: no credit rating.
    credit: CreditPolicy | None = None
    #: 预付金: absent: no prepayment. Needs `credit` (eligibility by grade).
    prepayment: PrepaymentPolicy | None = None

    @property
    def pool_ids(self) -> list[str]:
        return [p.id for p in self.pools]

    def tcm_treatment_prefixes(self) -> list[str]:
        """The TCM/ethnic-medicine treatment codes the policy lists (scoring.tcm_advantage)."""
        t = self.scoring.tcm_advantage
        if t is None:
            return []
        return list(dict.fromkeys(c for g in t.groups for c in g.treatment_codes))

    def grouping_ignored_prefixes(self) -> list[str]:
        """Procedure prefixes left out of the grouping key: `grouping.ignore_procedure_prefixes`
        and, unless `grouping.tcm_treatments_counted`, the listed TCM treatments."""
        ignore = list(self.grouping.ignore_procedure_prefixes)
        if not self.grouping.tcm_treatments_counted:
            ignore += [p for p in self.tcm_treatment_prefixes() if p not in ignore]
        return ignore

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        if self.effective_to < self.effective_from:
            raise ValueError(
                "effective_to 早于 effective_from / effective_to is before effective_from"
            )
        pools = set(self.pool_ids)
        missing = pools - set(self.settlement.budget)
        if missing:
            raise ValueError(
                f"settlement.budget 缺少统筹区 {sorted(missing)} 的预算 / "
                f"settlement.budget has no budget for pools {sorted(missing)}"
            )
        stray = set(self.budget.plan) - pools
        if stray:
            raise ValueError(
                f"budget.plan 含未声明的统筹区 {sorted(stray)} / "
                f"budget.plan names undeclared pools {sorted(stray)}"
            )
        unknown = set(self.settlement.budget) - pools
        if unknown:
            raise ValueError(
                f"settlement.budget 含未声明的统筹区 {sorted(unknown)} / "
                f"settlement.budget names undeclared pools {sorted(unknown)}"
            )
        if self.prepayment is not None and self.credit is None:
            raise ValueError(
                "@key:prepayment@ 预付金按信用等级确定资格，须同时设置 credit 信用评价 / "
                "prepayment eligibility is by credit grade: it needs the credit section"
            )
        if self.scoring.reference_mean == "score_times_factor":
            lacking = pools - set(self.scoring.yuan_per_point)
            if lacking:
                raise ValueError(
                    f"reference_mean=score_times_factor 需要 scoring.yuan_per_point 中 "
                    f"{sorted(lacking)} 的值 / needs scoring.yuan_per_point for {sorted(lacking)}"
                )
        return self
