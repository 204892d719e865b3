"""Scoring cases (病例分值), batch: one Ibis expression per policy version, unioned.

Each case is scored by the policy version in force on its discharge date
(`PolicyFile.periods()`). Every number is computed as an exact fraction of integers and
rounded once, half up, to the policy's score decimals (see `formulas` and `exact`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from opendip.contract.tables import HOSPITAL_LEVELS, SCORED
from opendip.policy import Policy, PolicyFile
from opendip.scoring import explain as ex
from opendip.scoring import formulas as f
from opendip.scoring import special as sp_rules
from opendip.scoring.errors import InputDataError, MissingParameterError
from opendip.scoring.exact import HUGE as HUGE_T
from opendip.scoring.exact import big, decimal_to_units, div_half_up, ratio, units_to_decimal
from opendip.scoring.inputs import check_joined, joined, normalise_reviews
from opendip.scoring.params import ScoringParams, scoring_params

SCORE_T = "decimal(18, 4)"
COEF_T = "decimal(10, 4)"
PV_T = "decimal(18, 6)"
#: Point values are carried with 6 decimals (the SCORED contract's decimal(18, 6)).
PV_DECIMALS = 6

#: Columns of the wide scored table beyond the SCORED contract (used by settlement).
EXTRA_COLUMNS = (
    "group_type",
    "department",
    "settle_month",
    "discharge_date",
    "level",
    "community_id",
    "settled_units",
    "score_decimals",
)


@dataclass
class ScoringResult:
    """`scored`: DIP cases (SCORED columns + `EXTRA_COLUMNS`); `not_dip`: unmatched cases,
    paid by item outside DIP and reported; `periods`: the policy versions used."""

    scored: ir.Table
    not_dip: ir.Table
    periods: list[tuple[dt.date, dt.date, Policy]]

    def contract(self) -> ir.Table:
        """The scored cases as the SCORED contract, sorted by case_id."""
        return self.scored.select(*SCORED.names).order_by("case_id")


def point_value_units(value: Decimal | None) -> int | None:
    """A point value (yuan per point) as units of 10**-6, refusing more decimals."""
    if value is None:
        return None
    units = Decimal(value).scaleb(PV_DECIMALS)
    if units != units.to_integral_value():
        raise InputDataError("policy", "point_value", f"点值 {value} 超过 {PV_DECIMALS} 位小数")
    return int(units)


def _lit(text: str) -> ir.StringValue:
    return ibis.literal(text, type="string")


def _hospital_k4(t: ir.Table, p: ScoringParams) -> ir.IntegerValue:
    level = ibis.cases(
        *[(t.level == lv, ibis.literal(c, type="int64")) for lv, c in p.level_coef4.items()],
        else_=ibis.null("int64"),
    )
    k4 = level + decimal_to_units(t.h_bonus, 4).fill_null(0)
    for _, ids, c in p.bonuses:
        k4 = k4 + ibis.ifelse(t.hospital_id.isin(sorted(ids)), c, 0)
    return k4


def _band_value(t: ir.Table, b4: ir.IntegerValue, p: ScoringParams, pick) -> ir.Value:
    cases = []
    for band in p.bands:
        cond = ibis.literal(True)
        if band.score_min is not None:
            n, d = ratio(band.score_min)
            cond &= big(b4) * d >= n * 10**4
        if band.score_max is not None:
            n, d = ratio(band.score_max)
            cond &= big(b4) * d < n * 10**4
        cases.append((cond, pick(band)))
    return ibis.cases(*cases, else_=None)


def score_period(t: ir.Table, policy: Policy, p: ScoringParams) -> ir.Table:
    """Score the (already joined) cases of one policy version (money columns left null).

    Built in stages (each `mutate` is a subquery) so that every intermediate value is named
    once: nesting the expressions would make the SQL text grow exponentially.
    """
    S = p.unit
    d = p.score_decimals
    # Rule step "special payment": the base the formulas start from (_pay_b4), its note.
    t = sp_rules.adjust_batch(t, p.special, (t.decision != "accept").fill_null(True))
    b4 = decimal_to_units(t.base_score, 4)

    # Stage 1: units, hospital coefficient, reference mean, band thresholds.
    if p.reference_mean == "score_times_factor":
        pools = sorted(p.fen_per_point)
        fpp_n = ibis.cases(*[(t.pool == q, p.fen_per_point[q][0]) for q in pools], else_=None)
        fpp_d = ibis.cases(*[(t.pool == q, p.fen_per_point[q][1]) for q in pools], else_=None)
        m_num = big(b4) * big(fpp_n)
        m_den = big(fpp_d) * 10**4
        mean_src = _lit("score_times_factor")
    elif p.reference_mean == "regional":
        m_num, m_den = big(t.d_mean), big(1)
        mean_src = _lit("regional")
    else:
        level_mean = ibis.cases(
            *[(t.level == lv, t[f"d_{lv}"]) for lv in HOSPITAL_LEVELS], else_=ibis.null("int64")
        )
        if p.level_mean_missing == "regional":
            m_num = big(level_mean.fill_null(t.d_mean))
            mean_src = ibis.ifelse(
                level_mean.isnull(),
                _lit("regional_fallback"),
                _lit("same_level"),
            )
        else:
            m_num = big(level_mean)
            mean_src = _lit("same_level")
        m_den = big(1)
    t = t.mutate(
        _a4=decimal_to_units(t.aux_coefficient, 4).fill_null(10**4),
        _k4=_hospital_k4(t, p),
        _m_num=m_num,
        _m_den=m_den,
        _mean_src=mean_src,
        _hp=big(_band_value(t, b4, p, lambda b: ibis.literal(b.high[0], type="int64"))),
        _hq=big(_band_value(t, b4, p, lambda b: ibis.literal(b.high[1], type="int64"))),
        _lp=big(_band_value(t, b4, p, lambda b: ibis.literal(b.low[0], type="int64"))),
        _lq=big(_band_value(t, b4, p, lambda b: ibis.literal(b.low[1], type="int64"))),
        _hi_incl=_band_value(t, b4, p, lambda b: ibis.literal(b.high_inclusive)),
        _lo_incl=_band_value(t, b4, p, lambda b: ibis.literal(b.low_inclusive)),
        _high_text=_band_value(t, b4, p, lambda b: _lit(b.high_text)),
        _low_text=_band_value(t, b4, p, lambda b: _lit(b.low_text)),
        _fallback=t.group_type == "fallback",
        _bed_day=(t.group_type == "special") & t.score_per_day.notnull(),
        _accepted=(t.decision == "accept").fill_null(False),
    )
    # Stage 2: adjusted base, cost ratio as a fraction.
    t = t.mutate(
        _ba=big(t._pay_b4) * big(t._a4),
        _r_num=big(t.cost) * t._m_den,
        _r_den=ibis.ifelse(t._m_num > 0, t._m_num, ibis.null(HUGE_T)),
    )
    if p.ratio_decimals is not None:
        r_num, r_den = f.rounded_ratio(t._r_num, t._r_den, p.ratio_decimals, div_half_up)
        t = t.mutate(_r_num=big(r_num), _r_den=big(r_den))
    # Stage 3: deviation kind (thresholds strict or inclusive, band by band).
    hi_l, hi_r = t._r_num * t._hq, t._hp * t._r_den
    lo_l, lo_r = t._r_num * t._lq, t._lp * t._r_den
    is_high = ibis.ifelse(t._hi_incl, f.above(hi_l, hi_r, True), f.above(hi_l, hi_r, False))
    is_low = ibis.ifelse(t._lo_incl, f.below(lo_l, lo_r, True), f.below(lo_l, lo_r, False))
    if p.extreme is not None:
        xp, xq = p.extreme
        is_extreme = f.above(t._r_num * xq, t._r_den * xp, p.extreme_inclusive)
    else:
        is_extreme = ibis.literal(False)
    t = t.mutate(
        _kind=ibis.cases(
            (t._accepted, "special_review"),
            (t._fallback, "fallback"),
            (t._bed_day, "bed_day"),
            (is_extreme, "extreme"),
            (is_high, "high"),
            (is_low, "low"),
            else_="normal",
        )
    )
    # Stage 4: the candidate case scores (units of 10**-d).
    folded = p.high_formula == "coefficient_folded"
    sp, sq = p.excess_share

    def high_fraction(rn, rd):
        if folded:
            return f.high_folded(t._ba, rn, rd, t._hp, t._hq, sp, sq, big(t._k4))
        return f.high_add_excess(t._ba, rn, rd, t._hp, t._hq, sp, sq)

    provisional_base = p.extreme_action == "provisional_base"
    # The case score of each kind as an exact fraction (num / den score points).
    fractions: dict[str, tuple] = {}
    if p.low_formula == "proportional":
        fractions["low"] = f.low_proportional(t._ba, t._r_num, t._r_den)
    else:
        fractions["low"] = f.normal(t._ba)
    fractions["normal"] = f.normal(t._ba)
    fractions["high"] = high_fraction(t._r_num, t._r_den)
    if p.extreme is not None and p.extreme_action == "cap":
        fractions["extreme"] = high_fraction(big(p.extreme[0]), big(p.extreme[1]))
    elif provisional_base:
        fractions["extreme"] = f.normal(t._ba)
    else:
        fractions["extreme"] = fractions["high"]
    fractions["bed_day"] = f.bed_day(
        big(decimal_to_units(t.score_per_day, 4)), big(t.los), big(t._a4)
    )
    if p.all_case_mean_fen:
        fp, fq = p.fallback_fraction
        bp, bq = p.base_score
        fractions["fallback"] = f.fallback(big(t.cost), fp, fq, bp, bq, p.all_case_mean_fen)
    else:
        fractions["fallback"] = (ibis.null(HUGE_T), big(1))
    t = t.mutate(
        _reviewed_u=div_half_up(decimal_to_units(t.reviewed_score, 4), 10 ** (4 - d)),
        _ratio_u=div_half_up(t._r_num * 10**4, t._r_den),
        _mean_fen=div_half_up(t._m_num, t._m_den),
    )
    fractions["special_review"] = (big(t._reviewed_u), big(S))
    kind = t._kind
    order = ["special_review", "fallback", "bed_day", "extreme", "high", "low"]
    # Only the formula of each row's kind is evaluated (CASE), not all of them.
    t = t.mutate(
        _cn=ibis.cases(
            *[(kind == k, big(fractions[k][0])) for k in order], else_=big(fractions["normal"][0])
        ),
        _cd=ibis.cases(
            *[(kind == k, big(fractions[k][1])) for k in order], else_=big(fractions["normal"][1])
        ),
        _folded_row=ibis.literal(folded)
        & ((kind == "high") | ((kind == "extreme") & ibis.literal(not provisional_base))),
        _basic_row=(t.group_type == "basic") & ibis.literal(not p.apply_to_basic),
        _review_settled=(kind == "special_review")
        & ibis.literal(p.reviewed_score_is == "settled_score"),
        _low_row=(kind == "low") & ibis.literal(not p.low_applies_coefficient),
    )
    t = t.mutate(_case_u=div_half_up(t._cn * S, t._cd))
    # Stage 5: settled score (rounded once from the exact case score, or from the rounded one).
    no_coef = t._fallback | t._basic_row | t._review_settled | t._low_row
    if p.round_case_first:
        n, dd = f.settled(big(t._case_u), big(t._k4))
    else:
        n, dd = f.settled(t._cn * S, big(t._k4))
        dd = dd * t._cd
    t = t.mutate(
        _settled_u=ibis.cases((t._folded_row | no_coef, t._case_u), else_=div_half_up(n, dd)),
        _applied_k4=ibis.ifelse(no_coef & ~t._folded_row, 10**4, t._k4),
        _personal=t.copay + t.selfpay,
    )
    # Stage 6: the explanation's facts (typed; the sentence is rendered on read).
    kind = t._kind
    body_key = body_keys(p)
    body = ibis.cases(*[(kind == k, _lit(v)) for k, v in body_key.items()], else_=_lit("normal"))
    tail = ibis.cases(
        (t._review_settled, _lit("review_settled")),
        (kind == "special_review", _lit("review_case")),
        (t._fallback, _lit("fallback")),
        (t._folded_row, _lit("folded")),
        (t._low_row, _lit("low_no_coef")),
        (t._basic_row, _lit("basic")),
        else_=_lit("coef"),
    )
    facts = policy_facts(p)
    accepted = t._accepted
    return t.select(
        case_id=t.case_id,
        hospital_id=t.hospital_id,
        pool=t.pool,
        group_code=t.group_code,
        base_score=t.base_score,
        deviation=ibis.cases((kind.isin(["fallback", "bed_day"]), "normal"), else_=kind),
        case_score=units_to_decimal(t._case_u, d, SCORE_T),
        hospital_coefficient=units_to_decimal(t._applied_k4, 4, COEF_T),
        settled_score=units_to_decimal(t._settled_u, d, SCORE_T),
        point_value=ibis.null(PV_T),
        dip_amount_fen=ibis.null("int64"),
        personal_share_fen=t._personal,
        fund_payable_fen=ibis.null("int64"),
        ffs_fund_fen=t.ffs,
        explain_body=body,
        explain_tail=tail,
        review_rejected=(t.decision == "reject").fill_null(False),
        paid_base_score=units_to_decimal(t._pay_b4, 4, SCORE_T),
        rule_note=t._rule_note,
        aux_coefficient=units_to_decimal(t._a4, 4, COEF_T),
        total_cost_fen=t.cost,
        mean_source=t._mean_src,
        mean_cost_fen=ibis.ifelse(t._m_num > 0, t._mean_fen, ibis.null("int64")).cast("int64"),
        cost_ratio=units_to_decimal(t._ratio_u, 4, SCORE_T),
        low_multiple=t._low_text,
        high_multiple=t._high_text,
        extreme_multiple=_lit_or_null(facts["extreme_multiple"]),
        excess_share=_lit_or_null(facts["excess_share"]),
        institution_coefficient=units_to_decimal(t._k4, 4, COEF_T),
        score_per_day=t.score_per_day.cast(SCORE_T),
        los_days=t.los.cast("int64"),
        fallback_fraction=_lit_or_null(facts["fallback_fraction"]),
        all_case_mean_fen=_int_or_null(facts["all_case_mean_fen"]),
        base_points=_lit_or_null(facts["base_points"]),
        group_type=t.group_type,
        department=t.department,
        settle_month=t.settle_month,
        discharge_date=t.discharge_date,
        level=t.level,
        community_id=t.community_id,
        settled_units=t._settled_u,
        score_decimals=ibis.literal(d, type="int8"),
        tcm_group=t.tcm_group,
        new_tech=t.new_tech,
        # Check flags (dropped before output).
        _bad_band=t._hp.isnull() & t.base_score.notnull() & ~t._fallback & ~t._bed_day & ~accepted,
        _bad_level=t._k4.isnull(),
        _bad_mean=t._r_den.isnull() & ~t._fallback & ~t._bed_day & ~accepted,
        _bad_los=t._bed_day & ~accepted & (t.los.isnull() | (t.los <= 0)),
        _needs_fallback_mean=t._fallback & ~accepted,
    )


def _check_point_values(scored: ir.Table, point_values: dict[str, int]) -> None:
    missing = set(
        scored.filter(~scored.pool.isin(sorted(point_values)))
        .select("pool")
        .distinct()
        .to_pyarrow()
        .column(0)
        .to_pylist()
    )
    if missing:
        raise MissingParameterError(
            f"settlement.budget.{sorted(missing)[0]}", f"统筹区 {sorted(missing)} 没有点值"
        )


def point_value_column(pool: ir.StringValue, point_values: dict[str, int]) -> ir.IntegerValue:
    """The pool's point value in units of 10**-6 yuan per point."""
    return ibis.cases(
        *[(pool == q, ibis.literal(u, type="int64")) for q, u in sorted(point_values.items())],
        else_=ibis.null("int64"),
    )


