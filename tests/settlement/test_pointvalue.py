"""Point value formulas, budget, reserve, budget point value from history (hand-computed)."""

from __future__ import annotations

from decimal import Decimal

import builders as b
import pyarrow as pa
import pytest

from opendip.settlement import budget_point_value, final_point_value, pool_funds
from opendip.settlement.errors import MissingParameterError, NoCasesError

D = Decimal


def pol(**kw):
    return b.policy(**kw).periods()[-1][2]


def test_reserve_is_held_back_and_non_dip_ffs_deducted():
    f = pool_funds(pol(), "employee", non_dip_ffs_fen=1_000_000)
    # 1,000,000 yuan; 8% reserve = 80,000; minus 10,000 yuan paid by item
    assert (f.budget_fen, f.reserve_fen, f.available_fen) == (
        100_000_000,
        8_000_000,
        91_000_000,
    )
    keep = pol(settlement={"deduct_non_dip_ffs": False})
    assert pool_funds(keep, "employee", 1_000_000).available_fen == 92_000_000


def test_fund_plus_personal():
    p = pol(settlement={"budget": {"employee": {"fund_budget_yuan": 30000}}})
    f = pool_funds(p, "employee")  # available 27,600
    pv, target = final_point_value(p, f, D(288), personal_fen=900_000)
    # (27,600 + 9,000) / 288 = 127.0833333… → 127.083333
    assert (pv, target) == (D("127.083333"), D("36600"))


def test_fund_only():
    p = pol(settlement={"point_value_formula": "fund_only"})
    pv, _ = final_point_value(p, pool_funds(p, "employee"), D(920000), personal_fen=123)
    assert pv == D(1)


def test_fund_over_ratio_and_its_missing_ratio():
    p = pol(
        settlement={
            "point_value_formula": "fund_over_ratio",
            "point_value_decimals": 4,
            "budget": {"employee": {"fund_budget_yuan": 1000000, "reimbursement_ratio": D("0.8")}},
        }
    )
    # 920,000 / 0.8 / 7,000 = 164.2857142… → 164.2857
    pv, _ = final_point_value(p, pool_funds(p, "employee"), D(7000), 0)
    assert pv == D("164.2857")
    with pytest.raises(MissingParameterError, match=r"resident\.reimbursement_ratio"):
        final_point_value(p, pool_funds(p, "resident"), D(7000), 0)


def test_no_score_is_an_explicit_error():
    p = pol()
    with pytest.raises(NoCasesError, match="employee"):
        final_point_value(p, pool_funds(p, "employee"), D(0), 0)


def test_budget_point_value_from_policy_or_history():
    assert budget_point_value(pol(), "employee") == D(100)
    tree = b.demo_tree()
    del tree["settlement"]["budget"]["employee"]["budget_point_value"]
    from opendip.policy import PolicyFile

    p = PolicyFile(tree, "t").periods()[-1][2]
    with pytest.raises(MissingParameterError) as exc:
        budget_point_value(p, "employee")
    assert str(exc.value) == (
        "缺少政策参数 settlement.budget.employee.budget_point_value：月度预结算需要预算点值："
        "请在政策中给出，或提供历史数据（--history，列 pool, year, total_cost_fen, total_score）"
        "由历年加权费用 ÷ 加权分值计算。未计算金额，请在政策文件中补充。"
    )
    history = pa.table(
        {
            "pool": ["employee"] * 3 + ["resident"],
            "year": [2023, 2024, 2025, 2025],
            "total_cost_fen": [100_000_000, 110_000_000, 121_000_000, 5],
            "total_score": [D(10000), D(10000), D(11000), D(1)],
        }
    )
    # weights 1:2:7 → (1×1e6 + 2×1.1e6 + 7×1.21e6) / (1×1e4 + 2×1e4 + 7×1.1e4)
    # = 11,670,000 / 107,000 = 109.065420… → 109.065421
    assert budget_point_value(p, "employee", history) == D("109.065421")


def test_fund_over_ratio_refuses_a_zero_ratio_with_its_message():
    p = pol(
        settlement={
            "point_value_formula": "fund_over_ratio",
            "budget": {"employee": {"fund_budget_yuan": 1000000, "reimbursement_ratio": 0}},
        }
    )
    with pytest.raises(MissingParameterError) as err:
        final_point_value(p, pool_funds(p, "employee"), D(7000), 0)
    assert str(err.value) == (
        "缺少政策参数 settlement.budget.employee.reimbursement_ratio："
        "point_value_formula = fund_over_ratio 需要该统筹区的报销比例。"
        "未计算金额，请在政策文件中补充。"
    )


def test_budget_point_value_from_a_history_whose_score_is_below_one_point():
    tree = b.demo_tree()
    del tree["settlement"]["budget"]["employee"]["budget_point_value"]
    from opendip.policy import PolicyFile

    p = PolicyFile(tree, "t").periods()[-1][2]
    assert p.directory.year_weights[2025] == 7
    history = pa.table(
        {
            "pool": ["employee"],
            "year": [2025],
            "total_cost_fen": [123],
            "total_score": [D("0.1")],
        }
    )
    # a weighted total score of 7 × 0.1 = 0.7 point is still a score:
    # 7 × 1.23 / 0.7 = 12.3
    assert budget_point_value(p, "employee", history) == D("12.3")
    # no row of a weighted year for the pool: refused, naming the pool and the key
    other = history.set_column(0, "pool", pa.array(["resident"]))
    with pytest.raises(MissingParameterError, match=r"employee\.budget_point_value") as err:
        budget_point_value(p, "employee", other)
    assert "历史数据中没有统筹区 employee" in str(err.value)


