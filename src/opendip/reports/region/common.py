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


def money_rows(t: ir.Table, keys: list[str]) -> list[dict[str, Any]]:
    expr = t.group_by(keys).aggregate(**money_aggs(t)) if keys else t.aggregate(**money_aggs(t))
    return [derive(r) for r in expr.to_pyarrow().to_pylist()]


def derive(row: dict[str, Any]) -> dict[str, Any]:
    """Fund under DIP vs fee-for-service of one aggregated row (exact, in Python).

    dip_minus_ffs = fund payable under DIP − fund paid by item; ratio = the first ÷ the second.
    """
    out = dict(row)
    for k in ("total_cost_fen", "dip_amount_fen", "personal_share_fen", "fund_payable_fen"):
        out[k] = int(out.get(k) or 0)
    out["ffs_fund_fen"] = int(out.get("ffs_fund_fen") or 0)
    out["cases"] = int(out.get("cases") or 0)
    out["total_score"] = Decimal(out.get("total_score") or 0)
    out["dip_minus_ffs_fen"] = out["fund_payable_fen"] - out["ffs_fund_fen"]
    out["dip_ffs_ratio"] = rate(out["fund_payable_fen"], out["ffs_fund_fen"])
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


FUND_COLUMNS = [
    ColumnSpec("cases", "DIP 病例数", "count"),
    ColumnSpec("total_score", "总分值", "score"),
    ColumnSpec("dip_amount_fen", "DIP 支付总额", "fen"),
    ColumnSpec("fund_payable_fen", "DIP 统筹应支付", "fen"),
    ColumnSpec("ffs_fund_fen", "按项目统筹支付", "fen"),
    ColumnSpec("dip_minus_ffs_fen", "差额（DIP − 按项目）", "fen"),
    ColumnSpec("dip_ffs_ratio", "DIP/按项目", "ratio"),
]


def pick(rows: list[dict[str, Any]], columns: list[ColumnSpec]) -> list[dict[str, Any]]:
    """Rows restricted to the shown columns plus their code keys (pool, level, hospital_id)."""
    keep = {c.name for c in columns} | {"pool", "level", "hospital_id"}
    return [{k: v for k, v in r.items() if k in keep} for r in rows]