def amount_fen(settled_score: ir.DecimalValue, pv_units: ir.IntegerValue) -> ir.IntegerValue:
    """dip_amount_fen = round_half_up(settled_score × point value × 100), per case, once."""
    n, dd = f.amount_fen(big(decimal_to_units(settled_score, 4)), big(pv_units), 4, PV_DECIMALS)
    return div_half_up(n, dd)


def with_money(scored: ir.Table, point_values: dict[str, int], *, check: bool = True) -> ir.Table:
    """Fill point_value, dip_amount_fen and fund_payable_fen from the pool's point value
    (units of 10**-6 yuan per point).

    dip_amount_fen = round_half_up(settled_score × point value × 100), per case, once.
    fund_payable_fen = dip_amount_fen − personal_share_fen (may be negative).
    """
    if check:
        _check_point_values(scored, point_values)
    t = scored.mutate(_pv=point_value_column(scored.pool, point_values))
    t = t.mutate(_amount=amount_fen(t.settled_score, t._pv))
    return t.mutate(
        point_value=units_to_decimal(t._pv, PV_DECIMALS, PV_T),
        dip_amount_fen=t._amount,
        fund_payable_fen=t._amount - t.personal_share_fen,
    ).drop("_pv", "_amount")


def policy_facts(p: ScoringParams) -> dict[str, str | int | None]:
    """The explanation facts that come from the policy version (the same on every row)."""
    return {
        "extreme_multiple": p.extreme_text or None,
        "excess_share": ex_share_text(p),
        "fallback_fraction": p.fallback_text,
        "all_case_mean_fen": p.all_case_mean_fen,
        "base_points": _ratio_text(p.base_score),
    }


