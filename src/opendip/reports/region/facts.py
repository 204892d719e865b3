"""The tables a regional report reads, opened once on one engine (Ibis on DuckDB).

From a settlement run directory (`opendip.settlement.run.run_year` / `run_month`): the run's
SCORED cases, not-DIP cases and per-hospital results, and the inputs its manifest names
(settlement-list cases, grouped cases, directory, hospitals, policy; hash-checked by
`opendip.reports.source.resolve_run`). Optional side inputs are found beside the run unless
given: QC case status (`qc/case_status.parquet`), supervision leads and indicators
(`supervision/`), and the previous year's settlement list (`cases_<year-1>.parquet`) — in the
run directory, its two parents, then `search_dirs` (the platform's region directory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from opendip.contract.tables import SCORED_SHOWN
from opendip.engine import connect
from opendip.policy import PolicyFile
from opendip.reports.source import ReportInputError, RunSources, resolve_run, search_places
from opendip.settlement.output import sha256_file

#: Settlement-list columns the cost indicators read (CASES contract).
COST_COLUMNS = ("case_id", "hospital_id", "settle_month", "total_cost", "los_days")


@dataclass
class Extras:
    """Optional inputs beside the settlement run (None: look beside the run)."""

    qc_case_status: Path | None = None
    #: 病案首页质控 per front page (front_page_status.parquet of opendip.qc.frontpage).
    front_page_status: Path | None = None
    supervision_dir: Path | None = None
    previous_cases: Path | None = None
    #: Last year's grouping (grouped.parquet of last year's cases) for the year-on-year figures.
    previous_grouped: Path | None = None
    #: Special-review and dispute applications from the platform: dicts with at least
    #: `kind` (special_review | dispute) and `state` (the workflow state's Chinese label).
    applications: list[dict[str, Any]] | None = None


@dataclass
class RegionFacts:
    src: RunSources
    con: BaseBackend
    policy: PolicyFile
    #: "annual" | "monthly"; period "2026" | "2026-05"; year 2026.
    kind: str
    period: str
    year: int
    #: The whole settlement-list input (cost columns, one row per case): for trends and the
    #: previous month. `period_cases` is its rows of the report's period.
    all_cases: ir.Table
    period_cases: ir.Table
    #: SCORED of the run with the case's settle_month, total cost, self-pay, LOS, the
    #: hospital's name and level and the case's group type.
    scored: ir.Table
    not_dip: ir.Table
    grouped: ir.Table
    directory: ir.Table
    hospitals: ir.Table
    base_score: Decimal
    previous_cases: ir.Table | None = None
    previous_grouped: ir.Table | None = None
    qc_status: ir.Table | None = None
    front_page_status: ir.Table | None = None
    supervision_dir: Path | None = None
    applications: list[dict[str, Any]] | None = None
    #: Files read beyond the manifest's inputs, with their SHA-256 (provenance).
    side_inputs: dict[str, str] = field(default_factory=dict)


def _beside(run_dir: Path, relative: str, search_dirs: tuple[Path, ...] = ()) -> Path | None:
    for d in search_places(run_dir, search_dirs):
        if (d / relative).exists():
            return d / relative
    return None


def in_period(t: ir.Table, period: str) -> ir.BooleanValue:
    """Cases settled in the period: settle_month "2026-05" (month) or "2026-…" (year)."""
    if len(period) == 4:
        return t.settle_month.startswith(f"{period}-")
    return t.settle_month == period


def _cost_table(con: BaseBackend, path: Path, what: str) -> ir.Table:
    raw = con.read_parquet(str(path))
    missing = [c for c in COST_COLUMNS if c not in raw.columns]
    if missing:
        raise ReportInputError(f"{what} {path.name} 缺少列：{'、'.join(missing)}")
    selfpay = (
        raw.personal_selfpay.cast("int64").fill_null(0)
        if "personal_selfpay" in raw.columns
        else ibis.literal(0, type="int64")
    )
    return raw.select(
        case_id=raw.case_id.cast("string"),
        hospital_id=raw.hospital_id.cast("string"),
        settle_month=raw.settle_month.cast("string"),
        total_cost_fen=raw.total_cost.cast("int64"),
        selfpay_fen=selfpay,
        los_days=raw.los_days.cast("int64"),
    )


def load(
    run_dir: Path, extras: Extras | None = None, search_dirs: tuple[Path, ...] = ()
) -> RegionFacts:
    """Open the run and its inputs; raises ReportInputError (Chinese) naming what is wrong."""
    extras = extras or Extras()
    src = resolve_run(Path(run_dir), search_dirs=search_dirs)
    con = connect("duckdb")
    policy = src.policy
    period = src.period
    year = int(period[:4])
    side: dict[str, str] = {}

    all_cases = _cost_table(con, src.paths["cases"], "结算清单病例文件")
    period_cases = all_cases.filter(in_period(all_cases, period))

    hospitals = con.read_parquet(str(src.paths["hospitals"]))
    h = hospitals.select(
        h_id=hospitals.hospital_id.cast("string"),
        hospital_name=hospitals.name.cast("string")
        if "name" in hospitals.columns
        else hospitals.hospital_id.cast("string"),
        level=hospitals.level.cast("string"),
    )
    grouped = con.read_parquet(str(src.paths["grouped"]))
    g = grouped.select(g_id=grouped.case_id.cast("string"), group_type=grouped.group_type)
    scored = con.read_parquet(str(src.run_dir / "cases.parquet"))
    # the columns people read (not the explanation's facts, some named like the case's)
    # (+ the special-payment facts the overview counts: TCM advantage group, new technology)
    shown = [*SCORED_SHOWN, "tcm_group", "new_tech"]
    scored = scored.select(*[c for c in shown if c in scored.columns])
    c = period_cases.select(
        c_id=period_cases.case_id,
        settle_month=period_cases.settle_month,
        total_cost_fen=period_cases.total_cost_fen,
        selfpay_fen=period_cases.selfpay_fen,
        los_days=period_cases.los_days,
    )
    s = scored.join(c, scored.case_id == c.c_id).drop("c_id")
    s = s.left_join(h, s.hospital_id == h.h_id).drop("h_id")
    s = s.left_join(g, s.case_id == g.g_id).drop("g_id")
    not_dip_path = src.run_dir / "not_dip.parquet"
    if not not_dip_path.is_file():
        raise ReportInputError(f"结算运行目录 {src.run_dir} 缺少未入 DIP 病例表 not_dip.parquet")
    not_dip = con.read_parquet(str(not_dip_path))

    previous = extras.previous_cases or _beside(
        src.run_dir, f"cases_{year - 1}.parquet", search_dirs
    )
    previous_cases = None
    if previous is not None:
        if not Path(previous).is_file():
            raise ReportInputError(f"上年结算清单文件不存在：{previous}")
        previous_cases = _cost_table(con, Path(previous), "上年结算清单病例文件")
        side["previous_cases"] = sha256_file(previous)
    prev_grouped_path = extras.previous_grouped or _beside(
        src.run_dir, f"grouped_{year - 1}.parquet", search_dirs
    )
    previous_grouped = None
    if prev_grouped_path is not None:
        if not Path(prev_grouped_path).is_file():
            raise ReportInputError(f"上年入组结果文件不存在：{prev_grouped_path}")
        previous_grouped = con.read_parquet(str(prev_grouped_path))
        missing = [
            c for c in ("case_id", "group_code", "group_type") if c not in previous_grouped.columns
        ]
        if missing:
            raise ReportInputError(
                f"上年入组结果 {Path(prev_grouped_path).name} 缺少列：{'、'.join(missing)}"
            )
        side["previous_grouped"] = sha256_file(prev_grouped_path)

    qc_path = extras.qc_case_status or _beside(src.run_dir, "qc/case_status.parquet", search_dirs)
    qc_status = None
    if qc_path is not None:
        if not Path(qc_path).is_file():
            raise ReportInputError(f"质控结果文件不存在：{qc_path}")
        q = con.read_parquet(str(qc_path))
        qc_status = q.select(q_id=q.case_id.cast("string"), passed=q.passed.cast("boolean"))
        side["qc_case_status"] = sha256_file(qc_path)
    fp_path = extras.front_page_status or _beside(
        src.run_dir, "qc/front_page_status.parquet", search_dirs
    )
    front_page_status = None
    if fp_path is not None:
        if not Path(fp_path).is_file():
            raise ReportInputError(f"病案首页质控结果文件不存在：{fp_path}")
        q = con.read_parquet(str(fp_path))
        front_page_status = q.select(q_id=q.case_id.cast("string"), passed=q.passed.cast("boolean"))
        side["front_page_status"] = sha256_file(fp_path)

    sup = extras.supervision_dir or _beside(src.run_dir, "supervision", search_dirs)
    if sup is not None and not (Path(sup) / "leads.parquet").is_file():
        if extras.supervision_dir is not None:
            raise ReportInputError(f"监管结果目录 {sup} 缺少 leads.parquet")
        sup = None
    if sup is not None:
        side["supervision_leads"] = sha256_file(Path(sup) / "leads.parquet")

    final = policy.periods()[-1][2]
    return RegionFacts(
        src=src,
        con=con,
        policy=policy,
        kind=src.kind,
        period=period,
        year=year,
        all_cases=all_cases,
        period_cases=period_cases,
        scored=s,
        not_dip=not_dip,
        grouped=grouped,
        directory=con.read_parquet(str(src.paths["directory"])),
        hospitals=hospitals,
        base_score=Decimal(final.directory.base_score),
        previous_cases=previous_cases,
        previous_grouped=previous_grouped,
        qc_status=qc_status,
        front_page_status=front_page_status,
        supervision_dir=Path(sup) if sup is not None else None,
        applications=extras.applications,
        side_inputs=side,
    )


def rows(expr: ir.Table) -> list[dict[str, Any]]:
    """A small aggregated table as Python rows."""
    return expr.to_pyarrow().to_pylist()


def one(expr: ir.Table) -> dict[str, Any]:
    return rows(expr)[0]