def test_the_reserve_is_rounded_half_up_on_a_half_fen():
    p = pol(
        settlement={
            "reserve_share": D("0.1"),
            "budget": {"employee": {"fund_budget_yuan": D("1000.05")}},
        }
    )
    # 100,005 fen × 0.1 = 10,000.5 fen → 10,001 (half even would keep 10,000)
    assert pool_funds(p, "employee").as_dict() == {
        "pool": "employee",
        "budget_fen": 100_005,
        "reserve_fen": 10_001,
        "non_dip_ffs_fen": 0,
        "available_fen": 90_004,
    }


def test_nothing_available_after_reserve_and_by_item_payments_is_refused_with_the_numbers():
    from opendip.settlement.errors import SettlementError

    p = pol(settlement={"budget": {"employee": {"fund_budget_yuan": 30000}}})
    # 3,000,000 fen − 8 % reserve 240,000 − 2,760,000 paid by item = 0
    with pytest.raises(SettlementError) as exc:
        pool_funds(p, "employee", non_dip_ffs_fen=2_760_000)
    assert str(exc.value) == (
        "统筹区 employee：预算 3000000 分扣除调剂金 240000 分及非 DIP 病例按项目支付 "
        "2760000 分后不大于 0，无法计算点值"
    )
    assert pool_funds(p, "employee", non_dip_ffs_fen=2_759_999).available_fen == 1


def test_a_total_score_below_one_point_still_has_a_point_value():
    p = pol(
        settlement={
            "point_value_formula": "fund_only",
            "budget": {"employee": {"fund_budget_yuan": 30000}},
        }
    )
    # available 27,600 yuan ÷ 0.5 point = 55,200 yuan per point
    pv, target = final_point_value(p, pool_funds(p, "employee"), D("0.5"), 0)
    assert (pv, target) == (D("55200.000000"), D("27600"))


def test_a_pool_without_a_budget_is_refused_naming_its_key():
    with pytest.raises(MissingParameterError) as err:
        pool_funds(pol(), "no_such_pool")
    assert err.value.parameter == "settlement.budget.no_such_pool"
    assert str(err.value) == (
        "缺少政策参数 settlement.budget.no_such_pool：该统筹区没有年度预算。"
        "未计算金额，请在政策文件中补充。"
    )


def test_a_budget_of_0_fen_is_refused_and_1_fen_is_a_budget():
    from opendip.settlement.errors import SettlementError

    # 0.004 yuan is positive (the policy accepts it) but 0.4 fen rounds to 0 fen
    p = pol(settlement={"budget": {"employee": {"fund_budget_yuan": D("0.004")}}})
    with pytest.raises(SettlementError) as err:
        pool_funds(p, "employee")
    assert str(err.value) == "政策参数 settlement.budget.employee.fund_budget_yuan 必须大于 0"
    # 0.005 yuan = 0.5 fen → 1 fen (half up); 8 % reserve of 1 fen = 0.08 → 0
    p = pol(settlement={"budget": {"employee": {"fund_budget_yuan": D("0.005")}}})
    assert pool_funds(p, "employee").as_dict() == {
        "pool": "employee",
        "budget_fen": 1,
        "reserve_fen": 0,
        "non_dip_ffs_fen": 0,
        "available_fen": 1,
    }


def test_a_pool_without_a_budget_has_no_budget_point_value_from_the_policy():
    """Only history can give it one; without history the refusal names the pool's key."""
    with pytest.raises(MissingParameterError) as err:
        budget_point_value(pol(), "no_such_pool")
    assert err.value.parameter == "settlement.budget.no_such_pool.budget_point_value"
    history = pa.table(
        {
            # another pool's row and a year without a weight come first: both are skipped
            "pool": ["employee", "no_such_pool", "no_such_pool"],
            "year": [2025, 2019, 2025],
            "total_cost_fen": [999, 5, 1_234_500],
            "total_score": [D(1), D(5), D(100)],
        }
    )
    # only 2025 (weight 7): 7 × 12,345.00 yuan ÷ (7 × 100 points) = 123.45
    assert budget_point_value(pol(), "no_such_pool", history) == D("123.450000")


def test_history_without_a_needed_column_is_refused_naming_it():
    from opendip.settlement.errors import SettlementError

    history = pa.table({"pool": ["employee"], "year": [2025], "total_cost_fen": [100]})
    with pytest.raises(SettlementError) as err:
        budget_point_value(pol(), "no_such_pool", history)
    assert str(err.value) == "历史数据缺少列 ['total_score']"


def test_a_budget_point_value_given_by_the_policy_is_rounded_half_up():
    p = pol(settlement={"budget": {"employee": {"budget_point_value": D("12.3456785")}}})
    assert budget_point_value(p, "employee") == D("12.345679")  # half even would give …678