def _int_or_null(value: int | str | None) -> ir.IntegerValue:
    """An int64 constant on every engine: Spark types a bare integer literal as int, so it
    is written as a cast of its text."""
    if value is None:
        return ibis.null("int64")
    return ibis.literal(str(int(value))).cast("int64")


def _lit_or_null(value: object) -> ir.StringValue:
    return ibis.null("string") if value is None else _lit(str(value))


def ex_share_text(p: ScoringParams) -> str:
    return _ratio_text(p.excess_share)


def _ratio_text(r: tuple[int, int]) -> str:
    return format((Decimal(r[0]) / Decimal(r[1])).normalize(), "f")


def _fen_text(fen: int | None) -> str:
    return "" if fen is None else ex.fmt_units(fen, 2, 2)


def body_keys(p: ScoringParams) -> dict[str, str]:
    """Deviation kind → body template key, for this policy version."""
    folded = p.high_formula == "coefficient_folded"
    extreme = "extreme_cap" if p.extreme_action == "cap" else "extreme_review"
    extreme += "_folded" if folded else ""
    if p.extreme_action == "provisional_base":
        extreme = "extreme_provisional"
    return {
        "special_review": "special_review",
        "fallback": "fallback",
        "bed_day": "bed_day",
        "extreme": extreme,
        "high": "high_folded" if folded else "high",
        "low": "low" if p.low_formula == "proportional" else "low_base",
        "normal": "normal",
    }


