"""Repository functions over the store; every read of a user-facing object takes the
actor and filters through `opendip.store.access`."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, event, func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload

from opendip.store.access import application_filter, lead_filter, run_visible, upload_filter
from opendip.store.models import (
    ROLES,
    Application,
    ApplicationEvent,
    Attachment,
    AuditEntry,
    Decision,
    LoginSession,
    Run,
    SupervisionLead,
    Upload,
    User,
    utcnow,
)
from opendip.store.passwords import dummy_verify, hash_password, verify_password
from opendip.workflow import (
    ACTIONS,
    KINDS,
    SUBJECTS,
    Actor,
    CaseDecision,
    Deadlines,
    IllegalTransition,
    outcome_of,
    plan,
    validate_decisions,
)


class StoreRuleError(ValueError):
    """A request the store refuses (Chinese message for users)."""


class ConcurrentUpdateError(StoreRuleError):
    """Someone else changed the object first (optimistic version check failed)."""


class NotFoundError(StoreRuleError):
    """No such object, or not visible to this user (answer 404)."""


def actor_of(user: User) -> Actor:
    """The user as a workflow actor, with its scope. A county user's hospitals are not
    known here (they come from the region's registry): without them it sees nothing
    (fails closed); callers that know them pass the full actor (`Viewer.actor`)."""
    return Actor(
        user.id,
        user.role,
        user.hospital_id,
        county=user.county if user.role == "agency" else None,
        department=user.department if user.role == "hospital" else None,
        doctor_id=user.doctor_id if user.role == "hospital" else None,
    )


# -- audit ----------------------------------------------------------------------------------


def audit(
    s: Session,
    user: User | None,
    action: str,
    object_type: str = "",
    object_id: Any = "",
    details: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        user_id=user.id if user else None,
        username=user.username if user else "",
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else "",
        details=details or {},
        ip=ip,
    )
    s.add(entry)
    return entry


def audit_entries(
    s: Session, limit: int = 100, offset: int = 0, action: str | None = None
) -> tuple[list[AuditEntry], int]:
    stmt = select(AuditEntry)
    count = select(func.count()).select_from(AuditEntry)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
        count = count.where(AuditEntry.action == action)
    rows = s.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), int(s.scalar(count) or 0)


# -- users ------------------------------------------------------------------------------------


def create_user(
    s: Session,
    username: str,
    password: str,
    role: str,
    display_name: str = "",
    hospital_id: str | None = None,
    *,
    county: str | None = None,
    department: str | None = None,
    doctor_id: str | None = None,
) -> User:
    """A new user; `county` scopes an agency user to one county (县区经办), `department`
    or `doctor_id` a hospital user to a department (科主任) or their own cases (医师)
    (opendip.store.access). Whether the county exists is checked by the caller against
    the region's hospital registry."""
    username = username.strip()
    county = (county or "").strip()[:64] or None
    department = (department or "").strip()[:64] or None
    doctor_id = (doctor_id or "").strip()[:64] or None
    if not username or len(username) > 64:
        raise StoreRuleError("用户名须为 1–64 个字符")
    if role not in ROLES:
        raise StoreRuleError(f"未知角色：{role}")
    if role == "hospital" and not (hospital_id or "").strip():
        raise StoreRuleError("医院用户必须指定所属医疗机构代码")
    if role != "hospital" and hospital_id:
        raise StoreRuleError("只有医院用户可以指定医疗机构")
    _check_scope(role, county, department, doctor_id)
    if s.scalar(select(User).where(User.username == username)) is not None:
        raise StoreRuleError(f"用户名 {username} 已存在")
    user = User(
        username=username,
        display_name=display_name or username,
        role=role,
        hospital_id=hospital_id.strip() if hospital_id else None,
        county=county,
        department=department,
        doctor_id=doctor_id,
        password_hash=hash_password(password),
    )
    s.add(user)
    s.flush()
    return user


def _check_scope(
    role: str, county: str | None, department: str | None, doctor_id: str | None
) -> None:
    if county and role != "agency":
        raise StoreRuleError("只有医保局经办用户可以限定区县")
    if (department or doctor_id) and role != "hospital":
        raise StoreRuleError("只有医院用户可以限定科室或主诊医师")
    if department and doctor_id:
        raise StoreRuleError("科主任（科室）与医师（主诊医师代码）只能二选一")


def set_user_scope(
    user: User, county: str | None, department: str | None, doctor_id: str | None
) -> dict[str, Any]:
    """Change an existing user's data scope (区县, 科室 or 主诊医师; empty: the role's whole
    scope) by the rules of `create_user`; returns {field: [before, after]} of what changed
    (the caller audits it). Whether the county exists is checked by the caller."""
    county = (county or "").strip()[:64] or None
    department = (department or "").strip()[:64] or None
    doctor_id = (doctor_id or "").strip()[:64] or None
    _check_scope(user.role, county, department, doctor_id)
    changes: dict[str, Any] = {}
    for name, value in (("county", county), ("department", department), ("doctor_id", doctor_id)):
        if getattr(user, name) != value:
            changes[name] = [getattr(user, name), value]
            setattr(user, name, value)
    return changes


def get_user(s: Session, user_id: int) -> User | None:
    return s.get(User, user_id)


def user_by_name(s: Session, username: str) -> User | None:
    return s.scalar(select(User).where(User.username == username))


def list_users(s: Session, role: str | None = None) -> list[User]:
    stmt = select(User).order_by(User.role, User.username)
    if role:
        stmt = stmt.where(User.role == role)
    return list(s.scalars(stmt).all())


class LoginRefused(StoreRuleError):
    """Wrong credentials, inactive or locked account (message safe to show)."""


def login_refusal(max_failures: int, lockout: dt.timedelta) -> str:
    """The one answer to every refused login (unknown user, wrong password, locked or
    inactive account): the same words whatever the reason, so that nobody can find out
    which user names exist."""
    minutes = max(1, int(lockout.total_seconds() // 60))
    return (
        f"用户名或密码错误。连续失败 {max_failures} 次账户将锁定 {minutes} 分钟；"
        "若已锁定，请稍后再试或联系管理员解锁"
    )


def check_login(
    s: Session,
    username: str,
    password: str,
    max_failures: int,
    lockout: dt.timedelta,
    now: dt.datetime | None = None,
) -> User:
    """The user if the password is right, else `LoginRefused` (always the same message).

    The failure counter is claimed atomically *before* the password is checked: one
    ``UPDATE … SET failed_logins = failed_logins + 1 … RETURNING`` per attempt, committed at
    once, so parallel guesses each see their own count and at most `max_failures` of them
    are ever checked; the one reaching the limit locks the account. Unknown, locked and
    inactive users cost one password hash check too (a dummy hash), so answers take the same
    time. Commits `s`.
    """
    now = now or utcnow()
    refusal = LoginRefused(login_refusal(max_failures, lockout))
    user = user_by_name(s, username.strip()[:64])
    if user is None:
        dummy_verify(password)
        raise refusal
    claimed = s.execute(
        update(User)
        .where(
            User.id == user.id,
            (User.locked_until.is_(None)) | (User.locked_until <= now),
        )
        .values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    s.commit()
    if claimed is None or claimed > max_failures or not user.active:
        dummy_verify(password)  # locked, over the limit or inactive
        raise refusal
    if not verify_password(user.password_hash, password):
        if claimed >= max_failures:
            s.execute(
                update(User)
                .where(User.id == user.id)
                .values(locked_until=now + lockout, failed_logins=0)
                .execution_options(synchronize_session=False)
            )
            audit(s, user, "user.locked", "user", user.id, {"minutes": lockout.seconds // 60})
            s.commit()
        raise refusal
    s.execute(
        update(User)
        .where(User.id == user.id)
        .values(failed_logins=0, locked_until=None, last_login_at=now)
        .execution_options(synchronize_session=False)
    )
    s.refresh(user)
    return user


def set_password(s: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    _auth_changed(s)
    s.execute(delete(LoginSession).where(LoginSession.user_id == user.id))


def unlock_user(user: User) -> None:
    user.failed_logins = 0
    user.locked_until = None


# -- sessions ---------------------------------------------------------------------------------


# Caches of checked sessions (opendip.web.security) trust an entry only while this counter
# is unchanged. It moves when a user or login session is changed or deleted: at the flush
# and again after the commit (a lookup between the two may have read the old rows).
_generation = [0]


def auth_generation() -> int:
    return _generation[0]


def _bump() -> None:
    _generation[0] += 1


def _auth_changed(s: Session) -> None:
    _bump()
    s.info["auth_changed"] = True


@event.listens_for(User, "after_update")
@event.listens_for(User, "after_delete")
@event.listens_for(LoginSession, "after_delete")
def _row_changed(mapper: Any, connection: Any, target: Any) -> None:
    _bump()
    session = Session.object_session(target)
    if session is not None:
        session.info["auth_changed"] = True


@event.listens_for(Session, "after_commit")
def _committed(s: Session) -> None:
    if s.info.pop("auth_changed", False):
        _bump()


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_session(
    s: Session, user: User, lifetime: dt.timedelta, ip: str | None = None
) -> tuple[str, LoginSession]:
    """A new session; returns the cookie token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = LoginSession(
        id_hash=_hash_token(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + lifetime,
        last_seen_at=now,
        ip=ip,
    )
    s.add(row)
    s.flush()
    return token, row


def find_session(
    s: Session, token: str, idle: dt.timedelta, now: dt.datetime | None = None
) -> LoginSession | None:
    """The live session for a cookie token; expired or idle sessions are deleted."""
    if not token or len(token) > 200:
        return None
    now = now or utcnow()
    row = s.get(LoginSession, _hash_token(token), options=[selectinload(LoginSession.user)])
    if row is None:
        return None
    if row.expires_at <= now or row.last_seen_at + idle <= now or not row.user.active:
        s.delete(row)
        return None
    if (now - row.last_seen_at).total_seconds() > 60:
        row.last_seen_at = now
    return row


def end_session(s: Session, token: str) -> None:
    _auth_changed(s)
    s.execute(delete(LoginSession).where(LoginSession.id_hash == _hash_token(token)))


# -- uploads ----------------------------------------------------------------------------------


def list_uploads(s: Session, actor: Actor, limit: int = 50) -> list[Upload]:
    stmt = select(Upload).where(upload_filter(actor)).order_by(Upload.id.desc()).limit(limit)
    return list(s.scalars(stmt).all())


def get_upload(s: Session, actor: Actor, upload_id: int) -> Upload | None:
    return s.scalar(select(Upload).where(Upload.id == upload_id, upload_filter(actor)))


def accepted_upload_files(s: Session) -> list[str]:
    """Accepted-case Parquet files of every successful upload, oldest first."""
    rows = s.scalars(select(Upload).where(Upload.status == "imported").order_by(Upload.id))
    return [u.outputs["accepted"] for u in rows if u.outputs.get("accepted")]


# -- runs -------------------------------------------------------------------------------------


def list_runs(s: Session, limit: int = 50) -> list[Run]:
    return list(s.scalars(select(Run).order_by(Run.id.desc()).limit(limit)).all())


def get_run(s: Session, actor: Actor, run_id: int) -> Run | None:
    run = s.get(Run, run_id)
    return run if run is not None and run_visible(actor, run) else None


def published_runs(s: Session) -> list[Run]:
    stmt = select(Run).where(Run.status == "published").order_by(Run.published_at.desc())
    return list(s.scalars(stmt).all())


RUN_STEPS = {"approve": ("succeeded", "approved"), "publish": ("approved", "published")}


def advance_run(s: Session, user: User, run: Run, action: str) -> Run:
    """Approve a finished run, or publish an approved one (conditional update)."""
    source, target = RUN_STEPS[action]
    if run.status != source:
        label = {"approve": "审核", "publish": "公示"}[action]
        raise StoreRuleError(f"结算运行当前状态为「{run.status_label}」，不能{label}")
    now = utcnow()
    values: dict[str, Any] = {"status": target}
    if action == "approve":
        values |= {"approved_by": user.id, "approved_at": now}
    else:
        values |= {"published_by": user.id, "published_at": now}
    res = s.execute(update(Run).where(Run.id == run.id, Run.status == source).values(**values))
    if res.rowcount != 1:
        raise ConcurrentUpdateError("该结算运行已被他人处理，请刷新页面")
    audit(s, user, f"run.{action}", "run", run.id, {"period": run.period, "kind": run.kind})
    s.refresh(run)
    return run


# -- applications -----------------------------------------------------------------------------


def list_applications(
    s: Session,
    actor: Actor,
    kind: str | None = None,
    state: str | None = None,
    archived: bool | None = None,
) -> list[Application]:
    stmt = select(Application).where(application_filter(actor))
    if kind:
        stmt = stmt.where(Application.kind == kind)
    if state:
        stmt = stmt.where(Application.state == state)
    if archived is True:
        stmt = stmt.where(Application.state == "archived")
    elif archived is False:
        stmt = stmt.where(Application.state != "archived")
    return list(s.scalars(stmt.order_by(Application.id.desc())).all())


def get_application(s: Session, actor: Actor, app_id: int) -> Application | None:
    stmt = (
        select(Application)
        .where(Application.id == app_id, application_filter(actor))
        .options(
            selectinload(Application.events),
            selectinload(Application.decisions),
            selectinload(Application.attachments),
        )
    )
    return s.scalar(stmt)


def create_application(
    s: Session,
    user: User,
    kind: str,
    title: str,
    reason: str,
    case_ids: Sequence[str],
    deadlines: Deadlines,
    hospital_id: str | None = None,
    today: dt.date | None = None,
    submit_token: str | None = None,
    subject: str | None = None,
) -> Application:
    """提出申请: a hospital files for its own cases (the agency may file for a hospital);
    a 政策异议 (kind "policy") concerns the budget, directory, a score or a coefficient and
    may name no case.

    A repeated `submit_token` (double submission of one form) returns the first
    application instead of filing a second one."""
    if submit_token:
        existing = s.scalar(select(Application).where(Application.submit_token == submit_token))
        if existing is not None and existing.created_by == user.id:
            return existing
        if existing is not None:
            raise StoreRuleError("表单已失效，请刷新页面后重新填写")
    if kind not in KINDS:
        raise StoreRuleError(f"未知申请类型：{kind}")
    if user.role == "hospital":
        hospital_id = user.hospital_id
    elif user.role not in ("admin", "agency"):
        raise StoreRuleError("只有医院用户或医保局经办人员可以提出申请")
    if not hospital_id:
        raise StoreRuleError("请指定申请医院")
    title = title.strip()
    reason = reason.strip()
    if not title or len(title) > 200:
        raise StoreRuleError("标题须为 1–200 个字符")
    if not reason:
        raise StoreRuleError("请填写申请理由")
    ids = list(dict.fromkeys(c.strip() for c in case_ids if c and c.strip()))
    if kind == "policy":
        if subject not in SUBJECTS:
            raise StoreRuleError(f"请选择政策异议的事项：{'、'.join(SUBJECTS.values())}")
    else:
        subject = None
        if not ids:
            raise StoreRuleError("请至少填写一个结算清单号")
    if len(ids) > 500:
        raise StoreRuleError("一次申请最多 500 个病例")
    now = utcnow()
    app = Application(
        kind=kind,
        hospital_id=hospital_id,
        title=title,
        reason=reason,
        case_ids=ids,
        subject=subject,
        state="submitted",
        version=1,
        deadline=deadlines.deadline("submitted", today or now.date()),
        created_by=user.id,
        created_at=now,
        updated_at=now,
        submit_token=submit_token or None,
    )
    s.add(app)
    s.flush()
    s.add(
        ApplicationEvent(
            application_id=app.id,
            actor_id=user.id,
            action="submit",
            from_state=None,
            to_state="submitted",
            comment=reason,
        )
    )
    audit(s, user, "application.submit", "application", app.id, {"kind": kind, "cases": len(ids)})
    return app


def transition(
    s: Session,
    user: User,
    app_id: int,
    action: str,
    expected_version: int,
    deadlines: Deadlines,
    comment: str = "",
    expert_id: int | None = None,
    decisions: Sequence[CaseDecision] = (),
    today: dt.date | None = None,
    actor: Actor | None = None,
) -> Application:
    """Apply one workflow action under the optimistic version check (the caller commits,
    or rolls back on an exception). `actor`: the user with its scope (default
    `actor_of(user)`).

    Raises NotFoundError (not visible), IllegalTransition / NotPermitted / InvalidDecision
    (refused), ConcurrentUpdateError (someone else acted first: exactly one wins).
    """
    actor = actor or actor_of(user)
    app = get_application(s, actor, app_id)
    if app is None:
        raise NotFoundError("未找到该申请")
    if expected_version != app.version:
        raise ConcurrentUpdateError("该申请已被他人更新，请刷新页面后重试")
    step = plan(app.state, action, actor, app.hospital_id, app.expert_id, comment)
    now = utcnow()
    values: dict[str, Any] = {
        "state": step.target,
        "version": app.version + 1,
        "updated_at": now,
        "deadline": deadlines.deadline(step.target, today or now.date()),
    }
    checked: list[CaseDecision] = []
    if action in ("assign", "reassign"):
        expert = s.get(User, expert_id) if expert_id is not None else None
        if expert is None or expert.role != "expert" or not expert.active:
            raise IllegalTransition("请选择一位有效的评审专家")
        if action == "reassign" and expert.id == app.expert_id:
            raise IllegalTransition("新指派的专家与当前专家相同")
        values["expert_id"] = expert.id
    if action == "decide":
        checked = validate_decisions(app.kind, app.case_ids, decisions)
    if step.target == "archived":
        values["closed_at"] = now
        values["deadline"] = None
        if action == "refuse":
            values["outcome"] = "refused"
        elif action == "withdraw":
            values["outcome"] = "withdrawn"
        else:
            values["outcome"] = outcome_of([d.decision for d in app.decisions])
    try:
        res = s.execute(
            update(Application)
            .where(Application.id == app.id, Application.version == expected_version)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    except OperationalError as exc:  # SQLite: a concurrent writer holds the lock
        raise ConcurrentUpdateError("该申请正被他人处理，请刷新页面后重试") from exc
    if res.rowcount != 1:
        raise ConcurrentUpdateError("该申请已被他人更新，请刷新页面后重试")
    if action == "decide":
        s.execute(delete(Decision).where(Decision.application_id == app.id))
        for d in checked:
            s.add(
                Decision(
                    application_id=app.id,
                    case_id=d.case_id,
                    decision=d.decision,
                    reviewed_score=d.reviewed_score,
                    opinion=d.opinion,
                    decided_by=user.id,
                    decided_at=now,
                )
            )
    s.add(
        ApplicationEvent(
            application_id=app.id,
            actor_id=user.id,
            action=action,
            from_state=step.source,
            to_state=step.target,
            comment=comment.strip(),
        )
    )
    details: dict[str, Any] = {"from": step.source, "to": step.target}
    if expert_id is not None:
        details["expert_id"] = expert_id
    if checked:
        details["decisions"] = {
            d.case_id: [d.decision, str(d.reviewed_score) if d.reviewed_score else None]
            for d in checked
        }
    audit(s, user, f"application.{action}", "application", app.id, details)
    try:
        s.flush()
    except (IntegrityError, OperationalError) as exc:
        raise ConcurrentUpdateError("该申请已被他人更新，请刷新页面后重试") from exc
    s.expire(app)
    fresh = get_application(s, actor, app.id)
    return fresh if fresh is not None else app


def add_comment(
    s: Session, user: User, app: Application, comment: str, actor: Actor | None = None
) -> ApplicationEvent:
    from opendip.workflow import can_comment

    text = comment.strip()
    if not text:
        raise StoreRuleError("意见内容不能为空")
    if len(text) > 5000:
        raise StoreRuleError("意见内容最多 5000 个字符")
    if not can_comment(app.state, actor or actor_of(user), app.hospital_id, app.expert_id):
        raise IllegalTransition("已结案归档的申请不能再添加意见")
    event = ApplicationEvent(
        application_id=app.id, actor_id=user.id, action="comment", comment=text
    )
    s.add(event)
    audit(s, user, "application.comment", "application", app.id)
    return event


def add_attachment(
    s: Session,
    user: User,
    app: Application,
    filename: str,
    stored_path: str,
    size: int,
    content_type: str,
) -> Attachment:
    if app.state == "archived":
        raise IllegalTransition("已结案归档的申请不能再添加附件")
    att = Attachment(
        application_id=app.id,
        filename=filename,
        stored_path=stored_path,
        size_bytes=size,
        content_type=content_type,
        uploaded_by=user.id,
    )
    s.add(att)
    s.flush()
    audit(s, user, "application.attach", "application", app.id, {"file": filename})
    return att


def get_attachment(s: Session, actor: Actor, app_id: int, att_id: int) -> Attachment | None:
    app = get_application(s, actor, app_id)
    if app is None:
        return None
    return next((a for a in app.attachments if a.id == att_id), None)


def nominated_case_ids(s: Session, hospital_id: str) -> set[str]:
    """Case ids a hospital has nominated for special review (特例单议), in applications not
    withdrawn or refused: what counts against its share cap."""
    stmt = select(Application.case_ids).where(
        Application.kind == "special_review",
        Application.hospital_id == hospital_id,
        or_(Application.outcome.is_(None), Application.outcome.not_in(("withdrawn", "refused"))),
    )
    return {c for ids in s.scalars(stmt).all() for c in (ids or [])}


def final_special_reviews(s: Session) -> list[tuple[str, str, Decimal | None]]:
    """(case_id, decision, reviewed_score) of archived special-review applications, in
    decision order: what settlement consumes."""
    stmt = (
        select(Decision.case_id, Decision.decision, Decision.reviewed_score)
        .join(Application, Application.id == Decision.application_id)
        .where(Application.kind == "special_review", Application.state == "archived")
        .order_by(Decision.decided_at, Decision.id)
    )
    return [(r[0], r[1], r[2]) for r in s.execute(stmt).all()]


def experts(s: Session) -> list[User]:
    stmt = select(User).where(User.role == "expert", User.active.is_(True)).order_by(User.id)
    return list(s.scalars(stmt).all())


# -- supervision leads --------------------------------------------------------------------------


def list_leads(
    s: Session, status: str | None = None, actor: Actor | None = None
) -> list[SupervisionLead]:
    """Leads, newest first; with `actor`, only those it may see (a county user's county)."""
    stmt = select(SupervisionLead).order_by(SupervisionLead.id.desc())
    if actor is not None:
        stmt = stmt.where(lead_filter(actor))
    if status:
        stmt = stmt.where(SupervisionLead.status == status)
    return list(s.scalars(stmt).all())


def import_leads(s: Session, leads: list[dict[str, Any]]) -> int:
    """Add supervision leads (rows of `opendip supervise`'s leads.parquet) not yet in the
    store, matched on their stable `lead_id`; returns how many were added."""
    known = {
        (lead.evidence or {}).get("lead_id") for lead in s.scalars(select(SupervisionLead)).all()
    }
    added = 0
    for row in leads:
        if row["lead_id"] in known:
            continue
        known.add(row["lead_id"])
        s.add(
            SupervisionLead(
                hospital_id=row["hospital_id"],
                rule=row["lead_type"],
                title=f"{row['type_label']}（{row['hospital_id']}）"[:200],
                case_ids=list(row.get("case_ids") or []),
                evidence={
                    "lead_id": row["lead_id"],
                    "text": row["evidence"],
                    "severity": row.get("severity"),
                    "score": row.get("score"),
                    "impact_fen": row.get("impact_fen"),
                    "rank_overall": row.get("rank_overall"),
                },
            )
        )
        added += 1
    return added


def get_lead(s: Session, actor: Actor, lead_id: int) -> SupervisionLead | None:
    return s.scalar(
        select(SupervisionLead).where(SupervisionLead.id == lead_id, lead_filter(actor))
    )


def update_lead(
    s: Session,
    user: User,
    lead: SupervisionLead,
    action: str,
    expected_version: int,
    assignee_id: int | None = None,
    conclusion: str = "",
    adjustment: dict[str, Any] | None = None,
) -> SupervisionLead:
    """assign (open/assigned → assigned), close (assigned → closed, with a conclusion), or
    confirm (assigned → confirmed: the decision recorded with the adjustment the year's
    clearing applies, validated as a findings row)."""
    if action == "assign":
        if lead.status not in ("open", "assigned"):
            raise IllegalTransition("已结案的线索不能再分派")
        assignee = s.get(User, assignee_id) if assignee_id is not None else None
        if assignee is None or assignee.role not in ("admin", "agency") or not assignee.active:
            raise IllegalTransition("请选择一位医保局经办人员")
        values: dict[str, Any] = {"status": "assigned", "assignee_id": assignee.id}
    elif action == "close":
        if lead.status != "assigned":
            raise IllegalTransition("线索须先分派核查，才能结案")
        if not conclusion.strip():
            raise IllegalTransition("结案须填写核查结论")
        values = {"status": "closed", "conclusion": conclusion.strip(), "closed_at": utcnow()}
    elif action == "confirm":
        if lead.status != "assigned":
            raise IllegalTransition("线索须先分派核查，才能确认")
        if not conclusion.strip():
            raise IllegalTransition("确认违规须填写处理决定")
        values = {
            "status": "confirmed",
            "conclusion": conclusion.strip(),
            "adjustment": _checked_adjustment(lead, adjustment or {}, conclusion.strip()),
            "closed_at": utcnow(),
        }
    else:
        raise IllegalTransition(f"未知操作：{action}")
    values["version"] = lead.version + 1
    res = s.execute(
        update(SupervisionLead)
        .where(SupervisionLead.id == lead.id, SupervisionLead.version == expected_version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:
        raise ConcurrentUpdateError("该线索已被他人更新，请刷新页面后重试")
    audit(s, user, f"lead.{action}", "lead", lead.id, {"assignee_id": assignee_id})
    s.flush()
    s.refresh(lead)
    return lead


def _finding_row(lead: SupervisionLead, adj: dict[str, Any], decision: str) -> dict[str, Any]:
    return {
        "finding_id": f"L{lead.id}",
        "lead_id": str((lead.evidence or {}).get("lead_id") or lead.id),
        "hospital_id": lead.hospital_id,
        "kind": adj.get("kind"),
        "case_id": adj.get("case_id") or None,
        "pool": adj.get("pool") or None,
        "target_group_code": adj.get("target_group_code") or None,
        "merge_into": adj.get("merge_into") or None,
        "amount_yuan": adj.get("amount_yuan") or None,
        "decision": decision,
        "status": "confirmed",
    }


def _checked_adjustment(lead: SupervisionLead, adj: dict[str, Any], decision: str) -> dict:
    import pyarrow as pa

    from opendip.settlement.errors import InputDataError
    from opendip.settlement.findings import normalise_findings

    year = adj.get("year")
    if not isinstance(year, int) or not 2000 <= year <= 2100:
        raise IllegalTransition("请填写处理所属的清算年度")
    clean = {k: (str(v).strip() if v is not None else None) for k, v in adj.items() if k != "year"}
    try:
        normalise_findings(pa.Table.from_pylist([_finding_row(lead, clean, decision)]), "监管线索")
    except InputDataError as exc:
        raise IllegalTransition(str(exc).replace("第 2 行 ", "")) from exc
    return {**{k: v for k, v in clean.items() if v}, "year": year}


def confirmed_findings(s: Session, year: int) -> list[dict[str, Any]]:
    """Rows of the findings file (settlement.findings) for the confirmed leads of `year`."""
    stmt = select(SupervisionLead).where(SupervisionLead.status == "confirmed")
    return [
        _finding_row(lead, lead.adjustment or {}, lead.conclusion)
        for lead in s.scalars(stmt.order_by(SupervisionLead.id)).all()
        if (lead.adjustment or {}).get("year") == year
    ]


__all__ = ["ACTIONS"]
