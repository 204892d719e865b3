"""费用结构与个人负担 (issue 22 item 7, the figures seed 003 and the regions' reports publish).

Over every settlement-list case of the period (DIP or not), from the list's own columns:
  个人自付（自负）= Σ personal_copay; 个人自费 = Σ personal_selfpay;
  个人负担 = 个人自付 + 个人自费; 个人负担比例 = 个人负担 ÷ 医疗总费用;
  实际报销比例 = Σ fund_paid (统筹基金支付) ÷ Σ total_cost;
  药品耗材占比 = (西药 + 中药饮片 + 中成药 + 卫生材料) ÷ 医疗总费用;
  中医药费用占比 = (中药饮片 + 中成药) ÷ 医疗总费用;
  诊疗项目费用占比 = (诊查 + 检查 + 化验 + 治疗 + 手术 + 护理 + 一般诊疗) ÷ 医疗总费用;
and by ownership of the hospital (公立/民营; 未填报 when the hospital table leaves it empty):
cases, total cost and the fund's payment. Ratios 4 places, half up. A column the list does
not carry counts 0.
"""

from __future__ import annotations

import ibis

from opendip.reports.calc import rate
from opendip.reports.model import Figure, Section
from opendip.reports.region.facts import RegionFacts, in_period, one, rows

DRUGS = ("fee_western_medicine", "fee_herbal_pieces", "fee_chinese_patent_medicine")
MATERIALS = ("fee_materials",)
TCM = ("fee_herbal_pieces", "fee_chinese_patent_medicine")
ITEMS = (
    "fee_consultation",
    "fee_examination",
    "fee_laboratory",
    "fee_treatment",
    "fee_surgery",
    "fee_nursing",
    "fee_general_treatment",
)
OWNERSHIP = {"public": "公立", "private": "民营", "unknown": "未填报"}
DEFINITIONS = (
    "按本期全部结算清单病例计算：个人负担 = 个人自付（自负）+ 个人自费；实际报销比例 = 统筹基金"
    "支付 ÷ 医疗总费用；药品耗材占比 = （西药 + 中药饮片 + 中成药 + 卫生材料）÷ 医疗总费用；"
    "中医药费用占比 = （中药饮片 + 中成药）÷ 医疗总费用；诊疗项目费用占比 = （诊查 + 检查 + 化验"
    " + 治疗 + 手术 + 护理 + 一般诊疗）÷ 医疗总费用。公立/民营按医疗机构的所有制划分。"
)


def _col(raw, name: str):
    return raw[name].cast("int64").fill_null(0) if name in raw.columns else ibis.literal(0, "int64")