CHECK_FLAGS = ("_bad_band", "_bad_level", "_bad_mean", "_bad_los", "_needs_fallback_mean")


def _check_scored(scored: ir.Table, versions: list[tuple[Policy, ScoringParams]]) -> None:
    for i, (policy, p) in enumerate(versions):
        dip = scored.filter(scored._part == i)
        counts = (
            dip.aggregate(**{k: dip[k].cast("int64").sum() for k in CHECK_FLAGS})
            .to_pyarrow()
            .to_pylist()[0]
        )
        when = f"{policy.effective_from} 起生效的政策版本"

        def ex_rows(flag: str, col: str = "case_id", dip: ir.Table = dip) -> list[str]:
            rows = dip.filter(dip[flag]).select(col).distinct().order_by(col).limit(5)
            return [str(v) for v in rows.to_pyarrow().column(0).to_pylist()]

        if counts["_bad_level"]:
            levels = ex_rows("_bad_level", "level")
            raise MissingParameterError(
                f"scoring.hospital_coefficient.levels.{levels[0] if levels else '?'}",
                f"{when}没有医院等级 {'、'.join(levels)} 的基本等级系数（{counts['_bad_level']:,} 例）",
            )
        if counts["_bad_band"]:
            raise MissingParameterError(
                "scoring.deviation_bands",
                f"{when}的分段未覆盖这些病种的分值（{counts['_bad_band']:,} 例，病种 "
                f"{'、'.join(ex_rows('_bad_band', 'group_code'))}）",
            )
        if counts["_bad_mean"]:
            raise InputDataError(
                "directory",
                "mean_cost_fen" if p.level_mean_missing == "regional" else "mean_cost_<level>_fen",
                f"{counts['_bad_mean']:,} 例所入病种没有可用的次均费用（为空或为 0），无法判定费用偏差",
                ex_rows("_bad_mean", "group_code"),
            )
        if counts["_bad_los"]:
            raise InputDataError(
                "cases",
                "los_days",
                f"{counts['_bad_los']:,} 例按床日付费病例住院天数为空或不大于 0",
                ex_rows("_bad_los"),
            )
        if counts["_needs_fallback_mean"] and not p.all_case_mean_fen:
            from opendip.scoring.params import require_fallback_mean

            require_fallback_mean(p)


