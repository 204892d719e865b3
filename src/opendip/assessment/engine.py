"""Annual assessment (年度考核), batch (Ibis): indicators per hospital → points → total.

Every measure is a ratio of two integers per hospital (`num`, `den`), so points are exact
fractions rounded once, half up (`div_half_up`), as money is. Rule steps, in order:
`measure_table` (one row per hospital × measure), `score_indicators` (the policy's
scorecard applied: value, points, applicability by level), `total_scores` (points summed
and scaled to the full mark over the weights that apply).
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from opendip.policy import Policy
from opendip.policy.sections.assessment import MEASURES, AssessmentPolicy
from opendip.scoring.exact import HUGE, big, div_half_up, ratio, scaled, units_to_decimal

VALUE_T = "decimal(18, 4)"
SCORE_T = "decimal(10, 4)"


class AssessmentError(ValueError):
    """The assessment cannot be computed (Chinese message naming the key or input)."""


@dataclass
class AssessmentInputs:
    """Tables on one backend. `cases`: this year's settlement lists (CASES contract);
    `grouped`: their grouping; `hospitals`: hospital_id, level; optional: `case_status` (QC),
    `previous_cases` (last year's lists, for cost growth), `leads` (supervision leads with
    `hospital_id` and `status`; status 'confirmed' counts), `front_page_status` (病案首页质控
    per front page: case_id, hospital_id, passed — `opendip.qc.frontpage`)."""

    cases: ir.Table
    grouped: ir.Table
    hospitals: ir.Table
    case_status: ir.Table | None = None
    previous_cases: ir.Table | None = None
    leads: ir.Table | None = None
    front_page_status: ir.Table | None = None


NEEDS = {
    "qc_pass_rate": ("case_status", "质控结果（--qc-status）"),
    "front_page_qc_pass_rate": ("front_page_status", "病案首页质控结果（--front-page-status）"),
    "cost_growth_per_case": ("previous_cases", "上年度结算清单（--previous-cases）"),
}


def _ratio_rows(t: ir.Table, measure: str, num: ir.Value, den: ir.Value) -> ir.Table:
    return t.select(
        hospital_id=t.hospital_id,
        measure=ibis.literal(measure),
        num=big(num),
        den=big(den),
    )


def _readmissions(cases: ir.Table, a: AssessmentPolicy) -> ir.Table:
    """Per hospital: discharges followed by an admission of the same patient (any hospital)
    within `readmission_days` days, the next stay's main diagnosis not excluded."""
    w = ibis.window(group_by="patient_id", order_by=["admit_date", "discharge_date", "case_id"])
    t = cases.select(
        "case_id", "hospital_id", "patient_id", "admit_date", "discharge_date", "main_diagnosis"
    )
    t = t.mutate(
        _next_admit=t.admit_date.lead().over(w),
        _next_dx=t.main_diagnosis.lead().over(w),
    )
    gap = t._next_admit.delta(t.discharge_date, unit="day")
    excluded = ibis.literal(False)
    for p in a.readmission_exclude_prefixes:
        excluded |= t._next_dx.startswith(p)
    t = t.mutate(
        _re=(t._next_admit.notnull() & (gap >= 0) & (gap <= a.readmission_days) & ~excluded)
        .fill_null(False)
        .cast("int64")
    )
    return t.group_by("hospital_id").aggregate(num=t._re.sum(), den=t.count())


