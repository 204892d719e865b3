"""Pydantic models of the JSON API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class Me(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    role_label: str
    hospital_id: str | None
    #: The role with its scope, e.g. 县区经办（城关区）, 科主任（骨科）, 医师（H001-D24-01）.
    scope_label: str = ""
    csrf_token: str


class Message(BaseModel):
    detail: str


class UploadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    hospital_id: str | None
    filename: str
    size_bytes: int
    encoding: str | None
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    status: str
    message: str
    created_at: dt.datetime
    duplicate_of_previous: bool = False


class QuarantineRow(BaseModel):
    row_number: int | None
    reason: str


class CaseRow(BaseModel):
    case_id: str
    hospital_id: str
    settle_month: str
    department: str | None = None
    insurance_type: str | None = None
    main_diagnosis: str | None = None
    main_procedure: str | None = None
    los_days: int | None = None
    total_cost_fen: int | None = None
    group_code: str | None = None
    group_type: str | None = None
    deviation: str | None = None
    settled_score: Decimal | None = None
    dip_amount_fen: int | None = None


class CaseList(BaseModel):
    total: int
    page: int
    page_size: int
    rows: list[CaseRow]


class CaseDetail(BaseModel):
    case: dict[str, Any]
    grouping: dict[str, Any]
    scoring: dict[str, Any]
    explanation: list[str]
    #: why a case without a score is settled by item (新技术新项目), else ""
    paid_by_item: str = ""


class PregroupIn(BaseModel):
    hospital_id: str | None = Field(default=None, max_length=64)
    insurance_type: Literal["employee", "resident"] = "employee"
    sex: Literal["1", "2", "0", "9"] = "1"
    age: int = Field(default=50, ge=0, le=150)
    discharge_date: dt.date | None = None
    los_days: int = Field(default=7, ge=0, le=3650)
    main_diagnosis: str = Field(min_length=1, max_length=32)
    other_diagnoses: list[str] = Field(default_factory=list, max_length=50)
    main_procedure: str | None = Field(default=None, max_length=32)
    other_procedures: list[str] = Field(default_factory=list, max_length=50)
    total_cost_yuan: Decimal = Field(ge=0, le=Decimal("100000000"), decimal_places=2)
    discharge_method: Literal["1", "2", "3", "4", "5", "9"] = "1"
    #: Which point value prices the estimate: the month's budget point value (预算点值, as
    #: the monthly pre-settlement pays) or the latest published run's point value.
    point_value_basis: Literal["budget", "published"] = "budget"


class PregroupProcedure(BaseModel):
    code: str
    name: str


class PregroupCandidate(BaseModel):
    """A group the diagnosis can reach, what it would pay at this hospital, and how."""

    group_code: str
    group_name: str | None
    group_type: str
    score: Decimal | None
    procedures: list[PregroupProcedure]
    how: str
    current: bool
    deviation: str | None = None
    settled_score: Decimal | None = None
    estimated_amount_fen: int | None = None


class PregroupOut(BaseModel):
    main_diagnosis: str
    diagnosis_name: str | None = None
    group_code: str | None
    group_name: str | None
    group_type: str
    base_score: Decimal | None
    match_step: str
    reason: str
    explanation: list[str]
    deviation: str | None = None
    case_score: Decimal | None = None
    settled_score: Decimal | None = None
    point_value: Decimal | None = None
    #: "budget" or "published": which point value was used, described in point_value_source.
    point_value_basis: str | None = None
    point_value_source: str = ""
    estimated_amount_fen: int | None = None
    scoring_note: str = ""
    #: 新技术新项目 in its transition period: the case is settled by item (按项目结算), not
    #: by DIP; new_technology_code names the item (scoring.new_technologies).
    settled_by_item: bool = False
    new_technology_code: str | None = None
    candidates: list[PregroupCandidate] = []


class RunIn(BaseModel):
    kind: Literal["monthly", "annual", "supervision"]
    period: str = Field(min_length=4, max_length=7, pattern=r"^\d{4}(-\d{2})?$")
    #: Year-end clearing: the agency's reason for settling accepted special reviews beyond
    #: scoring.special_review_max_share (recorded in the audit log).
    review_cap_override: str | None = Field(default=None, max_length=200)


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    period: str
    status: str
    status_label: str
    progress: int
    step: str
    message: str
    manifest: dict[str, Any]
    created_at: dt.datetime
    finished_at: dt.datetime | None


class ApplicationIn(BaseModel):
    kind: Literal["special_review", "dispute", "policy"]
    title: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=5000)
    #: At least one case, except for a 政策异议 (kind "policy"), which may name none.
    case_ids: list[str] = Field(default_factory=list, max_length=500)
    #: kind "policy": budget | directory | score | coefficient | other.
    subject: str | None = Field(default=None, max_length=16)
    hospital_id: str | None = Field(default=None, max_length=64)
    submit_token: str | None = Field(default=None, max_length=64)


class DecisionIn(BaseModel):
    case_id: str = Field(max_length=64)
    decision: Literal["accept", "reject"]
    reviewed_score: Decimal | None = Field(default=None, ge=0, le=Decimal("99999999"))
    opinion: str = Field(default="", max_length=2000)


class TransitionIn(BaseModel):
    action: Literal[
        "accept", "refuse", "withdraw", "assign", "reassign", "decide", "object", "archive"
    ]
    version: int = Field(ge=1, le=2**31 - 1)
    comment: str = Field(default="", max_length=5000)
    expert_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    decisions: list[DecisionIn] = Field(default_factory=list, max_length=500)


class CommentIn(BaseModel):
    comment: str = Field(min_length=1, max_length=5000)


class EventOut(BaseModel):
    action: str
    from_state: str | None
    to_state: str | None
    comment: str
    actor: str
    created_at: dt.datetime


class DecisionOut(BaseModel):
    case_id: str
    decision: str
    reviewed_score: Decimal | None
    opinion: str


class AttachmentOut(BaseModel):
    id: int
    filename: str
    size_bytes: int
    content_type: str


class ApplicationOut(BaseModel):
    id: int
    kind: str
    hospital_id: str
    title: str
    reason: str
    case_ids: list[str]
    subject: str | None = None
    state: str
    state_label: str
    outcome: str | None
    version: int
    expert_id: int | None
    deadline: dt.date | None
    created_at: dt.datetime
    allowed_actions: list[str]
    events: list[EventOut] = []
    decisions: list[DecisionOut] = []
    attachments: list[AttachmentOut] = []


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=8, max_length=256)
    role: Literal["admin", "agency", "hospital", "expert", "health", "finance"]
    display_name: str = Field(default="", max_length=100)
    hospital_id: str | None = Field(default=None, max_length=64)
    #: 县区经办: an agency user limited to one county of the hospital registry.
    county: str | None = Field(default=None, max_length=64)
    #: 科主任 (discharge department) or 医师 (attending doctor code): hospital sub-roles.
    department: str | None = Field(default=None, max_length=64)
    doctor_id: str | None = Field(default=None, max_length=64)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    display_name: str
    role: str
    hospital_id: str | None
    county: str | None = None
    department: str | None = None
    doctor_id: str | None = None
    scope_label: str = ""
    active: bool
    locked_until: dt.datetime | None


class UserScope(BaseModel):
    """A user's data scope: 区县 (agency users), 科室 or 主诊医师 (hospital users); all empty:
    the role's whole scope."""

    county: str | None = Field(default=None, max_length=64)
    department: str | None = Field(default=None, max_length=64)
    doctor_id: str | None = Field(default=None, max_length=64)


