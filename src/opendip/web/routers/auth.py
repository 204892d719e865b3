# ruff: noqa: B008  (FastAPI dependencies are declared as Depends(...) defaults)
"""Login, logout and the current user (pages and API)."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from opendip.store import repositories as repo
from opendip.web.app import render
from opendip.web.schemas import LoginIn, Me, Message
from opendip.web.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Viewer,
    client_ip,
    csrf_checked,
    current_viewer,
    db,
)

router = APIRouter()


def _set_session_cookie(request: Request, response: Response, token: str) -> None:
    settings = request.app.state.settings
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


class LoginThrottled(repo.LoginRefused):
    """Too many failed logins from this client address (answered 429)."""


def _login(request: Request, s: Session, username: str, password: str):
    settings = request.app.state.settings
    throttle = request.app.state.login_throttle
    ip = client_ip(request)
    wait = throttle.blocked_for(ip)
    if wait:
        repo.audit(s, None, "login.throttled", "user", "", {"username": username[:64]}, ip)
        s.commit()
        minutes = max(1, -(-wait // 60))
        raise LoginThrottled(f"登录尝试过于频繁，请 {minutes} 分钟后再试")
    try:
        user = repo.check_login(s, username, password, settings.max_failed_logins, settings.lockout)
    except repo.LoginRefused as exc:
        throttle.failed(ip)
        known = repo.user_by_name(s, username.strip()[:64])
        repo.audit(
            s,
            known,
            "login.failed",
            "user",
            known.id if known else "",
            {"username": username[:64]},
            ip,
        )
        s.commit()
        raise exc
    token, row = repo.create_session(s, user, settings.session_lifetime, ip)
    repo.audit(s, user, "login", "user", user.id, {}, ip)
    s.commit()
    return user, token, row


@router.get("/login", include_in_schema=False)
def login_page(request: Request, next: str = "/", expired: int = 0) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        viewer=None,
        login_csrf=token,
        next=_safe_next(next),
        message="会话已过期，请重新登录" if expired else "",
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        path="/login",
        secure=request.app.state.settings.secure_cookies,
    )
    return response


@router.post("/login", include_in_schema=False)
def login_submit(
    request: Request,
    username: str = Form("", max_length=64),
    password: str = Form("", max_length=256),
    csrf_token: str = Form(""),
    next: str = Form("/"),
    s: Session = Depends(db),
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not csrf_token or not secrets.compare_digest(cookie, csrf_token):
        token = secrets.token_urlsafe(24)
        response = render(
            request,
            "login.html",
            status_code=403,
            viewer=None,
            login_csrf=token,
            next=_safe_next(next),
            message="安全校验失败（CSRF），请重新登录",
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            httponly=True,
            samesite="lax",
            path="/login",
            secure=request.app.state.settings.secure_cookies,
        )
        return response
    try:
        _, token, _ = _login(request, s, username, password)
    except repo.LoginRefused as exc:
        response = render(
            request,
            "login.html",
            status_code=429 if isinstance(exc, LoginThrottled) else 401,
            viewer=None,
            login_csrf=cookie,
            next=_safe_next(next),
            message=str(exc),
            username=username,
        )
        return response
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_session_cookie(request, response, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout", include_in_schema=False)
def logout(
    request: Request, viewer: Viewer = Depends(csrf_checked), s: Session = Depends(db)
) -> Response:
    repo.end_session(s, request.cookies.get(SESSION_COOKIE, ""))
    repo.audit(s, s.merge(viewer.user), "logout", "user", viewer.user.id, {}, client_ip(request))
    s.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post(
    "/api/auth/login",
    response_model=Me,
    responses={401: {"model": Message}},
    tags=["认证"],
    summary="登录（返回会话 Cookie 与 CSRF 令牌）",
)
def api_login(request: Request, body: LoginIn, s: Session = Depends(db)) -> Response:
    try:
        user, token, row = _login(request, s, body.username, body.password)
    except repo.LoginRefused as exc:
        status = 429 if isinstance(exc, LoginThrottled) else 401
        return JSONResponse({"detail": str(exc)}, status_code=status)
    me = Me(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        role_label=user.role_label,
        hospital_id=user.hospital_id,
        scope_label=user.scope_label,
        csrf_token=row.csrf_token,
    )
    response = JSONResponse(me.model_dump())
    _set_session_cookie(request, response, token)
    return response


@router.post("/api/auth/logout", response_model=Message, tags=["认证"], summary="退出登录")
def api_logout(
    request: Request, viewer: Viewer = Depends(csrf_checked), s: Session = Depends(db)
) -> Response:
    repo.end_session(s, request.cookies.get(SESSION_COOKIE, ""))
    repo.audit(s, s.merge(viewer.user), "logout", "user", viewer.user.id, {}, client_ip(request))
    s.commit()
    response = JSONResponse({"detail": "已退出登录"})
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get(
    "/api/auth/me",
    response_model=Me,
    responses={401: {"model": Message}},
    tags=["认证"],
    summary="当前用户",
)
def api_me(viewer: Viewer = Depends(current_viewer)) -> Me:
    u = viewer.user
    return Me(
        id=u.id,
        username=u.username,
        display_name=u.display_name,
        role=u.role,
        role_label=u.role_label,
        hospital_id=u.hospital_id,
        scope_label=u.scope_label,
        csrf_token=viewer.csrf_token,
    )
