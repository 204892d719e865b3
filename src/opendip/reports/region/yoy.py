"""Year on year by group (seed figures): how many groups got cheaper per case, and basic-group
cases by hospital level, this year against last year's grouped cases.

Needs last year's settlement lists (`previous_cases`) and their grouping (`grouped_<year-1>
.parquet` beside the run, or `Extras.previous_grouped`); without them the section is left out.
"""

from __future__ import annotations

from typing import Any

import ibis.expr.types as ir

from opendip.reports.calc import per_case, rate
from opendip.reports.model import ColumnSpec, Figure, Section, Table
from opendip.reports.region.common import LEVEL_LABELS, LEVEL_ORDER
from opendip.reports.region.facts import RegionFacts, in_period, rows


def previous_period(period: str) -> str:
    """The same period a year earlier: "2026" → "2025", "2026-03" → "2025-03"."""
    return f"{int(period[:4]) - 1}{period[4:]}"


def _grouped_costs(cases: ir.Table, grouped: ir.Table) -> ir.Table:
    """case_id, hospital_id, total_cost_fen, group_code, group_type (grouped cases only)."""
    g = grouped.select(
        g_id=grouped.case_id.cast("string"),
        group_code=grouped.group_code.cast("string"),
        group_type=grouped.group_type.cast("string"),
    )
    g = g.filter(g.group_type.notnull() & (g.group_type != "unmatched"))
    t = cases.select("case_id", "hospital_id", "total_cost_fen")
    return t.join(g, t.case_id == g.g_id).drop("g_id")


def group_cost_changes(
    cases: ir.Table, grouped: ir.Table, prev_cases: ir.Table, prev_grouped: ir.Table
) -> list[dict[str, Any]]:
    """Per group grouped in both years: cases and total cost each year, cost per case (fen,
    half up) and its change; `change` is cheaper / dearer / same, compared exactly
    (c1 × n0 against c0 × n1), most cases first."""
    now = _grouped_costs(cases, grouped)
    before = _grouped_costs(prev_cases, prev_grouped)
    a = now.group_by("group_code").aggregate(n1=now.count(), c1=now.total_cost_fen.sum())
    b = before.group_by(p_code=before.group_code).aggregate(
        n0=before.count(), c0=before.total_cost_fen.sum()
    )
    j = a.join(b, a.group_code == b.p_code).drop("p_code")
    out = []
    for r in rows(j):
        n1, c1, n0, c0 = int(r["n1"]), int(r["c1"]), int(r["n0"]), int(r["c0"])
        diff = c1 * n0 - c0 * n1
        now_pc, before_pc = per_case(c1, n1), per_case(c0, n0)
        out.append(
            {
                "group_code": r["group_code"],
                "cases": n1,
                "previous_cases": n0,
                "cost_per_case_fen": now_pc,
                "previous_cost_per_case_fen": before_pc,
                "cost_change": rate(diff, c0 * n1) if c0 else None,
                "change": "cheaper" if diff < 0 else "dearer" if diff > 0 else "same",
            }
        )
    out.sort(key=lambda r: (-r["cases"], r["group_code"]))
    return out


def basic_by_level(
    cases: ir.Table,
    grouped: ir.Table,
    prev_cases: ir.Table,
    prev_grouped: ir.Table,
    hospitals: ir.Table,
) -> list[dict[str, Any]]:
    """基层病种 cases by hospital level, this year and last (hospitals: h_id, level)."""
    counts: dict[str, dict[str, int]] = {}
    for key, c, g in (("cases", cases, grouped), ("previous_cases", prev_cases, prev_grouped)):
        t = _grouped_costs(c, g)
        t = t.filter(t.group_type == "basic")
        t = t.left_join(hospitals, t.hospital_id == hospitals.h_id)
        for r in rows(t.group_by(level=t.level.fill_null("unrated")).aggregate(n=t.count())):
            counts.setdefault(str(r["level"]), {"cases": 0, "previous_cases": 0})[key] = int(r["n"])
    out = []
    for level in sorted(counts, key=lambda lv: LEVEL_ORDER.get(lv, 99)):
        n1, n0 = counts[level]["cases"], counts[level]["previous_cases"]
        out.append(
            {
                "level": level,
                "level_label": LEVEL_LABELS.get(level, level),
                "cases": n1,
                "previous_cases": n0,
                "growth": rate(n1 - n0, n0),
            }
        )
    return out


CHANGE_LABELS = {"cheaper": "下降", "dearer": "上升", "same": "持平"}


def year_on_year(f: RegionFacts) -> Section | None:
    """Section 病种费用与基层病种同比 (None without last year's cases and grouping)."""
    if f.previous_cases is None or f.previous_grouped is None:
        return None
    # the same period of last year (a monthly report: the same month)
    before = f.previous_cases.filter(in_period(f.previous_cases, previous_period(f.period)))
    groups = group_cost_changes(f.period_cases, f.grouped, before, f.previous_grouped)
    h = f.hospitals.select(
        h_id=f.hospitals.hospital_id.cast("string"), level=f.hospitals.level.cast("string")
    )
    basic = basic_by_level(f.period_cases, f.grouped, before, f.previous_grouped, h)
    n = {k: sum(1 for g in groups if g["change"] == k) for k in CHANGE_LABELS}
    figures = [
        Figure("yoy.groups_compared", "两年均有病例的病种数", len(groups), "count"),
        Figure("yoy.groups_cheaper", "次均费用下降的病种数", n["cheaper"], "count"),
        Figure("yoy.groups_dearer", "次均费用上升的病种数", n["dearer"], "count"),
        Figure("yoy.groups_same", "次均费用持平的病种数", n["same"], "count"),
        Figure("yoy.basic_cases", "基层病种病例数", sum(b["cases"] for b in basic), "count"),
        Figure(
            "yoy.basic_previous_cases",
            "上年基层病种病例数",
            sum(b["previous_cases"] for b in basic),
            "count",
        ),
    ]
    for g in groups:
        g["change_label"] = CHANGE_LABELS[g["change"]]
    group_table = Table(
        "yoy.groups",
        "病种次均费用同比（病例数最多的 20 个病种）",
        [
            ColumnSpec("group_code", "病种编码"),
            ColumnSpec("cases", "本期病例数", "count"),
            ColumnSpec("previous_cases", "上年病例数", "count"),
            ColumnSpec("cost_per_case_fen", "本期次均费用", "fen"),
            ColumnSpec("previous_cost_per_case_fen", "上年次均费用", "fen"),
            ColumnSpec("cost_change", "次均费用变化", "ratio"),
            ColumnSpec("change_label", "升降"),
        ],
        groups[:20],
    )
    basic_table = Table(
        "yoy.basic_by_level",
        "基层病种病例数按医院等级同比（与上年同期）",
        [
            ColumnSpec("level_label", "医院等级"),
            ColumnSpec("cases", "本期病例数", "count"),
            ColumnSpec("previous_cases", "上年病例数", "count"),
            ColumnSpec("growth", "增长率", "ratio"),
        ],
        basic,
    )
    return Section(
        "yoy",
        "病种费用与基层病种同比",
        [
            "按上年入组结果与本期比较：两年均有入组病例的病种，次均费用 = 医疗总费用 ÷ 病例数；"
            "升降按精确比较（本期总费用 × 上年病例数 与 上年总费用 × 本期病例数）。"
            f"{len(groups)} 个病种中 {n['cheaper']} 个次均费用下降、{n['dearer']} 个上升、"
            f"{n['same']} 个持平。"
        ],
        figures,
        [group_table, basic_table],
    )
