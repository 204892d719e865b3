"""All detectors → one ranked leads table (LEADS contract)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from opendip.supervision.tables import LEAD_PREFIX, LEAD_TYPES

#: Columns every detector returns.
DETECTOR_COLUMNS = (
    "lead_type",
    "key",
    "hospital_id",
    "department",
    "doctor_id",
    "case_ids",
    "score",
    "impact_fen",
    "evidence",
)
#: Share of each type's leads (by strength) labelled high, then medium; the rest low.
SEVERITY_CUTS = (0.2, 0.5)


def rank_leads(found: list[ir.Table], period: str) -> ir.Table:
    """Union detector outputs; make lead ids; drop duplicated ids; rank within and across types.

    lead_id = type prefix + natural key (the readmitted / flagged case id, or hospital and
    family/doctor/department), + '@' + the reviewed period for hospital-level leads.
    """
    t = ibis.union(*[f.select(*DETECTOR_COLUMNS) for f in found])
    case_level = t.lead_type.isin(["readmission", "low_standard_admission", "overlong_stay"])
    prefix = ibis.cases(*[(t.lead_type == k, v) for k, v in LEAD_PREFIX.items()])
    t = t.mutate(
        lead_id=prefix
        + "-"
        + t.key
        + ibis.ifelse(case_level, ibis.literal(""), ibis.literal(f"@{period}")),
        score=t.score.cast("float64").fill_null(0.0),
        impact_fen=t.impact_fen.cast("int64").fill_null(0),
    )
    # duplicated case ids (a QC defect) can give one id twice: keep the strongest
    w = ibis.window(group_by="lead_id", order_by=[ibis.desc(t.score), t.evidence])
    t = t.mutate(_dup=ibis.row_number().over(w))
    t = t.filter(t._dup == 0).drop("_dup")
    in_type = ibis.window(
        group_by="lead_type",
        order_by=[ibis.desc(t.score), ibis.desc(t.impact_fen), t.lead_id],
    )
    overall = ibis.window(order_by=[ibis.desc(t.impact_fen), ibis.desc(t.score), t.lead_id])
    t = t.mutate(
        rank_in_type=(ibis.row_number().over(in_type) + 1).cast("int32"),
        rank_overall=(ibis.row_number().over(overall) + 1).cast("int32"),
        _pr=ibis.percent_rank().over(
            ibis.window(group_by="lead_type", order_by=[ibis.desc(t.score)])
        ),
    )
    return t.select(
        lead_id=t.lead_id,
        lead_type=t.lead_type,
        type_label=ibis.cases(*[(t.lead_type == k, v) for k, v in LEAD_TYPES.items()]),
        hospital_id=t.hospital_id,
        department=t.department,
        doctor_id=t.doctor_id,
        case_ids=t.case_ids,
        case_count=t.case_ids.length().cast("int32"),
        score=t.score.round(4),
        severity=ibis.cases(
            (t._pr < SEVERITY_CUTS[0], "high"), (t._pr < SEVERITY_CUTS[1], "medium"), else_="low"
        ),
        impact_fen=t.impact_fen,
        rank_in_type=t.rank_in_type,
        rank_overall=t.rank_overall,
        evidence=t.evidence,
        status=ibis.literal("open"),
    ).order_by("rank_overall")
