"""Monthly indicators: hand-computed values, changes and anomaly flags."""

from decimal import Decimal

import pytest

from opendip.supervision.indicators import monthly_indicators

from .conftest import (
    D,
    Runner,
    case,
    cases_table,
    grouped_table,
    hospitals_table,
    scored_table,
    with_supervision,
)


def _month_cases(prefix: str, year: int, month: int, cost: int) -> list[dict]:
    return [case(f"{prefix}{i:02d}", admit=D(year, month, 1), los=5, total_cost=cost,
                 personal_selfpay=20_000, out_of_list_cost=10_000) for i in range(30)]  # fmt: skip


@pytest.fixture(scope="module")
def table(con, policy):
    policy = with_supervision(policy, history_months=24)
    hist = []
    for m in range(1, 8):
        hist += _month_cases(f"M{m}-", 2025, m, 100_000)
    hist += _month_cases("M8-", 2025, 8, 300_000)
    cur = _month_cases("N8-", 2026, 8, 100_000)
    scored = scored_table(
        [(r["case_id"], "H001", "high" if i < 3 else "normal", "150") for i, r in enumerate(cur)]
    )
    grouped = grouped_table({r["case_id"]: "G1" for r in cur[:27]})
    grouped = grouped.set_column(
        grouped.schema.get_field_index("group_type"), "group_type", [["core"] * 27]
    )
    unmatched = grouped_table({r["case_id"]: "" for r in cur[27:]})
    unmatched = unmatched.set_column(
        unmatched.schema.get_field_index("group_type"), "group_type", [["unmatched"] * 3]
    )
    import pyarrow as pa

    runner = Runner(con)
    stays = runner.stays(
        policy,
        cases_table(cur),
        history=cases_table(hist),
        hospitals=hospitals_table({"H001": "tertiary"}),
        scored=scored,
        grouped=pa.concat_tables([grouped, unmatched]),
    )
    rows = monthly_indicators(stays, policy, scored=True, grouped=True).to_pyarrow().to_pylist()
    return {(r["scope"], r["month"], r["indicator"]): r for r in rows}


def test_values(table):
    h = ("hospital", "2026-08")
    assert table[(*h, "cases")]["value"] == Decimal(30)
    assert table[(*h, "total_cost")]["value"] == Decimal("30000.00")
    assert table[(*h, "cost_per_case")]["value"] == Decimal("1000.00")
    assert table[(*h, "alos")]["value"] == Decimal(5)
    assert table[(*h, "selfpay_share")]["value"] == Decimal("0.2")
    assert table[(*h, "out_of_list_share")]["value"] == Decimal("0.1")
    assert table[(*h, "readmission_rate")]["value"] == Decimal(0)
    assert table[(*h, "cmi")]["value"] == Decimal("1.5")
    assert table[(*h, "high_multiple_share")]["value"] == Decimal("0.1")
    assert table[(*h, "low_multiple_share")]["value"] == Decimal(0)
    assert table[(*h, "grouping_rate")]["value"] == Decimal("0.9")
    assert table[(*h, "cmi")]["indicator_label"] == "CMI"
    assert table[("region", "2026-08", "cost_per_case")]["hospital_id"] == "*"


def test_changes(table):
    aug25 = table[("hospital", "2025-08", "cost_per_case")]
    assert aug25["prev_month_value"] == Decimal("1000.00")
    assert aug25["mom_change"] == pytest.approx(2.0)
    aug26 = table[("hospital", "2026-08", "cost_per_case")]
    assert aug26["last_year_value"] == Decimal("3000.00")
    assert aug26["yoy_change"] == pytest.approx(1000 / 3000 - 1, abs=1e-6)
    assert aug26["prev_month_value"] is None and aug26["mom_change"] is None


def test_anomaly_against_own_trend(table):
    aug25 = table[("hospital", "2025-08", "cost_per_case")]
    # seven previous months at 1000.00: MAD 0 → spread 5 % of the median = 50 → z = 40
    assert aug25["own_z"] == pytest.approx(40.0)
    assert aug25["anomaly"] is True
    assert "较本机构前期中位数" in aug25["anomaly_reason"]
    jul25 = table[("hospital", "2025-07", "cost_per_case")]
    assert jul25["own_z"] == pytest.approx(0.0) and jul25["anomaly"] is False
    # too little history (1 month of 6 needed): no z
    assert table[("hospital", "2026-08", "cost_per_case")]["own_z"] is None
    # a single hospital has no peers
    assert aug25["peer_z"] is None


def test_cmi_is_rounded_half_up_exactly_at_a_tie(policy):
    """CMI = Σ case score ÷ cases ÷ base score, half up at 6 decimals in exact arithmetic:
    a mean of 0.6771235 × base is a true tie (the DOUBLE 0.6771235 lies just below it, so a
    floating-point ROUND gave 0.677123 on one engine and 0.677124 on the other)."""
    import ibis
    import pyarrow as pa

    from opendip.supervision.indicators import _values

    base = policy.directory.base_score
    # (month, cases, Σ score): a tie, just below it, and a month without scores
    rows = [(1, 2, Decimal("0.6771235") * 2 * base), (2, 10, Decimal("0.6771234") * 10 * base)]
    rows.append((3, 0, None))
    ints = ["n", "total", "los_sum", "los_n", "selfpay", "oolist", "tcm", "readmit", "score_n"]
    columns = {
        "scope": pa.array(["hospital"] * 3),
        "hospital_id": pa.array(["H001"] * 3),
        "level": pa.array(["tertiary"] * 3),
        "month_index": pa.array([m for m, _, _ in rows], pa.int64()),
        **{c: pa.array([1, 1, 1], pa.int64()) for c in ints},
        "high_n": pa.array([0, 0, 0], pa.int64()),
        "low_n": pa.array([0, 0, 0], pa.int64()),
        "dev_n": pa.array([n for _, n, _ in rows], pa.int64()),
        "score_sum": pa.array([s for _, _, s in rows], pa.decimal128(38, 4)),
    }
    columns["score_n"] = pa.array([n for _, n, _ in rows], pa.int64())
    out = _values(ibis.memtable(pa.table(columns)), policy, scored=True, grouped=False)
    got = {
        r["month_index"]: r["value"]
        for r in out.to_pyarrow().to_pylist()
        if r["indicator"] == "cmi"
    }
    assert got == {1: Decimal("0.677124"), 2: Decimal("0.677123"), 3: None}
