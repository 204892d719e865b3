"""Property: the single-case scorer agrees with an independent re-implementation of the
policy's formulas (exact fractions, written from docs/money.md, sharing no code with
opendip.scoring), on costs steered to the thresholds: exactly at low, high and extreme
multiples of the group's mean and one fen either side, scores at the band edge (99.9999 /
100), and anywhere else. The batch path is held to the single path by test_properties.py, so
a wrong operator or formula in either path fails one of the two.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction as F
from functools import cache

import builders as b
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.profiles import examples

LEVEL_K = {"tertiary": F(1), "secondary": F(88, 100), "primary": F(75, 100), "unrated": F(7, 10)}
HOSPITALS = {  # id → (level, policy bonus): base-policy.yaml gives H001/H002 +0.02
    "H001": ("tertiary", F(2, 100)),
    "H005": ("tertiary", F(0)),
    "H010": ("secondary", F(0)),
    "H020": ("primary", F(0)),
    "H030": ("unrated", F(0)),
}

#: name → (policy overrides, oracle parameters)
VARIANTS = {
    "base": ({}, {"folded": False, "cap": False, "X": F(5), "share": F(1), "d": 4, "low": True}),
    "folded_cap": (
        {"scoring": {"high_formula": "coefficient_folded", "extreme": {"multiple": 4, "action": "cap"}}},
        {"folded": True, "cap": True, "X": F(4), "share": F(1), "d": 4, "low": True},
    ),
    "two_decimals": (
        {"scoring": {"score_decimals": 2, "high_excess_share": Decimal("0.7"), "low_formula": "base"}},
        {"folded": False, "cap": False, "X": F(5), "share": F(7, 10), "d": 2, "low": False},
    ),
}  # fmt: skip


@cache
def policy(name: str):
    return b.policy(**VARIANTS[name][0])


def half_up(x: F, places: int) -> F:
    """Round a non-negative fraction half up to `places` decimals."""
    scale = 10**places
    return F(int(x * scale + F(1, 2)), scale)


def oracle(variant: str, cost: int, mean: int, score: F, aux: F, k: F, pv: F) -> dict:
    o = VARIANTS[variant][1]
    r = F(cost, mean)
    high = F(3) if score < 100 else F(2)  # bands: score < 100 → 3×, ≥ 100 → 2×
    low = F(1, 2)
    if r > o["X"]:
        kind, rr = "extreme", (o["X"] if o["cap"] else r)
    elif r > high:
        kind, rr = "high", r
    elif r < low:
        kind, rr = "low", r
    else:
        kind, rr = "normal", r
    if kind in ("high", "extreme"):
        mult = (k if o["folded"] else 1) + (rr - high) * o["share"]
    elif kind == "low" and o["low"]:
        mult = r
    else:
        mult = F(1)
    case = half_up(score * aux * mult, o["d"])
    folded_row = o["folded"] and kind in ("high", "extreme")
    settled = case if folded_row else half_up(case * k, o["d"])
    amount = half_up(settled * pv * 100, 0)
    return {"deviation": kind, "case_score": case, "settled_score": settled, "amount": amount}


SCORES = st.one_of(
    st.sampled_from(["99.9999", "100", "30", "100.0001", "1"]).map(Decimal),
    st.integers(1, 5_000_000).map(lambda u: Decimal(u).scaleb(-4)),
)
AUX = st.one_of(st.just(Decimal(1)), st.integers(8000, 13000).map(lambda u: Decimal(u).scaleb(-4)))
MULTIPLES = [F(1, 2), F(2), F(3), F(4), F(5)]


@st.composite
def scenario(draw):
    variant = draw(st.sampled_from(sorted(VARIANTS)))
    hid = draw(st.sampled_from(sorted(HOSPITALS)))
    mean = 2 * draw(st.one_of(st.integers(1, 25_000_000), st.sampled_from([500_000, 5])))
    if draw(st.booleans()):
        m = draw(st.sampled_from(MULTIPLES))
        cost = max(0, int(mean * m) + draw(st.sampled_from([-1, 0, 1])))
    else:
        cost = draw(st.integers(0, 200_000_000))
    score = draw(SCORES)
    aux = draw(AUX)
    own = draw(st.one_of(st.none(), st.integers(0, 500).map(lambda u: Decimal(u).scaleb(-4))))
    pv = Decimal(draw(st.integers(1, 500_000_000))).scaleb(-6)
    return variant, hid, mean, cost, score, aux, own, pv


@settings(max_examples=examples(dev=300, ci=3000))
@given(scenario())
@example(("base", "H005", 1_000_000, 500_000, Decimal(100), Decimal(1), None, Decimal("12.5")))
@example(("base", "H005", 1_000_000, 5_000_000, Decimal(100), Decimal(1), None, Decimal("12.5")))
@example(("folded_cap", "H010", 800_000, 3_200_001, Decimal(100), Decimal(1), None, Decimal(10)))
def test_single_case_matches_independent_formulas(data):
    variant, hid, mean, cost, score, aux, own, pv = data
    level, bonus = HOSPITALS[hid]
    group = b.group(
        "G1",
        score=score,
        mean_cost_fen=mean,
        **{f"mean_cost_{lv}_fen": mean for lv in LEVEL_K},
    )
    hospital = b.hospital(hid, level, bonus_coefficient=own)
    case = b.case("C1", hospital_id=hid, total_cost=cost)
    grouped = b.grouped("C1", base_score=score, aux_coefficient=aux)
    row = b.score_single(case, grouped, [group], [hospital], policy(variant), point_value=pv)
    k = LEVEL_K[level] + bonus + F(own or 0)
    want = oracle(variant, cost, mean, F(score), F(aux), k, F(pv))
    assert row["deviation"] == want["deviation"]
    assert F(row["case_score"]) == want["case_score"]
    assert F(row["settled_score"]) == want["settled_score"]
    assert row["dip_amount_fen"] == want["amount"]
    assert row["fund_payable_fen"] == row["dip_amount_fen"] - row["personal_share_fen"]
