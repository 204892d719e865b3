# ruff: noqa: B008  (FastAPI dependencies are declared as Depends(...) defaults)
"""自动化报告 of a settlement run: the monthly/annual report page, its PDF/Excel, and the
结算公示表 (Excel/PDF). Agency roles only (the `runs` area).

Reports are built from the run's settlement directory and kept under runs/<id>/reports;
「重新生成」 rebuilds them (e.g. after more disputes were decided).

A run without settlement results raises `ReportInputError`, which the app answers with 409.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from opendip.reports.source import ReportInputError
from opendip.store import Run
from opendip.store import repositories as repo
from opendip.web.app import render
from opendip.web.run_reports import PUBLICATION, REPORT
from opendip.web.schemas import Id, Message
from opendip.web.security import NotFound, Viewer, db, require

router = APIRouter()
NOT_FOUND = {404: {"model": Message}}
MEDIA = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}


def _settled_run(request: Request, s: Session, viewer: Viewer, run_id: int) -> tuple[Run, Path]:
    run = repo.get_run(s, viewer.actor, run_id)
    if run is None:
        raise NotFound("未找到该结算运行")
    settlement = request.app.state.runs.settlement_dir(run)
    if settlement is None:
        raise ReportInputError("该运行没有结算结果（未完成或为旧版运行），无法生成报告")
    return run, settlement


def _built(
    request: Request, s: Session, viewer: Viewer, run_id: int, which: str
) -> tuple[Run, dict[str, Path]]:
    """The run and its built files; a run without settlement results raises ReportInputError
    (answered 409 by the app's handler)."""
    run, settlement = _settled_run(request, s, viewer, run_id)
    return run, request.app.state.runs.reports.files(run.id, settlement, which)


@router.get("/runs/{run_id}/report", include_in_schema=False)
def report_page(
    request: Request,
    run_id: Id,
    viewer: Viewer = Depends(require("reports")),
    s: Session = Depends(db),
) -> Response:
    run, files = _built(request, s, viewer, run_id, REPORT)
    return render(
        request,
        "report.html",
        run=run,
        body=files["fragment"].read_text(encoding="utf-8"),
    )


@router.post("/runs/{run_id}/report/refresh", include_in_schema=False)
def report_refresh(
    request: Request,
    run_id: Id,
    viewer: Viewer = Depends(require("runs")),
    s: Session = Depends(db),
) -> Response:
    run, settlement = _settled_run(request, s, viewer, run_id)
    request.app.state.runs.reports.clear(run.id, settlement)
    repo.audit(s, viewer.user, "report.refresh", "run", run.id, {"period": run.period})
    s.commit()
    return RedirectResponse(f"/runs/{run.id}/report", status_code=303)


def _download(
    request: Request, s: Session, viewer: Viewer, run_id: int, which: str, fmt: str
) -> Response:
    if fmt not in MEDIA:
        raise NotFound("未找到该文件")
    run, files = _built(request, s, viewer, run_id, which)
    label = "结算公示表" if which == PUBLICATION else "运行分析报告"
    return FileResponse(
        files[fmt], media_type=MEDIA[fmt], filename=f"{label}_{run.period}_第{run.id}号.{fmt}"
    )


@router.get("/runs/{run_id}/report.{fmt}", include_in_schema=False)
def report_file(
    request: Request,
    run_id: Id,
    fmt: str,
    viewer: Viewer = Depends(require("reports")),
    s: Session = Depends(db),
) -> Response:
    return _download(request, s, viewer, run_id, REPORT, fmt)


@router.get("/runs/{run_id}/publication.{fmt}", include_in_schema=False)
def publication_file(
    request: Request,
    run_id: Id,
    fmt: str,
    viewer: Viewer = Depends(require("reports")),
    s: Session = Depends(db),
) -> Response:
    return _download(request, s, viewer, run_id, PUBLICATION, fmt)


@router.get(
    "/api/runs/{run_id}/report",
    responses={**NOT_FOUND, 409: {"model": Message}},
    tags=["自动化报告"],
    summary="结算运行的月度/年度分析报告（各指标的精确值：金额为分，比例为小数）",
)
def api_report(
    request: Request,
    run_id: Id,
    viewer: Viewer = Depends(require("reports")),
    s: Session = Depends(db),
) -> Any:
    _, files = _built(request, s, viewer, run_id, REPORT)
    return json.loads(files["json"].read_text(encoding="utf-8"))
