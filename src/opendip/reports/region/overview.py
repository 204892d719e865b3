"""概况: cases, QC pass rate, 入组率, groups used by type."""

from __future__ import annotations

from opendip.contract.tables import CASE_GROUP_TYPES, GROUP_TYPE_LABELS
from opendip.reports.calc import rate
from opendip.reports.model import Chart, ColumnSpec, Figure, Section, Series, Table
from opendip.reports.region.facts import RegionFacts, one, rows

DEFINITIONS = (
    "结算清单病例数为本期结算月份内医疗机构上传的全部住院结算清单；质控通过率 = 质控无错误"
    "病例 ÷ 结算清单病例；入组率 = 入组到病种目录（含核心、综合、基层、特殊病种及保底组）的病例"
    " ÷ 结算清单病例；DIP 结算病例为按分值结算的病例，其余按项目付费或退回。"
)


def overview(f: RegionFacts) -> Section:
    pc = f.period_cases
    n = int(one(pc.aggregate(n=pc.count()))["n"])
    hospitals = int(one(pc.aggregate(n=pc.hospital_id.nunique()))["n"])
    figures = [
        Figure("overview.cases", "结算清单病例数", n, "count"),
        Figure("overview.hospitals", "上传病例的医疗机构", hospitals, "count"),
    ]
    if f.qc_status is not None:
        # Semi-joins, not joins: a settlement list may repeat a case id (returned as a
        # duplicate), and every row counts once.
        q = f.qc_status.filter(f.qc_status.q_id.isin(pc.case_id))
        qc = one(q.aggregate(checked=q.count(), passed=q.passed.cast("int64").sum()))
        figures += [
            Figure("overview.qc_checked", "质控病例数", int(qc["checked"] or 0), "count"),
            Figure("overview.qc_passed", "质控通过病例数", int(qc["passed"] or 0), "count"),
            Figure("overview.qc_pass_rate", "质控通过率", rate(int(qc["passed"] or 0), n), "ratio"),
        ]

    g = f.grouped.select(
        g_id=f.grouped.case_id.cast("string"),
        group_code=f.grouped.group_code.cast("string"),
        group_type=f.grouped.group_type.cast("string"),
    )
    pg = g.filter(g.g_id.isin(pc.case_id))
    by_type = {
        r["group_type"]: r
        for r in rows(
            pg.group_by("group_type").aggregate(cases=pg.count(), groups=pg.group_code.nunique())
        )
    }
    d = f.directory
    in_directory = {
        r["group_type"]: int(r["n"])
        for r in rows(d.group_by(group_type=d.group_type.cast("string")).aggregate(n=d.count()))
    }
    grouped_cases = sum(int(r["cases"]) for t, r in by_type.items() if t != "unmatched")
    groups_used = sum(int(r["groups"]) for t, r in by_type.items() if t != "unmatched")
    dip_cases = int(one(f.scored.aggregate(n=f.scored.count()))["n"])
    not_dip = int(one(f.not_dip.aggregate(n=f.not_dip.count()))["n"])
    figures += [
        Figure("overview.grouped_cases", "入组病例数", grouped_cases, "count"),
        Figure("overview.grouping_rate", "入组率", rate(grouped_cases, n), "ratio"),
        Figure("overview.groups_used", "使用病种数", groups_used, "count"),
        Figure("overview.dip_cases", "DIP 结算病例数", dip_cases, "count"),
        Figure("overview.not_dip_cases", "未按 DIP 结算病例数", not_dip, "count"),
    ]
    table_rows = []
    for t in CASE_GROUP_TYPES:
        r = by_type.get(t)
        if r is None and t not in in_directory:
            continue
        cases = int(r["cases"]) if r else 0
        table_rows.append(
            {
                "group_type": t,
                "label": GROUP_TYPE_LABELS.get(t, t),
                "directory_groups": in_directory.get(t),
                "groups_used": None if t == "unmatched" else int(r["groups"]) if r else 0,
                "cases": cases,
                "share": rate(cases, n),
            }
        )
    table = Table(
        "overview.group_types",
        "病种使用情况（按病种类型）",
        [
            ColumnSpec("label", "病种类型"),
            ColumnSpec("directory_groups", "目录病种数", "count"),
            ColumnSpec("groups_used", "本期使用病种数", "count"),
            ColumnSpec("cases", "病例数", "count"),
            ColumnSpec("share", "病例占比", "ratio"),
        ],
        table_rows,
    )
    chart = Chart(
        "overview.group_type_cases",
        "病例按病种类型分布",
        "pie",
        [Series("病例数", [(r["label"], r["cases"]) for r in table_rows if r["cases"]])],
    )
    return Section("overview", "总体情况", [DEFINITIONS], figures, [table], [chart])
