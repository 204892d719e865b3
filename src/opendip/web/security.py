# ruff: noqa: B008  (FastAPI dependencies are declared as Depends(...) defaults)
"""Authentication, sessions, CSRF and role checks: access control lives here, in one
place, as FastAPI dependencies."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from opendip.store import LoginSession, User, access
from opendip.store import repositories as repo
from opendip.workflow import Actor

log = logging.getLogger("opendip.web")

SESSION_COOKIE = "opendip_session"
LOGIN_CSRF_COOKIE = "opendip_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: Kinds of user (a role with its scope, `opendip.store.access.kind`).
ALL = frozenset(access.KINDS)
REGION = frozenset({"admin", "agency"})
#: Region roles and county-level agency users.
AGENCY = REGION | {"county"}
#: Read-only departments (卫健, 财政): published results and reports only.
READONLY = frozenset({"health", "finance"})
#: Hospital users with the whole hospital in view (医保办) and its sub-roles.
HOSPITAL = frozenset({"hospital"})
SUB_ROLES = frozenset({"department", "doctor"})
#: Who sees case rows (within their scope).
CASES = AGENCY | HOSPITAL | SUB_ROLES

#: Which kinds of user may use which area of the platform.
PERMISSIONS: dict[str, frozenset[str]] = {
    "home": ALL,
    "upload": REGION | HOSPITAL,
    # upload records: also county users (their county's hospitals' uploads, read only)
    "uploads.view": AGENCY | HOSPITAL,
    "cases": CASES,
    # one case's page: case roles within their scope, experts their assigned cases
    "case": CASES | {"expert"},
    "pregroup": CASES,
    "directory": ALL,
    "runs": REGION,
    # settlement reports of a run: the read-only departments see published runs' only
    "reports": REGION | READONLY,
    "publication": AGENCY | HOSPITAL | READONLY,
    "applications": AGENCY | HOSPITAL | {"expert"},
    "applications.create": AGENCY | HOSPITAL,
    "leads": AGENCY,
    "scenarios": REGION,
    "proposals": REGION | HOSPITAL,
    "users": frozenset({"admin"}),
    "api_keys": frozenset({"admin"}),
    "instay": CASES,
    "reconcile": AGENCY | HOSPITAL,
    "audit": frozenset({"admin"}),
    # 信用评价: region and county agency users (their county's hospitals), a hospital's
    # office its own grade; the region's agency rates, repairs and records complaints
    "credit": AGENCY | HOSPITAL,
    "credit.manage": REGION,
}
READ_ONLY_REFUSAL = "只读账户（卫健、财政部门）不能修改任何数据"


class LoginRequired(Exception):
    """No valid session (expired, logged out or never logged in)."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("未登录或会话已过期，请重新登录")
        self.expired = expired


class Forbidden(Exception):
    """The role may not use this area."""

    def __init__(self, message: str = "无权访问该功能") -> None:
        super().__init__(message)
        self.message = message


class CsrfFailed(Exception):
    def __init__(self) -> None:
        super().__init__("安全校验失败（CSRF 令牌缺失或错误），请刷新页面后重试")
        self.message = str(self)


class NotFound(Exception):
    """Missing or not visible to this user: always 404, so ids cannot be probed."""

    def __init__(self, message: str = "未找到该对象") -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Viewer:
    user: User
    session: LoginSession
    csrf_token: str = ""
    #: A county-level user's hospitals, from the region's hospital registry at login check.
    county_hospitals: frozenset[str] | None = None

    @property
    def actor(self) -> Actor:
        u = self.user
        return Actor(
            u.id,
            u.role,
            u.hospital_id,
            county=u.county if u.role == "agency" else None,
            county_hospitals=self.county_hospitals,
            department=u.department if u.role == "hospital" else None,
            doctor_id=u.doctor_id if u.role == "hospital" else None,
        )

    @property
    def kind(self) -> str:
        """The role with its scope (county, department, doctor): see opendip.store.access."""
        return access.kind(self.actor)

    @property
    def readonly(self) -> bool:
        return self.user.role in access.READONLY_ROLES

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def hospital_id(self) -> str | None:
        return self.user.hospital_id if self.user.role == "hospital" else None

    @property
    def scope_label(self) -> str:
        return self.user.scope_label

    def __post_init__(self) -> None:
        self.csrf_token = self.session.csrf_token

    def can(self, area: str) -> bool:
        return self.kind in PERMISSIONS.get(area, frozenset())


