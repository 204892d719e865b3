"""`opendip.web.security` piece by piece, without a running app: the role and CSRF checks of
`require` / `require_cached` (built here, inside each test, so that the checks run as
written now and not as imported), the session cache's expiry and invalidation, the
per-client login throttle at its limit and window edge, and the security headers.

Time is passed in or replaced (`now=`, a patched `time.monotonic`): no test waits.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
from types import SimpleNamespace

import pytest
from starlette.requests import Request

from opendip.store import repositories as repo
from opendip.web import security as sec
from opendip.web.security import (
    CSRF_HEADER,
    SESSION_COOKIE,
    CsrfFailed,
    Forbidden,
    LoginRequired,
    LoginThrottle,
    SecurityHeaders,
    Viewer,
    ViewerCache,
)

CSRF = "c" * 32


def viewer(role: str = "hospital", hospital_id: str | None = "H001", **scope) -> Viewer:
    user = SimpleNamespace(
        id=7,
        role=role,
        hospital_id=hospital_id,
        county=None,
        department=None,
        doctor_id=None,
        **scope,
    )
    return Viewer(user, SimpleNamespace(csrf_token=CSRF))


def request(
    app_state,
    method: str = "GET",
    cookie: str | None = "tok",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if cookie is not None:
        raw.append((b"cookie", f"{SESSION_COOKIE}={cookie}".encode()))
    scope = {
        "type": "http",
        "method": method,
        "path": "/x",
        "headers": raw,
        "query_string": b"",
        "app": SimpleNamespace(state=app_state),
        "client": ("10.0.0.1", 1234),
    }

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def cached_state(v: Viewer, seconds: float = 60.0):
    """An app state whose session cache already holds `v` under the cookie "tok"."""
    cache = ViewerCache(seconds)
    cache.put("tok", repo.auth_generation(), v)
    return SimpleNamespace(viewer_cache=cache, settings=SimpleNamespace())


def run(coro):
    return asyncio.run(coro)


def test_viewer_role_area_and_hospital():
    h, a = viewer(), viewer("agency", "H001")
    assert (h.role, h.hospital_id, h.csrf_token) == ("hospital", "H001", CSRF)
    # only a hospital user is bound to a hospital
    assert a.hospital_id is None
    assert (h.actor.user_id, h.actor.role, h.actor.hospital_id) == (7, "hospital", "H001")
    assert h.can("pregroup") and not h.can("runs") and a.can("runs")
    assert not a.can("users") and viewer("admin", None).can("users")
    assert not viewer("admin", None).can("no such area")


def test_require_cached_checks_cookie_role_and_csrf():
    v = viewer()
    dep = sec.require_cached("pregroup")
    req = request(cached_state(v))
    assert run(dep(req)) is v
    assert req.state.viewer is v
    # no cookie
    with pytest.raises(LoginRequired):
        run(dep(request(cached_state(v), cookie=None)))
    with pytest.raises(LoginRequired):
        run(dep(request(cached_state(v), cookie="")))
    # a role outside the area
    with pytest.raises(Forbidden) as info:
        run(sec.require_cached("runs")(request(cached_state(v))))
    assert info.value.message == "无权访问该功能"
    # state-changing requests need the session's CSRF token, GET/HEAD/OPTIONS do not
    for method in ("HEAD", "OPTIONS"):
        assert run(dep(request(cached_state(v), method=method))) is v
    post = dep(request(cached_state(v), method="POST", headers={CSRF_HEADER: CSRF}))
    assert run(post) is v
    for sent in ({}, {CSRF_HEADER: "d" * 32}):
        with pytest.raises(CsrfFailed) as info:
            run(dep(request(cached_state(v), method="POST", headers=sent)))
        assert info.value.message == "安全校验失败（CSRF 令牌缺失或错误），请刷新页面后重试"
    # the token in a form field counts like the header
    form = {"content-type": "application/x-www-form-urlencoded"}
    ok = request(cached_state(v), "POST", headers=form, body=f"csrf_token={CSRF}".encode())
    assert run(dep(ok)) is v
    bad = request(cached_state(v), "POST", headers=form, body=b"csrf_token=x")
    with pytest.raises(CsrfFailed):
        run(dep(bad))


def test_require_checks_role_and_read_only_after_csrf():
    v = viewer("expert", None)
    get = request(None, "GET")
    assert run(sec.require("applications")(get, v)) is v
    with pytest.raises(Forbidden):
        run(sec.require("pregroup")(get, v))
    # a read-only department (卫健, 财政) may read its areas but never write
    health = viewer("health", None)
    assert run(sec.require("publication")(get, health)) is health
    post = request(None, "POST", headers={CSRF_HEADER: CSRF})
    with pytest.raises(Forbidden) as info:
        run(sec.require("publication")(post, health))
    assert info.value.message == sec.READ_ONLY_REFUSAL
    assert run(sec.require("applications")(post, v)) is v
    # a hospital department user is its own kind: case rows yes, uploads no
    dept = viewer("hospital", "H001")
    dept.user.department = "心内科"
    assert dept.kind == "department"
    assert run(sec.require("cases")(get, dept)) is dept
    with pytest.raises(Forbidden):
        run(sec.require("upload")(get, dept))
    checked = run(sec.csrf_checked(request(None, "POST", headers={CSRF_HEADER: CSRF}), v))
    assert checked is v
    with pytest.raises(CsrfFailed):
        run(sec.csrf_checked(request(None, "DELETE"), v))
    assert run(sec.csrf_checked(request(None, "GET"), v)) is v


def test_session_cache_expires_and_drops_on_any_auth_change(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(sec.time, "monotonic", lambda: clock[0])
    gen = [5]
    monkeypatch.setattr(repo, "auth_generation", lambda: gen[0])
    v = viewer()
    cache = ViewerCache(10.0)
    assert cache.get("tok") is None
    cache.put("tok", 5, v)
    assert cache.get("tok") is v
    assert cache.get("other") is None
    clock[0] = 1010.0  # exactly at the end of the trust window: still trusted
    assert cache.get("tok") is v
    clock[0] = 1010.001  # past it: dropped, and stays dropped
    assert cache.get("tok") is None
    clock[0] = 1000.0
    assert cache.get("tok") is None
    cache.put("tok", 5, v)
    gen[0] = 6  # a logout, password change or deactivation anywhere in the process
    assert cache.get("tok") is None
    gen[0] = 5
    assert cache.get("tok") is None  # the entry was removed, not only hidden
    # an entry put with an older generation is never served
    cache.put("old", 4, v)
    assert cache.get("old") is None


def test_session_cache_off_and_bounded(monkeypatch):
    monkeypatch.setattr(repo, "auth_generation", lambda: 1)
    monkeypatch.setattr(sec.time, "monotonic", lambda: 50.0)  # the clock stands still
    v = viewer()
    off = ViewerCache(0)
    off.put("tok", 1, v)
    assert off.get("tok") is None  # 0 s: nothing is stored, even within the same instant
    short = ViewerCache(0.5)
    short.put("tok", 1, v)
    assert short.get("tok") is v  # any positive trust time caches
    small = ViewerCache(60.0)
    monkeypatch.setattr(ViewerCache, "MAX_ENTRIES", 2)
    small.put("a", 1, v)
    small.put("b", 1, v)
    assert small.get("a") is v and small.get("b") is v
    small.put("c", 1, v)  # full: cleared, then the new entry kept
    assert (small.get("a"), small.get("b"), small.get("c")) == (None, None, v)


def test_login_throttle_at_its_limit_and_window_edge():
    t = LoginThrottle(3, dt.timedelta(seconds=100))
    for now in (0.0, 10.0):
        t.failed("10.0.0.1", now)
    assert t.blocked_for("10.0.0.1", 20.0) == 0  # 2 failures < 3
    t.failed("10.0.0.1", 20.0)
    # the third failure blocks until the first leaves the window: 0 + 100 − 20 → 81 s
    assert t.blocked_for("10.0.0.1", 20.0) == 81
    assert t.blocked_for("10.0.0.1", 99.5) == 1
    assert t.blocked_for("10.0.0.2", 20.0) == 0  # per client
    # at exactly 100 s the first failure has left the window
    assert t.blocked_for("10.0.0.1", 100.0) == 0
    # an unknown address is one client ("")
    for now in (0.0, 1.0, 2.0):
        t.failed(None, now)
    assert t.blocked_for(None, 2.0) == 99
    assert t.blocked_for("", 2.0) == 99


def headers_of(path: str, hsts: bool = False, given=()) -> dict[str, str]:
    sent = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": list(given)})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message):
        sent.append(message)

    run(SecurityHeaders(app, hsts=hsts)({"type": "http", "path": path}, None, send))
    assert sent[1] == {"type": "http.response.body", "body": b"ok"}
    return {k.decode(): v.decode() for k, v in sent[0]["headers"]}


def test_security_headers_on_pages_static_docs_and_https():
    page = headers_of("/cases")
    assert page == {
        "content-security-policy": sec.CSP,
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "cache-control": "no-store",
    }
    assert "cache-control" not in headers_of("/static/app.js")
    # the API documentation runs the vendored Swagger UI under the same policy (no CDN)
    assert headers_of("/docs")["content-security-policy"] == sec.CSP
    assert headers_of("/", hsts=True)["strict-transport-security"] == "max-age=31536000"
    assert "strict-transport-security" not in headers_of("/")
    # a header the route set itself is kept, not doubled
    own = headers_of("/cases", given=[(b"Cache-Control", b"max-age=60")])
    assert own["Cache-Control"] == "max-age=60" and "cache-control" not in own
    # a response start without a headers list (allowed by ASGI) still gets them
    sent = []

    async def bare(scope, receive, send):
        await send({"type": "http.response.start", "status": 204})

    async def keep(message):
        sent.append(message)

    run(SecurityHeaders(bare)({"type": "http", "path": "/x"}, None, keep))
    assert dict(sent[0]["headers"])[b"x-frame-options"] == b"DENY"
    # non-HTTP traffic (lifespan, websockets) passes untouched
    seen = []

    async def inner(scope, receive, send):
        seen.append((scope["type"], receive, send))

    run(SecurityHeaders(inner)({"type": "lifespan"}, "rx", "tx"))
    assert seen == [("lifespan", "rx", "tx")]


def test_refusals_carry_their_chinese_messages():
    assert str(LoginRequired()) == "未登录或会话已过期，请重新登录"
    assert LoginRequired().expired is False and LoginRequired(expired=True).expired is True
    assert Forbidden("只读").message == "只读" and str(Forbidden("只读")) == "只读"
    assert str(Forbidden()) == "无权访问该功能"
    assert sec.NotFound().message == "未找到该对象"
    assert str(sec.NotFound("无此病例")) == "无此病例"


def test_concurrent_lookups_of_one_cookie_ask_the_store_once(monkeypatch):
    v = viewer()
    calls = []

    def looked_up(req):
        calls.append(req.cookies[SESSION_COOKIE])
        return v

    monkeypatch.setattr(sec, "_looked_up_viewer", looked_up)
    cache = ViewerCache(60.0)

    async def both():
        req = request(None)
        return await asyncio.gather(cache.look_up("tok", req), cache.look_up("tok", req))

    assert run(both()) == [v, v]
    assert calls == ["tok"]
    assert cache.get("tok") is v and cache._pending == {}

    def refused(req):
        calls.append("refused")
        raise LoginRequired(expired=True)

    monkeypatch.setattr(sec, "_looked_up_viewer", refused)

    async def both_refused():
        req = request(None)
        return await asyncio.gather(
            cache.look_up("gone", req), cache.look_up("gone", req), return_exceptions=True
        )

    errors = run(both_refused())
    assert [type(e) for e in errors] == [LoginRequired, LoginRequired]
    assert errors[0].expired and calls == ["tok", "refused"]
    assert cache.get("gone") is None and cache._pending == {}


def test_a_cache_miss_asks_the_store_with_the_cookie_and_the_request(monkeypatch):
    v = viewer()
    asked = []

    def looked_up(req):
        asked.append((req.cookies[SESSION_COOKIE], req.method))
        return v

    monkeypatch.setattr(sec, "_looked_up_viewer", looked_up)
    state = SimpleNamespace(viewer_cache=ViewerCache(60.0), settings=SimpleNamespace())
    dep = sec.require_cached("pregroup")
    req = request(state, cookie="fresh")
    assert run(dep(req)) is v and req.state.viewer is v
    assert asked == [("fresh", "GET")]
    assert run(dep(request(state, cookie="fresh"))) is v
    assert asked == [("fresh", "GET")]  # the second request was answered from the cache
    assert state.viewer_cache.get("fresh") is v


def test_login_throttle_memory_is_bounded_at_100000_addresses():
    t = LoginThrottle(3, dt.timedelta(seconds=100))
    # 99,999 addresses whose failures have all left the window (empty queues)
    t._failures = {f"k{i}": collections.deque() for i in range(99_999)}
    t.failed("a", 0.0)  # 100,000 addresses: not above the bound, nothing dropped
    assert len(t._failures) == 100_000
    t.failed("b", 0.0)  # 100,001: the empty ones are dropped, the live ones kept
    assert {k: list(q) for k, q in t._failures.items()} == {"a": [0.0], "b": [0.0]}
    t.failed("a", 1.0)
    t.failed("a", 2.0)
    assert t.blocked_for("a", 2.0) == 99


def test_the_app_gets_one_session_cache_sized_by_its_settings():
    state = SimpleNamespace(settings=SimpleNamespace(session_check_seconds=2.5))
    req = request(state)
    cache = sec._viewer_cache(req)
    assert isinstance(cache, ViewerCache) and cache.seconds == 2.5
    assert sec._viewer_cache(request(state)) is cache
    assert sec.client_ip(req) == "10.0.0.1"
    no_client = request(state)
    no_client.scope["client"] = None
    assert sec.client_ip(no_client) is None
    # settings without the key (defensive): no caching
    bare = SimpleNamespace(settings=SimpleNamespace())
    assert sec._viewer_cache(request(bare)).seconds == 0.0


def test_the_submitted_csrf_token_comes_from_the_header_or_a_form_field_only():
    def sent(method="POST", headers=None, body=b""):
        return run(sec._submitted_csrf(request(None, method, headers=headers, body=body)))

    form = {"content-type": "application/x-www-form-urlencoded"}
    assert sent(headers={CSRF_HEADER: "h"}) == "h"
    # the header wins over a form field
    assert sent(headers={CSRF_HEADER: "h", **form}, body=b"csrf_token=f") == "h"
    assert sent(headers=form, body=b"csrf_token=f") == "f"
    assert sent(headers=form, body=b"other=f") == ""
    # JSON bodies and requests without a body carry no token but the header
    assert sent(headers={"content-type": "application/json"}, body=b'{"csrf_token": "j"}') == ""
    assert sent() == ""
    boundary = "XyZ"
    multipart = {"content-type": f"multipart/form-data; boundary={boundary}"}
    field = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\nm\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    assert sent(headers=multipart, body=field) == "m"
    # a file posted under the token's name is not a token
    upload = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"; filename="t.txt"'
        f"\r\nContent-Type: text/plain\r\n\r\n{CSRF}\r\n--{boundary}--\r\n"
    ).encode()
    assert sent(headers=multipart, body=upload) == ""
    # a malformed multipart body: no token (and no error)
    assert sent(headers={"content-type": "multipart/form-data"}, body=b"junk") == ""
    v = viewer()
    with pytest.raises(CsrfFailed):
        run(sec.csrf_checked(request(None, "POST", headers=multipart, body=upload), v))


def test_a_busy_session_is_rechecked_in_the_background_before_its_entry_ends(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(sec.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(repo, "auth_generation", lambda: 3)
    first, second = viewer(), viewer()
    answers = [second]
    asked = []

    def looked_up(req):
        asked.append(req.cookies[SESSION_COOKIE])
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(sec, "_looked_up_viewer", looked_up)
    cache = ViewerCache(10.0)
    state = SimpleNamespace(viewer_cache=cache, settings=SimpleNamespace())
    cache.put("tok", 3, first)
    dep = sec.require_cached("pregroup")

    async def call_and_settle():
        got = await dep(request(state))
        await asyncio.gather(*cache._refreshing)  # let a started re-check finish
        return got

    clock[0] = 1004.9  # under half the trust time: from the cache, no store check
    assert run(call_and_settle()) is first and asked == []
    clock[0] = 1005.0  # half way: answered from the entry, one check started

    async def burst():  # requests answered before the check's task first runs
        got = [await dep(request(state)) for _ in range(3)]
        assert len(cache._refreshing) == 1  # one check, not one per request
        await asyncio.gather(*cache._refreshing)
        return got

    assert run(burst()) == [first] * 3 and asked == ["tok"]
    # the check's answer replaces the entry, trusted for 10 s from now
    assert cache.get("tok") is second and not cache.due("tok")
    clock[0] = 1015.0
    assert cache.get("tok") is second and cache.due("tok")
    clock[0] = 1015.001  # past the new entry's end: never served, however busy
    assert cache.get("tok") is None
    # a check that finds the session gone (logged out in another process) drops the entry
    clock[0] = 1020.0
    cache.put("tok", 3, first)  # trusted until 1030, re-checked from 1025
    clock[0] = 1025.0
    answers.append(LoginRequired(expired=True))
    assert run(call_and_settle()) is first  # this request was within the entry's time
    assert asked == ["tok", "tok"] and cache.get("tok") is None
    # a store failure during the check leaves the entry to end at its own time
    clock[0] = 1040.0
    cache.put("tok", 3, first)
    clock[0] = 1046.0
    answers.append(RuntimeError("store down"))
    assert run(call_and_settle()) is first
    assert cache.get("tok") is first and cache._pending == {} and not cache._refreshing
    clock[0] = 1050.0
    assert cache.get("tok") is first
    clock[0] = 1050.001
    assert cache.get("tok") is None
