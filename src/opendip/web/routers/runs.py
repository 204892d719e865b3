# ruff: noqa: B008  (FastAPI dependencies are declared as Depends(...) defaults)
"""结算管理: start monthly/annual runs, watch progress, approve and publish."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from opendip.store import repositories as repo
from opendip.web.app import error_response, render
from opendip.web.runs import RunRefused, settlement_available
from opendip.web.schemas import Id, Message, RunIn, RunOut
from opendip.web.security import NotFound, Viewer, db, require

router = APIRouter()
NOT_FOUND = {404: {"model": Message}}


def _run(s: Session, viewer: Viewer, run_id: Id):
    run = repo.get_run(s, viewer.actor, run_id)
    if run is None:
        raise NotFound("未找到该结算运行")
    return run


@router.get("/runs", include_in_schema=False)
def runs_page(
    request: Request, viewer: Viewer = Depends(require("runs")), s: Session = Depends(db)
) -> Response:
    region = request.app.state.region
    return render(
        request,
        "runs.html",
        runs=repo.list_runs(s),
        months=region.months(),
        year=region.current_year(),
        annual_ready=settlement_available(),
    )


@router.post("/runs", include_in_schema=False)
def run_start(
    request: Request,
    kind: str = Form(max_length=16),
    period: str = Form(max_length=16),
    review_cap_override: str = Form("", max_length=200),
    viewer: Viewer = Depends(require("runs")),
    s: Session = Depends(db),
) -> Response:
    try:
        run = request.app.state.runs.start(
            s, viewer.user, kind, period, review_cap_override=review_cap_override
        )
    except RunRefused as exc:
        s.rollback()
        return error_response(request, 409, str(exc))
    return RedirectResponse(f"/runs/{run.id}", status_code=303)


@router.post(
    "/api/runs",
    response_model=RunOut,
    responses={409: {"model": Message}},
    tags=["结算管理"],
    summary="发起月度预结算或年终清算",
)
def api_run_start(
    request: Request,
    body: RunIn,
    viewer: Viewer = Depends(require("runs")),
    s: Session = Depends(db),
) -> Response | RunOut:
    try:
        run = request.app.state.runs.start(
            s, viewer.user, body.kind, body.period, review_cap_override=body.review_cap_override
        )
    except RunRefused as exc:
        s.rollback()
        return error_response(request, 409, str(exc))
    s.refresh(run)
    return RunOut.model_validate(run)


@router.get("/api/runs", response_model=list[RunOut], tags=["结算管理"], summary="结算运行列表")
def api_runs(viewer: Viewer = Depends(require("runs")), s: Session = Depends(db)) -> list[RunOut]:
    return [RunOut.model_validate(r) for r in repo.list_runs(s)]


@router.get("/runs/{run_id}", include_in_schema=False)
def run_page(
    request: Request,
    run_id: Id,
    viewer: Viewer = Depends(require("runs")),
    s: Session = Depends(db),
) -> Response:
    run = _run(s, viewer, run_id)
    settlement = request.app.state.runs.settlement_dir(run)
    return render(
        request,
        "run_detail.html",
        run=run,
        names=request.app.state.region.hospital_names(),
        hospitals=settlement_rows(settlement) if settlement else [],
        has_report=settlement is not None,
    )


def settlement_rows(settlement: Path) -> list[dict]:
    """The run's per-hospital settlement table (monthly: withholding and advance; annual:
    clearing payment), hospital and pool order."""
    path = settlement / "hospitals.parquet"
    if not path.is_file():
        return []
    rows = pq.read_table(path).to_pylist()
    return sorted(rows, key=lambda r: (str(r["hospital_id"]), str(r["pool"])))


@router.get("/runs/{run_id}/progress", include_in_schema=False)
def run_progress(
    request: Request,
    run_id: Id,
    viewer: Viewer = Depends(require("runs")),
    s: Session = Depends(db),
) -> Response:
    run = _run(s, viewer, run_id)
    response = render(request, "run_progress.html", run=run)
    if run.status not in ("queued", "running") and request.headers.get("HX-Request"):
        response.headers["HX-Refresh"] = "true"
    return response


@router.get(
    "/api/runs/{run_id}",
    response_model=RunOut,
    responses=NOT_FOUND,
    tags=["结算管理"],
    summary="结算运行状态与进度",
)
def api_run(
    run_id: Id, viewer: Viewer = Depends(require("runs")), s: Session = Depends(db)
) -> RunOut:
    return RunOut.model_validate(_run(s, viewer, run_id))


def _advance(request: Request, s: Session, viewer: Viewer, run_id: Id, action: str):
    run = _run(s, viewer, run_id)
    run = repo.advance_run(s, viewer.user, run, action)
    s.commit()
    if action == "publish":
        request.app.state.runs.show_published()
    return run


@router.post("/runs/{run_id}/{action}", include_in_schema=False)
def run_advance(
    request: Request,
    run_id: Id,
    action: str,
    viewer: Viewer = Depends(require("runs")),
    s: Session = Depends(db),
) -> Response:
    if action not in repo.RUN_STEPS:
        raise NotFound("未知操作")
    _advance(request, s, viewer, run_id, action)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.post(
    "/api/runs/{run_id}/approve",
    response_model=RunOut,
    responses={**NOT_FOUND, 409: {"model": Message}},
    tags=["结算管理"],
    summary="审核结算结果",
)
def api_run_approve(
    request: Request,
    run_id: Id,
    viewer: Viewer = Depends(require("runs")),
    s: Session = Depends(db),
) -> RunOut:
    return RunOut.model_validate(_advance(request, s, viewer, run_id, "approve"))


@router.post(
    "/api/runs/{run_id}/publish",
    response_model=RunOut,
    responses={**NOT_FOUND, 409: {"model": Message}},
    tags=["结算管理"],
    summary="公示结算结果",
)
def api_run_publish(
    request: Request,
    run_id: Id,
    viewer: Viewer = Depends(require("runs")),
    s: Session = Depends(db),
) -> RunOut:
    return RunOut.model_validate(_advance(request, s, viewer, run_id, "publish"))
