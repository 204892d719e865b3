"""Credit rating of hospitals (信用评价, issue 22 item 4): the scorecard, the grades and
their effects. Lhasa runs a "1+8" credit system (one credit-management rule and eight
implementing rules, seed 000): 信用承诺、信用评价、结果公开、结果应用、信用修复; its annual
rating is linked to inspection frequency, the agreement and the deposit (保证金, seed 002).

The rating is annual (one grade per hospital per year, and per doctor where the data allow);
the grades of year Y are applied by the settlement of year Y+1 (withholding share,
prepayment eligibility) and by supervision (inspection frequency).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from opendip.policy.sections.base import Positive, Section, Share, explicit, key_error

#: Measures the credit engine computes (opendip.credit.engine), with their Chinese names.
#: Count measures lose `per_unit` points per unit; rate measures score linearly.
CREDIT_MEASURES = {
    "supervision_leads": "智能监管疑点线索",
    "confirmed_violations": "经核实的违规行为",
    "complaints": "经核实的投诉举报",
    "late_uploads": "结算清单逾期上传（月份数）",
    "qc_pass_rate": "结算清单质控通过率",
    "front_page_qc_pass_rate": "病案首页质控通过率",
}
COUNT_MEASURES = ("supervision_leads", "confirmed_violations", "complaints", "late_uploads")
#: Measures that can be traced to a doctor (via the cases they concern).
DOCTOR_MEASURES = (
    "supervision_leads",
    "confirmed_violations",
    "qc_pass_rate",
    "front_page_qc_pass_rate",
)
#: Rate measures: points linear between zero_at and target.
RATE_MEASURES = ("qc_pass_rate", "front_page_qc_pass_rate")
PRIORITY_LABELS = {"low": "低频抽查", "normal": "常规检查", "high": "重点检查", "focus": "专项检查"}


class CreditItem(Section):
    """One line of the credit scorecard (all points are of `weight`, the line's full mark).

    Count measures: points = max(weight − per_unit × count, 0).
    Rate measures (qc_pass_rate, front_page_qc_pass_rate): points = weight × (value − zero_at) ÷ (target − zero_at),
    clamped to [0, weight]. Points are rounded half up to the scorecard's decimals.
    """

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str | None = None
    measure: Literal[
        "supervision_leads",
        "confirmed_violations",
        "complaints",
        "late_uploads",
        "qc_pass_rate",
        "front_page_qc_pass_rate",
    ]
    weight: Positive
    #: Count measures: points lost per unit (per lead, violation, complaint, late month).
    per_unit: Positive | None = None
    #: Rate measures: full points at or beyond target, none at or beyond zero_at.
    target: Decimal | None = None
    zero_at: Decimal | None = None

    @model_validator(mode="after")
    def _keys_fit_measure(self) -> CreditItem:
        if self.measure in COUNT_MEASURES:
            if self.per_unit is None:
                raise key_error(
                    "per_unit",
                    f"计数类指标 {self.measure} 须给出每次扣分 per_unit",
                    f"count measure {self.measure} needs per_unit",
                )
            for key in ("target", "zero_at"):
                if explicit(self, key):
                    raise key_error(
                        key,
                        f"{key} 只用于比率类指标（质控通过率），{self.measure} 按次扣分，请删除",
                        f"{key} only applies to rate measures; remove it",
                    )
            return self
        if explicit(self, "per_unit"):
            raise key_error(
                "per_unit",
                "per_unit 只用于计数类指标，比率类指标用 target 与 zero_at，请删除",
                "per_unit only applies to count measures; remove it",
            )
        if self.target is None or self.zero_at is None:
            raise key_error(
                "target",
                "比率类指标须给出满分线 target 与零分线 zero_at",
                "rate measures need target and zero_at",
            )
        if self.target == self.zero_at:
            raise key_error(
                "zero_at", "target 与 zero_at 不能相同", "target and zero_at must differ"
            )
        return self

    @property
    def label(self) -> str:
        return self.name or CREDIT_MEASURES[self.measure]


class CreditGrade(Section):
    """Score ≥ min_score → this grade and its effects (结果应用)."""

    grade: str = Field(pattern=r"^[A-Z][A-Z+\-]{0,3}$")
    min_score: Decimal = Field(ge=0)
    #: Chinese name of the grade (e.g. 守信, 基本守信, 失信, 严重失信).
    name: str | None = None
    #: Routine inspections (日常监督检查) a year; supervision sorts by it.
    inspections_per_year: int = Field(default=1, ge=0, le=52)
    supervision_priority: Literal["low", "normal", "high", "focus"] = "normal"
    #: 质量保证金 withheld from this grade's monthly advances in the following year; absent:
    #: settlement.withholding_share.
    withholding_share: Share | None = None
    #: May receive the annual prepayment (预付金) in the following year.
    prepayment_eligible: bool = False

    @property
    def label(self) -> str:
        return f"{self.grade}级" + (f"（{self.name}）" if self.name else "")


class CreditPolicy(Section):
    items: list[CreditItem] = Field(min_length=1)
    #: The full mark (满分): a subject's score is Σ points × total_points ÷ Σ weights of the
    #: items that apply to it (doctors: the items traceable to a doctor).
    total_points: Positive = Decimal(100)
    decimals: int = Field(default=2, ge=0, le=4)
    #: Highest min_score first; the last grade's min_score must be 0 (every subject graded).
    grades: list[CreditGrade] = Field(min_length=2)
    #: Data of month m are due by this day of month m+1 (the month's first upload counts).
    upload_deadline_day: int = Field(default=10, ge=1, le=28)
    #: Rate doctors too (the items traceable to a doctor through the cases).
    rate_doctors: bool = True
    #: Doctors with fewer cases in the period are not rated.
    doctor_min_cases: int = Field(default=10, ge=1)
    #: 信用修复: a recorded remediation raises the grade by this many steps ...
    repair_steps: int = Field(default=1, ge=1)
    #: ... never above this grade (absent: up to the best grade).
    repair_highest_grade: str | None = None
    #: Disputes (争议处理) decided against the hospital (archived 不予支持) count as
    #: confirmed violations (measure confirmed_violations), in the year of their cases.
    count_lost_disputes: bool = False

    @model_validator(mode="after")
    def _grades_consistent(self) -> CreditPolicy:
        scores = [g.min_score for g in self.grades]
        if scores != sorted(set(scores), reverse=True):
            raise key_error(
                "grades",
                "信用等级须按 min_score 从高到低排列且互不相同",
                "grades must be ordered by min_score, highest first, without repeats",
            )
        if scores[-1] != 0:
            raise key_error(
                f"grades[{len(scores) - 1}].min_score",
                "最低一档信用等级的 min_score 须为 0（每个机构都有等级）",
                "the lowest grade's min_score must be 0",
            )
        names = [g.grade for g in self.grades]
        if len(set(names)) != len(names):
            raise key_error("grades", "信用等级名称重复", "duplicate grade names")
        if self.repair_highest_grade is not None and self.repair_highest_grade not in names:
            raise key_error(
                "repair_highest_grade",
                f"信用修复上限等级 {self.repair_highest_grade} 不在 grades 中",
                f"repair_highest_grade {self.repair_highest_grade} is not a grade",
            )
        ids = [i.id for i in self.items]
        if len(set(ids)) != len(ids):
            raise key_error("items", "评分项 id 重复", "duplicate item ids")
        return self

    def grade_for(self, name: str) -> CreditGrade | None:
        return next((g for g in self.grades if g.grade == name), None)
