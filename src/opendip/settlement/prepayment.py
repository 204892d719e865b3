"""Annual prepayment (预付金管理), batch (Ibis): who is eligible, how much is disbursed at the
start of the year, and what each month's advance recovers (docs/money.md).

Rule steps, shared by the monthly pre-settlement and the annual clearing:
`prepayment_table` (eligibility by credit grade and assessment score; amount = round_half_up(
previous year's DIP payment × months ÷ months paid)), `recovery` (a month's instalment,
capped at the month's advance; what is not recovered by the months is recovered at the
clearing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from opendip.engine import table_from_arrow
from opendip.policy import Policy
from opendip.scoring.exact import big, div_half_up, floor_div, ratio
from opendip.scoring.inputs import to_decimal
from opendip.settlement.errors import InputDataError

BASE_COLUMNS = ("hospital_id", "pool", "paid_fen", "months")
#: Chinese reasons a hospital × pool is (not) prepaid.
REASONS = {
    "eligible": "符合预付条件",
    "no_grade": "无上年信用等级",
    "grade": "上年信用等级不享预付",
    "assessment": "上年考核得分低于预付要求",
    "no_assessment": "无上年考核得分",
    "no_base": "无上年 DIP 支付记录",
    "no_base_file": "未提供上年 DIP 支付数据，本年不预付",
}


def base_from_clearing(hospitals: pa.Table) -> pa.Table:
    """The previous year's DIP payment from its annual clearing (结算公示表 hospitals table):
    clearing_total_fen per hospital × pool over 12 months."""
    t = hospitals.group_by(["hospital_id", "pool"]).aggregate([("clearing_total_fen", "sum")])
    return pa.table(
        {
            "hospital_id": t.column("hospital_id").cast(pa.string()),
            "pool": t.column("pool").cast(pa.string()),
            "paid_fen": t.column("clearing_total_fen_sum").cast(pa.int64()),
            "months": pa.array([12] * t.num_rows, pa.int64()),
        }
    )


def base_from_cases(con: Any, cases: ir.Table) -> pa.Table:
    """The previous year's fund payment from its settlement lists (Σ fund_paid per hospital ×
    pool over the months it was paid in), where that year was not cleared by DIP."""
    c = cases.mutate(pool=cases.insurance_type)
    t = c.group_by(["hospital_id", "pool"]).aggregate(
        paid_fen=c.fund_paid.fill_null(0).sum().cast("int64"),
        months=c.settle_month.nunique().cast("int64"),
    )
    return t.order_by(["hospital_id", "pool"]).to_pyarrow()


def write_base(path: Path, clearing: Path | None = None, cases: Path | None = None) -> Path:
    """Write the 预付金 base to `path`: from last year's annual clearing (its hospitals table)
    when given, else from last year's settlement lists. The CLI and platform runs share it."""
    import pyarrow.parquet as pq

    if clearing is not None:
        base = base_from_clearing(pq.read_table(clearing))
    else:
        from opendip.engine import connect

        con = connect()
        base = base_from_cases(con, con.read_parquet(str(cases)))
    pq.write_table(base, path)
    return path


def _grade_rules(pol: Policy) -> list[tuple[str, bool]]:
    assert pol.credit is not None
    return [(g.grade, g.prepayment_eligible) for g in pol.credit.grades]


