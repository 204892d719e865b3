"""`opendip settle month|year`: monthly pre-settlement and annual clearing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opendip.cli.common import console, fail
from opendip.cli.inputs import Engine, EngineOpt
from opendip.contract.tables import INSURANCE_TYPE_LABELS
from opendip.policy import PolicyError
from opendip.scoring import ScoringError
from opendip.settlement.output import yuan
from opendip.settlement.run import InputFiles, run_month, run_year

app = typer.Typer(
    no_args_is_help=True,
    help="结算：月度预结算与年终清算 / monthly pre-settlement and annual clearing",
)

Policy = Annotated[Path, typer.Option("--policy", help="政策文件 / policy YAML")]
Cases = Annotated[Path, typer.Option("--cases", help="病例 Parquet（结算清单）")]
Grouped = Annotated[Path, typer.Option("--grouped", help="入组结果 Parquet")]
Directory = Annotated[Path, typer.Option("--directory", help="病种目录 Parquet")]
Hospitals = Annotated[Path, typer.Option("--hospitals", help="医疗机构 Parquet")]
Out = Annotated[Path, typer.Option("--out", help="输出目录 / output directory")]
Reviews = Annotated[
    Path | None,
    typer.Option("--reviews", help="特例单议结果 CSV/Parquet（case_id, decision, reviewed_score）"),
]
History = Annotated[
    Path | None,
    typer.Option(
        "--history", help="历年数据（pool, year, total_cost_fen, total_score），用于计算预算点值"
    ),
]
Excel = Annotated[bool, typer.Option("--excel/--no-excel", help="输出 Excel")]


@app.command("month")
def month_cmd(
    policy: Policy,
    month: Annotated[str, typer.Option("--month", help="结算月份 YYYY-MM")],
    cases: Cases,
    grouped: Grouped,
    directory: Directory,
    hospitals: Hospitals,
    out: Out,
    reviews: Reviews = None,
    history: History = None,
    excel: Excel = True,
    engine: EngineOpt = Engine.duckdb,
) -> None:
    """月度预结算：按预算点值计算，并按当月比例预留质量保证金。"""
    files = InputFiles(policy, cases, grouped, directory, hospitals, reviews, history)
    try:
        s = run_month(files, month, out, excel=excel, engine=engine.value)
    except (ScoringError, PolicyError) as exc:
        fail(str(exc))
    t = s["totals"]
    console.print(
        f"{month} 月度预结算：{s['cases']:,} 例（DIP {s['dip_cases']:,}，按项目 {s['not_dip_cases']:,}）；"
        f"预算点值 {s['point_values']}；质量保证金比例 {s['withholding_share']}；"
        f"DIP 金额 {yuan(t['dip_amount_fen'])} 元，统筹应支付 {yuan(t['fund_payable_fen'])} 元，"
        f"预留 {yuan(t['withheld_fen'])} 元，预付 {yuan(t['advance_fen'])} 元；输出 {out}"
    )


def _prepayment_base(clearing: Path | None, cases: Path | None, out: Path) -> Path | None:
    """预付金 base from last year, as the platform takes it: its annual clearing if given,
    else its settlement lists (fund payment)."""
    if clearing is None and cases is None:
        return None
    from opendip.settlement.prepayment import write_base

    for given in (clearing, cases):
        if given is not None and not given.is_file():
            fail(f"文件不存在：{given}")
    # beside the output directory (which the run replaces as a whole), kept as the input
    # the manifest names
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_base(out.with_name(f"{out.name}.prepayment_base.parquet"), clearing, cases)


@app.command("year")
def year_cmd(
    policy: Policy,
    year: Annotated[int, typer.Option("--year", help="清算年度")],
    cases: Cases,
    grouped: Grouped,
    directory: Directory,
    hospitals: Hospitals,
    out: Out,
    reviews: Reviews = None,
    history: History = None,
    assessment: Annotated[
        Path | None, typer.Option("--assessment", help="考核得分（hospital_id, assessment_score）")
    ] = None,
    advances: Annotated[
        Path | None,
        typer.Option(
            "--advances",
            help="已付月度预付（hospital_id, pool, advance_fen, withheld_fen）；缺省时按各月重算",
        ),
    ] = None,
    findings: Annotated[
        Path | None,
        typer.Option(
            "--findings",
            help="已确认的监管结果（改入病种/合并分解住院/扣款；status=confirmed 才应用）",
        ),
    ] = None,
    excel: Excel = True,
    case_excel: Annotated[
        bool,
        typer.Option(
            "--case-excel/--no-case-excel",
            help="另外输出病例明细 Excel（默认不输出：病例明细在 cases.parquet；百万例时写 Excel 很慢）",
        ),
    ] = False,
    review_cap_override: Annotated[
        str | None,
        typer.Option(
            "--review-cap-override",
            help="经办机构放行超出特例单议上限的通过病例，须填写理由（记入 manifest）",
        ),
    ] = None,
    credit: Annotated[
        Path | None,
        typer.Option(
            "--credit", help="上年度信用等级（hospital_id, credit_grade），政策 credit 段"
        ),
    ] = None,
    previous_clearing: Annotated[
        Path | None,
        typer.Option(
            "--previous-clearing",
            help="上年度年终清算的 hospitals.parquet（预付金基数：上年 DIP 支付）",
        ),
    ] = None,
    previous_cases: Annotated[
        Path | None,
        typer.Option(
            "--previous-cases",
            help="上年度结算清单（无上年清算时的预付金基数：上年统筹支付）",
        ),
    ] = None,
    previous_assessment: Annotated[
        Path | None,
        typer.Option("--previous-assessment", help="上年度考核得分（预付金资格）"),
    ] = None,
    engine: EngineOpt = Engine.duckdb,
) -> None:
    """年终清算：结算点值、结余留用/超支分担、考核返还、医共体、减去预付 = 清算拨付。"""
    files = InputFiles(
        policy,
        cases,
        grouped,
        directory,
        hospitals,
        reviews,
        history,
        credit=credit,
        prepayment_base=_prepayment_base(previous_clearing, previous_cases, out),
        previous_assessment=previous_assessment,
    )
    try:
        s = run_year(
            files,
            year,
            out,
            assessment=assessment,
            advances=advances,
            excel=excel,
            case_excel=case_excel,
            findings=findings,
            review_cap_override=review_cap_override,
            engine=engine.value,
        )
    except (ScoringError, PolicyError) as exc:
        fail(str(exc))
    for p in s["pools"]:
        console.print(
            f"{INSURANCE_TYPE_LABELS.get(p['pool'], p['pool'])}：结算点值 {p['point_value']} 元/分，"
            f"{p['cases']:,} 例，"
            f"DIP 金额 {yuan(p['dip_amount_cases_fen'])} 元，按项目 {yuan(p['ffs_fund_fen'])} 元，"
            f"结余 {p['hospitals_in_surplus']} 家 / 超支 {p['hospitals_in_deficit']} 家，"
            f"清算应拨付 {yuan(p['clearing_payment_fen'])} 元，"
            f"调剂金期末 {yuan(p['reserve_closing_fen'])} 元，"
            f"对账{'一致' if p['cases_equal_hospitals'] and p['clearing_identity'] else '不一致'}"
        )
    console.print(f"输出 {out}（manifest.json、reconciliation.md、结算公示表）")
    if not case_excel:
        console.print(
            f"病例明细在 {out / 'cases.parquet'}；需要病例明细 Excel 时加 --case-excel"
            "（单表上限 1,048,575 行，百万例以上请用 Parquet）"
        )
