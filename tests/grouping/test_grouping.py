from __future__ import annotations

import datetime as dt
import functools
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
            row("K81.0:P", "core", "K81.0", "51.2", "prefix", "250", 25000),
            row("K81.0:A", "core", "K81.0", "51.2300/47.0100", "any", "260", 26000),
            row("K81.0:E", "core", "K81.0", "51.2300", "all", "240", 24000),
            row("K81.0:D", "core", "K81.0", "88.0100", "all", "100", 10000),
            row("基层:J18.9", "basic", "J18.9", "", "none", "30", 5000),
            row("综合:J18:保守治疗", "comprehensive", "J18", "conservative", "type", "28", 4000),
            row(
                "综合:K35-K38:相关手术", "comprehensive", "K35-K38", "surgery", "type", "150", 20000
            ),
            row("综合:XI:诊断性操作", "comprehensive", "XI", "diagnostic", "type", "90", 9000),
            row(
                "综合:K35-K38:治疗性操作",
                "comprehensive",
                "K35-K38",
                "therapeutic",
                "type",
                "80",
                8000,
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
    dc = table_from_arrow(con, demo_code_tables().diagnoses.select(["code", "valid_as_main"]), "dc")
    out = group_cases(t, d, pt, policy, status, dc).to_pyarrow().to_pylist()
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
    # a valid code no group takes → the blank group; unknown codes → unmatched (reason below)
    (case("k", "J20.900"), "BLANK", "fallback"),
    (case("k2", "Q99.999x999"), None, "unmatched"),
    # an unknown procedure code is ignored (a QC warning), not a reason to refuse the case
    (case("k3", "K35.800", ["47.0100", "99.9999"]), "K35.8:47.0100", "core"),
    (case("l", "Z51.500"), None, "unmatched"),  # not for grouping
    (case("l2", "R00.000"), None, "unmatched"),  # not valid as main diagnosis
    # comprehensive: category level, then chapter level when category and block are missing
    (case("t", "J18.000"), "综合:J18:保守治疗", "comprehensive"),
    (case("u", "K40.900", ["88.0100"]), "综合:XI:诊断性操作", "comprehensive"),
    # ignored prefix (99.1): the case is conservative
    (case("v", "K35.800", ["99.1000"]), "K35.8:保守", "core"),
    # prefix row: 51.2200 starts with 51.2; the 'any' and 'all' rows do not list it
    (case("w", "K81.000", ["51.2200"]), "K81.0:P", "core"),
    # 51.2300: P, A, E all match one code; closest mean cost (25 000 fen) → P
    (case("x", "K81.000", ["51.2300"], cost=25000), "K81.0:P", "core"),
    (case("y", "K81.000", ["51.2300"], cost=26400), "K81.0:A", "core"),
]


@pytest.mark.parametrize(
    ("c", "code", "gtype"), CASES_AND_EXPECTED, ids=[c[0]["case_id"] for c in CASES_AND_EXPECTED]
)
def test_hand_examples_single(c: dict, code: str | None, gtype: str) -> None:
    got = single(c)
    assert (got["group_code"], got["group_type"]) == (code, gtype)


#: Cases the default-policy tests check in one batch (compiling the expression is the slow part).
EXTRA = [
    case("m", "K35.800", ["47.0100"], age=85, other_diagnoses=["E11.900", "I10.x00"]),
    case("p", "K35.800"),  # QC-blocked below
    case("k4", "K35.800", ["47.0100", "99.9999", "99.9998"]),
]


@functools.cache
def default_batch() -> dict[str, dict]:
    return batch([c for c, _, _ in CASES_AND_EXPECTED] + EXTRA, blocked=["p"])


def test_hand_examples_batch_equal_single() -> None:
    got = default_batch()
    for c, code, gtype in CASES_AND_EXPECTED:
        assert (got[c["case_id"]]["group_code"], got[c["case_id"]]["group_type"]) == (code, gtype)
        assert got[c["case_id"]] == single(c)


def test_scores_reasons_and_aux_coefficient() -> None:
    old = case("m", "K35.800", ["47.0100"], age=85, other_diagnoses=["E11.900", "I10.x00"])
    got = single(old)
    # age ≥ 80 → 1.05; two listed comorbidities → level 1, 1.03: 1.05 × 1.03 = 1.0815
    assert got["aux_coefficient"] == Decimal("1.0815")
    assert got["base_score"] == Decimal("171.3396")
    assert got["reason"] == "主要诊断与手术操作匹配核心病种"
    assert old == EXTRA[0] and default_batch()["m"] == got
    basic = single(case("n", "J18.900", age=85))
    assert basic["aux_coefficient"] == Decimal("1.0000")  # basic groups are not refined


