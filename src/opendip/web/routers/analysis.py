# ruff: noqa: B008  (FastAPI dependencies are declared as Depends(...) defaults)
"""院端分析: a hospital's profit and loss under DIP (page and JSON API).

The source is the latest succeeded run (annual or monthly) with a settlement directory.
A hospital user always sees their own hospital: naming another one is answered 404, as
for any object the user may not see. Agency roles choose a hospital.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy import case, select
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from opendip.reports.hospital import (
    DEFAULT_NEAR_BAND,
    HospitalAnalysisError,
    UnknownHospitalError,
    build_hospital_report,
    parse_near_band,
)
from opendip.reports.model import Report
from opendip.store import Run
from opendip.web.app import error_response, render
from opendip.web.runs import RunService
from opendip.web.schemas import Message
from opendip.web.security import NotFound, Viewer, db, require
from opendip.web.services import case_scope, hospital_choices, requested_hospital

router = APIRouter()
NO_RESULTS = "尚无结算结果：请先完成一次年终清算或月度预结算"
NO_PUBLISHED = "尚无经办机构审核或公示的结算结果"
#: How many recent runs are looked at for a settlement directory.
RECENT_RUNS = 50


class AnalysisRefused(ValueError):
    """A request the analysis cannot answer (Chinese message), with its HTTP status; the
    app answers it with `refused` below."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


async def refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AnalysisRefused)
    return error_response(request, exc.status, exc.message)


#: Runs each kind of viewer may analyse: a hospital only what the agency approved or
#: published; agency roles also a finished run still awaiting review.
HOSPITAL_VISIBLE = ("published", "approved")
AGENCY_VISIBLE = ("published", "approved", "succeeded")


def latest_settlement(
    s: Session, runs: RunService, role: str = "agency"
) -> tuple[Run, Path] | None:
    """The run the analysis reads by default: published runs first, then approved ones (and
    for agency roles, finished runs awaiting review), newest first within each, among those
    whose settlement directory exists."""
    statuses = HOSPITAL_VISIBLE if role == "hospital" else AGENCY_VISIBLE
    rank = case(*[(Run.status == st, i) for i, st in enumerate(statuses)], else_=len(statuses))
    recent = s.scalars(
        select(Run)
        .where(Run.status.in_(statuses), Run.kind.in_(("annual", "monthly")))
        .order_by(rank, Run.finished_at.desc(), Run.id.desc())
        .limit(RECENT_RUNS)
    )
    for run in recent:
        path = runs.settlement_dir(run)
        if path is not None:
            return run, path
    return None


def _clean(value: str | None, limit: int = 64) -> str | None:
    return (value or "").strip()[:limit] or None


def _band(value: str | None) -> Decimal:
    if value is None or not value.strip():
        return DEFAULT_NEAR_BAND
    try:
        return parse_near_band(value)
    except HospitalAnalysisError as exc:
        raise AnalysisRefused(str(exc)) from exc


def _hospital(viewer: Viewer, requested: str | None) -> str | None:
    """The hospital to analyse: a hospital user's own (another one is 404)."""
    return requested_hospital(viewer, requested)


_cache: dict[tuple[Any, ...], Report] = {}
_cache_lock = threading.Lock()
_CACHE_SIZE = 32


def _report(
    request: Request,
    run_dir: Path,
    hospital_id: str,
    department: str | None,
    group_code: str | None,
    band: Decimal,
    doctor_id: str | None = None,
) -> Report:
    region = request.app.state.region
    settings = request.app.state.settings
    search = [region.data_dir]
    if settings.policy_path:
        search.append(Path(settings.policy_path).parent)
    manifest = run_dir / "manifest.json"
    key = (
        str(run_dir),
        manifest.stat().st_mtime_ns,
        hospital_id,
        department,
        group_code,
        str(band),
        doctor_id,
    )
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    report = build_hospital_report(
        run_dir,
        hospital_id,
        near_band=band,
        department=department,
        group_code=group_code,
        doctor_id=doctor_id,
        search_dirs=tuple(search),
    )
    with _cache_lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[key] = report
    return report


