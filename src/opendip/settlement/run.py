"""Settlement runs from files: read inputs, settle, write results, reconciliation, manifest."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from opendip.engine import connect, read_parquet
from opendip.policy import PolicyFile
from opendip.settlement import findings as fnd
from opendip.settlement.clearing import Inputs, settle_month, settle_year
from opendip.settlement.errors import InputDataError
from opendip.settlement.output import (
    EXCEL_MAX_ROWS,
    case_sheet,
    reconciliation_markdown,
    staged_directory,
    write_case_table,
    write_excel,
    write_json,
    write_manifest,
    write_parquet,
)


@dataclass
class InputFiles:
    policy: Path
    cases: Path
    grouped: Path
    directory: Path
    hospitals: Path
    reviews: Path | None = None
    history: Path | None = None
    #: The directory build's all-case mean (fallback-group scoring), overriding the policy's
    #: `scoring.all_case_mean_yuan`; recorded in the manifest's parameters. None: read from
    #: the directory's metrics file beside it (`<directory>.metrics.json`, written by the
    #: directory build), so the CLI, the demo and the platform score alike.
    all_case_mean_fen: int | None = None
    #: Credit grades in force (hospital_id, grade): the previous year's 信用评价, whose
    #: grades set the withholding share and prepayment eligibility (policy `credit`).
    credit: Path | None = None
    #: 预付金 base (hospital_id, pool, paid_fen, months): the previous year's DIP payment
    #: (`opendip.settlement.prepayment.base_from_clearing` / `base_from_cases`).
    prepayment_base: Path | None = None
    #: The previous year's assessment scores (prepayment.min_assessment_score).
    previous_assessment: Path | None = None

    def __post_init__(self) -> None:
        if self.all_case_mean_fen is None:
            self.all_case_mean_fen = directory_all_case_mean_fen(Path(self.directory))


def directory_all_case_mean_fen(directory: Path) -> int | None:
    """The all-case mean the directory build recorded beside the directory, if any."""
    metrics = directory.with_suffix(".metrics.json")
    if not metrics.is_file():
        return None
    try:
        value = json.loads(metrics.read_text(encoding="utf-8")).get("all_case_mean_fen")
    except (OSError, ValueError) as exc:
        raise InputDataError(metrics.name, "all_case_mean_fen", f"无法读取：{exc}") from exc
    return int(value) if value else None


def read_table(path: Path, what: str) -> pa.Table:
    """A small side table (reviews, assessment, advances, history) from Parquet or CSV."""
    try:
        if path.suffix.lower() == ".csv":
            return pacsv.read_csv(path)
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputDataError(what, str(path), f"无法读取：{exc}") from exc


def _inputs(files: InputFiles, engine: str = "duckdb") -> Inputs:
    con = connect(engine)  # type: ignore[arg-type]
    if con.name == "duckdb":
        # Every output of a settlement run is ordered explicitly (ORDER BY); without the
        # implicit order DuckDB caches and copies the cases in parallel, not in batches
        # (≈ a tenth less CPU for the annual clearing, docs/benchmarks.md).
        con.raw_sql("SET preserve_insertion_order = false")
    for p in (files.cases, files.grouped, files.directory, files.hospitals):
        if not p.exists():
            raise InputDataError(p.name, "文件", f"文件不存在：{p}")
    return Inputs(
        cases=read_parquet(con, files.cases, "cases"),
        grouped=read_parquet(con, files.grouped, "grouped"),
        directory=read_parquet(con, files.directory, "directory"),
        hospitals=read_parquet(con, files.hospitals, "hospitals"),
        policy=PolicyFile.read(files.policy),
        reviews=read_table(files.reviews, "reviews") if files.reviews else None,
        history=read_table(files.history, "history") if files.history else None,
        all_case_mean_fen=files.all_case_mean_fen,
        credit=read_table(files.credit, "credit") if files.credit else None,
        prepayment_base=(
            read_table(files.prepayment_base, "prepayment_base") if files.prepayment_base else None
        ),
        previous_assessment=(
            read_table(files.previous_assessment, "previous_assessment")
            if files.previous_assessment
            else None
        ),
    )


def _input_map(files: InputFiles, **extra: Path | None) -> dict[str, Path | None]:
    return {
        "cases": files.cases,
        "grouped": files.grouped,
        "directory": files.directory,
        "hospitals": files.hospitals,
        "reviews": files.reviews,
        "history": files.history,
        "credit": files.credit,
        "prepayment_base": files.prepayment_base,
        "previous_assessment": files.previous_assessment,
        **extra,
    }


def _too_many_rows(rows: int) -> str:
    return (
        f"病例明细 {rows:,} 行超过 Excel 单表上限 {EXCEL_MAX_ROWS:,} 行，"
        "未生成病例明细 Excel，请使用 cases.parquet"
    )


def run_month(
    files: InputFiles, month: str, out: Path, *, excel: bool = True, engine: str = "duckdb"
) -> dict[str, object]:
    inputs = _inputs(files, engine)
    r = settle_month(inputs, month)
    final = out
    with staged_directory(final) as out:  # moved into place only when complete
        notes: list[str] = []
        outputs = [
            write_parquet(r.hospitals, out / "hospitals.parquet"),
            write_parquet(r.cases, out / "cases.parquet"),
            write_parquet(r.not_dip, out / "not_dip.parquet"),
        ]
        if excel:
            day = dt.date.fromisoformat(f"{month}-01")
            outputs.append(
                write_excel([("月度预结算", r.hospitals)], out / f"月度预结算_{month}.xlsx", day)
            )
            if r.cases.num_rows > EXCEL_MAX_ROWS:
                notes.append(_too_many_rows(r.cases.num_rows))
            else:
                outputs.append(
                    write_excel(
                        [("病例明细", case_sheet(r.cases))], out / f"病例明细_{month}.xlsx", day
                    )
                )
        summary = {
            "month": month,
            "notes": notes,
            "point_values": r.point_values,
            "withholding_share": r.withholding_share,
            "cases": r.counts["cases"],
            "dip_cases": r.cases.num_rows,
            "not_dip_cases": r.not_dip.num_rows,
            "totals": {
                c: int(pa.compute.sum(r.hospitals.column(c)).as_py() or 0)
                for c in (
                    "dip_amount_fen",
                    "fund_payable_fen",
                    "withheld_fen",
                    "advance_fen",
                    "prepayment_recovery_fen",
                    "advance_paid_fen",
                )
            },
        }
        outputs.append(write_json(summary, out / "summary.json"))
        write_manifest(
            out,
            command=f"settle month {month}",
            inputs=_input_map(files),
            policy=inputs.policy,
            parameters={
                "month": month,
                "engine": engine,
                "excel": excel,
                "all_case_mean_fen": files.all_case_mean_fen,
            },
            row_counts={
                "cases": r.counts["cases"],
                "dip_cases": r.cases.num_rows,
                "not_dip_cases": r.not_dip.num_rows,
                "hospital_rows": r.hospitals.num_rows,
            },
            outputs=outputs,
        )
    return summary


def run_year(
    files: InputFiles,
    year: int,
    out: Path,
    *,
    assessment: Path | None = None,
    advances: Path | None = None,
    excel: bool = True,
    case_excel: bool = True,
    engine: str = "duckdb",
    review_cap_override: str | None = None,
    findings: Path | None = None,
) -> dict[str, object]:
    inputs = _inputs(files, engine)
    found = None
    if findings is not None:
        # Confirmed supervision findings: regroup/merge before scoring (rule step
        # "findings: regroup and merge"), deductions after the clearing.
        found = fnd.normalise_findings(read_table(findings, "findings"))
        original_cases = inputs.cases
        applied = fnd.case_findings(inputs.cases, inputs.grouped, inputs.directory, found)
        inputs = Inputs(**{**inputs.__dict__, "cases": applied.cases, "grouped": applied.grouped})
    r = settle_year(
        inputs,
        year,
        assessment=read_table(assessment, "assessment") if assessment else None,
        advances=read_table(advances, "advances") if advances else None,
        review_cap_override=review_cap_override,
    )
    if assessment is not None:
        # Rule step "assessment clearing coefficient" (where the policy has bands).
        from opendip.settlement import assessment_coefficient

        final = inputs.policy.periods()[-1][2]
        r.hospitals, r.pools = assessment_coefficient.apply(
            r.hospitals, r.pools, final, inputs.cases._find_backend()
        )
    listed = None
    if found is not None:
        con = inputs.cases._find_backend()
        hospitals, pools = fnd.deductions(r.hospitals, r.pools, found, con, original_cases)
        r.hospitals, r.pools = hospitals, pools
        r.counts["merged_cases"] = applied.merged_away
        listed = fnd.listing(found, con, original_cases, r.case_table)
    final = out
    with staged_directory(final) as out:  # moved into place only when complete
        case_path, case_rows = write_case_table(r.case_table, out / "cases.parquet")
        outputs = [
            write_parquet(r.hospitals, out / "hospitals.parquet"),
            write_parquet(r.departments, out / "departments.parquet"),
            write_parquet(r.communities, out / "settlement_units.parquet"),
            write_parquet(r.pools, out / "reconciliation.parquet"),
            case_path,
            write_parquet(r.not_dip, out / "not_dip.parquet"),
        ]
        if r.prepaid_without_line is not None and r.prepaid_without_line.num_rows:
            outputs.append(
                write_parquet(r.prepaid_without_line, out / "prepaid_without_line.parquet")
            )
        notes = []
        report = out / "reconciliation.md"
        text = reconciliation_markdown(r.pools, year, r.counts)
        if listed is not None:
            text += "\n" + fnd.reconciliation_lines(r.pools, listed)
            outputs.append(write_parquet(listed, out / "findings.parquet"))
        report.write_text(text, encoding="utf-8")
        outputs.append(report)
        if excel:
            day = dt.date(year, 12, 31)
            outputs.append(
                write_excel(
                    [
                        ("结算公示表", r.hospitals),
                        ("科室对比", r.departments),
                        ("对账", r.pools),
                        *([("监管结果应用", listed)] if listed is not None else []),
                    ],
                    out / f"结算公示表_{year}.xlsx",
                    day,
                )
            )
            if case_excel and case_rows > EXCEL_MAX_ROWS:
                notes.append(_too_many_rows(case_rows))
            elif case_excel:
                outputs.append(
                    write_excel(
                        [("病例明细", case_sheet(r.cases))], out / f"病例明细_{year}.xlsx", day
                    )
                )
        summary = {
            "year": year,
            "point_values": {k: Decimal(v) for k, v in r.point_values.items()},
            "cases": r.counts,
            "pools": r.pools.to_pylist(),
            "notes": notes,
        }
        if r.review_cap_excess:
            summary["review_cap_override"] = {
                "reason": review_cap_override,
                "hospitals": [e.__dict__ for e in r.review_cap_excess],
            }
            notes.append(
                "特例单议通过病例超出上限，经办机构已明确放行："
                + "；".join(
                    f"{e.hospital_id} {e.count}/{e.allowed} 例" for e in r.review_cap_excess
                )
            )
        outputs.append(write_json(summary, out / "summary.json"))
        write_manifest(
            out,
            command=f"settle year {year}",
            inputs=_input_map(files, assessment=assessment, advances=advances, findings=findings),
            policy=inputs.policy,
            parameters={
                "year": year,
                "engine": engine,
                "advances": "file" if advances else "recomputed_from_months",
                "assessment": bool(assessment),
                "findings": bool(findings),
                "excel": excel,
                "all_case_mean_fen": files.all_case_mean_fen,
                "review_cap_override": review_cap_override,
            },
            row_counts={**r.counts, "hospital_rows": r.hospitals.num_rows},
            outputs=outputs,
        )
    return summary