class UserUpdate(BaseModel):
    active: bool | None = None
    unlock: bool = False
    password: str | None = Field(default=None, min_length=8, max_length=256)
    #: Replaces the user's scope (audited as before → after).
    scope: UserScope | None = None


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: dt.datetime
    username: str
    action: str
    object_type: str
    object_id: str
    details: dict[str, Any]


class LeadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    hospital_id: str
    rule: str
    title: str
    case_ids: list[Any]
    evidence: dict[str, Any]
    status: str
    assignee_id: int | None
    conclusion: str
    adjustment: dict[str, Any] | None = None
    version: int


class LeadAdjustment(BaseModel):
    """What a confirmed lead changes at the year's clearing (docs/money.md)."""

    year: int = Field(ge=2000, le=2100)
    kind: Literal["regroup", "merge", "deduct"]
    case_id: str | None = Field(default=None, max_length=64)
    pool: str | None = Field(default=None, max_length=16)
    target_group_code: str | None = Field(default=None, max_length=64)
    merge_into: str | None = Field(default=None, max_length=64)
    amount_yuan: str | None = Field(default=None, max_length=20)


class LeadAction(BaseModel):
    action: Literal["assign", "close", "confirm"]
    version: int = Field(ge=1, le=2**31 - 1)
    assignee_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    conclusion: str = Field(default="", max_length=5000)
    #: action confirm: the adjustment the year's clearing applies.
    adjustment: LeadAdjustment | None = None


#: Path ids: bounded so a guessed huge id is a 422, never a database overflow.
Id = Annotated[int, Path(ge=1, le=2**31 - 1, description="编号")]
