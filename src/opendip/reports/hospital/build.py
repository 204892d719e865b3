"""院端分析: a hospital's profit and loss under DIP, from a settlement run (docs/reports.md).

Definitions (per case, summed over any set of cases):
  结余 balance            = DIP amount (dip_amount_fen) − medical total cost (total_cost)
  结余率 balance rate      = balance ÷ medical total cost
  基金结余 fund balance     = fund payable under DIP (fund_payable_fen) − fund paid by item
                            (ffs_fund_fen, the settlement list's fund_paid)
  CMI                    = Σ case score ÷ cases ÷ the directory's base score (policy)
  费用比 cost/mean ratio    = total cost ÷ the reference mean scoring used (see thresholds)

Aggregation runs in the engine (Ibis on DuckDB); the per-hospital result tables (a few
hundred rows) are turned into report rows in Python. Money stays integer fen; rates and
CMI are Decimals rounded half up to 4 places.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

import opendip
from opendip.engine import connect, table_from_arrow
from opendip.reports.calc import cmi, per_case, rate
from opendip.reports.hospital.source import (
    HospitalAnalysisError,
    RunSources,
    case_facts,
    hospital_row,
    resolve_run,
)
from opendip.reports.hospital.thresholds import RATIO_DECIMALS, threshold_table, with_ratio
from opendip.reports.model import Chart, ColumnSpec, Figure, Report, Section, Series, Table

#: Default width of the near-threshold band, in cost/mean ratio units: a case is "near"
#: the high threshold h when h − band ≤ ratio ≤ h, near the low one l when l ≤ ratio ≤ l + band.
DEFAULT_NEAR_BAND = Decimal("0.2")
DEFAULT_TOP_N = 10
DEFAULT_NEAR_LIMIT = 100
#: Histogram of the cost/mean ratio: bins of 0.1 up to 4.0, the last bin open (≥ 4.0).
HIST_STEP_UNITS = 1000  # 0.1 in ratio units of 10**-4
HIST_BINS = 40

DEVIATION_LABELS = {
    "normal": "正常",
    "high": "高倍率",
    "low": "低倍率",
    "extreme": "极端",
    "special_review": "特例单议",
}


def _totals(t: ir.Table, keys: list[str]) -> ir.Table:
    aggs = {
        "cases": t.count(),
        "total_cost_fen": t.total_cost_fen.sum().cast("int64"),
        "dip_amount_fen": t.dip_amount_fen.sum().cast("int64"),
        "fund_payable_fen": t.fund_payable_fen.sum().cast("int64"),
        "ffs_fund_fen": t.ffs_fund_fen.sum().cast("int64"),
        "personal_share_fen": t.personal_share_fen.sum().cast("int64"),
        "case_score_sum": t.case_score.sum(),
        "settled_score_sum": t.settled_score.sum(),
        "high_cases": (t.deviation.isin(["high", "extreme"])).cast("int64").sum(),
        "low_cases": (t.deviation == "low").cast("int64").sum(),
    }
    if keys:
        return t.group_by(keys).aggregate(**aggs)
    return t.aggregate(**aggs)


def _derive(row: dict[str, Any], base_score: Decimal) -> dict[str, Any]:
    """Balance, fund balance, rates and CMI of one aggregated row (exact, in Python)."""
    out = dict(row)
    n = int(row["cases"] or 0)
    out["balance_fen"] = int(row["dip_amount_fen"]) - int(row["total_cost_fen"])
    out["balance_rate"] = rate(out["balance_fen"], int(row["total_cost_fen"]))
    out["fund_balance_fen"] = int(row["fund_payable_fen"]) - int(row["ffs_fund_fen"])
    out["cost_per_case_fen"] = per_case(int(row["total_cost_fen"]), n)
    out["dip_per_case_fen"] = per_case(int(row["dip_amount_fen"]), n)
    score = Decimal(row["case_score_sum"] or 0)
    out["cmi"] = cmi(score, n, base_score)
    return out


MONEY_COLUMNS = [
    ColumnSpec("cases", "病例数", "count"),
    ColumnSpec("total_cost_fen", "医疗总费用", "fen"),
    ColumnSpec("dip_amount_fen", "DIP 支付金额", "fen"),
    ColumnSpec("balance_fen", "结余(+)/亏损(−)", "fen"),
    ColumnSpec("balance_rate", "结余率", "ratio"),
    ColumnSpec("fund_payable_fen", "DIP 统筹应支付", "fen"),
    ColumnSpec("ffs_fund_fen", "按项目统筹支付", "fen"),
    ColumnSpec("fund_balance_fen", "基金差额", "fen"),
    ColumnSpec("cmi", "CMI", "coefficient"),
    ColumnSpec("high_cases", "高倍率病例", "count"),
    ColumnSpec("low_cases", "低倍率病例", "count"),
]


def _rows(expr: ir.Table, keys: list[str], base_score: Decimal) -> list[dict[str, Any]]:
    rows = [_derive(r, base_score) for r in _totals(expr, keys).to_pyarrow().to_pylist()]
    # Biggest losses first; ties by key (deterministic).
    return sorted(rows, key=lambda r: (r["balance_fen"], *[str(r[k]) for k in keys]))


def _pick(rows: list[dict[str, Any]], columns: list[ColumnSpec]) -> list[dict[str, Any]]:
    names = [c.name for c in columns]
    return [{k: r.get(k) for k in names} for r in rows]


def _yuan(fen: int) -> Decimal:
    return Decimal(int(fen)) / 100


def _scope_label(
    department: str | None, group_code: str | None, doctor_id: str | None = None
) -> str:
    parts = []
    if department:
        parts.append(f"科室：{department}")
    if doctor_id:
        parts.append(f"主诊医师：{doctor_id}")
    if group_code:
        parts.append(f"病种：{group_code}")
    return "；".join(parts)


DEFINITIONS = [
    "结余 = DIP 支付金额 − 医疗总费用（按项目计费的全部费用）；正数为结余，负数为亏损。"
    "结余率 = 结余 ÷ 医疗总费用。",
    "基金差额 = DIP 统筹基金应支付 − 按项目付费时统筹基金支付；反映医保基金视角的差额。",
    "CMI = 病例分值合计 ÷ 病例数 ÷ 基准分值（政策规定的基准分值）。",
]


def parse_near_band(value: Decimal | str | int) -> Decimal:
    """The near-threshold band width: a number in (0, 1] with at most 4 decimals."""
    text = str(value).strip()[:32]
    try:
        band = Decimal(text)
    except ArithmeticError as exc:
        raise HospitalAnalysisError(f"临界区间宽度不是数字：{text}") from exc
    if not band.is_finite() or band <= 0 or band > 1:
        raise HospitalAnalysisError(f"临界区间宽度须大于 0 且不超过 1（当前 {text}）")
    exponent = band.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -RATIO_DECIMALS:
        raise HospitalAnalysisError(f"临界区间宽度最多 {RATIO_DECIMALS} 位小数（当前 {text}）")
    return band


def build_hospital_report(
    run_dir: Path,
    hospital_id: str,
    *,
    near_band: Decimal = DEFAULT_NEAR_BAND,
    department: str | None = None,
    group_code: str | None = None,
    doctor_id: str | None = None,
    top_n: int = DEFAULT_TOP_N,
    near_limit: int = DEFAULT_NEAR_LIMIT,
    inputs: dict[str, Path] | None = None,
    search_dirs: tuple[Path, ...] = (),
) -> Report:
    """院端分析 of `hospital_id` from the settlement run in `run_dir` (kind "hospital").

    `department` / `group_code` / `doctor_id` (attending doctor code) narrow every section
    to those cases. `inputs` gives the
    paths of the run's inputs (cases, grouped, directory, hospitals, policy) when they are
    not next to the run; `search_dirs` are further places to look for them by name (hash
    checked). Raises HospitalAnalysisError (Chinese) for bad input; a hospital
    without DIP cases in the run gets an explicit empty report (figures None, no rows).
    """
    hospital_id = (hospital_id or "").strip()
    if not hospital_id:
        raise HospitalAnalysisError("未指定医疗机构代码")
    near_band = parse_near_band(near_band)
    if top_n < 1 or near_limit < 1:
        raise HospitalAnalysisError("列示条数须为正整数")
    src = resolve_run(Path(run_dir), inputs, search_dirs)
    policy_file = src.policy
    final = policy_file.periods()[-1][2]
    base_score = Decimal(final.directory.base_score)
    con = connect()
    hosp = hospital_row(con, src, hospital_id)
    facts = case_facts(con, src, hospital_id, str(hosp.get("level")))
    if department:
        facts = facts.filter(facts.department == department)
    if group_code:
        facts = facts.filter(facts.group_code == group_code)
    if doctor_id:
        facts = facts.filter(facts.doctor_id == doctor_id)
    params = table_from_arrow(con, threshold_table(policy_file), "hospital_thresholds")
    t = with_ratio(facts, params, near_band).cache()

    n = int(t.count().to_pyarrow().as_py())
    n_scored = _scored_count(con, src, hospital_id, department or doctor_id, group_code, t)
    if n != n_scored:
        raise HospitalAnalysisError(
            f"结算结果中 {hospital_id} 有 {n_scored} 例，但病例文件只找到 {n} 例：输入与结算结果不符"
        )
    missing_money = int(t.filter(t.dip_amount_fen.isnull()).count().to_pyarrow().as_py())
    if missing_money:
        raise HospitalAnalysisError(
            f"本次结算有 {missing_money} 例没有 DIP 金额（运行未给出点值），无法计算盈亏"
        )
    name = str(hosp.get("name") or hospital_id)
    scope = _scope_label(department, group_code, doctor_id)
    title = f"{name}（{hospital_id}）DIP 院端盈亏分析 · {src.period}"
    provenance = {
        "run_dir": str(src.run_dir),
        "run_kind": src.kind,
        "manifest_sha256": src.manifest_sha256,
        "policy_file": src.policy_path.name,
        "policy_version": str(final.version),
        "code_version": opendip.__version__,
        "hospital_id": hospital_id,
        "near_band": str(near_band),
        "scope": scope or "全院",
    }
    not_dip = _not_dip_count(con, src, hospital_id, department, doctor_id)
    if n == 0:
        provenance["empty"] = "true"
        return Report(
            "hospital", src.period, title, final.region.name, _empty(not_dip, scope), provenance
        )
    sections = [
        _summary(t, base_score, not_dip, scope),
        _departments(t, base_score),
        _doctors(t, base_score),
        _groups(t, base_score, top_n),
        _tcm_and_new_tech(con, src, t, hospital_id, department, doctor_id, group_code),
        _deviation(t, base_score),
        _near(t, near_band, near_limit),
    ]
    if not department and not group_code and not doctor_id:
        sections.append(_assessment(src, hospital_id))
        sections.append(_credit_and_prepayment(src, hospital_id))
    sections = [s for s in sections if s is not None]
    return Report("hospital", src.period, title, final.region.name, sections, provenance)


def _scored_count(
    con: Any,
    src: RunSources,
    hospital_id: str,
    narrowed: str | None,
    group_code: str | None,
    t: ir.Table,
) -> int:
    if narrowed:  # department / doctor come from the cases file: nothing to compare against
        return int(t.count().to_pyarrow().as_py())
    s = con.read_parquet(str(src.run_dir / "cases.parquet"))
    s = s.filter(s.hospital_id == hospital_id)
    if group_code:
        s = s.filter(s.group_code == group_code)
    return int(s.count().to_pyarrow().as_py())


def _not_dip_count(
    con: Any,
    src: RunSources,
    hospital_id: str,
    department: str | None,
    doctor_id: str | None = None,
) -> int:
    path = src.run_dir / "not_dip.parquet"
    if not path.is_file():
        return 0
    nd = con.read_parquet(str(path))
    nd = nd.filter(nd.hospital_id == hospital_id)
    if department:
        nd = nd.filter(nd.department == department)
    if doctor_id:
        if "doctor_id" not in nd.columns:
            return 0  # cannot tell whose they are: none counted (never the whole hospital's)
        nd = nd.filter(nd.doctor_id == doctor_id)
    return int(nd.count().to_pyarrow().as_py())


SUMMARY_FIGURES = [
    ("hospital.cases", "DIP 结算病例数", "count", "cases"),
    ("hospital.total_cost_fen", "医疗总费用", "fen", "total_cost_fen"),
    ("hospital.dip_amount_fen", "DIP 支付金额", "fen", "dip_amount_fen"),
    ("hospital.balance_fen", "结余(+)/亏损(−)", "fen", "balance_fen"),
    ("hospital.balance_rate", "结余率", "ratio", "balance_rate"),
    ("hospital.fund_payable_fen", "DIP 统筹基金应支付", "fen", "fund_payable_fen"),
    ("hospital.ffs_fund_fen", "按项目统筹基金支付", "fen", "ffs_fund_fen"),
    ("hospital.fund_balance_fen", "基金差额（DIP − 按项目）", "fen", "fund_balance_fen"),
    ("hospital.personal_share_fen", "个人负担", "fen", "personal_share_fen"),
    ("hospital.settled_score", "结算分值合计", "score", "settled_score_sum"),
    ("hospital.cmi", "CMI", "coefficient", "cmi"),
    ("hospital.cost_per_case_fen", "次均费用", "fen", "cost_per_case_fen"),
    ("hospital.dip_per_case_fen", "次均 DIP 支付", "fen", "dip_per_case_fen"),
]


def _summary(t: ir.Table, base_score: Decimal, not_dip: int, scope: str) -> Section:
    row = _derive(_totals(t, []).to_pyarrow().to_pylist()[0], base_score)
    figures = [Figure(k, label, row[col], unit) for k, label, unit, col in SUMMARY_FIGURES]
    figures.append(
        Figure("hospital.not_dip_cases", "未按 DIP 结算的病例（按项目付费或退回）", not_dip)
    )
    verdict = "结余" if row["balance_fen"] > 0 else "亏损" if row["balance_fen"] < 0 else "持平"
    text = (
        f"{scope + '，' if scope else ''}共 {row['cases']:,} 例 DIP 结算病例，医疗总费用 "
        f"{_yuan(row['total_cost_fen']):,.2f} 元，DIP 支付 {_yuan(row['dip_amount_fen']):,.2f} 元，"
        f"{verdict} {abs(_yuan(row['balance_fen'])):,.2f} 元。"
    )
    return Section("summary", "盈亏概况", [text, *DEFINITIONS], figures)


def _departments(t: ir.Table, base_score: Decimal) -> Section:
    rows = _rows(t, ["department"], base_score)
    cols = [ColumnSpec("department", "科室"), *MONEY_COLUMNS]
    chart = Chart(
        "hospital.balance_by_department",
        "各科室结余（元）",
        "bar",
        [Series("结余", [(r["department"], _yuan(r["balance_fen"])) for r in rows])],
        x_label="科室",
        y_label="结余（元）",
    )
    table = Table("hospital.departments", "科室盈亏（亏损最多者在前）", cols, _pick(rows, cols))
    return Section("departments", "科室盈亏", [], [], [table], [chart])


def _doctors(t: ir.Table, base_score: Decimal) -> Section:
    rows = _rows(t, ["doctor_id", "department"], base_score)
    cols = [ColumnSpec("doctor_id", "主诊医师"), ColumnSpec("department", "科室"), *MONEY_COLUMNS]
    note = "医师在不同科室的病例分行列示。"
    table = Table("hospital.doctors", "医师盈亏（亏损最多者在前）", cols, _pick(rows, cols), note)
    return Section("doctors", "医师盈亏", [], [], [table])


GROUP_COLUMNS = [
    ColumnSpec("group_code", "病种编码"),
    ColumnSpec("group_name", "病种名称"),
    ColumnSpec("base_score", "病种分值", "score"),
    *MONEY_COLUMNS,
    ColumnSpec("cost_per_case_fen", "次均费用", "fen"),
    ColumnSpec("dip_per_case_fen", "次均 DIP 支付", "fen"),
]


def _groups(t: ir.Table, base_score: Decimal, top_n: int) -> Section:
    g = t.mutate(group_name=t.group_name.fill_null(""))
    rows = _rows(g, ["group_code", "group_name", "base_score"], base_score)
    losers = [r for r in rows if r["balance_fen"] < 0][:top_n]
    gainers = sorted(
        (r for r in rows if r["balance_fen"] > 0),
        key=lambda r: (-r["balance_fen"], r["group_code"]),
    )[:top_n]
    tables = [
        Table(
            "hospital.groups_losers",
            f"亏损最多的病种（前 {top_n} 个）",
            GROUP_COLUMNS,
            _pick(losers, GROUP_COLUMNS),
        ),
        Table(
            "hospital.groups_gainers",
            f"结余最多的病种（前 {top_n} 个）",
            GROUP_COLUMNS,
            _pick(gainers, GROUP_COLUMNS),
        ),
        Table("hospital.groups", "全部病种盈亏", GROUP_COLUMNS, _pick(rows, GROUP_COLUMNS)),
    ]
    figures = [
        Figure("hospital.groups", "病种数", len(rows)),
        Figure("hospital.groups_in_loss", "亏损病种数", sum(r["balance_fen"] < 0 for r in rows)),
        Figure("hospital.groups_in_surplus", "结余病种数", sum(r["balance_fen"] > 0 for r in rows)),
    ]
    return Section("groups", "病种盈亏", [], figures, tables)


#: 中医药费用 columns of the settlement list (as the regional report's fee structure).
TCM_FEES = ("fee_herbal_pieces", "fee_chinese_patent_medicine")


def _fee_share(raw: ir.Table) -> tuple[int, int]:
    """(中药饮片 + 中成药, 医疗总费用) of `raw` settlement lists (a missing column counts 0)."""
    tcm = ibis.literal(0, "int64")
    for c in TCM_FEES:
        if c in raw.columns:
            tcm = tcm + raw[c].cast("int64").fill_null(0)
    r = raw.aggregate(tcm=tcm.sum(), cost=raw.total_cost.cast("int64").fill_null(0).sum())
    row = r.to_pyarrow().to_pylist()[0]
    return int(row["tcm"] or 0), int(row["cost"] or 0)


def _tcm_and_new_tech(
    con: Any,
    src: RunSources,
    t: ir.Table,
    hospital_id: str,
    department: str | None,
    doctor_id: str | None,
    group_code: str | None,
) -> Section:
    """中医/民族医优势病种 and 新技术新项目 of the hospital's cases in scope, and its 中医药费用占比
    against the region's (both over every settlement list of the period, DIP or not; with a
    group chosen, over that group's cases)."""
    from opendip.reports.region.facts import in_period

    amount = t.dip_amount_fen.cast("int64")
    r = (
        t.aggregate(
            tcm=t.tcm_group.notnull().cast("int64").sum(),
            tcm_cost=ibis.ifelse(t.tcm_group.notnull(), t.total_cost_fen, 0).sum(),
            tcm_fen=ibis.ifelse(t.tcm_group.notnull(), amount, 0).sum(),
            nt=t.new_tech.notnull().cast("int64").sum(),
            nt_fen=ibis.ifelse(t.new_tech.notnull(), amount, 0).sum(),
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    v = {k: int(r[k] or 0) for k in r}
    by_item = {"n": 0, "fen": 0}
    path = src.run_dir / "not_dip.parquet"
    if path.is_file() and not group_code:
        nd = con.read_parquet(str(path))
        if "exemption" in nd.columns and (not doctor_id or "doctor_id" in nd.columns):
            nd = nd.filter((nd.hospital_id == hospital_id) & nd.exemption.notnull())
            if department:
                nd = nd.filter(nd.department == department)
            if doctor_id:
                nd = nd.filter(nd.doctor_id == doctor_id)
            row = nd.aggregate(n=nd.count(), fen=nd.ffs_fund_fen.sum()).to_pyarrow().to_pylist()
            by_item = {k: int(row[0][k] or 0) for k in by_item}
    raw = con.read_parquet(str(src.paths["cases"]))
    raw = raw.mutate(settle_month=raw.settle_month.cast("string"))
    raw = raw.filter(in_period(raw, src.period))
    region_tcm, region_cost = _fee_share(raw)
    own = raw.filter(raw.hospital_id == hospital_id)
    if department:
        own = own.filter(own.department == department)
    if doctor_id:
        own = own.filter(own.doctor_id == doctor_id) if "doctor_id" in own.columns else own.limit(0)
    if group_code:
        ids = t.select(g_case_id=t.case_id.cast("string"))
        own = own.semi_join(ids, own.case_id.cast("string") == ids.g_case_id)
    own_tcm, own_cost = _fee_share(own)
    figures = [
        Figure("hospital.tcm_cases", "中医/民族医优势病种病例数", v["tcm"], "count"),
        Figure("hospital.tcm_dip_fen", "中医/民族医优势病种 DIP 支付", v["tcm_fen"], "fen"),
        Figure(
            "hospital.tcm_balance_fen",
            "中医/民族医优势病种结余(+)/亏损(−)",
            v["tcm_fen"] - v["tcm_cost"],
            "fen",
        ),
        Figure("hospital.new_tech_cases", "新技术新项目加分病例数", v["nt"], "count"),
        Figure("hospital.new_tech_dip_fen", "新技术新项目加分病例 DIP 支付", v["nt_fen"], "fen"),
        Figure("hospital.new_tech_by_item_cases", "新技术新项目按项目付费病例数", by_item["n"]),
        Figure(
            "hospital.new_tech_by_item_fen", "新技术新项目按项目统筹支付", by_item["fen"], "fen"
        ),
        Figure("hospital.tcm_fee_fen", "中医药费用（中药饮片 + 中成药）", own_tcm, "fen"),
        Figure("hospital.tcm_fee_share", "中医药费用占比", rate(own_tcm, own_cost), "ratio"),
        Figure(
            "hospital.region_tcm_fee_share",
            "全区中医药费用占比",
            rate(region_tcm, region_cost),
            "ratio",
        ),
    ]
    tables = []
    if v["tcm"]:
        names = {
            g.code: g.name
            for _, _, pol in src.policy.periods()
            for g in pol.scoring.tcm_advantage.groups
        }
        rows = _rows(t.filter(t.tcm_group.notnull()), ["tcm_group"], Decimal(1))
        for row in rows:
            row["tcm_name"] = names.get(row["tcm_group"], "")
        cols = [
            ColumnSpec("tcm_group", "优势病种"),
            ColumnSpec("tcm_name", "名称"),
            *MONEY_COLUMNS[:5],
        ]
        tables.append(
            Table(
                "hospital.tcm_groups", "中医/民族医优势病种（按目录条目）", cols, _pick(rows, cols)
            )
        )
    if v["nt"]:
        tech = {
            n.code: n.name
            for _, _, pol in src.policy.periods()
            for n in pol.scoring.new_technologies
        }
        rows = _rows(t.filter(t.new_tech.notnull()), ["new_tech"], Decimal(1))
        for row in rows:
            row["new_tech_name"] = tech.get(row["new_tech"], "")
        cols = [
            ColumnSpec("new_tech", "新技术新项目"),
            ColumnSpec("new_tech_name", "名称"),
            *MONEY_COLUMNS[:5],
        ]
        tables.append(Table("hospital.new_tech", "新技术新项目加分病例", cols, _pick(rows, cols)))
    paragraphs = [
        "优势病种病例按政策（中西医同病同价、加分或系数）调整基准分值后结算；新技术新项目在过渡期内"
        "按项目付费（不进 DIP）或加分结算。中医药费用占比 = （中药饮片 + 中成药）÷ 医疗总费用，"
        "按本期全部结算清单病例计算（含未按 DIP 结算的病例），与全区同口径比较。"
    ]
    if group_code:
        paragraphs.append("已选病种：按项目付费的新技术病例不属任何病种，不列示。")
    return Section("tcm", "中医优势病种与新技术", paragraphs, figures, tables)


def _deviation(t: ir.Table, base_score: Decimal) -> Section:
    rows = {r["deviation"]: r for r in _rows(t, ["deviation"], base_score)}
    figures = []
    for kind in ("high", "low", "extreme", "special_review"):
        r = rows.get(kind)
        label = DEVIATION_LABELS[kind]
        figures.append(Figure(f"hospital.{kind}_cases", f"{label}病例数", r["cases"] if r else 0))
        figures.append(
            Figure(
                f"hospital.{kind}_balance_fen",
                f"{label}病例结余",
                r["balance_fen"] if r else 0,
                "fen",
            )
        )
    cols = [ColumnSpec("deviation_label", "偏差类型"), *MONEY_COLUMNS[:8]]
    table_rows = [
        {**r, "deviation_label": DEVIATION_LABELS.get(k, k)}
        for k in DEVIATION_LABELS
        if (r := rows.get(k)) is not None
    ]
    table = Table("hospital.deviation", "按费用偏差类型", cols, _pick(table_rows, cols))
    return Section("deviation", "高低倍率病例", [], figures, [table])


NEAR_COLUMNS = [
    ColumnSpec("case_id", "结算清单号"),
    ColumnSpec("department", "科室"),
    ColumnSpec("doctor_id", "主诊医师"),
    ColumnSpec("group_code", "病种编码"),
    ColumnSpec("group_name", "病种名称"),
    ColumnSpec("total_cost_fen", "医疗总费用", "fen"),
    ColumnSpec("mean_fen", "参照均值", "fen"),
    ColumnSpec("ratio", "费用比", "coefficient"),
    ColumnSpec("threshold", "临界倍数", "coefficient"),
    ColumnSpec("gap", "距临界", "coefficient"),
    ColumnSpec("dip_amount_fen", "DIP 支付金额", "fen"),
    ColumnSpec("balance_fen", "结余(+)/亏损(−)", "fen"),
]


def _near_rows(t: ir.Table, flag: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
    high = flag == "near_high"
    sel = t.filter(t[flag])
    count = int(sel.count().to_pyarrow().as_py())
    threshold = sel.high_threshold if high else sel.low_threshold
    gap = (threshold - sel.ratio) if high else (sel.ratio - threshold)
    sel = sel.mutate(
        threshold=threshold,
        gap=gap.cast("decimal(18, 4)"),
        balance_fen=sel.dip_amount_fen - sel.total_cost_fen,
        group_name=sel.group_name.fill_null(""),
    )
    sel = sel.order_by([sel.gap, sel.case_id]).limit(limit)
    rows = sel.select(*[c.name for c in NEAR_COLUMNS]).to_pyarrow().to_pylist()
    return count, rows


def _histogram(t: ir.Table) -> list[tuple[str, int]]:
    r = t.filter(t.ratio.notnull())
    units = (r.ratio * 10**4).cast("int64")
    b = r.mutate(_bin=ibis.least(units // HIST_STEP_UNITS, HIST_BINS))
    counts = {
        row["_bin"]: row["n"]
        for row in b.group_by("_bin").aggregate(n=b.count()).to_pyarrow().to_pylist()
    }
    step = Decimal(HIST_STEP_UNITS) / 10**4
    out = []
    for i in range(HIST_BINS + 1):
        label = f"≥{i * step:.1f}" if i == HIST_BINS else f"{i * step:.1f}–{(i + 1) * step:.1f}"
        out.append((label, int(counts.get(i, 0))))
    return out


def _near(t: ir.Table, near_band: Decimal, limit: int) -> Section:
    n_high, high = _near_rows(t, "near_high", limit)
    n_low, low = _near_rows(t, "near_low", limit)
    no_ratio = int(t.filter(t.ratio_class.isnull()).count().to_pyarrow().as_py())
    figures = [
        Figure("hospital.near_high_cases", "接近高倍率界值的病例", n_high),
        Figure("hospital.near_low_cases", "接近低倍率界值的病例", n_low),
        Figure("hospital.near_band", "临界区间宽度（费用比）", near_band, "coefficient"),
        Figure("hospital.no_ratio_cases", "不适用费用比的病例", no_ratio),
    ]
    paragraphs = [
        f"费用比 = 医疗总费用 ÷ 参照均值（政策规定的同级或全市均值）。接近高倍率：费用比在"
        f"（高倍率界值 − {near_band}）至高倍率界值之间；接近低倍率：费用比在低倍率界值至"
        f"（低倍率界值 + {near_band}）之间。界值取自结算所用政策的分值分段。上传前请核对这些"
        "病例的编码与费用。",
        "特例单议、空白（保底）病种与床日病种的病例不按费用比判定，不列入。",
    ]
    tables = [
        Table(
            "hospital.near_high",
            "接近高倍率界值的病例（最接近者在前）",
            NEAR_COLUMNS,
            high,
            f"共 {n_high} 例，列示 {len(high)} 例" if n_high > len(high) else "",
        ),
        Table(
            "hospital.near_low",
            "接近低倍率界值的病例（最接近者在前）",
            NEAR_COLUMNS,
            low,
            f"共 {n_low} 例，列示 {len(low)} 例" if n_low > len(low) else "",
        ),
    ]
    chart = Chart(
        "hospital.ratio_histogram",
        "费用比分布（病例数）",
        "histogram",
        [Series("病例数", _histogram(t))],
        x_label="费用比（医疗总费用 ÷ 参照均值）",
        y_label="病例数",
    )
    return Section("near", "临界病例", paragraphs, figures, tables, [chart])


def _empty(not_dip: int, scope: str) -> list[Section]:
    text = (
        f"{scope + '：' if scope else ''}本期该院没有 DIP 结算病例，无盈亏可分析"
        f"{f'（另有 {not_dip} 例未按 DIP 结算）' if not_dip else ''}。"
    )
    figures = [Figure("hospital.cases", "DIP 结算病例数", 0)]
    figures += [
        Figure(k, label, None, unit, note="无病例")
        for k, label, unit, _ in SUMMARY_FIGURES
        if k != "hospital.cases"
    ]
    figures.append(
        Figure("hospital.not_dip_cases", "未按 DIP 结算的病例（按项目付费或退回）", not_dip)
    )
    return [Section("summary", "盈亏概况", [text], figures)]


def _credit_and_prepayment(src: RunSources, hospital_id: str) -> Section | None:
    """信用等级与预付金: the hospital's credit grade in force in the run (its withholding
    share) and its prepayment (预付金): disbursed, recovered by month, recovered at the
    clearing (annual) or this month's instalment (monthly). None when the run has neither."""
    import pyarrow.parquet as pq

    path = src.run_dir / "hospitals.parquet"
    if not path.is_file():
        return None
    t = pq.read_table(path)
    if "credit_grade" not in t.column_names:
        return None
    rows = [r for r in t.to_pylist() if str(r["hospital_id"]) == hospital_id]
    grades = sorted({r["credit_grade"] for r in rows if r.get("credit_grade")})
    prepaid = sum(int(r.get("prepaid_fen") or 0) for r in rows)
    if not grades and not prepaid:
        return None

    def total(col: str) -> int:
        return sum(int(r.get(col) or 0) for r in rows)

    figures = [
        Figure("credit.withheld", "质量保证金（按信用等级比例）", total("withheld_fen"), "fen")
    ]
    paragraphs = [
        f"上年度信用等级：{'、'.join(grades) or '无'}；质量保证金按该等级的比例预留，"
        "信用评价页可查看等级依据。"
    ]
    if src.kind == "annual" and "prepaid_fen" in t.column_names:
        figures += [
            Figure("prepayment.prepaid", "年初预付金", prepaid, "fen"),
            Figure(
                "prepayment.recovered", "月度预付中扣回", total("prepayment_recovered_fen"), "fen"
            ),
            Figure(
                "prepayment.outstanding", "清算时扣回", total("prepayment_outstanding_fen"), "fen"
            ),
        ]
        reasons = sorted({str(r.get("prepayment_reason") or "") for r in rows} - {""})
        paragraphs.append(f"预付金资格：{'、'.join(reasons) or '—'}。")
    elif "prepayment_recovery_fen" in t.column_names:
        figures += [
            Figure("prepayment.prepaid", "年初预付金", prepaid, "fen"),
            Figure(
                "prepayment.instalment", "本月扣回预付金", total("prepayment_recovery_fen"), "fen"
            ),
            Figure("prepayment.paid", "本月实际拨付", total("advance_paid_fen"), "fen"),
        ]
    return Section("credit", "信用等级与预付金", paragraphs, figures)


def _assessment(src: RunSources, hospital_id: str) -> Section | None:
    """年度考核: the hospital's scorecard lines (annual run cleared with an assessment whose
    breakdown lies beside its scores)."""
    from opendip.assessment import assessment_dirs
    from opendip.reports.source import ReportInputError, find_optional_input

    if src.kind != "annual":
        return None
    try:
        scores = find_optional_input(src, "assessment", assessment_dirs(src.run_dir))
    except ReportInputError:
        return None
    if scores is None or not (scores.parent / "breakdown.parquet").is_file():
        return None
    import duckdb

    cur = duckdb.connect().execute(
        """SELECT indicator_name, value, target, zero_at, weight, points
           FROM read_parquet(?) WHERE hospital_id = ?""",
        [str(scores.parent / "breakdown.parquet"), hospital_id],
    )
    names = [d[0] for d in cur.description]
    lines = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    total = (
        duckdb.connect()
        .execute(
            "SELECT any_value(assessment_score) FROM read_parquet(?) WHERE hospital_id = ?",
            [str(scores), hospital_id],
        )
        .fetchone()[0]
    )
    if not lines:
        return None
    table = Table(
        "assessment.lines",
        "考核指标得分",
        [
            ColumnSpec("indicator_name", "考核指标"),
            ColumnSpec("value", "本院指标值", "score"),
            ColumnSpec("target", "满分线", "score"),
            ColumnSpec("zero_at", "零分线", "score"),
            ColumnSpec("weight", "权重（分）", "score"),
            ColumnSpec("points", "得分", "score"),
        ],
        lines,
    )
    return Section(
        "assessment",
        "年度考核",
        ["达到满分线得满分，达到零分线得 0 分，其间按比例计分；总分按适用指标权重折算到满分。"],
        [Figure("assessment.score", "考核总分", total, "score")],
        [table],
    )
