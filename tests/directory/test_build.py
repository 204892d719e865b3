from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pytest

from opendip.codes import demo_code_tables
from opendip.contract import CASES
from opendip.directory import DirectoryBuildError, build_directory
from opendip.engine import connect, table_from_arrow
from tests.conftest import policy_with


def case(
    cid: str, hosp: str, year: int, dx: str, procs: list[str], cost: int, los: int = 3
) -> dict:
    d = dt.date(year, 6, 1)
    return {
        "case_id": cid, "hospital_id": hosp, "patient_id": "P" + cid, "insurance_type": "resident",
        "sex": "1", "age": 40, "admit_date": d - dt.timedelta(days=3), "discharge_date": d,
        "los_days": los, "main_diagnosis": dx, "other_diagnoses": [],
        "main_procedure": procs[0] if procs else None, "other_procedures": procs[1:],
        "total_cost": cost, "settle_month": d.strftime("%Y-%m"),
    }  # fmt: skip


HISTORY = [
    case("1", "H1", 2024, "K35.800", ["47.0100"], 1000),
    case("2", "H1", 2024, "K35.800x001", ["47.0100"], 3000),
    case("3", "H1", 2025, "K35.800", ["47.0100"], 2000),
    case("4", "H2", 2025, "K35.800x001", ["47.0100"], 4000),
    case("5", "H1", 2024, "K35.800", [], 500),
    case("6", "H2", 2025, "K35.800", [], 700),
    case("7", "H2", 2025, "K35.800", [], 900),
    case("8", "H2", 2025, "J18.900", [], 600),
]
POLICY = policy_with(
    {
        "directory.year_weights": {2024: 1, 2025: 3},
        "directory.trim": {"method": "none"},
        "directory.core_threshold": {"method": "fixed", "min_cases": 2},
        "directory.basic_groups": [],
        "directory.special_groups": [],
    }
)


def _build(rows: list[dict], policy=POLICY, blocked: list[str] | None = None):
    con = connect()
    cases = table_from_arrow(con, CASES.conform(pa.Table.from_pylist(rows)), "history")
    hospitals = table_from_arrow(
        con, pa.table({"hospital_id": ["H1", "H2"], "level": ["tertiary", "secondary"]}), "h"
    )
    types = table_from_arrow(
        con, demo_code_tables().procedures.select(["code", "procedure_type"]), "pt"
    )
    status = None
    if blocked is not None:
        status = table_from_arrow(
            con, pa.table({"case_id": blocked, "blocking": [True] * len(blocked)}), "st"
        )
    return build_directory(cases, hospitals, types, policy, status)


def test_hand_computed_weighted_means_and_scores() -> None:
    built = _build(HISTORY)
    rows = {r["group_code"]: r for r in built.table.to_pylist()}
    # all-case mean: 2024 (1000+3000+500)/3 = 1500; 2025 (2000+4000+700+900+600)/5 = 1640;
    # weighted 1:3 → (1500 + 3×1640) / 4 = 1605
    assert built.metrics["all_case_mean_fen"] == 1605
    a = rows["K35.8:47.0100"]  # 2024 mean 2000, 2025 mean 3000 → (2000 + 9000)/4 = 2750
    assert a["mean_cost_fen"] == 2750
    assert a["score"] == Decimal("171.3396")  # 2750 / 1605 × 100
    assert a["mean_cost_tertiary_fen"] == 2000  # 2024: 2000; 2025: 2000
    assert a["mean_cost_secondary_fen"] == 4000  # only 2025: weights renormalised
    assert a["case_count"] == 4 and a["procedure_match"] == "all"
    b = rows["K35.8:保守"]  # 2024: 500; 2025: 800 → (500 + 2400)/4 = 725
    assert b["mean_cost_fen"] == 725 and b["score"] == Decimal("45.1713")
    assert b["procedure_match"] == "none"
    # J18.9 has 1 case < 2: comprehensive, falling back to the chapter level (X)
    assert rows["综合:X:保守治疗"]["case_count"] == 1
    assert built.metrics["groups_by_type"] == {"comprehensive": 1, "core": 2}
    # cases per year, and CV on the untrimmed costs 1000, 3000, 2000, 4000: mean 2500,
    # population sd √1 250 000 = 1118.03 → 0.4472
    assert json.loads(a["case_counts_by_year"]) == {"2024": 2, "2025": 2}
    assert a["cv"] == 0.4472  # sd 1118.03 / mean 2500, published with 4 decimals
    # RIV = 1 − within SS / total SS: within 5 000 000 + 80 000 + 0 = 5 080 000; total:
    # Σx² 31 910 000 − 8 × 1587.5² = 11 748 750 → 1 − 0.43239 = 0.5676
    assert built.metrics["riv"] == 0.5676
    assert built.metrics["core_case_share"] == 0.875  # 7 of 8 cases in core groups


