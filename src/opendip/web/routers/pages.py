# ruff: noqa: B008  (FastAPI dependencies are declared as Depends(...) defaults)
"""首页, 病例查询, 事前预分组, 病种目录, 结算公示 (pages and their JSON API)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from opendip.store import repositories as repo
from opendip.web.app import render
from opendip.web.region import CaseFilters, RegionData, valid_month
from opendip.web.runs import RunService
from opendip.web.schemas import CaseDetail, CaseList, CaseRow, Message, PregroupIn, PregroupOut
from opendip.web.security import NotFound, Viewer, db, require, require_cached
from opendip.web.services import (
    _directory_rows,
    by_item_note,
    case_scope,
    code_names,
    dashboard_scope,
    explain_case,
    get_case,
    hospital_choices,
    module_ready,
    pregroup,
    pregroup_is_quick,
    scoped_filters,
)

router = APIRouter()
NOT_FOUND = {404: {"model": Message}}


def _region(request: Request) -> RegionData:
    return request.app.state.region


# -- 首页 -------------------------------------------------------------------------------------


@router.get("/", include_in_schema=False)
def home(
    request: Request, viewer: Viewer = Depends(require("home")), s: Session = Depends(db)
) -> Response:
    region = _region(request)
    hospital = None
    stats: dict[str, Any] = {}
    if viewer.role != "expert":
        scope = dashboard_scope(viewer)
        hospital = scope.hospital_id
        stats = region.dashboard(scope, repo.accepted_upload_files(s))
    pending = repo.list_applications(s, viewer.actor, archived=False)
    forecast = []
    if viewer.can("runs"):
        from opendip.web.forecast import home_forecast

        forecast = home_forecast(s, request.app.state.runs, request.app.state.settings.data_dir)
    return render(
        request,
        "home.html",
        stats=stats,
        forecast=forecast,
        hospital=region.hospital(hospital) if hospital else None,
        pending=pending[:10],
        grouping_ready=module_ready("opendip.grouping"),
        scoring_ready=stats.get("scored") is not None,
        names=region.hospital_names(),
    )


@router.get("/api/dashboard", tags=["首页"], summary="区域（或本院）概况")
def api_dashboard(
    request: Request, viewer: Viewer = Depends(require("cases")), s: Session = Depends(db)
) -> dict[str, Any]:
    stats = _region(request).dashboard(case_scope(viewer, None), repo.accepted_upload_files(s))
    return _jsonable(stats)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# -- 病例查询 ---------------------------------------------------------------------------------


def _filters(
    hospital_id: str | None,
    month: str | None,
    group_code: str | None,
    deviation: str | None,
    department: str | None,
    case_id: str | None,
) -> CaseFilters:
    return CaseFilters(
        hospital_id=(hospital_id or "").strip()[:64] or None,
        month=valid_month(month),
        group_code=(group_code or "").strip()[:64] or None,
        deviation=(deviation or "").strip()[:32] or None,
        department=(department or "").strip()[:64] or None,
        case_id=(case_id or "").strip()[:64] or None,
    )


@router.get("/cases", include_in_schema=False)
def cases_page(
    request: Request,
    hospital_id: str | None = None,
    month: str | None = None,
    group_code: str | None = None,
    deviation: str | None = None,
    department: str | None = None,
    case_id: str | None = None,
    page: int = Query(1, ge=1, le=1_000_000),
    viewer: Viewer = Depends(require("cases")),
    s: Session = Depends(db),
) -> Response:
    region = _region(request)
    filters = scoped_filters(
        viewer, _filters(hospital_id, month, group_code, deviation, department, case_id)
    )
    result = region.list_cases(
        filters, page, request.app.state.settings.page_size, repo.accepted_upload_files(s)
    )
    template = "cases_table.html" if request.headers.get("HX-Request") else "cases.html"
    return render(
        request,
        template,
        result=result,
        filters=filters,
        hospitals=hospital_choices(request, viewer),
        months=region.months(),
        names=region.hospital_names(),
        group_rows=_directory_rows(request),
        code_names=code_names(request),
    )


@router.get(
    "/api/cases", response_model=CaseList, tags=["病例查询"], summary="病例列表（筛选、分页）"
)
def api_cases(
    request: Request,
    hospital_id: str | None = Query(None, max_length=64),
    month: str | None = Query(None, max_length=7),
    group_code: str | None = Query(None, max_length=64),
    deviation: str | None = Query(None, max_length=32),
    department: str | None = Query(None, max_length=64),
    case_id: str | None = Query(None, max_length=64),
    page: int = Query(1, ge=1, le=1_000_000),
    page_size: int = Query(50, ge=1, le=500),
    viewer: Viewer = Depends(require("cases")),
    s: Session = Depends(db),
) -> CaseList:
    filters = scoped_filters(
        viewer, _filters(hospital_id, month, group_code, deviation, department, case_id)
    )
    result = _region(request).list_cases(filters, page, page_size, repo.accepted_upload_files(s))
    rows = [
        CaseRow(
            **{k: r.get(k) for k in CaseRow.model_fields if k in r},
            total_cost_fen=r.get("total_cost"),
        )
        for r in result.rows
    ]
    return CaseList(total=result.total, page=result.page, page_size=page_size, rows=rows)


def _detail(request: Request, s: Session, viewer: Viewer, case_id: str) -> dict[str, Any]:
    row = get_case(request, s, viewer, case_id)
    results = row.pop("_results", {})
    grouping = {
        k: results.get(k)
        for k in ("group_code", "group_type", "base_score", "match_step", "reason")
        if k in results
    }
    scoring = {k: v for k, v in results.items() if k not in grouping and k != "case_id"}
    return {
        "case": row,
        "grouping": grouping,
        "scoring": scoring,
        "paid_by_item": "" if scoring else by_item_note(request, row),
        "explanation": explain_case(request, row),
    }


@router.get("/cases/{case_id}", include_in_schema=False)
def case_page(
    request: Request,
    case_id: str,
    viewer: Viewer = Depends(require("case")),
    s: Session = Depends(db),
) -> Response:
    detail = _detail(request, s, viewer, case_id[:64])
    return render(request, "case_detail.html", names=_region(request).hospital_names(), **detail)


@router.get(
    "/api/cases/{case_id}",
    response_model=CaseDetail,
    responses=NOT_FOUND,
    tags=["病例查询"],
    summary="病例详情（入组说明、分值与金额）",
)
def api_case(
    request: Request,
    case_id: str,
    viewer: Viewer = Depends(require("case")),
    s: Session = Depends(db),
) -> dict[str, Any]:
    return _jsonable(_detail(request, s, viewer, case_id[:64]))


# -- 事前预分组 -------------------------------------------------------------------------------


def _hospital_for(request: Request, viewer: Viewer, requested: str | None) -> dict[str, Any] | None:
    region = _region(request)
    hid = case_scope(viewer, requested).hospital_id
    if not hid:
        return None
    if not viewer.actor.in_county(hid):
        raise NotFound(f"未找到医疗机构 {hid}")
    hospital = region.hospital(hid)
    if hospital is None:
        raise NotFound(f"未找到医疗机构 {hid}")
    return hospital


def _split(text: str) -> list[str]:
    for sep in "，,;；|":
        text = text.replace(sep, " ")
    return [t for t in text.split() if t]


@router.get("/pregroup", include_in_schema=False)
def pregroup_page(request: Request, viewer: Viewer = Depends(require("pregroup"))) -> Response:
    return render(
        request,
        "pregroup.html",
        hospitals=hospital_choices(request, viewer),
        ready=module_ready("opendip.grouping"),
        form={},
        result=None,
        error="",
    )


@router.post("/pregroup", include_in_schema=False)
async def pregroup_submit(
    request: Request, viewer: Viewer = Depends(require("pregroup"))
) -> Response:
    form = dict(await request.form())
    raw = {k: v for k, v in form.items() if isinstance(v, str)}
    data: dict[str, Any] = {
        "hospital_id": raw.get("hospital_id") or None,
        "insurance_type": raw.get("insurance_type") or "employee",
        "sex": raw.get("sex") or "1",
        "age": raw.get("age") or 50,
        "los_days": raw.get("los_days") or 7,
        "discharge_date": raw.get("discharge_date") or None,
        "main_diagnosis": raw.get("main_diagnosis", ""),
        "other_diagnoses": _split(raw.get("other_diagnoses", "")),
        "main_procedure": raw.get("main_procedure") or None,
        "other_procedures": _split(raw.get("other_procedures", "")),
        "total_cost_yuan": raw.get("total_cost_yuan", ""),
        "discharge_method": raw.get("discharge_method") or "1",
        "point_value_basis": raw.get("point_value_basis") or "budget",
    }
    error = ""
    result = None
    try:
        body = PregroupIn.model_validate(data)
        result = pregroup(
            request, body.model_dump(), _hospital_for(request, viewer, body.hospital_id)
        )
    except ValidationError as exc:
        error = "输入有误：" + "；".join(_field_error(e) for e in exc.errors()[:5])
    except (InvalidOperation, ValueError) as exc:
        error = f"输入有误：{exc}"
    except NotFound as exc:
        error = exc.message
    template = "pregroup_result.html" if request.headers.get("HX-Request") else "pregroup.html"
    return render(
        request,
        template,
        hospitals=hospital_choices(request, viewer),
        ready=True,
        form=raw,
        result=result,
        error=error,
        status_code=200 if not error else 422,
    )


FIELD_LABELS = {
    "main_diagnosis": "主要诊断",
    "total_cost_yuan": "总费用",
    "age": "年龄",
    "los_days": "住院天数",
    "discharge_date": "出院日期",
    "sex": "性别",
    "insurance_type": "险种",
    "main_procedure": "主要手术操作",
    "other_diagnoses": "其他诊断",
    "other_procedures": "其他手术操作",
    "discharge_method": "离院方式",
    "point_value_basis": "点值口径",
    "hospital_id": "医疗机构",
}


def _field_error(err: dict[str, Any]) -> str:
    field = str(err.get("loc", ("",))[-1])
    return f"{FIELD_LABELS.get(field, field)}格式不正确或未填写"


@router.post(
    "/api/pregroup",
    response_model=PregroupOut,
    responses=NOT_FOUND,
    tags=["事前预分组"],
    summary="单病例预分组与分值、金额估算",
)
async def api_pregroup(
    request: Request, body: PregroupIn, viewer: Viewer = Depends(require_cached("pregroup"))
) -> dict[str, Any]:
    # With the policy, directory and index cached, a case takes about a millisecond:
    # answered on the event loop; a cold cache (first call, new directory) or a look-up of
    # the published runs in the store (point value basis "published") uses a thread.
    hospital = _hospital_for(request, viewer, body.hospital_id)
    if body.point_value_basis == "budget" and pregroup_is_quick(request):
        return pregroup(request, body.model_dump(), hospital)
    return await run_in_threadpool(pregroup, request, body.model_dump(), hospital)


# -- 病种目录 ---------------------------------------------------------------------------------


@router.get("/directory", include_in_schema=False)
def directory_page(
    request: Request,
    q: str = Query("", max_length=64),
    group_type: str = Query("", max_length=32),
    version: str | None = Query(None, max_length=128),
    compare: str | None = Query(None, max_length=128),
    page: int = Query(1, ge=1, le=100_000),
    viewer: Viewer = Depends(require("directory")),
) -> Response:
    region = _region(request)
    rows, total = region.directory_page(version, q, group_type, page)
    diff = None
    if compare and version and compare != version:
        diff = _diff(region, compare, version)
    table = region.directory_table(version)
    return render(
        request,
        "directory.html",
        kinds=_kinds(table),
        special=_special_lists(request),
        rows=rows,
        total=total,
        q=q,
        group_type=group_type,
        page=page,
        pages=max(1, -(-total // 50)),
        versions=[p.stem for p in region.directory_versions()],
        version=version,
        compare=compare,
        diff=diff,
    )


def _kinds(table: Any) -> list[tuple[str, str, int]]:
    """(kind, Chinese label, groups) as the regions report them (新增病种 apart)."""
    from opendip.contract.tables import DIRECTORY_KIND_LABELS
    from opendip.directory.io import directory_kinds

    if table is None:
        return []
    return [(k, DIRECTORY_KIND_LABELS[k], n) for k, n in directory_kinds(table).items()]


def _special_lists(request: Request) -> dict[str, Any]:
    """The policy's 中医/民族医优势病种 and 新技术新项目 lists (latest policy version)."""
    from opendip.web.services import _policy_file

    try:
        pol = _policy_file(request).periods()[-1][2]
    except Exception:  # no policy file: the page shows the directory alone
        return {"tcm": None, "tcm_mode": "", "new_tech": []}
    t = pol.scoring.tcm_advantage
    mode = {
        "same_as_western": "中西医同病同价：按西医手术病种分值支付",
        "added_score": f"基准分值加 {t.added_score} 分",
        "coefficient": f"基准分值乘优势病种系数 {t.coefficient}",
    }[t.mode]
    return {"tcm": t.groups, "tcm_mode": mode, "new_tech": pol.scoring.new_technologies}


