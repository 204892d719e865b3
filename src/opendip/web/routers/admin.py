# ruff: noqa: B008  (FastAPI dependencies are declared as Depends(...) defaults)
"""用户管理, 审计日志 (admins) and 监管线索 (agency)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from opendip.store import User
from opendip.store import repositories as repo
from opendip.store.passwords import WeakPasswordError
from opendip.web.app import error_response, render
from opendip.web.schemas import (
    AuditOut,
    Id,
    LeadAction,
    LeadAdjustment,
    LeadOut,
    Message,
    UserIn,
    UserOut,
    UserScope,
    UserUpdate,
)
from opendip.web.security import NotFound, Viewer, db, require
from opendip.web.services import check_scope, module_ready

router = APIRouter()
NOT_FOUND = {404: {"model": Message}}


# -- users ---------------------------------------------------------------------------------------


@router.get("/admin/users", include_in_schema=False)
def users_page(
    request: Request, viewer: Viewer = Depends(require("users")), s: Session = Depends(db)
) -> Response:
    return _users_page(request, s)


def _users_page(request: Request, s: Session, error: str = "") -> Response:
    """用户管理 page, with the refusal of a failed form (400) when there is one."""
    return render(
        request,
        "users.html",
        status_code=400 if error else 200,
        users=repo.list_users(s),
        hospitals=request.app.state.region.hospitals(),
        counties=request.app.state.region.counties(),
        error=error,
    )


def _create_user(request: Request, s: Session, viewer: Viewer, body: UserIn) -> User:
    region = request.app.state.region
    check_scope(region, body.county, body.hospital_id)
    try:
        user = repo.create_user(
            s,
            body.username,
            body.password,
            body.role,
            body.display_name,
            body.hospital_id or None,
            county=body.county,
            department=body.department,
            doctor_id=body.doctor_id,
        )
    except WeakPasswordError as exc:
        raise repo.StoreRuleError(str(exc)) from exc
    repo.audit(
        s,
        viewer.user,
        "user.create",
        "user",
        user.id,
        {
            "username": user.username,
            "role": user.role,
            "hospital_id": user.hospital_id,
            "county": user.county,
            "department": user.department,
            "doctor_id": user.doctor_id,
        },
    )
    s.commit()
    return user


@router.post("/admin/users", include_in_schema=False)
def users_create(
    request: Request,
    username: str = Form(max_length=64),
    password: str = Form(max_length=256),
    role: str = Form(max_length=16),
    display_name: str = Form("", max_length=100),
    hospital_id: str = Form("", max_length=64),
    county: str = Form("", max_length=64),
    department: str = Form("", max_length=64),
    doctor_id: str = Form("", max_length=64),
    viewer: Viewer = Depends(require("users")),
    s: Session = Depends(db),
) -> Response:
    try:
        body = UserIn(
            username=username,
            password=password,
            role=role,
            display_name=display_name,
            hospital_id=hospital_id or None,
            county=county or None,
            department=department or None,
            doctor_id=doctor_id or None,
        )  # type: ignore[arg-type]
        _create_user(request, s, viewer, body)
    except (repo.StoreRuleError, ValueError) as exc:
        s.rollback()
        message = (
            str(exc)
            if isinstance(exc, repo.StoreRuleError)
            else "请检查用户名、角色，密码至少 8 个字符"
        )
        return _users_page(request, s, message)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}", include_in_schema=False)
def users_update(
    request: Request,
    user_id: Id,
    action: str = Form(max_length=16),
    viewer: Viewer = Depends(require("users")),
    s: Session = Depends(db),
) -> Response:
    body = UserUpdate(
        active=action == "activate" if action in ("activate", "deactivate") else None,
        unlock=action == "unlock",
    )
    _update_user(request, s, viewer, user_id, body)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/scope", include_in_schema=False)
def users_scope(
    request: Request,
    user_id: Id,
    county: str = Form("", max_length=64),
    department: str = Form("", max_length=64),
    doctor_id: str = Form("", max_length=64),
    viewer: Viewer = Depends(require("users")),
    s: Session = Depends(db),
) -> Response:
    """修改数据范围: an existing user's county (agency), department or doctor (hospital)."""
    body = UserUpdate(
        scope=UserScope(
            county=county or None, department=department or None, doctor_id=doctor_id or None
        )
    )
    try:
        _update_user(request, s, viewer, user_id, body)
    except repo.StoreRuleError as exc:
        s.rollback()
        return _users_page(request, s, str(exc))
    return RedirectResponse("/admin/users", status_code=303)


