"""Cases by kind: basic groups by hospital level, deviation cases, special reviews, disputes."""

from __future__ import annotations

from collections import Counter

import pyarrow.compute as pc

from opendip.reports.calc import rate
from opendip.reports.model import ColumnSpec, Figure, Section, Table
from opendip.reports.region.common import LEVEL_LABELS, LEVEL_ORDER
from opendip.reports.region.facts import RegionFacts, one, rows
from opendip.reports.source import find_optional_input
from opendip.settlement.output import ENUM_LABELS
from opendip.settlement.run import read_table

DEVIATION_LABELS = ENUM_LABELS["deviation"]
DEVIATION_ORDER = ("normal", "high", "low", "extreme", "special_review")
APPLICATION_KINDS = {"special_review": "特例单议申请", "dispute": "争议申诉"}


def basic_groups(f: RegionFacts) -> Section:
    """基层病种 settlement rate by level = Σ DIP amount ÷ Σ medical total cost (seed 002)."""
    s = f.scored.filter(f.scored.group_type == "basic")
    by_level = {
        r["level"]: r
        for r in rows(
            s.group_by("level").aggregate(
                cases=s.count(),
                total_cost_fen=s.total_cost_fen.sum().cast("int64"),
                dip_amount_fen=s.dip_amount_fen.sum().cast("int64"),
            )
        )
    }
    table_rows, figures = [], []
    for level in sorted(by_level, key=lambda lv: LEVEL_ORDER.get(lv, 99)):
        r = by_level[level]
        settle_rate = rate(int(r["dip_amount_fen"]), int(r["total_cost_fen"]))
        table_rows.append(
            {
                "level": level,
                "level_label": LEVEL_LABELS.get(level, level),
                "cases": int(r["cases"]),
                "total_cost_fen": int(r["total_cost_fen"]),
                "dip_amount_fen": int(r["dip_amount_fen"]),
                "settlement_rate": settle_rate,
            }
        )
        figures.append(
            Figure(
                f"basic.settlement_rate.{level}",
                f"{LEVEL_LABELS.get(level, level)}医疗机构基层病种结算率",
                settle_rate,
                "ratio",
            )
        )
    total_cases = sum(r["cases"] for r in table_rows)
    figures.insert(0, Figure("basic.cases", "基层病种病例数", total_cases, "count"))
    table = Table(
        "basic.by_level",
        "基层病种按医院等级结算情况",
        [
            ColumnSpec("level_label", "医院等级"),
            ColumnSpec("cases", "病例数", "count"),
            ColumnSpec("total_cost_fen", "医疗总费用", "fen"),
            ColumnSpec("dip_amount_fen", "DIP 支付总额", "fen"),
            ColumnSpec("settlement_rate", "费用支付结算率", "ratio"),
        ],
        table_rows,
    )
    return Section(
        "basic",
        "基层病种",
        [
            "基层病种在各级医疗机构同病同分值、不乘医疗机构系数；费用支付结算率 = 基层病种 DIP "
            "支付总额 ÷ 医疗总费用（大于 100% 表示支付高于按项目的费用）。"
            + ("" if table_rows else "本期没有基层病种病例。")
        ],
        figures,
        [table],
    )


