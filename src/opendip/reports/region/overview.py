"""概况: cases, QC pass rate, 入组率, groups used by type."""

from __future__ import annotations

import ibis

from opendip.contract.tables import CASE_GROUP_TYPES, DIRECTORY_KIND_LABELS, GROUP_TYPE_LABELS
from opendip.reports.calc import rate
from opendip.reports.model import Chart, ColumnSpec, Figure, Section, Series, Table
from opendip.reports.region.facts import RegionFacts, one, rows

DEFINITIONS = (
    "结算清单病例数为本期结算月份内医疗机构上传的全部住院结算清单；质控通过率 = 质控无错误"
    "病例 ÷ 结算清单病例；入组率 = 入组到病种目录（含核心、综合、基层、特殊病种及保底组）的病例"
    " ÷ 结算清单病例；DIP 结算病例为按分值结算的病例，其余按项目付费或退回。新增病种为在国家"
    "目录框架外本地新增的病种，目录构成中单列；中医/民族医优势病种、新技术新项目病例按政策"
    "特殊支付（加分、同病同价或按项目付费）。"
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
    if f.front_page_status is not None:
        q = f.front_page_status.filter(f.front_page_status.q_id.isin(pc.case_id))
        fp = one(q.aggregate(checked=q.count(), passed=q.passed.cast("int64").sum()))
        checked, passed = int(fp["checked"] or 0), int(fp["passed"] or 0)
        figures += [
            Figure("overview.front_page_checked", "病案首页质控份数", checked, "count"),
            Figure("overview.front_page_passed", "病案首页质控通过份数", passed, "count"),
            Figure(
                "overview.front_page_pass_rate",
                "病案首页质控通过率",
                rate(passed, checked),
                "ratio",
            ),
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
    figures += special_rule_figures(f)
    return Section(
        "overview", "总体情况", [DEFINITIONS], figures, [table, directory_kinds_table(f)], [chart]
    )


def directory_kinds_table(f: RegionFacts) -> Table:
    """The directory's groups by the kinds the regions report (新增病种 apart)."""
    d = f.directory
    local = (d.origin == "local").fill_null(False) if "origin" in d.columns else ibis.literal(False)
    kind = ibis.ifelse(local, "new", d.group_type.cast("string"))
    counts = {r["kind"]: int(r["n"]) for r in rows(d.group_by(kind=kind).aggregate(n=d.count()))}
    total = sum(counts.values())
    return Table(
        "overview.directory_kinds",
        "病种目录构成（新增病种单列）",
        [
            ColumnSpec("label", "病种类别"),
            ColumnSpec("groups", "病种数", "count"),
            ColumnSpec("share", "占比", "ratio"),
        ],
        [
            {"label": label, "groups": counts.get(k, 0), "share": rate(counts.get(k, 0), total)}
            for k, label in DIRECTORY_KIND_LABELS.items()
        ],
    )


def special_rule_figures(f: RegionFacts) -> list[Figure]:
    """中医/民族医优势病种 and 新技术新项目 cases and money of the period."""
    s, nd = f.scored, f.not_dip
    out = []
    if "tcm_group" in s.columns:
        amount = s.dip_amount_fen.fill_null(0)
        r = one(
            s.aggregate(
                tcm=s.tcm_group.notnull().cast("int64").sum(),
                tcm_fen=ibis.ifelse(s.tcm_group.notnull(), amount, 0).sum(),
                nt=s.new_tech.notnull().cast("int64").sum(),
                nt_fen=ibis.ifelse(s.new_tech.notnull(), amount, 0).sum(),
            )
        )
        out += [
            Figure("overview.tcm_cases", "中医/民族医优势病种病例数", int(r["tcm"] or 0), "count"),
            Figure(
                "overview.tcm_dip_fen",
                "中医/民族医优势病种 DIP 金额",
                int(r["tcm_fen"] or 0),
                "fen",
            ),
            Figure("overview.new_tech_cases", "新技术新项目加分病例数", int(r["nt"] or 0), "count"),
            Figure(
                "overview.new_tech_dip_fen",
                "新技术新项目加分病例 DIP 金额",
                int(r["nt_fen"] or 0),
                "fen",
            ),
        ]
    if "exemption" in nd.columns:
        b = nd.filter(nd.exemption.notnull())
        r = one(b.aggregate(n=b.count(), fen=b.ffs_fund_fen.fill_null(0).sum()))
        out += [
            Figure(
                "overview.new_tech_by_item_cases",
                "新技术新项目按项目付费病例数",
                int(r["n"] or 0),
                "count",
            ),
            Figure(
                "overview.new_tech_by_item_fen",
                "新技术新项目按项目统筹支付",
                int(r["fen"] or 0),
                "fen",
            ),
        ]
    return out
