"""Aggregations and labels shared by the sections of a regional report."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ibis.expr.types as ir

from opendip.contract.tables import HOSPITAL_LEVEL_LABELS, HOSPITAL_LEVELS, INSURANCE_TYPE_LABELS
from opendip.reports.calc import rate
from opendip.reports.model import ColumnSpec

POOL_LABELS = INSURANCE_TYPE_LABELS
LEVEL_LABELS = HOSPITAL_LEVEL_LABELS
LEVEL_ORDER = {lv: i for i, lv in enumerate(HOSPITAL_LEVELS)}
RESULT_LABELS = {"surplus": "结余", "deficit": "超支", "balanced": "持平"}


def money_aggs(t: ir.Table) -> dict[str, ir.Value]:
    """Sums of one set of scored cases (money in fen, scores exact)."""
    return {
        "cases": t.count(),
        "total_score": t.settled_score.sum(),
        "case_score_sum": t.case_score.sum(),
        "total_cost_fen": t.total_cost_fen.sum().cast("int64"),
        "dip_amount_fen": t.dip_amount_fen.sum().cast("int64"),
        "personal_share_fen": t.personal_share_fen.sum().cast("int64"),
        "fund_payable_fen": t.fund_payable_fen.sum().cast("int64"),
        "ffs_fund_fen": t.ffs_fund_fen.sum().cast("int64"),
    }


#: The two amounts the FFS comparison reads, by policy `settlement.ffs_basis` (docs/money.md):
#: the same basis as the clearing's bands, so the report's surplus/deficit and ratio are the
#: ones the clearing used.
BASIS_SIDES = {
    "fund": ("fund_payable_fen", "ffs_fund_fen"),
    "total": ("dip_amount_fen", "total_cost_fen"),
}
BASIS_COLUMN_LABELS = {
    "fund": ("DIP 统筹应支付", "按项目统筹支付"),
    "total": ("DIP 支付总额", "按项目医疗总费用"),
}


def money_rows(t: ir.Table, keys: list[str], basis: str = "fund") -> list[dict[str, Any]]:
    expr = t.group_by(keys).aggregate(**money_aggs(t)) if keys else t.aggregate(**money_aggs(t))
    return [derive(r, basis) for r in expr.to_pyarrow().to_pylist()]


def derive(row: dict[str, Any], basis: str = "fund") -> dict[str, Any]:
    """DIP vs fee-for-service of one aggregated row (exact, in Python), on the policy's basis.

    basis `fund`: fund payable under DIP vs fund paid by item; `total`: DIP total vs total
    cost by item. dip_minus_ffs = DIP side − FFS side; ratio = the first ÷ the second.
    """
    out = dict(row)
    for k in ("total_cost_fen", "dip_amount_fen", "personal_share_fen", "fund_payable_fen"):
        out[k] = int(out.get(k) or 0)
    out["ffs_fund_fen"] = int(out.get("ffs_fund_fen") or 0)
    out["cases"] = int(out.get("cases") or 0)
    out["total_score"] = Decimal(out.get("total_score") or 0)
    dip_side, ffs_side = BASIS_SIDES[basis]
    out["compare_dip_fen"], out["compare_ffs_fen"] = out[dip_side], out[ffs_side]
    out["dip_minus_ffs_fen"] = out["compare_dip_fen"] - out["compare_ffs_fen"]
    out["dip_ffs_ratio"] = rate(out["compare_dip_fen"], out["compare_ffs_fen"])
    if out["dip_minus_ffs_fen"] > 0:
        out["result"] = RESULT_LABELS["surplus"]
    elif out["dip_minus_ffs_fen"] < 0:
        out["result"] = RESULT_LABELS["deficit"]
    else:
        out["result"] = RESULT_LABELS["balanced"]
    if "pool" in out:
        out["pool_label"] = POOL_LABELS.get(out["pool"], out["pool"])
    if "level" in out:
        out["level_label"] = LEVEL_LABELS.get(out["level"], out["level"] or "未定级")
    return out


def fund_columns(basis: str = "fund") -> list[ColumnSpec]:
    """The DIP-vs-FFS columns of a fund table on the policy's comparison basis."""
    dip_label, ffs_label = BASIS_COLUMN_LABELS[basis]
    money = [ColumnSpec("dip_amount_fen", "DIP 支付总额", "fen")]
    if basis == "total":
        money += [
            ColumnSpec("fund_payable_fen", "DIP 统筹应支付", "fen"),
            ColumnSpec("total_cost_fen", ffs_label, "fen"),
        ]
    else:
        money += [
            ColumnSpec("fund_payable_fen", dip_label, "fen"),
            ColumnSpec("ffs_fund_fen", ffs_label, "fen"),
        ]
    return [
        ColumnSpec("cases", "DIP 病例数", "count"),
        ColumnSpec("total_score", "总分值", "score"),
        *money,
        ColumnSpec("dip_minus_ffs_fen", "差额（DIP − 按项目）", "fen"),
        ColumnSpec("dip_ffs_ratio", "DIP/按项目", "ratio"),
    ]


FUND_COLUMNS = fund_columns("fund")


def ffs_basis(policy: Any) -> str:
    """The clearing's comparison basis (policy `settlement.ffs_basis`, end-of-year version)."""
    return str(policy.periods()[-1][2].settlement.ffs_basis)


def pick(rows: list[dict[str, Any]], columns: list[ColumnSpec]) -> list[dict[str, Any]]:
    """Rows restricted to the shown columns plus their code keys (pool, level, hospital_id)."""
    keep = {c.name for c in columns} | {"pool", "level", "hospital_id"}
    return [{k: v for k, v in r.items() if k in keep} for r in rows]
