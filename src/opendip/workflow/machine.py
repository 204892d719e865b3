"""The special-review (特例单议) and dispute (争议) workflow as an explicit state machine.

提出申请 → 受理申诉 → 组织专家评审 → 处理意见反馈 → 争议结案归档

Pure Python: no web or database imports. `plan()` says what an action does from a state
for an actor, or refuses it with a Chinese message; the store applies the step under an
optimistic version check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from opendip.contract.labels import (
    APPLICATION_OUTCOMES,
    APPLICATION_STATES,
    REVIEW_DECISIONS,
    WORKFLOW_ACTIONS,
)

KINDS = ("special_review", "dispute", "policy")
KIND_LABELS = {"special_review": "特例单议", "dispute": "争议处理", "policy": "政策异议"}
#: Applications about no case (政策异议): what they concern.
SUBJECTS = {
    "budget": "预算",
    "directory": "病种目录",
    "score": "病种分值",
    "coefficient": "医疗机构系数",
    "other": "其他",
}
#: The decision row of an application about no case (the whole application).
OVERALL = "申请事项"

#: States in flow order.
STATES = ("submitted", "accepted", "reviewing", "feedback", "archived")
STATE_LABELS = APPLICATION_STATES
OUTCOMES = ("refused", "withdrawn", "upheld", "partly_upheld", "rejected")
OUTCOME_LABELS = APPLICATION_OUTCOMES
DECISIONS = ("accept", "reject")
DECISION_LABELS = REVIEW_DECISIONS

AGENCY = frozenset({"admin", "agency"})


@dataclass(frozen=True)
class Actor:
    user_id: int
    role: str
    hospital_id: str | None = None
    #: County-level agency users (县区经办): their county and its hospitals (data from the
    #: region's hospital registry); None for prefecture-level roles.
    county: str | None = None
    county_hospitals: frozenset[str] | None = None
    #: Hospital sub-roles: a department head (科主任) sees one discharge department's cases,
    #: a doctor (医师) the cases they are attending doctor of; None for the DIP office.
    department: str | None = None
    doctor_id: str | None = None

    @property
    def sub_scoped(self) -> bool:
        """A hospital user narrower than the whole hospital (department head, doctor)."""
        return self.role == "hospital" and bool(self.department or self.doctor_id)

    def in_county(self, hospital_id: str | None) -> bool:
        """False when a county-level user names a hospital outside its county (an unknown
        county has no hospitals: fails closed). Rules: `opendip.store.access`."""
        if self.county is None:
            return True
        return hospital_id is not None and hospital_id in (self.county_hospitals or frozenset())


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    sources: tuple[str, ...]
    target: str
    #: Who may do it: "agency" (admin/agency), "owner" (the applying hospital),
    #: "expert" (the assigned expert).
    who: str
    needs_comment: bool = False


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("accept", WORKFLOW_ACTIONS["accept"], ("submitted",), "accepted", "agency"),
        Action(
            "refuse",
            WORKFLOW_ACTIONS["refuse"],
            ("submitted",),
            "archived",
            "agency",
            needs_comment=True,
        ),
        Action(
            "withdraw", WORKFLOW_ACTIONS["withdraw"], ("submitted", "accepted"), "archived", "owner"
        ),
        Action("assign", WORKFLOW_ACTIONS["assign"], ("accepted",), "reviewing", "agency"),
        Action("reassign", WORKFLOW_ACTIONS["reassign"], ("reviewing",), "reviewing", "agency"),
        Action("decide", WORKFLOW_ACTIONS["decide"], ("reviewing",), "feedback", "expert"),
        Action("object", WORKFLOW_ACTIONS["object"], ("feedback",), "reviewing", "owner", True),
        Action("archive", WORKFLOW_ACTIONS["archive"], ("feedback",), "archived", "agency"),
    )
}


class WorkflowError(ValueError):
    """Base class of workflow refusals (messages are Chinese, for users)."""


class IllegalTransition(WorkflowError):
    """The action is not allowed from the application's current state."""


class NotPermitted(WorkflowError):
    """The actor's role or relation to the application does not allow the action."""


class InvalidDecision(WorkflowError):
    """An expert decision is incomplete or malformed."""


@dataclass(frozen=True)
class Step:
    action: str
    source: str
    target: str


@dataclass(frozen=True)
class CaseDecision:
    case_id: str
    decision: str
    reviewed_score: Decimal | None
    opinion: str = ""


def _is_party(action: Action, actor: Actor, hospital_id: str, expert_id: int | None) -> bool:
    if action.who == "agency":
        return actor.role in AGENCY and actor.in_county(hospital_id)
    if action.who == "owner":
        return (
            actor.role == "hospital" and actor.hospital_id == hospital_id and not actor.sub_scoped
        )
    if action.who == "expert":
        return actor.role == "expert" and expert_id is not None and actor.user_id == expert_id
    return False