def test_special_group_scores_come_from_directory() -> None:
    assert single(case("o", "F20.000"))["base_score"] == Decimal("4.5000")


def test_qc_blocked_cases_are_not_grouped_and_say_so() -> None:
    got = default_batch()["p"]
    assert got["group_type"] == "unmatched" and got["match_step"] == "qc_excluded"
    assert got == single(case("p", "K35.800"), blocked=True)


def test_explanation_names_every_code_and_the_losers() -> None:
    result = group_case(case("q", "K80.100", ["51.2300", "88.0100", "99.1000"]), INDEX)
    text = "\n".join(result.explanation)
    assert "主要诊断 K80.100 → 诊断键 K80.1（亚目）" in text
    assert "51.2300：参与分组（手术/介入）" in text
    assert "88.0100：参与分组（非手术操作）" in text
    assert "99.1000：属政策忽略的操作" in text
    assert "候选病种 K80.1:51.2300 落选：匹配手术操作最多者优先" in text
    assert result.explanation[-1] == "结论：主要诊断与手术操作匹配核心病种（K80.1:51.2300+88.0100）"
    unknown = group_case(case("q2", "K80.100", ["99.9999"]), INDEX)
    assert (
        "手术操作 99.9999：不在医保版手术操作代码表中，不参与分组（质控提示）"
        in unknown.explanation
    )


def test_tie_break_chain_is_a_policy_choice() -> None:
    policy = policy_with({"grouping.tie_break": ["highest_score"]})
    index = GroupingIndex.build(DIR, policy, demo_code_tables())
    c = case("r", "K80.200", ["51.2300"], cost=21000)
    assert group_case(c, index).group_code == "K80.2:B"  # 210 > 200, cost ignored
    assert batch([c], policy)["r"]["group_code"] == "K80.2:B"


def test_unmatched_mode_reports_reason() -> None:
    policy = policy_with({"grouping.fallback": {"mode": "unmatched"}})
    index = GroupingIndex.build(DIR, policy, demo_code_tables())
    got = group_case(case("s", "J20.900"), index)
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
    "K81.000",
    "K40.900",
    "R00.000",
    "J20.900",
]
PROCS = [
    "47.0100", "51.2300", "51.2200", "88.0100", "13.4100", "99.9999", "99.1000", "36.0600",
    "93.5100", "54.5100",
]  # fmt: skip


VARIANTS = [
    {},
    {"grouping.tie_break": ["exact_match_first", "main_procedure_first", "highest_score"]},
    {
        "grouping.tie_break": ["closest_mean_cost"],
        "grouping.unlisted_surgery_to_comprehensive": False,
        "grouping.interventional_as": "therapeutic",
        "grouping.fallback": {"mode": "unmatched"},
    },
    {
        "grouping.counted_procedure_types": ["therapeutic", "surgery"],
        "grouping.unlisted_surgery_to_comprehensive": False,
        "grouping.tie_break": ["main_procedure_first", "most_procedures_matched"],
    },
]


@settings(max_examples=6, deadline=None)
@given(
    st.sampled_from(range(len(VARIANTS))),
    st.lists(
        st.tuples(
            st.sampled_from(DX),
            st.lists(st.sampled_from(PROCS), max_size=3),
            st.integers(1, 60_000),
            st.integers(0, 95),
            st.lists(
                st.sampled_from(["E11.900", "I10.x00", "C78.000", "N18.900", "E11.999", "C78.999"]),
                max_size=3,
            ),
            st.integers(1, 10),
            st.sampled_from(["main", "no_main", "repeated"]),
        ),
        min_size=1,
        max_size=150,
    ),
)
def test_batch_equals_single_and_grouping_is_total(variant: int, specs: list) -> None:
    policy = policy_with(VARIANTS[variant])
    index = GroupingIndex.build(DIR, policy, demo_code_tables())
    cases = []
    for i, (dx, procs, cost, age, others, los, shape) in enumerate(specs):
        c = case(str(i), dx, procs, cost, age=age, other_diagnoses=others, los_days=los)
        if shape == "no_main":  # procedures recorded only as other procedures
            c |= {"main_procedure": None, "other_procedures": procs}
        elif shape == "repeated":  # the main procedure listed again among the others
            c |= {"other_procedures": procs}
        cases.append(c)
    got = batch(cases, policy)
    assert len(got) == len(cases)  # exactly one row per case
    for c in cases:
        assert got[c["case_id"]] == group_case(c, index).as_row()


