"""The special-review / dispute state machine: every legal and illegal transition."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opendip.workflow import (
    ACTIONS,
    STATES,
    Actor,
    CaseDecision,
    Deadlines,
    IllegalTransition,
    InvalidDecision,
    NotPermitted,
    add_working_days,
    allowed_actions,
    can_comment,
    outcome_of,
    parse_score,
    plan,
    special_review_table,
    validate_decisions,
)

AGENCY = Actor(1, "agency")
ADMIN = Actor(2, "admin")
OWNER = Actor(3, "hospital", "H001")
OTHER_HOSPITAL = Actor(4, "hospital", "H002")
EXPERT = Actor(5, "expert")
OTHER_EXPERT = Actor(6, "expert")
ALL = (AGENCY, ADMIN, OWNER, OTHER_HOSPITAL, EXPERT, OTHER_EXPERT)

#: (state, action) → target, and who may do it: the full legal table.
LEGAL = {
    ("submitted", "accept"): ("accepted", {AGENCY, ADMIN}),
    ("submitted", "refuse"): ("archived", {AGENCY, ADMIN}),
    ("submitted", "withdraw"): ("archived", {OWNER}),
    ("accepted", "withdraw"): ("archived", {OWNER}),
    ("accepted", "assign"): ("reviewing", {AGENCY, ADMIN}),
    ("reviewing", "reassign"): ("reviewing", {AGENCY, ADMIN}),
    ("reviewing", "decide"): ("feedback", {EXPERT}),
    ("feedback", "object"): ("reviewing", {OWNER}),
    ("feedback", "archive"): ("archived", {AGENCY, ADMIN}),
}


@pytest.mark.parametrize(("state", "action"), sorted(LEGAL))
def test_legal_transitions_by_role(state: str, action: str) -> None:
    target, who = LEGAL[(state, action)]
    for actor in ALL:
        if actor in who:
            step = plan(state, action, actor, "H001", EXPERT.user_id, comment="说明")
            assert (step.source, step.target) == (state, target)
        else:
            with pytest.raises(NotPermitted, match="只能由"):
                plan(state, action, actor, "H001", EXPERT.user_id, comment="说明")


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_illegal_transitions_refused_in_chinese(state: str, action: str) -> None:
    if (state, action) in LEGAL:
        return
    for actor in ALL:
        with pytest.raises(IllegalTransition, match="不能执行"):
            plan(state, action, actor, "H001", EXPERT.user_id, comment="说明")


def test_archived_is_terminal() -> None:
    for actor in ALL:
        assert allowed_actions("archived", actor, "H001", EXPERT.user_id) == []
        assert not can_comment("archived", actor, "H001", EXPERT.user_id)


def test_unknown_action_and_state() -> None:
    with pytest.raises(IllegalTransition, match="未知操作"):
        plan("submitted", "approve", AGENCY, "H001")
    with pytest.raises(IllegalTransition, match="未知状态"):
        plan("limbo", "accept", AGENCY, "H001")


def test_refuse_and_object_need_a_comment() -> None:
    with pytest.raises(IllegalTransition, match="须填写说明"):
        plan("submitted", "refuse", AGENCY, "H001", comment="  ")
    with pytest.raises(IllegalTransition, match="须填写说明"):
        plan("feedback", "object", OWNER, "H001", comment="")


def test_unassigned_expert_cannot_decide() -> None:
    with pytest.raises(NotPermitted):
        plan("reviewing", "decide", OTHER_EXPERT, "H001", EXPERT.user_id)
    with pytest.raises(NotPermitted):
        plan("reviewing", "decide", EXPERT, "H001", None)


def test_allowed_actions_match_plan() -> None:
    for state in STATES:
        for actor in ALL:
            names = {a.name for a in allowed_actions(state, actor, "H001", EXPERT.user_id)}
            expected = {a for (s, a), (_, who) in LEGAL.items() if s == state and actor in who}
            assert names == expected


def test_comment_rights() -> None:
    assert can_comment("reviewing", OWNER, "H001", EXPERT.user_id)
    assert can_comment("reviewing", EXPERT, "H001", EXPERT.user_id)
    assert can_comment("submitted", AGENCY, "H001", None)
    assert not can_comment("reviewing", OTHER_HOSPITAL, "H001", EXPERT.user_id)
    assert not can_comment("reviewing", OTHER_EXPERT, "H001", EXPERT.user_id)


# -- deadlines: working days, hand-computed ---------------------------------------------------


def test_working_days_skip_weekends_and_holidays() -> None:
    friday = dt.date(2026, 1, 2)  # a Friday
    assert add_working_days(friday, 1) == dt.date(2026, 1, 5)  # Monday
    assert add_working_days(friday, 5) == dt.date(2026, 1, 9)
    assert add_working_days(friday, 0) == friday
    holidays = frozenset({dt.date(2026, 1, 5), dt.date(2026, 1, 6)})
    assert add_working_days(friday, 1, holidays) == dt.date(2026, 1, 7)
    with pytest.raises(ValueError):
        add_working_days(friday, -1)


def test_deadline_per_state() -> None:
    d = Deadlines(accept=3, assign=2, review=10, feedback=5)
    monday = dt.date(2026, 3, 2)
    assert d.deadline("submitted", monday) == dt.date(2026, 3, 5)
    assert d.deadline("accepted", monday) == dt.date(2026, 3, 4)
    assert d.deadline("reviewing", monday) == dt.date(2026, 3, 16)
    assert d.deadline("feedback", monday) == dt.date(2026, 3, 9)
    assert d.deadline("archived", monday) is None


@given(st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1)), st.integers(0, 60))
def test_working_days_property(start: dt.date, n: int) -> None:
    end = add_working_days(start, n)
    days = [start + dt.timedelta(days=i) for i in range(1, (end - start).days + 1)]
    assert sum(d.weekday() < 5 for d in days) == n
    assert n == 0 or end.weekday() < 5


# -- decisions ---------------------------------------------------------------------------------


def test_parse_score() -> None:
    assert parse_score("12.5", "C1") == Decimal("12.5000")
    assert parse_score("", "C1") is None
    assert parse_score(None, "C1") is None
    for bad, msg in (
        ("abc", "不是数字"),
        ("-1", "负数"),
        ("1.23456", "4 位小数"),
        ("NaN", "不是数字"),
    ):
        with pytest.raises(InvalidDecision, match=msg):
            parse_score(bad, "C1")


def test_validate_decisions() -> None:
    ok = validate_decisions(
        "special_review",
        ["C1", "C2"],
        [CaseDecision("C2", "reject", None), CaseDecision("C1", "accept", Decimal("88"))],
    )
    assert [d.case_id for d in ok] == ["C1", "C2"]
    cases = [
        ([CaseDecision("C1", "accept", Decimal(1))], "尚未给出"),
        (
            [CaseDecision("C1", "accept", None), CaseDecision("C2", "reject", None)],
            "须给出评定分值",
        ),
        (
            [CaseDecision("C1", "reject", Decimal(1)), CaseDecision("C2", "reject", None)],
            "不应给出",
        ),
        ([CaseDecision("C9", "reject", None)], "不在本申请中"),
        ([CaseDecision("C1", "maybe", None)], "通过或不通过"),
        ([CaseDecision("C1", "reject", None), CaseDecision("C1", "reject", None)], "重复"),
    ]
    for items, msg in cases:
        with pytest.raises(InvalidDecision, match=msg):
            validate_decisions("special_review", ["C1", "C2"], items)
    # a dispute may be accepted without a new score
    assert validate_decisions("dispute", ["C1"], [CaseDecision("C1", "accept", None)])


def test_outcome() -> None:
    assert outcome_of(["accept", "accept"]) == "upheld"
    assert outcome_of(["reject"]) == "rejected"
    assert outcome_of(["accept", "reject"]) == "partly_upheld"
    assert outcome_of([]) == "rejected"


def test_special_review_table_feeds_scoring() -> None:
    from opendip.scoring.inputs import REVIEW_SCHEMA, normalise_reviews

    t = special_review_table(
        [("C2", "accept", Decimal("10.5")), ("C1", "reject", None), ("C2", "accept", Decimal("12"))]
    )
    assert t.schema == REVIEW_SCHEMA
    assert t.to_pylist() == [
        {"case_id": "C1", "decision": "reject", "reviewed_score": None},
        {"case_id": "C2", "decision": "accept", "reviewed_score": Decimal("12.0000")},
    ]
    assert normalise_reviews(t).equals(t)
    assert special_review_table([]).num_rows == 0
    assert isinstance(t, pa.Table)


@given(st.lists(st.sampled_from(sorted(ACTIONS)), max_size=20), st.sampled_from(ALL))
def test_random_walks_stay_in_known_states(actions: list[str], actor: Actor) -> None:
    state = "submitted"
    for action in actions:
        with contextlib.suppress(IllegalTransition, NotPermitted):
            state = plan(state, action, actor, "H001", EXPERT.user_id, comment="x").target
        assert state in STATES
