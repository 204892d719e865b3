"""年终清算 / 月度预结算: the pool-level money of the run, as the settlement wrote it."""

from __future__ import annotations

from decimal import Decimal

import pyarrow.parquet as pq

from opendip.reports.model import ColumnSpec, Figure, Section, Table
from opendip.reports.region.common import POOL_LABELS
from opendip.reports.region.facts import RegionFacts
from opendip.reports.source import ReportInputError

CLEARING_COLUMNS = [
    ColumnSpec("pool_label", "统筹区"),
    ColumnSpec("budget_fen", "年度基金预算", "fen"),
    ColumnSpec("reserve_fen", "区域调剂金", "fen"),
    ColumnSpec("available_fen", "可分配基金", "fen"),
    ColumnSpec("total_score", "总结算分值", "score"),
    ColumnSpec("point_value", "结算点值（元/分）", "point_value"),
    ColumnSpec("cases", "DIP 病例数", "count"),
    ColumnSpec("dip_amount_hospitals_fen", "DIP 支付总额", "fen"),
    ColumnSpec("fund_payable_fen", "统筹应支付", "fen"),
    ColumnSpec("reserve_used_fen", "调剂金使用", "fen"),
    ColumnSpec("withheld_fen", "质量保证金", "fen"),
    ColumnSpec("returned_fen", "返还保证金", "fen"),
    ColumnSpec("clearing_total_fen", "清算应付总额", "fen"),
    ColumnSpec("advances_fen", "已预付金额", "fen"),
    ColumnSpec("clearing_payment_fen", "清算应拨付", "fen"),
]
MONTHLY_COLUMNS = [
    ColumnSpec("pool_label", "统筹区"),
    ColumnSpec("cases", "DIP 病例数", "count"),
    ColumnSpec("total_score", "总结算分值", "score"),
    ColumnSpec("dip_amount_fen", "DIP 支付总额", "fen"),
    ColumnSpec("personal_share_fen", "个人负担", "fen"),
    ColumnSpec("fund_payable_fen", "统筹应支付", "fen"),
    ColumnSpec("withheld_fen", "预留质量保证金", "fen"),
    ColumnSpec("advance_fen", "本月预付", "fen"),
]
SUMMED = (
    "cases",
    "dip_amount_fen",
    "personal_share_fen",
    "fund_payable_fen",
    "withheld_fen",
    "advance_fen",
)


def settlement(f: RegionFacts) -> Section:
    if f.kind == "annual":
        return _clearing(f)
    return _monthly(f)


def _clearing(f: RegionFacts) -> Section:
    path = f.src.run_dir / "reconciliation.parquet"
    if not path.is_file():
        raise ReportInputError(
            f"年终清算运行目录 {f.src.run_dir} 缺少对账表 reconciliation.parquet"
        )
    pools = sorted(pq.read_table(path).to_pylist(), key=lambda r: str(r["pool"]))
    figures = []
    for r in pools:
        r["pool_label"] = POOL_LABELS.get(r["pool"], r["pool"])
        figures.append(
            Figure(
                f"clearing.point_value.{r['pool']}",
                f"{r['pool_label']}结算点值（元/分）",
                Decimal(r["point_value"]),
                "point_value",
            )
        )
    for key, label in (
        ("budget_fen", "年度基金预算"),
        ("fund_payable_fen", "统筹应支付"),
        ("clearing_total_fen", "清算应付总额"),
        ("advances_fen", "已预付金额"),
        ("clearing_payment_fen", "清算应拨付"),
    ):
        figures.append(Figure(f"clearing.{key}", label, sum(int(r[key]) for r in pools), "fen"))
    keep = {c.name for c in CLEARING_COLUMNS} | {"pool"}
    return Section(
        "clearing",
        "年终清算",
        [
            "结算点值 =（可分配基金 + DIP 病例个人负担）÷ 总结算分值（按政策 point_value_formula）；"
            "清算应拨付 = 清算应付总额 − 已预付金额。各医疗机构明细见结算公示表。"
        ],
        figures,
        [
            Table(
                "clearing.pools",
                "各统筹区清算",
                CLEARING_COLUMNS,
                [{k: r[k] for k in keep} for r in pools],
            )
        ],
    )


def _monthly(f: RegionFacts) -> Section:
    path = f.src.run_dir / "hospitals.parquet"
    if not path.is_file():
        raise ReportInputError(f"月度预结算运行目录 {f.src.run_dir} 缺少 hospitals.parquet")
    by_pool: dict[str, dict] = {}
    point_values: dict[str, Decimal] = {}
    for r in pq.read_table(path).to_pylist():
        acc = by_pool.setdefault(
            r["pool"], {"pool": r["pool"], "total_score": Decimal(0), **dict.fromkeys(SUMMED, 0)}
        )
        for k in SUMMED:
            acc[k] += int(r[k] or 0)
        acc["total_score"] += Decimal(r["total_score"] or 0)
    for r in f.scored.select("pool", "point_value").distinct().to_pyarrow().to_pylist():
        point_values[r["pool"]] = Decimal(r["point_value"])
    rows = []
    figures = []
    for pool in sorted(by_pool):
        r = by_pool[pool]
        r["pool_label"] = POOL_LABELS.get(pool, pool)
        rows.append(r)
        if pool in point_values:
            figures.append(
                Figure(
                    f"monthly.point_value.{pool}",
                    f"{r['pool_label']}预算点值（元/分）",
                    point_values[pool],
                    "point_value",
                )
            )
    for key, label in (
        ("fund_payable_fen", "统筹应支付"),
        ("withheld_fen", "预留质量保证金"),
        ("advance_fen", "本月预付合计"),
    ):
        figures.append(Figure(f"monthly.{key}", label, sum(r[key] for r in rows), "fen"))
    return Section(
        "monthly",
        "月度预结算",
        ["月度预结算按预算点值计算，预留质量保证金后按月预付；年终清算时按结算点值多退少补。"],
        figures,
        [Table("monthly.pools", "各统筹区月度预结算", MONTHLY_COLUMNS, rows)],
    )
