"""Bench stage: the annual report and the settlement publication of the demo year, rendered
(JSON, Excel, HTML, PDF) into `<workdir>/reports`, each with its manifest — the README's
main job ends with them."""

from __future__ import annotations

from opendip.bench import BenchContext, StageResult
from opendip.reports.region import build_publication, build_report


def run(ctx: BenchContext) -> StageResult:
    run_dir = ctx.artifacts.get("settlement")
    if run_dir is None or not (run_dir / "manifest.json").is_file():
        return StageResult(0, "缺少年终清算运行目录，跳过")
    from opendip.reports.sealed import write_sealed

    out = ctx.workdir / "reports"
    report = build_report(run_dir)
    written = write_sealed(report, out, f"年度运行分析报告_{report.period}")
    publication = build_publication(run_dir)
    write_sealed(
        publication, out, f"结算公示_{publication.period}", formats=("json", "xlsx", "pdf")
    )
    ctx.artifacts["report"] = written
    cases = report.figure("overview.cases").value
    pdf = written.get("pdf")
    return StageResult(
        int(cases or 0),
        f"年度报告与结算公示已写入 {out}" + (f"（PDF {pdf.name}）" if pdf else ""),
    )
