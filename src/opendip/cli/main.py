"""Entry point: `opendip --help` lists every command, in Chinese and English."""

from __future__ import annotations

import importlib

import click
import typer
from typer.core import TyperGroup

from opendip import __version__

#: The subcommands in pipeline order: name → (module, attribute, help). The attribute is a
#: sub-Typer (`app`) or a command function. Modules are imported only when their command
#: runs (or `--help` lists them): `opendip group` does not import the web platform or the
#: report renderer.
COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "demo": ("opendip.cli.demo_cmd", "demo", "示范区域端到端运行 / run the demo region end to end"),
    "policy": ("opendip.cli.policy_cmd", "app", None),
    "codes": ("opendip.cli.codes_cmd", "app", "医保版代码表：导入、查看、映射 / code tables"),
    "synth": ("opendip.cli.synth_cmd", "synth", "生成合成示范区域 / generate a synthetic region"),
    "import": ("opendip.cli.import_cmd", "app", None),
    "qc": ("opendip.cli.qc_cmd", "qc", "结算清单质控 / settlement-list quality control"),
    "directory": ("opendip.cli.directory_cmd", "app", None),
    "group": ("opendip.cli.group_cmd", "group", "病例入组 / group cases into the directory"),
    "score": ("opendip.cli.score_cmd", "score", "病例分值计算 / score grouped cases"),
    "assess": (
        "opendip.cli.assess_cmd",
        "assess",
        "年度考核：按政策评分表计算 / annual assessment from the scorecard",
    ),
    "settle": ("opendip.cli.settle_cmd", "app", None),
    "supervise": (
        "opendip.cli.supervise_cmd",
        "supervise_command",
        "智能监管：线索与月度指标 / supervision leads and indicators",
    ),
    "forecast": ("opendip.cli.forecast_cmd", "app", None),
    "report": ("opendip.cli.report_cmd", "app", None),
    "scenario": ("opendip.cli.scenario_cmd", "app", None),
    "bench": (
        "opendip.cli.bench_cmd",
        "bench",
        "性能基准：逐阶段计时 / benchmark each pipeline stage",
    ),
    "serve": ("opendip.cli.serve_cmd", "serve", "启动网页平台 / start the web platform"),
    "users": ("opendip.cli.users_cmd", "app", "平台账户：创建管理员 / platform accounts"),
}


class LazyGroup(TyperGroup):
    """The root command: subcommands from `COMMANDS`, each module imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module, attribute, help_text = spec
        target = getattr(importlib.import_module(module), attribute)
        if isinstance(target, typer.Typer):
            command = typer.main.get_group(target)
            if help_text:
                command.help = help_text
        else:
            single = typer.Typer(add_completion=False, rich_markup_mode="rich")
            single.command(cmd_name, help=help_text)(target)
            command = typer.main.get_command(single)
        command.name = cmd_name
        return command


app = typer.Typer(
    name="opendip",
    cls=LazyGroup,
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
