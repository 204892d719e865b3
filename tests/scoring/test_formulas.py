"""Hand-computed worked examples for every scoring formula (single-case path).

Test region (base-policy.yaml): group G1 score 100, mean cost 10,000 yuan (tertiary and
regional), 8,000 (secondary), 5,000 (primary); high multiple 2 for scores ≥ 100, 3 below;
low multiple 0.5; extreme 5×; coefficients tertiary 1.0, secondary 0.88, +0.02 for H001/H002.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import builders as b
import pytest

D = Decimal
HOSPITALS = [
    b.hospital("H001"),  # tertiary + 0.02 bonus → 1.02
    b.hospital("H005"),  # tertiary → 1.0
    b.hospital("H010", "secondary"),  # 0.88
]


def one(con, pf=None, groups=None, hospitals=None, review=None, pv=None, g=None, **case_kw):
    """Score one case with the single-case path (the batch path is checked to give the same
    answers in tests/cases and test_properties.py)."""
    del con
    c = b.case("C1", hospital_id=case_kw.pop("hospital_id", "H005"), **case_kw)
    gr = b.grouped("C1", **(g or {}))
    return b.score_single(
        c,
        gr,
        groups or [b.group("G1")],
        hospitals or HOSPITALS,
        pf or b.policy(),
        review={"case_id": "C1", **review} if review else None,
        point_value=(pv or {}).get(c["insurance_type"]),
    )


def yuan(v: str) -> int:
    return int(D(v) * 100)


def test_normal_case_keeps_the_base_score(con):
    r = one(con, total_cost=yuan("12000"))
    assert (r["deviation"], r["case_score"], r["settled_score"]) == ("normal", D(100), D(100))
    assert "为正常病例" in r["explanation"]


def test_high_case_adds_the_excess_beyond_the_threshold(con):
    # 25000 / 10000 = 2.5 > 2 → 100 × (2.5 − 2 + 1) = 150
    r = one(con, total_cost=yuan("25000"))
    assert (r["deviation"], r["case_score"]) == ("high", D(150))
    assert "费用倍率2.5000" in r["explanation"]


def test_high_case_with_half_of_the_excess_paid(con):
    # 100 × (1 + (2.5 − 2) × 0.5) = 125
    pf = b.policy(scoring={"high_excess_share": D("0.5")})
    assert one(con, pf, total_cost=yuan("25000"))["case_score"] == D(125)


def test_hospital_coefficient_folded_into_the_high_formula(con):
    # secondary mean 8000: 20000 / 8000 = 2.5 → 100 × (2.5 − 2 + 0.88) = 138, no × after
    pf = b.policy(scoring={"high_formula": "coefficient_folded"})
    r = one(con, pf, hospital_id="H010", total_cost=yuan("20000"))
    assert (r["case_score"], r["settled_score"], r["hospital_coefficient"]) == (
        D(138),
        D(138),
        D("0.88"),
    )
    # normal cases still get the coefficient after: 100 × 0.88
    assert one(con, pf, hospital_id="H010", total_cost=yuan("9000"))["settled_score"] == D(88)


def test_low_case_is_paid_in_proportion(con):
    r = one(con, total_cost=yuan("4000"))  # 100 × 0.4
    assert (r["deviation"], r["case_score"]) == ("low", D(40))
    pf = b.policy(scoring={"low_formula": "base"})
    assert one(con, pf, total_cost=yuan("4000"))["case_score"] == D(100)


def test_extreme_case_pending_review_is_scored_provisionally_by_the_high_formula(con):
    r = one(con, total_cost=yuan("60000"))  # 6× > 5× → 100 × (6 − 2 + 1) = 500
    assert (r["deviation"], r["case_score"]) == ("extreme", D(500))
    assert "待特例单议" in r["explanation"]


def test_extreme_case_capped(con):
    pf = b.policy(scoring={"extreme": {"multiple": 5, "action": "cap"}})
    r = one(con, pf, total_cost=yuan("60000"))  # capped at 5×: 100 × (5 − 2 + 1) = 400
    assert (r["deviation"], r["case_score"]) == ("extreme", D(400))
    pf = b.policy(
        scoring={"extreme": {"multiple": 5, "action": "cap"}, "high_formula": "coefficient_folded"}
    )
    r = one(con, pf, hospital_id="H010", total_cost=yuan("60000"))  # 100 × (5 − 2 + 0.88)
    assert r["settled_score"] == D(388)


def test_special_review_accepted_is_settled_on_the_reviewed_score(con):
    review = {"decision": "accept", "reviewed_score": D("321.5")}
    r = one(con, hospital_id="H010", total_cost=yuan("60000"), review=review)
    assert (r["deviation"], r["case_score"], r["settled_score"]) == (
        "special_review",
        D("321.5"),
        D("321.5"),
    )
    assert r["hospital_coefficient"] == D(1)
    pf = b.policy(scoring={"reviewed_score_is": "case_score"})
    r = one(con, pf, hospital_id="H010", total_cost=yuan("60000"), review=review)
    assert r["settled_score"] == D("282.92")  # 321.5 × 0.88


def test_special_review_rejected_falls_back_to_the_rules(con):
    r = one(con, total_cost=yuan("25000"), review={"decision": "不通过"})
    assert (r["deviation"], r["case_score"]) == ("high", D(150))
    assert r["explanation"].startswith("特例单议未通过")


def test_basic_group_same_score_everywhere_and_no_coefficient(con):
    g = b.group(
        "JC1",
        group_type="basic",
        score=D(50),
        **{f"mean_cost_{lv}_fen": yuan("3000") for lv in ("tertiary", "secondary", "primary")},
        mean_cost_fen=yuan("3000"),
    )
    kw = {"groups": [g], "g": {"group_code": "JC1", "group_type": "basic", "base_score": D(50)}}
    sec = one(con, hospital_id="H010", total_cost=yuan("3000"), **kw)
    ter = one(con, hospital_id="H001", total_cost=yuan("3000"), **kw)
    assert sec["settled_score"] == ter["settled_score"] == D(50)
    assert sec["hospital_coefficient"] == D(1)
    assert "同病同价" in sec["explanation"]


def test_bed_day_group_paid_per_day(con):
    g = b.group("BD-F20", group_type="special", score=D(100), score_per_day=D("4.5"))
    kw = {"groups": [g], "g": {"group_code": "BD-F20", "group_type": "special"}}
    r = one(con, hospital_id="H010", los_days=10, total_cost=yuan("90000"), **kw)
    # 4.5 × 10 = 45 (no deviation for bed days), × 0.88 = 39.6
    assert (r["deviation"], r["case_score"], r["settled_score"]) == ("normal", D(45), D("39.6"))


def test_fallback_group_paid_at_a_fraction_of_cost_over_the_all_case_mean(con):
    # 0.7 × 12000 / 8000 × 100 = 105, no hospital coefficient
    g = {"group_code": "BLANK", "group_type": "fallback", "base_score": None}
    r = one(con, hospital_id="H010", total_cost=yuan("12000"), g=g)
    assert (r["case_score"], r["settled_score"], r["hospital_coefficient"]) == (
        D(105),
        D(105),
        D(1),
    )


def test_hospital_coefficient_is_level_plus_policy_and_table_bonuses(con):
    hospitals = [b.hospital("H001", bonus_coefficient=D("0.01"))]
    r = one(con, hospitals=hospitals, hospital_id="H001", total_cost=yuan("10000"))
    assert (r["hospital_coefficient"], r["settled_score"]) == (D("1.03"), D(103))


def test_thresholds_by_score_band(con):
    # score 80 < 100: high multiple is 3, so 2.5× is still normal
    g = b.group("G80", score=D(80))
    r = one(con, groups=[g], g={"group_code": "G80", "base_score": D(80)}, total_cost=yuan("25000"))
    assert (r["deviation"], r["case_score"]) == ("normal", D(80))


def test_auxiliary_coefficient_multiplies_the_base(con):
    r = one(con, g={"aux_coefficient": D("1.1")}, total_cost=yuan("10000"))
    assert r["case_score"] == D(110)


def test_scores_round_half_up_to_the_policy_decimals(con):
    pf = b.policy(scoring={"score_decimals": 2})
    # 1234.50 / 10000 × 100 = 12.345 → 12.35
    assert one(con, pf, total_cost=123_450)["case_score"] == D("12.35")
    # 12.344 → 12.34
    assert one(con, pf, total_cost=123_440)["case_score"] == D("12.34")
    # settled: 33.33 × 0.88 = 29.3304 → 29.33
    r = one(con, pf, hospital_id="H010", total_cost=yuan("2666.40"))  # 2666.4/8000 = 0.3333
    assert (r["case_score"], r["settled_score"]) == (D("33.33"), D("29.33"))


def test_level_mean_missing_uses_the_regional_mean_and_says_so(con):
    g = b.group("G1", mean_cost_secondary_fen=None)
    r = one(con, groups=[g], hospital_id="H010", total_cost=yuan("25000"))
    # 25000 / 10000 (regional) = 2.5 → 150 × 0.88 = 132
    assert r["settled_score"] == D(132)
    assert "本级别无均值" in r["explanation"]


def test_regional_reference_mean(con):
    pf = b.policy(scoring={"reference_mean": "regional"})
    r = one(con, pf, hospital_id="H010", total_cost=yuan("20000"))  # 2.0 is not > 2
    assert (r["deviation"], r["settled_score"]) == ("normal", D(88))


def test_reference_mean_from_score_times_yuan_per_point(con):
    pf = b.policy(
        scoring={
            "reference_mean": "score_times_factor",
            "yuan_per_point": {"employee": 120, "resident": 100},
        }
    )
    r = one(con, pf, total_cost=yuan("30000"))  # mean 100 × 120 = 12000; 2.5× → 150
    assert (r["deviation"], r["case_score"]) == ("high", D(150))


def test_money_at_a_point_value(con):
    # 150 × 12.5 = 1875.00 yuan; personal 2000 + 1000 = 3000 yuan
    r = one(con, total_cost=yuan("25000"), pv={"employee": D("12.5")})
    assert (r["dip_amount_fen"], r["personal_share_fen"], r["fund_payable_fen"]) == (
        187_500,
        300_000,
        -112_500,
    )
    assert "DIP金额=150.0000×12.500000=1875.00元" in r["explanation"]


def test_amount_rounds_half_up_to_the_fen(con):
    # 100 × 0.123455 yuan = 12.3455 yuan → 1234.55 fen → 1235 fen (half up)
    r = one(con, total_cost=yuan("10000"), pv={"employee": D("0.123455")})
    assert r["dip_amount_fen"] == 1235


def test_case_uses_the_policy_version_in_force_at_discharge(con):
    tree = b.demo_tree()
    tree["scoring"]["deviation_bands"][1]["high_multiple"] = {
        "values": {dt.date(2026, 1, 1): 2, dt.date(2026, 7, 1): D("2.5")}
    }
    from opendip.policy import PolicyFile

    pf = PolicyFile(tree, "dated")
    before = one(con, pf, total_cost=yuan("24000"), discharge_date=dt.date(2026, 6, 30))
    after = one(con, pf, total_cost=yuan("24000"), discharge_date=dt.date(2026, 7, 1))
    assert (before["deviation"], before["case_score"]) == ("high", D(140))
    assert (after["deviation"], after["case_score"]) == ("normal", D(100))


@pytest.mark.parametrize("level,coef", [("tertiary", "1.0"), ("secondary", "0.88")])
def test_unrated_and_levels(con, level, coef):
    r = one(con, hospitals=[b.hospital("HX", level)], hospital_id="HX", total_cost=yuan("7000"))
    assert r["hospital_coefficient"] == D(coef)


def test_batch_same_level_mean_its_regional_fallback_and_its_refusal(con):
    """The batch path (with the single path held to it): the level's own mean, the regional
    mean when the level has none (said in the explanation), and the refusal when the policy
    says `level_mean_missing: refuse`."""
    from opendip.scoring.errors import InputDataError

    grouped_rows = [b.grouped("C1")]
    no_level_mean = [b.group("G1", mean_cost_secondary_fen=None)]
    at_25000 = [b.case("C1", hospital_id="H010", total_cost=yuan("25000"))]
    rows = b.score_both(con, at_25000, grouped_rows, no_level_mean, HOSPITALS, b.policy())
    # 25000 / 10000 (regional) = 2.5 → high, 150 × 0.88 = 132
    assert (rows["C1"]["deviation"], rows["C1"]["settled_score"]) == ("high", D(132))
    assert "本级别无均值" in rows["C1"]["explanation"]
    refuse = b.policy(scoring={"level_mean_missing": "refuse"})
    # the secondary mean 8000 is there: 16000 / 8000 = 2.0, not above 2 → normal, 100 × 0.88
    at_16000 = [b.case("C1", hospital_id="H010", total_cost=yuan("16000"))]
    ok = b.score_both(con, at_16000, grouped_rows, [b.group("G1")], HOSPITALS, refuse)
    assert (ok["C1"]["deviation"], ok["C1"]["settled_score"]) == ("normal", D(88))
    assert "本级别无均值" not in ok["C1"]["explanation"]
    with pytest.raises(InputDataError) as info:
        b.score_both(con, at_25000, grouped_rows, no_level_mean, HOSPITALS, refuse)
    assert info.value.field == "mean_cost_<level>_fen"
