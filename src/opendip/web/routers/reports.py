# ruff: noqa: B008  (FastAPI dependencies are declared as Depends(...) defaults)
"""自动化报告 of a settlement run: the monthly/annual report page, its PDF/Excel, and the
结算公示表 (Excel/PDF). Agency roles only (the `runs` area).

Reports are built from the run's settlement directory and kept under runs/<id>/reports;
「重新生成」 rebuilds them (e.g. after more disputes were decided).

A run without settlement results raises `ReportInputError`, which the app answers with 409.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from opendip.reports.region import Extras, build_publication, build_report
from opendip.reports.source import ReportInputError
from opendip.store import Run
from opendip.store import repositories as repo
from opendip.web.app import render
from opendip.web.schemas import Id, Message
from opendip.web.security import NotFound, Viewer, db, require
from opendip.workflow.machine import STATE_LABELS

router = APIRouter()
NOT_FOUND = {404: {"model": Message}}
MEDIA = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
REPORT, PUBLICATION = "report", "publication"
_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(run_id: int) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(run_id, threading.Lock())


def _settled_run(request: Request, s: Session, viewer: Viewer, run_id: int) -> tuple[Run, Path]:
    run = repo.get_run(s, viewer.actor, run_id)
    if run is None:
        raise NotFound("未找到该结算运行")
    settlement = request.app.state.runs.settlement_dir(run)
    if settlement is None:
        raise ReportInputError("该运行没有结算结果（未完成或为旧版运行），无法生成报告")
    return run, settlement


def _extras(request: Request, s: Session, viewer: Viewer) -> Extras:
    data_dir: Path = request.app.state.region.data_dir
    apps = [
        {"kind": a.kind, "state": STATE_LABELS.get(a.state, a.state)}
        for a in repo.list_applications(s, viewer.actor)
    ]
    qc = data_dir / "qc" / "case_status.parquet"
    supervision = data_dir / "supervision"
    return Extras(
        qc_case_status=qc if qc.is_file() else None,
        supervision_dir=supervision if (supervision / "leads.parquet").is_file() else None,
        applications=apps,
    )


def _search_dirs(request: Request) -> tuple[Path, ...]:
    settings = request.app.state.settings
    dirs = [request.app.state.region.data_dir]
    if settings.policy_path:
        dirs.append(Path(settings.policy_path).parent)
    return tuple(dirs)


def _files(
    request: Request, s: Session, viewer: Viewer, run: Run, settlement: Path, which: str
) -> dict[str, Path]:
    """The run's report (or publication) files, built on first use."""
    from opendip.reports.render import render_html, write_report

    out = settlement.parent / "reports"
    stem = f"{which}_{run.id}"
    wanted = ("json", "xlsx", "pdf")
    paths = {fmt: out / f"{stem}.{fmt}" for fmt in wanted}
    fragment = out / f"{stem}.fragment.html"
    with _lock(run.id):
        if all(p.is_file() for p in paths.values()) and (which != REPORT or fragment.is_file()):
            return {**paths, "fragment": fragment}
        if which == REPORT:
            report = build_report(settlement, _extras(request, s, viewer), _search_dirs(request))
        else:
            report = build_publication(settlement, _search_dirs(request))
        written = write_report(report, out, stem, formats=wanted)
        if which == REPORT:
            fragment.write_text(render_html(report, standalone=False), encoding="utf-8")
        return {**written, "fragment": fragment}


def _built(
    request: Request, s: Session, viewer: Viewer, run_id: int, which: str
) -> tuple[Run, dict[str, Path]]:
    """The run and its built files; a run without settlement results raises ReportInputError
    (answered 409 by the app's handler)."""
    run, settlement = _settled_run(request, s, viewer, run_id)
    return run, _files(request, s, viewer, run, settlement, which)


@router.get("/runs/{run_id}/report", include_in_schema=False)
def report_page(
    request: Request,
    run_id: Id,
    viewer: Viewer = Depends(require("runs")),
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
    with _lock(run.id):
        shutil.rmtree(settlement.parent / "reports", ignore_errors=True)
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
    viewer: Viewer = Depends(require("runs")),
    s: Session = Depends(db),
) -> Response:
    return _download(request, s, viewer, run_id, REPORT, fmt)


@router.get("/runs/{run_id}/publication.{fmt}", include_in_schema=False)
def publication_file(
    request: Request,
    run_id: Id,
    fmt: str,
    viewer: Viewer = Depends(require("runs")),
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
    viewer: Viewer = Depends(require("runs")),
    s: Session = Depends(db),
) -> Any:
    _, files = _built(request, s, viewer, run_id, REPORT)
    return json.loads(files["json"].read_text(encoding="utf-8"))
