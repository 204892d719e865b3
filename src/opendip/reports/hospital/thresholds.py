"""Cost/mean ratio of each case and the policy's deviation thresholds (院端临界病例).

The SCORED contract carries the deviation class but not the cost/mean ratio behind it, so
the ratio is recomputed here exactly as scoring defines it (docs/money.md): the case's
total cost ÷ the reference mean the policy names (`scoring.reference_mean`: the group's
same-level mean, its regional mean, or score × yuan per point), against the high/low
multiples of the score band of the case's base score, in the policy version in force on
the discharge date. Every threshold comes from the policy; the parameters of each policy
version become a small table joined to the cases (relational, no per-case Python).
"""

from __future__ import annotations

from decimal import Decimal

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from opendip.contract.tables import HOSPITAL_LEVELS
from opendip.policy import PolicyFile
from opendip.scoring.exact import big, decimal_to_units, div_half_up, units_to_decimal
from opendip.scoring.params import scoring_params

#: Ratios are shown with 4 decimals (as in the scoring explanation), rounded half up.
RATIO_DECIMALS = 4
RATIO_T = "decimal(18, 4)"

_PARAMS_SCHEMA = pa.schema(
    [
        ("t_start", pa.date32()),
        ("t_end", pa.date32()),
        ("t_pool", pa.string()),
        ("t_score_min", pa.decimal128(18, 4)),
        ("t_score_max", pa.decimal128(18, 4)),
        ("t_reference", pa.string()),
        ("t_level_fallback", pa.bool_()),
        ("t_fpp_num", pa.int64()),
        ("t_fpp_den", pa.int64()),
        ("t_high_num", pa.int64()),
        ("t_high_den", pa.int64()),
        ("t_low_num", pa.int64()),
        ("t_low_den", pa.int64()),
        ("t_high", pa.decimal128(18, 4)),
        ("t_low", pa.decimal128(18, 4)),
    ]
)


def threshold_table(policy: PolicyFile) -> pa.Table:
    """One row per (policy version, pool, score band): the thresholds and the mean rule."""
    rows = []
    for start, end, pol in policy.periods():
        p = scoring_params(pol)
        for pool in pol.pool_ids:
            fpp = p.fen_per_point.get(pool)
            for band in p.bands:
                rows.append(
                    {
                        "t_start": start,
                        "t_end": end,
                        "t_pool": pool,
                        "t_score_min": band.score_min,
                        "t_score_max": band.score_max,
                        "t_reference": p.reference_mean,
                        "t_level_fallback": p.level_mean_missing == "regional",
                        "t_fpp_num": fpp[0] if fpp else None,
                        "t_fpp_den": fpp[1] if fpp else None,
                        "t_high_num": band.high[0],
                        "t_high_den": band.high[1],
                        "t_low_num": band.low[0],
                        "t_low_den": band.low[1],
                        "t_high": Decimal(band.high[0]) / Decimal(band.high[1]),
                        "t_low": Decimal(band.low[0]) / Decimal(band.low[1]),
                    }
                )
    return pa.Table.from_pylist(rows, schema=_PARAMS_SCHEMA)


def with_ratio(cases: ir.Table, params: ir.Table, near_band: Decimal) -> ir.Table:
    """Add the reference mean, cost/mean ratio, thresholds and near-threshold flags.

    `cases` needs: pool, discharge_date, base_score, total_cost_fen, level, d_mean and
    d_<level> (the directory's means, fen), group_type, score_per_day, deviation.
    Added: mean_fen, ratio (decimal, 4 places), high_threshold, low_threshold,
    ratio_class (high/low/normal, or null where no ratio applies: special review,
    blank-group and bed-day cases), near_high, near_low (booleans).
    """
    t = cases.left_join(
        params,
        [
            cases.discharge_date.between(params.t_start, params.t_end),
            cases.pool == params.t_pool,
            params.t_score_min.isnull() | (cases.base_score >= params.t_score_min),
            params.t_score_max.isnull() | (cases.base_score < params.t_score_max),
        ],
    )
    level_mean = ibis.cases(
        *[(t.level == lv, t[f"d_{lv}"]) for lv in HOSPITAL_LEVELS], else_=ibis.null("int64")
    )
    level_mean = ibis.ifelse(t.t_level_fallback, level_mean.fill_null(t.d_mean), level_mean)
    b4 = decimal_to_units(t.base_score, 4)
    m_num = ibis.cases(
        (t.t_reference == "score_times_factor", big(b4) * big(t.t_fpp_num)),
        (t.t_reference == "regional", big(t.d_mean)),
        else_=big(level_mean),
    )
    m_den = ibis.cases(
        (t.t_reference == "score_times_factor", big(t.t_fpp_den) * 10**4), else_=big(1)
    )
    applies = (
        (t.deviation != "special_review")
        & (t.group_type != "fallback")
        & ~((t.group_type == "special") & t.score_per_day.notnull())
    )
    t = t.mutate(
        _m_num=ibis.ifelse(applies & (m_num > 0), m_num, ibis.null("decimal(38, 0)")),
        _m_den=m_den,
        _cost=big(t.total_cost_fen),
    )
    # r = cost·m_den / m_num; thresholds h = hp/hq, l = lp/lq, band b = bp/bq (exact).
    bp, bq = (int(x) for x in Decimal(near_band).as_integer_ratio())
    rn = t._cost * t._m_den
    hp, hq = big(t.t_high_num), big(t.t_high_den)
    lp, lq = big(t.t_low_num), big(t.t_low_den)
    above_high = rn * hq > hp * t._m_num
    below_low = rn * lq < lp * t._m_num
    near_high = ~above_high & (rn * hq * bq >= (hp * bq - hq * bp) * t._m_num)
    near_low = ~below_low & (rn * lq * bq <= (lp * bq + lq * bp) * t._m_num)
    ok = t._m_num.notnull() & t.t_high_num.notnull()
    t = t.mutate(
        mean_fen=div_half_up(t._m_num, t._m_den),
        ratio=units_to_decimal(
            div_half_up(rn * 10**RATIO_DECIMALS, t._m_num), RATIO_DECIMALS, RATIO_T
        ),
        high_threshold=t.t_high,
        low_threshold=t.t_low,
        ratio_class=ibis.cases(
            (~ok, ibis.null("string")),
            (above_high, "high"),
            (below_low, "low"),
            else_="normal",
        ),
        near_high=(ok & near_high).fill_null(False),
        near_low=(ok & near_low).fill_null(False),
    )
    return t.drop(*[c for c in t.columns if c.startswith(("t_", "_m_", "_cost"))])
