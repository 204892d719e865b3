"""Credit ratings (信用评价), repairs (信用修复) and complaints (投诉举报) in the store.

A hospital user sees its own hospital's rows only (callers pass `hospital_scope(actor)`);
region roles see every hospital. Every write is audited.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendip.store.models import Complaint, CreditRating, CreditRepair, User, utcnow
from opendip.store.repositories import StoreRuleError, audit


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()}


def save_ratings(
    s: Session,
    period: str,
    ratings: list[dict[str, Any]],
    breakdown: list[dict[str, Any]],
    source: dict[str, Any],
    user: User | None = None,
) -> int:
    """Store a period's ratings (rows of the engine's ratings table and its breakdown),
    replacing the period's earlier computation; a repaired grade recorded on a subject is
    kept (the repair stays in force). Returns how many rows were written."""
    lines: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for b in breakdown:
        key = (b["subject"], str(b["hospital_id"]), str(b.get("doctor_id") or ""))
        lines.setdefault(key, []).append(
            _jsonable(
                {
                    k: b.get(k)
                    for k in (
                        "item",
                        "item_name",
                        "measure",
                        "value",
                        "numerator",
                        "denominator",
                        "weight",
                        "points",
                    )
                }
            )
        )
    existing = {
        (r.subject, r.hospital_id, r.doctor_id): r
        for r in s.scalars(select(CreditRating).where(CreditRating.period == period))
    }
    now = utcnow()
    for row in ratings:
        key = (row["subject"], str(row["hospital_id"]), str(row.get("doctor_id") or ""))
        rating = existing.pop(key, None)
        if rating is None:
            rating = CreditRating(
                period=period, subject=key[0], hospital_id=key[1], doctor_id=key[2]
            )
            s.add(rating)
        rating.score = Decimal(row["credit_score"])
        rating.grade = row["grade"]
        rating.breakdown = lines.get(key, [])
        rating.source = source
        rating.rated_at = now
    for stale in existing.values():
        s.delete(stale)
    audit(s, user, "credit.rate", "credit", period, {"rows": len(ratings), **source})
    s.flush()
    return len(ratings)


def ratings(
    s: Session, period: str | None, hospital_id: str | None = None, subject: str = "hospital"
) -> list[CreditRating]:
    stmt = select(CreditRating).where(CreditRating.subject == subject)
    if period is not None:
        stmt = stmt.where(CreditRating.period == period)
    if hospital_id is not None:
        stmt = stmt.where(CreditRating.hospital_id == hospital_id)
    return list(s.scalars(stmt.order_by(CreditRating.period.desc(), CreditRating.hospital_id)))


def periods(s: Session) -> list[str]:
    stmt = select(CreditRating.period).distinct().order_by(CreditRating.period.desc())
    return list(s.scalars(stmt))


def get_rating(s: Session, rating_id: int, hospital_id: str | None) -> CreditRating | None:
    """A rating by id; None when it is another hospital's (answered as 404)."""
    r = s.get(CreditRating, rating_id)
    if r is None or (hospital_id is not None and r.hospital_id != hospital_id):
        return None
    return r


def repairs(s: Session, rating_ids: list[int]) -> dict[int, list[CreditRepair]]:
    out: dict[int, list[CreditRepair]] = {}
    if not rating_ids:
        return out
    stmt = select(CreditRepair).where(CreditRepair.rating_id.in_(rating_ids))
    for r in s.scalars(stmt.order_by(CreditRepair.id)):
        out.setdefault(r.rating_id, []).append(r)
    return out


def record_repair(
    s: Session, user: User, rating: CreditRating, remediation: str, repaired_grade: str
) -> CreditRepair:
    """信用修复: record the remediation and put the repaired grade (computed by the policy's
    rule, `CreditPolicy.repaired`) in force; audited."""
    text = remediation.strip()
    if not text:
        raise StoreRuleError("请填写整改情况（信用修复依据）")
    before = rating.grade_in_force
    if repaired_grade == before:
        raise StoreRuleError(f"当前等级 {before} 已是信用修复可达的最高等级")
    repair = CreditRepair(
        rating_id=rating.id,
        remediation=text,
        grade_before=before,
        grade_after=repaired_grade,
        recorded_by=user.id,
    )
    s.add(repair)
    rating.repaired_grade = repaired_grade
    audit(
        s,
        user,
        "credit.repair",
        "credit",
        rating.id,
        {"hospital_id": rating.hospital_id, "period": rating.period, "from": before,
         "to": repaired_grade},
    )  # fmt: skip
    s.flush()
    return repair


def add_complaint(
    s: Session,
    user: User,
    hospital_id: str,
    received_on: dt.date,
    summary: str,
    substantiated: bool,
) -> Complaint:
    if not summary.strip():
        raise StoreRuleError("请填写投诉举报内容")
    c = Complaint(
        hospital_id=hospital_id,
        received_on=received_on,
        summary=summary.strip(),
        substantiated=substantiated,
        recorded_by=user.id,
    )
    s.add(c)
    s.flush()
    audit(s, user, "complaint.create", "complaint", c.id, {"hospital_id": hospital_id})
    return c


def complaints(s: Session, hospital_id: str | None = None) -> list[Complaint]:
    stmt = select(Complaint)
    if hospital_id is not None:
        stmt = stmt.where(Complaint.hospital_id == hospital_id)
    return list(s.scalars(stmt.order_by(Complaint.received_on.desc(), Complaint.id.desc())))


def substantiated_complaints(s: Session, year: int) -> list[dict[str, Any]]:
    """Rows (hospital_id) of the year's substantiated complaints: the credit input."""
    stmt = select(Complaint).where(
        Complaint.substantiated.is_(True),
        Complaint.received_on >= dt.date(year, 1, 1),
        Complaint.received_on <= dt.date(year, 12, 31),
    )
    return [{"hospital_id": c.hospital_id} for c in s.scalars(stmt)]


def grades_in_force(s: Session, period: str) -> dict[str, str]:
    """hospital_id → grade in force (repaired when repaired) of a period's ratings."""
    return {r.hospital_id: r.grade_in_force for r in ratings(s, period)}
