"""以收定支 budget by hand; the point value forecast recomputed independently; back-test."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from opendip.engine import connect
from opendip.forecast import ForecastError, dip_budget, forecast_point_value, seasonality
from opendip.forecast.run import backtest, forecast_from_months
from opendip.policy import PolicyFile
from tests.reports.region import MONTH, make_region

ROOT = Path(__file__).resolve().parents[2]
DEMO = PolicyFile.read(ROOT / "policies" / "demo-region.yaml").periods()[-1][2]


def test_budget_by_hand():
    lines = {b.pool: b for b in dip_budget(DEMO)}
    # employee: 1 120 000 000 × 0.95 × 0.45 × 0.88 = 421 344 000 yuan
    assert lines["employee"].dip_budget_fen == 42_134_400_000
    assert lines["employee"].difference_fen == 134_400_000
    # resident: (2 450 000 000 + 30 000 000) × 0.95 × 0.55 × 0.9 = 1 166 220 000 yuan
    assert lines["resident"].after_reserve_fen == 235_600_000_000
    assert lines["resident"].dip_budget_fen == 116_622_000_000


def test_budget_without_plan_is_refused():
    from tests.conftest import policy_with

    with pytest.raises(ForecastError, match=r"budget\.plan"):
        dip_budget(policy_with({"budget": {"forecast_tolerance": 0.05}}))


def _history(months: dict[str, int]) -> pa.Table:
    return pa.table(
        {
            "insurance_type": ["employee"] * len(months),
            "settle_month": list(months),
            "total_cost": list(months.values()),
        }
    )


def test_seasonality_by_hand():
    # Two years: months 1–12 cost 1..12 (sum 78), and all equal (10 each).
    a = {f"2024-{m:02d}": m for m in range(1, 13)}
    b = {f"2025-{m:02d}": 10 for m in range(1, 13)}
    partial = {"2023-01": 5}  # an incomplete year is not used
    con = connect()
    s = seasonality(con.create_table("h", _history({**a, **b, **partial})))["employee"]
    assert s[1] == ((Decimal(1) / 78 + Decimal(1) / 12) / 2, Decimal(1) / 78, Decimal(1) / 12)
    assert s[12] == (Decimal(1), Decimal(1), Decimal(1))
    with pytest.raises(ForecastError, match="完整 12 个月"):
        seasonality(con.create_table("p", _history(partial)))


def test_forecast_by_hand():
    """Months 1–6 carried half the year's cost in history: score, personal and non-DIP FFS
    so far are doubled; the point value is the engine's formula on those."""
    con = connect()
    scored = con.create_table(
        "s",
        pa.table(
            {
                "pool": ["employee", "employee"],
                "settle_month": ["2026-01", "2026-06"],
                "settled_score": pa.array([Decimal("1000000"), Decimal("500000")]),
                "personal_share_fen": [100_000_000, 50_000_000],
            }
        ),
    )
    seasons = {"employee": {6: (Decimal("0.5"), Decimal("0.4"), Decimal("0.6"))}}
    (f,) = forecast_point_value(scored, None, 6, seasons, DEMO)
    s = DEMO.settlement
    budget = Decimal(s.budget["employee"].fund_budget_yuan)
    available = budget - (budget * s.reserve_share).quantize(Decimal("0.01"), ROUND_HALF_UP)
    expected = ((available + Decimal(3_000_000)) / Decimal(3_000_000)).quantize(
        Decimal("0.000001"), ROUND_HALF_UP
    )
    assert f.point_value == expected
    assert f.projected_score == Decimal(3_000_000)
    # share 0.4 → score 3.75 M → lower value; share 0.6 → 2.5 M → higher value.
    low = ((available + Decimal(3_750_000)) / Decimal(3_750_000)).quantize(
        Decimal("0.000001"), ROUND_HALF_UP
    )
    assert f.point_value_low == low
    assert f.budget_point_value == Decimal(225)
    assert f.drift == ((expected - 225) / 225).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    assert f.warning == (abs(f.drift) > Decimal("0.05"))
    assert "预测年终结算点值" in f.message()
    with pytest.raises(ForecastError, match="1—12"):
        forecast_point_value(scored, None, 13, seasons, DEMO)
    with pytest.raises(ForecastError, match="第 5 月"):
        forecast_point_value(scored, None, 5, seasons, DEMO)


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_region(tmp_path_factory.mktemp("forecast-region"))


