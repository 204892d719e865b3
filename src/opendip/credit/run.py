"""Credit rating from files: read a period's outputs, rate, write ratings, breakdown, Excel,
manifest (DATA/credit/<period>/)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from opendip.credit.engine import CreditError, CreditInputs, rate
from opendip.engine import connect, table_from_arrow
from opendip.policy import PolicyFile
from opendip.settlement.output import LABELS, write_excel, write_manifest, write_parquet

LABELS.update(
    {
        "period": "评价期间",
        "subject": "评价对象",
        "doctor_id": "医师编号",
        "items": "评分项数",
        "credit_score": "信用得分",
        "grade": "信用等级",
        "grade_label": "等级名称",
        "inspections_per_year": "年度检查次数",
        "supervision_priority": "监管检查频次",
        "prepayment_eligible": "预付金资格",
        "item": "评分项编号",
        "item_name": "评分项",
        "item_order": "序号",
        "first_upload": "首次上传时间",
        "deadline": "上传截止日期",
        "late": "逾期",
    }
)


@dataclass
class CreditFiles:
    """The period's outputs a rating reads (Parquet). cases: the period's settlement lists;
    case_status: QC status; leads: supervision leads (hospital_id, case_ids); violations,
    complaints, submissions, front_page_status: see `CreditInputs`."""

    cases: Path
    case_status: Path | None = None
    leads: Path | None = None
    violations: Path | None = None
    complaints: Path | None = None
    submissions: Path | None = None
    front_page_status: Path | None = None


def _read(con, path: Path | None, name: str, columns: list[str] | None = None):  # type: ignore[no-untyped-def]
    if path is None:
        return None
    if not Path(path).exists():
        raise CreditError(f"文件不存在：{path}")
    return table_from_arrow(con, pq.read_table(path, columns=columns), name)


def inputs_from_files(files: CreditFiles, year: int, engine: str = "duckdb") -> CreditInputs:
    con = connect(engine)  # type: ignore[arg-type]
    cases = _read(
        con, files.cases, "cr_cases", ["case_id", "hospital_id", "doctor_id", "settle_month"]
    )
    cases = cases.filter(cases.settle_month.startswith(f"{year}-"))  # type: ignore[union-attr]
    return CreditInputs(
        cases=cases,
        case_status=_read(con, files.case_status, "cr_status", ["case_id", "passed"]),
        leads=_read(con, files.leads, "cr_leads", ["hospital_id", "case_ids"]),
        violations=_read(con, files.violations, "cr_violations", ["hospital_id", "case_ids"]),
        complaints=_read(con, files.complaints, "cr_complaints", ["hospital_id"]),
        submissions=_read(
            con,
            files.submissions,
            "cr_submissions",
            ["hospital_id", "settle_month", "submitted_at"],
        ),
        front_page_status=_read(
            con, files.front_page_status, "cr_front_pages", ["case_id", "passed"]
        ),
    )


def run_credit(
    inputs: CreditInputs,
    policy_file: PolicyFile,
    year: int,
    out: Path,
    inputs_used: dict | None = None,
) -> dict:
    """Rate `year` with the scorecard of the policy file's last period and write ratings.parquet, breakdown.parquet, uploads.parquet (when an
    upload log was given), 信用评价_<year>.xlsx and the manifest; returns a summary."""
    policy = policy_file.periods()[-1][2]
    result = rate(inputs, policy, str(year))
    out.mkdir(parents=True, exist_ok=True)
    outputs = [
        write_parquet(result.ratings, out / "ratings.parquet"),
        write_parquet(result.breakdown, out / "breakdown.parquet"),
    ]
    sheets: list[tuple[str, pa.Table]] = [
        ("信用等级", result.ratings),
        ("评分明细", result.breakdown),
    ]
    if result.uploads is not None:
        outputs.append(write_parquet(result.uploads, out / "uploads.parquet"))
        sheets.append(("上传及时性", result.uploads))
    outputs.append(write_excel(sheets, out / f"信用评价_{year}.xlsx", dt.date(year, 12, 31)))
    hospitals = result.ratings.filter(
        pa.compute.equal(result.ratings.column("subject"), "hospital")
    )
    grades = hospitals.column("grade").to_pylist()
    summary = {
        "period": str(year),
        "hospitals": hospitals.num_rows,
        "doctors": result.ratings.num_rows - hospitals.num_rows,
        "grades": {g: grades.count(g) for g in sorted(set(grades))},
    }
    write_manifest(
        out,
        command=f"credit rate {year}",
        inputs=inputs_used or {},
        policy=policy_file,
        parameters={"year": year, "policy_version": policy.version},
        row_counts={"ratings": result.ratings.num_rows, "breakdown": result.breakdown.num_rows},
        outputs=outputs,
    )
    return summary
