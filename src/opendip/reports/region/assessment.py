"""年度考核: each hospital's assessment score, the deposit it returned, and the scorecard's
lines (annual report of a clearing run made with an assessment)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from opendip.assessment import assessment_dirs
from opendip.reports.model import ColumnSpec, Figure, Section, Table
from opendip.reports.region.facts import RegionFacts
from opendip.reports.source import ReportInputError, find_optional_input


def assessment_paths(f: RegionFacts) -> tuple[Path, Path | None] | None:
    """The run's assessment scores (manifest input) and the breakdown written beside them."""
    if f.kind != "annual":
        return None
    try:
        scores = find_optional_input(f.src, "assessment", assessment_dirs(f.src.run_dir))
    except ReportInputError:
        return None
    if scores is None:
        return None
    breakdown = scores.parent / "breakdown.parquet"
    return scores, breakdown if breakdown.is_file() else None


def assessment(f: RegionFacts) -> Section | None:
    paths = assessment_paths(f)
    if paths is None:
        return None
    _, breakdown = paths
    con = duckdb.connect()
    run = str(f.src.run_dir / "hospitals.parquet")
    by_hospital = _rows(
        con,
        """SELECT hospital_id, any_value(assessment_score) AS assessment_score,
                  any_value(return_share) AS return_share,
                  sum(withheld_fen)::BIGINT AS withheld_fen,
                  sum(returned_fen)::BIGINT AS returned_fen,
                  sum(deposit_deducted_fen)::BIGINT AS deposit_deducted_fen
           FROM read_parquet(?) GROUP BY hospital_id
           ORDER BY assessment_score, hospital_id""",
        run,
    )
    figures = [
        Figure("assessment.hospitals", "参加考核的医疗机构", len(by_hospital), "count"),
        Figure(
            "assessment.returned_fen",
            "返还质量保证金",
            sum(int(r["returned_fen"]) for r in by_hospital),
            "fen",
        ),
        Figure(
            "assessment.deducted_fen",
            "扣减质量保证金",
            sum(int(r["deposit_deducted_fen"]) for r in by_hospital),
            "fen",
        ),
    ]
    tables = [
        Table(
            "assessment.by_hospital",
            "医疗机构考核得分与质量保证金",
            [
                ColumnSpec("hospital_id", "医疗机构"),
                ColumnSpec("assessment_score", "考核得分", "score"),
                ColumnSpec("return_share", "返还比例", "ratio"),
                ColumnSpec("withheld_fen", "质量保证金", "fen"),
                ColumnSpec("returned_fen", "返还", "fen"),
                ColumnSpec("deposit_deducted_fen", "扣减", "fen"),
            ],
            by_hospital,
        )
    ]
    if breakdown is not None:
        lines = _rows(
            con,
            """SELECT indicator, any_value(indicator_name) AS indicator_name,
                      any_value(weight) AS weight, count(*) AS hospitals,
                      avg(points)::DECIMAL(10, 2) AS mean_points,
                      sum((points = weight)::INT)::BIGINT AS full_marks
               FROM read_parquet(?) GROUP BY indicator ORDER BY indicator""",
            str(breakdown),
        )
        card = f.policy.periods()[-1][2].assessment
        order = {i.id: n for n, i in enumerate(card.indicators)} if card else {}
        lines.sort(key=lambda r: (order.get(r["indicator"], len(order)), r["indicator"]))
        tables.append(
            Table(
                "assessment.indicators",
                "考核指标得分情况",
                [
                    ColumnSpec("indicator_name", "考核指标"),
                    ColumnSpec("weight", "权重（分）", "score"),
                    ColumnSpec("hospitals", "考核家数", "count"),
                    ColumnSpec("mean_points", "平均得分", "score"),
                    ColumnSpec("full_marks", "满分家数", "count"),
                ],
                lines,
            )
        )
    return Section(
        "assessment",
        "年度考核",
        [
            "考核得分按政策评分表由结算清单、质控、入组、监管等数据计算，"
            "按考核得分分档返还年度质量保证金。"
        ],
        figures,
        tables,
    )


def _rows(con: duckdb.DuckDBPyConnection, sql: str, *params: object) -> list[dict]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
