"""`opendip assess` from files: read inputs, assess, write scores, breakdown, Excel, manifest."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from opendip.assessment.engine import AssessmentError, AssessmentInputs, assess
from opendip.engine import connect, read_parquet
from opendip.policy import PolicyFile
from opendip.settlement.output import LABELS, write_excel, write_manifest, write_parquet

LABELS.update(
    {
        "indicator": "考核指标编号",
        "indicator_name": "考核指标",
        "measure": "计算口径",
        "value": "指标值",
        "target": "满分线",
        "zero_at": "零分线",
        "weight": "权重（分）",
        "points": "得分",
        "numerator": "分子",
        "denominator": "分母",
        "indicators": "适用指标数",
    }
)


@dataclass
class AssessFiles:
    policy: Path
    cases: Path
    grouped: Path
    hospitals: Path
    case_status: Path | None = None
    previous_cases: Path | None = None
    leads: Path | None = None
    front_page_status: Path | None = None


def run_assess(files: AssessFiles, year: int, out: Path, engine: str = "duckdb") -> dict:
    pf = PolicyFile.read(files.policy)
    policy = pf.periods()[-1][2]
    if policy.year != year:
        raise AssessmentError(f"政策文件是 {policy.year} 年度的，不能考核 {year} 年")
    optional = {
        "case_status": files.case_status,
        "previous_cases": files.previous_cases,
        "leads": files.leads,
        "front_page_status": files.front_page_status,
    }
    for p in (files.cases, files.grouped, files.hospitals, *optional.values()):
        if p is not None and not p.exists():
            raise AssessmentError(f"文件不存在：{p}")
    con = connect(engine)  # type: ignore[arg-type]
    cases = read_parquet(con, files.cases, "a_cases")
    cases = cases.filter(cases.settle_month.startswith(f"{year}-"))
    opt = {
        k: read_parquet(con, v, f"a_{k}") if v is not None else None for k, v in optional.items()
    }
    for key in ("case_status", "front_page_status"):
        if opt[key] is not None:
            s = opt[key]
            opt[key] = s.filter(s.case_id.isin(cases.case_id))
    inp = AssessmentInputs(
        cases=cases,
        grouped=read_parquet(con, files.grouped, "a_grouped"),
        hospitals=read_parquet(con, files.hospitals, "a_hospitals"),
        **opt,
    )
    result = assess(inp, policy)
    out.mkdir(parents=True, exist_ok=True)
    outputs = [
        write_parquet(result.scores, out / "assessment.parquet"),
        write_parquet(result.breakdown, out / "breakdown.parquet"),
        write_excel(
            [("考核得分", result.scores), ("指标明细", result.breakdown)],
            out / f"年度考核_{year}.xlsx",
            dt.date(year, 12, 31),
        ),
    ]
    write_manifest(
        out,
        command=f"assess {year}",
        inputs={
            "cases": files.cases,
            "grouped": files.grouped,
            "hospitals": files.hospitals,
            "case_status": files.case_status,
            "previous_cases": files.previous_cases,
            "leads": files.leads,
            "front_page_status": files.front_page_status,
        },
        policy=pf,
        parameters={"year": year, "engine": engine, "leads": bool(files.leads)},
        row_counts={
            "hospitals": result.scores.num_rows,
            "breakdown_rows": result.breakdown.num_rows,
        },
        outputs=outputs,
    )
    scores = result.scores.column("assessment_score").to_pylist()
    return {
        "year": year,
        "hospitals": result.scores.num_rows,
        "min": min(scores) if scores else None,
        "max": max(scores) if scores else None,
        "scores": out / "assessment.parquet",
    }


def read_scores(path: Path):
    return pq.read_table(path)