def test_coverage_threshold_picks_smallest_count_reaching_share() -> None:
    policy = policy_with(
        {
            "directory.year_weights": {2024: 1, 2025: 3},
            "directory.trim": {"method": "none"},
            "directory.core_threshold": {
                "method": "coverage",
                "min_cases": None,
                "min_share": 0.85,
            },
            "directory.basic_groups": [],
            "directory.special_groups": [],
        }
    )
    # counts: A=4, B=3, J18=1 (8 cases). count ≥ 4 covers 50%, ≥ 3 covers 87.5% ≥ 85%
    built = _build(HISTORY, policy)
    assert built.metrics["core_threshold"] == 3
    assert built.metrics["groups_by_type"]["core"] == 2


def test_log_sd_trimming_drops_outliers() -> None:
    policy = policy_with(
        {
            "directory.year_weights": {2025: 1},
            "directory.trim": {"method": "log_sd", "k": 1},
            "directory.core_threshold": {"method": "fixed", "min_cases": 1},
            "directory.basic_groups": [],
            "directory.special_groups": [],
        }
    )
    rows = [case(str(i), "H1", 2025, "I63.900", [], 1000) for i in range(5)]
    rows.append(case("99", "H1", 2025, "I63.900", [], 100_000))
    built = _build(rows, policy)
    # ln-cost mean/sd: the 100 000 case lies > 1 sd away and is trimmed
    assert built.table.to_pylist()[0]["mean_cost_fen"] == 1000
    assert built.metrics["cases_after_trimming"] == 5


def test_basic_group_same_mean_at_every_level() -> None:
    policy = policy_with(
        {
            "directory.year_weights": {2024: 1, 2025: 3},
            "directory.trim": {"method": "none"},
            "directory.core_threshold": {"method": "fixed", "min_cases": 50},
            "directory.basic_groups": [{"diagnosis": "K35.8", "name": "阑尾炎保守"}],
            "directory.special_groups": [],
        }
    )
    rows = {r["group_code"]: r for r in _build(HISTORY, policy).table.to_pylist()}
    basic = rows["基层:K35.8"]
    assert basic["group_type"] == "basic"
    assert (
        basic["mean_cost_tertiary_fen"]
        == basic["mean_cost_secondary_fen"]
        == basic["mean_cost_fen"]
        == 725
    )


def test_no_history_in_window_is_an_error() -> None:
    policy = policy_with({"directory.year_weights": {2019: 1}})
    with pytest.raises(DirectoryBuildError, match="2019"):
        _build(HISTORY, policy)


def test_percentile_trimming_keeps_the_middle() -> None:
    policy = policy_with(
        {
            "directory.year_weights": {2025: 1},
            "directory.trim": {"method": "percentile", "lower_pct": 0.1, "upper_pct": 0.9},
            "directory.core_threshold": {"method": "fixed", "min_cases": 1},
            "directory.basic_groups": [],
            "directory.special_groups": [],
        }
    )
    rows = [case(str(i), "H1", 2025, "I63.900", [], 100 * i) for i in range(1, 21)]
    built = _build(rows, policy)
    # percent_rank (r − 1)/19 within [0.1, 0.9] keeps ranks 3..18: costs 300..1800, mean 1050
    assert built.table.to_pylist()[0]["mean_cost_fen"] == 1050
    assert built.metrics["cases_after_trimming"] == 16