def _diff(region: RegionData, old: str, new: str) -> dict[str, Any] | None:
    a, b = region.directory_table(old), region.directory_table(new)
    if a is None or b is None:
        raise NotFound("未找到要比较的目录版本")
    old_rows = {
        r["group_code"]: r for r in a.select(["group_code", "group_name", "score"]).to_pylist()
    }
    new_rows = {
        r["group_code"]: r for r in b.select(["group_code", "group_name", "score"]).to_pylist()
    }
    added = sorted(set(new_rows) - set(old_rows))
    removed = sorted(set(old_rows) - set(new_rows))
    changed = [
        {
            "group_code": c,
            "group_name": new_rows[c]["group_name"],
            "old": old_rows[c]["score"],
            "new": new_rows[c]["score"],
        }
        for c in sorted(set(old_rows) & set(new_rows))
        if old_rows[c]["score"] != new_rows[c]["score"]
    ]
    return {
        "added": [new_rows[c] for c in added][:500],
        "removed": [old_rows[c] for c in removed][:500],
        "changed": changed[:500],
        "counts": {"added": len(added), "removed": len(removed), "changed": len(changed)},
    }


@router.get("/api/directory", tags=["病种目录"], summary="病种目录检索")
def api_directory(
    request: Request,
    q: str = Query("", max_length=64),
    group_type: str = Query("", max_length=32),
    version: str | None = Query(None, max_length=128),
    page: int = Query(1, ge=1, le=100_000),
    viewer: Viewer = Depends(require("directory")),
) -> dict[str, Any]:
    rows, total = _region(request).directory_page(version, q, group_type, page)
    return _jsonable({"total": total, "page": page, "rows": rows})


