"""Bad input: clear errors naming the table, field or parameter, or explicit reported
outcomes (cases moved to not_dip with a status) — never a silent zero."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import builders as b
import pytest

from opendip.policy import PolicyError
from opendip.scoring import (
    InputDataError,
    MissingParameterError,
    ReviewFileError,
    score_case,
    score_cases,
)

D = Decimal


def run(con, cases, grouped=None, groups=None, hospitals=None, pf=None, reviews=None):
    grouped = grouped or [b.grouped(c["case_id"]) for c in cases]
    return score_cases(
        con.create_table("c", b.cases_table(cases), overwrite=True),
        con.create_table("g", b.grouped_table(grouped), overwrite=True),
        con.create_table("d", b.directory_table(groups or [b.group("G1")]), overwrite=True),
        con.create_table("h", b.hospitals_table(hospitals or [b.hospital("H001")]), overwrite=True),
        pf or b.policy(),
        reviews=b.reviews_table(reviews) if reviews else None,
    )


def test_case_of_an_unknown_hospital_is_refused(con):
    with pytest.raises(InputDataError, match=r"hospitals 表字段 hospital_id.*H999"):
        run(con, [b.case("C1", hospital_id="H999")])


def test_hospital_without_a_level_is_refused(con):
    with pytest.raises(InputDataError, match=r"hospitals 表字段 level.*H001"):
        run(con, [b.case("C1")], hospitals=[b.hospital("H001", None)])
    with pytest.raises(InputDataError, match="level"):
        score_case(
            b.case("C1"), b.grouped("C1"), b.group("G1"), b.hospital("H001", None), b.policy()
        )


def test_level_without_a_coefficient_names_the_parameter(con):
    tree = b.demo_tree()
    tree["scoring"]["hospital_coefficient"]["levels"] = {"tertiary": 1}
    from opendip.policy import PolicyFile

    pf = PolicyFile(tree, "no-secondary")
    with pytest.raises(MissingParameterError, match=r"hospital_coefficient\.levels\.secondary"):
        run(con, [b.case("C1", hospital_id="H2")], hospitals=[b.hospital("H2", "secondary")], pf=pf)


def test_fallback_case_without_all_case_mean_names_the_parameter(con):
    tree = b.demo_tree()
    del tree["scoring"]["all_case_mean_yuan"]
    from opendip.policy import PolicyFile

    pf = PolicyFile(tree, "no-mean")
    g = [b.grouped("C1", group_code="BLANK", group_type="fallback", base_score=None)]
    with pytest.raises(MissingParameterError, match=r"scoring\.all_case_mean_yuan"):
        run(con, [b.case("C1")], grouped=g, pf=pf)


def test_review_for_an_unknown_case_is_refused(con):
    with pytest.raises(ReviewFileError, match=r"不在本次结算病例中.*X9"):
        run(
            con,
            [b.case("C1")],
            reviews=[{"case_id": "X9", "decision": "accept", "reviewed_score": 1}],
        )


def test_review_file_problems_name_the_row_and_field(con):
    bad = [
        ([{"case_id": "C1", "decision": "maybe"}], r"第 1 行字段 decision"),
        ([{"case_id": "C1", "decision": "accept"}], r"第 1 行字段 reviewed_score"),
        (
            [
                {"case_id": "C1", "decision": "reject"},
                {"case_id": "C1", "decision": "reject"},
            ],
            "重复",
        ),
        ([{"case_id": "C1", "decision": "accept", "reviewed_score": D(-1)}], "负数"),
    ]
    for reviews, pattern in bad:
        with pytest.raises(ReviewFileError, match=pattern):
            run(con, [b.case("C1")], reviews=reviews)


def test_group_missing_from_the_directory_is_refused(con):
    with pytest.raises(InputDataError, match=r"directory 表字段 group_code.*GX"):
        run(con, [b.case("C1")], grouped=[b.grouped("C1", group_code="GX")])


def test_case_without_a_grouping_row_is_refused(con):
    with pytest.raises(InputDataError, match=r"grouped 表字段 case_id.*C2"):
        run(con, [b.case("C1"), b.case("C2")], grouped=[b.grouped("C1")])


def test_discharge_outside_the_policy_period_is_refused(con):
    with pytest.raises(InputDataError, match="discharge_date"):
        run(con, [b.case("C1", discharge_date=dt.date(2025, 12, 31))])


def test_band_gap_names_the_parameter(con):
    pf = b.policy(
        scoring={
            "deviation_bands": [{"score_min": 200, "high_multiple": 2, "low_multiple": D("0.5")}]
        }
    )
    # The policy itself is refused now (issue 20): scores 0–200 are in no band.
    with pytest.raises(PolicyError, match=r"scoring\.deviation_bands\[0\].*空缺"):
        run(con, [b.case("C1")], pf=pf)


def test_bed_day_case_without_days_is_refused(con):
    g = b.group("BD", group_type="special", score_per_day=D("4.5"))
    gr = [b.grouped("C1", group_code="BD", group_type="special")]
    with pytest.raises(InputDataError, match="los_days"):
        run(con, [b.case("C1", los_days=0)], grouped=gr, groups=[g])


def test_negative_budget_is_refused_by_the_policy():
    pf = b.policy(settlement={"budget": {"employee": {"fund_budget_yuan": -5}}})
    with pytest.raises(PolicyError, match="fund_budget_yuan"):
        pf.periods()


def test_duplicates_missing_money_and_unmatched_are_reported_not_paid(con):
    cases = [
        b.case("C1"),
        b.case("DUP"),
        b.case("DUP", total_cost=5),
        b.case("NOFUND", fund_paid=None),
        b.case("U1"),
    ]
    grouped = [
        b.grouped("C1"),
        b.grouped("DUP"),
        b.grouped("DUP"),
        b.grouped("NOFUND"),
        b.grouped("U1", group_code=None, group_type="unmatched", base_score=None),
    ]
    r = run(con, cases, grouped=grouped)
    scored = r.contract().to_pyarrow()
    assert scored.column("case_id").to_pylist() == ["C1"]
    nd = {x["case_id"]: x["status"] for x in r.not_dip.to_pyarrow().to_pylist()}
    assert nd == {"DUP": "清单号重复退回", "NOFUND": "费用数据不全退回", "U1": "按项目付费"}
