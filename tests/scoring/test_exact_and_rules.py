"""Direct tests of the exact-arithmetic helpers and policy rules that the mutation run found
untested (docs/testing.md): large quotients where the DOUBLE estimate of `floor_div` is off by
one, messages, the budget point value from history, coefficient rounding, band edges, reviewed
scores at two decimals, and the point value's six decimals in the explanation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import builders as b
import ibis
import pytest

from opendip.scoring import rules
from opendip.scoring.exact import (
    decimal_to_units,
    div_half_up,
    floor_div,
    py_div_half_up,
    scaled,
    units_to_decimal,
)
from opendip.scoring.single import policy_for

D = Decimal


@pytest.fixture(scope="module")
def duck():
    from opendip.engine import connect

    return connect()


@pytest.mark.parametrize(
    "num,den,floor",
    [
        (10**17 + 1, 1, 10**17 + 1),  # DOUBLE rounds the estimate down: +1 correction
        (10**17 - 1, 1, 10**17 - 1),  # DOUBLE rounds it up: −1 correction
        (7, 2, 3),
        (6, 3, 2),
        (0, 5, 0),
    ],
)
def test_floor_div_is_exact_where_double_is_not(duck, num, den, floor):
    assert duck.execute(floor_div(ibis.literal(num), ibis.literal(den))) == floor


@pytest.mark.parametrize(
    "num,den,rounded",
    [(2 * 10**17 + 1, 2, 10**17 + 1), (5, 2, 3), (7, 2, 4), (3, 2, 2), (1, 3, 0), (2, 3, 1)],
)
def test_div_half_up_on_duckdb_and_in_python(duck, num, den, rounded):
    assert duck.execute(div_half_up(ibis.literal(num), ibis.literal(den))) == rounded
    # plain ints become DECIMAL(38, 0) constants too (an untyped literal of 2·10**17 + 1
    # would be a narrow decimal and fail the DOUBLE-estimate correction's cast)
    assert duck.execute(div_half_up(num, den)) == rounded
    assert duck.execute(floor_div(num, den)) == num // den
    assert py_div_half_up(num, den) == rounded


@pytest.mark.parametrize("den", [0, -2])
def test_py_div_half_up_refuses_a_denominator_that_is_not_positive(den):
    with pytest.raises(ZeroDivisionError) as exc:
        py_div_half_up(1, den)
    assert str(exc.value) == "denominator must be positive"


@pytest.mark.parametrize(
    "units,decimals,sql_type,value",
    [
        (1234567, 4, "decimal(18, 4)", D("123.4567")),
        (-1, 4, "decimal(18, 4)", D("-0.0001")),
        (12345, 2, "decimal(18, 4)", D("123.45")),  # two-decimal scores in a 4-decimal type
        (10**14 - 1, 4, "decimal(18, 4)", D("9999999999.9999")),  # the largest it takes
        (241528683, 6, "decimal(18, 6)", D("241.528683")),
        (15000, 4, "decimal(10, 4)", D("1.5")),
        (15000, 4, "decimal(10,4)", D("1.5")),  # the type written without a space
    ],
)
def test_units_to_decimal_is_exact_and_typed(duck, units, decimals, sql_type, value):
    expr = units_to_decimal(ibis.literal(units, type="int64"), decimals, sql_type)
    assert str(expr.type()) == sql_type.replace(" ", "").replace(",", ", ")
    assert duck.execute(expr) == value


def test_units_to_decimal_refuses_what_does_not_fit(duck):
    import duckdb

    with pytest.raises(duckdb.Error):  # 10**10 points: refused, never silently wrong
        duck.execute(units_to_decimal(ibis.literal(10**14, type="int64"), 4, "decimal(18, 4)"))


@pytest.mark.parametrize(
    "value,scale,units",
    [
        (D("123.4567"), 4, 1234567),
        (D("-0.0001"), 4, -1),
        (D("999999999.9999"), 4, 9999999999999),  # the largest it takes at 4 decimals
        (D("241.528683"), 6, 241528683),
    ],
)
def test_decimal_to_units_is_exact(duck, value, scale, units):
    col = ibis.literal(value, type=f"decimal(18, {scale})")
    assert duck.execute(decimal_to_units(col, scale)) == units


@pytest.mark.parametrize("value,scale", [(D("1000000000.0000"), 4), (D("100000.000000"), 6)])
def test_decimal_to_units_refuses_what_does_not_fit(duck, value, scale):
    """From 10**(17 − 2s) up (10**9 at 4 decimals, 10**5 at 6): refused, never wrong."""
    import duckdb

    col = ibis.literal(value, type=f"decimal(18, {scale})")
    with pytest.raises(duckdb.Error):
        duck.execute(decimal_to_units(col, scale))


def test_scaled_refuses_extra_decimals_with_the_numbers():
    assert scaled(D("1.25"), 2) == 125
    with pytest.raises(ValueError) as exc:
        scaled(D("1.255"), 2)
    assert str(exc.value) == "1.255 has more than 2 decimals"


def _policy(**overrides):
    return policy_for(b.policy(**overrides), dt.date(2026, 3, 1))


def test_budget_point_value_from_history_mean():
    pol = _policy(
        settlement={"budget": {"employee": {"fund_budget_yuan": 1000, "budget_point_value": None}}}
    )
    # all-case mean 8000.00 yuan ÷ base score 100 = 80 yuan per point, 6 decimals
    assert rules.budget_point_value(pol, "employee", 800_000) == D("80.000000")
    assert rules.budget_point_value(pol, "employee", 123_457) == D("12.345700")
    with pytest.raises(rules.ScoringError, match="budget_point_value"):
        rules.budget_point_value(pol, "employee", None)


def test_hospital_coefficient_sums_and_rounds_half_up_to_four_decimals():
    pol = _policy()
    assert rules.hospital_coefficient(pol, "H005", "secondary", None) == D("0.8800")
    assert rules.hospital_coefficient(pol, "H001", "tertiary", D("0.01")) == D("1.0300")
    assert rules.hospital_coefficient(pol, "H001", "secondary", D("0.00005")) == D("0.9001")
    assert rules.hospital_coefficient(pol, "H005", "secondary", D("0.00004")) == D("0.8800")


def test_a_band_gap_is_refused_by_the_policy():
    """So `single._band`'s own refusal (a score in no band) is defensive, unreachable."""
    from opendip.policy.load import PolicyError

    bands = [{"score_max": 100, "high_multiple": 3, "low_multiple": D("0.5")}]
    with pytest.raises(PolicyError, match=r"scoring\.deviation_bands"):
        b.policy(scoring={"deviation_bands": bands}).periods()