@router.get(
    "/api/directory/diff", responses=NOT_FOUND, tags=["病种目录"], summary="两个目录版本的差异"
)
def api_directory_diff(
    request: Request,
    old: str = Query(max_length=128),
    new: str = Query(max_length=128),
    viewer: Viewer = Depends(require("directory")),
) -> dict[str, Any]:
    return _jsonable(_diff(_region(request), old, new))


# -- 结算公示 ---------------------------------------------------------------------------------


#: The columns of the published table (结算公示表), as agencies post it publicly.
PUBLIC_COLUMNS = {
    "monthly": (
        "cases",
        "total_score",
        "point_value",
        "dip_amount_fen",
        "fund_payable_fen",
        "credit_grade",
        "withheld_fen",
        "advance_fen",
        "prepayment_recovery_fen",
    ),
    "annual": (
        "credit_grade",
        "cases",
        "total_score",
        "point_value",
        "dip_amount_fen",
        "fund_payable_fen",
        "ffs_fund_fen",
        "dip_ffs_ratio",
        "ffs_band_label",
        "result",
        "returned_fen",
        "clearing_total_fen",
        "prepaid_fen",
        "prepayment_outstanding_fen",
        "clearing_payment_fen",
    ),
}


def _publication(request: Request, s: Session, viewer: Viewer) -> list[dict[str, Any]]:
    """Published runs with the region's published table (per hospital and pool, from the
    settlement's hospital table): every viewer sees the whole table, as posted publicly; a
    hospital's own rows are marked."""
    own = viewer.hospital_id
    names = _region(request).hospital_names()
    runs: RunService = request.app.state.runs
    out = []
    for run in repo.published_runs(s):
        settlement = runs.settlement_dir(run)
        path = settlement / "hospitals.parquet" if settlement is not None else None
        rows: list[dict[str, Any]] = []
        if path is not None and path.is_file():
            cols = ["hospital_id", "pool", *PUBLIC_COLUMNS.get(run.kind, ())]
            t = pq.read_table(path)
            rows = t.select([c for c in cols if c in t.column_names]).to_pylist()
        for r in rows:
            r["name"] = names.get(r["hospital_id"], "")
            r["own"] = r["hospital_id"] == own
        out.append({"run": run, "rows": rows, "own": own, "basis": _clearing_basis(runs, run)})
    return out


