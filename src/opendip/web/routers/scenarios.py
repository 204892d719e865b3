# ruff: noqa: B008  (FastAPI dependencies are declared as Depends(...) defaults)
"""方案测算 (agency) and 意见征集 (agency and hospitals)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from opendip.policy import PolicyError
from opendip.scenario import VariantError
from opendip.store.models import Proposal
from opendip.web import scenarios as sc
from opendip.web.app import error_response, render
from opendip.web.schemas import Id
from opendip.web.security import NotFound, Viewer, db, require

router = APIRouter()
MAX_OVERLAY_BYTES = 64 * 1024


def _visible(s: Session, viewer: Viewer, proposal_id: int) -> Proposal:
    p = s.get(Proposal, proposal_id)
    if p is None or (not viewer.can("scenarios") and p.status not in ("published", "adopted")):
        raise NotFound("未找到该方案")
    return p


def _list(s: Session, viewer: Viewer) -> list[Proposal]:
    stmt = select(Proposal).order_by(Proposal.id.desc())
    if not viewer.can("scenarios"):
        stmt = stmt.where(Proposal.status.in_(("published", "adopted")))
    return list(s.scalars(stmt).all())


def _form(request: Request, s: Session, **extra: object) -> Response:
    runs = request.app.state.runs
    service: sc.ScenarioService = request.app.state.scenarios
    base = service.base_run(s, runs)
    fields = []
    if base is not None:
        from opendip.reports.source import resolve_run

        src = resolve_run(base[1], search_dirs=(request.app.state.settings.data_dir,))
        fields = sc.form_fields(src.policy_path)
    viewer = request.state.viewer
    return render(
        request,
        "scenarios.html",
        proposals=_list(s, viewer),
        fields=fields,
        base_run=base[0] if base else None,
        **extra,
    )


@router.get("/scenarios", include_in_schema=False)
def scenarios_page(
    request: Request, viewer: Viewer = Depends(require("proposals")), s: Session = Depends(db)
) -> Response:
    return _form(request, s)


@router.post("/scenarios", include_in_schema=False)
async def scenario_create(
    request: Request,
    title: str = Form("", max_length=200),
    description: str = Form("", max_length=2000),
    overlay: str = Form("", max_length=MAX_OVERLAY_BYTES),
    overlay_file: UploadFile | None = File(None),
    viewer: Viewer = Depends(require("scenarios")),
    s: Session = Depends(db),
) -> Response:
    form = await request.form()
    values = {k[len("field__") :]: str(v) for k, v in form.items() if k.startswith("field__")}
    text = overlay
    if overlay_file is not None and overlay_file.filename:
        raw = await overlay_file.read(MAX_OVERLAY_BYTES + 1)
        if len(raw) > MAX_OVERLAY_BYTES:
            return _form(request, s, error="上传的参数文件过大（上限 64 KB）", status_code=413)
        try:
            text = (text + "\n" + raw.decode("utf-8")).strip()
        except UnicodeDecodeError:
            return _form(request, s, error="上传的参数文件须为 UTF-8 编码的 YAML")
    try:
        p = request.app.state.scenarios.start(
            s, viewer.user, request.app.state.runs, title, description, values, text
        )
    except (VariantError, PolicyError, sc.ProposalRefused) as exc:
        s.rollback()
        return _form(request, s, status_code=422, error=str(exc), title=title, description=description,
                     overlay=overlay, values=values)  # fmt: skip
    return RedirectResponse(f"/scenarios/{p.id}", status_code=303)


def _detail_context(request: Request, s: Session, viewer: Viewer, p: Proposal) -> dict:
    own = viewer.hospital_id
    comments = [c for c in p.comments if own is None or c.hospital_id == own]
    from opendip.scenario import Variant
    from opendip.scenario.variant import _flatten

    variant = Variant.parse(p.variant_yaml, "方案")
    changes = [{"key": k, "value": v} for k, v in sorted(_flatten(variant.policy).items())]
    return {
        "p": p,
        "changes": changes,
        "summary": sc.summary_rows(p) if viewer.can("scenarios") else [],
        "charts": sc.chart_data(p) if viewer.can("scenarios") else {},
        "rows": sc.hospital_rows(p, own),
        "comments": comments,
        "names": request.app.state.region.hospital_names(),
    }


@router.get("/scenarios/compare", include_in_schema=False)
def scenario_compare(
    request: Request,
    id: list[int] = Query(default_factory=list),
    viewer: Viewer = Depends(require("scenarios")),
    s: Session = Depends(db),
) -> Response:
    ids = list(dict.fromkeys(id))[: sc.MAX_COMPARE]
    chosen = [_visible(s, viewer, i) for i in ids]
    columns = [
        (p, {r["pool"]: r for r in sc.summary_rows(p) if r["variant"] != "base"}) for p in chosen
    ]
    base = {}
    for p in chosen:
        for r in sc.summary_rows(p):
            if r["variant"] == "base":
                base.setdefault(r["pool"], r)
    return render(request, "scenario_compare.html", columns=columns, base=base,
                  proposals=_list(s, viewer), ids=ids)  # fmt: skip


@router.get("/scenarios/{proposal_id}", include_in_schema=False)
def scenario_detail(
    request: Request,
    proposal_id: Id,
    viewer: Viewer = Depends(require("proposals")),
    s: Session = Depends(db),
) -> Response:
    p = _visible(s, viewer, proposal_id)
    return render(request, "scenario_detail.html", **_detail_context(request, s, viewer, p))


@router.get("/scenarios/{proposal_id}/status", include_in_schema=False)
def scenario_status(
    request: Request,
    proposal_id: Id,
    viewer: Viewer = Depends(require("scenarios")),
    s: Session = Depends(db),
) -> Response:
    p = _visible(s, viewer, proposal_id)
    response = render(request, "scenario_status.html", p=p)
    if p.status != "running":
        response.headers["HX-Refresh"] = "true"
    return response


@router.get("/scenarios/{proposal_id}/export.xlsx", include_in_schema=False)
def scenario_export(
    request: Request,
    proposal_id: Id,
    viewer: Viewer = Depends(require("scenarios")),
    s: Session = Depends(db),
) -> Response:
    p = _visible(s, viewer, proposal_id)
    path = Path(p.result_dir) / "方案测算.xlsx"
    if p.status in ("running", "failed") or not path.is_file():
        raise NotFound("该方案还没有测算结果")
    return FileResponse(
        path,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        filename=f"方案测算_{p.id}.xlsx",
    )


@router.get("/scenarios/{proposal_id}/export.pdf", include_in_schema=False)
def scenario_export_pdf(
    request: Request,
    proposal_id: Id,
    viewer: Viewer = Depends(require("scenarios")),
    s: Session = Depends(db),
) -> Response:
    p = _visible(s, viewer, proposal_id)
    out = Path(p.result_dir)
    if p.status in ("running", "failed") or not (out / "summary.json").is_file():
        raise NotFound("该方案还没有测算结果")
    path = out / "方案测算.pdf"
    if not path.is_file():
        from opendip.scenario.report import write_scenario_pdf

        write_scenario_pdf(out)
    return FileResponse(path, media_type="application/pdf", filename=f"方案测算_{p.id}.pdf")


@router.post("/scenarios/{proposal_id}", include_in_schema=False)
def scenario_action(
    request: Request,
    proposal_id: Id,
    action: str = Form(max_length=16),
    body: str = Form("", max_length=4000),
    comment_id: int = Form(0),
    viewer: Viewer = Depends(require("proposals")),
    s: Session = Depends(db),
) -> Response:
    p = _visible(s, viewer, proposal_id)
    agency = viewer.can("scenarios")
    try:
        if action == "comment" and not agency:
            sc.comment(s, viewer.user, p, body)
        elif action == "publish" and agency:
            sc.publish(s, viewer.user, p)
        elif action == "reply" and agency:
            sc.reply(s, viewer.user, p, comment_id, body)
        elif action == "adopt" and agency:
            from opendip.reports.source import resolve_run

            run = request.app.state.runs
            base = request.app.state.scenarios.base_run(s, run)
            if base is None:
                raise sc.ProposalRefused("找不到方案所依据的年终清算")
            data_dir = request.app.state.settings.data_dir
            policy = resolve_run(base[1], search_dirs=(data_dir,)).policy_path
            sc.adopt(s, viewer.user, p, policy, data_dir)
        else:
            return error_response(request, 403, "无权执行该操作")
    except sc.ProposalRefused as exc:
        s.rollback()
        return error_response(request, 409, str(exc))
    return RedirectResponse(f"/scenarios/{p.id}", status_code=303)
