"""Scoring one case in pure Python: the same formulas, rounding and explanation as the
batch path (`batch.score_period`), for explanation screens and what-if questions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from opendip.policy import Policy, PolicyFile
from opendip.scoring import explain as ex
from opendip.scoring import formulas as f
from opendip.scoring import special as sp_rules
from opendip.scoring.batch import PV_DECIMALS, body_keys, point_value_units, policy_facts
from opendip.scoring.errors import (
    InputDataError,
    MissingParameterError,
    ReviewFileError,
    ScoringError,
)
from opendip.scoring.exact import py_div_half_up as div
from opendip.scoring.exact import ratio, scaled
from opendip.scoring.inputs import ACCEPT, REJECT
from opendip.scoring.params import (
    Band,
    ScoringParams,
    require_fallback_mean,
    require_level,
    scoring_params,
)


def _units4(value: Any) -> int | None:
    return None if value is None else scaled(Decimal(value), 4)


def _score(units: int, decimals: int) -> Decimal:
    return Decimal(units).scaleb(-decimals).quantize(Decimal("0.0001"))


def policy_for(policy: PolicyFile | Policy, when: dt.date) -> Policy:
    """The policy version in force on `when`."""
    if isinstance(policy, Policy):
        return policy
    for start, end, pol in policy.periods():
        if start <= when <= end:
            return pol
    raise InputDataError("cases", "discharge_date", f"出院日期 {when} 不在政策生效期内")


def hospital_k4(hospital: dict[str, Any], p: ScoringParams) -> int:
    level = hospital.get("level")
    if not level:
        raise InputDataError(
            "hospitals", "level", "医疗机构未填写医院等级", [str(hospital.get("hospital_id"))]
        )
    k4 = require_level(p, level) + (_units4(hospital.get("bonus_coefficient")) or 0)
    for _, ids, c in p.bonuses:
        if hospital.get("hospital_id") in ids:
            k4 += c
    return k4


def _band(p: ScoringParams, b4: int) -> Band:
    band = _band_or_none(p, b4)
    if band is None:
        raise MissingParameterError(
            "scoring.deviation_bands", f"分段未覆盖分值 {Decimal(b4).scaleb(-4)}"
        )
    return band


def _band_or_none(p: ScoringParams, b4: int) -> Band | None:
    for band in p.bands:
        ok = True
        if band.score_min is not None:
            n, d = ratio(band.score_min)
            ok &= b4 * d >= n * 10**4
        if band.score_max is not None:
            n, d = ratio(band.score_max)
            ok &= b4 * d < n * 10**4
        if ok:
            return band
    return None


#: Amounts (fen) the single-case path reads; each must be given (0 when there is none).
AMOUNT_FIELDS = ("total_cost", "fund_paid", "personal_copay", "personal_selfpay")
AMOUNT_LABELS = {
    "total_cost": "医疗总费用",
    "fund_paid": "统筹基金支付",
    "personal_copay": "个人自付",
    "personal_selfpay": "个人自费",
}


def _reference_mean(
    p: Any, row: dict[str, Any], case: dict[str, Any], b4: int | None, level: str
) -> tuple[int | None, int, str]:
    """The group's reference mean cost as a fraction (numerator fen, denominator) and its
    Chinese source, per `scoring.reference_mean` (shared by `score_case` and
    `cost_thresholds`); the source as a key of `explain.MEAN_SOURCES`."""
    mean_src = ""
    m_num: int | None
    m_den = 1
    if p.reference_mean == "score_times_factor":
        fpp = p.fen_per_point.get(case["insurance_type"])
        m_num = b4 * fpp[0] if (b4 is not None and fpp) else None
        m_den = fpp[1] * 10**4 if fpp else 1
        mean_src = "score_times_factor"
    elif p.reference_mean == "regional":
        m_num = row.get("mean_cost_fen")
        mean_src = "regional"
    else:
        m_num = row.get(f"mean_cost_{level}_fen")
        mean_src = "same_level"
        if m_num is None and p.level_mean_missing == "regional":
            m_num = row.get("mean_cost_fen")
            mean_src = "regional_fallback"
    if m_num is not None and m_num <= 0:
        m_num = None
    return m_num, m_den, mean_src


def score_case(
    case: dict[str, Any],
    grouped: dict[str, Any],
    directory_row: dict[str, Any] | None,
    hospital: dict[str, Any],
    policy: PolicyFile | Policy,
    *,
    review: dict[str, Any] | None = None,
    point_value: Decimal | None = None,
    all_case_mean_fen: int | None = None,
    directory_rows: Mapping[str, Mapping[str, Any]] | None = None,
    explain: bool = True,
) -> dict[str, Any]:
    """Score one DIP case; returns a SCORED row (dict) plus `tcm_group` and `new_tech`
    (the special payment rules applied). Unmatched cases, and a missing amount (total cost,
    fund paid, personal shares), raise InputDataError; a case settled by item as a new
    technology raises `ByItemCase` (its reason is the batch's not_dip reason).
    `directory_rows` (group code → row) gives the western groups' scores of 中西医同病同价.
    `explain=False` leaves the rendered sentence out (`explanation` is ""; the facts it is
    rendered from are in the row all the same), for callers that only show the figures."""
    missing = [c for c in AMOUNT_FIELDS if case.get(c) is None]
    if missing:
        raise InputDataError(
            "cases",
            "、".join(missing),
            "单病例计分缺少金额（分）：" + "、".join(AMOUNT_LABELS[c] for c in missing),
            [str(case.get("case_id"))],
        )
    pol = policy_for(policy, case["discharge_date"])
    p = scoring_params(pol, all_case_mean_fen)
    S, d = p.unit, p.score_decimals
    gtype = grouped["group_type"]
    if gtype == "unmatched":
        raise InputDataError("grouped", "group_type", "未入组病例不按 DIP 计分", [case["case_id"]])
    rules = p.special.resolved(sp_rules.western_scores(p.special, directory_rows or {}))
    by_item = sp_rules.new_tech_match(case, rules.by_item)
    if by_item is not None:
        raise ByItemCase(sp_rules.by_item_reason(by_item), by_item.code)
    decision = None
    if review is not None:
        raw = str(review.get("decision", "")).strip().lower()
        decision = "accept" if raw in ACCEPT else "reject" if raw in REJECT else None
        if decision is None:
            raise ReviewFileError(f"特例单议字段 decision：{raw!r} 不是 accept/reject")
    accepted, rejected = decision == "accept", decision == "reject"
    cost = int(case["total_cost"])
    base = grouped.get("base_score")
    b4 = _units4(base)
    aux = grouped.get("aux_coefficient")
    a4 = _units4(aux) if aux is not None else 10**4
    adj = sp_rules.adjust_single(case, gtype, b4, rules, not accepted)
    ba = adj.pay4 * a4 if adj.pay4 is not None else None
    k4 = hospital_k4(hospital, p)
    level = hospital["level"]
    row = directory_row or {}
    per_day = row.get("score_per_day")
    fallback = gtype == "fallback"
    bed_day = gtype == "special" and per_day is not None

    m_num, m_den, mean_src = _reference_mean(p, row, case, b4, level)
    r_num, r_den = cost * m_den, m_num
    if p.ratio_decimals is not None and r_den is not None:
        r_num, r_den = f.rounded_ratio(r_num, r_den, p.ratio_decimals, div)
    needs_mean = not (accepted or fallback or bed_day)
    # The band of the base score (a fact of every case that has one, as in the batch);
    # needed only to classify the deviation.
    band = _band_or_none(p, b4) if b4 is not None else None
    if needs_mean:
        if b4 is None:
            raise InputDataError(
                "grouped", "base_score", "已入组病例缺少病种分值", [case["case_id"]]
            )
        band = _band(p, b4)
        if r_den is None:
            raise InputDataError(
                "directory", "mean_cost_fen", "病种没有可用的次均费用", [str(grouped["group_code"])]
            )
    hp, hq = band.high if band else (0, 1)
    lp, lq = band.low if band else (0, 1)
    sp, sq = p.excess_share
    if accepted:
        kind = "special_review"
    elif fallback:
        kind = "fallback"
    elif bed_day:
        kind = "bed_day"
    elif p.extreme is not None and f.above(
        r_num * p.extreme[1], r_den * p.extreme[0], p.extreme_inclusive
    ):
        kind = "extreme"
    elif f.above(r_num * hq, hp * r_den, band.high_inclusive):
        kind = "high"
    elif f.below(r_num * lq, lp * r_den, band.low_inclusive):
        kind = "low"
    else:
        kind = "normal"
    folded = p.high_formula == "coefficient_folded"
    provisional_base = p.extreme_action == "provisional_base"

    def high_fraction(rn: int, rd: int) -> tuple[int, int]:
        if folded:
            return f.high_folded(ba, rn, rd, hp, hq, sp, sq, k4)
        return f.high_add_excess(ba, rn, rd, hp, hq, sp, sq)

    reviewed_u = None
    # The case score as an exact fraction (n / dd score points), rounded below.
    if kind == "special_review":
        reviewed_u = div(_units4(review["reviewed_score"]), 10 ** (4 - d))
        n, dd = reviewed_u, S
    elif kind == "fallback":
        mean = require_fallback_mean(p)
        n, dd = f.fallback(cost, *p.fallback_fraction, *p.base_score, mean)
    elif kind == "bed_day":
        los = case.get("los_days")
        if los is None or los <= 0:
            raise InputDataError(
                "cases", "los_days", "按床日付费病例住院天数为空或不大于 0", [case["case_id"]]
            )
        n, dd = f.bed_day(_units4(per_day), int(los), a4)
    elif kind == "extreme" and provisional_base:
        n, dd = f.normal(ba)
    elif kind == "extreme":
        rn, rd = p.extreme if p.extreme_action == "cap" else (r_num, r_den)
        n, dd = high_fraction(rn, rd)
    elif kind == "high":
        n, dd = high_fraction(r_num, r_den)
    elif kind == "low" and p.low_formula == "proportional":
        n, dd = f.low_proportional(ba, r_num, r_den)
    else:
        n, dd = f.normal(ba)
    case_u = div(n * S, dd)

    folded_row = folded and (kind == "high" or (kind == "extreme" and not provisional_base))
    basic_row = gtype == "basic" and not p.apply_to_basic
    review_settled = kind == "special_review" and p.reviewed_score_is == "settled_score"
    low_row = kind == "low" and not p.low_applies_coefficient
    no_coef = fallback or basic_row or review_settled or low_row
    applied_k4 = 10**4 if (no_coef and not folded_row) else k4
    if folded_row or no_coef:
        settled_u = case_u
    elif p.round_case_first:
        sn, sd = f.settled(case_u, k4)
        settled_u = div(sn, sd)
    else:  # rounded once: the exact case score × coefficient
        sn, sd = f.settled(n * S, k4)
        settled_u = div(sn, sd * dd)
    deviation = "normal" if kind in ("fallback", "bed_day") else kind

    if review_settled:
        tail = "review_settled"
    elif kind == "special_review":
        tail = "review_case"
    elif fallback:
        tail = "fallback"
    elif folded_row:
        tail = "folded"
    elif low_row:
        tail = "low_no_coef"
    elif basic_row:
        tail = "basic"
    else:
        tail = "coef"
    personal = int(case["personal_copay"]) + int(case["personal_selfpay"])
    amount = fund = pv = None
    if point_value is not None:
        pv_u = point_value_units(point_value)
        n, dd = f.amount_fen(settled_u * 10 ** (4 - d), pv_u, 4, PV_DECIMALS)
        amount = div(n, dd)
        fund = amount - personal
        pv = Decimal(pv_u).scaleb(-PV_DECIMALS).quantize(Decimal("0.000001"))
    los = case.get("los_days")
    out = {
        "case_id": case["case_id"],
        "hospital_id": case["hospital_id"],
        "pool": case["insurance_type"],
        "group_code": grouped.get("group_code"),
        "base_score": Decimal(base).quantize(Decimal("0.0001")) if base is not None else None,
        "deviation": deviation,
        "case_score": _score(case_u, d),
        "hospital_coefficient": _coef(applied_k4),
        "settled_score": _score(settled_u, d),
        "point_value": pv,
        "dip_amount_fen": amount,
        "personal_share_fen": personal,
        "fund_payable_fen": fund,
        "ffs_fund_fen": int(case["fund_paid"]),
        "tcm_group": adj.tcm,
        "new_tech": adj.new_tech,
        "explain_body": body_keys(p)[kind],
        "explain_tail": tail,
        "review_rejected": rejected,
        "paid_base_score": _score(adj.pay4, 4) if adj.pay4 is not None else None,
        "rule_note": adj.note,
        "aux_coefficient": _coef(a4),
        "total_cost_fen": cost,
        "mean_source": mean_src,
        "mean_cost_fen": div(m_num, m_den) if m_num is not None else None,
        "cost_ratio": _score(div(r_num * 10**4, r_den), 4) if r_den is not None else None,
        "low_multiple": band.low_text if band else None,
        "high_multiple": band.high_text if band else None,
        "institution_coefficient": _coef(k4),
        "score_per_day": _score(_units4(per_day), 4) if per_day is not None else None,
        "los_days": int(los) if los is not None else None,
        **policy_facts(p),
    }
    # The explanation, rendered from the facts exactly as a batch row's is on read.
    out["explanation"] = ex.render(out) if explain else ""
    return out


def _coef(units4: int) -> Decimal:
    return Decimal(units4).scaleb(-4).quantize(Decimal("0.0001"))


class ByItemCase(ScoringError):
    """A case using a new technology in its transition period: settled by item, not DIP
    (the batch lists it in not_dip with this reason and exemption new_technology)."""

    def __init__(self, reason: str, code: str) -> None:
        self.reason, self.code = reason, code
        super().__init__(reason)


def cost_thresholds(
    case: dict[str, Any],
    grouped: dict[str, Any],
    directory_row: dict[str, Any] | None,
    hospital: dict[str, Any],
    policy: PolicyFile | Policy,
    *,
    all_case_mean_fen: int | None = None,
) -> dict[str, Any] | None:
    """The cost a case of this group at this hospital's level is compared with: the
    reference mean and the low/high multiple thresholds (fen, half up), with the policy's
    multiples, from the same rules `score_case` uses (事中监控). None when the group has no
    band (unmatched, fallback, bed-day, no score or no mean)."""
    pol = policy_for(policy, case["discharge_date"])
    p = scoring_params(pol, all_case_mean_fen)
    if grouped.get("group_type") in (None, "unmatched", "fallback"):
        return None
    row = directory_row or {}
    if grouped.get("group_type") == "special" and row.get("score_per_day") is not None:
        return None
    b4 = _units4(grouped.get("base_score"))
    if b4 is None:
        return None
    m_num, m_den, mean_src = _reference_mean(p, row, case, b4, hospital["level"])
    if m_num is None:
        return None
    band = _band(p, b4)
    hp, hq = band.high
    lp, lq = band.low

    def fen(n: int, d: int) -> int:
        return int((Decimal(n) / Decimal(d)).quantize(Decimal(1), ROUND_HALF_UP))

    return {
        "mean_fen": fen(m_num, m_den),
        "high_fen": fen(m_num * hp, m_den * hq),
        "low_fen": fen(m_num * lp, m_den * lq),
        "high_multiple": Decimal(hp) / Decimal(hq),
        "low_multiple": Decimal(lp) / Decimal(lq),
        "mean_source": ex.MEAN_SOURCES[mean_src],
    }