def _update_user(
    request: Request, s: Session, viewer: Viewer, user_id: Id, body: UserUpdate
) -> User:
    user = repo.get_user(s, user_id)
    if user is None:
        raise NotFound("未找到该用户")
    changes: dict[str, object] = {}
    if body.scope is not None:
        check_scope(request.app.state.region, body.scope.county, user.hospital_id)
        changes |= repo.set_user_scope(
            user, body.scope.county, body.scope.department, body.scope.doctor_id
        )
    if body.active is not None:
        if user.id == viewer.user.id and not body.active:
            raise repo.StoreRuleError("不能停用自己的账户")
        user.active = body.active
        changes["active"] = body.active
    if body.unlock:
        repo.unlock_user(user)
        changes["unlock"] = True
    if body.password:
        try:
            repo.set_password(s, user, body.password)
        except WeakPasswordError as exc:
            raise repo.StoreRuleError(str(exc)) from exc
        changes["password"] = "changed"
    repo.audit(s, viewer.user, "user.update", "user", user.id, changes)
    s.commit()
    return user


@router.get("/api/users", response_model=list[UserOut], tags=["用户管理"], summary="用户列表")
def api_users(
    viewer: Viewer = Depends(require("users")), s: Session = Depends(db)
) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in repo.list_users(s)]


@router.post(
    "/api/users",
    response_model=UserOut,
    responses={400: {"model": Message}},
    tags=["用户管理"],
    summary="新建用户",
)
def api_user_create(
    request: Request,
    body: UserIn,
    viewer: Viewer = Depends(require("users")),
    s: Session = Depends(db),
) -> UserOut:
    return UserOut.model_validate(_create_user(request, s, viewer, body))


@router.patch(
    "/api/users/{user_id}",
    response_model=UserOut,
    responses={**NOT_FOUND, 400: {"model": Message}},
    tags=["用户管理"],
    summary="启用/停用、解锁、重置密码、修改数据范围",
)
def api_user_update(
    request: Request,
    user_id: Id,
    body: UserUpdate,
    viewer: Viewer = Depends(require("users")),
    s: Session = Depends(db),
) -> UserOut:
    return UserOut.model_validate(_update_user(request, s, viewer, user_id, body))


# -- audit -------------------------------------------------------------------------------------


@router.get("/admin/audit", include_in_schema=False)
def audit_page(
    request: Request,
    page: int = Query(1, ge=1, le=100_000),
    action: str = Query("", max_length=64),
    viewer: Viewer = Depends(require("audit")),
    s: Session = Depends(db),
) -> Response:
    rows, total = repo.audit_entries(s, 100, (page - 1) * 100, action or None)
    return render(
        request,
        "audit.html",
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // 100)),
        action=action,
    )


@router.get("/api/audit", response_model=list[AuditOut], tags=["审计日志"], summary="审计日志")
def api_audit(
    page: int = Query(1, ge=1, le=100_000),
    action: str = Query("", max_length=64),
    viewer: Viewer = Depends(require("audit")),
    s: Session = Depends(db),
) -> list[AuditOut]:
    rows, _ = repo.audit_entries(s, 100, (page - 1) * 100, action or None)
    return [AuditOut.model_validate(r) for r in rows]


# -- supervision leads -------------------------------------------------------------------------------


LEAD_SORTS = {
    "credit": "按信用等级（检查频次高的机构在前）",
    "risk": "按风险（综合排名）",
    "amount": "按涉及金额",
    "newest": "按编号（新的在前）",
}
LEADS_PER_PAGE = 50


