from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendip.codes import demo_code_tables
from opendip.contract import CASES, DIRECTORY
from opendip.engine import connect, table_from_arrow
from opendip.grouping import GroupingIndex, group_case, group_cases
from tests.conftest import policy_with


def row(code: str, gtype: str, dx: str, procs: str, match: str, score: str, mean: int) -> dict:
    return {
        "group_code": code, "group_name": code, "group_type": gtype, "diagnosis_key": dx,
        "procedure_key": procs, "procedure_match": match, "score": Decimal(score), "mean_cost_fen": mean,
    }  # fmt: skip


DIR = DIRECTORY.conform(
    pa.Table.from_pylist(
        [
            row("K35.8:47.0100", "core", "K35.8", "47.0100", "all", "171.3396", 2750),
            row("K35.8:保守", "core", "K35.8", "", "none", "45.1713", 725),
            row("K80.1:51.2300", "core", "K80.1", "51.2300", "all", "300", 30000),
            row("K80.1:51.2300+88.0100", "core", "K80.1", "51.2300+88.0100", "all", "320", 31000),
            row("K80.2:A", "core", "K80.2", "51.2300", "all", "200", 20000),
            row("K80.2:B", "core", "K80.2", "51.2300", "all", "210", 40000),
            row("基层:J18.9", "basic", "J18.9", "", "none", "30", 5000),
            row("综合:J18:保守治疗", "comprehensive", "J18", "conservative", "type", "28", 4000),
            row(
                "综合:K35-K38:相关手术", "comprehensive", "K35-K38", "surgery", "type", "150", 20000
            ),
            row("BD-F20", "special", "F20", "", "prefix", "4.5", 0),
            row("DS-CATARACT", "special", "H25|H26", "13.41", "prefix", "27", 6000),
        ]
    )
)
POLICY = policy_with()


def case(cid: str, dx: str, procs: list[str] | None = None, cost: int = 1000, **extra) -> dict:
    procs = procs or []
    d = dt.date(2026, 6, 10)
    base = {
        "case_id": cid, "hospital_id": "H1", "patient_id": "P" + cid, "insurance_type": "resident",
        "sex": "1", "age": 40, "admit_date": d - dt.timedelta(days=3), "discharge_date": d,
        "los_days": 3, "department": "外科", "main_diagnosis": dx, "other_diagnoses": [],
        "main_procedure": procs[0] if procs else None, "other_procedures": procs[1:],
        "total_cost": cost, "settle_month": "2026-06",
    }  # fmt: skip
    return base | extra


def batch(cases: list[dict], policy=POLICY, blocked: list[str] | None = None) -> dict[str, dict]:
    con = connect()
    t = table_from_arrow(con, CASES.conform(pa.Table.from_pylist(cases)), "cases")
    d = table_from_arrow(con, DIR, "directory")
    pt = table_from_arrow(
        con, demo_code_tables().procedures.select(["code", "procedure_type"]), "pt"
    )
    status = None
    if blocked is not None:
        status = table_from_arrow(
            con, pa.table({"case_id": blocked, "blocking": [True] * len(blocked)}), "st"
        )
    out = group_cases(t, d, pt, policy, status).to_pyarrow().to_pylist()
    return {r["case_id"]: r for r in out}


INDEX = GroupingIndex.build(DIR, POLICY, demo_code_tables())


def single(c: dict, blocked: bool = False) -> dict:
    return group_case(c, INDEX, blocked).as_row()


CASES_AND_EXPECTED = [
    # a diagnostic extra procedure does not stop the surgical core row
    (case("a", "K35.800", ["47.0100", "88.0100"]), "K35.8:47.0100", "core"),
    (case("b", "K35.800x001"), "K35.8:保守", "core"),
    # an unlisted surgery never falls into the conservative row: comprehensive by block
    (case("c", "K35.800", ["51.2300"]), "综合:K35-K38:相关手术", "comprehensive"),
    # "all of" with more procedures matched wins
    (case("d", "K80.100", ["51.2300", "88.0100"]), "K80.1:51.2300+88.0100", "core"),
    # equal match: mean cost closest to the case's cost wins
    (case("e", "K80.200", ["51.2300"], cost=38000), "K80.2:B", "core"),
    (case("f", "K80.200", ["51.2300"], cost=21000), "K80.2:A", "core"),
    (case("g", "J18.900"), "基层:J18.9", "basic"),
    (case("h", "F20.000", los_days=40), "BD-F20", "special"),
    (case("i", "H25.900", ["13.4100"], los_days=1), "DS-CATARACT", "special"),
    # cataract with a 3-day stay is not day surgery: no core row, no comprehensive → blank group
    (case("j", "H25.900", ["13.4100"], los_days=3), "BLANK", "fallback"),
    (case("k", "Q99.999x999"), "BLANK", "fallback"),
    (case("l", "Z51.500"), None, "unmatched"),  # not for grouping
]


