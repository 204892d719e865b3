"""The FastAPI application: pages (Jinja2 + htmx) and the JSON API (OpenAPI)."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from opendip import __version__
from opendip.contract.labels import LABELS, label
from opendip.contract.tables import GROUP_TYPE_LABELS
from opendip.reports.source import ReportInputError
from opendip.store import Store, sqlite_url
from opendip.store.models import LEAD_STATUS_LABELS, ROLE_LABELS, RUN_KIND_LABELS, RUN_STATUS_LABELS
from opendip.store.repositories import StoreRuleError
from opendip.web.demo_runs import load_demo_runs
from opendip.web.region import RegionData, fmt_decimal, yuan
from opendip.web.runs import RunService
from opendip.web.security import (
    SESSION_COOKIE,
    CsrfFailed,
    Forbidden,
    LoginRequired,
    LoginThrottle,
    NotFound,
    SecurityHeaders,
)
from opendip.web.settings import Settings
from opendip.workflow import (
    DECISION_LABELS,
    KIND_LABELS,
    OUTCOME_LABELS,
    OVERALL,
    STATE_LABELS,
    SUBJECTS,
    WorkflowError,
)

HERE = Path(__file__).resolve().parent
log = logging.getLogger("opendip.web")

DEVIATION_LABELS = LABELS["deviation"]
POOL_LABELS = LABELS["pool"]


def audit_text(value: Any) -> str:
    """An audit entry's detail value in words: labelled values, lists and maps spelled out."""
    if isinstance(value, dict):
        return "；".join(f"{k} {audit_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "、".join(audit_text(v) for v in value if v is not None)
    return label("audit_value", value)


def _templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.filters["yuan"] = yuan
    t.env.filters["dec"] = fmt_decimal
    t.env.filters["thousands"] = lambda v: (
        f"{v:,}" if isinstance(v, int) else ("—" if v is None else v)
    )
    t.env.filters["pct"] = lambda v: "—" if v is None else f"{v:.2%}"
    t.env.filters["dt"] = lambda v: v.strftime("%Y-%m-%d %H:%M") if v else "—"
    t.env.filters["label"] = lambda value, kind: label(kind, value)
    t.env.filters["audit_text"] = audit_text
    t.env.globals.update(
        version=__version__,
        opendip_version=__version__,
        LABELS=LABELS,
        ROLE_LABELS=ROLE_LABELS,
        RUN_KIND_LABELS=RUN_KIND_LABELS,
        RUN_STATUS_LABELS=RUN_STATUS_LABELS,
        LEAD_STATUS_LABELS=LEAD_STATUS_LABELS,
        KIND_LABELS=KIND_LABELS,
        STATE_LABELS=STATE_LABELS,
        OUTCOME_LABELS=OUTCOME_LABELS,
        DECISION_LABELS=DECISION_LABELS,
        DEVIATION_LABELS=DEVIATION_LABELS,
        GROUP_TYPE_LABELS=GROUP_TYPE_LABELS,
        POOL_LABELS=POOL_LABELS,
        SUBJECTS=SUBJECTS,
        OVERALL=OVERALL,
    )
    return t


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    viewer = getattr(request.state, "viewer", None)
    context.setdefault("viewer", viewer)
    context.setdefault("csrf_token", viewer.csrf_token if viewer else "")
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def error_response(request: Request, status: int, message: str) -> Response:
    if is_api(request):
        return JSONResponse({"detail": message}, status_code=status)
    if request.headers.get("HX-Request"):
        return HTMLResponse(
            f'<div class="alert error" role="alert">{_escape(message)}</div>', status_code=status
        )
    return render(request, "error.html", status_code=status, status=status, message=message)


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _load_supervision_leads(store: Store, data_dir: Path) -> None:
    """Leads written by `opendip supervise` / the demo (DATA/supervision/leads.parquet)."""
    path = Path(data_dir) / "supervision" / "leads.parquet"
    if not path.exists():
        return
    import pyarrow.parquet as pq

    from opendip.store.repositories import import_leads

    with store.session() as s:
        import_leads(s, pq.read_table(path).to_pylist())


#: /docs: the vendored Swagger UI (static/vendor/VERSIONS.md), started by static/api-docs.js.
API_DOCS_HTML = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>OpenDIP 平台 API 文档</title>
<link rel="stylesheet" href="/static/vendor/swagger-ui-5.36.0.css"></head>
<body><div id="swagger-ui"></div>
<script src="/static/vendor/swagger-ui-5.36.0-bundle.js"></script>
<script src="/static/api-docs.js"></script></body></html>
"""


def create_app(settings: Settings) -> FastAPI:
    """Build the app on a region directory; migrates the store and recovers stale runs."""
    store = Store(settings.db_url or sqlite_url(settings.data_dir))
    region = RegionData(settings.data_dir)
    runs = RunService(store, settings, region)
    runs.recover()
    load_demo_runs(store, settings.data_dir)
    runs.show_published()
    _load_supervision_leads(store, settings.data_dir)
    from opendip.web.credit import load_demo_ratings

    load_demo_ratings(store, settings.data_dir)

    app = FastAPI(
        title="OpenDIP 平台 API",
        version=__version__,
        description="区域点数法总额预算和按病种分值付费平台：页面上的每个操作都有对应的 JSON 接口。",
        # Swagger UI is served from the vendored bundle below (never a CDN); no ReDoc.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    from opendip.web.uploads import UploadService

    app.state.uploads = UploadService(store, settings, region)
    app.state.uploads.recover()
    app.state.login_throttle = LoginThrottle(
        settings.client_max_failed_logins, settings.client_window
    )
    app.state.store = store
    app.state.region = region
    app.state.runs = runs
    from opendip.web.scenarios import ScenarioService

    app.state.scenarios = ScenarioService(
        store, settings.data_dir, settings.platform_dir, settings.background_runs
    )
    app.state.scenarios.recover()
    app.state.templates = _templates()

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(API_DOCS_HTML)

    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=401)
        target = "/login?next=" + quote(request.url.path)
        if exc.expired:
            target += "&expired=1"
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        response = RedirectResponse(target, status_code=303)
        if exc.expired:
            response.delete_cookie(SESSION_COOKIE)
        return response

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return error_response(request, 403, exc.message)

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> Response:
        return error_response(request, 403, exc.message)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return error_response(request, 404, exc.message)

    @app.exception_handler(WorkflowError)
    async def _workflow(request: Request, exc: WorkflowError) -> Response:
        return error_response(request, 409, str(exc))

    @app.exception_handler(StoreRuleError)
    async def _store_rule(request: Request, exc: StoreRuleError) -> Response:
        from opendip.store.repositories import ConcurrentUpdateError, NotFoundError

        status = (
            404
            if isinstance(exc, NotFoundError)
            else 409
            if isinstance(exc, ConcurrentUpdateError)
            else 400
        )
        return error_response(request, status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(
                str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "form")
            )
            parts.append(f"{loc or '请求'}：{_translate(err)}")
        return error_response(request, 422, "请求参数有误：" + "；".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {404: "页面不存在", 405: "不支持该请求方法", 413: "请求内容过大"}
        detail = exc.detail if isinstance(exc.detail, str) and not exc.detail.isascii() else None
        return error_response(
            request, exc.status_code, detail or messages.get(exc.status_code, "请求无法处理")
        )

    @app.exception_handler(ReportInputError)
    async def _report_input(request: Request, exc: ReportInputError) -> Response:
        return error_response(request, 409, str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return error_response(request, 500, "服务器内部错误，已记录，请联系管理员")

    from opendip.web.routers import admin, applications, auth, data, disclosure, pages
    from opendip.web.routers import runs as runs_router

    app.router.routes[:0] = _routed_first(pages.router.routes)
    for module in (auth, pages, data, runs_router, applications, admin, disclosure):
        app.include_router(module.router)
    from opendip.web.routers import analysis, reports
    from opendip.web.routers import credit as credit_router

    app.include_router(credit_router.router)

    app.include_router(analysis.router)
    app.add_exception_handler(analysis.AnalysisRefused, analysis.refused)
    app.include_router(reports.router)
    from opendip.web.routers import scenarios as scenarios_router

    app.include_router(scenarios_router.router)
    from opendip.web.hospital_api import RateLimiter
    from opendip.web.routers import hospital

    app.state.api_rate_limiter = RateLimiter(settings.api_rate_limit, settings.api_rate_window)
    app.include_router(hospital.router)
    app.add_exception_handler(hospital.ApiError, hospital.api_error)
    return app


#: Routes matched before all others: the per-case pre-grouping API, which hospitals call at
#: hundreds of requests a second, where every route tried before it costs (issue 16 §4).
#: Its path and method are its own, so the order changes no other route's match.
HOT_ROUTES = frozenset({("/api/pregroup", "POST")})


def _routed_first(routes: list[Any]) -> list[Any]:
    """Copies of the hot routes, out of the OpenAPI schema (the originals stay where they
    are and document the route once)."""
    out = []
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None) or ()
        if any((path, m) in HOT_ROUTES for m in methods):
            first = copy.copy(route)
            first.include_in_schema = False
            out.append(first)
    return out


def _translate(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    return {
        "missing": "缺少必填项",
        "int_parsing": "须为整数",
        "string_too_long": "内容过长",
        "string_too_short": "内容过短",
        "greater_than_equal": "数值过小",
        "less_than_equal": "数值过大",
        "literal_error": "取值不在允许范围内",
        "json_invalid": "不是有效的 JSON",
        "model_attributes_type": "须为 JSON 对象",
        "decimal_parsing": "须为数字",
        "date_from_datetime_parsing": "须为日期 YYYY-MM-DD",
        "date_parsing": "须为日期 YYYY-MM-DD",
    }.get(kind, "格式不正确")