def deviation(f: RegionFacts) -> Section:
    s = f.scored
    n = int(one(s.aggregate(n=s.count()))["n"])
    by_kind = {
        r["deviation"]: r
        for r in rows(
            s.group_by("deviation").aggregate(
                cases=s.count(),
                total_cost_fen=s.total_cost_fen.sum().cast("int64"),
                dip_amount_fen=s.dip_amount_fen.sum().cast("int64"),
            )
        )
    }
    table_rows, figures = [], []
    for kind in (*DEVIATION_ORDER, *sorted(set(by_kind) - set(DEVIATION_ORDER))):
        r = by_kind.get(kind) or {"cases": 0, "total_cost_fen": 0, "dip_amount_fen": 0}
        cases = int(r["cases"])
        table_rows.append(
            {
                "deviation": kind,
                "label": DEVIATION_LABELS.get(kind, kind),
                "cases": cases,
                "share": rate(cases, n),
                "total_cost_fen": int(r["total_cost_fen"] or 0),
                "dip_amount_fen": int(r["dip_amount_fen"] or 0),
                "pay_rate": rate(int(r["dip_amount_fen"] or 0), int(r["total_cost_fen"] or 0)),
            }
        )
        if kind != "normal":
            figures.append(
                Figure(
                    f"deviation.{kind}_cases",
                    f"{DEVIATION_LABELS.get(kind, kind)}病例数",
                    cases,
                    "count",
                )
            )
            figures.append(
                Figure(
                    f"deviation.{kind}_share",
                    f"{DEVIATION_LABELS.get(kind, kind)}病例占比",
                    rate(cases, n),
                    "ratio",
                )
            )
    tables = [
        Table(
            "deviation.by_kind",
            "DIP 病例按费用偏差分类",
            [
                ColumnSpec("label", "类别"),
                ColumnSpec("cases", "病例数", "count"),
                ColumnSpec("share", "占 DIP 病例", "ratio"),
                ColumnSpec("total_cost_fen", "医疗总费用", "fen"),
                ColumnSpec("dip_amount_fen", "DIP 支付总额", "fen"),
                ColumnSpec("pay_rate", "支付/费用", "ratio"),
            ],
            table_rows,
        )
    ]
    paragraphs = [
        "高倍率、低倍率按病例费用与病种次均费用之比和政策的倍率界值判定；极端病例按政策封顶"
        "或转专家评审；特例单议病例按专家评审分值结算。"
    ]
    reviews = _reviews(f)
    if reviews is not None:
        accepted, rejected = reviews
        figures += [
            Figure("reviews.accepted", "特例单议通过", accepted, "count"),
            Figure("reviews.rejected", "特例单议未通过", rejected, "count"),
        ]
        paragraphs.append(
            f"本期特例单议评审结论 {accepted + rejected} 例：通过 {accepted} 例（按评审分值结算），"
            f"未通过 {rejected} 例（按常规规则结算）。"
        )
    if f.applications is not None:
        figures_apps, table_apps = _applications(f)
        figures += figures_apps
        tables.append(table_apps)
    return Section("deviation", "偏差病例、特例单议与争议", paragraphs, figures, tables)


def _reviews(f: RegionFacts) -> tuple[int, int] | None:
    path = find_optional_input(f.src, "reviews")
    if path is None:
        return None
    from opendip.scoring.inputs import normalise_reviews

    t = normalise_reviews(read_table(path, "reviews"))
    ids = f.period_cases.select("case_id").to_pyarrow().column(0)
    t = t.filter(pc.is_in(t.column("case_id").cast("string"), ids))
    decisions = Counter(t.column("decision").to_pylist())
    return decisions.get("accept", 0), decisions.get("reject", 0)


def _applications(f: RegionFacts) -> tuple[list[Figure], Table]:
    apps = f.applications or []
    counts = Counter((str(a.get("kind")), str(a.get("state"))) for a in apps)
    table_rows = [
        {"kind": k, "kind_label": APPLICATION_KINDS.get(k, k), "state": s, "count": c}
        for (k, s), c in sorted(counts.items())
    ]
    figures = [
        Figure(
            f"applications.{kind}",
            label,
            sum(c for (k, _), c in counts.items() if k == kind),
            "count",
        )
        for kind, label in APPLICATION_KINDS.items()
    ]
    table = Table(
        "applications.by_state",
        "特例单议与争议申请（按状态）",
        [
            ColumnSpec("kind_label", "类型"),
            ColumnSpec("state", "状态"),
            ColumnSpec("count", "件数", "count"),
        ],
        table_rows,
    )
    return figures, table