@pytest.mark.parametrize(
    ("c", "code", "gtype"), CASES_AND_EXPECTED, ids=[c[0]["case_id"] for c in CASES_AND_EXPECTED]
)
def test_hand_examples_single(c: dict, code: str | None, gtype: str) -> None:
    got = single(c)
    assert (got["group_code"], got["group_type"]) == (code, gtype)


def test_hand_examples_batch_equal_single() -> None:
    cases = [c for c, _, _ in CASES_AND_EXPECTED]
    got = batch(cases)
    for c, code, gtype in CASES_AND_EXPECTED:
        assert (got[c["case_id"]]["group_code"], got[c["case_id"]]["group_type"]) == (code, gtype)
        assert got[c["case_id"]] == single(c)


def test_scores_reasons_and_aux_coefficient() -> None:
    old = case("m", "K35.800", ["47.0100"], age=85, other_diagnoses=["E11.900", "I10.x00"])
    got = single(old)
    # age ≥ 80 → 1.05; two listed comorbidities → level 1, 1.03: 1.05 × 1.03 = 1.0815
    assert got["aux_coefficient"] == Decimal("1.0815")
    assert got["base_score"] == Decimal("171.3396")
    assert got["reason"] == "主要诊断亚目 K35.8，手术操作 47.0100，匹配核心病种 K35.8:47.0100"
    assert batch([old])["m"] == got
    basic = single(case("n", "J18.900", age=85))
    assert basic["aux_coefficient"] == Decimal("1.0000")  # basic groups are not refined


def test_special_group_scores_come_from_directory() -> None:
    assert single(case("o", "F20.000"))["base_score"] == Decimal("4.5000")


def test_qc_blocked_cases_are_not_grouped_and_say_so() -> None:
    got = batch([case("p", "K35.800")], blocked=["p"])["p"]
    assert got["group_type"] == "unmatched" and got["match_step"] == "qc_excluded"
    assert got == single(case("p", "K35.800"), blocked=True)


def test_explanation_names_every_code_and_the_losers() -> None:
    result = group_case(case("q", "K80.100", ["51.2300", "88.0100", "99.9999"]), INDEX)
    text = "\n".join(result.explanation)
    assert "51.2300：参与分组" in text
    assert "99.9999：不在医保版手术操作代码表中" in text
    assert "候选病种 K80.1:51.2300 落选：匹配手术操作最多者优先" in text
    assert "结论：" in result.explanation[-1]


def test_tie_break_chain_is_a_policy_choice() -> None:
    policy = policy_with({"grouping.tie_break": ["highest_score"]})
    index = GroupingIndex.build(DIR, policy, demo_code_tables())
    c = case("r", "K80.200", ["51.2300"], cost=21000)
    assert group_case(c, index).group_code == "K80.2:B"  # 210 > 200, cost ignored
    assert batch([c], policy)["r"]["group_code"] == "K80.2:B"


def test_unmatched_mode_reports_reason() -> None:
    policy = policy_with({"grouping.fallback": {"mode": "unmatched"}})
    index = GroupingIndex.build(DIR, policy, demo_code_tables())
    got = group_case(case("s", "Q99.999x999"), index)
    assert got.group_type == "unmatched" and "未匹配任何病种" in got.reason


DX = [
    "K35.800",
    "K35.800x001",
    "K80.100",
    "K80.200",
    "J18.900",
    "F20.000",
    "H25.900",
    "Z51.500",
    "Q99.999x999",
    "J18.000",
]
PROCS = ["47.0100", "51.2300", "88.0100", "13.4100", "99.9999", "99.1000"]


@settings(max_examples=12, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(DX),
            st.lists(st.sampled_from(PROCS), max_size=3),
            st.integers(1, 60_000),
            st.integers(0, 95),
            st.lists(st.sampled_from(["E11.900", "I10.x00", "C78.000", "N18.900"]), max_size=3),
            st.integers(1, 10),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_batch_equals_single_and_grouping_is_total(specs: list) -> None:
    cases = [
        case(str(i), dx, procs, cost, age=age, other_diagnoses=others, los_days=los)
        for i, (dx, procs, cost, age, others, los) in enumerate(specs)
    ]
    got = batch(cases)
    assert len(got) == len(cases)  # exactly one row per case
    for c in cases:
        assert got[c["case_id"]] == single(c)
