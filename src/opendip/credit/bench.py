"""Bench stages: the demo region's credit ratings (信用评价).

`run_previous` (before the settlement stage) rates last year from its settlement lists: QC
and supervision of that year are run here (the engine's own steps), with the demo's upload
log; the current year's settlement applies those grades (withholding share, prepayment).
`run` (after supervision) rates the current year from the stages' outputs. Both write
DATA/credit/<year>/ (the platform loads them on start)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from opendip.bench import BenchContext, StageResult
from opendip.credit.run import CreditFiles, inputs_from_files, run_credit
from opendip.policy import PolicyFile


def _submissions(ctx: BenchContext) -> Path:
    from opendip.synth.submissions import generate_submissions

    path = Path(ctx.workdir) / "credit" / "submissions.parquet"
    if not path.exists():
        history = list(ctx.artifacts.get("history") or [])
        generate_submissions([*history[-1:], ctx.artifacts["cases"]], path, ctx.seed)
    return path


def _front_pages(policy, out: Path) -> Path | None:  # type: ignore[no-untyped-def]
    """The demo's hospitals upload no 病案首页 (front pages come through the platform's
    uploads): an empty status, so a front-page item applies to no hospital of the demo."""
    from opendip.qc.frontpage import FRONT_PAGE_STATUS

    if not any(i.measure == "front_page_qc_pass_rate" for i in policy.credit.items):
        return None
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(FRONT_PAGE_STATUS.empty(), out / "front_page_status.parquet")
    return out / "front_page_status.parquet"


def _note(summary: dict) -> str:
    grades = "，".join(f"{g} 级 {n} 家" for g, n in summary["grades"].items())
    return f"{summary['period']} 年：{summary['hospitals']} 家医疗机构（{grades}），医师 {summary['doctors']} 名"


def run_previous(ctx: BenchContext) -> StageResult:
    pf = PolicyFile.read(ctx.policy_path)
    policy = pf.periods()[-1][2]
    history = list(ctx.artifacts.get("history") or [])
    if policy.credit is None or not history or "cases" not in ctx.artifacts:
        return StageResult(0, "政策未设信用评价或无上年数据，跳过")
    from opendip.codes import demo_code_tables
    from opendip.engine import connect
    from opendip.pipeline import quality_control
    from opendip.supervision.prepare import SupervisionInputs
    from opendip.supervision.run import supervise

    year = policy.year - 1
    out = Path(ctx.workdir) / "credit" / str(year)
    out.mkdir(parents=True, exist_ok=True)
    con = connect(ctx.engine)  # type: ignore[arg-type]
    cases = con.read_parquet(str(history[-1]))
    qc = quality_control(
        con, cases, ctx.artifacts.get("codes") or demo_code_tables(), policy, ctx.policy_path
    )
    pq.write_table(
        qc.case_status.select("case_id", "passed").to_pyarrow(), out / "case_status.parquet"
    )
    earlier = [str(p) for p in history[:-1]]
    leads = supervise(
        SupervisionInputs(
            cases=cases,
            history=con.read_parquet(earlier) if earlier else None,
            hospitals=con.read_parquet(str(ctx.artifacts["hospitals"])),
        ),
        policy,
    ).leads
    pq.write_table(leads, out / "leads.parquet")
    files = CreditFiles(
        cases=Path(history[-1]),
        case_status=out / "case_status.parquet",
        leads=out / "leads.parquet",
        submissions=_submissions(ctx),
        front_page_status=_front_pages(policy, out),
    )
    summary = run_credit(inputs_from_files(files, year, ctx.engine), pf, year, out, files.__dict__)
    ctx.artifacts["credit_previous"] = out / "ratings.parquet"
    note = _note(summary)
    if policy.prepayment is not None:
        note += "；" + _previous_year_for_prepayment(ctx, con, cases, qc, policy, out)
    return StageResult(int(summary["hospitals"]), note)


def _previous_year_for_prepayment(ctx, con, cases, qc, policy, out: Path) -> str:  # type: ignore[no-untyped-def]
    """预付金 inputs of the current year from last year: its fund payment by hospital × pool
    (the demo's history was not cleared by DIP: Σ fund_paid of its settlement lists) and its
    assessment (the engine's scorecard on last year's lists, grouped with the directory)."""
    from opendip.assessment.engine import AssessmentInputs, assess
    from opendip.codes import demo_code_tables
    from opendip.engine import table_from_arrow
    from opendip.pipeline import group_checked
    from opendip.settlement.prepayment import base_from_cases

    base = base_from_cases(con, cases)
    pq.write_table(base, out / "prepayment_base.parquet")
    ctx.artifacts["prepayment_base"] = out / "prepayment_base.parquet"
    if policy.assessment is None or "directory" not in ctx.artifacts:
        return f"上年统筹支付 {base.num_rows} 行（预付金基数）"
    status = qc.case_status
    done = ctx.artifacts.get("previous_grouped")  # the grouping stage's (same QC, directory)
    grouped = (
        pq.read_table(done)
        if done is not None
        else group_checked(
            con,
            cases,
            con.read_parquet(str(ctx.artifacts["directory"])),
            ctx.artifacts.get("codes") or demo_code_tables(),
            policy,
            status,
        )
    )
    history = list(ctx.artifacts.get("history") or [])
    scores = assess(
        AssessmentInputs(
            cases=cases,
            grouped=table_from_arrow(con, grouped, "cr_prev_grouped"),
            hospitals=con.read_parquet(str(ctx.artifacts["hospitals"])),
            case_status=status,
            previous_cases=con.read_parquet(str(history[-2])) if len(history) > 1 else None,
        ),
        policy,
    ).scores
    pq.write_table(scores, out / "assessment.parquet")
    ctx.artifacts["previous_assessment"] = out / "assessment.parquet"
    return f"上年统筹支付 {base.num_rows} 行、上年考核 {scores.num_rows} 家（预付金资格）"


def run(ctx: BenchContext) -> StageResult:
    pf = PolicyFile.read(ctx.policy_path)
    policy = pf.periods()[-1][2]
    a = ctx.artifacts
    if policy.credit is None or "cases" not in a:
        return StageResult(0, "政策未设信用评价，跳过")
    files = CreditFiles(
        cases=Path(a["cases"]),
        case_status=a.get("case_status"),
        leads=a.get("leads"),
        submissions=_submissions(ctx),
    )
    out = Path(ctx.workdir) / "credit" / str(policy.year)
    files.front_page_status = _front_pages(policy, out)
    summary = run_credit(
        inputs_from_files(files, policy.year, ctx.engine), pf, policy.year, out, files.__dict__
    )
    a["credit"] = out / "ratings.parquet"
    return StageResult(int(summary["hospitals"]), _note(summary))