def _clearing_basis(runs: RunService, run: Any) -> str:
    """An annual run's FFS comparison basis in Chinese (empty for other runs)."""
    from opendip.policy.sections.settlement import FFS_BASIS_LABELS

    settlement = runs.settlement_dir(run) if run.kind == "annual" else None
    recon = settlement / "reconciliation.parquet" if settlement is not None else None
    if recon is None or not recon.is_file():
        return ""
    pools = pq.read_table(recon)
    if "ffs_basis" in pools.column_names and pools.num_rows:
        return FFS_BASIS_LABELS.get(pools.column("ffs_basis")[0].as_py(), "")
    return ""


@router.get("/publication", include_in_schema=False)
def publication_page(
    request: Request, viewer: Viewer = Depends(require("publication")), s: Session = Depends(db)
) -> Response:
    return render(request, "publication.html", published=_publication(request, s, viewer))


@router.get("/api/publication", tags=["结算公示"], summary="已公示的结算结果（按医疗机构）")
def api_publication(
    request: Request, viewer: Viewer = Depends(require("publication")), s: Session = Depends(db)
) -> list[dict[str, Any]]:
    return [
        _jsonable(
            {
                "run_id": p["run"].id,
                "kind": p["run"].kind,
                "period": p["run"].period,
                "hospitals": p["rows"],
            }
        )
        for p in _publication(request, s, viewer)
    ]
