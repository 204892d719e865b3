"""Low-standard admission and overlong stays on one hand-built scenario."""

import pytest

from opendip.supervision.low_standard import low_standard_leads, with_typical
from opendip.supervision.overlong import overlong_leads

from .conftest import Runner, case, cases_table, hospitals_table, with_supervision


def _scenario() -> list[dict]:
    rows = []
    # 20 typical J06 and J18 stays at H001 (tertiary): 4 days, 1000.00 yuan
    for i in range(20):
        rows.append(case(f"J06-{i:02d}", main_diagnosis="J06.900", los=4, total_cost=100_000))
        rows.append(case(f"J18-{i:02d}", main_diagnosis="J18.900", los=4, total_cost=100_000))
    rows += [
        case("L1", main_diagnosis="J06.900", los=1, total_cost=25_000),  # ratio 0.25 → flagged
        case("L2", main_diagnosis="J06.900", los=2, total_cost=40_000),  # ratio 0.40 → flagged
        case("L3", main_diagnosis="J06.900", los=2, total_cost=41_000),  # 0.41 → not
        case("L4", main_diagnosis="J06.900", los=3, total_cost=20_000),  # LOS 3 → not
        case("L5", main_diagnosis="J06.900", los=1, total_cost=20_000, discharge_method="5"),
        case("L6", main_diagnosis="J06.900", los=1, total_cost=20_000, main_procedure="96.0400"),
        case("L7", main_diagnosis="J18.900", los=1, total_cost=20_000),  # not outpatient-like
        # H002 (secondary) has one J06 stay: the typical cost falls back to the region
        case("L8", main_diagnosis="J06.900", los=1, total_cost=20_000, hospital_id="H002"),
        # overlong
        case("O1", main_diagnosis="C16.900", los=60, total_cost=9_000_000),
        case("O2", main_diagnosis="C16.900", los=59, total_cost=9_000_000),
        case("O3", main_diagnosis="F20.000", los=90, total_cost=3_000_000),
    ]
    return rows


@pytest.fixture(scope="module")
def typed(con, policy):
    runner = Runner(con)
    stays = runner.stays(
        policy,
        cases_table(_scenario()),
        hospitals=hospitals_table({"H001": "tertiary", "H002": "secondary"}),
    ).cache()
    return with_typical(stays, policy).cache()


def _by_key(expr) -> dict[str, dict]:
    return {r["key"]: r for r in expr.to_pyarrow().to_pylist()}


def test_low_standard_flags_short_cheap_outpatient_stays(typed, policy):
    leads = _by_key(low_standard_leads(typed, policy, typed))
    assert sorted(leads) == ["L1", "L2", "L8"]
    l1 = leads["L1"]
    assert l1["case_ids"] == ["L1"]
    assert l1["score"] == pytest.approx(0.75)
    assert l1["impact_fen"] == 25_000
    for text in (
        "住院 1 天",
        "250.00 元",
        "同级医院同病种典型费用 1000.00 元",
        "25.0%",
        "门诊可治疗病种",
    ):
        assert text in l1["evidence"], text
    assert "全区域同病种典型费用 1000.00 元" in leads["L8"]["evidence"]


def test_low_standard_policy_variants(typed, policy):
    any_condition = with_supervision(policy, low_standard_condition_prefixes=[])
    assert "L7" in _by_key(low_standard_leads(typed, any_condition, typed))
    with_procedures = with_supervision(
        policy, low_standard_conservative_only=False, low_standard_exclude_discharge_methods=[]
    )
    assert {"L5", "L6"} <= set(_by_key(low_standard_leads(typed, with_procedures, typed)))
    strict = with_supervision(policy, low_standard_max_cost_ratio="0.3")
    assert sorted(_by_key(low_standard_leads(typed, strict, typed))) == ["L1", "L8"]


def test_no_typical_cost_means_no_flag(con, policy):
    runner = Runner(con)
    stays = runner.stays(policy, cases_table(_scenario()))
    picky = with_supervision(policy, min_peer_cases=100)
    assert low_standard_leads(stays, picky).to_pyarrow().num_rows == 0


def test_overlong_stays(typed, policy):
    leads = _by_key(overlong_leads(typed, policy))
    assert sorted(leads) == ["O1", "O3"]
    assert leads["O1"]["score"] == pytest.approx(1.0)
    assert leads["O3"]["score"] == pytest.approx(1.5)
    assert "住院 60 天（≥ 60 天）" in leads["O1"]["evidence"]
    assert "90000.00 元" in leads["O1"]["evidence"]
    excluded = with_supervision(policy, overlong_exclude_prefixes=["F20"])
    assert sorted(_by_key(overlong_leads(typed, excluded))) == ["O1"]
