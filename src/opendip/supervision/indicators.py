"""Monthly indicators per hospital and for the region, with changes and anomaly flags.

Indicators (reference §6): cases, total cost, cost per case, ALOS, self-paid,
out-of-list and TCM fee (中医药费用占比 = (中药饮片 + 中成药) ÷ 总费用) shares, readmission rate (readmitted stays ÷ stays, by the readmission rule),
CMI (mean case score ÷ the directory's base score; scoring needed), high/low multiple shares
(scoring needed), 入组率 (stays in a core, comprehensive, basic or special group ÷ stays;
grouping needed). Months come from the settlement month (else the discharge date); every
period given (current and history) is reported.

Change: vs the previous month and the same month last year (relative change). Anomaly: a
robust z-score (value − median) ÷ (1.4826 × MAD) vs the hospital's own previous
`anomaly_history_months` months (at least `anomaly_min_history_months`) and, for intensive
indicators (per-case values, shares, rates), vs same-level hospitals in the same month (at
least `anomaly_min_peers` of them); flagged when |z| ≥ `anomaly_z_alert` in a hospital-month
with ≥ `anomaly_min_cases` stays.
"""

from __future__ import annotations

from decimal import Decimal

import ibis
import ibis.expr.types as ir

from opendip.policy import Policy
from opendip.scoring.exact import big, div_half_up, ratio, units_to_decimal
from opendip.supervision.readmission import readmission_pairs
from opendip.supervision.tables import INDICATOR_LABELS, INDICATORS
from opendip.supervision.text import concat, num

VALUE = "decimal(24, 6)"
GROUPED_TYPES = ("core", "comprehensive", "basic", "special")
#: Indicators comparable across hospitals of the same level (not volumes).
PEER_COMPARABLE = (
    "cost_per_case",
    "alos",
    "selfpay_share",
    "out_of_list_share",
    "tcm_fee_share",
    "readmission_rate",
    "cmi",
    "high_multiple_share",
    "low_multiple_share",
    "grouping_rate",
)
MAD_SCALE = 1.4826


def _aggregates(stays: ir.Table, policy: Policy, pairs: ir.Table | None) -> ir.Table:
    if pairs is None:
        pairs = readmission_pairs(stays, policy, current_only=False)
    pairs = pairs.select(r_case="case_id").distinct()
    t = stays.left_join(pairs, stays.case_id == pairs.r_case)
    t = t.mutate(readmit=t.r_case.notnull().cast("int64"))
    dev = t.deviation
    return t.group_by(["hospital_id", "level", "month_index"]).aggregate(
        n=t.count(),
        total=t.total_cost.sum(),
        selfpay=t.selfpay.sum(),
        oolist=t.out_of_list.sum(),
        tcm=t.tcm_fees.sum(),
        los_sum=t.los.sum(),
        los_n=t.los.count(),
        readmit=t.readmit.sum(),
        score_sum=t.case_score.sum(),
        score_n=t.case_score.count(),
        dev_n=dev.count(),
        high_n=dev.isin(("high", "extreme")).cast("int64").sum(),
        low_n=(dev == "low").cast("int64").sum(),
        g_n=t.group_type.count(),
        grouped_n=t.group_type.isin(GROUPED_TYPES).cast("int64").sum(),
    )


