from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from opendip.codes import demo_code_tables
from opendip.contract import CASES
from opendip.directory import DirectoryBuildError, build_directory
from opendip.engine import connect, table_from_arrow
from tests.conftest import policy_with


def case(cid: str, hosp: str, year: int, dx: str, procs: list[str], cost: int) -> dict:
    d = dt.date(year, 6, 1)
    return {
        "case_id": cid, "hospital_id": hosp, "patient_id": "P" + cid, "insurance_type": "resident",
        "sex": "1", "age": 40, "admit_date": d - dt.timedelta(days=3), "discharge_date": d,
        "los_days": 3, "main_diagnosis": dx, "other_diagnoses": [],
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


def _build(rows: list[dict], policy=POLICY):
    con = connect()
    cases = table_from_arrow(con, CASES.conform(pa.Table.from_pylist(rows)), "history")
    hospitals = table_from_arrow(
        con, pa.table({"hospital_id": ["H1", "H2"], "level": ["tertiary", "secondary"]}), "h"
    )
    types = table_from_arrow(
        con, demo_code_tables().procedures.select(["code", "procedure_type"]), "pt"
    )
    return build_directory(cases, hospitals, types, policy)


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
