"""One supervision run: prepare the stays, run every detector that its inputs allow,
compute the monthly indicators."""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis.expr.types as ir
import pyarrow as pa

from opendip.policy import Policy
from opendip.supervision.cost_shifting import cost_shifting_leads
from opendip.supervision.indicators import monthly_indicators
from opendip.supervision.leads import rank_leads
from opendip.supervision.low_standard import low_standard_leads, with_typical
from opendip.supervision.overlong import high_multiple_cluster_leads, overlong_leads
from opendip.supervision.prepare import SupervisionInputs, prepare_stays
from opendip.supervision.readmission import readmission_leads, readmission_pairs
from opendip.supervision.tables import INDICATORS, LEADS
from opendip.supervision.upcoding import upcoding_leads


@dataclass
class SupervisionResult:
    leads: pa.Table
    indicators: pa.Table
    #: Period under review, e.g. '2026-01~2026-12'.
    period: str
    #: What could not be checked with the inputs given (Chinese, for the user).
    notes: list[str] = field(default_factory=list)


def _month_text(index: int) -> str:
    return f"{index // 12}-{index % 12 + 1:02d}"


def input_notes(inputs: SupervisionInputs) -> list[str]:
    notes = []
    if inputs.history is None:
        notes.append(
            "未提供历史病例：高套分值与费用转嫁只与同级医院比较，不与本院历史比较；指标无同比。"
        )
    if inputs.hospitals is None:
        notes.append("未提供医疗机构表：同级比较以全部医院为参照。")
    if inputs.grouped is None:
        notes.append("未提供入组结果：二次入院按同一诊断类目判断；无入组率；典型费用按诊断亚目。")
    if inputs.scored is None:
        notes.append("未提供分值结果：不检测高倍率病例聚集；无 CMI 与高/低倍率占比。")
    notes.append("住院前门诊费用转移尚无法检测：数据契约中暂无门诊结算数据。")
    return notes


def detect(
    stays: ir.Table,
    inputs: SupervisionInputs,
    policy: Policy,
    period: str,
    pairs: ir.Table | None = None,
) -> ir.Table:
    """All applicable detectors, ranked (an Ibis expression over prepared `stays`)."""
    typed = with_typical(stays, policy).cache()
    if pairs is None:
        pairs = readmission_pairs(stays, policy, grouped=inputs.grouped is not None)
    found = [
        readmission_leads(pairs, policy),
        upcoding_leads(stays, policy),
        low_standard_leads(stays, policy, typed),
        overlong_leads(typed, policy),
        cost_shifting_leads(stays, policy),
    ]
    if inputs.scored is not None:
        found.append(high_multiple_cluster_leads(stays, policy))
    # Each detector's (small) lead table is computed once before they are ranked together:
    # Spark does not share common subplans, and a union of six deep plans grows too large.
    return rank_leads([f.cache() for f in found], period)


def supervise(inputs: SupervisionInputs, policy: Policy) -> SupervisionResult:
    """Run supervision; returns the leads and indicators as Arrow tables (contracts LEADS,
    INDICATORS)."""
    stays = prepare_stays(inputs, policy).cache()
    span = (
        stays.filter(stays.current)
        .aggregate(lo=stays.month_index.min(), hi=stays.month_index.max())
        .to_pyarrow()
    )
    lo, hi = span["lo"][0].as_py(), span["hi"][0].as_py()
    period = f"{_month_text(lo)}~{_month_text(hi)}" if lo is not None else "empty"
    grouped = inputs.grouped is not None
    pairs = readmission_pairs(stays, policy, current_only=False, grouped=grouped).cache()
    leads = LEADS.conform(detect(stays, inputs, policy, period, pairs).to_pyarrow())
    indicators = INDICATORS.conform(
        monthly_indicators(
            stays, policy, scored=inputs.scored is not None, grouped=grouped, pairs=pairs
        ).to_pyarrow()
    )
    return SupervisionResult(leads, indicators, period, input_notes(inputs))
