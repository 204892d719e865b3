"""Entry point: `opendip --help` lists every command, in Chinese and English."""

from __future__ import annotations

import typer

from opendip import __version__
from opendip.cli import (
    assess_cmd,
    bench_cmd,
    codes_cmd,
    demo_cmd,
    directory_cmd,
    forecast_cmd,
    group_cmd,
    import_cmd,
    policy_cmd,
    qc_cmd,
    report_cmd,
    scenario_cmd,
    score_cmd,
    serve_cmd,
    settle_cmd,
    supervise_cmd,
    synth_cmd,
    users_cmd,
)

app = typer.Typer(
    name="opendip",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    help="OpenDIP：区域点数法总额预算和按病种分值付费平台 / open platform for DIP payment",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"opendip {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="显示版本 / show version"
    ),
) -> None:
    """OpenDIP command line."""


# Command registration: one line per domain module (keep this block sorted by pipeline order).
app.command("demo", help="示范区域端到端运行 / run the demo region end to end")(demo_cmd.demo)
app.add_typer(policy_cmd.app, name="policy")
app.add_typer(codes_cmd.app, name="codes", help="医保版代码表：导入、查看、映射 / code tables")
app.command("synth", help="生成合成示范区域 / generate a synthetic region")(synth_cmd.synth)
app.add_typer(import_cmd.app, name="import")
app.command("qc", help="结算清单质控 / settlement-list quality control")(qc_cmd.qc)
app.add_typer(directory_cmd.app, name="directory")
app.command("group", help="病例入组 / group cases into the directory")(group_cmd.group)
app.command("score", help="病例分值计算 / score grouped cases")(score_cmd.score)
app.command("assess", help="年度考核：按政策评分表计算 / annual assessment from the scorecard")(
    assess_cmd.assess
)
app.add_typer(settle_cmd.app, name="settle")
app.command("supervise", help="智能监管：线索与月度指标 / supervision leads and indicators")(
    supervise_cmd.supervise_command
)
app.add_typer(forecast_cmd.app, name="forecast")
app.add_typer(report_cmd.app, name="report")
app.add_typer(scenario_cmd.app, name="scenario")
app.command("bench", help="性能基准：逐阶段计时 / benchmark each pipeline stage")(bench_cmd.bench)
app.command("serve", help="启动网页平台 / start the web platform")(serve_cmd.serve)
app.add_typer(users_cmd.app, name="users")
