# ruff: noqa: B008  (FastAPI dependencies are declared as Depends(...) defaults)
"""特例单议 and 争议处理: file, accept, assign experts, decide, feed back, archive."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from opendip.contract.ids import InvalidIdError, normalise_id
from opendip.store import Application
from opendip.store import repositories as repo
from opendip.web.app import error_response, render
from opendip.web.schemas import (
    ApplicationIn,
    ApplicationOut,
    AttachmentOut,
    CommentIn,
    DecisionOut,
    EventOut,
    Id,
    Message,
    TransitionIn,
)
from opendip.web.security import NotFound, Viewer, db, require
from opendip.web.services import case_scope, hospital_choices, requested_hospital
from opendip.web.uploads import safe_filename
from opendip.workflow import (
    KINDS,
    STATE_LABELS,
    CaseDecision,
    InvalidDecision,
    allowed_actions,
    can_comment,
    parse_score,
)
from opendip.workflow.review_cap import ReviewCapExceeded, check_submission

router = APIRouter()
NOT_FOUND = {404: {"model": Message}}
ERRORS = {404: {"model": Message}, 409: {"model": Message}}
ATTACHMENT_TYPES = (
    ".pdf",
    ".jpg",
    ".jpeg",
    ".png",
    ".doc",
    ".docx",
    ".xls",
    ".xlsx",
    ".txt",
    ".zip",
)


def _app(s: Session, viewer: Viewer, app_id: Id) -> Application:
    app = repo.get_application(s, viewer.actor, app_id)
    if app is None:
        raise NotFound("未找到该申请")
    return app


def _out(app: Application, viewer: Viewer) -> ApplicationOut:
    return ApplicationOut(
        id=app.id,
        kind=app.kind,
        hospital_id=app.hospital_id,
        title=app.title,
        reason=app.reason,
        case_ids=list(app.case_ids),
        subject=app.subject,
        state=app.state,
        state_label=STATE_LABELS[app.state],
        outcome=app.outcome,
        version=app.version,
        expert_id=app.expert_id,
        deadline=app.deadline,
        created_at=app.created_at,
        allowed_actions=[
            a.name for a in allowed_actions(app.state, viewer.actor, app.hospital_id, app.expert_id)
        ],
        events=[
            EventOut(
                action=e.action,
                from_state=e.from_state,
                to_state=e.to_state,
                comment=e.comment,
                actor=e.actor.display_name if e.actor else "",
                created_at=e.created_at,
            )
            for e in app.events
        ],
        decisions=[
            DecisionOut(
                case_id=d.case_id,
                decision=d.decision,
                reviewed_score=d.reviewed_score,
                opinion=d.opinion,
            )
            for d in app.decisions
        ],
        attachments=[
            AttachmentOut(
                id=a.id, filename=a.filename, size_bytes=a.size_bytes, content_type=a.content_type
            )
            for a in app.attachments
        ],
    )


def _check_cases(
    request: Request, s: Session, viewer: Viewer, hospital_id: str | None, case_ids: list[str]
) -> None:
    """Cases must exist and belong to the applying hospital (no probing other hospitals)."""
    region = request.app.state.region
    found = region.case_hospitals(case_ids, repo.accepted_upload_files(s))
    target = case_scope(viewer, hospital_id).hospital_id
    bad = [c for c in case_ids if found.get(c) != target]
    if bad:
        raise InvalidDecision(f"以下结算清单号不存在或不属于申请医院：{'、'.join(bad[:10])}")


def _normal_case_ids(raw: list[str]) -> list[str]:
    """Case ids as the contract spells them (opendip.contract.ids), duplicates dropped."""
    ids: list[str] = []
    for text in raw:
        if not text.strip():
            continue
        try:
            ids.append(normalise_id(text, "case_id"))
        except InvalidIdError as exc:
            raise InvalidDecision(str(exc)) from exc
    return list(dict.fromkeys(ids))


def _check_review_cap(
    request: Request, s: Session, viewer: Viewer, hospital_id: str | None, ids: list[str]
) -> None:
    """特例单议: a hospital nominates at most scoring.special_review_max_share of its
    discharged cases of a year (cases already nominated in its open or decided
    applications count, withdrawn or refused ones do not)."""
    from opendip.web.services import _policy_file as policy_file

    hospital = case_scope(viewer, hospital_id).hospital_id
    if not hospital:
        return
    share = policy_file(request).periods()[-1][2].scoring.special_review_max_share
    earlier = repo.nominated_case_ids(s, hospital)
    new = [c for c in ids if c not in earlier]
    years, discharged = request.app.state.region.discharges(
        hospital, [*earlier, *new], repo.accepted_upload_files(s)
    )
    for year in sorted({years[c] for c in new if c in years}):
        check_submission(
            hospital,
            year,
            discharged.get(year, 0),
            sum(1 for c in earlier if years.get(c) == year),
            sum(1 for c in new if years.get(c) == year),
            share,
        )


def _create(request: Request, s: Session, viewer: Viewer, body: ApplicationIn) -> Application:
    if viewer.role != "hospital":  # a county user files for its county's hospitals only
        requested_hospital(viewer, body.hospital_id)
    ids = _normal_case_ids(body.case_ids)
    if ids:
        _check_cases(request, s, viewer, body.hospital_id, ids)
    if body.kind == "special_review":
        try:
            _check_review_cap(request, s, viewer, body.hospital_id, ids)
        except ReviewCapExceeded as exc:
            raise InvalidDecision(str(exc)) from exc
    app = repo.create_application(
        s,
        viewer.user,
        body.kind,
        body.title,
        body.reason,
        ids,
        request.app.state.settings.deadlines,
        hospital_id=body.hospital_id,
        submit_token=body.submit_token,
        subject=body.subject,
    )
    s.commit()
    return app


@router.get("/applications", include_in_schema=False)
def applications_page(
    request: Request,
    kind: str | None = None,
    archived: int = 0,
    viewer: Viewer = Depends(require("applications")),
    s: Session = Depends(db),
) -> Response:
    kind = kind if kind in KINDS else None
    apps = repo.list_applications(s, viewer.actor, kind=kind, archived=bool(archived))
    return render(
        request,
        "applications.html",
        apps=apps,
        kind=kind,
        archived=bool(archived),
        names=request.app.state.region.hospital_names(),
    )


@router.get("/applications/new", include_in_schema=False)
def application_new(
    request: Request,
    kind: str = "special_review",
    case_id: str = "",
    case_ids: str = "",
    title: str = "",
    viewer: Viewer = Depends(require("applications.create")),
) -> Response:
    # case_ids/title: prefilled by 结算对账 (a dispute on every differing case).
    return render(
        request,
        "application_new.html",
        kind=kind if kind in KINDS else "special_review",
        case_id=case_id[:64],
        submit_token=secrets.token_urlsafe(16),
        error="",
        form={"case_ids": case_ids[:4000], "title": title[:200]},
        hospitals=hospital_choices(request, viewer),
    )


@router.post("/applications", include_in_schema=False)
async def application_submit(
    request: Request,
    viewer: Viewer = Depends(require("applications.create")),
    s: Session = Depends(db),
) -> Response:
    """File an application with its attachments in one transaction: the attachments are
    read and checked first, so a bad one refuses the whole form (nothing is filed)."""
    form = await request.form()
    raw = {k: v for k, v in form.items() if isinstance(v, str)}
    ids = [c for c in raw.get("case_ids", "").replace("，", " ").replace(",", " ").split() if c]
    try:
        attachments = [
            await _read_attachment(request, f)
            for f in form.getlist("attachments")
            if isinstance(f, UploadFile) and f.filename
        ]
        body = ApplicationIn(
            kind=raw.get("kind", "special_review"),  # type: ignore[arg-type]
            title=raw.get("title", "").strip() or "（无标题）",
            reason=raw.get("reason", "").strip(),
            case_ids=ids,
            hospital_id=raw.get("hospital_id") or None,
            submit_token=raw.get("submit_token") or None,
            subject=raw.get("subject") or None,
        )
        app = _create(request, s, viewer, body)
        for name, data in attachments:
            _store_attachment(request, s, viewer, app, name, data)
        s.commit()
    except Exception as exc:
        s.rollback()
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            message = "请填写标题、理由和结算清单号（政策异议可不填病例）"
        elif isinstance(exc, repo.StoreRuleError | InvalidDecision):
            message = str(exc)
        else:
            raise
        return render(
            request,
            "application_new.html",
            status_code=400,
            kind=raw.get("kind", "special_review"),
            case_id="",
            submit_token=raw.get("submit_token") or secrets.token_urlsafe(16),
            error=message,
            form=raw,
            hospitals=hospital_choices(request, viewer),
        )
    return RedirectResponse(f"/applications/{app.id}", status_code=303)


#: Attachment types served with their own content type; everything else is served as
#: application/octet-stream (a download), whatever the uploader claimed.
SERVED_TYPES = {
    ".pdf": "application/pdf",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
}


def attachment_type(name: str) -> str:
    return SERVED_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


async def _read_attachment(request: Request, f: UploadFile) -> tuple[str, bytes]:
    """(safe name, content) of one attachment, or `InvalidDecision` (type, size, empty)."""
    settings = request.app.state.settings
    name = safe_filename(f.filename or "attachment")
    if not name.lower().endswith(ATTACHMENT_TYPES):
        raise InvalidDecision(f"附件 {name} 类型不支持（允许：PDF、图片、Word、Excel、文本、ZIP）")
    data = await f.read(settings.max_attachment_bytes + 1)
    if len(data) > settings.max_attachment_bytes:
        raise InvalidDecision(
            f"附件 {name} 过大，上限 {settings.max_attachment_bytes // 1024 // 1024} MB"
        )
    if not data:
        raise InvalidDecision(f"附件 {name} 为空")
    return name, data


def _store_attachment(
    request: Request, s: Session, viewer: Viewer, app: Application, name: str, data: bytes
):
    folder = request.app.state.settings.platform_dir / "attachments" / str(app.id)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{secrets.token_hex(6)}_{name}"
    path.write_bytes(data)
    path.chmod(0o600)
    return repo.add_attachment(
        s, viewer.user, app, name, str(path), len(data), attachment_type(name)
    )


async def _save_attachment(
    request: Request, s: Session, viewer: Viewer, app: Application, f: UploadFile
):
    name, data = await _read_attachment(request, f)
    return _store_attachment(request, s, viewer, app, name, data)


@router.post(
    "/api/applications",
    response_model=ApplicationOut,
    responses={400: {"model": Message}, 409: {"model": Message}},
    tags=["特例单议与争议"],
    summary="提出申请（特例单议或争议）",
)
def api_application_create(
    request: Request,
    body: ApplicationIn,
    viewer: Viewer = Depends(require("applications.create")),
    s: Session = Depends(db),
) -> ApplicationOut:
    app = _create(request, s, viewer, body)
    return _out(_app(s, viewer, app.id), viewer)


@router.get(
    "/api/applications",
    response_model=list[ApplicationOut],
    tags=["特例单议与争议"],
    summary="申请列表",
)
def api_applications(
    kind: str | None = None,
    viewer: Viewer = Depends(require("applications")),
    s: Session = Depends(db),
) -> list[ApplicationOut]:
    kind = kind if kind in KINDS else None
    return [_out(a, viewer) for a in repo.list_applications(s, viewer.actor, kind=kind)]


@router.get("/applications/{app_id}", include_in_schema=False)
def application_page(
    request: Request,
    app_id: Id,
    viewer: Viewer = Depends(require("applications")),
    s: Session = Depends(db),
) -> Response:
    app = _app(s, viewer, app_id)
    return render(
        request,
        "application_detail.html",
        app=app,
        actions=allowed_actions(app.state, viewer.actor, app.hospital_id, app.expert_id),
        can_comment=can_comment(app.state, viewer.actor, app.hospital_id, app.expert_id),
        experts=repo.experts(s) if viewer.role in ("admin", "agency") else [],
        names=request.app.state.region.hospital_names(),
    )


@router.get(
    "/api/applications/{app_id}",
    response_model=ApplicationOut,
    responses=NOT_FOUND,
    tags=["特例单议与争议"],
    summary="申请详情",
)
def api_application(
    app_id: Id, viewer: Viewer = Depends(require("applications")), s: Session = Depends(db)
) -> ApplicationOut:
    return _out(_app(s, viewer, app_id), viewer)


def _transition(
    request: Request, s: Session, viewer: Viewer, app_id: Id, body: TransitionIn
) -> Application:
    decisions = [
        CaseDecision(d.case_id, d.decision, parse_score(d.reviewed_score, d.case_id), d.opinion)
        for d in body.decisions
    ]
    app = repo.transition(
        s,
        viewer.user,
        app_id,
        body.action,
        body.version,
        request.app.state.settings.deadlines,
        comment=body.comment,
        expert_id=body.expert_id,
        decisions=decisions,
        actor=viewer.actor,
    )
    s.commit()
    return app


@router.post("/applications/{app_id}/transition", include_in_schema=False)
async def application_transition(
    request: Request,
    app_id: Id,
    viewer: Viewer = Depends(require("applications")),
    s: Session = Depends(db),
) -> Response:
    form = await request.form()
    raw = {k: v for k, v in form.items() if isinstance(v, str)}
    _app(s, viewer, app_id)  # 404 before anything else
    try:
        version = int(raw.get("version", "0"))
        expert = int(raw["expert_id"]) if raw.get("expert_id", "").isdigit() else None
    except ValueError:
        return error_response(request, 400, "表单数据有误，请刷新页面后重试")
    decisions: list[dict[str, Any]] = []
    for key, value in raw.items():
        if key.startswith("decision__") and value:
            case_id = key.removeprefix("decision__")
            decisions.append(
                {
                    "case_id": case_id,
                    "decision": value,
                    "reviewed_score": raw.get(f"score__{case_id}") or None,
                    "opinion": raw.get(f"opinion__{case_id}", ""),
                }
            )
    try:
        body = TransitionIn(
            action=raw.get("action", ""),
            version=max(version, 1),
            comment=raw.get("comment", ""),  # type: ignore[arg-type]
            expert_id=expert,
            decisions=decisions,
        )
    except Exception:
        return error_response(
            request, 400, "表单数据有误：评审结论须为通过或不通过，评定分值须为非负数字"
        )
    _transition(request, s, viewer, app_id, body)
    return RedirectResponse(f"/applications/{app_id}", status_code=303)


@router.post(
    "/api/applications/{app_id}/transition",
    response_model=ApplicationOut,
    responses=ERRORS,
    tags=["特例单议与争议"],
    summary="流程操作（受理、指派专家、评审、反馈、结案）",
)
def api_application_transition(
    request: Request,
    app_id: Id,
    body: TransitionIn,
    viewer: Viewer = Depends(require("applications")),
    s: Session = Depends(db),
) -> ApplicationOut:
    app = _transition(request, s, viewer, app_id, body)
    fresh = repo.get_application(s, viewer.actor, app.id)
    if fresh is None:  # e.g. an expert after deciding still sees it; agency always does
        raise NotFound("未找到该申请")
    return _out(fresh, viewer)


@router.post("/applications/{app_id}/comment", include_in_schema=False)
async def application_comment(
    request: Request,
    app_id: Id,
    viewer: Viewer = Depends(require("applications")),
    s: Session = Depends(db),
) -> Response:
    form = await request.form()
    text = form.get("comment")
    app = _app(s, viewer, app_id)
    repo.add_comment(s, viewer.user, app, text if isinstance(text, str) else "", viewer.actor)
    s.commit()
    return RedirectResponse(f"/applications/{app_id}", status_code=303)


@router.post(
    "/api/applications/{app_id}/comments",
    response_model=Message,
    responses=ERRORS,
    tags=["特例单议与争议"],
    summary="添加意见",
)
def api_application_comment(
    app_id: Id,
    body: CommentIn,
    viewer: Viewer = Depends(require("applications")),
    s: Session = Depends(db),
) -> Message:
    app = _app(s, viewer, app_id)
    repo.add_comment(s, viewer.user, app, body.comment, viewer.actor)
    s.commit()
    return Message(detail="已添加意见")


@router.post("/applications/{app_id}/attachments", include_in_schema=False)
async def application_attach(
    request: Request,
    app_id: Id,
    viewer: Viewer = Depends(require("applications.create")),
    s: Session = Depends(db),
) -> Response:
    app = _app(s, viewer, app_id)
    form = await request.form()
    f = form.get("file")
    if not isinstance(f, UploadFile) or not f.filename:
        return error_response(request, 400, "请选择附件文件")
    await _save_attachment(request, s, viewer, app, f)
    s.commit()
    return RedirectResponse(f"/applications/{app_id}", status_code=303)


@router.get(
    "/applications/{app_id}/attachments/{att_id}",
    responses=NOT_FOUND,
    tags=["特例单议与争议"],
    summary="下载附件",
)
def application_attachment(
    app_id: Id,
    att_id: Id,
    viewer: Viewer = Depends(require("applications")),
    s: Session = Depends(db),
) -> Response:
    att = repo.get_attachment(s, viewer.actor, app_id, att_id)
    if att is None or not Path(att.stored_path).exists():
        raise NotFound("未找到该附件")
    return FileResponse(
        att.stored_path,
        media_type=attachment_type(att.filename),  # never the uploader's claim
        filename=att.filename,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )


@router.get(
    "/api/special-reviews",
    tags=["特例单议与争议"],
    summary="已结案的特例单议结论（供分值计算使用）",
)
def api_special_reviews(
    viewer: Viewer = Depends(require("runs")), s: Session = Depends(db)
) -> list[dict[str, Any]]:
    return [
        {"case_id": c, "decision": d, "reviewed_score": str(v) if v is not None else None}
        for c, d, v in repo.final_special_reviews(s)
    ]