def db(request: Request) -> Iterator[Session]:
    """One store session per request; handlers commit what they change."""
    s = request.app.state.store.sessions()
    try:
        yield s
    finally:
        # close() (not rollback()) keeps loaded objects readable for error pages
        s.close()


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def current_viewer(request: Request, s: Session = Depends(db)) -> Viewer:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired()
    settings = request.app.state.settings
    row = repo.find_session(s, token, settings.session_idle)
    if row is None:
        s.commit()  # expired sessions are deleted
        raise LoginRequired(expired=True)
    s.commit()
    county = row.user.county if row.user.role == "agency" else None
    hospitals = None
    if county is not None:
        hospitals = request.app.state.region.county_hospitals(county)
    viewer = Viewer(row.user, row, county_hospitals=hospitals)
    request.state.viewer = viewer
    return viewer


async def _submitted_csrf(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        try:
            form = await request.form()
        except Exception:  # malformed multipart: no token
            return ""
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def csrf_checked(request: Request, viewer: Viewer = Depends(current_viewer)) -> Viewer:
    """The viewer, after checking the CSRF token on state-changing requests."""
    if request.method not in SAFE_METHODS:
        sent = await _submitted_csrf(request)
        if not sent or not secrets.compare_digest(sent, viewer.csrf_token):
            raise CsrfFailed()
    return viewer


def require(area: str):
    """Dependency: a logged-in viewer whose role may use `area` (CSRF-checked)."""

    async def _dep(request: Request, viewer: Viewer = Depends(csrf_checked)) -> Viewer:
        refuse_readonly_write(request, viewer)
        if not viewer.can(area):
            raise Forbidden()
        return viewer

    return _dep


class ViewerCache:
    """Checked sessions for the read-only per-case API (`require_cached`), so that a burst
    of pre-grouping requests does not ask the store for the same session every time.

    An entry is trusted for `Settings.session_check_seconds` and only while no user or
    login session changed in this process (`repo.auth_generation`): logout, a password
    change or a deactivated user take effect at once here, and in other worker processes
    within that time. Viewers handed out are shared: the handlers using them only read.

    Once an entry has been trusted for half its time, the next request using it starts one
    check of the store in the background and is answered from the entry (which stays
    trusted only until its own end, as before): a busy session is re-checked before its
    entry ends, so its requests do not all wait for the store every few seconds (issue 16
    §4). A check that finds the session gone drops the entry.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        #: token → (trusted until, re-check from, auth generation, viewer)
        self._entries: dict[str, tuple[float, float, int, Viewer]] = {}
        self._pending: dict[str, asyncio.Future[Viewer]] = {}
        self._refreshing: set[asyncio.Task[None]] = set()
        self._checking: set[str] = set()

    def get(self, token: str) -> Viewer | None:
        found = self._entries.get(token)
        if found is None:
            return None
        until, _, generation, viewer = found
        if time.monotonic() > until or generation != repo.auth_generation():
            self._entries.pop(token, None)
            return None
        return viewer

    def due(self, token: str) -> bool:
        """True when the entry is past half its trust time (time to re-check it)."""
        found = self._entries.get(token)
        return found is not None and time.monotonic() >= found[1]

    async def look_up(self, token: str, request: Request) -> Viewer:
        """Ask the store (in a worker thread); concurrent requests with the same cookie
        wait for that one lookup instead of each asking."""
        pending = self._pending.get(token)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Viewer] = asyncio.get_running_loop().create_future()
        self._pending[token] = future
        try:
            generation = repo.auth_generation()
            viewer = await run_in_threadpool(_looked_up_viewer, request)
            self.put(token, generation, viewer)
            future.set_result(viewer)
            return viewer
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            self._pending.pop(token, None)

    def refresh(self, token: str, request: Request) -> None:
        """Re-check `token` with the store in the background (once at a time per token)."""
        if token in self._pending or token in self._checking:
            return
        self._checking.add(token)  # at once: the task may start after further requests

        async def check() -> None:
            try:
                await self.look_up(token, request)
            except LoginRequired:
                self._entries.pop(token, None)
            except Exception:  # the store failed: the entry simply ends at its time
                log.warning("background session check failed", exc_info=True)
            finally:
                self._checking.discard(token)

        task = asyncio.get_running_loop().create_task(check())
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    def put(self, token: str, generation: int, viewer: Viewer) -> None:
        if self.seconds <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[token] = (now + self.seconds, now + self.seconds / 2, generation, viewer)


def _viewer_cache(request: Request) -> ViewerCache:
    state = request.app.state
    cache = getattr(state, "viewer_cache", None)
    if cache is None:
        cache = ViewerCache(getattr(state.settings, "session_check_seconds", 0.0))
        state.viewer_cache = cache
    return cache


def _looked_up_viewer(request: Request) -> Viewer:
    s = request.app.state.store.sessions()
    try:
        return current_viewer(request, s)
    finally:
        s.close()


def require_cached(area: str):
    """`require(area)` for read-only handlers, answered from a `ViewerCache` when it can:
    no store session and no thread-pool hop on a hit (issue 16 §4)."""

    async def _dep(request: Request) -> Viewer:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise LoginRequired()
        cache = _viewer_cache(request)
        viewer = cache.get(token)
        if viewer is None:
            viewer = await cache.look_up(token, request)
        elif cache.due(token):
            cache.refresh(token, request)
        request.state.viewer = viewer
        if request.method not in SAFE_METHODS:
            sent = await _submitted_csrf(request)
            if not sent or not secrets.compare_digest(sent, viewer.csrf_token):
                raise CsrfFailed()
        refuse_readonly_write(request, viewer)
        if not viewer.can(area):
            raise Forbidden()
        return viewer

    return _dep


def refuse_readonly_write(request: Request, viewer: Viewer) -> None:
    """Read-only departments never change anything: every state-changing request is 403."""
    if viewer.readonly and request.method not in SAFE_METHODS:
        raise Forbidden(READ_ONLY_REFUSAL)


class LoginThrottle:
    """Per-client login throttling: at most `limit` failed logins per client address within
    `window` (sliding), in memory, thread-safe. Behind a TLS proxy run `opendip serve
    --proxy-headers` so that the address is the real client's (docs/platform.md)."""

    def __init__(self, limit: int, window: dt.timedelta) -> None:
        self.limit = limit
        self.window = window.total_seconds()
        self._lock = threading.Lock()
        self._failures: dict[str, collections.deque[float]] = {}

    def _recent(self, key: str, now: float) -> collections.deque[float]:
        q = self._failures.setdefault(key, collections.deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def blocked_for(self, key: str | None, now: float | None = None) -> int:
        """Seconds this client must wait (0: may try)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            q = self._recent(key or "", now)
            if len(q) < self.limit:
                return 0
            return max(1, int(q[0] + self.window - now) + 1)

    def failed(self, key: str | None, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(key or "", now).append(now)
            if len(self._failures) > 100_000:  # bound memory under address spraying
                self._failures = {k: v for k, v in self._failures.items() if v}


#: Content-Security-Policy of every page: scripts only from the platform's own /static
#: (no inline script, no eval), no framing, forms and requests to the platform only. Inline
#: styles stay allowed (htmx indicators, chart sizes), they cannot run code.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """ASGI middleware adding the security headers to every response: CSP (above),
    X-Frame-Options DENY, nosniff, Referrer-Policy same-origin, and ``Cache-Control:
    no-store`` on everything except /static (pages and API answers hold patient data and
    must not stay in browser or proxy caches); HSTS when `hsts` (served over HTTPS)."""

    def __init__(self, app, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])]
                have = {k.lower() for k, _ in headers}
                add = {
                    b"content-security-policy": CSP,
                    b"x-frame-options": "DENY",
                    b"x-content-type-options": "nosniff",
                    b"referrer-policy": "same-origin",
                }
                if not path.startswith("/static/"):
                    add[b"cache-control"] = "no-store"
                if self.hsts:
                    add[b"strict-transport-security"] = "max-age=31536000"
                for k, v in add.items():
                    if k not in have:
                        headers.append((k, v.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
