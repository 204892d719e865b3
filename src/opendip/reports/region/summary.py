"""概要: the report's findings in sentences, as an agency writes them (seed 002), composed from
the figures of the other sections (so it says nothing the tables do not show)."""

from __future__ import annotations

from opendip.reports.model import Figure, Report, Section
from opendip.reports.render.fmt import fmt_change, fmt_value, fmt_wan


def _v(report: Report, key: str) -> Figure | None:
    try:
        return report.figure(key)
    except KeyError:
        return None


def _fmt(report: Report, key: str) -> str:
    f = _v(report, key)
    return "—" if f is None else fmt_value(f.value, f.unit)


def _trend(report: Report, key: str, what: str) -> str | None:
    """ "次均费用 23,289.99 元，同比 +2.99%" (None without the figure)."""
    f = _v(report, key)
    if f is None or f.value is None:
        return None
    text = f"{what}{fmt_value(f.value, f.unit)}"
    text += {"fen": " 元", "days": " 天"}.get(f.unit, "")
    if f.previous is not None:
        text += f"（同比 {fmt_change(f.value, f.previous, f.unit)}）"
    return text


def summary(report: Report, period_label: str) -> Section:
    """The opening paragraphs, from the figures already in `report`."""
    s1 = (
        f"{period_label}，{_fmt(report, 'overview.hospitals')} 家医疗机构上传住院结算清单 "
        f"{_fmt(report, 'overview.cases')} 例"
    )
    if _v(report, "overview.qc_pass_rate") is not None:
        s1 += f"，质控通过率 {_fmt(report, 'overview.qc_pass_rate')}"
    s1 += (
        f"；入组率 {_fmt(report, 'overview.grouping_rate')}，使用病种 "
        f"{_fmt(report, 'overview.groups_used')} 个；按 DIP 结算 "
        f"{_fmt(report, 'overview.dip_cases')} 例。"
    )
    fund = report.figure("fund.fund_payable_fen")
    ffs = report.figure("fund.ffs_fund_fen")
    surplus, deficit = report.figure("fund.surplus_fen"), report.figure("fund.deficit_fen")
    s2 = (
        f"DIP 统筹基金应支付 {fmt_wan(fund.value)} 万元，同口径按项目付费统筹支付 "
        f"{fmt_wan(ffs.value)} 万元，DIP/按项目 {_fmt(report, 'fund.dip_ffs_ratio')}；"
        f"{_fmt(report, 'fund.hospitals_surplus')} 家医疗机构结余 {fmt_wan(surplus.value)} 万元，"
        f"{_fmt(report, 'fund.hospitals_deficit')} 家超支 {fmt_wan(abs(deficit.value or 0))} 万元。"
    )
    paragraphs = [s1, s2]
    trends = [
        t
        for t in (
            _trend(report, "costs.cost_per_case_fen", "次均住院费用 "),
            _trend(report, "costs.selfpay_per_case_fen", "次均自费 "),
            _trend(report, "costs.selfpay_ratio", "自费比例 "),
            _trend(report, "costs.alos_days", "平均住院日 "),
        )
        if t
    ]
    if trends:
        paragraphs.append("；".join(trends) + "。")
    levels = [
        f"{f.label.replace('医疗机构基层病种结算率', '')} {fmt_value(f.value, f.unit)}"
        for f in report.figures()
        if f.key.startswith("basic.settlement_rate.") and f.value is not None
    ]
    if levels:
        paragraphs.append(f"基层病种费用支付结算率：{'、'.join(levels)}。")
    high, low = _v(report, "deviation.high_share"), _v(report, "deviation.low_share")
    if high is not None and low is not None:
        s5 = (
            f"高倍率病例占 {fmt_value(high.value, high.unit)}，低倍率病例占 "
            f"{fmt_value(low.value, low.unit)}"
        )
        if _v(report, "supervision.leads") is not None:
            s5 += (
                f"；智能监管筛出线索 {_fmt(report, 'supervision.leads')} 条，其中高风险 "
                f"{_fmt(report, 'supervision.high_leads')} 条"
            )
        paragraphs.append(s5 + "。")
    return Section("summary", "概要", paragraphs)
