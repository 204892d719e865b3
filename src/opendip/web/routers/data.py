# ruff: noqa: B008  (FastAPI dependencies are declared as Depends(...) defaults)
"""数据上传: upload a settlement list, see accepted/quarantined at once."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from opendip.store import Upload
from opendip.store import repositories as repo
from opendip.web.app import error_response, render
from opendip.web.schemas import Id, Message, UploadOut
from opendip.web.security import NotFound, Viewer, db, require
from opendip.web.uploads import UploadRejected, qc_available, qc_preview, receive_upload

router = APIRouter()
NOT_FOUND = {404: {"model": Message}}


async def _read_upload(request: Request) -> tuple[str, bytes]:
    settings = request.app.state.settings
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.max_upload_bytes + 1024 * 1024:
        raise UploadRejected(f"文件过大：上限 {settings.max_upload_bytes / 1024 / 1024:.0f} MB")
    try:
        form = await request.form(max_part_size=settings.max_upload_bytes + 1)
    except Exception as exc:
        raise UploadRejected(
            f"上传内容无法解析，请使用表单上传文件（{type(exc).__name__}）"
        ) from exc
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise UploadRejected("请选择要上传的结算清单文件")
    data = await file.read(settings.max_upload_bytes + 1)
    return file.filename or "upload", data


def _quarantine_preview(path: str | None, limit: int = 20) -> list[dict[str, Any]]:
    """The first quarantined rows (number, reason). Fields are bounded at import; a file
    written before that (or damaged) shows what could be read, never a 500."""
    if not path or not Path(path).exists():
        return []
    rows: list[dict[str, Any]] = []
    csv.field_size_limit(16 << 20)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for i, r in enumerate(csv.DictReader(fh)):
                if i >= limit:
                    break
                reason = r.get("隔离原因") or ""
                rows.append({"row_number": r.get("原始行号"), "reason": reason[:1000]})
    except (csv.Error, UnicodeDecodeError, OSError):
        rows.append(
            {"row_number": "", "reason": "隔离清单无法完整显示，请下载 quarantine.csv 查看"}
        )
    return rows


async def _import(
    request: Request, s: Session, viewer: Viewer, filename: str, data: bytes, wait: bool
) -> tuple[Upload, bool]:
    """Store the file and import it in a worker thread (never on the event loop: a large file
    must not stop other requests), at most `Settings.parallel_imports` at once. With `wait`
    false (the page, when runs are in the background) this returns at once with the upload
    "importing"; its page polls the progress."""
    app = request.app
    upload, duplicate = await run_in_threadpool(
        receive_upload, s, app.state.settings, viewer.user, filename, data
    )
    s.commit()
    if not duplicate:
        if wait or not app.state.settings.background_runs:
            await run_in_threadpool(app.state.uploads.start, upload.id, False)
        else:
            app.state.uploads.start(upload.id, True)
        s.refresh(upload)
    return upload, duplicate


def _result(upload: Upload, duplicate: bool = False, limit: int = 20) -> dict[str, Any]:
    """What the upload result shows (nothing but the progress while importing)."""
    done = upload.status not in ("received", "importing")
    return {
        "upload": upload,
        "duplicate": duplicate,
        "quarantine": _quarantine_preview(upload.outputs.get("quarantine"), limit) if done else [],
        "findings": qc_preview(upload, limit) if done else [],
        "qc_ready": qc_available(),
    }


def _out(upload, duplicate: bool = False) -> UploadOut:
    out = UploadOut.model_validate(upload)
    out.duplicate_of_previous = duplicate
    return out


@router.get("/uploads", include_in_schema=False)
def uploads_page(
    request: Request, viewer: Viewer = Depends(require("uploads.view")), s: Session = Depends(db)
) -> Response:
    return render(
        request,
        "uploads.html",
        uploads=repo.list_uploads(s, viewer.actor),
        qc_ready=qc_available(),
        max_mb=request.app.state.settings.max_upload_bytes // 1024 // 1024,
    )


@router.post("/uploads", include_in_schema=False)
async def upload_submit(
    request: Request, viewer: Viewer = Depends(require("upload")), s: Session = Depends(db)
) -> Response:
    try:
        filename, data = await _read_upload(request)
        upload, duplicate = await _import(request, s, viewer, filename, data, wait=False)
    except UploadRejected as exc:
        s.rollback()
        return (
            error_response(request, 400, str(exc))
            if request.headers.get("HX-Request")
            else render(
                request,
                "uploads.html",
                status_code=400,
                uploads=repo.list_uploads(s, viewer.actor),
                qc_ready=qc_available(),
                error=str(exc),
                max_mb=request.app.state.settings.max_upload_bytes // 1024 // 1024,
            )
        )
    ctx = _result(upload, duplicate)
    if request.headers.get("HX-Request"):
        return render(request, "upload_result.html", **ctx)
    return render(request, "upload_detail.html", **ctx)


@router.post(
    "/api/uploads",
    response_model=UploadOut,
    responses={400: {"model": Message}},
    tags=["数据上传"],
    summary="上传结算清单文件（multipart，字段 file）",
)
async def api_upload(
    request: Request, viewer: Viewer = Depends(require("upload")), s: Session = Depends(db)
) -> Any:
    try:
        filename, data = await _read_upload(request)
        upload, duplicate = await _import(request, s, viewer, filename, data, wait=True)
    except UploadRejected as exc:
        s.rollback()
        return error_response(request, 400, str(exc))
    return _out(upload, duplicate)


@router.get("/api/uploads", response_model=list[UploadOut], tags=["数据上传"], summary="上传记录")
def api_uploads(
    viewer: Viewer = Depends(require("uploads.view")), s: Session = Depends(db)
) -> list[UploadOut]:
    return [_out(u) for u in repo.list_uploads(s, viewer.actor)]


def _upload(s: Session, viewer: Viewer, upload_id: Id):
    upload = repo.get_upload(s, viewer.actor, upload_id)
    if upload is None:
        raise NotFound("未找到该上传记录")
    return upload


@router.get("/uploads/{upload_id}", include_in_schema=False)
def upload_page(
    request: Request,
    upload_id: Id,
    viewer: Viewer = Depends(require("uploads.view")),
    s: Session = Depends(db),
) -> Response:
    upload = _upload(s, viewer, upload_id)
    return render(request, "upload_detail.html", **_result(upload, limit=200))


@router.get("/uploads/{upload_id}/progress", include_in_schema=False)
def upload_progress(
    request: Request,
    upload_id: Id,
    viewer: Viewer = Depends(require("uploads.view")),
    s: Session = Depends(db),
) -> Response:
    """The upload result section: status and rows read so far while importing (the section
    polls this every second), then the counts, quarantined rows and QC findings."""
    return render(request, "upload_result.html", **_result(_upload(s, viewer, upload_id)))


@router.get(
    "/api/uploads/{upload_id}",
    response_model=UploadOut,
    responses=NOT_FOUND,
    tags=["数据上传"],
    summary="上传记录详情",
)
def api_upload_get(
    upload_id: Id, viewer: Viewer = Depends(require("uploads.view")), s: Session = Depends(db)
) -> UploadOut:
    return _out(_upload(s, viewer, upload_id))


@router.get(
    "/uploads/{upload_id}/quarantine.csv",
    responses=NOT_FOUND,
    tags=["数据上传"],
    summary="下载隔离行（CSV，含原因）",
)
def upload_quarantine(
    upload_id: Id, viewer: Viewer = Depends(require("uploads.view")), s: Session = Depends(db)
) -> Response:
    upload = _upload(s, viewer, upload_id)
    path = upload.outputs.get("quarantine")
    if not path or not Path(path).exists():
        raise NotFound("该上传没有隔离行文件")
    return FileResponse(
        path, media_type="text/csv; charset=utf-8", filename=f"quarantine_{upload.id}.csv"
    )
