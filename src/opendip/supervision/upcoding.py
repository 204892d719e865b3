"""Upcoding (高套分值 / 编码高套): three signals, each a lead per hospital × diagnosis family.

A *family* is a diagnosis category (类目) with one procedure set: the DIP groups that differ
only by the main diagnosis's subcategory (亚目).

1. Diagnosis shift: the hospital's share of the family's costliest subcategory (highest
   regional median cost among subcategories with ≥ `min_peer_cases` stays) is ≥
   `upcoding_shift_alert` × the share at same-level peer hospitals (the hospital itself
   excluded) or × its own share in the history period, with a binomial z-score ≥
   `upcoding_z_alert`. The cases listed are the hospital's stays coded to the costliest
   subcategory whose cost is lowest relative to that subcategory's typical cost, as many as
   the estimated excess (capped at `lead_max_cases`).
2. Comorbidity inflation: the mean count of comorbidities (the auxiliary directory's
   comorbidity prefixes) is ≥ `upcoding_comorbidity_ratio_alert` × peers' or own history's,
   z ≥ `upcoding_z_alert`; cases listed: comorbidity count ≥ reference mean + 2, cheapest
   first.
3. Procedures without matching cost: stays with procedures whose surgery + treatment +
   materials fees, as a share of the stay's cost, are below `upcoding_procedure_cost_ratio`
   × the regional median share for the same family (category + procedure set); one lead
   per hospital with ≥ `cluster_min_cases` such stays.

Families need ≥ `upcoding_min_cases` current stays at the hospital.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from opendip.engine import ordered_collect
from opendip.policy import Policy
from opendip.supervision.text import concat, num, pct, s, yuan


def _family_label(category: ir.StringValue, proc_key: ir.StringValue) -> ir.StringValue:
    return concat(
        "诊断类目 ",
        category,
        ibis.ifelse(proc_key == "", "（保守治疗）", concat("（手术操作 ", proc_key, "）")),
    )


def _family_key(family: ir.StringValue) -> ir.StringValue:
    """'J18|' → 'J18'; 'K35|47.0100' → 'K35:47.0100' (for lead ids)."""
    category = family.split("|")[0]
    proc_key = family.substr(family.find("|") + 1)
    return category + ibis.ifelse(proc_key == "", "", ":" + proc_key)


def _binomial_z(
    k: ir.NumericValue, n: ir.NumericValue, p: ir.NumericValue, n_ref: ir.NumericValue
) -> ir.NumericValue:
    """Two-sample z of a share k/n against a reference share p measured on n_ref stays
    (the reference's own noise counts: a small history does not make a large z)."""
    return (k / n - p) / (p * (1 - p) * (1.0 / n + 1.0 / n_ref)).sqrt()


def _rank_cases(cases: ir.Table, group: list[str], order: list, limit: ir.NumericValue) -> ir.Table:
    """Collect case ids per group, in `order`, at most `limit` (an expression) per group."""
    w = ibis.window(group_by=group, order_by=order)
    ranked = cases.mutate(_rn=ibis.row_number().over(w))
    ranked = ranked.filter(ranked._rn < limit)
    return ranked.group_by(group).aggregate(
        case_ids=ordered_collect(ranked.case_id, ranked._rn),
        listed_cost=ranked.total_cost.sum(),
    )


def diagnosis_shift_leads(stays: ir.Table, policy: Policy) -> ir.Table:
    sv = policy.supervision
    min_peer = sv.min_peer_cases
    z_alert = float(sv.upcoding_z_alert)
    alert = float(sv.upcoding_shift_alert)
    base = stays.filter(stays.los.notnull())
    sub = base.group_by(["family", "subcategory"]).aggregate(
        sub_n=base.count(), sub_cost=base.total_cost.median()
    )
    sub = sub.filter(sub.sub_n >= min_peer)
    w = ibis.window(group_by="family", order_by=[ibis.desc(sub.sub_cost), sub.subcategory])
    sub = sub.mutate(
        _rk=ibis.row_number().over(w), n_subs=sub.count().over(ibis.window(group_by="family"))
    )
    top = sub.filter((sub._rk == 0) & (sub.n_subs >= 2)).select(
        "family", top_sub=sub.subcategory, top_cost=sub.sub_cost
    )
    fam = base.group_by("family").aggregate(fam_cost=base.total_cost.median())
    # small tables read several times below are computed once (Spark does not share common
    # subplans: without this the detector's plan held many copies of the windows and joins)
    top = top.join(fam, "family").cache()
    marked = base.join(top, "family")
    marked = marked.mutate(is_top=(marked.subcategory == marked.top_sub).cast("int64"))
    agg = (
        marked.group_by(["hospital_id", "level", "family", "current"])
        .aggregate(n=marked.count(), k=marked.is_top.sum())
        .cache()
    )
    cur = agg.filter(agg.current).drop("current")
    hist = agg.filter(~agg.current).select(
        h_hosp=agg.hospital_id, h_fam=agg.family, h_n=agg.n, h_k=agg.k
    )
    lvl = cur.group_by(["level", "family"]).aggregate(l_n=cur.n.sum(), l_k=cur.k.sum())
    j = cur.join(lvl, ["level", "family"])
    j = j.left_join(hist, (j.hospital_id == hist.h_hosp) & (j.family == hist.h_fam))
    j = j.join(top, "family")
    j = j.mutate(
        share=j.k.cast("float64") / j.n,
        peer_n=j.l_n - j.n,
        peer_share=((j.l_k - j.k).cast("float64") + 0.5) / (j.l_n - j.n + 1),
        hist_share=(j.h_k.cast("float64") + 0.5) / (j.h_n + 1),
    )
    j = j.mutate(
        z_peer=ibis.ifelse(
            j.peer_n >= min_peer, _binomial_z(j.k, j.n, j.peer_share, j.peer_n), None
        ),
        z_hist=ibis.ifelse(
            j.h_n.fill_null(0) >= min_peer, _binomial_z(j.k, j.n, j.hist_share, j.h_n), None
        ),
    )
    by_peer = (j.share >= alert * j.peer_share) & (j.z_peer.fill_null(-1.0) >= z_alert)
    # a rise over the own history counts when the hospital is not below its peers as well
    by_hist = (
        (j.share >= alert * j.hist_share)
        & (j.z_hist.fill_null(-1.0) >= z_alert)
        & (j.share >= j.peer_share)
    )
    j = j.filter((j.n >= sv.upcoding_min_cases) & (by_peer | by_hist))
    ref = ibis.cases(
        (by_peer & by_hist, ibis.greatest(j.peer_share, j.hist_share)),
        (by_peer, j.peer_share),
        else_=j.hist_share,
    )
    j = j.mutate(
        by_peer=by_peer,
        by_hist=by_hist,
        excess=j.k - j.n * ref,
        score=ibis.greatest(j.z_peer.fill_null(-1.0), j.z_hist.fill_null(-1.0)),
    ).cache()
    # the cases: coded to the costliest subcategory, cheapest relative to it first
    cases = marked.filter(marked.current & (marked.is_top == 1)).select(
        "hospital_id", "family", "case_id", "total_cost", ratio=marked.total_cost / marked.top_cost
    )
    limits = j.select(
        l_hosp=j.hospital_id,
        l_fam=j.family,
        max_n=ibis.least(j.excess.ceil(), sv.lead_max_cases),
    )
    cases = cases.join(
        limits, (cases.hospital_id == limits.l_hosp) & (cases.family == limits.l_fam)
    )
    listed = _rank_cases(
        cases, ["hospital_id", "family"], [cases.ratio, cases.case_id], cases.max_n
    )
    j = j.join(listed, ["hospital_id", "family"])
    category = j.family.split("|")[0]
    proc_key = j.family.substr(j.family.find("|") + 1)
    hist_text = ibis.ifelse(
        j.h_n.fill_null(0) >= min_peer,
        concat("本院历史期 ", s(j.h_n), " 例中占 ", pct(j.h_k.cast("float64") / j.h_n),
               "（z = ", num(j.z_hist), "）"),
        "本院无足够历史数据",
    )  # fmt: skip
    peer_text = ibis.ifelse(
        j.peer_n >= min_peer,
        concat(
            "同级医院 ", s(j.peer_n), " 例中占 ", pct(j.peer_share), "（z = ", num(j.z_peer), "）"
        ),
        "同级医院病例不足",
    )
    evidence = concat(
        s(j.hospital_id), " ", _family_label(category, proc_key), "：本期 ", s(j.n), " 例中 ",
        s(j.k), " 例（", pct(j.share), "）主要诊断编码为该类目费用最高的亚目 ", j.top_sub,
        "（全区域典型费用 ", yuan(j.top_cost), " 元，类目典型费用 ", yuan(j.fam_cost), " 元）；",
        peer_text, "；", hist_text, "。估计多编码约 ", num(j.excess, 0),
        " 例；所列病例为编入该亚目但费用最低的病例。",
    )  # fmt: skip
    return j.select(
        lead_type=ibis.literal("upcoding"),
        key=concat("DX-", j.hospital_id, "-", _family_key(j.family)),
        hospital_id=j.hospital_id,
        department=ibis.null("string"),
        doctor_id=ibis.null("string"),
        case_ids=j.case_ids,
        score=j.score,
        impact_fen=(j.excess * (j.top_cost - j.fam_cost)).round().cast("int64"),
        evidence=evidence,
    )


def comorbidity_leads(stays: ir.Table, policy: Policy) -> ir.Table:
    sv = policy.supervision
    min_peer = sv.min_peer_cases
    z_alert = float(sv.upcoding_z_alert)
    ratio_alert = float(sv.upcoding_comorbidity_ratio_alert)
    levels = policy.directory.auxiliary.comorbidity_levels
    uplift = float(max((lv.coefficient for lv in levels), default=1)) - 1.0
    base = stays.filter(stays.los.notnull())
    c = base.comorbidities.cast("float64")
    agg = (
        base.group_by(["hospital_id", "level", "family", "current"])
        .aggregate(n=base.count(), c_sum=c.sum(), c_sq=(c * c).sum())
        .cache()
    )
    cur = agg.filter(agg.current).drop("current")
    hist = agg.filter(~agg.current).select(
        h_hosp=agg.hospital_id, h_fam=agg.family, h_n=agg.n, h_sum=agg.c_sum, h_sq=agg.c_sq
    )
    lvl = cur.group_by(["level", "family"]).aggregate(
        l_n=cur.n.sum(), l_sum=cur.c_sum.sum(), l_sq=cur.c_sq.sum()
    )
    j = cur.join(lvl, ["level", "family"])
    j = j.left_join(hist, (j.hospital_id == hist.h_hosp) & (j.family == hist.h_fam))
    peer_n = j.l_n - j.n
    peer_mean = (j.l_sum - j.c_sum) / peer_n
    peer_var = (j.l_sq - j.c_sq) / peer_n - peer_mean * peer_mean
    hist_mean = j.h_sum / j.h_n
    hist_var = j.h_sq / j.h_n - hist_mean * hist_mean
    own_var = j.c_sq / j.n - (j.c_sum / j.n) * (j.c_sum / j.n)
    j = j.mutate(
        mean=j.c_sum / j.n,
        own_var=ibis.greatest(own_var, 0.25),
        peer_n=peer_n,
        peer_mean=peer_mean,
        peer_var=ibis.greatest(peer_var, 0.25),
        hist_mean=hist_mean,
        hist_var=ibis.greatest(hist_var, 0.25),
    )
    # two-sample z; variances floored at 0.25 (counts that are mostly 0 or 1)
    own = j.own_var / j.n
    j = j.mutate(
        z_peer=ibis.ifelse(
            j.peer_n >= min_peer,
            (j.mean - j.peer_mean) / (own + j.peer_var / j.peer_n).sqrt(),
            None,
        ),
        z_hist=ibis.ifelse(
            j.h_n.fill_null(0) >= min_peer,
            (j.mean - j.hist_mean) / (own + j.hist_var / j.h_n).sqrt(),
            None,
        ),
    )
    by_peer = (j.mean >= ratio_alert * j.peer_mean) & (j.z_peer.fill_null(-1.0) >= z_alert)
    by_hist = (
        (j.mean >= ratio_alert * j.hist_mean)
        & (j.z_hist.fill_null(-1.0) >= z_alert)
        & (j.z_peer.fill_null(0.0) >= 1.0)
    )
    j = j.filter((j.n >= sv.upcoding_min_cases) & (by_peer | by_hist))
    ref = ibis.cases(
        (by_peer & by_hist, ibis.greatest(j.peer_mean, j.hist_mean)),
        (by_peer, j.peer_mean),
        else_=j.hist_mean,
    )
    j = j.mutate(
        ref=ref, score=ibis.greatest(j.z_peer.fill_null(-1.0), j.z_hist.fill_null(-1.0))
    ).cache()
    fam_cost = base.group_by("family").aggregate(fam_cost=base.total_cost.median())
    cases = base.filter(base.current).join(fam_cost, "family")
    refs = j.select(r_hosp=j.hospital_id, r_fam=j.family, r_mean=j.ref)
    cases = cases.join(refs, (cases.hospital_id == refs.r_hosp) & (cases.family == refs.r_fam))
    cases = cases.filter(cases.comorbidities >= cases.r_mean + 2).mutate(
        ratio=cases.total_cost / cases.fam_cost
    )
    listed = _rank_cases(
        cases,
        ["hospital_id", "family"],
        [ibis.desc(cases.comorbidities), cases.ratio, cases.case_id],
        ibis.literal(sv.lead_max_cases),
    )
    j = j.join(listed, ["hospital_id", "family"])
    category = j.family.split("|")[0]
    proc_key = j.family.substr(j.family.find("|") + 1)
    evidence = concat(
        s(j.hospital_id), " ", _family_label(category, proc_key), "：本期 ", s(j.n),
        " 例平均合并症（其他诊断）", num(j.mean, 2), " 个；同级医院 ",
        num(j.peer_mean, 2), " 个（z = ", num(j.z_peer), "）；本院历史期 ", num(j.hist_mean, 2),
        " 个（z = ", num(j.z_hist), "）。所列病例合并症数较参照多 2 个以上，按费用从低到高，",
        "合并症未伴随费用增加。",
    )  # fmt: skip
    return j.select(
        lead_type=ibis.literal("upcoding"),
        key=concat("CC-", j.hospital_id, "-", _family_key(j.family)),
        hospital_id=j.hospital_id,
        department=ibis.null("string"),
        doctor_id=ibis.null("string"),
        case_ids=j.case_ids,
        score=j.score,
        impact_fen=(j.listed_cost * uplift).round().cast("int64"),
        evidence=evidence,
    )


def unbilled_procedure_leads(stays: ir.Table, policy: Policy) -> ir.Table:
    sv = policy.supervision
    base = stays.filter(stays.los.notnull() & (stays.proc_key != "") & (stays.total_cost > 0))
    base = base.mutate(fee_share=base.procedure_fees.cast("float64") / base.total_cost)
    typ = base.group_by("family").aggregate(p_n=base.count(), p_share=base.fee_share.median())
    typ = typ.filter((typ.p_n >= sv.min_peer_cases) & (typ.p_share > 0)).cache()
    cases = base.filter(base.current).join(typ, "family")
    cases = cases.filter(
        cases.fee_share < cases.p_share * float(sv.upcoding_procedure_cost_ratio)
    ).mutate(missing=cases.p_share * cases.total_cost - cases.procedure_fees)
    g = cases.group_by("hospital_id").aggregate(
        n=cases.count(),
        missing=cases.missing.sum(),
        case_ids=ordered_collect(cases.case_id, -cases.missing, cases.case_id),
    )
    g = g.filter(g.n >= sv.cluster_min_cases)
    evidence = concat(
        s(g.hospital_id), " 本期有 ", s(g.n), " 例病例填报了手术操作，但手术费、治疗费与卫生材料费占本病例费用的比例低于",
        "全区域同诊断类目、同一手术操作组合典型比例的 ", pct(ibis.literal(float(sv.upcoding_procedure_cost_ratio)), 0),
        "，合计缺少约 ", yuan(g.missing), " 元，疑似手术操作未实际实施或高套。",
    )  # fmt: skip
    return g.select(
        lead_type=ibis.literal("upcoding"),
        key=concat("PX-", g.hospital_id),
        hospital_id=g.hospital_id,
        department=ibis.null("string"),
        doctor_id=ibis.null("string"),
        case_ids=g.case_ids[: sv.lead_max_cases],
        score=g.n.cast("float64"),
        impact_fen=g.missing.round().cast("int64"),
        evidence=evidence,
    )


def upcoding_leads(stays: ir.Table, policy: Policy) -> ir.Table:
    return ibis.union(
        diagnosis_shift_leads(stays, policy),
        comorbidity_leads(stays, policy),
        unbilled_procedure_leads(stays, policy),
    )