def measure_table(inp: AssessmentInputs, a: AssessmentPolicy) -> ir.Table:
    """Rule step "measures": hospital_id, measure, num, den for every measure the scorecard
    uses (den = 0 or a missing row: not applicable to that hospital)."""
    used = sorted({i.measure for i in a.indicators})
    missing = [
        f"考核指标“{MEASURES[m]}”（measure: {m}）需要 {NEEDS[m][1]}"
        for m in dict.fromkeys(i.measure for i in a.indicators)
        if m in NEEDS and getattr(inp, NEEDS[m][0]) is None
    ]
    if missing:
        raise AssessmentError("assessment.indicators：" + "；".join(missing))
    c = inp.cases
    g = inp.grouped.select("case_id", "group_type")
    cg = c.select("case_id", "hospital_id").left_join(g, "case_id").drop("case_id_right")
    parts = []
    for m in used:
        if m in ("qc_pass_rate", "front_page_qc_pass_rate"):
            s = inp.case_status if m == "qc_pass_rate" else inp.front_page_status
            assert s is not None  # NEEDS checked above
            s = s.select("hospital_id", _p=s.passed.cast("int64"))
            agg = s.group_by("hospital_id").aggregate(n=s._p.sum(), d=s.count())
        elif m == "grouping_rate":
            matched = (cg.group_type.notnull() & (cg.group_type != "unmatched")).cast("int64")
            t = cg.mutate(_m=matched)
            agg = t.group_by("hospital_id").aggregate(n=t._m.sum(), d=t.count())
        elif m == "readmission_rate":
            agg = _readmissions(c, a).rename(n="num", d="den")
        elif m == "confirmed_leads_per_1000":
            n_cases = c.group_by("hospital_id").aggregate(d=c.count())
            if inp.leads is not None:
                lead = inp.leads.filter(inp.leads.status == "confirmed")
                per = lead.group_by(l_hospital_id=lead.hospital_id).aggregate(_k=lead.count())
                j = n_cases.left_join(per, n_cases.hospital_id == per.l_hospital_id)
                agg = j.select("hospital_id", n=j._k.fill_null(0) * 1000, d=j.d)
            else:
                agg = n_cases.select("hospital_id", n=ibis.literal(0, type="int64"), d="d")
        elif m == "cost_growth_per_case":
            now = c.group_by("hospital_id").aggregate(c1=c.total_cost.sum(), n1=c.count())
            p = inp.previous_cases  # type: ignore[union-attr]
            before = p.group_by(p_hospital_id=p.hospital_id).aggregate(
                c0=p.total_cost.sum(), n0=p.count()
            )
            j = now.join(before, now.hospital_id == before.p_hospital_id)
            j = j.filter(j.c0 > 0)
            agg = j.select(
                "hospital_id",
                n=big(j.c1) * big(j.n0) - big(j.c0) * big(j.n1),
                d=big(j.c0) * big(j.n1),
            )
        elif m == "selfpay_share":
            agg = c.group_by("hospital_id").aggregate(
                n=c.personal_selfpay.fill_null(0).sum(), d=c.total_cost.sum()
            )
        elif m == "basic_group_share":
            t = cg.filter(cg.group_type.notnull() & (cg.group_type != "unmatched"))
            t = t.mutate(_b=(t.group_type == "basic").cast("int64"))
            agg = t.group_by("hospital_id").aggregate(n=t._b.sum(), d=t.count())
        else:  # pragma: no cover - the policy model lists every measure
            raise AssessmentError(f"未知的考核指标 {m}")
        parts.append(_ratio_rows(agg, m, agg.n, agg.d))
    return ibis.union(*parts)


def indicator_table(a: AssessmentPolicy) -> pa.Table:
    """The scorecard as rows of exact integers (weights in 10**-4, fractions p/q)."""
    rows = []
    for i, ind in enumerate(a.indicators):
        try:
            w4 = scaled(ind.weight, 4)
        except ValueError as exc:
            raise AssessmentError(
                f"assessment.indicators[{i}].weight 最多 4 位小数（当前 {ind.weight}）"
            ) from exc
        tp, tq = ratio(ind.target)
        zp, zq = ratio(ind.zero_at)
        for level in ind.levels:
            rows.append(
                {
                    "indicator": ind.id,
                    "indicator_order": i,
                    "indicator_name": ind.label,
                    "measure": ind.measure,
                    "i_level": level,
                    "weight": ind.weight,
                    "target": ind.target,
                    "zero_at": ind.zero_at,
                    "w4": w4,
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
                ("indicator", pa.string()),
                ("indicator_order", pa.int32()),
                ("indicator_name", pa.string()),
                ("measure", pa.string()),
                ("i_level", pa.string()),
                ("weight", pa.decimal128(18, 4)),
                ("target", pa.decimal128(18, 6)),
                ("zero_at", pa.decimal128(18, 6)),
                ("w4", pa.int64()),
                ("tp", pa.int64()),
                ("tq", pa.int64()),
                ("zp", pa.int64()),
                ("zq", pa.int64()),
            ]
        ),
    )