def test_special_groups_qc_exclusion_and_comprehensive_levels() -> None:
    policy = policy_with(
        {
            "directory.year_weights": {2025: 1},
            "directory.trim": {"method": "none"},
            "directory.core_threshold": {"method": "fixed", "min_cases": 2},
            "directory.comprehensive": {"min_cases": 2, "levels": ["category", "block", "chapter"]},
            "directory.basic_groups": [],
        }
    )
    rows = [
        case("f1", "H1", 2025, "F20.000", [], 40_000, los=40),  # bed-day group
        case("f2", "H2", 2025, "F20.000", [], 20_000, los=20),
        case("c1", "H1", 2025, "H25.900", ["13.4100"], 5_000, los=1),  # day surgery
        case("c2", "H1", 2025, "H25.900", ["13.4100"], 9_000, los=3),  # ordinary
        case("c3", "H1", 2025, "H25.900", ["13.4100"], 11_000, los=4),
        case("k1", "H1", 2025, "K35.800", [], 1_000),  # K35 category: 2 cases
        case("k2", "H1", 2025, "K35.100", [], 3_000),
        case("k3", "H1", 2025, "K37.x00", [], 2_000),  # alone: block K35-K38 has 1 → chapter
        case("k4", "H1", 2025, "K37.x00", [], 90_000),  # blocked by QC: left out
    ]
    built = _build(rows, policy, blocked=["k4"])
    got = {r["group_code"]: r for r in built.table.to_pylist()}
    assert got["BD-F20"]["score_per_day"] == Decimal("4.5000")
    assert got["BD-F20"]["case_count"] == 2 and got["BD-F20"]["mean_cost_fen"] == 30_000
    assert got["DS-CATARACT"]["case_count"] == 1 and got["DS-CATARACT"]["mean_cost_fen"] == 5_000
    assert got["H25.9:13.4100"]["case_count"] == 2  # the day-surgery case did not build it
    assert got["H25.9:13.4100"]["mean_cost_fen"] == 10_000
    assert got["综合:K35:保守治疗"]["case_count"] == 2
    assert got["综合:XI:保守治疗"]["case_count"] == 1
    assert got["综合:XI:保守治疗"]["mean_cost_fen"] == 2_000  # not 90 000: k4 was blocked
    assert built.metrics["history_cases"] == 8
    # all-case mean M over the 5 ordinary cases: (9000 + 11000 + 1000 + 3000 + 2000) / 5
    assert built.metrics["all_case_mean_fen"] == 5_200
    assert got["H25.9:13.4100"]["score"] == Decimal("192.3077")  # 10 000 / 5 200 × 100
    assert got["BD-F20"]["score"] == Decimal("576.9231")  # 30 000 / 5 200 × 100