def _western_scores(directory: ir.Table, params: list[ScoringParams]) -> dict[str, int]:
    """Scores (× 10**4) of the western surgical groups the TCM rules pay at (中西医同病同价)."""
    codes = sorted({c for p in params for c in p.special.western_codes()})
    if not codes:
        return {}
    rows = (
        directory.filter(directory.group_code.cast("string").isin(codes))
        .select(group_code=directory.group_code.cast("string"), score=directory.score)
        .to_pyarrow()
        .to_pylist()
    )
    by_code = {r["group_code"]: r for r in rows}
    out: dict[str, int] = {}
    for p in params:
        out.update(sp_rules.western_scores(p.special, by_code))
    return out


def duplicate_ids(cases: ir.Table, grouped: ir.Table) -> ir.Table:
    """Case ids (string) listed more than once in the cases or in the grouped table (an id
    twice in the grouped table counts too: its cases may be split across months)."""
    ids = cases.select(
        case_id=cases.case_id.cast("string"),
        _in_cases=ibis.literal(1, type="int64"),
        _in_grouped=ibis.literal(0, type="int64"),
    ).union(
        grouped.select(
            case_id=grouped.case_id.cast("string"),
            _in_cases=ibis.literal(0, type="int64"),
            _in_grouped=ibis.literal(1, type="int64"),
        )
    )
    n = ids.group_by("case_id").aggregate(
        _cases=ids._in_cases.sum(), _grouped=ids._in_grouped.sum()
    )
    return n.filter((n._cases > 1) | (n._grouped > 1)).select("case_id")