def score_indicators(
    measures: ir.Table, hospitals: ir.Table, card: ir.Table, a: AssessmentPolicy
) -> ir.Table:
    """Rule step "indicator points": per hospital × indicator that applies to its level,
    value = num ÷ den and points = weight × clamp((value − zero_at) ÷ (target − zero_at))."""
    dec = a.decimals
    h = hospitals.select("hospital_id", "level")
    t = h.join(card, h.level == card.i_level).drop("i_level")
    t = t.join(measures, ["hospital_id", "measure"])
    t = t.filter(t.den != 0)
    # f = A / B with A = (n·zq − zp·d)·tq, B = d·(tp·zq − zp·tq); B made positive.
    zq, zp, tq, tp = (big(t[c]) for c in ("zq", "zp", "tq", "tp"))
    t = t.mutate(_a=(t.num * zq - zp * t.den) * tq, _b=t.den * (tp * zq - zp * tq))
    t = t.mutate(
        _a=ibis.ifelse(t._b < 0, -t._a, t._a).cast(HUGE),
        _b=ibis.ifelse(t._b < 0, -t._b, t._b).cast(HUGE),
    )
    scale = 10**dec
    full = div_half_up(big(t.w4) * scale, big(10**4))
    t = t.mutate(
        points_units=ibis.cases(
            (t._a <= 0, ibis.literal(0, type="int64")),
            (t._a >= t._b, full),
            else_=div_half_up(big(t.w4) * scale * t._a, t._b * 10**4),
        ),
        value=units_to_decimal(div_half_up(t.num * 10**4, t.den), 4, VALUE_T),
    )
    return t.select(
        "hospital_id",
        "level",
        "indicator",
        "indicator_order",
        "indicator_name",
        "measure",
        "value",
        "target",
        "zero_at",
        "weight",
        "w4",
        "points_units",
        points=units_to_decimal(t.points_units, dec, SCORE_T),
        numerator=t.num,
        denominator=t.den,
    )


def total_scores(points: ir.Table, a: AssessmentPolicy) -> ir.Table:
    """Rule step "total": Σ points × total_points ÷ Σ weights that apply, half up."""
    t4 = scaled(a.total_points, 4)
    s = points.group_by(["hospital_id", "level"]).aggregate(
        _p=points.points_units.sum(),
        _w=points.w4.sum(),
        indicators=points.count(),
    )
    units = div_half_up(big(s._p) * t4, big(s._w))
    return s.select(
        "hospital_id",
        "level",
        "indicators",
        assessment_score=units_to_decimal(units, a.decimals, SCORE_T),
    ).order_by("hospital_id")


@dataclass
class AssessmentResult:
    scores: pa.Table
    breakdown: pa.Table


def assess(inp: AssessmentInputs, policy: Policy) -> AssessmentResult:
    """The year's assessment under `policy.assessment` (AssessmentError if absent)."""
    a = policy.assessment
    if a is None:
        raise AssessmentError("政策文件没有年度考核评分表（assessment.indicators），无法计算考核")
    con = inp.cases._find_backend()
    from opendip.engine import table_from_arrow

    card = table_from_arrow(con, indicator_table(a), "opendip_scorecard")
    measures = measure_table(inp, a)
    hospitals = inp.hospitals.filter(inp.hospitals.hospital_id.isin(inp.cases.hospital_id))
    points = score_indicators(measures, hospitals, card, a).cache()
    scores = total_scores(points, a).to_pyarrow()
    breakdown = (
        points.order_by(["hospital_id", "indicator_order"])
        .drop("w4", "points_units", "indicator_order")
        .to_pyarrow()
    )
    return AssessmentResult(scores=scores, breakdown=breakdown)