@router.get("/leads", include_in_schema=False)
def leads_page(
    request: Request,
    status: str = Query("", max_length=16),
    type: str = Query("", max_length=32),
    hospital_id: str = Query("", max_length=64),
    severity: str = Query("", max_length=16),
    sort: str = Query("", max_length=16),
    page: int = Query(1, ge=1, le=100_000),
    viewer: Viewer = Depends(require("leads")),
    s: Session = Depends(db),
) -> Response:
    """监管线索: filtered by type, hospital, risk and status, sorted by the hospital's credit
    grade (the grade's inspections a year, `credit.grades[]`, most first; then risk), risk or
    amount at stake, a page at a time; each lead links to its cases. The credit order is the
    default once hospitals have grades."""
    from opendip.web.credit import grades_for_supervision, policy_for

    app_state = request.app.state
    policy = policy_for(app_state.settings, app_state.region).periods()[-1][2]
    grades = grades_for_supervision(s, policy)
    every = repo.list_leads(s, None, viewer.actor)
    leads = [
        lead
        for lead in every
        if (not status or lead.status == status)
        and (not type or lead.rule == type)
        and (not hospital_id or lead.hospital_id == hospital_id)
        and (not severity or (lead.evidence or {}).get("severity") == severity)
    ]
    sort = sort if sort in LEAD_SORTS else ("credit" if grades else "risk")

    def risk(x):  # type: ignore[no-untyped-def]
        return ((x.evidence or {}).get("rank_overall") or 10**9, x.id)

    if sort == "credit":
        leads.sort(key=lambda x: (-grades.get(x.hospital_id, {}).get("inspections", 0), *risk(x)))
    elif sort == "amount":
        leads.sort(key=lambda x: (-int((x.evidence or {}).get("impact_fen") or 0), x.id))
    elif sort == "risk":
        leads.sort(key=risk)
    pages = max(1, -(-len(leads) // LEADS_PER_PAGE))
    page = min(page, pages)
    shown = leads[(page - 1) * LEADS_PER_PAGE : page * LEADS_PER_PAGE]
    query = {
        "status": status,
        "type": type,
        "hospital_id": hospital_id,
        "severity": severity,
        "sort": sort,
    }
    return render(
        request,
        "leads.html",
        leads=shown,
        total=len(leads),
        all_total=len(every),
        page=page,
        pages=pages,
        query=query,
        query_string="&".join(f"{k}={v}" for k, v in query.items() if v),
        sorts=LEAD_SORTS,
        hospitals=sorted({x.hospital_id for x in every}),
        staff=[u for u in repo.list_users(s) if u.role in ("admin", "agency") and u.active],
        ready=module_ready("opendip.supervision.bench") or bool(every),
        names=request.app.state.region.hospital_names(),
        year=request.app.state.region.current_year(),
        grades=grades,
    )


def _lead_action(s: Session, viewer: Viewer, lead_id: Id, body: LeadAction):
    lead = repo.get_lead(s, viewer.actor, lead_id)
    if lead is None:
        raise NotFound("未找到该线索")
    lead = repo.update_lead(
        s,
        viewer.user,
        lead,
        body.action,
        body.version,
        body.assignee_id,
        body.conclusion,
        body.adjustment.model_dump() if body.adjustment else None,
    )
    s.commit()
    return lead


@router.post("/leads/{lead_id}", include_in_schema=False)
def leads_update(
    request: Request,
    lead_id: Id,
    action: str = Form(max_length=16),
    version: int = Form(ge=1, le=2**31 - 1),
    assignee_id: str = Form("", max_length=12),
    conclusion: str = Form("", max_length=5000),
    kind: str = Form("", max_length=16),
    year: str = Form("", max_length=4),
    case_id: str = Form("", max_length=64),
    target_group_code: str = Form("", max_length=64),
    merge_into: str = Form("", max_length=64),
    amount_yuan: str = Form("", max_length=20),
    viewer: Viewer = Depends(require("leads")),
    s: Session = Depends(db),
) -> Response:
    if action not in ("assign", "close", "confirm"):
        return error_response(request, 400, "未知操作")
    adjustment = None
    if action == "confirm":
        if kind not in ("regroup", "merge", "deduct") or not year.isdigit():
            return error_response(request, 400, "请选择处理方式并填写清算年度")
        adjustment = LeadAdjustment(
            year=int(year),
            kind=kind,  # type: ignore[arg-type]
            case_id=case_id or None,
            target_group_code=target_group_code or None,
            merge_into=merge_into or None,
            amount_yuan=amount_yuan or None,
        )
    body = LeadAction(
        action=action,
        version=version,
        assignee_id=int(assignee_id) if assignee_id.isdigit() else None,
        conclusion=conclusion,
        adjustment=adjustment,
    )  # type: ignore[arg-type]
    _lead_action(s, viewer, lead_id, body)
    return RedirectResponse("/leads", status_code=303)


@router.get("/api/leads", response_model=list[LeadOut], tags=["监管线索"], summary="监管线索列表")
def api_leads(
    status: str = Query("", max_length=16),
    viewer: Viewer = Depends(require("leads")),
    s: Session = Depends(db),
) -> list[LeadOut]:
    return [LeadOut.model_validate(x) for x in repo.list_leads(s, status or None, viewer.actor)]


@router.post(
    "/api/leads/{lead_id}",
    response_model=LeadOut,
    responses={**NOT_FOUND, 409: {"model": Message}},
    tags=["监管线索"],
    summary="分派或结案",
)
def api_lead_update(
    lead_id: Id,
    body: LeadAction,
    viewer: Viewer = Depends(require("leads")),
    s: Session = Depends(db),
) -> LeadOut:
    return LeadOut.model_validate(_lead_action(s, viewer, lead_id, body))
