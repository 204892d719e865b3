"""The operational store: users, sessions, runs, uploads, applications, leads, audit.

Typed SQLAlchemy 2 models. Times are naive UTC (`utcnow()`), identical on SQLite and
PostgreSQL. Money and scores never live here except reviewed scores (Numeric, Decimal).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from opendip.contract.labels import LABELS

#: Roles: 医保局管理员, 医保局经办, 医院用户, 评审专家, and the read-only 卫健部门 and
#: 财政部门. Scopes within a role (县区经办, 科主任, 医师): `User.county`, `User.department`,
#: `User.doctor_id` (rules: opendip.store.access).
ROLES = ("admin", "agency", "hospital", "expert", "health", "finance")
ROLE_LABELS = LABELS["role"]
RUN_KINDS = ("monthly", "annual")
RUN_KIND_LABELS = LABELS["run_kind"]
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "approved", "published")
RUN_STATUS_LABELS = LABELS["run_status"]
LEAD_STATUSES = ("open", "assigned", "closed", "confirmed")
LEAD_STATUS_LABELS = LABELS["lead_status"]


def utcnow() -> dt.datetime:
    """Naive UTC now (the store keeps naive UTC everywhere)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    #: Set for hospital users only: the one hospital they may see.
    hospital_id: Mapped[str | None] = mapped_column(String(64), index=True)
    #: Agency users only: the county (区县, as the hospital registry names it) they are
    #: limited to (县区经办); None: the whole region.
    county: Mapped[str | None] = mapped_column(String(64))
    #: Hospital users only: a department head's discharge department (科主任) or a
    #: doctor's attending doctor code (医师); neither: the DIP office (医保办).
    department: Mapped[str | None] = mapped_column(String(64))
    doctor_id: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)

    @property
    def scope_label(self) -> str:
        """The role with its scope in Chinese, e.g. 县区经办（城关区）, 科主任（骨科）."""
        if self.role == "agency" and self.county:
            return f"县区经办（{self.county}）"
        if self.role == "hospital" and self.doctor_id:
            return f"医师（{self.doctor_id}）"
        if self.role == "hospital" and self.department:
            return f"科主任（{self.department}）"
        if self.role == "hospital":
            return "医院医保办"
        return self.role_label


class LoginSession(Base):
    """A server-side session; the cookie carries the random id, the store its SHA-256."""

    __tablename__ = "login_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship()


class Run(Base):
    """A monthly pre-settlement or annual clearing run, executed in the background."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    step: Mapped[str] = mapped_column(String(200), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    manifest: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    @property
    def kind_label(self) -> str:
        return RUN_KIND_LABELS.get(self.kind, self.kind)

    @property
    def status_label(self) -> str:
        return RUN_STATUS_LABELS.get(self.status, self.status)


class Upload(Base):
    """One uploaded settlement-list file and what the import made of it."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The uploading hospital (hospital users), or None for an agency upload.
    hospital_id: Mapped[str | None] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    stored_path: Mapped[str] = mapped_column(String(1000))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    #: SHA-256 of the bytes: the same file uploaded twice is imported once.
    sha256: Mapped[str] = mapped_column(String(64), default="", index=True)
    encoding: Mapped[str | None] = mapped_column(String(32))
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_accepted: Mapped[int] = mapped_column(Integer, default=0)
    rows_quarantined: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="received")
    message: Mapped[str] = mapped_column(Text, default="")
    #: Output files (accepted parquet, quarantine csv, qc results) by name.
    outputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Application(Base):
    """A special-review application (特例单议) or a dispute (争议), with its workflow state.

    `version` is the optimistic-concurrency counter: every transition updates
    `WHERE id = ? AND version = ?`, so of two concurrent decisions exactly one wins.
    """

    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    hospital_id: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    case_ids: Mapped[list[Any]] = mapped_column(default=list)
    #: What an application about no case (kind "policy") concerns (workflow.SUBJECTS).
    subject: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    outcome: Mapped[str | None] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)
    expert_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: One-time token of the submitting form: a double submission returns the first row.
    submit_token: Mapped[str | None] = mapped_column(String(64), unique=True)

    expert: Mapped[User | None] = relationship(foreign_keys=[expert_id])
    events: Mapped[list[ApplicationEvent]] = relationship(
        order_by="ApplicationEvent.id", cascade="all, delete-orphan"
    )
    decisions: Mapped[list[Decision]] = relationship(
        order_by="Decision.case_id", cascade="all, delete-orphan"
    )
    attachments: Mapped[list[Attachment]] = relationship(
        order_by="Attachment.id", cascade="all, delete-orphan"
    )


class ApplicationEvent(Base):
    """A transition or a comment on an application (the archive's history)."""

    __tablename__ = "application_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    actor: Mapped[User | None] = relationship()


class Decision(Base):
    """The expert's decision on one case of an application."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("application_id", "case_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    case_id: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(8))
    reviewed_score: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    opinion: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Attachment(Base):
    """Metadata of a file attached to an application (the bytes live under the data dir)."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    stored_path: Mapped[str] = mapped_column(String(1000))
    content_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SupervisionLead(Base):
    """A supervision lead (监管线索) with evidence, assignable and closable."""

    __tablename__ = "supervision_leads"

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[str] = mapped_column(String(64), index=True)
    rule: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    case_ids: Mapped[list[Any]] = mapped_column(default=list)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    conclusion: Mapped[str] = mapped_column(Text, default="")
    #: A confirmed lead's adjustment applied at the year's clearing (settlement.findings):
    #: {year, kind: regroup|merge|deduct, case_id, target_group_code, merge_into, amount_yuan}.
    adjustment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    assignee: Mapped[User | None] = relationship()

    @property
    def status_label(self) -> str:
        return LEAD_STATUS_LABELS.get(self.status, self.status)