def test_band_contains_its_lower_edge_not_its_upper():
    low = rules.Band(None, D(100), D(3), D("0.5"))
    high = rules.Band(D(100), None, D(2), D("0.5"))
    assert low.contains(D("99.9999")) and not low.contains(D(100))
    assert high.contains(D(100)) and not high.contains(D("99.9999"))
    assert rules.Band(None, None, D(2), D("0.5")).contains(D(0))


def test_accepted_review_at_two_decimals_single_and_batch(duck):
    pf = b.policy(scoring={"score_decimals": 2})
    rows = b.score_both(
        duck,
        [b.case("S1", hospital_id="H005", total_cost=6_000_000)],
        [b.grouped("S1")],
        [b.group("G1", mean_cost_tertiary_fen=1_000_000, mean_cost_fen=1_000_000)],
        [b.hospital("H005")],
        pf,
        reviews=[{"case_id": "S1", "decision": "accept", "reviewed_score": D("321.55")}],
        point_values={"employee": D(10), "resident": D(10)},
    )
    row = rows["S1"]
    assert row["deviation"] == "special_review"
    assert row["case_score"] == D("321.55") and row["settled_score"] == D("321.55")
    assert row["dip_amount_fen"] == 321_550


def test_explanation_shows_the_point_value_with_six_decimals():
    row = b.score_single(
        b.case("C1", hospital_id="H005", total_cost=1_000_000),
        b.grouped("C1"),
        [b.group("G1", mean_cost_tertiary_fen=1_000_000, mean_cost_fen=1_000_000)],
        [b.hospital("H005")],
        b.policy(),
        point_value=D("12.5"),
    )
    assert "点值12.500000元/分，DIP金额=100.0000×12.500000=1250.00元" in row["explanation"]


