"""Reading one hospital's part of a settlement run (the run's inputs: `opendip.reports.source`)."""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from opendip.contract.tables import HOSPITAL_LEVELS, SCORED_SHOWN
from opendip.reports.source import NEEDED, ReportInputError, RunSources, read_manifest, resolve_run

#: The hospital analysis raises the reports' input error (kept under its own name).
HospitalAnalysisError = ReportInputError


class UnknownHospitalError(ReportInputError):
    """The hospital is not in the run's hospitals table."""


#: Columns the analysis needs from the settlement-list cases (CASES contract); doctor_id
#: is optional (shown as 未填写 when absent).
CASE_COLUMNS = ("case_id", "hospital_id", "department", "total_cost", "discharge_date")


def hospital_row(con: BaseBackend, src: RunSources, hospital_id: str) -> dict[str, Any]:
    """The hospital's row of the hospitals table, or a clear error for an unknown id."""
    h = con.read_parquet(str(src.paths["hospitals"]))
    rows = h.filter(h.hospital_id == hospital_id).to_pyarrow().to_pylist()
    if not rows:
        raise UnknownHospitalError(
            f"医疗机构 {hospital_id} 不在本次结算的医疗机构表中（{src.paths['hospitals'].name}）"
        )
    return rows[0]


def _optional(t: ir.Table, column: str, dtype: str) -> ir.Value:
    return t[column].cast(dtype) if column in t.columns else ibis.null(dtype)


def case_facts(con: BaseBackend, src: RunSources, hospital_id: str, level: str) -> ir.Table:
    """One row per DIP case of the hospital: the settled money and scores (SCORED), the
    settlement-list facts (department, doctor, total cost, discharge date) and the
    directory's group name and means (for the cost/mean ratio)."""
    scored = con.read_parquet(str(src.run_dir / "cases.parquet"))
    # the columns people read (not the explanation's facts, some named like the case's)
    # (+ the special payment rules applied: TCM advantage group, new technology)
    shown = [*SCORED_SHOWN, "tcm_group", "new_tech"]
    scored = scored.select(*[c for c in shown if c in scored.columns])
    s = scored.filter(scored.hospital_id == hospital_id)
    raw = con.read_parquet(str(src.paths["cases"]))
    missing = [c for c in CASE_COLUMNS if c not in raw.columns]
    if missing:
        raise HospitalAnalysisError(
            f"病例文件 {src.paths['cases'].name} 缺少列：{'、'.join(missing)}"
        )
    r = raw.filter(raw.hospital_id == hospital_id).select(
        r_case_id=raw.case_id.cast("string"),
        department=raw.department.cast("string"),
        doctor_id=_optional(raw, "doctor_id", "string"),
        total_cost_fen=raw.total_cost.cast("int64"),
        discharge_date=raw.discharge_date.cast("date"),
    )
    g = con.read_parquet(str(src.paths["grouped"]))
    g = g.select(g_case_id=g.case_id.cast("string"), group_type=g.group_type.cast("string"))
    d = con.read_parquet(str(src.paths["directory"]))
    d = d.select(
        d_code=d.group_code.cast("string"),
        group_name=_optional(d, "group_name", "string"),
        d_mean=d.mean_cost_fen.cast("int64"),
        score_per_day=_optional(d, "score_per_day", "decimal(18, 4)"),
        **{f"d_{lv}": _optional(d, f"mean_cost_{lv}_fen", "int64") for lv in HOSPITAL_LEVELS},
    )
    t = s.join(r, s.case_id == r.r_case_id).drop("r_case_id")
    t = t.left_join(g, t.case_id == g.g_case_id).drop("g_case_id")
    t = t.left_join(d, t.group_code == d.d_code).drop("d_code")
    for rule in ("tcm_group", "new_tech"):
        if rule not in t.columns:
            t = t.mutate(**{rule: ibis.null("string")})
    return t.mutate(
        level=ibis.literal(level, type="string"),
        department=t.department.fill_null("未填写"),
        doctor_id=t.doctor_id.fill_null("未填写"),
    )


__all__ = [
    "NEEDED",
    "HospitalAnalysisError",
    "RunSources",
    "UnknownHospitalError",
    "case_facts",
    "hospital_row",
    "read_manifest",
    "resolve_run",
]
