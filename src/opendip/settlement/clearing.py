"""Monthly pre-settlement (月度预结算) and annual clearing (年终清算), batch (Ibis).

Money is int64 fen; every product with a share or point value is rounded once, half up, where
it is made (`div_half_up`), and every total above that is an integer sum of rounded amounts,
so case → department → hospital → community → pool totals agree to the fen by construction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from opendip.engine import table_from_arrow
from opendip.policy import Policy, PolicyFile
from opendip.policy.sections.settlement import FFS_RULE_LABELS
from opendip.scoring.batch import (
    ScoringResult,
    amount_fen,
    point_value_column,
    point_value_units,
    score_cases,
    with_money,
)
from opendip.scoring.exact import big, div_half_up, floor_div, ratio, units_to_decimal
from opendip.scoring.inputs import to_decimal
from opendip.settlement.errors import (
    InputDataError,
    MissingParameterError,
    NoCasesError,
    SettlementError,
)
from opendip.settlement.pointvalue import (
    PoolFunds,
    budget_point_value,
    final_point_value,
    pool_funds,
)
from opendip.settlement.review_cap import check_review_cap

SCORE_T = "decimal(18, 4)"
RESULT_LABELS = {"surplus": "结余", "deficit": "超支", "balanced": "持平"}
RULE_LABELS = {**FFS_RULE_LABELS, "none": "未设结余留用/超支分担"}


@dataclass
class Inputs:
    """The tables a settlement run reads (Ibis tables on one backend) and the policy."""

    cases: ir.Table
    grouped: ir.Table
    directory: ir.Table
    hospitals: ir.Table
    policy: PolicyFile
    reviews: pa.Table | None = None
    all_case_mean_fen: int | None = None
    history: pa.Table | None = None
    #: Credit grades in force (信用评价, the previous year's rating): hospital_id, grade. The
    #: settlement's policy maps a grade to its withholding share (credit.grades) and to
    #: prepayment eligibility; hospitals without a grade get settlement.withholding_share.
    credit: pa.Table | None = None
    #: 预付金 base: the previous year's DIP payment per hospital × pool (hospital_id, pool,
    #: paid_fen, months); with policy `prepayment`, eligible hospitals are prepaid from it.
    prepayment_base: pa.Table | None = None
    #: The previous year's assessment scores (hospital_id, assessment_score), for
    #: `prepayment.min_assessment_score`.
    previous_assessment: pa.Table | None = None


@dataclass
class MonthlyResult:
    month: str
    withholding_share: Decimal
    point_values: dict[str, Decimal]
    hospitals: pa.Table
    cases: pa.Table
    not_dip: pa.Table
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class AnnualResult:
    year: int
    point_values: dict[str, Decimal]
    funds: dict[str, PoolFunds]
    hospitals: pa.Table
    departments: pa.Table
    communities: pa.Table
    pools: pa.Table
    #: The per-case result (SCORED contract, case_id order) as an engine expression: a year
    #: of a province does not fit in memory as Arrow, so it is written straight to Parquet
    #: (`opendip.settlement.output.write_case_table`); `cases` materialises it.
    case_table: ir.Table
    not_dip: pa.Table
    counts: dict[str, int] = field(default_factory=dict)
    #: Hospitals over the 特例单议 cap whose reviewed scores were settled on an override.
    review_cap_excess: list = field(default_factory=list)
    #: Prepaid hospitals × pools (预付金) without a DIP line this year: hospital_id, pool,
    #: credit_grade, prepaid_fen, recovery — nothing to net against, the whole prepayment is
    #: recovered at the clearing (counted per pool as prepaid_without_line_fen).
    prepaid_without_line: pa.Table | None = None

    @cached_property
    def cases(self) -> pa.Table:
        return self.case_table.to_pyarrow()


def _month_start(month: str) -> dt.date:
    try:
        return dt.date.fromisoformat(f"{month}-01")
    except ValueError as exc:
        raise SettlementError(f"结算月份 {month!r} 不是 YYYY-MM 格式") from exc


def _policy_on(pf: PolicyFile, when: dt.date) -> Policy:
    for start, end, pol in pf.periods():
        if start <= when <= end:
            return pol
    raise SettlementError(f"{when} 不在政策文件 {pf.source} 的生效期内")


def _score(inputs: Inputs, cases: ir.Table) -> ScoringResult:
    return score_cases(
        cases,
        inputs.grouped,
        inputs.directory,
        inputs.hospitals,
        inputs.policy,
        reviews=inputs.reviews,
        all_case_mean_fen=inputs.all_case_mean_fen,
    )


def _reviews_for(inputs: Inputs, cases: ir.Table) -> pa.Table | None:
    """Reviews restricted to the cases of this run (a review file may cover the year)."""
    if inputs.reviews is None:
        return None
    ids = cases.select("case_id").to_pyarrow().column(0)
    import pyarrow.compute as pc

    mask = pc.is_in(inputs.reviews.column("case_id").cast(pa.string()), ids.cast(pa.string()))
    return inputs.reviews.filter(mask)


def _hospital_totals(scored: ir.Table, keys: list[str]) -> ir.Table:
    return scored.group_by(keys).aggregate(
        cases=scored.count(),
        total_score=scored.settled_score.sum().cast(SCORE_T),
        dip_amount_fen=scored.dip_amount_fen.sum().cast("int64"),
        personal_share_fen=scored.personal_share_fen.sum().cast("int64"),
        fund_payable_fen=scored.fund_payable_fen.sum().cast("int64"),
        ffs_fund_fen=scored.ffs_fund_fen.sum().cast("int64"),
        total_cost_fen=scored.total_cost_fen.sum().cast("int64"),
    )


def _withhold(fund_payable: ir.IntegerValue, share: Decimal) -> ir.IntegerValue:
    """Withheld deposit: round(max(fund payable, 0) × share)."""
    sp, sq = ratio(share)
    positive = ibis.ifelse(fund_payable > 0, fund_payable, 0)
    return div_half_up(big(positive) * sp, sq)


def _with_grade(t: ir.Table, inputs: Inputs) -> ir.Table:
    """t with `credit_grade` (the hospital's grade in force; null without one)."""
    if inputs.credit is None:
        return t.mutate(credit_grade=ibis.null("string"))
    need = [c for c in ("hospital_id", "grade") if c not in inputs.credit.column_names]
    if need:
        raise InputDataError("credit", "、".join(need), "信用等级表缺少列")
    con = t._find_backend()
    credit = inputs.credit
    if "subject" in credit.column_names:  # a ratings file: the hospitals' rows
        import pyarrow.compute as pc

        credit = credit.filter(pc.equal(credit.column("subject"), "hospital"))
    g = pa.table(
        {
            "g_hospital_id": credit.column("hospital_id").cast(pa.string()),
            "credit_grade": credit.column("grade").cast(pa.string()),
        }
    )
    dup = len(set(g.column("g_hospital_id").to_pylist())) != g.num_rows
    if dup:
        raise InputDataError("credit", "hospital_id", "信用等级表中同一医疗机构出现多次")
    gt = table_from_arrow(con, g, "opendip_credit_grades")
    return t.left_join(gt, t.hospital_id == gt.g_hospital_id).drop("g_hospital_id")


def prepayments(t: ir.Table, inputs: Inputs, pol: Policy) -> ir.Table | None:
    """Rule step "prepayment" (预付金): per hospital × pool of the base, the amount disbursed at
    the start of the year (None: the policy has no prepayment or no base was given)."""
    from opendip.settlement import prepayment as pre

    if pol.prepayment is None or pol.credit is None:
        return None
    base = inputs.prepayment_base
    if base is None:  # nobody prepaid; the lines say why (prepayment_reason)
        base = pa.table(
            {
                "hospital_id": pa.array([], pa.string()),
                "pool": pa.array([], pa.string()),
                "paid_fen": pa.array([], pa.int64()),
                "months": pa.array([], pa.int64()),
            }
        )
    con = t._find_backend()
    base_ids = pa.table({"hospital_id": base.column("hospital_id").cast(pa.string())})
    ids = table_from_arrow(con, base_ids, "opendip_prepay_ids").distinct()
    grades = _with_grade(ids, inputs)
    grades = grades.select(g_hospital_id=grades.hospital_id, credit_grade=grades.credit_grade)
    return pre.prepayment_table(con, base, grades, inputs.previous_assessment, pol)


def _with_recovery(m: ir.Table, prepaid: ir.Table | None, months: dict[str, Policy]) -> ir.Table:
    """Rule step "recovery": the month's instalment, at most the month's advance (never a
    negative payment); what the months do not recover is recovered at the clearing."""
    from opendip.settlement import prepayment as pre

    if prepaid is None:
        return m.mutate(
            prepaid_fen=ibis.literal(0, type="int64"),
            prepayment_recovery_fen=ibis.literal(0, type="int64"),
        )
    p = prepaid.select(
        r_hospital_id=prepaid.hospital_id, r_pool=prepaid.pool, prepaid_fen=prepaid.prepaid_fen
    )
    m = m.left_join(p, (m.hospital_id == p.r_hospital_id) & (m.pool == p.r_pool)).drop(
        "r_hospital_id", "r_pool"
    )
    m = m.mutate(prepaid_fen=m.prepaid_fen.fill_null(0))
    due = ibis.cases(
        *[(m.settle_month == mo, pre.instalment(m.prepaid_fen, int(mo[5:7]), pol))
          for mo, pol in months.items()],
        else_=ibis.literal(0, type="int64"),
    )  # fmt: skip
    room = ibis.ifelse(m.advance_fen > 0, m.advance_fen, 0)
    return m.mutate(prepayment_recovery_fen=ibis.ifelse(due < room, due, room).cast("int64"))


def withholding_shares(pol: Policy) -> list[tuple[str | None, Decimal]]:
    """(grade, share) pairs of the policy: each credit grade's withholding share (its own,
    else settlement.withholding_share), then (None, the default) for ungraded hospitals."""
    default = pol.settlement.withholding_share
    pairs: list[tuple[str | None, Decimal]] = []
    if pol.credit is not None:
        pairs = [
            (g.grade, g.withholding_share if g.withholding_share is not None else default)
            for g in pol.credit.grades
        ]
    return [*pairs, (None, default)]


def _withheld_by_grade(t: ir.Table, pol: Policy) -> tuple[ir.IntegerValue, ir.DecimalValue]:
    """Rule step "withholding": the deposit withheld at the share of the hospital's credit
    grade (settlement.withholding_share without a grade), and that share."""
    pairs = withholding_shares(pol)
    default = pairs[-1][1]
    graded = [(t.credit_grade == g, sh) for g, sh in pairs if g is not None]
    if not graded:
        return _withhold(t.fund_payable_fen, default), ibis.literal(default, type="decimal(10, 4)")
    withheld = ibis.cases(
        *[(c, _withhold(t.fund_payable_fen, sh)) for c, sh in graded],
        else_=_withhold(t.fund_payable_fen, default),
    )
    share = ibis.cases(
        *[(c, ibis.literal(sh, type="decimal(10, 4)")) for c, sh in graded],
        else_=ibis.literal(default, type="decimal(10, 4)"),
    )
    return withheld, share


def settle_month(inputs: Inputs, month: str) -> MonthlyResult:
    """Monthly pre-settlement at the budget point value, with the withholding share in force
    on the month's first day. A month with no cases raises `NoCasesError`."""
    start = _month_start(month)
    pol = _policy_on(inputs.policy, start)
    cases = inputs.cases.filter(inputs.cases.settle_month == month)
    n = cases.count().to_pyarrow().as_py()
    if n == 0:
        raise NoCasesError(f"结算月份 {month} 没有病例，未生成月度预结算（不是金额为 0）")
    sub = Inputs(**{**inputs.__dict__, "reviews": _reviews_for(inputs, cases)})
    result = _score(sub, cases)
    pools = sorted(result.scored.select("pool").distinct().to_pyarrow().column(0).to_pylist())
    pvs = {p: budget_point_value(pol, p, inputs.history) for p in pools}
    scored = with_money(result.scored, {p: point_value_units(v) for p, v in pvs.items()})
    share = pol.settlement.withholding_share
    h = _with_grade(_hospital_totals(scored, ["hospital_id", "pool"]), inputs)
    withheld, grade_share = _withheld_by_grade(h, pol)
    h = h.mutate(withheld_fen=withheld, withholding_share=grade_share)
    h = h.mutate(advance_fen=h.fund_payable_fen - h.withheld_fen)
    h = h.mutate(settle_month=ibis.literal(month))
    h = _with_recovery(h, prepayments(h, inputs, pol), {month: pol})
    h = h.mutate(advance_paid_fen=h.advance_fen - h.prepayment_recovery_fen)
    h = h.mutate(
        point_value=ibis.cases(
            *[(h.pool == p, ibis.literal(v, type="decimal(18, 6)")) for p, v in pvs.items()],
            else_=None,
        ),
    )
    hospitals = h.select(
        "hospital_id",
        "pool",
        "settle_month",
        "credit_grade",
        "cases",
        "total_score",
        "point_value",
        "dip_amount_fen",
        "personal_share_fen",
        "fund_payable_fen",
        "withholding_share",
        "withheld_fen",
        "advance_fen",
        "prepaid_fen",
        "prepayment_recovery_fen",
        "advance_paid_fen",
        "ffs_fund_fen",
    ).order_by(["hospital_id", "pool"])
    return MonthlyResult(
        month=month,
        withholding_share=share,
        point_values=pvs,
        hospitals=hospitals.to_pyarrow(),
        cases=_contract(scored).to_pyarrow(),
        not_dip=_ordered(result.not_dip).to_pyarrow(),
        counts={"cases": n},
    )


def _ordered(t: ir.Table) -> ir.Table:
    """Rows in a total order: case id first, then every other column, so that repeated case
    ids (duplicate settlement lists, returned) are written the same way on every run."""
    return t.order_by(["case_id", *[c for c in t.columns if c != "case_id"]])


def _contract(scored: ir.Table) -> ir.Table:
    from opendip.contract.tables import SCORED

    return scored.select(*SCORED.names).order_by("case_id")


# ---------------------------------------------------------------------------------------------
# Annual clearing


#: The grain the annual clearing aggregates cases to once (`_money_totals`); hospitals,
#: departments, monthly advances and pool totals are sums over it.
MONEY_GRAIN = ["hospital_id", "pool", "department", "settle_month", "level", "community_id"]


def _money_totals(
    scored: ir.Table, final: dict[str, int], budget: dict[str, int] | None
) -> ir.Table:
    """One pass over the scored cases: each case's DIP amount at the final point value (and,
    for the monthly advances, at the budget point value), each rounded once per case, summed
    by `MONEY_GRAIN`. Every total above is an integer sum of these, so it equals the sum of
    the case table's amounts to the fen."""
    t = scored.mutate(
        _amount=amount_fen(scored.settled_score, point_value_column(scored.pool, final))
    )
    metrics = {
        "cases": t.count(),
        "total_score": t.settled_score.sum().cast(SCORE_T),
        "dip_amount_fen": t._amount.sum().cast("int64"),
        "personal_share_fen": t.personal_share_fen.sum().cast("int64"),
        "fund_payable_fen": (t._amount - t.personal_share_fen).sum().cast("int64"),
        "ffs_fund_fen": t.ffs_fund_fen.sum().cast("int64"),
        "total_cost_fen": t.total_cost_fen.sum().cast("int64"),
    }
    if budget is not None:
        b = amount_fen(t.settled_score, point_value_column(t.pool, budget))
        metrics["budget_fund_payable_fen"] = (b - t.personal_share_fen).sum().cast("int64")
    return t.group_by(MONEY_GRAIN).aggregate(**metrics).cache()


def _sum_totals(m: ir.Table, keys: list[str]) -> ir.Table:
    """`_hospital_totals` of the cases, from the money totals."""
    return m.group_by(keys).aggregate(
        cases=m.cases.sum().cast("int64"),
        total_score=m.total_score.sum().cast(SCORE_T),
        dip_amount_fen=m.dip_amount_fen.sum().cast("int64"),
        personal_share_fen=m.personal_share_fen.sum().cast("int64"),
        fund_payable_fen=m.fund_payable_fen.sum().cast("int64"),
        ffs_fund_fen=m.ffs_fund_fen.sum().cast("int64"),
        total_cost_fen=m.total_cost_fen.sum().cast("int64"),
    )


def _advances_from_months(
    inputs: Inputs, totals: ir.Table, prepaid: ir.Table | None = None
) -> ir.Table:
    """Monthly advances recomputed from this year's cases: each month at the budget point
    value with the withholding share in force that month (by credit grade), and the
    prepayment instalment each month recovers."""
    m = totals.group_by(["hospital_id", "pool", "settle_month"]).aggregate(
        fund_payable_fen=totals.budget_fund_payable_fen.sum().cast("int64")
    )
    m = _with_grade(m, inputs)
    months = sorted(m.select("settle_month").distinct().to_pyarrow().column(0).to_pylist())
    policies = {mo: _policy_on(inputs.policy, _month_start(mo)) for mo in months}
    withheld = ibis.cases(
        *[(m.settle_month == mo, _withheld_by_grade(m, p)[0]) for mo, p in policies.items()],
        else_=None,
    )
    m = m.mutate(withheld_fen=withheld)
    m = m.mutate(advance_fen=m.fund_payable_fen - m.withheld_fen)
    m = _with_recovery(m, prepaid, policies)
    return m.group_by(["hospital_id", "pool"]).aggregate(
        withheld_fen=m.withheld_fen.sum().cast("int64"),
        advances_fen=m.advance_fen.sum().cast("int64"),
        prepayment_recovered_fen=m.prepayment_recovery_fen.sum().cast("int64"),
    )


def _advances_from_file(con: Any, advances: pa.Table) -> ir.Table:
    need = ("hospital_id", "pool", "advance_fen", "withheld_fen")
    missing = [c for c in need if c not in advances.column_names]
    if missing:
        raise InputDataError("advances", "、".join(missing), "月度预付表缺少列")
    extra = (
        ["prepayment_recovery_fen"] if "prepayment_recovery_fen" in advances.column_names else []
    )
    a = table_from_arrow(con, advances.select([*need, *extra]), "opendip_advances")
    if not extra:  # an advances file without instalments: all recovered at the clearing
        a = a.mutate(prepayment_recovery_fen=ibis.literal(0, type="int64"))
    recovered = a.prepayment_recovery_fen.cast("int64").fill_null(0).sum().cast("int64")
    return a.group_by(["hospital_id", "pool"]).aggregate(
        withheld_fen=a.withheld_fen.cast("int64").sum().cast("int64"),
        advances_fen=a.advance_fen.cast("int64").sum().cast("int64"),
        prepayment_recovered_fen=recovered,
    )


def _compare_sides(t: ir.Table, pol: Policy) -> ir.Table:
    """The two amounts the FFS bands compare (policy `settlement.ffs_basis`):
    `fund`: fund payable under DIP vs fund paid by item; `total`: DIP total (fund + patients'
    share) vs total cost by item."""
    if pol.settlement.ffs_basis == "total":
        return t.mutate(compare_dip_fen=t.dip_amount_fen, compare_ffs_fen=t.total_cost_fen)
    return t.mutate(compare_dip_fen=t.fund_payable_fen, compare_ffs_fen=t.ffs_fund_fen)


RATIO_DECIMALS = 4


def _ratio_column(dip: ir.IntegerValue, ffs: ir.IntegerValue) -> ir.DecimalValue:
    """DIP side ÷ FFS side, half up to 4 decimals (shown; bands compare exactly); null when
    the FFS side is not positive."""
    units = div_half_up(big(dip) * 10**RATIO_DECIMALS, big(ffs))
    shown = units_to_decimal(units, RATIO_DECIMALS, "decimal(18, 4)")
    return ibis.ifelse(ffs > 0, shown, ibis.null("decimal(18, 4)"))


def _ffs_band(u: ir.Table, pol: Policy) -> ir.Table:
    """Rule step "FFS bands": per unit, the band its compare_dip ÷ compare_ffs ratio falls in
    and the adjustment to the fund payment that band makes (docs/money.md):
    keep_surplus: −(S − min(round(S × share), round(F × cap_share))), S = max(D − F, 0);
    pay_dip: 0; share_loss: round(max(F − D, 0) × share)."""
    d, f = u.compare_dip_fen, u.compare_ffs_fen
    surplus = big(ibis.ifelse(d > f, d - f, 0))
    loss = big(ibis.ifelse(f > d, f - d, 0))
    positive_ffs = big(ibis.ifelse(f > 0, f, 0))
    bands = pol.settlement.ffs_bands
    u = u.mutate(dip_ffs_ratio=_ratio_column(d, f))
    if not bands:
        return u.mutate(
            ffs_rule=ibis.literal("none"),
            ffs_band_label=ibis.literal("未设结余留用/超支分担"),
            unit_adjustment_fen=ibis.literal(0, type="int64"),
        )
    rules = []
    for b in bands:
        cond = ibis.literal(True)
        if b.ratio_min is not None:
            p, q = ratio(b.ratio_min)
            cond &= big(d) * q >= big(f) * p
        if b.ratio_max is not None:
            p, q = ratio(b.ratio_max)
            cond &= big(d) * q < big(f) * p
        if b.rule == "keep_surplus":
            kp, kq = ratio(b.kept_share)
            kept = div_half_up(surplus * kp, kq)
            if b.cap_share is not None:
                cp, cq = ratio(b.cap_share)
                cap = div_half_up(positive_ffs * cp, cq)
                kept = ibis.ifelse(kept > cap, cap, kept)
            amount = (big(kept) - surplus).cast("int64")
        elif b.rule == "share_loss":
            sp, sq = ratio(b.share or Decimal(0))
            amount = div_half_up(loss * sp, sq)
        else:
            amount = ibis.literal(0, type="int64")
        rules.append((cond, b.rule, b.label(), amount))
    return u.mutate(
        ffs_rule=ibis.cases(*[(c, r) for c, r, _, _ in rules], else_=None),
        ffs_band_label=ibis.cases(*[(c, lab) for c, _, lab, _ in rules], else_=None),
        unit_adjustment_fen=ibis.cases(*[(c, a) for c, _, _, a in rules], else_=None),
    )


def _allocate(members: ir.Table, units: ir.Table) -> ir.Table:
    """Share each unit's adjustment among its members in proportion to their FFS amount,
    largest remainder first (ties by hospital_id), so members sum to the unit exactly."""
    w = members.mutate(
        _weight=ibis.ifelse(members.ffs_fund_fen > 0, members.ffs_fund_fen, 0),
    )
    win = ibis.window(group_by=["unit_id", "pool"])
    w = w.mutate(_total=w._weight.sum().over(win), _n=w.count().over(win))
    w = w.mutate(
        _weight=ibis.ifelse(w._total > 0, w._weight, 1),
        _total=ibis.ifelse(w._total > 0, w._total, w._n),
    )
    j = w.join(units.select("unit_id", "pool", "unit_adjustment_fen"), ["unit_id", "pool"])
    j = j.mutate(_abs=j.unit_adjustment_fen.abs())
    j = j.mutate(_num=big(j._abs) * big(j._weight))
    j = j.mutate(_floor=floor_div(j._num, j._total))
    j = j.mutate(_rem=j._num - big(j._floor) * big(j._total))
    j = j.mutate(_left=(j._abs - j._floor.sum().over(win)))
    order = ibis.window(group_by=["unit_id", "pool"], order_by=[ibis.desc("_rem"), "hospital_id"])
    j = j.mutate(_rank=ibis.row_number().over(order))
    j = j.mutate(
        adjustment_fen=(j._floor + ibis.ifelse(j._rank < j._left, 1, 0))
        * ibis.ifelse(j.unit_adjustment_fen < 0, -1, 1)
    )
    return j.drop("_weight", "_total", "_n", "_abs", "_num", "_floor", "_rem", "_left", "_rank")


def _assessment(con: Any, assessment: pa.Table | None, pol: Policy) -> ir.Table | None:
    if assessment is None:
        return None
    score_col = next(
        (c for c in ("assessment_score", "score", "考核得分") if c in assessment.column_names), None
    )
    if "hospital_id" not in assessment.column_names or score_col is None:
        raise InputDataError("assessment", "hospital_id/assessment_score", "考核结果表缺少列")
    try:
        score = to_decimal(assessment.column(score_col), 10, 4)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputDataError("assessment", score_col, f"考核得分不是数字：{exc}") from exc
    t = pa.table(
        {
            "a_hospital_id": assessment.column("hospital_id").cast(pa.string()),
            "assessment_score": score,
        }
    )
    a = table_from_arrow(con, t, "opendip_assessment")
    bands = pol.settlement.assessment_bands
    if not bands:
        raise MissingParameterError(
            "settlement.assessment_bands",
            "提供了考核结果，但政策未规定考核得分对应的保证金返还比例",
        )
    share_p = ibis.cases(
        *[
            (
                a.assessment_score >= ibis.literal(b.min_score, type="decimal(10, 4)"),
                ratio(b.return_share)[0],
            )
            for b in bands
        ],
        else_=None,
    )
    share_q = ibis.cases(
        *[
            (
                a.assessment_score >= ibis.literal(b.min_score, type="decimal(10, 4)"),
                ratio(b.return_share)[1],
            )
            for b in bands
        ],
        else_=None,
    )
    share = ibis.cases(
        *[
            (
                a.assessment_score >= ibis.literal(b.min_score, type="decimal(10, 4)"),
                ibis.literal(b.return_share, type="decimal(10, 4)"),
            )
            for b in bands
        ],
        else_=None,
    )
    return a.mutate(_rp=share_p, _rq=share_q, return_share=share)


def _ffs_comparison(h: ir.Table, pol: Policy) -> tuple[ir.Table, ir.Table]:
    """Hospitals × pool with the unit's band and its share of the unit's adjustment; and the
    units (hospital, or 医共体 when `community_netting`) with their comparison."""
    netting = pol.settlement.community_netting
    unit_id = h.community_id.fill_null(h.hospital_id) if netting else h.hospital_id
    unit_kind = (
        ibis.ifelse(h.community_id.notnull(), "community", "hospital")
        if netting
        else ibis.literal("hospital")
    )
    h = _compare_sides(h.mutate(unit_id=unit_id, unit_kind=unit_kind), pol)
    units = h.group_by(["unit_id", "unit_kind", "pool"]).aggregate(
        members=h.count(),
        fund_payable_fen=h.fund_payable_fen.sum().cast("int64"),
        ffs_fund_fen=h.ffs_fund_fen.sum().cast("int64"),
        compare_dip_fen=h.compare_dip_fen.sum().cast("int64"),
        compare_ffs_fen=h.compare_ffs_fen.sum().cast("int64"),
    )
    units = _ffs_band(units, pol)
    bad = units.filter(units.ffs_rule.isnull())
    n_bad = bad.count().to_pyarrow().as_py()
    if n_bad:
        raise MissingParameterError(
            "settlement.ffs_bands",
            f"{n_bad} 个结算单元的 DIP/按项目比值不在任何分段内（例如 "
            f"{'、'.join(bad.select('unit_id').limit(5).to_pyarrow().column(0).to_pylist())}）",
        )
    units = units.mutate(adjusted_fen=units.fund_payable_fen + units.unit_adjustment_fen)
    h = _allocate(h, units)
    h = h.join(
        units.select("unit_id", "pool", "ffs_rule", "ffs_band_label", "dip_ffs_ratio"),
        ["unit_id", "pool"],
    )
    return h, units


def settle_year(
    inputs: Inputs,
    year: int,
    *,
    assessment: pa.Table | None = None,
    advances: pa.Table | None = None,
    review_cap_override: str | None = None,
) -> AnnualResult:
    """Annual clearing for `year` (cases whose settle_month is in that year). Accepted
    special reviews beyond `scoring.special_review_max_share` are refused (ReviewCapError)
    unless `review_cap_override` gives the agency's reason."""
    pf = inputs.policy
    final = pf.periods()[-1][2]
    if final.year != year:
        raise SettlementError(f"政策文件 {pf.source} 是 {final.year} 年度的，不能清算 {year} 年")
    con = inputs.cases._find_backend()
    cases = inputs.cases.filter(inputs.cases.settle_month.startswith(f"{year}-"))
    n = cases.count().to_pyarrow().as_py()
    if n == 0:
        raise NoCasesError(f"{year} 年没有结算病例，未进行年终清算")
    sub = Inputs(**{**inputs.__dict__, "reviews": _reviews_for(inputs, cases)})
    share = final.scoring.special_review_max_share
    cap_excess = check_review_cap(cases, sub.reviews, share, year, review_cap_override)
    result = _score(sub, cases)
    scored = result.scored

    pool_rows = (
        scored.group_by("pool")
        .aggregate(
            n=scored.count(),
            score=scored.settled_score.sum().cast(SCORE_T),
            personal=scored.personal_share_fen.sum().cast("int64"),
        )
        .to_pyarrow()
        .to_pylist()
    )
    # Unmatched cases paid by item (QC returns are not paid until corrected).
    nd = result.not_dip.filter(result.not_dip.status == "按项目付费")
    non_dip = {
        r["pool"]: (r["n"], r["ffs"])
        for r in nd.group_by("pool")
        .aggregate(n=nd.count(), ffs=nd.ffs_fund_fen.fill_null(0).sum().cast("int64"))
        .to_pyarrow()
        .to_pylist()
    }
    funds: dict[str, PoolFunds] = {}
    pvs: dict[str, Decimal] = {}
    targets: dict[str, Decimal] = {}
    for r in pool_rows:
        pool = r["pool"]
        funds[pool] = pool_funds(final, pool, non_dip.get(pool, (0, 0))[1] or 0)
        pvs[pool], targets[pool] = final_point_value(final, funds[pool], r["score"], r["personal"])
    # Money is computed per case in one pass and aggregated once (`_money_totals`); the
    # per-case table computes it again as it streams to Parquet (never cached).
    final_units = {p: point_value_units(v) for p, v in pvs.items()}
    money = with_money(scored, final_units)
    budget_units = None
    if advances is None:
        budget_units = {
            p: point_value_units(
                budget_point_value(_policy_on(pf, dt.date(year, 1, 1)), p, inputs.history)
            )
            for p in pvs
        }
    totals = _money_totals(scored, final_units, budget_units)

    # Per hospital × pool.
    h = _sum_totals(totals, ["hospital_id", "pool"])
    hinfo = totals.select("hospital_id", "level", "community_id").distinct()
    h = _with_grade(h.join(hinfo, "hospital_id"), inputs)
    # Rule step "prepayment": disbursed at the start of the year by the policy in force on
    # 1 January (eligibility by last year's credit grade and assessment).
    first = _policy_on(pf, dt.date(year, 1, 1))
    prepaid = prepayments(h, inputs, first)
    if prepaid is not None:
        # A few rows read by the advances, the recovery and the hospital lines: computed
        # once (its expression is large; each reader would otherwise compile and run it).
        prepaid = prepaid.cache()
    from opendip.settlement.prepayment import REASONS as pre_reasons

    if advances is not None:
        adv = _advances_from_file(con, advances)
    else:
        adv = _advances_from_months(inputs, totals, prepaid)
    unknown_adv = adv.anti_join(h, ["hospital_id", "pool"])
    n_unknown = unknown_adv.count().to_pyarrow().as_py()
    if n_unknown:
        ex = unknown_adv.select("hospital_id").limit(5).to_pyarrow().column(0).to_pylist()
        raise InputDataError(
            "advances", "hospital_id", f"{n_unknown} 个医疗机构有月度预付但本年度无 DIP 病例", ex
        )
    h = h.left_join(adv, ["hospital_id", "pool"]).drop("hospital_id_right", "pool_right")
    h = h.mutate(
        withheld_fen=h.withheld_fen.fill_null(0),
        advances_fen=h.advances_fen.fill_null(0),
        prepayment_recovered_fen=h.prepayment_recovered_fen.fill_null(0),
    )
    if prepaid is not None:
        pp = prepaid.select(
            p_hospital_id=prepaid.hospital_id,
            p_pool=prepaid.pool,
            prepaid_fen=prepaid.prepaid_fen,
            prepayment_reason=prepaid.prepayment_reason,
        )
        h = h.left_join(pp, (h.hospital_id == pp.p_hospital_id) & (h.pool == pp.p_pool))
        h = h.drop("p_hospital_id", "p_pool")
        h = h.mutate(
            prepaid_fen=h.prepaid_fen.fill_null(0),
            prepayment_reason=h.prepayment_reason.fill_null(
                pre_reasons["no_base" if inputs.prepayment_base is not None else "no_base_file"]
            ),
        )
        # Prepaid hospitals × pools without a DIP line this year: nothing to recover from;
        # reported per pool (reconciliation) so that no prepayment goes unaccounted.
        lost = prepaid.filter(prepaid.prepaid_fen > 0).anti_join(h, ["hospital_id", "pool"])
        lost_rows = (
            lost.select(
                "hospital_id",
                "pool",
                "credit_grade",
                "prepaid_fen",
                recovery=ibis.literal("本年无 DIP 病例，无月度预付可扣，清算时全额收回"),
            )
            .order_by(["hospital_id", "pool"])
            .to_pyarrow()
        )
        without_line: dict[str, int] = {}
        for r in lost_rows.to_pylist():
            without_line[r["pool"]] = without_line.get(r["pool"], 0) + int(r["prepaid_fen"])
    else:
        without_line = {}
        lost_rows = None
        h = h.mutate(
            prepaid_fen=ibis.literal(0, type="int64"),
            prepayment_reason=ibis.literal("政策未设预付金"),
        )

    # Rule step "FFS comparison": per unit (hospital, or 医共体 when the policy nets
    # communities), the band of DIP ÷ FFS on the policy's basis, shared among members.
    h, units = _ffs_comparison(h, final)
    h, units = h.cache(), units.cache()  # hospitals × pools: small, read several times

    # Assessment: return the withheld deposit by the policy's bands; without scores, what
    # the policy says (settlement.deposit_without_assessment).
    no_scores = final.settlement.deposit_without_assessment
    default_score = assessment is None and no_scores == "default_score"
    if default_score:
        ids = h.select("hospital_id").distinct().to_pyarrow().column(0)
        assessment = pa.table(
            {
                "hospital_id": ids,
                "assessment_score": pa.array(
                    [final.settlement.default_assessment_score] * len(ids), pa.decimal128(10, 4)
                ),
            }
        )
    a = _assessment(con, assessment, final)
    if a is not None:
        h = h.left_join(a, h.hospital_id == a.a_hospital_id).drop("a_hospital_id")
        missing = h.filter(h.assessment_score.isnull() & (h.withheld_fen > 0))
        n_missing = missing.count().to_pyarrow().as_py()
        if n_missing:
            ex = (
                missing.select("hospital_id").distinct().limit(5).to_pyarrow().column(0).to_pylist()
            )
            raise InputDataError(
                "assessment", "hospital_id", f"{n_missing} 行医疗机构有质量保证金但无考核得分", ex
            )
        h = h.mutate(
            returned_fen=div_half_up(
                big(h.withheld_fen) * big(h._rp.fill_null(0)), big(h._rq.fill_null(1))
            ),
            assessment_status=ibis.literal(
                f"未提供考核结果，按政策默认考核得分 {final.settlement.default_assessment_score} 返还"
                if default_score
                else "按考核得分返还"
            ),
        ).drop("_rp", "_rq")
    elif no_scores == "return_all":
        h = h.mutate(
            assessment_score=ibis.null("decimal(10, 4)"),
            return_share=ibis.literal(Decimal(1), type="decimal(10, 4)"),
            returned_fen=h.withheld_fen,
            assessment_status=ibis.literal("未提供考核结果，按政策全额返还质量保证金"),
        )
    else:
        h = h.mutate(
            assessment_score=ibis.null("decimal(10, 4)"),
            return_share=ibis.null("decimal(10, 4)"),
            returned_fen=ibis.literal(0, type="int64"),
            assessment_status=ibis.literal("未提供考核结果，按政策质量保证金暂不返还"),
        )
    h = h.mutate(
        adjusted_fen=h.fund_payable_fen + h.adjustment_fen,
        deposit_deducted_fen=h.withheld_fen - h.returned_fen,
        dip_minus_ffs_fen=h.compare_dip_fen - h.compare_ffs_fen,
    )
    h = h.mutate(
        clearing_total_fen=h.adjusted_fen - h.deposit_deducted_fen,
        result=ibis.cases(
            (h.dip_minus_ffs_fen > 0, "surplus"),
            (h.dip_minus_ffs_fen < 0, "deficit"),
            else_="balanced",
        ),
    )
    # 预付金 not recovered from the monthly advances is recovered at the clearing.
    h = h.mutate(prepayment_outstanding_fen=h.prepaid_fen - h.prepayment_recovered_fen)
    h = h.mutate(
        clearing_payment_fen=h.clearing_total_fen - h.advances_fen - h.prepayment_outstanding_fen
    )
    h = h.mutate(
        point_value=ibis.cases(
            *[(h.pool == p, ibis.literal(v, type="decimal(18, 6)")) for p, v in pvs.items()],
            else_=None,
        )
    )
    hospitals = h.select(*HOSPITAL_COLUMNS).order_by(["hospital_id", "pool"]).to_pyarrow()

    d = _compare_sides(_sum_totals(totals, ["hospital_id", "department", "pool"]), final)
    d = d.mutate(dip_minus_ffs_fen=d.compare_dip_fen - d.compare_ffs_fen)
    d = d.mutate(
        result=ibis.cases(
            (d.dip_minus_ffs_fen > 0, "surplus"),
            (d.dip_minus_ffs_fen < 0, "deficit"),
            else_="balanced",
        )
    )
    departments = d.order_by(["hospital_id", "department", "pool"]).to_pyarrow()
    communities = units.order_by(["unit_id", "pool"]).to_pyarrow()
    case_totals = {
        r["pool"]: r
        for r in totals.group_by("pool")
        .aggregate(
            cases=totals.cases.sum().cast("int64"),
            dip=totals.dip_amount_fen.sum().cast("int64"),
            score=totals.total_score.sum().cast(SCORE_T),
        )
        .to_pyarrow()
        .to_pylist()
    }
    dip_cases = sum(int(r["cases"]) for r in case_totals.values())
    pools = _pool_table(hospitals, case_totals, funds, pvs, targets, non_dip, final, without_line)
    special = special_rule_counts(money, result.not_dip)
    return AnnualResult(
        year=year,
        point_values=pvs,
        funds=funds,
        hospitals=hospitals,
        departments=departments,
        communities=communities,
        pools=pools,
        case_table=_contract(money),
        not_dip=_ordered(result.not_dip).to_pyarrow(),
        review_cap_excess=cap_excess,
        prepaid_without_line=lost_rows,
        counts={
            "cases": n,
            "dip_cases": dip_cases,
            "not_dip_cases": n - dip_cases,
            **special,
        },
    )


def special_rule_counts(scored: ir.Table, not_dip: ir.Table) -> dict[str, int]:
    """Cases and money of the special payment rules (中医优势病种, 新技术新项目): DIP cases
    paid with a TCM advantage group or a new technology's added score (their DIP amount),
    and new-technology cases settled by item (their fee-for-service fund amount)."""
    tcm = scored.tcm_group.notnull()
    nt = scored.new_tech.notnull()
    amount = scored.dip_amount_fen.fill_null(0)
    row = (
        scored.aggregate(
            tcm_cases=tcm.cast("int64").sum(),
            tcm_dip_fen=ibis.ifelse(tcm, amount, 0).sum(),
            new_tech_cases=nt.cast("int64").sum(),
            new_tech_dip_fen=ibis.ifelse(nt, amount, 0).sum(),
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    by_item = not_dip.filter(not_dip.exemption.notnull())
    row |= (
        by_item.aggregate(
            new_tech_by_item_cases=by_item.count(),
            new_tech_by_item_ffs_fen=by_item.ffs_fund_fen.fill_null(0).sum(),
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    return {k: int(v or 0) for k, v in row.items()}


HOSPITAL_COLUMNS = (
    "hospital_id",
    "pool",
    "level",
    "community_id",
    "unit_id",
    "credit_grade",
    "cases",
    "total_score",
    "point_value",
    "dip_amount_fen",
    "personal_share_fen",
    "fund_payable_fen",
    "ffs_fund_fen",
    "total_cost_fen",
    "compare_dip_fen",
    "compare_ffs_fen",
    "dip_minus_ffs_fen",
    "result",
    "dip_ffs_ratio",
    "ffs_rule",
    "ffs_band_label",
    "adjustment_fen",
    "adjusted_fen",
    "withheld_fen",
    "assessment_score",
    "return_share",
    "returned_fen",
    "deposit_deducted_fen",
    "assessment_status",
    "clearing_total_fen",
    "advances_fen",
    "prepaid_fen",
    "prepayment_reason",
    "prepayment_recovered_fen",
    "prepayment_outstanding_fen",
    "clearing_payment_fen",
)


def reserve_flows(
    opening_fen: int, uses_fen: int, clawback_fen: int, deducted_fen: int, pol: Policy
) -> dict[str, int]:
    """The regional reserve (区域调剂金) over the clearing: opening balance (the reserve held
    back from the budget), uses (loss shared under share_loss bands), returns (surplus clawed
    back above keep_surplus caps and deposits not returned, each when the policy sends it to
    the reserve: `surplus_clawback_to`, `deducted_deposit_to`), closing balance; what is not
    returned stays in the fund (`kept_in_fund_fen`)."""
    s = pol.settlement
    to_reserve = (clawback_fen if s.surplus_clawback_to == "reserve" else 0) + (
        deducted_fen if s.deducted_deposit_to == "reserve" else 0
    )
    return {
        "reserve_opening_fen": opening_fen,
        "reserve_uses_fen": uses_fen,
        "reserve_returns_fen": to_reserve,
        "reserve_closing_fen": opening_fen - uses_fen + to_reserve,
        "reserve_balance_fen": opening_fen - uses_fen + to_reserve,
        "kept_in_fund_fen": clawback_fen + deducted_fen - to_reserve,
    }


def _pool_table(
    hospitals: pa.Table,
    case_totals: dict[str, dict[str, Any]],
    funds: dict[str, PoolFunds],
    pvs: dict[str, Decimal],
    targets: dict[str, Decimal],
    non_dip: dict[str, tuple[int, int]],
    pol: Policy,
    prepaid_without_line: dict[str, int] | None = None,
) -> pa.Table:
    """One row per pool: budget identity and the sums that must agree (Arrow compute over
    the already-aggregated hospital table and the case table)."""
    import pyarrow.compute as pc

    rows = []
    for pool in sorted(funds):
        hm = pc.equal(hospitals.column("pool"), pool)
        hs = hospitals.filter(hm)
        cs = case_totals[pool]

        def hsum(col: str, table: pa.Table = hs) -> int:
            return int(pc.sum(table.column(col)).as_py() or 0)

        adj = hs.column("adjustment_fen")
        reserve_used = int(pc.sum(pc.if_else(pc.greater(adj, 0), adj, 0)).as_py() or 0)
        cap_back = -int(pc.sum(pc.if_else(pc.less(adj, 0), adj, 0)).as_py() or 0)
        reserve = reserve_flows(
            funds[pool].reserve_fen, reserve_used, cap_back, hsum("deposit_deducted_fen"), pol
        )
        case_dip = int(cs["dip"])
        hosp_dip = hsum("dip_amount_fen")
        target_fen = int((targets[pool] * 100).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
        f = funds[pool]
        results = hs.column("result").to_pylist()
        rows.append(
            {
                "pool": pool,
                "budget_fen": f.budget_fen,
                "reserve_fen": f.reserve_fen,
                "non_dip_cases": non_dip.get(pool, (0, 0))[0],
                "non_dip_ffs_fen": non_dip.get(pool, (0, 0))[1] or 0,
                # what came out of the fund before the point value (deduct_non_dip_ffs)
                "non_dip_deducted_fen": f.non_dip_ffs_fen,
                "available_fen": f.available_fen,
                "point_value_formula": pol.settlement.point_value_formula,
                "point_value_target_fen": target_fen,
                "total_score": cs["score"],
                "point_value": pvs[pool],
                "cases": cs["cases"],
                "dip_amount_cases_fen": case_dip,
                "dip_amount_hospitals_fen": hosp_dip,
                "rounding_residual_fen": target_fen - case_dip,
                "personal_share_fen": hsum("personal_share_fen"),
                "fund_payable_fen": hsum("fund_payable_fen"),
                "ffs_fund_fen": hsum("ffs_fund_fen"),
                "ffs_basis": pol.settlement.ffs_basis,
                "reserve_used_fen": reserve_used,
                "surplus_cap_fen": cap_back,
                **reserve,
                "withheld_fen": hsum("withheld_fen"),
                "returned_fen": hsum("returned_fen"),
                "deposit_deducted_fen": hsum("deposit_deducted_fen"),
                "clearing_total_fen": hsum("clearing_total_fen"),
                "advances_fen": hsum("advances_fen"),
                "prepaid_fen": hsum("prepaid_fen"),
                "prepayment_recovered_fen": hsum("prepayment_recovered_fen"),
                "prepayment_outstanding_fen": hsum("prepayment_outstanding_fen"),
                "prepaid_without_line_fen": (prepaid_without_line or {}).get(pool, 0),
                "clearing_payment_fen": hsum("clearing_payment_fen"),
                "hospitals_in_surplus": results.count("surplus"),
                "hospitals_in_deficit": results.count("deficit"),
                "hospitals_balanced": results.count("balanced"),
                "cases_equal_hospitals": case_dip == hosp_dip,
                # what the hospitals received over the year is what they are owed: prepaid
                # + monthly advances − instalments recovered + clearing payment
                "cash_identity": hsum("prepaid_fen")
                + hsum("advances_fen")
                - hsum("prepayment_recovered_fen")
                + hsum("clearing_payment_fen")
                == hsum("clearing_total_fen"),
                "clearing_identity": hsum("clearing_total_fen")
                == hsum("fund_payable_fen")
                + reserve_used
                - cap_back
                - hsum("deposit_deducted_fen"),
            }
        )
    return pa.Table.from_pylist(rows)