def _values(a: ir.Table, policy: Policy, scored: bool, grouped: bool) -> ir.Table:
    f = "float64"

    def share(num_: ir.NumericValue, den: ir.NumericValue) -> ir.NumericValue:
        return ibis.ifelse(den > 0, (num_.cast(f) / den).round(6), None).cast(VALUE)

    def money(fen: ir.NumericValue) -> ir.NumericValue:
        return fen.round().cast("int64").cast(VALUE) * ibis.literal(Decimal("0.01"), type=VALUE)

    defs: dict[str, ir.Value] = {
        "cases": a.n.cast(VALUE),
        "total_cost": money(a.total),
        "cost_per_case": money(a.total.cast(f) / a.n),
        "alos": share(a.los_sum, a.los_n),
        "selfpay_share": share(a.selfpay, a.total),
        "out_of_list_share": share(a.oolist, a.total),
        "tcm_fee_share": share(a.tcm, a.total),
        "readmission_rate": share(a.readmit, a.n),
    }
    if scored:
        # CMI = mean case score ÷ base score, rounded half up at 6 decimals in exact integer
        # arithmetic: a DOUBLE quotient rounded by each engine's own ROUND differed between
        # DuckDB and Spark by one unit of the 6th decimal at near-ties.
        base_num, base_den = ratio(policy.directory.base_score)
        score_units = big(a.score_sum.cast("decimal(38, 4)") * 10_000)
        count = ibis.ifelse(a.score_n > 0, a.score_n, 1)
        cmi_units = div_half_up(score_units * (100 * base_den), big(count) * base_num)
        defs["cmi"] = ibis.ifelse(a.score_n > 0, units_to_decimal(cmi_units, 6, VALUE), None).cast(
            VALUE
        )
        defs["high_multiple_share"] = share(a.high_n, a.dev_n)
        defs["low_multiple_share"] = share(a.low_n, a.dev_n)
    if grouped:
        defs["grouping_rate"] = share(a.grouped_n, a.g_n)
    # one row per indicator: unpivoted in one pass (a union of one select per indicator made
    # Spark read the aggregates once per indicator, in as many partitions)
    wide = a.select("scope", "hospital_id", "level", "month_index", case_count=a.n, **defs)
    long = wide.pivot_longer(list(defs), names_to="indicator", values_to="value")
    return long.select(
        "scope", "hospital_id", "level", "month_index", "indicator", "value", "case_count"
    )


def _robust(values: ir.Table, group: list[str], value: str) -> ir.Table:
    """median and MAD of `value` per `group` (two relational passes)."""
    med = values.group_by(group).aggregate(med=values[value].median(), cnt=values.count())
    j = values.join(med, group)
    mad = j.group_by(group).aggregate(mad=(j[value] - j.med).abs().median())
    return med.join(mad, group)


def _z(
    value: ir.NumericValue, med: ir.NumericValue, mad: ir.NumericValue, min_spread: float
) -> ir.NumericValue:
    scale = ibis.greatest(mad * MAD_SCALE, med.abs() * min_spread)
    return ibis.ifelse(scale > 0, ((value - med) / scale).round(3), None)