def prepayment_table(
    con: Any,
    base: pa.Table,
    grades: ir.Table,
    assessment: pa.Table | None,
    pol: Policy,
) -> ir.Table:
    """Rule step "prepayment": per hospital × pool of the base, its grade, eligibility, the
    reason and prepaid_fen = round_half_up(paid × months ÷ months paid) when eligible.
    `grades`: hospital_id → credit_grade (g_hospital_id, credit_grade)."""
    p = pol.prepayment
    assert p is not None
    missing = [c for c in BASE_COLUMNS if c not in base.column_names]
    if missing:
        raise InputDataError("prepayment_base", "、".join(missing), "上年 DIP 支付表缺少列")
    b = table_from_arrow(
        con,
        pa.table(
            {
                "hospital_id": base.column("hospital_id").cast(pa.string()),
                "pool": base.column("pool").cast(pa.string()),
                "base_paid_fen": base.column("paid_fen").cast(pa.int64()),
                "base_months": base.column("months").cast(pa.int64()),
            }
        ),
        "opendip_prepay_base",
    )
    b = b.left_join(grades, b.hospital_id == grades.g_hospital_id).drop("g_hospital_id")
    rules = _grade_rules(pol)
    grade_ok = ibis.cases(*[(b.credit_grade == g, ok) for g, ok in rules], else_=False)
    b = b.mutate(_grade_ok=grade_ok)
    if p.min_assessment_score is not None:
        if assessment is None:  # no scores given: nobody meets the score (reason shown)
            assessment = pa.table(
                {
                    "hospital_id": pa.array([], pa.string()),
                    "assessment_score": pa.array([], pa.int64()),
                }
            )
        col = next(
            (c for c in ("assessment_score", "score", "考核得分") if c in assessment.column_names),
            None,
        )
        if "hospital_id" not in assessment.column_names or col is None:
            raise InputDataError(
                "previous_assessment", "hospital_id/assessment_score", "考核结果表缺少列"
            )
        a = table_from_arrow(
            con,
            pa.table(
                {
                    "pa_hospital_id": assessment.column("hospital_id").cast(pa.string()),
                    "previous_assessment_score": to_decimal(assessment.column(col), 10, 4),
                }
            ),
            "opendip_prepay_assessment",
        )
        b = b.left_join(a, b.hospital_id == a.pa_hospital_id).drop("pa_hospital_id")
        score_ok = b.previous_assessment_score >= ibis.literal(
            p.min_assessment_score, type="decimal(10, 4)"
        )
        reason = ibis.cases(
            (b.credit_grade.isnull(), "no_grade"),
            (~b._grade_ok, "grade"),
            (b.previous_assessment_score.isnull(), "no_assessment"),
            (~score_ok, "assessment"),
            (b.base_paid_fen <= 0, "no_base"),
            else_="eligible",
        )
    else:
        b = b.mutate(previous_assessment_score=ibis.null("decimal(10, 4)"))
        reason = ibis.cases(
            (b.credit_grade.isnull(), "no_grade"),
            (~b._grade_ok, "grade"),
            (b.base_paid_fen <= 0, "no_base"),
            else_="eligible",
        )
    b = b.mutate(prepayment_status=reason)
    mp, mq = ratio(p.months)
    amount = div_half_up(big(b.base_paid_fen) * mp, big(b.base_months) * mq)
    b = b.mutate(
        prepaid_fen=ibis.ifelse(
            (b.prepayment_status == "eligible") & (b.base_months > 0),
            amount,
            ibis.literal(0, type="int64"),
        ),
        prepayment_reason=ibis.cases(
            *[(b.prepayment_status == k, v) for k, v in REASONS.items()], else_=None
        ),
    )
    return b.select(
        "hospital_id",
        "pool",
        "credit_grade",
        "previous_assessment_score",
        "base_paid_fen",
        "base_months",
        "prepayment_status",
        "prepayment_reason",
        "prepaid_fen",
    )


def instalment(prepaid: ir.IntegerValue, month_number: int, pol: Policy) -> ir.IntegerValue:
    """Rule step "instalment": the instalment due in month `month_number` (1–12): with
    `recovery: instalments`, floor(prepaid ÷ M) in each of the M months from
    `recovery_start_month`, the remainder in the last; otherwise 0."""
    p = pol.prepayment
    zero = ibis.literal(0, type="int64")
    if p is None or p.recovery != "instalments":
        return zero
    k = month_number - p.recovery_start_month + 1
    if not 1 <= k <= p.recovery_months:
        return zero
    each = floor_div(big(prepaid), big(p.recovery_months))
    if k < p.recovery_months:
        return each
    return (prepaid - each * (p.recovery_months - 1)).cast("int64")