class AuditEntry(Base):
    """Who did what, when, to which object (every change and every run)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ip: Mapped[str | None] = mapped_column(String(64))


PROPOSAL_STATUSES = ("running", "ready", "failed", "published", "adopted", "withdrawn")
PROPOSAL_STATUS_LABELS = {
    "running": "测算中",
    "ready": "测算完成",
    "failed": "测算失败",
    "published": "意见征集中",
    "adopted": "已采纳",
    "withdrawn": "已撤回",
}


class Proposal(Base):
    """A policy/directory variant (方案测算) and, once published, its 意见征集."""

    __tablename__ = "proposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    #: The variant file as validated (YAML text: name, description, policy overlay).
    variant_yaml: Mapped[str] = mapped_column(Text)
    #: The annual clearing run the scenario re-runs (platform run id) and its directory.
    base_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    progress: Mapped[str] = mapped_column(String(200), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    #: Where the scenario output lies (DATA/scenarios/<id>).
    result_dir: Mapped[str] = mapped_column(String(1000), default="")
    #: The policy file written when the agency adopted the variant.
    adopted_policy: Mapped[str] = mapped_column(String(1000), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    adopted_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    comments: Mapped[list[ProposalComment]] = relationship(
        order_by="ProposalComment.id", cascade="all, delete-orphan"
    )

    @property
    def status_label(self) -> str:
        return PROPOSAL_STATUS_LABELS.get(self.status, self.status)


class ProposalComment(Base):
    """A hospital's comment on a published proposal, and the agency's reply."""

    __tablename__ = "proposal_comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(
        ForeignKey("proposals.id", ondelete="CASCADE"), index=True
    )
    hospital_id: Mapped[str] = mapped_column(String(64), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    reply: Mapped[str] = mapped_column(Text, default="")
    replied_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    replied_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class ApiKey(Base):
    """A key issued by the agency admin to one hospital's system (HIS / 病案系统) for the
    system-to-system API (`/api/v1`). Only the SHA-256 of the secret is stored; `prefix`
    (the first characters, not secret) identifies the key in lists and the audit log."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class PushedCase(Base):
    """A case pushed by a hospital system through `POST /api/v1/cases` (in stay or at
    discharge), with the platform's latest answer. One row per case id: the case belongs to
    the hospital that first submitted it (docs/data-contract.md, Identity); a re-push by
    that hospital updates the row and bumps `version`."""

    __tablename__ = "pushed_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), unique=True)
    hospital_id: Mapped[str] = mapped_column(String(64), index=True)
    #: "in_stay" (在院, partial) or "discharged" (已出院).
    status: Mapped[str] = mapped_column(String(16), index=True)
    department: Mapped[str] = mapped_column(String(100), default="")
    doctor: Mapped[str] = mapped_column(String(100), default="")
    #: The case as pushed (normalised JSON) and the platform's answer (QC, group, score …).
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class CreditRating(Base):
    """A hospital's (or doctor's) credit rating (信用评价) of one period: the score, the grade,
    the inputs that produced it (measures and item points) and, after a remediation
    (信用修复), the repaired grade in force."""

    __tablename__ = "credit_ratings"
    __table_args__ = (UniqueConstraint("period", "subject", "hospital_id", "doctor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(16), index=True)
    #: "hospital" or "doctor".
    subject: Mapped[str] = mapped_column(String(16), default="hospital")
    hospital_id: Mapped[str] = mapped_column(String(64), index=True)
    #: "" for a hospital's own rating.
    doctor_id: Mapped[str] = mapped_column(String(64), default="")
    score: Mapped[Decimal] = mapped_column(Numeric(10, 4))
    grade: Mapped[str] = mapped_column(String(8))
    #: The grade after a recorded remediation (None: not repaired).
    repaired_grade: Mapped[str | None] = mapped_column(String(8))
    #: Item lines: [{item, item_name, measure, value, numerator, denominator, weight, points}].
    breakdown: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: Where the rating came from (run, policy version, input files) and when.
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    @property
    def grade_in_force(self) -> str:
        return self.repaired_grade or self.grade


class CreditRepair(Base):
    """信用修复: the agency records a hospital's remediation; the rating's grade is raised by
    the policy's rule (credit.repair_steps, credit.repair_highest_grade)."""

    __tablename__ = "credit_repairs"

    id: Mapped[int] = mapped_column(primary_key=True)
    rating_id: Mapped[int] = mapped_column(
        ForeignKey("credit_ratings.id", ondelete="CASCADE"), index=True
    )
    remediation: Mapped[str] = mapped_column(Text)
    grade_before: Mapped[str] = mapped_column(String(8))
    grade_after: Mapped[str] = mapped_column(String(8))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    recorder: Mapped[User | None] = relationship()


class Complaint(Base):
    """A complaint or report (投诉举报) about a hospital the agency records; substantiated
    complaints of a period count in its credit rating."""

    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[str] = mapped_column(String(64), index=True)
    received_on: Mapped[dt.date] = mapped_column(Date)
    summary: Mapped[str] = mapped_column(Text)
    substantiated: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