def test_backtest_recomputed_with_sql(region: Path):
    history = [region / f"cases_{y}.parquet" for y in (2023, 2024, 2025)]
    table = backtest(region / "settlement", history).to_pylist()
    assert [r["through_month"] for r in table if r["pool"] == "employee"] == list(range(1, 12))
    con = duckdb.connect()
    k = 3
    share = {}
    for pool in ("employee", "resident"):
        ys = con.execute(
            f"""SELECT sum(total_cost) FILTER (WHERE settle_month[6:7]::INT <= {k})
                       / sum(total_cost) FROM read_parquet({[str(p) for p in history]})
                WHERE insurance_type = ? GROUP BY settle_month[1:4]
                HAVING count(DISTINCT settle_month) = 12""",
            [pool],
        ).fetchall()
        share[pool] = sum(Decimal(str(y[0])) for y in ys) / len(ys)
    pol = PolicyFile.read(region / "policy.yaml").periods()[-1][2]
    for pool in ("employee", "resident"):
        score, personal = con.execute(
            f"""SELECT sum(settled_score), sum(personal_share_fen)
                FROM '{region / "settlement" / "cases.parquet"}' s
                JOIN '{region / "cases_2026.parquet"}' r USING (case_id)
                WHERE s.pool = ? AND r.settle_month <= '2026-0{k}'""",
            [pool],
        ).fetchone()
        non_dip = con.execute(
            f"""SELECT coalesce(sum(ffs_fund_fen), 0) FROM '{region / "settlement" / "not_dip.parquet"}'
                WHERE pool = ? AND status = '按项目付费' AND settle_month <= '2026-0{k}'""",
            [pool],
        ).fetchone()[0]
        row = next(r for r in table if r["pool"] == pool and r["through_month"] == k)
        s = pol.settlement
        budget = Decimal(s.budget[pool].fund_budget_yuan) * 100
        reserve = (budget * s.reserve_share).quantize(Decimal(1), ROUND_HALF_UP)
        projected_nd = (Decimal(non_dip) / share[pool]).quantize(Decimal(1), ROUND_HALF_UP)
        projected_p = (Decimal(personal) / share[pool]).quantize(Decimal(1), ROUND_HALF_UP)
        available = budget - reserve - projected_nd
        pv = ((available + projected_p) / 100 / (Decimal(score) / share[pool])).quantize(
            Decimal("0.000001"), ROUND_HALF_UP
        )
        # Shares from DOUBLE in SQL vs exact in the engine: equal to the 6th decimal here.
        assert abs(row["forecast"] - pv) <= Decimal("0.000002"), pool
        assert row["error"] == (row["forecast"] / row["actual"] - 1).quantize(
            Decimal("0.0001"), ROUND_HALF_UP
        )


def test_forecast_from_monthly_run(region: Path):
    with pytest.raises(ForecastError, match="缺少 2026-01、2026-02 的月度预结算运行"):
        forecast_from_months(
            region / "policy.yaml",
            [region / f"settlement-{MONTH}"],
            [region / "cases_2025.parquet"],
        )
    with pytest.raises(ForecastError, match="月度预结算运行目录"):
        forecast_from_months(
            region / "policy.yaml", [region / "settlement"], [region / "cases_2025.parquet"]
        )
    with pytest.raises(ForecastError, match="历史结算清单文件不存在"):
        forecast_from_months(
            region / "policy.yaml", [region / f"settlement-{MONTH}"], [region / "无.parquet"]
        )