SINGLE_ERRORS = {
    "no_level": (
        {}, {}, None,
        "hospitals 表字段 level：医疗机构未填写医院等级（例如：H9）",
    ),
    "bed_day_without_stay": (
        {"los_days": 0}, {"group_code": "BD", "group_type": "special"}, "tertiary",
        "cases 表字段 los_days：按床日付费病例住院天数为空或不大于 0（例如：C1）",
    ),
    "no_base_score": (
        {}, {"base_score": None}, "tertiary",
        "grouped 表字段 base_score：已入组病例缺少病种分值（例如：C1）",
    ),
    "missing_money": (
        {"fund_paid": None, "personal_copay": None}, {}, "tertiary",
        "cases 表字段 fund_paid、personal_copay：单病例计分缺少金额（分）：统筹基金支付、个人自付（例如：C1）",
    ),
    "unmatched": (
        {}, {"group_code": None, "group_type": "unmatched", "base_score": None}, "tertiary",
        "grouped 表字段 group_type：未入组病例不按 DIP 计分（例如：C1）",
    ),
    "no_mean": (
        {}, {"group_code": "NM"}, "tertiary",
        "directory 表字段 mean_cost_fen：病种没有可用的次均费用（例如：NM）",
    ),
    "outside_policy": (
        {"discharge_date": dt.date(2027, 1, 5)}, {}, "tertiary",
        "cases 表字段 discharge_date：出院日期 2027-01-05 不在政策生效期内",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(SINGLE_ERRORS))
def test_single_case_refusals_name_table_field_and_case(name):
    from opendip.scoring.errors import InputDataError

    case_kw, grouped_kw, level, message = SINGLE_ERRORS[name]
    groups = [
        b.group("G1", mean_cost_tertiary_fen=1_000_000, mean_cost_fen=1_000_000),
        b.group("BD", group_type="special", score_per_day=D("4.5")),
        b.group("NM", mean_cost_tertiary_fen=None, mean_cost_fen=None),
    ]
    with pytest.raises(InputDataError) as exc:
        b.score_single(
            b.case("C1", hospital_id="H9", **case_kw),
            b.grouped("C1", **grouped_kw),
            groups,
            [b.hospital("H9", level)],
            b.policy(),
            point_value=D(10),
        )
    assert str(exc.value) == message


def test_a_hospital_without_a_level_is_refused_naming_it():
    with pytest.raises(rules.ScoringError) as exc:
        rules.hospital_coefficient(_policy(), "H009", None, None)
    assert str(exc.value) == "医疗机构 H009 未填写等级，无法确定医疗机构系数"
    with pytest.raises(rules.ScoringError) as exc:
        rules.hospital_coefficient(_policy(), "H009", "quaternary", None)
    assert str(exc.value) == "政策 scoring.hospital_coefficient.levels 缺少等级 quaternary 的系数"


def test_budget_point_value_given_by_the_policy_is_rounded_half_up_to_six_decimals():
    pol = _policy(settlement={"budget": {"employee": {"budget_point_value": "12.3456785"}}})
    # the policy's value wins over history's mean (which would give 80.000000)
    assert rules.budget_point_value(pol, "employee", 800_000) == D("12.345679")


def _thresholds(base, level="secondary", policy=None, pool="employee", **row):
    from opendip.scoring.single import cost_thresholds

    return cost_thresholds(
        b.case("T1", insurance_type=pool),
        {"group_type": row.pop("group_type", "core"), "base_score": base},
        b.group("G1", **row),
        b.hospital("H010", level),
        policy or b.policy(),
    )


def test_cost_thresholds_are_the_band_multiples_of_the_same_level_mean_half_up():
    # base 100: band [100, ∞) high 2, low 0.5; secondary mean 8 000.00 yuan
    assert _thresholds(D(100)) == {
        "mean_fen": 800_000,
        "high_fen": 1_600_000,
        "low_fen": 400_000,
        "high_multiple": D(2),
        "low_multiple": D("0.5"),
        "mean_source": "同级别病种次均费用",
    }
    # base 99.9999: band [0, 100) high 3; 8 333.33 yuan × 3 = 24 999.99, × 0.5 = 4 166.665
    # → 4 166.67 (a half fen rounded up)
    got = _thresholds(D("99.9999"), mean_cost_secondary_fen=833_333)
    assert (got["mean_fen"], got["high_fen"], got["low_fen"]) == (833_333, 2_499_999, 416_667)
    assert (got["high_multiple"], got["low_multiple"]) == (D(3), D("0.5"))
    # no secondary mean: the regional 10 000.00 yuan (level_mean_missing: regional)
    got = _thresholds(D(100), mean_cost_secondary_fen=None)
    assert (got["mean_fen"], got["high_fen"], got["low_fen"]) == (1_000_000, 2_000_000, 500_000)
    assert got["mean_source"] == "全市病种次均费用（本级别无均值）"
    # multiples that are fractions (2.5 = 5/2, 0.6 = 3/5): 8 000 × 2.5 = 20 000, × 0.6 = 4 800
    bands = [
        {"score_max": 100, "high_multiple": 3, "low_multiple": "0.5"},
        {"score_min": 100, "high_multiple": "2.5", "low_multiple": "0.6"},
    ]
    got = _thresholds(D(100), policy=b.policy(scoring={"deviation_bands": bands}))
    assert (got["mean_fen"], got["high_fen"], got["low_fen"]) == (800_000, 2_000_000, 480_000)
    assert (got["high_multiple"], got["low_multiple"]) == (D("2.5"), D("0.6"))


def test_cost_thresholds_are_none_where_a_case_has_no_band():
    assert _thresholds(D(100), group_type="unmatched") is None
    assert _thresholds(D(100), group_type="fallback") is None
    assert _thresholds(D(100), group_type="special", score_per_day=D(10)) is None
    assert _thresholds(None) is None
    assert _thresholds(D(100), mean_cost_secondary_fen=0) is None


@pytest.mark.parametrize(
    "review,shown",
    [({"case_id": "C1"}, "''"), ({"case_id": "C1", "decision": " Maybe "}, "'maybe'")],
)
def test_a_review_decision_that_is_neither_accept_nor_reject_is_refused(review, shown):
    """Neither a missing decision nor an unknown word is read as a rejection."""
    from opendip.scoring.errors import ReviewFileError

    with pytest.raises(ReviewFileError) as exc:
        b.score_single(
            b.case("C1", hospital_id="H9"),
            b.grouped("C1"),
            [b.group("G1")],
            [b.hospital("H9")],
            b.policy(),
            point_value=D(10),
            review=review,
        )
    assert str(exc.value) == f"特例单议字段 decision：{shown} 不是 accept/reject"


def test_a_missing_auxiliary_coefficient_counts_as_one_single_and_batch(duck):
    # base 100, no aux coefficient, 10 000 yuan at the 10 000 yuan mean: normal, 100 points;
    # 25 000 yuan: high, 100 × (2.5 − 2 + 1) = 150
    rows = b.score_both(
        duck,
        [b.case("C1", hospital_id="H9"), b.case("C2", hospital_id="H9", total_cost=2_500_000)],
        [b.grouped("C1", aux_coefficient=None), b.grouped("C2", aux_coefficient=None)],
        [b.group("G1")],
        [b.hospital("H9")],
        b.policy(),
    )
    assert (rows["C1"]["deviation"], rows["C1"]["case_score"]) == ("normal", D(100))
    assert (rows["C2"]["deviation"], rows["C2"]["case_score"]) == ("high", D(150))
    assert rows["C1"]["aux_coefficient"] == D(1)


# Third mutation session (docs/testing.md): the survivors of the full `scoring` run.

#: Bands that start at an explicit 0 (valid: no gap from 0): a negative base score is in none.
BANDS_FROM_ZERO = [
    {"score_min": 0, "score_max": 100, "high_multiple": 3, "low_multiple": D("0.5")},
    {"score_min": 100, "high_multiple": 2, "low_multiple": D("0.5")},
]


def test_a_base_score_in_no_band_is_refused_single_and_batch():
    """The bands cover [0, ∞) (the policy refuses gaps), so only a negative base score can
    fall outside them when the first band says `score_min: 0`: both paths refuse it, naming
    the key and the score (or the group), rather than score it by no band. (Connections of
    their own: `exc` holds the refused run, whose cached tables an equal expression on the
    same connection would reuse.)"""
    from opendip.engine import connect
    from opendip.scoring.errors import MissingParameterError

    pf = b.policy(scoring={"deviation_bands": BANDS_FROM_ZERO})
    args = (
        [b.case("C1", hospital_id="H005")],
        [b.grouped("C1", base_score=D("-1.5"))],
        [b.group("G1")],
        [b.hospital("H005")],
        pf,
    )
    with pytest.raises(MissingParameterError) as exc:
        b.score_single(args[0][0], args[1][0], *args[2:], point_value=D(10))
    assert exc.value.parameter == "scoring.deviation_bands"
    assert str(exc.value) == (
        "缺少政策参数 scoring.deviation_bands：分段未覆盖分值 -1.5000。未计算金额，请在政策文件中补充。"
    )
    with pytest.raises(MissingParameterError) as exc:
        b.score_both(connect(), *args)
    assert exc.value.parameter == "scoring.deviation_bands"
    assert "的分段未覆盖这些病种的分值（1 例，病种 G1）" in str(exc.value)
    # the same case at base score 0 is in the first band: 10 000 yuan at the mean, 0 points
    row = b.score_both(connect(), args[0], [b.grouped("C1", base_score=D(0))], *args[2:])["C1"]
    assert (row["deviation"], row["case_score"], row["high_multiple"]) == ("normal", D(0), "3")


def test_cost_thresholds_of_a_special_group_without_a_score_per_day_are_its_band_s():
    # a special group paid by the band rules (no bed-day score): base 100 → 2× / 0.5× of
    # the secondary mean 8 000.00 yuan
    got = _thresholds(D(100), group_type="special")
    assert (got["mean_fen"], got["high_fen"], got["low_fen"]) == (800_000, 1_600_000, 400_000)
    # a bed-day score on a group that is not special changes nothing either
    got = _thresholds(D(100), score_per_day=D(10))
    assert (got["mean_fen"], got["high_fen"], got["low_fen"]) == (800_000, 1_600_000, 400_000)


def test_cost_thresholds_from_score_times_yuan_per_point():
    # mean = base score × the pool's yuan per point: 99.9999 × 120 = 11 999.988 yuan
    # → 1 199 998.8 fen → 1 199 999 (half up); high 3× = 3 599 996.4 → 3 599 996; low 0.5×
    # = 599 999.4 → 599 999 (the employee case's pool; residents 100 yuan per point)
    pf = b.policy(
        scoring={
            "reference_mean": "score_times_factor",
            "yuan_per_point": {"employee": 120, "resident": 100},
        }
    )
    got = _thresholds(D("99.9999"), policy=pf)
    assert (got["mean_fen"], got["high_fen"], got["low_fen"]) == (1_199_999, 3_599_996, 599_999)
    assert got["mean_source"] == "参照费用(分值×每分元数)"
    # residents: 99.9999 × 100 = 9 999.99 yuan; 3× = 29 999.97; 0.5× = 4 999.995 → 5 000.00
    got = _thresholds(D("99.9999"), policy=pf, pool="resident")
    assert (got["mean_fen"], got["high_fen"], got["low_fen"]) == (999_999, 2_999_997, 500_000)
    # an insurance type that is no pool of the policy has no yuan per point, so no mean
    # (the policy requires yuan_per_point for every pool it declares)
    assert _thresholds(D(100), policy=pf, pool="other") is None


def test_score_case_takes_the_all_case_mean_it_is_given_over_the_policy_s():
    # fallback: 0.7 × 12 000 ÷ 6 000 (given, e.g. by the directory build) × 100 = 140,
    # not ÷ 8 000 (the policy's all_case_mean_yuan) = 105
    from opendip.scoring import score_case

    row = score_case(
        b.case("F1", hospital_id="H005", total_cost=1_200_000),
        b.grouped("F1", group_code="BLANK", group_type="fallback", base_score=None),
        None,
        b.hospital("H005"),
        b.policy(),
        all_case_mean_fen=600_000,
    )
    assert (row["case_score"], row["settled_score"]) == (D(140), D(140))
    assert row["all_case_mean_fen"] == 600_000


def test_a_fallback_case_under_score_times_factor_needs_no_base_score_single_and_batch(duck):
    # the reference mean (score × yuan per point) needs a base score; a fallback case has
    # none and needs no mean: 0.7 × 12 000 ÷ 8 000 × 100 = 105 on both paths
    pf = b.policy(
        scoring={
            "reference_mean": "score_times_factor",
            "yuan_per_point": {"employee": 120, "resident": 100},
        }
    )
    rows = b.score_both(
        duck,
        [b.case("F1", hospital_id="H005", total_cost=1_200_000)],
        [b.grouped("F1", group_code="BLANK", group_type="fallback", base_score=None)],
        [b.group("G1")],
        [b.hospital("H005")],
        pf,
    )
    assert (rows["F1"]["case_score"], rows["F1"]["mean_cost_fen"]) == (D(105), None)


def test_a_case_without_a_stay_length_is_scored_and_shows_none_single_and_batch(duck):
    # los_days is needed by bed-day groups only: a core case without it is normal, 100 points
    rows = b.score_both(
        duck,
        [b.case("C1", hospital_id="H005", los_days=None)],
        [b.grouped("C1")],
        [b.group("G1")],
        [b.hospital("H005")],
        b.policy(),
    )
    assert (rows["C1"]["deviation"], rows["C1"]["case_score"]) == ("normal", D(100))
    assert rows["C1"]["los_days"] is None


def test_explain_false_leaves_the_sentence_out_but_keeps_the_facts():
    from opendip.scoring import score_case

    args = (
        b.case("C1", hospital_id="H005", total_cost=2_500_000),
        b.grouped("C1"),
        b.group("G1"),
        b.hospital("H005"),
        b.policy(),
    )
    quiet = score_case(*args, explain=False)
    full = score_case(*args)
    assert quiet["explanation"] == ""
    assert full["explanation"].startswith("病种G1基准分值100.0000")
    assert {**quiet, "explanation": full["explanation"]} == full  # 150 points either way
    assert quiet["case_score"] == D(150)


def _batch(con, cases, point_values):
    from opendip.scoring import score_cases

    return score_cases(
        con.create_table("cases", b.cases_table(cases), overwrite=True),
        con.create_table(
            "grouped", b.grouped_table([b.grouped(c["case_id"]) for c in cases]), overwrite=True
        ),
        con.create_table("directory", b.directory_table([b.group("G1")]), overwrite=True),
        con.create_table("hospitals", b.hospitals_table([b.hospital("H005")]), overwrite=True),
        b.policy(),
        point_values=point_values,
    )


def test_the_batch_s_scored_table_is_the_contract_plus_its_extra_columns_with_or_without_money(
    duck,
):
    from opendip.contract.tables import SCORED
    from opendip.scoring.batch import EXTRA_COLUMNS

    want = sorted([*SCORED.names, *EXTRA_COLUMNS])
    case = b.case("C1", hospital_id="H005")
    plain = _batch(duck, [case], None)
    assert sorted(plain.scored.columns) == want
    # typed as the contract says, the money columns too while they are still empty
    got = plain.contract().to_pyarrow().schema
    assert [(f.name, f.type) for f in got] == [(f.name, f.type) for f in SCORED.schema]
    extra = plain.scored.schema()
    assert {k: str(extra[k]) for k in EXTRA_COLUMNS} == {
        "group_type": "string",
        "department": "string",
        "settle_month": "string",
        "discharge_date": "date",
        "level": "string",
        "community_id": "string",
        "settled_units": "int64",
        "score_decimals": "int8",
    }
    row = plain.scored.select(*EXTRA_COLUMNS).to_pyarrow().to_pylist()[0]
    assert row == {
        "group_type": "core",
        "department": "外科",
        "settle_month": "2026-03",
        "discharge_date": dt.date(2026, 3, 15),
        "level": "tertiary",
        "community_id": None,
        "settled_units": 1_000_000,  # 100 points in units of 10⁻⁴
        "score_decimals": 4,
    }
    paid = _batch(duck, [case], {"employee": D(10), "resident": D(8)})
    assert sorted(paid.scored.columns) == want  # no helper column (_pv, _amount) left
    row = paid.contract().to_pyarrow().to_pylist()[0]
    # 10 000 yuan at the tertiary mean: 100 points × 10 yuan = 1 000.00 yuan
    assert (row["point_value"], row["dip_amount_fen"]) == (D("10.000000"), 100_000)


def test_a_batch_pool_without_a_point_value_is_refused_naming_it():
    from opendip.engine import connect
    from opendip.scoring.errors import MissingParameterError

    cases = [
        b.case("C1", hospital_id="H005"),
        b.case("C2", hospital_id="H005", insurance_type="resident"),
    ]
    with pytest.raises(MissingParameterError) as exc:
        _batch(connect(), cases, {"employee": D(10)})
    assert str(exc.value) == (
        "缺少政策参数 settlement.budget.resident：统筹区 ['resident'] 没有点值。未计算金额，请在政策文件中补充。"
    )


SCORE_TIMES_FRACTIONAL = {
    "reference_mean": "score_times_factor",
    "yuan_per_point": {"employee": D("120.125"), "resident": 100},
}


def test_score_times_factor_with_a_fractional_yuan_per_point_single_and_batch(duck):
    # employees: 100 × 120.125 = 12 012.50 yuan (a fraction 24 025/2 fen per point);
    # 30 031.25 yuan is 2.5× → high, 100 × 1.5 = 150; residents: 100 × 100 = 10 000 yuan,
    # 30 000 yuan is 3× → high, 100 × 2 = 200
    rows = b.score_both(
        duck,
        [
            b.case("E1", hospital_id="H005", total_cost=3_003_125),
            b.case("R1", hospital_id="H005", total_cost=3_000_000, insurance_type="resident"),
        ],
        [b.grouped("E1"), b.grouped("R1")],
        [b.group("G1")],
        [b.hospital("H005")],
        b.policy(scoring=SCORE_TIMES_FRACTIONAL),
    )
    got = {k: (r["deviation"], r["case_score"], r["mean_cost_fen"]) for k, r in rows.items()}
    assert got == {"E1": ("high", D(150), 1_201_250), "R1": ("high", D(200), 1_000_000)}


def test_a_zero_group_mean_is_no_mean_single_and_batch():
    """A mean of 0 is refused like a missing one where the case needs it, and shown as none
    where it does not (a bed-day group)."""
    from opendip.engine import connect
    from opendip.scoring.errors import InputDataError

    groups = [
        b.group("G0", mean_cost_tertiary_fen=0, mean_cost_fen=0),
        b.group("BD0", group_type="special", score_per_day=D("4.5"), mean_cost_tertiary_fen=0),
    ]
    # bed day: 4.5 × 10 days = 45 points, no mean shown (and no cost ratio)
    rows = b.score_both(
        connect(),
        [b.case("B1", hospital_id="H005", los_days=10)],
        [b.grouped("B1", group_code="BD0", group_type="special")],
        groups,
        [b.hospital("H005")],
        b.policy(),
    )
    assert (rows["B1"]["case_score"], rows["B1"]["mean_cost_fen"]) == (D(45), None)
    assert rows["B1"]["cost_ratio"] is None
    args = ([b.case("C1", hospital_id="H005")], [b.grouped("C1", group_code="G0")], groups)
    with pytest.raises(InputDataError) as exc:
        b.score_single(args[0][0], args[1][0], groups, [b.hospital("H005")], b.policy())
    assert str(exc.value) == "directory 表字段 mean_cost_fen：病种没有可用的次均费用（例如：G0）"
    with pytest.raises(InputDataError) as exc:
        b.score_both(connect(), *args, [b.hospital("H005")], b.policy())
    assert str(exc.value) == (
        "directory 表字段 mean_cost_fen：1 例所入病种没有可用的次均费用（为空或为 0），"
        "无法判定费用偏差（例如：G0）"
    )


@pytest.mark.parametrize("los", [0, None])
def test_a_bed_day_case_without_a_positive_stay_is_refused_single_and_batch(los):
    from opendip.engine import connect
    from opendip.scoring.errors import InputDataError

    args = (
        [b.case("B1", hospital_id="H005", los_days=los)],
        [b.grouped("B1", group_code="BD", group_type="special")],
        [b.group("BD", group_type="special", score_per_day=D("4.5"))],
        [b.hospital("H005")],
        b.policy(),
    )
    with pytest.raises(InputDataError) as exc:
        b.score_single(args[0][0], args[1][0], *args[2:])
    assert str(exc.value) == (
        "cases 表字段 los_days：按床日付费病例住院天数为空或不大于 0（例如：B1）"
    )
    with pytest.raises(InputDataError) as exc:
        b.score_both(connect(), *args)
    assert str(exc.value) == (
        "cases 表字段 los_days：1 例按床日付费病例住院天数为空或不大于 0（例如：B1）"
    )


def test_without_an_all_case_mean_only_fallback_cases_are_refused_single_and_batch():
    from opendip.engine import connect
    from opendip.scoring import score_cases
    from opendip.scoring.errors import MissingParameterError

    pf = b.policy(scoring={"all_case_mean_yuan": None})
    core = ([b.case("C1", hospital_id="H005")], [b.grouped("C1")])
    rows = b.score_both(connect(), *core, [b.group("G1")], [b.hospital("H005")], pf)
    assert (rows["C1"]["case_score"], rows["C1"]["all_case_mean_fen"]) == (D(100), None)
    fb = b.grouped("F1", group_code="BLANK", group_type="fallback", base_score=None)
    args = ([b.case("F1", hospital_id="H005")], [fb], [b.group("G1")], [b.hospital("H005")], pf)
    with pytest.raises(MissingParameterError) as exc:
        b.score_single(args[0][0], fb, *args[2:])
    assert exc.value.parameter == "scoring.all_case_mean_yuan"
    con = connect()  # the batch alone (score_both would let the single path refuse it)
    with pytest.raises(MissingParameterError) as exc:
        score_cases(
            con.create_table("cases", b.cases_table(args[0])),
            con.create_table("grouped", b.grouped_table(args[1])),
            con.create_table("directory", b.directory_table(args[2])),
            con.create_table("hospitals", b.hospitals_table(args[3])),
            pf,
        )
    assert exc.value.parameter == "scoring.all_case_mean_yuan"


def test_a_hospital_level_the_policy_has_no_coefficient_for_is_refused_single_and_batch():
    from opendip.engine import connect
    from opendip.policy import PolicyFile
    from opendip.scoring.errors import MissingParameterError

    tree = b.demo_tree()
    del tree["scoring"]["hospital_coefficient"]["levels"]["unrated"]
    pf = PolicyFile(tree, "test-policy")
    args = ([b.case("C1", hospital_id="H030")], [b.grouped("C1")], [b.group("G1")])
    hospitals = [b.hospital("H030", "unrated")]
    with pytest.raises(MissingParameterError) as exc:
        b.score_single(args[0][0], args[1][0], args[2], hospitals, pf)
    assert exc.value.parameter == "scoring.hospital_coefficient.levels.unrated"
    with pytest.raises(MissingParameterError) as exc:
        b.score_both(connect(), *args, hospitals, pf)
    assert str(exc.value) == (
        "缺少政策参数 scoring.hospital_coefficient.levels.unrated：2026-01-01 起生效的政策版本"
        "没有医院等级 unrated 的基本等级系数（1 例）。未计算金额，请在政策文件中补充。"
    )
