# ruff: noqa: B008  (FastAPI dependencies are declared as Depends(...) defaults)
"""信用评价: every hospital's grade, score breakdown and history (agency), a hospital's own
grade and why (hospital users), 信用修复 and 投诉举报 records (agency)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from opendip.credit.engine import SUBJECT_LABELS, CreditError, repaired_grade
from opendip.policy.sections.credit import PRIORITY_LABELS
from opendip.store import credit as store_credit
from opendip.store.access import CaseScope, case_scope
from opendip.web.app import error_response, render
from opendip.web.credit import policy_for, rate_year
from opendip.web.security import Forbidden, NotFound, Viewer, db, require

router = APIRouter()


def _scope(viewer: Viewer) -> CaseScope:
    """Whose ratings the viewer sees: the region (region roles), a county's hospitals
    (county users), or the viewer's own hospital (hospital users)."""
    return case_scope(viewer.actor, None)


def _credit_policy(request: Request):  # type: ignore[no-untyped-def]
    pf = policy_for(request.app.state.settings, request.app.state.region)
    pol = pf.periods()[-1][2]
    return pol


def _effects(pol) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    if pol.credit is None:
        return {}
    return {
        g.grade: {
            "label": g.label,
            "min_score": g.min_score,
            # None: the settlement's withholding share in force (dated) applies
            "withholding_share": g.withholding_share,
            "inspections": g.inspections_per_year,
            "priority": PRIORITY_LABELS[g.supervision_priority],
            "prepayment": g.prepayment_eligible,
        }
        for g in pol.credit.grades
    }


@router.get("/credit", include_in_schema=False)
def credit_page(
    request: Request,
    period: str = Query("", max_length=4),
    viewer: Viewer = Depends(require("credit")),
    s: Session = Depends(db),
) -> Response:
    scope = _scope(viewer)
    if scope.hospital_id is not None:
        return RedirectResponse(f"/credit/{scope.hospital_id}", status_code=303)
    periods = store_credit.periods(s)
    period = period if period in periods else (periods[0] if periods else "")
    seen = lambda r: scope.allows({"hospital_id": r.hospital_id})  # noqa: E731
    rows = [r for r in store_credit.ratings(s, period) if seen(r)] if period else []
    history: dict[str, dict[str, str]] = {}
    for r in store_credit.ratings(s, None):
        if seen(r):
            history.setdefault(r.hospital_id, {})[r.period] = r.grade_in_force
    pol = _credit_policy(request)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.grade_in_force] = counts.get(r.grade_in_force, 0) + 1
    # the items of every rating (an item some hospitals are not scored on, e.g. 病案首页
    # without uploaded front pages, is a column all the same: "—" where it does not apply)
    items: dict[str, str] = {}
    for r in rows:
        for b in r.breakdown:
            items.setdefault(b["item"], b["item_name"])
    points = {r.hospital_id: {b["item"]: b["points"] for b in r.breakdown} for r in rows}
    return render(
        request,
        "credit.html",
        period=period,
        periods=periods,
        rows=rows,
        items=items,
        points=points,
        history=history,
        counts=counts,
        effects=_effects(pol),
        configured=pol.credit is not None,
        complaints=[c for c in store_credit.complaints(s) if seen(c)][:50],
        names={
            h: n
            for h, n in request.app.state.region.hospital_names().items()
            if scope.allows({"hospital_id": h})
        },
        year=request.app.state.region.current_year(),
    )


@router.get("/credit/{hospital_id}", include_in_schema=False)
def credit_hospital(
    request: Request,
    hospital_id: str,
    viewer: Viewer = Depends(require("credit")),
    s: Session = Depends(db),
) -> Response:
    if not _scope(viewer).allows({"hospital_id": hospital_id}):
        raise NotFound("未找到该医疗机构的信用评价")
    history = store_credit.ratings(s, None, hospital_id)
    if not history and hospital_id not in request.app.state.region.hospital_names():
        raise NotFound("未找到该医疗机构的信用评价")
    repairs = store_credit.repairs(s, [r.id for r in history])
    latest = history[0] if history else None
    doctors = (
        sorted(
            store_credit.ratings(s, latest.period, hospital_id, subject="doctor")
            if _scope(viewer).doctor_id is None and _scope(viewer).department is None
            else [],
            key=lambda r: (r.score, r.doctor_id),
        )
        if latest
        else []
    )
    pol = _credit_policy(request)
    repaired_to = (
        repaired_grade(pol.credit, latest.grade_in_force)
        if latest and pol.credit is not None
        else None
    )
    return render(
        request,
        "credit_detail.html",
        hospital_id=hospital_id,
        hospital_name=request.app.state.region.hospital_names().get(hospital_id, ""),
        history=history,
        latest=latest,
        repairs=repairs,
        doctors=doctors,
        effects=_effects(pol),
        repaired_to=repaired_to,
        can_manage=viewer.can("credit.manage"),
        complaints=store_credit.complaints(s, hospital_id) if viewer.can("credit.manage") else [],
        subject_labels=SUBJECT_LABELS,
    )


@router.post("/credit/rate", include_in_schema=False)
def credit_rate(
    request: Request,
    year: str = Form(max_length=4),
    viewer: Viewer = Depends(require("credit.manage")),
) -> Response:
    if not year.isdigit():
        return error_response(request, 400, "请填写评价年度")
    try:
        rate_year(request.app.state, int(year), viewer.user)
    except CreditError as exc:
        return error_response(request, 409, str(exc))
    return RedirectResponse(f"/credit?period={year}", status_code=303)


@router.post("/credit/ratings/{rating_id}/repair", include_in_schema=False)
def credit_repair(
    request: Request,
    rating_id: int,
    remediation: str = Form(max_length=5000),
    viewer: Viewer = Depends(require("credit.manage")),
    s: Session = Depends(db),
) -> Response:
    rating = store_credit.get_rating(s, rating_id, None)
    if rating is None:
        raise NotFound("未找到该信用评价")
    pol = _credit_policy(request)
    if pol.credit is None:
        raise Forbidden("政策未设信用评价")
    store_credit.record_repair(
        s, viewer.user, rating, remediation, repaired_grade(pol.credit, rating.grade_in_force)
    )
    s.commit()
    return RedirectResponse(f"/credit/{rating.hospital_id}", status_code=303)


@router.post("/credit/complaints", include_in_schema=False)
def credit_complaint(
    request: Request,
    hospital_id: str = Form(max_length=64),
    received_on: dt.date = Form(),
    summary: str = Form(max_length=5000),
    substantiated: str = Form("", max_length=8),
    viewer: Viewer = Depends(require("credit.manage")),
    s: Session = Depends(db),
) -> Response:
    if hospital_id not in request.app.state.region.hospital_names():
        return error_response(request, 400, f"医疗机构 {hospital_id} 不存在")
    store_credit.add_complaint(
        s, viewer.user, hospital_id, received_on, summary, substantiated == "1"
    )
    s.commit()
    return RedirectResponse("/credit#complaints", status_code=303)