def monthly_indicators(
    stays: ir.Table,
    policy: Policy,
    scored: bool = False,
    grouped: bool = False,
    pairs: ir.Table | None = None,
) -> ir.Table:
    """The INDICATORS table as an Ibis expression (`pairs`: readmission pairs of all
    periods, when already computed)."""
    sv = policy.supervision
    # The monthly aggregates and the long table of values are small and read five times
    # below: computed once (Spark does not share common subplans; without this its plan
    # held ~100 copies of the aggregation and did not finish in 15 minutes).
    agg = _aggregates(stays, policy, pairs).cache()
    by_hospital = agg.mutate(scope=ibis.literal("hospital"))
    region = agg.group_by("month_index").aggregate(
        # sums keep the hospital rows' types (Spark widens a decimal sum of a sum again)
        **{
            c: agg[c].sum().cast(agg[c].type())
            for c in agg.columns
            if c not in ("hospital_id", "level", "month_index")
        }
    )
    region = region.mutate(
        scope=ibis.literal("region"), hospital_id=ibis.literal("*"), level=ibis.null("string")
    )
    cols = by_hospital.columns
    allrows = ibis.union(by_hospital, region.select(*cols))
    v = _values(allrows, policy, scored, grouped)
    v = v.mutate(x=v.value.cast("float64")).cache()
    key = ["scope", "hospital_id", "indicator"]

    # previous month and same month last year
    prev = v.select(*key, p_month=v.month_index + 1, prev_month_value=v.value)
    last = v.select(*key, y_month=v.month_index + 12, last_year_value=v.value)
    out = v.left_join(prev, [*key, v.month_index == prev.p_month]).drop(
        "p_month", *[f"{k}_right" for k in key]
    )
    out = out.left_join(last, [*key, out.month_index == last.y_month]).drop(
        "y_month", *[f"{k}_right" for k in key]
    )

    # own trend: the previous `anomaly_history_months` months of the same series
    hist = v.select(*[v[k].name(f"h_{k}") for k in key], h_month=v.month_index, h_x=v.x)
    cur = v.select(*key, "month_index", "x")
    pairs = cur.join(
        hist,
        [cur[k] == hist[f"h_{k}"] for k in key]
        + [
            hist.h_month < cur.month_index,
            hist.h_month >= cur.month_index - sv.anomaly_history_months,
        ],
    )
    own = _robust(pairs, [*key, "month_index"], "h_x").filter(
        lambda t: t.cnt >= sv.anomaly_min_history_months
    )
    own = own.select(
        *[own[k].name(f"o_{k}") for k in key], o_month=own.month_index, o_med=own.med, o_mad=own.mad
    )
    out = out.left_join(
        own,
        [out[k] == own[f"o_{k}"] for k in key] + [out.month_index == own.o_month],
    ).drop(*[f"o_{k}" for k in key], "o_month")

    # peers: same level, same month, hospitals with enough cases
    peer_src = v.filter(
        (v.scope == "hospital")
        & v.indicator.isin(PEER_COMPARABLE)
        & (v.case_count >= sv.anomaly_min_cases)
        & v.x.notnull()
    )
    peer = _robust(peer_src, ["level", "month_index", "indicator"], "x").filter(
        lambda t: t.cnt >= sv.anomaly_min_peers
    )
    peer = peer.select(
        p_level=peer.level,
        p_m=peer.month_index,
        p_ind=peer.indicator,
        p_med=peer.med,
        p_mad=peer.mad,
    )
    out = out.left_join(
        peer,
        [
            out.scope == "hospital",
            out.level == peer.p_level,
            out.month_index == peer.p_m,
            out.indicator == peer.p_ind,
        ],
    ).drop("p_level", "p_m", "p_ind")

    f = "float64"
    spread = float(sv.anomaly_min_relative_spread)
    out = out.mutate(
        mom_change=ibis.ifelse(
            out.prev_month_value != 0,
            (out.x / out.prev_month_value.cast(f) - 1).round(6),
            None,
        ),
        yoy_change=ibis.ifelse(
            out.last_year_value != 0,
            (out.x / out.last_year_value.cast(f) - 1).round(6),
            None,
        ),
        own_z=_z(out.x, out.o_med, out.o_mad, spread),
        peer_z=_z(out.x, out.p_med, out.p_mad, spread),
    )
    alert = float(sv.anomaly_z_alert)
    judged = out.case_count >= sv.anomaly_min_cases
    own_hit = judged & (out.own_z.abs() >= alert).fill_null(False)
    peer_hit = judged & (out.peer_z.abs() >= alert).fill_null(False)
    label_map = ibis.cases(*[(out.indicator == k, v) for k, v in INDICATOR_LABELS.items()])
    reason = concat(
        ibis.ifelse(
            own_hit,
            concat(
                "较本机构前期中位数 ", num(out.o_med, 4), " 偏离（z = ", num(out.own_z, 2), "）；"
            ),
            "",
        ),
        ibis.ifelse(
            peer_hit,
            concat(
                "较同级机构中位数 ", num(out.p_med, 4), " 偏离（z = ", num(out.peer_z, 2), "）；"
            ),
            "",
        ),
    )
    month = concat(
        (out.month_index // 12).cast("string"),
        "-",
        (out.month_index % 12 + 1).cast("string").lpad(2, "0"),
    )
    res = out.select(
        scope=out.scope,
        hospital_id=out.hospital_id,
        level=out.level,
        month=month,
        indicator=out.indicator,
        indicator_label=label_map,
        value=out.value,
        case_count=out.case_count.cast("int64"),
        prev_month_value=out.prev_month_value,
        last_year_value=out.last_year_value,
        mom_change=out.mom_change,
        yoy_change=out.yoy_change,
        own_z=out.own_z,
        peer_z=out.peer_z,
        anomaly=own_hit | peer_hit,
        anomaly_reason=ibis.ifelse(own_hit | peer_hit, reason, None),
    )
    order = {name: i for i, name in enumerate(INDICATOR_LABELS)}
    res = res.mutate(_o=ibis.cases(*[(res.indicator == k, i) for k, i in order.items()]))
    res = res.order_by(["scope", "hospital_id", "month", "_o"]).drop("_o")
    assert res.columns == tuple(INDICATORS.names)
    return res
