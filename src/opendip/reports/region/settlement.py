"""年终清算 / 月度预结算: the pool-level money of the run, as the settlement wrote it."""

from __future__ import annotations

from decimal import Decimal

import pyarrow.parquet as pq

from opendip.policy.sections.settlement import FFS_BASIS_LABELS
from opendip.reports.model import ColumnSpec, Figure, Section, Table
from opendip.reports.region.common import POOL_LABELS, ffs_basis
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
    ColumnSpec("reserve_opening_fen", "调剂金期初", "fen"),
    ColumnSpec("reserve_uses_fen", "调剂金使用", "fen"),
    ColumnSpec("reserve_returns_fen", "收回至调剂金", "fen"),
    ColumnSpec("reserve_closing_fen", "调剂金期末", "fen"),
    ColumnSpec("kept_in_fund_fen", "收回留在统筹基金", "fen"),
    ColumnSpec("withheld_fen", "质量保证金", "fen"),
    ColumnSpec("returned_fen", "返还保证金", "fen"),
    ColumnSpec("clearing_total_fen", "清算应付总额", "fen"),
    ColumnSpec("advances_fen", "已预付金额", "fen"),
    ColumnSpec("clearing_payment_fen", "清算应拨付", "fen"),
]
#: Each hospital's clearing line as the bands read it (hospitals.parquet of the run): the
#: two amounts compared on the policy's basis, the ratio used, the band applied.
HOSPITAL_CLEARING_COLUMNS = [
    ColumnSpec("hospital_id", "医疗机构代码"),
    ColumnSpec("hospital_name", "医疗机构"),
    ColumnSpec("pool_label", "统筹区"),
    ColumnSpec("compare_dip_fen", "DIP 侧", "fen"),
    ColumnSpec("compare_ffs_fen", "按项目侧", "fen"),
    ColumnSpec("dip_ffs_ratio", "比值（所用）", "coefficient"),
    ColumnSpec("ffs_band_label", "适用分段"),
    ColumnSpec("adjustment_fen", "结余超支调整", "fen"),
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
    for key, label in (
        ("reserve_opening_fen", "区域调剂金期初"),
        ("reserve_uses_fen", "调剂金使用（超支分担）"),
        ("reserve_returns_fen", "收回至调剂金"),
        ("reserve_closing_fen", "区域调剂金期末"),
    ):
        if all(key in r for r in pools):
            figures.append(Figure(f"clearing.{key}", label, sum(int(r[key]) for r in pools), "fen"))
    for key, label in (
        ("prepaid_fen", "年初预付金"),
        ("prepayment_recovered_fen", "月度预付中扣回预付金"),
        ("prepayment_outstanding_fen", "清算时扣回预付金"),
        ("prepaid_without_line_fen", "本年无 DIP 病例的预付金（另行收回）"),
    ):
        if all(key in r for r in pools) and any(r[key] for r in pools):
            figures.append(Figure(f"clearing.{key}", label, sum(int(r[key]) for r in pools), "fen"))
    keep = {c.name for c in CLEARING_COLUMNS} | {"pool"}
    basis = ffs_basis(f.policy)
    tables = [
        Table(
            "clearing.pools",
            "各统筹区清算",
            CLEARING_COLUMNS,
            [{k: r.get(k) for k in keep} for r in pools],
        )
    ]
    hospitals = _hospital_lines(f)
    if hospitals:
        tables.append(
            Table(
                "clearing.hospitals",
                "各医疗机构结余留用/超支分担（比值与适用分段）",
                HOSPITAL_CLEARING_COLUMNS,
                hospitals,
            )
        )
    return Section(
        "clearing",
        "年终清算",
        [
            "结算点值 =（可分配基金 + DIP 病例个人负担）÷ 总结算分值（按政策规定的点值计算口径）；"
            "清算应拨付 = 清算应付总额 − 已预付金额。各医疗机构明细见结算公示表。",
            f"结余留用/超支分担的比较口径：{FFS_BASIS_LABELS[basis]}；"
            "比值四舍五入到 4 位小数显示，分段按精确比值判断。区域调剂金期末 = 期初 − 使用 + 收回"
            "（收回的结余与扣减的保证金是否回到调剂金由政策规定）。",
        ],
        figures,
        tables,
    )


def _hospital_lines(f: RegionFacts) -> list[dict]:
    """The run's per-hospital clearing lines with the ratio and band (none for a run written
    before those columns existed)."""
    path = f.src.run_dir / "hospitals.parquet"
    if not path.is_file():
        return []
    table = pq.read_table(path)
    if "ffs_band_label" not in table.column_names:
        return []
    names: dict[str, str] = {}
    if "name" in f.hospitals.columns:
        names = {
            str(r["hospital_id"]): r["name"]
            for r in f.hospitals.select("hospital_id", "name").to_pyarrow().to_pylist()
        }
    keep = {c.name for c in HOSPITAL_CLEARING_COLUMNS} | {"pool", "hospital_id"}
    rows = []
    for r in table.to_pylist():
        row = {k: r.get(k) for k in keep}
        row["hospital_name"] = names.get(str(r["hospital_id"])) or r["hospital_id"]
        row["pool_label"] = POOL_LABELS.get(r["pool"], r["pool"])
        rows.append(row)
    return sorted(rows, key=lambda r: (str(r["pool"]), str(r["hospital_id"])))


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
