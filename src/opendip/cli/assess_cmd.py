"""`opendip assess`: the annual assessment (年度考核) from the policy's scorecard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opendip.cli.common import console, fail


def assess(
    policy: Annotated[Path, typer.Option("--policy", help="政策文件（含 assessment 评分表）")],
    year: Annotated[int, typer.Option("--year", help="考核年度")],
    cases: Annotated[Path, typer.Option("--cases", help="本年度结算清单 Parquet")],
    grouped: Annotated[Path, typer.Option("--grouped", help="入组结果 Parquet")],
    hospitals: Annotated[Path, typer.Option("--hospitals", help="医疗机构 Parquet")],
    out: Annotated[Path, typer.Option("--out", help="输出目录")],
    qc_status: Annotated[
        Path | None, typer.Option("--qc-status", help="质控 case_status.parquet")
    ] = None,
    previous_cases: Annotated[
        Path | None, typer.Option("--previous-cases", help="上年度结算清单（次均费用增长）")
    ] = None,
    leads: Annotated[
        Path | None,
        typer.Option("--leads", help="监管线索（hospital_id, status；status=confirmed 计入）"),
    ] = None,
    front_page_status: Annotated[
        Path | None,
        typer.Option("--front-page-status", help="病案首页质控 front_page_status.parquet"),
    ] = None,
) -> None:
    """年度考核：按政策评分表逐院计算指标、得分与总分；结果可作为 settle year --assessment。"""
    from opendip.assessment.engine import AssessmentError
    from opendip.assessment.run import AssessFiles, run_assess
    from opendip.policy import PolicyError

    files = AssessFiles(
        policy, cases, grouped, hospitals, qc_status, previous_cases, leads, front_page_status
    )
    try:
        s = run_assess(files, year, out)
    except (AssessmentError, PolicyError) as exc:
        fail(str(exc))
    console.print(
        f"{year} 年度考核：{s['hospitals']} 家医疗机构，总分 {s['min']}～{s['max']}；"
        f"得分 → {s['scores']}（用于 opendip settle year --assessment），明细 breakdown.parquet"
    )