def test_unknown_and_refused_codes_say_which_code() -> None:
    got = default_batch()
    assert got["k2"]["match_step"] == "unknown_code"
    assert got["k2"]["reason"] == "主要诊断 Q99.999x999 不在医保版疾病诊断代码表中，不予入组"
    # unknown procedure codes are ignored: the case groups on the codes it has
    assert got["k4"]["group_code"] == "K35.8:47.0100"
    assert got["k4"] == single(EXTRA[2])
    assert got["l2"]["reason"] == "主要诊断 R00.000 不能作为主要诊断，不予入组"
    invalid = single(case("l2", "R00.000"))
    assert invalid["match_step"] == "not_for_grouping"
    assert invalid["reason"] == "主要诊断 R00.000 不能作为主要诊断，不予入组"


def test_not_for_grouping_procedure_prefixes() -> None:
    policy = policy_with({"grouping.not_for_grouping": {"procedure_prefixes": ["47.01"]}})
    index = GroupingIndex.build(DIR, policy, demo_code_tables())
    c = case("z", "K35.800", ["47.0100"])
    got = group_case(c, index).as_row()
    assert got["group_type"] == "unmatched" and got["match_step"] == "not_for_grouping"
    assert got["reason"] == "手术操作 47.0100 属不入组规则，不予入组"
    assert batch([c], policy)["z"] == got


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (["highest_score"], "K81.0:A"),  # 260 is the highest
        (["exact_match_first", "highest_score"], "K81.0:P"),  # A lists two codes: not exact
        (["exact_match_first", "closest_mean_cost"], "K81.0:E"),  # |24 000 − 24 100| smallest
    ],
)
def test_exact_match_first(rules: list[str], expected: str) -> None:
    policy = policy_with({"grouping.tie_break": rules})
    c = case("ex", "K81.000", ["51.2300"], cost=24100)
    index = GroupingIndex.build(DIR, policy, demo_code_tables())
    assert group_case(c, index).group_code == expected
    if rules[-1] == "closest_mean_cost":  # one batch check; the property test covers the rest
        assert batch([c], policy)["ex"]["group_code"] == expected


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (["closest_mean_cost"], "K81.0:D"),  # mean 10 000 fen = the case's cost
        (["main_procedure_first", "closest_mean_cost"], "K81.0:E"),  # E lists the main 51.2300
    ],
)
def test_main_procedure_first(rules: list[str], expected: str) -> None:
    # Extra procedures never break a match: the diagnostic-only row D takes a surgical case too.
    policy = policy_with({"grouping.tie_break": rules})
    c = case("mp", "K81.000", ["51.2300", "88.0100"], cost=10000)
    index = GroupingIndex.build(DIR, policy, demo_code_tables())
    result = group_case(c, index)
    assert result.group_code == expected
    if len(rules) > 1:  # one batch check is enough: compiling the expression is the slow part
        assert batch([c], policy)["mp"] == result.as_row()


def test_unlisted_surgery_rule_can_be_switched_off() -> None:
    policy = policy_with({"grouping.unlisted_surgery_to_comprehensive": False})
    c = case("us", "K35.800", ["51.2300"])
    assert group_case(c, GroupingIndex.build(DIR, policy, demo_code_tables())).group_code == (
        "K35.8:保守"
    )
    assert batch([c], policy)["us"]["group_code"] == "K35.8:保守"


def test_interventional_counts_as_surgery_unless_policy_says_otherwise() -> None:
    c = case("iv", "K35.800", ["36.0600"])  # an interventional code
    assert single(c)["group_code"] == "综合:K35-K38:相关手术"
    policy = policy_with({"grouping.interventional_as": "therapeutic"})
    index = GroupingIndex.build(DIR, policy, demo_code_tables())
    # a therapeutic procedure no core row lists: not the conservative row, the comprehensive
    # group of its type
    assert group_case(c, index).group_code == "综合:K35-K38:治疗性操作"
    assert batch([c], policy)["iv"]["group_code"] == "综合:K35-K38:治疗性操作"


def test_kind_precedence_is_a_policy_table() -> None:
    # Core before special: a schizophrenia case with a core row would take it; F20 has none,
    # so precedence [comprehensive, ...] without special sends the case to the blank group.
    policy = policy_with({"grouping.kind_precedence": ["core", "comprehensive", "fallback"]})
    c = case("kp", "F20.000", los_days=40)
    index = GroupingIndex.build(DIR, policy, demo_code_tables())
    assert group_case(c, index).group_code == "BLANK"
    assert batch([c], policy)["kp"]["group_code"] == "BLANK"