def _analysis(
    request: Request,
    s: Session,
    viewer: Viewer,
    hospital_id: str | None,
    department: str | None,
    group_code: str | None,
    near_band: str | None,
) -> dict[str, Any]:
    hospital = _hospital(viewer, _clean(hospital_id))
    band = _band(near_band)
    department, group_code = _clean(department), _clean(group_code)
    # A department head sees their department, a doctor their own cases, whatever is asked.
    scope = case_scope(viewer, hospital)
    department = scope.department or department
    doctor = scope.doctor_id
    found = latest_settlement(s, request.app.state.runs, viewer.role)
    out: dict[str, Any] = {
        "hospital_id": hospital,
        "department": department,
        "group_code": group_code,
        "doctor_id": doctor,
        "near_band": band,
        "run": None,
        "report": None,
        "overall": None,
        "message": None,
    }
    if found is None:
        out["message"] = NO_PUBLISHED if viewer.role == "hospital" else NO_RESULTS
        return out
    run, run_dir = found
    out["run"] = {"id": run.id, "kind": run.kind, "period": run.period}
    if hospital is None:
        out["message"] = "请选择医疗机构"
        return out
    try:
        # the overall view of a sub-role is its own scope, never the whole hospital
        overall = _report(request, run_dir, hospital, scope.department, None, band, doctor)
        report = (
            _report(request, run_dir, hospital, department, group_code, band, doctor)
            if department != scope.department or group_code
            else overall
        )
    except UnknownHospitalError as exc:
        raise AnalysisRefused(str(exc), 404) from exc
    except HospitalAnalysisError as exc:
        raise AnalysisRefused(str(exc), 409) from exc
    out["overall"] = overall
    out["report"] = report
    return out


def _options(overall: Report | None) -> tuple[list[str], list[dict[str, Any]]]:
    """Departments and groups of the hospital (for the filters)."""
    if overall is None or overall.provenance.get("empty"):
        return [], []
    departments = sorted(str(r["department"]) for r in overall.table("hospital.departments").rows)
    groups = sorted(overall.table("hospital.groups").rows, key=lambda r: str(r["group_code"]))
    return departments, [{"code": g["group_code"], "name": g["group_name"]} for g in groups]


@router.get("/analysis", include_in_schema=False)
def analysis_page(
    request: Request,
    hospital_id: str | None = None,
    department: str | None = None,
    group_code: str | None = None,
    near_band: str | None = None,
    viewer: Viewer = Depends(require("cases")),
    s: Session = Depends(db),
) -> Response:
    data = _analysis(request, s, viewer, hospital_id, department, group_code, near_band)
    departments, groups = _options(data["overall"])
    template = "analysis_body.html" if request.headers.get("HX-Request") else "analysis.html"
    region = request.app.state.region
    return render(
        request,
        template,
        data=data,
        report=data["report"],
        hospitals=hospital_choices(request, viewer),
        departments=departments,
        groups=groups,
        names=region.hospital_names(),
        charts=_chart_data(data["report"]),
    )


def _chart_data(report: Report | None) -> dict[str, Any]:
    if report is None or report.provenance.get("empty"):
        return {}
    out = {}
    for key in ("hospital.balance_by_department", "hospital.ratio_histogram"):
        chart = report.chart(key)
        out[key] = {
            "title": chart.title,
            "x": [str(x) for x, _ in chart.series[0].points],
            "y": [str(y) for _, y in chart.series[0].points],
            "name": chart.series[0].name,
        }
    return out


DOWNLOADS = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@router.get("/analysis.{fmt}", include_in_schema=False)
def analysis_file(
    request: Request,
    fmt: str,
    hospital_id: str | None = None,
    department: str | None = None,
    group_code: str | None = None,
    near_band: str | None = None,
    viewer: Viewer = Depends(require("cases")),
    s: Session = Depends(db),
) -> Response:
    """The analysis on screen as a PDF or Excel file (a hospital user: their own only)."""
    from opendip.reports.render import write_report

    if fmt not in DOWNLOADS:
        raise NotFound("未找到该文件")
    data = _analysis(request, s, viewer, hospital_id, department, group_code, near_band)
    report: Report | None = data["report"]
    if report is None:
        return error_response(request, 409, data["message"] or NO_RESULTS)
    out = Path(tempfile.mkdtemp(prefix="opendip-analysis-"))
    stem = f"院端分析_{data['hospital_id']}_{report.period}"
    path = write_report(report, out, stem, formats=(fmt,))[fmt]
    return FileResponse(
        path,
        media_type=DOWNLOADS[fmt],
        filename=path.name,
        background=BackgroundTask(shutil.rmtree, out, ignore_errors=True),
    )


@router.get(
    "/api/analysis",
    tags=["院端分析"],
    summary="院端盈亏分析（按科室、医师、病种；临界病例）",
    responses={404: {"model": Message}, 409: {"model": Message}, 422: {"model": Message}},
)
def api_analysis(
    request: Request,
    hospital_id: str | None = None,
    department: str | None = None,
    group_code: str | None = None,
    near_band: str | None = None,
    viewer: Viewer = Depends(require("cases")),
    s: Session = Depends(db),
) -> Any:
    data = _analysis(request, s, viewer, hospital_id, department, group_code, near_band)
    report = data["report"]
    return {
        "hospital_id": data["hospital_id"],
        "department": data["department"],
        "group_code": data["group_code"],
        "near_band": str(data["near_band"]),
        "run": data["run"],
        "message": data["message"],
        "report": json.loads(report.to_json()) if report is not None else None,
    }
