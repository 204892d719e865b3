# ruff: noqa: B008  (FastAPI dependencies are declared as Depends(...) defaults)
"""The hospital side (issue 19): the system-to-system API (`/api/v1`, hospital-scoped API
keys), API key management (admin) and the 在院病例 monitor."""

from __future__ import annotations

import io
from typing import Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from opendip.contract.ids import try_normalise_id
from opendip.store import repositories as repo
from opendip.store.access import CaseScope
from opendip.store.models import ApiKey, utcnow
from opendip.web import hospital_api as api
from opendip.web.app import render
from opendip.web.schemas import Id, Message
from opendip.web.security import Forbidden, NotFound, Viewer, client_ip, db, require
from opendip.web.services import case_scope, hospital_choices, requested_hospital

router = APIRouter()
MAX_BATCH = 500


class ApiError(Exception):
    """A refused API call (401/429): answered as JSON {detail}."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


async def api_error(request: Request, exc: ApiError) -> Response:
    return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=exc.headers)


def _secret(request: Request) -> str:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("X-API-Key", "").strip()


def api_key(request: Request, s: Session = Depends(db)) -> ApiKey:
    """The calling system's key (Authorization: Bearer … or X-API-Key), checked, rate
    limited, its last-use time set; every call is audited (api.call / api.refused)."""
    secret = _secret(request)
    where = f"{request.method} {request.url.path}"
    if not secret:
        raise ApiError(401, "缺少 API 密钥（请求头 Authorization: Bearer <密钥>）")
    key = api.find_key(s, secret)
    if key is None:
        repo.audit(
            s, None, "api.refused", "api_key", secret[:12], {"call": where}, client_ip(request)
        )
        s.commit()
        raise ApiError(401, "API 密钥无效或已吊销")
    limiter: api.RateLimiter = request.app.state.api_rate_limiter
    allowed, wait = limiter.allow(key.id)
    details = {"call": where, "hospital_id": key.hospital_id}
    if not allowed:
        repo.audit(s, None, "api.rate_limited", "api_key", key.id, details, client_ip(request))
        s.commit()
        raise ApiError(429, f"调用过于频繁：请 {wait} 秒后重试", {"Retry-After": str(wait)})
    key.last_used_at = utcnow()
    repo.audit(s, None, "api.call", "api_key", key.id, details, client_ip(request))
    s.commit()
    request.state.api_key = key
    return key


# -- schemas -------------------------------------------------------------------------------------


class ApiPushIn(BaseModel):
    """一批推送的病例（一例也放在 cases 数组中）。"""

    cases: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"病例数组，1–{MAX_BATCH} 例；每例字段见下。同一结算清单号重复推送即更新。",
        json_schema_extra={"items": api.ApiCaseIn.model_json_schema()},
    )


class ApiFieldError(BaseModel):
    field: str = Field(description="出错的字段（输入中的键名）")
    message: str = Field(description="中文说明")


class ApiCaseAnswer(BaseModel):
    index: int = Field(description="该病例在 cases 数组中的位置（从 0 起）")
    case_id: Any = Field(default=None, description="结算清单号（规范化后）")
    accepted: bool = Field(description="是否已接收")
    version: int | None = Field(default=None, description="该病例第几次推送（接收时）")
    errors: list[ApiFieldError] = Field(description="未接收的原因（逐字段）")
    result: dict[str, Any] | None = Field(
        default=None,
        description="质控结果（qc_findings）、病种（group_code、group_name）、分值（base_score、"
        "case_score、settled_score）、偏差类型（deviation）、预估支付（estimated_amount_fen，"
        "分）与入组说明（explanation）；在院病例另有高低倍率阈值（thresholds）、平均住院日"
        "（mean_los_days）与预警（flags）",
    )


class ApiPushOut(BaseModel):
    accepted: int = Field(description="接收的病例数")
    rejected: int = Field(description="未接收的病例数")
    results: list[ApiCaseAnswer]


class ApiCaseOut(BaseModel):
    case_id: str
    hospital_id: str
    status: str = Field(description="in_stay 在院；discharged 已出院")
    version: int
    updated_at: str
    case: dict[str, Any] = Field(description="最近一次推送的病例")
    result: dict[str, Any] = Field(description="平台的计算结果（同推送应答的 result）")


API_ERRORS = {
    401: {"model": Message, "description": "缺少、无效或已吊销的 API 密钥"},
    422: {"model": Message, "description": "请求格式不正确（逐字段中文说明）"},
    429: {"model": Message, "description": "超过该密钥的调用频率限制"},
}


def _case_out(row: Any) -> dict[str, Any]:
    return {
        "case_id": row.case_id,
        "hospital_id": row.hospital_id,
        "status": row.status,
        "version": row.version,
        "updated_at": row.updated_at.isoformat(timespec="seconds"),
        "case": row.payload,
        "result": row.result,
    }


# -- /api/v1 ---------------------------------------------------------------------------------


@router.post(
    "/api/v1/cases",
    response_model=ApiPushOut,
    responses={**API_ERRORS, 200: {"description": "至少一例已接收（逐例应答）"}},
    tags=["系统对接 v1"],
    summary="推送病例（在院或出院，一例或一批）",
    description=(
        "医院信息系统（HIS/病案系统）用机构的 API 密钥推送病例：在院病例（截至目前的诊断与费用）"
        "或出院病例。以结算清单号为准幂等：重复推送即更新（版本号加一），不会重复；"
        "其他机构已提交的结算清单号被拒绝。逐例应答质控结果、病种、分值、偏差类型、预估支付"
        "与说明；有问题的病例逐字段说明原因，其余照常接收。全部未接收时返回 422。"
    ),
)
async def api_push(
    request: Request, body: ApiPushIn, key: ApiKey = Depends(api_key), s: Session = Depends(db)
) -> Response:
    def work() -> list[dict[str, Any]]:
        from sqlalchemy.exc import IntegrityError

        try:
            answers = api.push_cases(request, s, key, body.cases)
            s.flush()
        except IntegrityError:
            # A concurrent push stored one of these case ids first (pushed_cases.case_id is
            # unique): once more, now seeing that row (a version, or another hospital's id).
            s.rollback()
            answers = api.push_cases(request, s, key, body.cases)
        accepted = sum(1 for a in answers if a["accepted"])
        repo.audit(
            s,
            None,
            "api.push",
            "api_key",
            key.id,
            {
                "hospital_id": key.hospital_id,
                "accepted": [a["case_id"] for a in answers if a["accepted"]],
                "rejected": len(answers) - accepted,
            },
            client_ip(request),
        )
        s.commit()
        return answers

    answers = await run_in_threadpool(work)
    accepted = sum(1 for a in answers if a["accepted"])
    out = ApiPushOut(accepted=accepted, rejected=len(answers) - accepted, results=answers)
    return JSONResponse(out.model_dump(mode="json"), status_code=200 if accepted else 422)


@router.get(
    "/api/v1/cases",
    response_model=list[ApiCaseOut],
    responses=API_ERRORS,
    tags=["系统对接 v1"],
    summary="本机构已推送的病例",
)
def api_list(
    status: Literal["in_stay", "discharged"] | None = Query(
        default=None, description="按状态筛选：in_stay 在院，discharged 已出院"
    ),
    key: ApiKey = Depends(api_key),
    s: Session = Depends(db),
) -> list[dict[str, Any]]:
    return [_case_out(r) for r in api.pushed_cases(s, key.hospital_id, status)]


@router.get(
    "/api/v1/cases/{case_id}",
    response_model=ApiCaseOut,
    responses={**API_ERRORS, 404: {"model": Message, "description": "本机构没有该病例"}},
    tags=["系统对接 v1"],
    summary="一例已推送病例及其最新计算结果",
)
def api_get(case_id: str, key: ApiKey = Depends(api_key), s: Session = Depends(db)) -> Any:
    normal = try_normalise_id(case_id, "case_id")
    row = api.pushed_case(s, key.hospital_id, normal) if normal else None
    if row is None:
        raise NotFound("本机构没有该病例")
    return _case_out(row)


# -- API keys (admin) ----------------------------------------------------------------------------


class ApiKeyIn(BaseModel):
    hospital_id: str = Field(min_length=1, max_length=32, description="定点医疗机构代码")
    name: str = Field(min_length=1, max_length=100, description="用途说明，如“HIS 接口”")


class ApiKeyOut(BaseModel):
    id: int
    hospital_id: str
    name: str
    prefix: str = Field(description="密钥前缀（非机密，用于辨认）")
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class ApiKeyIssued(ApiKeyOut):
    secret: str = Field(description="密钥本身：只显示这一次，平台只保存其哈希")


def _key_out(k: ApiKey) -> dict[str, Any]:
    def t(v: Any) -> str | None:
        return v.isoformat(timespec="seconds") if v else None

    return {
        "id": k.id,
        "hospital_id": k.hospital_id,
        "name": k.name,
        "prefix": k.prefix,
        "created_at": t(k.created_at),
        "last_used_at": t(k.last_used_at),
        "revoked_at": t(k.revoked_at),
    }


def _issue(request: Request, s: Session, viewer: Viewer, hospital_id: str, name: str):
    hid = try_normalise_id(hospital_id, "hospital_id")
    if hid is None or request.app.state.region.hospital(hid) is None:
        raise repo.StoreRuleError(f"未找到医疗机构 {hospital_id}")
    key, secret = api.issue_key(s, hid, name.strip() or "系统对接", viewer.user.id)
    repo.audit(
        s,
        viewer.user,
        "api_key.issue",
        "api_key",
        key.id,
        {"hospital_id": hid, "prefix": key.prefix},
        client_ip(request),
    )
    s.commit()
    return key, secret


def _revoke(request: Request, s: Session, viewer: Viewer, key_id: int) -> ApiKey:
    key = s.get(ApiKey, key_id)
    if key is None:
        raise NotFound("未找到该密钥")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        key.revoked_by = viewer.user.id
        repo.audit(
            s,
            viewer.user,
            "api_key.revoke",
            "api_key",
            key.id,
            {"hospital_id": key.hospital_id, "prefix": key.prefix},
            client_ip(request),
        )
        s.commit()
    return key


@router.get(
    "/api/admin/api-keys",
    response_model=list[ApiKeyOut],
    tags=["系统对接 v1"],
    summary="API 密钥列表（管理员）",
)
def api_keys_list(
    viewer: Viewer = Depends(require("api_keys")), s: Session = Depends(db)
) -> list[dict[str, Any]]:
    return [_key_out(k) for k in api.list_keys(s)]


@router.post(
    "/api/admin/api-keys",
    response_model=ApiKeyIssued,
    tags=["系统对接 v1"],
    summary="为医疗机构签发 API 密钥（管理员）",
)
def api_keys_issue(
    request: Request,
    body: ApiKeyIn,
    viewer: Viewer = Depends(require("api_keys")),
    s: Session = Depends(db),
) -> dict[str, Any]:
    key, secret = _issue(request, s, viewer, body.hospital_id, body.name)
    return {**_key_out(key), "secret": secret}


@router.post(
    "/api/admin/api-keys/{key_id}/revoke",
    response_model=ApiKeyOut,
    responses={404: {"model": Message}},
    tags=["系统对接 v1"],
    summary="吊销 API 密钥（管理员）",
)
def api_keys_revoke(
    request: Request,
    key_id: Id,
    viewer: Viewer = Depends(require("api_keys")),
    s: Session = Depends(db),
) -> dict[str, Any]:
    return _key_out(_revoke(request, s, viewer, key_id))


@router.get("/admin/api-keys", include_in_schema=False)
def api_keys_page(
    request: Request, viewer: Viewer = Depends(require("api_keys")), s: Session = Depends(db)
) -> Response:
    return render(
        request,
        "api_keys.html",
        keys=api.list_keys(s),
        hospitals=request.app.state.region.hospitals(),
        issued=None,
        error="",
    )


@router.post("/admin/api-keys", include_in_schema=False)
def api_keys_page_issue(
    request: Request,
    hospital_id: str = Form(""),
    name: str = Form(""),
    viewer: Viewer = Depends(require("api_keys")),
    s: Session = Depends(db),
) -> Response:
    issued, error = None, ""
    try:
        key, secret = _issue(request, s, viewer, hospital_id, name[:100])
        issued = {"key": key, "secret": secret}
    except repo.StoreRuleError as exc:
        error = str(exc)
    return render(
        request,
        "api_keys.html",
        status_code=200 if not error else 422,
        keys=api.list_keys(s),
        hospitals=request.app.state.region.hospitals(),
        issued=issued,
        error=error,
    )


@router.post("/admin/api-keys/{key_id}/revoke", include_in_schema=False)
def api_keys_page_revoke(
    request: Request,
    key_id: Id,
    viewer: Viewer = Depends(require("api_keys")),
    s: Session = Depends(db),
) -> Response:
    _revoke(request, s, viewer, key_id)
    return RedirectResponse("/admin/api-keys", status_code=303)


# -- 在院病例 (in-stay monitor) -------------------------------------------------------------------


SORTS = {
    "cost_ratio": "费用/高倍率阈值",
    "cost": "当前费用",
    "los": "住院天数",
    "amount": "预估支付",
    "updated": "最近推送",
}


def monitor_rows(
    request: Request, s: Session, hospital_id: str, scope: CaseScope
) -> list[dict[str, Any]]:
    """The hospital's in-stay cases in `scope` (a department head's department, a doctor's
    own cases: opendip.store.access) as display rows (latest push of each)."""
    rows = []
    for p in api.pushed_cases(s, hospital_id, "in_stay"):
        doctor_id = (p.payload or {}).get("doctor_id")
        key = {"hospital_id": p.hospital_id, "department": p.department, "doctor_id": doctor_id}
        if not scope.allows(key):
            continue
        r = p.result or {}
        th = r.get("thresholds") or {}
        high = th.get("high_fen")
        cost = r.get("total_cost_fen") or 0
        rows.append(
            {
                "case_id": p.case_id,
                "department": p.department or "（未填科室）",
                "doctor": p.doctor or "",
                "admit_date": (p.payload or {}).get("admit_date", ""),
                "main_diagnosis": (p.payload or {}).get("main_diagnosis") or "",
                "group_code": r.get("group_code"),
                "group_name": r.get("group_name"),
                "cost_fen": cost,
                "low_fen": th.get("low_fen"),
                "high_fen": high,
                "mean_fen": th.get("mean_fen"),
                "cost_ratio": (cost / high) if high else None,
                "los_days": r.get("los_days"),
                "mean_los_days": r.get("mean_los_days"),
                "amount_fen": r.get("estimated_amount_fen"),
                "deviation": r.get("deviation"),
                "flags": list(r.get("flags") or []),
                "version": p.version,
                "updated_at": p.updated_at,
            }
        )
    return rows


def _filtered(rows, department, doctor, flag, sort):
    if department:
        rows = [r for r in rows if r["department"] == department]
    if doctor:
        rows = [r for r in rows if r["doctor"] == doctor]
    if flag:
        rows = [r for r in rows if flag in r["flags"]]
    key = {
        "cost_ratio": lambda r: r["cost_ratio"] if r["cost_ratio"] is not None else -1,
        "cost": lambda r: r["cost_fen"],
        "los": lambda r: r["los_days"] or 0,
        "amount": lambda r: r["amount_fen"] or 0,
        "updated": lambda r: r["updated_at"],
    }.get(sort, lambda r: r["cost_ratio"] if r["cost_ratio"] is not None else -1)
    return sorted(rows, key=key, reverse=True)


def by_department(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        d = out.setdefault(
            r["department"],
            {"department": r["department"], "cases": 0, "cost_fen": 0, "amount_fen": 0,
             "flags": dict.fromkeys(api.FLAG_LABELS, 0)},
        )  # fmt: skip
        d["cases"] += 1
        d["cost_fen"] += r["cost_fen"] or 0
        d["amount_fen"] += r["amount_fen"] or 0
        for f in r["flags"]:
            d["flags"][f] = d["flags"].get(f, 0) + 1
    return sorted(out.values(), key=lambda d: d["department"])


def _monitor_hospital(
    request: Request, viewer: Viewer, hospital_id: str | None
) -> tuple[str | None, CaseScope]:
    if not viewer.can("instay"):
        raise Forbidden()
    hid = requested_hospital(viewer, hospital_id or None)
    return hid, case_scope(viewer, hid)


@router.get("/instay", include_in_schema=False)
def instay_page(
    request: Request,
    hospital_id: str | None = Query(default=None, max_length=64),
    department: str = Query(default="", max_length=100),
    doctor: str = Query(default="", max_length=100),
    flag: str = Query(default="", max_length=32),
    sort: str = Query(default="cost_ratio", max_length=32),
    view: str = Query(default="cases", max_length=16),
    viewer: Viewer = Depends(require("instay")),
    s: Session = Depends(db),
) -> Response:
    hid, scope = _monitor_hospital(request, viewer, hospital_id)
    all_rows = monitor_rows(request, s, hid, scope) if hid else []
    rows = _filtered(all_rows, department, doctor, flag, sort)
    return render(
        request,
        "instay.html",
        hospital_id=hid,
        hospital=request.app.state.region.hospital(hid) if hid else None,
        hospitals=hospital_choices(request, viewer),
        rows=rows,
        total=len(all_rows),
        departments=sorted({r["department"] for r in all_rows}),
        doctors=sorted({r["doctor"] for r in all_rows if r["doctor"]}),
        depts=by_department(all_rows),
        FLAG_LABELS=api.FLAG_LABELS,
        SORTS=SORTS,
        q={"department": department, "doctor": doctor, "flag": flag, "sort": sort},
        view="departments" if view == "departments" else "cases",
    )


@router.get("/instay/export.xlsx", include_in_schema=False)
def instay_export(
    request: Request,
    hospital_id: str | None = Query(default=None, max_length=64),
    viewer: Viewer = Depends(require("instay")),
    s: Session = Depends(db),
) -> Response:
    from openpyxl import Workbook

    hid, scope = _monitor_hospital(request, viewer, hospital_id)
    if not hid:
        raise NotFound("请选择医疗机构")
    rows = _filtered(monitor_rows(request, s, hid, scope), "", "", "", "cost_ratio")
    wb = Workbook()
    ws = wb.active
    ws.title = "在院病例"
    ws.append(
        ["结算清单号", "科室", "主治医师", "入院日期", "主要诊断", "病种编码", "病种名称",
         "当前费用（元）", "低倍率阈值（元）", "高倍率阈值（元）", "住院天数", "病种平均住院日",
         "预估支付（元）", "预警"]
    )  # fmt: skip

    def yuan(f: int | None) -> float | None:
        return None if f is None else f / 100

    for r in rows:
        ws.append(
            [r["case_id"], r["department"], r["doctor"], r["admit_date"], r["main_diagnosis"],
             r["group_code"], r["group_name"], yuan(r["cost_fen"]), yuan(r["low_fen"]),
             yuan(r["high_fen"]), r["los_days"],
             float(r["mean_los_days"]) if r["mean_los_days"] else None, yuan(r["amount_fen"]),
             "、".join(api.FLAG_LABELS.get(f, f) for f in r["flags"])]
        )  # fmt: skip
    ws2 = wb.create_sheet("按科室")
    ws2.append(
        [
            "科室",
            "在院病例数",
            "当前费用合计（元）",
            "预估支付合计（元）",
            *api.FLAG_LABELS.values(),
        ]
    )
    for d in by_department(rows):
        ws2.append(
            [d["department"], d["cases"], d["cost_fen"] / 100, d["amount_fen"] / 100]
            + [d["flags"].get(k, 0) for k in api.FLAG_LABELS]
        )
    buf = io.BytesIO()
    wb.save(buf)
    from urllib.parse import quote

    name = quote(f"在院病例_{hid}.xlsx")
    return Response(
        buf.getvalue(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )


# -- 对账 (reconciliation with the agency's results) ------------------------------------------------


def _reconcile(
    request: Request, s: Session, viewer: Viewer, hid: str, data: bytes, filename: str, fmt: str
) -> dict[str, Any]:
    from opendip.web import reconcile as rc

    region = request.app.state.region
    agency = rc.read_agency_file(data, filename, fmt)
    ours = rc.our_results(region, hid, repo.accepted_upload_files(s))
    if ours is None:
        raise rc.ReconcileError("本平台尚无该机构的结算结果（需要已公示或区域目录中的分值结果）")
    with region._lock:
        diffs = rc.compare(ours, agency.table)
    counts = dict.fromkeys(rc.KIND_LABELS, 0)
    for d in diffs:
        for k in d["kinds"]:
            counts[k] += 1
    repo.audit(
        s,
        viewer.user,
        "reconcile.import",
        "hospital",
        hid,
        {"file": filename, "format": fmt, "rows": agency.rows_read, "differences": counts},
        client_ip(request),
    )
    s.commit()
    return {
        "hospital_id": hid,
        "filename": filename,
        "format": fmt,
        "rows_read": agency.rows_read,
        "rows_compared": agency.table.num_rows,
        "set_aside": agency.set_aside,
        "counts": counts,
        "differences": diffs,
        "source": region.results.source,
    }


@router.get("/reconcile", include_in_schema=False)
def reconcile_page(
    request: Request,
    viewer: Viewer = Depends(require("reconcile")),
) -> Response:
    from opendip.web import reconcile as rc

    return render(
        request,
        "reconcile.html",
        FORMATS=rc.FORMATS,
        KIND_LABELS=rc.KIND_LABELS,
        hospitals=hospital_choices(request, viewer),
        result=None,
        error="",
        form={},
    )


@router.post("/reconcile", include_in_schema=False)
async def reconcile_submit(
    request: Request,
    viewer: Viewer = Depends(require("reconcile")),
    s: Session = Depends(db),
) -> Response:
    from starlette.datastructures import UploadFile

    from opendip.web import reconcile as rc

    form = await request.form()
    fmt = str(form.get("format") or "opendip")
    file = form.get("file")
    result, error = None, ""
    try:
        hid = requested_hospital(viewer, str(form.get("hospital_id") or "") or None)
        if not hid:
            raise rc.ReconcileError("请选择医疗机构")
        if not isinstance(file, UploadFile) or not file.filename:
            raise rc.ReconcileError("请选择经办机构返回的结算明细文件")
        data = await file.read(request.app.state.settings.max_upload_bytes + 1)
        if len(data) > request.app.state.settings.max_upload_bytes:
            raise rc.ReconcileError("文件过大")
        result = await run_in_threadpool(
            _reconcile, request, s, viewer, hid, data, file.filename, fmt
        )
    except rc.ReconcileError as exc:
        error = str(exc)
    return render(
        request,
        "reconcile.html",
        status_code=200 if not error else 422,
        FORMATS=rc.FORMATS,
        KIND_LABELS=rc.KIND_LABELS,
        hospitals=hospital_choices(request, viewer),
        result=result,
        error=error,
        form={"format": fmt, "hospital_id": form.get("hospital_id") or ""},
    )
