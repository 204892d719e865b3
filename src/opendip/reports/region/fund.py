"""基金支付: DIP vs fee-for-service overall, by pool, level and hospital; CMI vs cost."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from opendip.policy.sections.settlement import FFS_BASIS_LABELS
from opendip.reports.calc import cmi, per_case, rate
from opendip.reports.model import Chart, ColumnSpec, Figure, Section, Series, Table
from opendip.reports.region.common import (
    LEVEL_LABELS,
    LEVEL_ORDER,
    ffs_basis,
    fund_columns,
    money_rows,
    pick,
)
from opendip.reports.region.facts import RegionFacts, one

DEFINITIONS = (
    "DIP 统筹应支付 = DIP 支付总额 − 个人负担；按项目统筹支付为同一批病例按项目结算时统筹基金"
    "实际支付的金额。差额为正表示按 DIP 支付多于按项目（医疗机构结余），为负表示少于按项目"
    "（超支）。医疗机构的结余或超支按其职工、居民两个统筹区合计判断。"
)
BASIS_TEXT = {
    "fund": "本地区结余留用/超支分担按统筹基金比较：DIP 统筹应支付 ÷ 按项目统筹支付"
    "，下文差额与比值均按此口径。",
    "total": "本地区结余留用/超支分担按总额比较：DIP 支付总额（统筹基金 + 个人负担）÷ 按项目"
    "医疗总费用，下文差额与比值均按此口径。",
}


def hospital_rows(f: RegionFacts) -> list[dict[str, Any]]:
    """One row per hospital (pools together), biggest deficit first."""
    rows = money_rows(f.scored, ["hospital_id", "hospital_name", "level"], ffs_basis(f.policy))
    for r in rows:
        r["cmi"] = cmi(r["case_score_sum"] or 0, r["cases"], f.base_score)
        r["cost_per_case_fen"] = per_case(r["total_cost_fen"], r["cases"])
        r["dip_per_case_fen"] = per_case(r["dip_amount_fen"], r["cases"])
    return sorted(rows, key=lambda r: (r["dip_minus_ffs_fen"], r["hospital_id"]))


def fund(f: RegionFacts, hospitals: list[dict[str, Any]]) -> Section:
    """`hospitals`: `hospital_rows(f)`."""
    basis = ffs_basis(f.policy)
    columns = fund_columns(basis)
    total = money_rows(f.scored, [], basis)[0]
    surplus = [h for h in hospitals if h["dip_minus_ffs_fen"] > 0]
    deficit = [h for h in hospitals if h["dip_minus_ffs_fen"] < 0]
    # 住院统筹基金支出 = DIP 统筹应支付 + the fund paid for the period's cases not settled by DIP
    nd = f.not_dip.filter(f.not_dip.case_id.isin(f.period_cases.case_id))
    other = int(one(nd.aggregate(x=nd.ffs_fund_fen.fill_null(0).sum()))["x"] or 0)
    inpatient = int(total["fund_payable_fen"]) + other
    dip_share = rate(int(total["fund_payable_fen"]), inpatient)
    figures = [
        Figure("fund.dip_amount_fen", "DIP 支付总额", total["dip_amount_fen"], "fen"),
        Figure("fund.personal_share_fen", "个人负担", total["personal_share_fen"], "fen"),
        Figure("fund.fund_payable_fen", "DIP 统筹应支付", total["fund_payable_fen"], "fen"),
        Figure("fund.ffs_fund_fen", "按项目统筹支付", total["ffs_fund_fen"], "fen"),
        Figure("fund.dip_minus_ffs_fen", "差额（DIP − 按项目）", total["dip_minus_ffs_fen"], "fen"),
        Figure("fund.dip_ffs_ratio", "DIP/按项目", total["dip_ffs_ratio"], "ratio"),
        Figure("fund.not_dip_fund_fen", "未按 DIP 结算病例统筹支付", other, "fen"),
        Figure("fund.inpatient_fund_fen", "住院统筹基金支出", inpatient, "fen"),
        Figure("fund.dip_fund_share", "DIP 支付占住院统筹基金支出比例", dip_share, "ratio"),
        Figure("fund.hospitals_surplus", "结余医疗机构数", len(surplus), "count"),
        Figure(
            "fund.surplus_fen", "结余金额合计", sum(h["dip_minus_ffs_fen"] for h in surplus), "fen"
        ),
        Figure("fund.hospitals_deficit", "超支医疗机构数", len(deficit), "count"),
        Figure(
            "fund.deficit_fen", "超支金额合计", sum(h["dip_minus_ffs_fen"] for h in deficit), "fen"
        ),
    ]
    pools = sorted(money_rows(f.scored, ["pool"], basis), key=lambda r: str(r["pool"]))
    pool_table = Table(
        "fund.by_pool",
        "按统筹区",
        [ColumnSpec("pool_label", "统筹区"), *columns],
        pick(pools, [ColumnSpec("pool_label", ""), *columns]),
    )
    levels = sorted(
        money_rows(f.scored, ["level"], basis), key=lambda r: LEVEL_ORDER.get(r["level"], 99)
    )
    level_table = Table(
        "fund.by_level",
        "按医院等级",
        [ColumnSpec("level_label", "医院等级"), *columns],
        pick(levels, [ColumnSpec("level_label", ""), *columns]),
    )
    hospital_columns = [
        ColumnSpec("hospital_id", "医疗机构代码"),
        ColumnSpec("hospital_name", "医疗机构"),
        ColumnSpec("level_label", "等级"),
        *columns,
        ColumnSpec("result", "结余/超支"),
    ]
    hospital_table = Table(
        "fund.by_hospital",
        "按医疗机构（超支最多者在前）",
        hospital_columns,
        pick(hospitals, hospital_columns),
    )
    histogram = Chart(
        "fund.ratio_histogram",
        "医疗机构 DIP/按项目 比值分布",
        "histogram",
        [Series("医疗机构数", ratio_bins([h["dip_ffs_ratio"] for h in hospitals]))],
        x_label=FFS_BASIS_LABELS[basis],
        y_label="医疗机构数",
        note=f"每组宽 {RATIO_BIN}（含下限不含上限）；低于 {RATIO_LOW}、不低于 {RATIO_HIGH} 的各并为一组",
    )
    charts = [histogram]
    months = money_rows(f.scored, ["settle_month"], basis)
    if len(months) > 1:
        months.sort(key=lambda r: r["settle_month"])
        charts.append(
            Chart(
                "fund.monthly",
                "各月 DIP 统筹应支付与按项目统筹支付（万元）",
                "line",
                [
                    Series(
                        "DIP 统筹应支付",
                        [(m["settle_month"], _wan(m["fund_payable_fen"])) for m in months],
                    ),
                    Series(
                        "按项目统筹支付",
                        [(m["settle_month"], _wan(m["ffs_fund_fen"])) for m in months],
                    ),
                ],
                x_label="结算月份",
                y_label="万元",
            )
        )
    paragraphs = [
        DEFINITIONS,
        BASIS_TEXT[basis],
        f"{len(hospitals)} 家医疗机构中，{len(surplus)} 家结余、{len(deficit)} 家超支、"
        f"{len(hospitals) - len(surplus) - len(deficit)} 家持平。",
        "住院统筹基金支出 = DIP 统筹应支付 + 未按 DIP 结算病例（按项目、床日、新技术按项目等）"
        "的统筹支付；DIP 支付占住院统筹基金支出比例 = DIP 统筹应支付 ÷ 住院统筹基金支出。",
    ]
    return Section(
        "fund",
        "基金支付：DIP 与按项目付费对比",
        paragraphs,
        figures,
        [pool_table, level_table, hospital_table],
        charts,
    )


def hospitals(f: RegionFacts, by_hospital: list[dict[str, Any]]) -> Section:
    """`by_hospital`: `hospital_rows(f)`."""
    rows = sorted(by_hospital, key=lambda r: (LEVEL_ORDER.get(r["level"], 99), r["hospital_id"]))
    columns = [
        ColumnSpec("hospital_id", "医疗机构代码"),
        ColumnSpec("hospital_name", "医疗机构"),
        ColumnSpec("level_label", "等级"),
        ColumnSpec("cases", "DIP 病例数", "count"),
        ColumnSpec("cmi", "CMI", "coefficient"),
        ColumnSpec("cost_per_case_fen", "次均医疗费用", "fen"),
        ColumnSpec("dip_per_case_fen", "次均 DIP 支付", "fen"),
    ]
    by_level: dict[str, list[tuple[Any, Any]]] = {}
    for r in rows:
        if r["cmi"] is not None:
            by_level.setdefault(r["level"], []).append((r["cmi"], _yuan(r["cost_per_case_fen"])))
    scatter = Chart(
        "hospitals.cmi_vs_cost",
        "医疗机构 CMI 与次均医疗费用",
        "scatter",
        [
            Series(LEVEL_LABELS.get(lv, lv), pts)
            for lv, pts in sorted(by_level.items(), key=lambda kv: LEVEL_ORDER.get(kv[0], 99))
        ],
        x_label="CMI（病例组合指数）",
        y_label="次均医疗费用（元）",
    )
    return Section(
        "hospitals",
        "医疗机构病例组合指数（CMI）与费用",
        [
            "CMI = 医疗机构 DIP 病例分值合计 ÷ 病例数 ÷ 基准分值（政策规定的基准分值，"
            f"本期 {f.base_score}）；次均费用按 DIP 病例的医疗总费用计。"
        ],
        [],
        [Table("hospitals.cmi", "各医疗机构 CMI 与次均费用", columns, pick(rows, columns))],
        [scatter],
    )


#: The hospitals' DIP/FFS ratio histogram: bins of 0.05 from 0.50 to 1.50, and one open bin
#: on each side (shown only when a hospital falls in it), so an outlier (a hospital with a
#: tiny fee-for-service amount) cannot stretch the chart over thousands of bins.
RATIO_BIN = Decimal("0.05")
RATIO_LOW, RATIO_HIGH = Decimal("0.50"), Decimal("1.50")


def ratio_bins(ratios: list[Decimal | None]) -> list[tuple[str, int]]:
    """Pre-binned histogram points: ("0.95–1.00", hospitals) for r in [0.95, 1.00), plus
    ("< 0.50", n) and ("≥ 1.50", n) when occupied."""
    values = [r for r in ratios if r is not None]
    first, last = int(RATIO_LOW / RATIO_BIN), int(RATIO_HIGH / RATIO_BIN)
    counts = dict.fromkeys(range(first, last), 0)
    below = above = 0
    for r in values:
        if r < RATIO_LOW:
            below += 1
        elif r >= RATIO_HIGH:
            above += 1
        else:
            counts[int(r // RATIO_BIN)] += 1
    points = [(f"< {RATIO_LOW:.2f}", below)] if below else []
    points += [(f"{i * RATIO_BIN:.2f}–{(i + 1) * RATIO_BIN:.2f}", n) for i, n in counts.items()]
    return points + ([(f"≥ {RATIO_HIGH:.2f}", above)] if above else [])


def _yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else Decimal(fen) / 100


def _wan(fen: int) -> Decimal:
    return Decimal(fen) / 1_000_000