def plan(
    state: str,
    action: str,
    actor: Actor,
    hospital_id: str,
    expert_id: int | None = None,
    comment: str = "",
) -> Step:
    """The step `action` makes from `state`, or a Chinese refusal."""
    spec = ACTIONS.get(action)
    if spec is None:
        raise IllegalTransition(f"未知操作：{action!r}")
    if state not in STATES:
        raise IllegalTransition(f"未知状态：{state!r}")
    if state not in spec.sources:
        allowed = "、".join(STATE_LABELS[s] for s in spec.sources)
        raise IllegalTransition(
            f"当前状态为「{STATE_LABELS[state]}」，不能执行「{spec.label}」（仅限：{allowed}）"
        )
    if not _is_party(spec, actor, hospital_id, expert_id):
        who = {"agency": "医保局经办人员", "owner": "申请医院", "expert": "被指派的评审专家"}
        raise NotPermitted(f"「{spec.label}」只能由{who[spec.who]}执行")
    if spec.needs_comment and not comment.strip():
        raise IllegalTransition(f"「{spec.label}」须填写说明")
    return Step(action, state, spec.target)


def allowed_actions(
    state: str, actor: Actor, hospital_id: str, expert_id: int | None = None
) -> list[Action]:
    """Actions the actor may take now (for buttons); comments are not transitions."""
    return [
        a
        for a in ACTIONS.values()
        if state in a.sources and _is_party(a, actor, hospital_id, expert_id)
    ]


def can_comment(state: str, actor: Actor, hospital_id: str, expert_id: int | None) -> bool:
    if state == "archived":
        return False
    return (
        (actor.role in AGENCY and actor.in_county(hospital_id))
        or (actor.role == "hospital" and actor.hospital_id == hospital_id and not actor.sub_scoped)
        or (actor.role == "expert" and expert_id == actor.user_id)
    )


def parse_score(text: str | Decimal | None, case_id: str) -> Decimal | None:
    """A reviewed score: ≥ 0, at most 4 decimals; '' or None means none."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise InvalidDecision(f"病例 {case_id} 的评定分值「{text}」不是数字") from exc
    if not value.is_finite():
        raise InvalidDecision(f"病例 {case_id} 的评定分值「{text}」不是数字")
    if value < 0:
        raise InvalidDecision(f"病例 {case_id} 的评定分值不能为负数")
    if value != value.quantize(Decimal("0.0001")):
        raise InvalidDecision(f"病例 {case_id} 的评定分值最多 4 位小数")
    if value >= Decimal("1e14"):
        raise InvalidDecision(f"病例 {case_id} 的评定分值过大")
    return value.quantize(Decimal("0.0001"))


def validate_decisions(
    kind: str, case_ids: Iterable[str], items: Iterable[CaseDecision]
) -> list[CaseDecision]:
    """Every case of the application decided exactly once; an accepted special-review
    case needs a reviewed score, a rejected case has none."""
    wanted = list(dict.fromkeys(case_ids))
    if kind == "policy" and not wanted:
        wanted = [OVERALL]
    seen: dict[str, CaseDecision] = {}
    for item in items:
        if item.case_id not in wanted:
            raise InvalidDecision(f"病例 {item.case_id} 不在本申请中")
        if item.case_id in seen:
            raise InvalidDecision(f"病例 {item.case_id} 重复给出评审意见")
        if item.decision not in DECISIONS:
            raise InvalidDecision(f"病例 {item.case_id} 的评审结论须为通过或不通过")
        if item.decision == "reject" and item.reviewed_score is not None:
            raise InvalidDecision(f"病例 {item.case_id} 评审不通过，不应给出评定分值")
        if kind == "special_review" and item.decision == "accept" and item.reviewed_score is None:
            raise InvalidDecision(f"病例 {item.case_id} 评审通过，须给出评定分值")
        seen[item.case_id] = item
    missing = [c for c in wanted if c not in seen]
    if missing:
        raise InvalidDecision(f"以下病例尚未给出评审意见：{'、'.join(missing[:10])}")
    return [seen[c] for c in wanted]


def outcome_of(decisions: Iterable[CaseDecision | str]) -> str:
    """upheld (all accepted), rejected (none), partly_upheld otherwise."""
    values = [d if isinstance(d, str) else d.decision for d in decisions]
    accepted = sum(v == "accept" for v in values)
    if values and accepted == len(values):
        return "upheld"
    if accepted == 0:
        return "rejected"
    return "partly_upheld"


@dataclass(frozen=True)
class Deadlines:
    """Working days allowed in each state (a region's 经办规程; settings, not constants)."""

    accept: int = 5
    assign: int = 5
    review: int = 10
    feedback: int = 5
    holidays: frozenset[dt.date] = frozenset()

    def days_for(self, state: str) -> int | None:
        return {
            "submitted": self.accept,
            "accepted": self.assign,
            "reviewing": self.review,
            "feedback": self.feedback,
        }.get(state)

    def deadline(self, state: str, entered: dt.date) -> dt.date | None:
        days = self.days_for(state)
        if days is None:
            return None
        return add_working_days(entered, days, self.holidays)


def add_working_days(
    start: dt.date, days: int, holidays: frozenset[dt.date] = frozenset()
) -> dt.date:
    """The date `days` working days after `start` (Mon–Fri, minus holidays)."""
    if days < 0:
        raise ValueError("days must be ≥ 0")
    current = start
    left = days
    while left > 0:
        current += dt.timedelta(days=1)
        if current.weekday() < 5 and current not in holidays:
            left -= 1
    return current
