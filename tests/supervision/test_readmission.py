"""Readmission: one scenario table (one patient per situation), several policies."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opendip.supervision.readmission import readmission_leads, readmission_pairs

from .conftest import D, case, cases_table, grouped_table, with_supervision


def _scenario() -> tuple[list[dict], list[dict]]:
    """(current, history) stays; each situation uses its own patient."""
    cur = [
        # P1: readmitted 10 days after discharge, related subcategory
        case("A1", patient_id="P1", admit=D(2026, 3, 1), los=9, total_cost=123_456),
        case(
            "B1",
            patient_id="P1",
            admit=D(2026, 3, 20),
            los=4,
            main_diagnosis="J18.000",
            total_cost=50_000,
        ),
        # P2: gap exactly 15 days → readmission; P3: 16 days → not; P4: same day → readmission
        case("A2", patient_id="P2", admit=D(2026, 3, 1), los=9),
        case("B2", patient_id="P2", admit=D(2026, 3, 25)),
        case("A3", patient_id="P3", admit=D(2026, 3, 1), los=9),
        case("B3", patient_id="P3", admit=D(2026, 3, 26)),
        case("A4", patient_id="P4", admit=D(2026, 3, 1), los=9),
        case("B4", patient_id="P4", admit=D(2026, 3, 10)),
        # P5: other category → not
        case("A5", patient_id="P5", admit=D(2026, 3, 1)),
        case("B5", patient_id="P5", admit=D(2026, 3, 8), main_diagnosis="K35.800"),
        # P6: planned chemotherapy cycles → excluded
        case("A6", patient_id="P6", admit=D(2026, 3, 1), main_diagnosis="Z51.100"),
        case("B6", patient_id="P6", admit=D(2026, 3, 8), main_diagnosis="Z51.100"),
        # P7: readmitted at another hospital
        case("A7", patient_id="P7", admit=D(2026, 3, 1)),
        case("B7", patient_id="P7", admit=D(2026, 3, 8), hospital_id="H002"),
        # P8: transfer order, then another hospital → transfer; P9: same hospital → counts
        case("A8", patient_id="P8", admit=D(2026, 3, 1), discharge_method="2"),
        case("B8", patient_id="P8", admit=D(2026, 3, 6), hospital_id="H002"),
        case("A9", patient_id="P9", admit=D(2026, 3, 1), discharge_method="2"),
        case("B9", patient_id="P9", admit=D(2026, 3, 6)),
        # P10: first stay in history
        case("B10", patient_id="P10", admit=D(2026, 1, 2)),
        # P11: three stays in a row → two pairs, each with the latest previous stay
        case("A11", patient_id="P11", admit=D(2026, 3, 1), los=2),
        case("B11", patient_id="P11", admit=D(2026, 3, 5), los=2),
        case("C11", patient_id="P11", admit=D(2026, 3, 9), los=2),
        # P12: different categories, same DIP group (only with grouping)
        case("A12", patient_id="P12", admit=D(2026, 3, 1), main_diagnosis="K35.800"),
        case("B12", patient_id="P12", admit=D(2026, 3, 8), main_diagnosis="K37.x00"),
    ]
    hist = [
        case("A10", patient_id="P10", admit=D(2025, 12, 20), los=5),
        # P13: both stays in history → nothing for the current period
        case("A13", patient_id="P13", admit=D(2025, 11, 1), los=2),
        case("B13", patient_id="P13", admit=D(2025, 11, 5), los=2),
    ]
    return cur, hist


def _run(runner, policy, grouped=None) -> dict[str, dict]:
    cur, hist = _scenario()
    stays = runner.stays(policy, cases_table(cur), history=cases_table(hist), grouped=grouped)
    rows = (
        readmission_leads(readmission_pairs(stays, policy, grouped=grouped is not None), policy)
        .to_pyarrow()
        .to_pylist()
    )
    return {r["key"]: r for r in rows}


@pytest.fixture(scope="module")
def default(con, policy):
    from .conftest import Runner

    return _run(Runner(con), policy)


def test_flagged_set_under_default_policy(default):
    assert sorted(default) == ["B1", "B10", "B11", "B2", "B4", "B7", "B9", "C11"]


def test_evidence_names_both_stays(default):
    lead = default["B1"]
    assert lead["case_ids"] == ["A1", "B1"]
    assert lead["impact_fen"] == 50_000
    # gap = 2026-03-20 − 2026-03-10 = 10 days; score = 1 + (15 − 10)/15 + 0 (J18.9≠J18.0) + 1
    assert lead["score"] == pytest.approx(1 + 5 / 15 + 0 + 1)
    for text in ("2026-03-01", "2026-03-10", "2026-03-20", "2026-03-24", "1234.56 元", "500.00 元",
                 "出院 10 天后", "J18.900", "J18.000", "同一诊断类目", "同一医院"):  # fmt: skip
        assert text in lead["evidence"], text


def test_other_hospital_and_history(default):
    assert "另一医院 H002" in default["B7"]["evidence"]
    # gap 2 days, same subcategory, other hospital: 1 + 13/15 + 1 + 0
    assert default["B7"]["score"] == pytest.approx(1 + 13 / 15 + 1)
    assert default["B10"]["case_ids"] == ["A10", "B10"]
    assert default["B11"]["case_ids"] == ["A11", "B11"]
    assert default["C11"]["case_ids"] == ["B11", "C11"]


def test_policy_variants(runner, policy):
    same = _run(runner, with_supervision(policy, readmission_scope="same_hospital"))
    assert "B7" not in same and "B1" in same
    no_exclusion = _run(
        runner,
        with_supervision(
            policy, readmission_exclude_prefixes=[], readmission_exclude_transfers=False
        ),
    )
    assert {"B6", "B8"} <= set(no_exclusion)
    grouped = grouped_table({"A12": "K35-K38:手术", "B12": "K35-K38:手术"})
    with_groups = _run(runner, policy, grouped=grouped)
    assert "同一病种" in with_groups["B12"]["evidence"]
    short = _run(runner, with_supervision(policy, readmission_window_days=9))
    assert "B2" not in short and "B1" not in short and "B4" in short


def _oracle(rows, window: int) -> set[tuple[str, str]]:
    """Brute force: for each stay, the latest earlier stay of the same patient and category
    (order: admit, discharge, id) discharged at most `window` days before its admission."""
    out = set()
    for b in rows:
        earlier = [
            a
            for a in rows
            if a["patient_id"] == b["patient_id"]
            and a["main_diagnosis"][:3] == b["main_diagnosis"][:3]
            and (a["admit_date"], a["discharge_date"], a["case_id"])
            < (b["admit_date"], b["discharge_date"], b["case_id"])
        ]
        if not earlier:
            continue
        prev = max(earlier, key=lambda a: (a["admit_date"], a["discharge_date"], a["case_id"]))
        gap = (b["admit_date"] - prev["discharge_date"]).days
        if 0 <= gap <= window:
            out.add((prev["case_id"], b["case_id"]))
    return out


stay = st.tuples(
    st.sampled_from(["P1", "P2", "P3"]),
    st.sampled_from(["J18.900", "J18.000", "K35.800"]),
    st.integers(0, 60),
    st.integers(0, 10),
)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(stay, min_size=1, max_size=20))
def test_batch_pairs_equal_brute_force(runner, policy, stays):
    rows = [
        case(
            f"C{i:02d}",
            patient_id=p,
            main_diagnosis=dx,
            admit=D(2026, 2, 1) + dt.timedelta(days=start),
            los=los,
        )
        for i, (p, dx, start, los) in enumerate(stays)
    ]
    prepared = runner.stays(policy, cases_table(rows))
    got = readmission_pairs(prepared, policy).select("prev_case_id", "case_id").to_pyarrow()
    pairs = set(zip(got["prev_case_id"].to_pylist(), got["case_id"].to_pylist(), strict=True))
    assert pairs == _oracle(rows, policy.supervision.readmission_window_days)