def score_cases(
    cases: ir.Table,
    grouped: ir.Table,
    directory: ir.Table,
    hospitals: ir.Table,
    policy: PolicyFile,
    *,
    reviews: pa.Table | None = None,
    point_values: dict[str, Decimal] | None = None,
    all_case_mean_fen: int | None = None,
    check: bool = True,
    materialize: bool = True,
) -> ScoringResult:
    """Score every case (batch). Raises `ScoringError` subclasses on bad input.

    `point_values` (pool → yuan per point) fills the money columns; without it they are null.
    `all_case_mean_fen` overrides `scoring.all_case_mean_yuan` (e.g. from the directory build).
    `materialize` caches the joined inputs while the scores are computed, then the scores and
    the not-DIP cases in their place, in the backend (one computation
    however many summaries are read from them).
    """
    con = cases._find_backend()
    periods = policy.periods()
    review_expr = None
    if reviews is not None:
        from opendip.engine import table_from_arrow

        review_expr = table_from_arrow(con, normalise_reviews(reviews), "opendip_reviews")
    # Rule step "duplicate settlement-list ids": an id listed twice cannot be paid twice;
    # its cases are returned (reported in not_dip), the rest is scored. Found once (one
    # aggregate over both tables, cached: a few rows) and reused by every step below.
    dup_ids = duplicate_ids(cases, grouped)
    if materialize:
        dup_ids = dup_ids.cache()
    duplicated = cases.semi_join(dup_ids, cases.case_id.cast("string") == dup_ids.case_id)
    cases = cases.anti_join(dup_ids, cases.case_id.cast("string") == dup_ids.case_id)
    grouped = grouped.anti_join(dup_ids, grouped.case_id.cast("string") == dup_ids.case_id)
    t = joined(cases, grouped, directory, hospitals, review_expr)
    if materialize:
        t = t.cache()
    if check:
        check_joined(
            t,
            cases,
            grouped,
            hospitals,
            review_expr,
            periods[0][2].pool_ids,
            [(s, e) for s, e, _ in periods],
        )
    pv_units = {k: point_value_units(v) for k, v in point_values.items()} if point_values else None
    dip = t.filter(t._dip)
    # Consecutive policy versions whose scoring parameters are equal are scored as one.
    spans: list[tuple[dt.date, dt.date, Policy, ScoringParams]] = []
    for start, end, pol in periods:
        p = scoring_params(pol, all_case_mean_fen)
        if spans and spans[-1][3] == p:
            spans[-1] = (spans[-1][0], end, spans[-1][2], p)
        else:
            spans.append((start, end, pol, p))
    western = _western_scores(directory, [p for *_, p in spans])
    versions = []
    scored = None
    by_item = None
    for i, (start, end, pol, p) in enumerate(spans):
        p = dataclasses.replace(p, special=p.special.resolved(western))
        span = dip.filter(dip.discharge_date.between(start, end))
        if p.special.by_item:
            # 新技术新项目 settled by item in their transition period: out of DIP.
            span = sp_rules.by_item_batch(span, p.special)
            exempt = span.filter(span._by_item.notnull())
            by_item = exempt if by_item is None else by_item.union(exempt)
            span = span.filter(span._by_item.isnull()).drop("_by_item")
        part = score_period(span, pol, p)
        part = part.mutate(_part=ibis.literal(i, type="int16"))
        scored = part if scored is None else scored.union(part)
        versions.append((pol, p))
    if materialize:
        scored = scored.cache()
    if check:
        _check_scored(scored, versions)
    scored = scored.drop(*CHECK_FLAGS, "_part")
    if pv_units is not None:
        scored = with_money(scored, pv_units)
    not_dip = t.filter(~t._dip).select(
        case_id=t.case_id,
        hospital_id=t.hospital_id,
        pool=t.pool,
        department=t.department,
        settle_month=t.settle_month,
        match_step=t.match_step,
        status=ibis.cases(
            (t.match_step == "qc_excluded", "质控退回"),
            (~t._money_ok, "费用数据不全退回"),
            else_="按项目付费",
        ),
        reason=t.group_reason,
        total_cost_fen=t.cost,
        personal_share_fen=t.copay + t.selfpay,
        ffs_fund_fen=t.ffs,
        exemption=ibis.null("string"),
    )
    if by_item is not None:
        not_dip = not_dip.union(
            by_item.select(
                case_id=by_item.case_id,
                hospital_id=by_item.hospital_id,
                pool=by_item.pool,
                department=by_item.department,
                settle_month=by_item.settle_month,
                match_step=by_item.match_step,
                status=ibis.literal("按项目付费"),
                reason=by_item._by_item,
                total_cost_fen=by_item.cost,
                personal_share_fen=by_item.copay + by_item.selfpay,
                ffs_fund_fen=by_item.ffs,
                exemption=ibis.literal(sp_rules.EXEMPTION_NEW_TECH),
            )
        )
    dup = duplicated.select(
        case_id=duplicated.case_id.cast("string"),
        hospital_id=duplicated.hospital_id.cast("string"),
        pool=duplicated.insurance_type.cast("string"),
        department=duplicated.department.cast("string"),
        settle_month=duplicated.settle_month.cast("string"),
        match_step=ibis.null("string"),
        status=ibis.literal("清单号重复退回"),
        reason=ibis.literal("结算清单号重复，不予结算，退回医院核对"),
        total_cost_fen=duplicated.total_cost.cast("int64"),
        personal_share_fen=(duplicated.personal_copay + duplicated.personal_selfpay).cast("int64"),
        ffs_fund_fen=duplicated.fund_paid.cast("int64"),
        exemption=ibis.null("string"),
    )
    not_dip = not_dip.union(dup)
    if materialize:
        # The joined inputs are needed no more once the scores and the not-DIP cases (a few
        # per cent) are cached: one cached copy of the cases at a time (10 M cases, §2 of
        # issue 16).
        not_dip = not_dip.cache()
        t.release()
    return ScoringResult(scored, not_dip, periods)