def structure(f: RegionFacts) -> Section:
    raw = f.con.read_parquet(str(f.src.paths["cases"]))
    raw = raw.mutate(settle_month=raw.settle_month.cast("string"))
    raw = raw.filter(in_period(raw, f.period))

    def total(names: tuple[str, ...]):
        expr = ibis.literal(0, "int64")
        for n in names:
            expr = expr + _col(raw, n)
        return expr

    t = raw.select(
        hospital_id=raw.hospital_id.cast("string"),
        cost=_col(raw, "total_cost"),
        copay=_col(raw, "personal_copay"),
        selfpay=_col(raw, "personal_selfpay"),
        fund=_col(raw, "fund_paid"),
        drugs=total(DRUGS + MATERIALS),
        tcm=total(TCM),
        items=total(ITEMS),
    )
    s = one(
        t.aggregate(
            cost=t.cost.sum(),
            copay=t.copay.sum(),
            selfpay=t.selfpay.sum(),
            fund=t.fund.sum(),
            drugs=t.drugs.sum(),
            tcm=t.tcm.sum(),
            items=t.items.sum(),
        )
    )
    v = {k: int(s[k] or 0) for k in s}
    burden = v["copay"] + v["selfpay"]
    figures = [
        Figure("structure.copay_fen", "个人自付（自负）", v["copay"], "fen"),
        Figure("structure.selfpay_fen", "个人自费", v["selfpay"], "fen"),
        Figure("structure.burden_fen", "个人负担", burden, "fen"),
        Figure("structure.burden_ratio", "个人负担比例", rate(burden, v["cost"]), "ratio"),
        Figure("structure.fund_paid_fen", "统筹基金支付", v["fund"], "fen"),
        Figure(
            "structure.reimbursement_ratio", "实际报销比例", rate(v["fund"], v["cost"]), "ratio"
        ),
        Figure(
            "structure.drug_material_share", "药品耗材占比", rate(v["drugs"], v["cost"]), "ratio"
        ),
        Figure("structure.tcm_share", "中医药费用占比", rate(v["tcm"], v["cost"]), "ratio"),
        Figure("structure.items_share", "诊疗项目费用占比", rate(v["items"], v["cost"]), "ratio"),
    ]
    h = f.con.read_parquet(str(f.src.paths["hospitals"]))
    own = (
        h.ownership.cast("string").fill_null("unknown")
        if "ownership" in h.columns
        else ibis.literal("unknown")
    )
    h = h.select(h_id=h.hospital_id.cast("string"), ownership=own)
    j = t.left_join(h, t.hospital_id == h.h_id)
    j = j.mutate(ownership=j.ownership.fill_null("unknown"))
    by = {
        r["ownership"]: r
        for r in rows(
            j.group_by("ownership").aggregate(cases=j.count(), cost=j.cost.sum(), fund=j.fund.sum())
        )
    }
    for key in ("public", "private", "unknown"):
        if key not in by:
            continue
        r, label = by[key], OWNERSHIP[key]
        cost, fund = int(r["cost"] or 0), int(r["fund"] or 0)
        figures += [
            Figure(f"structure.{key}.cases", f"{label}医疗机构病例数", int(r["cases"]), "count"),
            Figure(
                f"structure.{key}.cost_share",
                f"{label}医疗机构费用占比",
                rate(cost, v["cost"]),
                "ratio",
            ),
            Figure(
                f"structure.{key}.reimbursement_ratio",
                f"{label}医疗机构实际报销比例",
                rate(fund, cost),
                "ratio",
            ),
        ]
    return Section("structure", "费用结构与个人负担", [DEFINITIONS], figures)


def _fmt_edge(d) -> str:
    return format(d.normalize(), "f")


def score_bands(f: RegionFacts) -> Section:
    """DIP cases of the period by settled score band (policy reporting.score_bands)."""
    edges = list(f.policy.periods()[-1][2].reporting.score_bands)
    s = f.scored
    band = ibis.literal(-1, "int64")
    for i, e in enumerate(edges):
        band = ibis.ifelse(s.settled_score.cast("decimal(38, 9)") >= e, i, band)
    m = s.mutate(band=band)
    counts = {int(r["band"]): int(r["n"]) for r in rows(m.group_by("band").aggregate(n=m.count()))}
    total = sum(counts.values())
    figures = []
    for i, lo in enumerate(edges):
        hi = edges[i + 1] if i + 1 < len(edges) else None
        name = f"{_fmt_edge(lo)}-{_fmt_edge(hi)}" if hi is not None else f"{_fmt_edge(lo)}+"
        label = (
            f"结算分值 {_fmt_edge(lo)}～{_fmt_edge(hi)} 分（不含）病例数"
            if hi is not None
            else f"结算分值 {_fmt_edge(lo)} 分及以上病例数"
        )
        n = counts.get(i, 0)
        figures += [
            Figure(f"scoreband.{name}.cases", label, n, "count"),
            Figure(
                f"scoreband.{name}.share",
                label.replace("病例数", "病例占比"),
                rate(n, total),
                "ratio",
            ),
        ]
    if counts.get(-1):
        figures.append(
            Figure("scoreband.below.cases", "低于最低分值段的病例数", counts[-1], "count")
        )
    text = "DIP 结算病例按结算分值分段计数，分段下限由区域政策的报表口径给出，每段含下限不含上限。"
    return Section("scoreband", "结算分值分段分布", [text], figures)