def test_local_groups_are_marked_with_their_provenance() -> None:
    """新增病种 listed in the policy get origin local and their provenance; they count apart
    in the kinds; a listed code the directory lacks is named in the metrics."""
    policy = policy_with(
        {
            "directory.year_weights": {2024: 1, 2025: 3},
            "directory.trim": {"method": "none"},
            "directory.core_threshold": {"method": "fixed", "min_cases": 2},
            "directory.basic_groups": [],
            "directory.special_groups": [],
            "directory.local_groups": [
                {
                    "group_code": "K35.8:保守",
                    "added_by": "示范市医疗保障局",
                    "added_on": dt.date(2026, 1, 1),
                    "added_basis": "示范医保发〔2025〕21号",
                },
                {
                    "group_code": "X99.9:保守",
                    "added_by": "示范市医疗保障局",
                    "added_on": dt.date(2026, 1, 1),
                    "added_basis": "示范医保发〔2025〕21号",
                },
            ],
        }
    )
    built = _build(HISTORY, policy)
    rows = {r["group_code"]: r for r in built.table.to_pylist()}
    b = rows["K35.8:保守"]
    assert (b["origin"], b["added_by"], b["added_on"], b["added_basis"]) == (
        "local",
        "示范市医疗保障局",
        dt.date(2026, 1, 1),
        "示范医保发〔2025〕21号",
    )
    assert rows["K35.8:47.0100"]["origin"] is None
    assert built.metrics["groups_by_kind"] == {
        "core": 1,
        "comprehensive": 1,
        "basic": 0,
        "special": 0,
        "new": 1,
    }
    assert built.metrics["local_groups_missing"] == ["X99.9:保守"]


def test_history_cases_tied_on_procedures_go_to_the_closest_mean_cost() -> None:
    """The build assigns a history case matching two core rows with grouping's own tie-break
    (demo chain: most procedures matched → closest mean cost → highest score), through
    `best_core`. K35.8 cases: 47.0100 alone ×2 at 10.00 yuan, 47.0900 alone ×2 at 50.00
    yuan (both core, ≥ 2 cases); X (47.0100 + 47.0900, 20.00 yuan) and Y (47.0100 +
    47.0900 + 47.0200, 40.00 yuan) each form a key of 1 case (not core) and match both rows
    with 1 procedure each.
    Round 1 (means 1000 and 5000 fen): X |1000 − 2000| = 1000 < |5000 − 2000| = 3000 → 47.0100
    (although 47.0900 scores higher); Y |5000 − 4000| = 1000 < 3000 → 47.0900 (although
    47.0100 has the lower mean cost).
    Round 2 (means (1000 + 1000 + 2000) / 3 = 1333.33 → 1333 and (5000 + 5000 + 4000) / 3
    = 4666.67 → 4667): X 667 < 2667, Y 667 < 2667: the same assignment, settled."""
    policy = policy_with(
        {
            "directory.year_weights": {2025: 1},
            "directory.trim": {"method": "none"},
            "directory.core_threshold": {"method": "fixed", "min_cases": 2},
            "directory.basic_groups": [],
            "directory.special_groups": [],
        }
    )
    assert policy.grouping.tie_break == [
        "most_procedures_matched", "closest_mean_cost", "highest_score"
    ]  # fmt: skip
    rows = [
        case("a1", "H1", 2025, "K35.800", ["47.0100"], 1000),
        case("a2", "H1", 2025, "K35.800", ["47.0100"], 1000),
        case("b1", "H1", 2025, "K35.800", ["47.0900"], 5000),
        case("b2", "H1", 2025, "K35.800", ["47.0900"], 5000),
        case("X", "H1", 2025, "K35.800", ["47.0100", "47.0900"], 2000),
        case("Y", "H1", 2025, "K35.800", ["47.0100", "47.0900", "47.0200"], 4000),
    ]
    built = _build(rows, policy)
    got = {r["case_id"]: r["group_code"] for r in built.assignment.to_pyarrow().to_pylist()}
    assert got == {
        "a1": "K35.8:47.0100", "a2": "K35.8:47.0100", "X": "K35.8:47.0100",
        "b1": "K35.8:47.0900", "b2": "K35.8:47.0900", "Y": "K35.8:47.0900",
    }  # fmt: skip
    table = {r["group_code"]: r for r in built.table.to_pylist()}
    assert table["K35.8:47.0100"]["mean_cost_fen"] == 1333
    assert table["K35.8:47.0900"]["mean_cost_fen"] == 4667
    assert table["K35.8:47.0100"]["case_count"] == 3 == table["K35.8:47.0900"]["case_count"]
    assert built.metrics["assignment_settled"] is True
