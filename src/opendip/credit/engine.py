"""Credit rating (信用评价), batch (Ibis): measures per hospital (and doctor) → item points →
score → grade → effects.

Rule steps, in order, shared by the CLI, the demo and the platform:
`measure_table` (subject × measure: num, den), `score_items` (the policy's scorecard:
count items lose `per_unit` per unit, rate items score linearly between zero_at and target),
`grade_subjects` (points summed, scaled to the full mark over the items that apply, graded
by the policy's bands). Points are exact fractions rounded once, half up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from opendip.policy import Policy
from opendip.policy.sections.credit import (
    COUNT_MEASURES,
    CREDIT_MEASURES,
    DOCTOR_MEASURES,
    PRIORITY_LABELS,
    RATE_MEASURES,
    CreditPolicy,
)
from opendip.scoring.exact import HUGE, big, div_half_up, ratio, scaled, units_to_decimal

SCORE_T = "decimal(10, 4)"
VALUE_T = "decimal(18, 4)"
#: Subject kinds of a rating row.
SUBJECT_LABELS = {"hospital": "医疗机构", "doctor": "医师"}


class CreditError(ValueError):
    """The rating cannot be made (Chinese message naming the key or the input)."""


@dataclass
class CreditInputs:
    """Tables on one backend, all for one period (a year).

    cases: case_id, hospital_id, doctor_id, settle_month (the period's settlement lists);
    case_status: case_id, passed (QC); leads: hospital_id, case_ids (supervision leads of
    the period); violations: hospital_id, case_ids (confirmed violations: confirmed leads,
    and lost disputes where `credit.count_lost_disputes`); complaints: hospital_id (one row
    per substantiated complaint); submissions: hospital_id, settle_month, submitted_at
    (upload log); front_page_status: case_id, passed (病案首页质控, `opendip.qc.frontpage`;
    the front pages of the period's cases count, a hospital without any is not scored on
    the item)."""

    cases: ir.Table
    case_status: ir.Table | None = None
    leads: ir.Table | None = None
    violations: ir.Table | None = None
    complaints: ir.Table | None = None
    submissions: ir.Table | None = None
    front_page_status: ir.Table | None = None
    #: Disputes decided against the hospital (争议 archived 不予支持): hospital_id, case_ids;
    #: counted with `violations` where the policy says so (`credit.count_lost_disputes`).
    lost_disputes: ir.Table | None = None


NEEDS = {
    "qc_pass_rate": ("case_status", "质控结果"),
    "front_page_qc_pass_rate": ("front_page_status", "病案首页质控结果"),
    "late_uploads": ("submissions", "上传记录"),
}


def _counts_by(subjects: ir.Table, per: ir.Table | None, keys: list[str], measure: str) -> ir.Table:
    """Rows subject × measure with num = count (0 when none), den = 1."""
    if per is None:
        return subjects.select(*keys, measure=ibis.literal(measure), num=big(0), den=big(1))
    j = subjects.left_join(per, keys)
    j = j.drop(*[f"{k}_right" for k in keys if f"{k}_right" in j.columns])
    return j.select(*keys, measure=ibis.literal(measure), num=big(j._k.fill_null(0)), den=big(1))


def _lead_cases(t: ir.Table, cases: ir.Table) -> ir.Table:
    """One row per (lead, doctor): the doctors of the cases a lead names."""
    t = t.mutate(_lead=ibis.row_number())
    u = t.select("_lead", case_id=t.case_ids.unnest())
    j = u.join(cases.select("case_id", "hospital_id", "doctor_id"), "case_id")
    return j.select("_lead", "hospital_id", "doctor_id").distinct()


def late_months(sub: ir.Table, subjects: ir.Table, deadline_day: int) -> ir.Table:
    """hospital_id, settle_month, first_upload, deadline, late: the month's first upload vs
    day `deadline_day` of the next month (months with cases and an upload record)."""
    s = sub.group_by(["hospital_id", "settle_month"]).aggregate(first_upload=sub.submitted_at.min())
    months = subjects.select("hospital_id", "settle_month").distinct()
    s = s.join(months, ["hospital_id", "settle_month"])
    start = (s.settle_month + "-01").cast("date")
    deadline = (start + ibis.interval(months=1)) + ibis.interval(days=deadline_day - 1)
    s = s.mutate(deadline=deadline.cast("date"))
    return s.mutate(late=(s.first_upload.cast("date") > s.deadline))


def measure_table(inp: CreditInputs, c: CreditPolicy, doctors: bool = False) -> ir.Table:
    """Rule step "measures": hospital_id, doctor_id, measure, num, den per subject (doctors:
    the measures traceable to a doctor; doctor_id null for hospitals)."""
    used = sorted({i.measure for i in c.items if not doctors or i.measure in DOCTOR_MEASURES})
    missing = [
        f"评分项“{CREDIT_MEASURES[m]}”（measure: {m}）需要{NEEDS[m][1]}"
        for m in used
        if m in NEEDS and getattr(inp, NEEDS[m][0]) is None
    ]
    if missing:
        raise CreditError("credit.items：" + "；".join(missing))
    cases = inp.cases.mutate(hospital_id=inp.cases.hospital_id.cast("string"))
    keys = ["hospital_id", "doctor_id"] if doctors else ["hospital_id"]
    if doctors:
        cases = cases.filter(cases.doctor_id.notnull())
    subjects = cases.group_by(keys).aggregate(n_cases=cases.count())
    if doctors:
        subjects = subjects.filter(subjects.n_cases >= c.doctor_min_cases)
    parts = []
    for m in used:
        if m in RATE_MEASURES:
            s = inp.case_status if m == "qc_pass_rate" else inp.front_page_status
            assert s is not None  # NEEDS checked above
            s = s.select("case_id", _p=s.passed.cast("int64"))
            j = cases.select("case_id", *keys).join(s, "case_id")
            agg = j.group_by(keys).aggregate(num=j._p.sum(), den=j.count())
            agg = agg.join(subjects.select(*keys), keys)
            agg = agg.drop(*[f"{k}_right" for k in keys if f"{k}_right" in agg.columns])
            parts.append(
                agg.select(*keys, measure=ibis.literal(m), num=big(agg.num), den=big(agg.den))
            )
            continue
        per = None
        if m in ("supervision_leads", "confirmed_violations"):
            t = inp.leads if m == "supervision_leads" else inp.violations
            if (
                m == "confirmed_violations"
                and c.count_lost_disputes
                and inp.lost_disputes is not None
            ):
                lost = inp.lost_disputes.select("hospital_id", "case_ids")
                t = (
                    lost
                    if t is None
                    else t.select("hospital_id", "case_ids").union(lost, distinct=False)
                )
            if t is not None:
                if doctors:
                    lc = _lead_cases(t, cases)
                    per = lc.group_by(keys).aggregate(_k=lc.count())
                else:
                    t = t.mutate(hospital_id=t.hospital_id.cast("string"))
                    per = t.group_by("hospital_id").aggregate(_k=t.count())
        elif m == "complaints" and inp.complaints is not None:
            t = inp.complaints.mutate(hospital_id=inp.complaints.hospital_id.cast("string"))
            per = t.group_by("hospital_id").aggregate(_k=t.count())
        elif m == "late_uploads":
            lm = late_months(inp.submissions, cases, c.upload_deadline_day)  # type: ignore[arg-type]
            lm = lm.mutate(_l=lm.late.cast("int64"))
            per = lm.group_by("hospital_id").aggregate(_k=lm._l.sum())
        parts.append(_counts_by(subjects.select(*keys), per, keys, m))
    out = ibis.union(*parts)
    if not doctors:
        out = out.mutate(doctor_id=ibis.null("string"))
    return out.select("hospital_id", "doctor_id", "measure", "num", "den")


def item_table(c: CreditPolicy) -> pa.Table:
    """The scorecard as rows of exact integers (weights and per-unit points in 10**-4)."""
    rows = []
    for i, item in enumerate(c.items):
        try:
            w4 = scaled(item.weight, 4)
            u4 = scaled(item.per_unit, 4) if item.per_unit is not None else 0
        except ValueError as exc:
            raise CreditError(f"credit.items[{i}] 的分值最多 4 位小数") from exc
        tp, tq = ratio(item.target) if item.target is not None else (0, 1)
        zp, zq = ratio(item.zero_at) if item.zero_at is not None else (0, 1)
        rows.append(
            {
                "item": item.id,
                "item_order": i,
                "item_name": item.label,
                "measure": item.measure,
                "is_count": item.measure in COUNT_MEASURES,
                "weight": item.weight,
                "w4": w4,
                "u4": u4,
                "tp": tp,
                "tq": tq,
                "zp": zp,
                "zq": zq,
            }
        )
    return pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("item", pa.string()),
                ("item_order", pa.int32()),
                ("item_name", pa.string()),
                ("measure", pa.string()),
                ("is_count", pa.bool_()),
                ("weight", pa.decimal128(18, 4)),
                ("w4", pa.int64()),
                ("u4", pa.int64()),
                ("tp", pa.int64()),
                ("tq", pa.int64()),
                ("zp", pa.int64()),
                ("zq", pa.int64()),
            ]
        ),
    )


def score_items(measures: ir.Table, card: ir.Table, c: CreditPolicy) -> ir.Table:
    """Rule step "item points": count items max(weight − per_unit × count, 0); rate items
    weight × clamp((value − zero_at) ÷ (target − zero_at)); half up to `decimals`."""
    t = measures.join(card, "measure")
    t = t.filter(t.den != 0)
    scale = 10**c.decimals
    full = div_half_up(big(t.w4) * scale, big(10**4))
    # rate: f = A / B with A = (n·zq − zp·d)·tq, B = d·(tp·zq − zp·tq); B made positive.
    zq, zp, tq, tp = (big(t[k]) for k in ("zq", "zp", "tq", "tp"))
    t = t.mutate(_a=(t.num * zq - zp * t.den) * tq, _b=t.den * (tp * zq - zp * tq))
    t = t.mutate(
        _a=ibis.ifelse(t._b < 0, -t._a, t._a).cast(HUGE),
        _b=ibis.ifelse(t._b < 0, -t._b, t._b).cast(HUGE),
    )
    rate_units = ibis.cases(
        (t._a <= 0, ibis.literal(0, type="int64")),
        (t._a >= t._b, full),
        else_=div_half_up(big(t.w4) * scale * t._a, t._b * 10**4),
    )
    left = big(t.w4) - big(t.u4) * t.num
    count_units = ibis.ifelse(
        left > 0, div_half_up(left * scale, big(10**4)), ibis.literal(0, type="int64")
    )
    t = t.mutate(points_units=ibis.ifelse(t.is_count, count_units, rate_units))
    value = ibis.ifelse(
        t.is_count,
        t.num.cast(VALUE_T),
        units_to_decimal(div_half_up(t.num * 10**4, t.den), 4, VALUE_T),
    )
    return t.select(
        "hospital_id",
        "doctor_id",
        "item",
        "item_order",
        "item_name",
        "measure",
        "weight",
        "w4",
        "points_units",
        value=value,
        points=units_to_decimal(t.points_units, c.decimals, SCORE_T),
        numerator=t.num.cast("int64"),
        denominator=t.den.cast("int64"),
    )


def _grade_expr(score: ir.DecimalValue, c: CreditPolicy) -> ir.StringValue:
    return ibis.cases(
        *[(score >= ibis.literal(g.min_score, type=SCORE_T), g.grade) for g in c.grades],
        else_=c.grades[-1].grade,
    )


def grade_subjects(points: ir.Table, c: CreditPolicy) -> ir.Table:
    """Rule step "score and grade": Σ points × total_points ÷ Σ weights that apply, half up;
    the grade is the first band (highest first) whose min_score the score reaches."""
    t4 = scaled(c.total_points, 4)
    s = points.group_by(["hospital_id", "doctor_id"]).aggregate(
        _p=points.points_units.sum(), _w=points.w4.sum(), items=points.count()
    )
    units = div_half_up(big(s._p) * t4, big(s._w))
    s = s.mutate(credit_score=units_to_decimal(units, c.decimals, SCORE_T))
    return s.select(
        "hospital_id",
        "doctor_id",
        "items",
        "credit_score",
        grade=_grade_expr(s.credit_score, c),
    )


@dataclass
class CreditResult:
    #: One row per subject: period, subject, hospital_id, doctor_id, items, credit_score, grade
    #: and the grade's effects (hospitals).
    ratings: pa.Table
    #: One row per subject × item: value, numerator, denominator, weight, points.
    breakdown: pa.Table
    #: One row per hospital × month with an upload record: first upload vs the deadline.
    uploads: pa.Table | None = None


def effects_table(c: CreditPolicy, default_withholding) -> pa.Table:  # type: ignore[no-untyped-def]
    """The grades' effects as rows (grade → withholding share, inspections, priority,
    prepayment eligibility), the settlement-year policy's `default_withholding` where the
    grade gives none."""
    return pa.Table.from_pylist(
        [
            {
                "grade": g.grade,
                "grade_label": g.label,
                "withholding_share": g.withholding_share
                if g.withholding_share is not None
                else default_withholding,
                "inspections_per_year": g.inspections_per_year,
                "supervision_priority": PRIORITY_LABELS[g.supervision_priority],
                "prepayment_eligible": g.prepayment_eligible,
            }
            for g in c.grades
        ],
        schema=pa.schema(
            [
                ("grade", pa.string()),
                ("grade_label", pa.string()),
                ("withholding_share", pa.decimal128(10, 4)),
                ("inspections_per_year", pa.int32()),
                ("supervision_priority", pa.string()),
                ("prepayment_eligible", pa.bool_()),
            ]
        ),
    )


def rate(inp: CreditInputs, policy: Policy, period: str) -> CreditResult:
    """The period's credit rating of every hospital with cases (and of every doctor with at
    least `doctor_min_cases` cases when the policy rates doctors)."""
    c = policy.credit
    if c is None:
        raise CreditError("政策未设信用评价（credit），不能进行信用评价")
    con = inp.cases._find_backend()
    card = con.create_table(f"credit_card_{period}", item_table(c), overwrite=True)
    effects = con.create_table(
        f"credit_effects_{period}",
        effects_table(c, policy.settlement.withholding_share),
        overwrite=True,
    )
    subjects = [False, True] if c.rate_doctors else [False]
    ratings, breakdown = [], []
    for doctors in subjects:
        if doctors and not [i for i in c.items if i.measure in DOCTOR_MEASURES]:
            continue
        m = measure_table(inp, c, doctors)
        pts = score_items(m, card, c)
        g = grade_subjects(pts, c)
        kind = ibis.literal("doctor" if doctors else "hospital")
        g = g.mutate(period=ibis.literal(period), subject=kind)
        g = g.left_join(effects, "grade").drop("grade_right")
        ratings.append(g)
        breakdown.append(pts.mutate(period=ibis.literal(period), subject=kind))
    cols = [
        "period",
        "subject",
        "hospital_id",
        "doctor_id",
        "items",
        "credit_score",
        "grade",
        "grade_label",
        "withholding_share",
        "inspections_per_year",
        "supervision_priority",
        "prepayment_eligible",
    ]
    r = ibis.union(*[t.select(*cols) for t in ratings])
    b = ibis.union(
        *[
            t.select(
                "period",
                "subject",
                "hospital_id",
                "doctor_id",
                "item",
                "item_order",
                "item_name",
                "measure",
                "value",
                "numerator",
                "denominator",
                "weight",
                "points",
            )
            for t in breakdown
        ]
    )
    uploads = None
    if inp.submissions is not None:
        uploads = (
            late_months(inp.submissions, inp.cases, c.upload_deadline_day)
            .order_by(["hospital_id", "settle_month"])
            .to_pyarrow()
        )
    return CreditResult(
        ratings=r.order_by(["subject", "hospital_id", "doctor_id"]).to_pyarrow(),
        breakdown=b.order_by(["subject", "hospital_id", "doctor_id", "item_order"]).to_pyarrow(),
        uploads=uploads,
    )


def repaired_grade(c: CreditPolicy, grade: str) -> str:
    """Rule step "信用修复": the grade after a recorded remediation, `repair_steps` grades
    up, never above `repair_highest_grade`, never down; an unknown grade is unchanged."""
    names = [g.grade for g in c.grades]
    if grade not in names:
        return grade
    i = max(0, names.index(grade) - c.repair_steps)
    if c.repair_highest_grade is not None:
        i = max(i, names.index(c.repair_highest_grade))
    return names[min(i, names.index(grade))]


def deadline_of(month: str, c: CreditPolicy) -> dt.date:
    """The upload deadline of a settlement month (YYYY-MM): day `upload_deadline_day` of
    the next month."""
    y, m = int(month[:4]), int(month[5:7])
    y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return dt.date(y, m, c.upload_deadline_day)
