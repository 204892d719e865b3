"""智能监管: supervision leads by type, the top leads, and indicator anomalies of the period."""

from __future__ import annotations

from pathlib import Path

import duckdb

from opendip.reports.model import ColumnSpec, Figure, Section, Table
from opendip.reports.region.facts import RegionFacts

TOP_LEADS = 10
TOP_ANOMALIES = 10
SEVERITY_LABELS = {"high": "高", "medium": "中", "low": "低"}


def supervision(f: RegionFacts) -> Section | None:
    if f.supervision_dir is None:
        return None
    con = duckdb.connect()
    leads_path = str(Path(f.supervision_dir) / "leads.parquet")
    by_type = _rows(
        con,
        """SELECT lead_type, any_value(type_label) AS type_label, count(*) AS leads,
                  sum(case_count)::BIGINT AS cases, sum(impact_fen)::BIGINT AS impact_fen,
                  sum((severity = 'high')::INT)::BIGINT AS high
           FROM read_parquet(?) GROUP BY lead_type ORDER BY leads DESC, lead_type""",
        leads_path,
    )
    top = _rows(
        con,
        f"""SELECT rank_overall, type_label, hospital_id, department, case_count, severity,
                   impact_fen, evidence
            FROM read_parquet(?) ORDER BY rank_overall, lead_id LIMIT {TOP_LEADS}""",
        leads_path,
    )
    for r in top:
        r["severity_label"] = SEVERITY_LABELS.get(r["severity"], r["severity"])
    figures = [
        Figure("supervision.leads", "监管线索", sum(int(r["leads"]) for r in by_type), "count"),
        Figure(
            "supervision.high_leads", "高风险线索", sum(int(r["high"]) for r in by_type), "count"
        ),
        Figure(
            "supervision.impact_fen",
            "线索涉及金额",
            sum(int(r["impact_fen"] or 0) for r in by_type),
            "fen",
        ),
    ]
    tables = [
        Table(
            "supervision.by_type",
            "监管线索按类型",
            [
                ColumnSpec("type_label", "线索类型"),
                ColumnSpec("leads", "线索数", "count"),
                ColumnSpec("high", "高风险", "count"),
                ColumnSpec("cases", "涉及病例", "count"),
                ColumnSpec("impact_fen", "涉及金额", "fen"),
            ],
            by_type,
        ),
        Table(
            "supervision.top_leads",
            f"重点线索（前 {TOP_LEADS} 条）",
            [
                ColumnSpec("rank_overall", "排名", "count"),
                ColumnSpec("type_label", "类型"),
                ColumnSpec("hospital_id", "医疗机构"),
                ColumnSpec("department", "科室"),
                ColumnSpec("case_count", "病例数", "count"),
                ColumnSpec("severity_label", "风险"),
                ColumnSpec("impact_fen", "涉及金额", "fen"),
                ColumnSpec("evidence", "线索依据"),
            ],
            top,
        ),
    ]
    indicators_path = Path(f.supervision_dir) / "indicators.parquet"
    if indicators_path.is_file():
        where = f"month LIKE '{f.year}-%'" if f.kind == "annual" else f"month = '{f.period}'"
        anomalies = _rows(
            con,
            f"""SELECT hospital_id, month, indicator_label, value, prev_month_value,
                       last_year_value, anomaly_reason
                FROM read_parquet(?) WHERE anomaly AND scope = 'hospital' AND {where}
                ORDER BY abs(coalesce(own_z, 0)) + abs(coalesce(peer_z, 0)) DESC,
                         hospital_id, month, indicator
                LIMIT {TOP_ANOMALIES}""",
            str(indicators_path),
        )
        count = _rows(
            con,
            f"SELECT count(*) AS n FROM read_parquet(?) WHERE anomaly AND scope = 'hospital' AND {where}",
            str(indicators_path),
        )[0]["n"]
        figures.append(
            Figure("supervision.anomalies", "异常指标（医疗机构·月）", int(count), "count")
        )
        tables.append(
            Table(
                "supervision.anomalies",
                f"偏离最大的异常指标（前 {TOP_ANOMALIES} 项）",
                [
                    ColumnSpec("hospital_id", "医疗机构"),
                    ColumnSpec("month", "月份"),
                    ColumnSpec("indicator_label", "指标"),
                    ColumnSpec("value", "本期值", "score"),
                    ColumnSpec("prev_month_value", "上月", "score"),
                    ColumnSpec("last_year_value", "上年同期", "score"),
                    ColumnSpec("anomaly_reason", "异常说明"),
                ],
                anomalies,
            )
        )
    return Section(
        "supervision",
        "智能监管",
        [
            "监管线索由智能监管规则从全年结算清单中筛出（高套分值、分解住院、低标准入院、"
            "费用转移等），按风险排序，供稽核核实；线索不等于违规。"
        ],
        figures,
        tables,
    )


def _rows(con: duckdb.DuckDBPyConnection, sql: str, *params: object) -> list[dict]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
