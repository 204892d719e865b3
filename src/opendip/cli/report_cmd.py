"""`opendip report …`: monthly and annual reports, settlement publication, hospital analysis."""

from __future__ import annotations

import typer

from opendip.cli import report_hospital_cmd

app = typer.Typer(
    no_args_is_help=True,
    help="报告：月报、年报、结算公示、院端分析 / reports",
)
app.command("hospital", help="院端分析：科室、医师、病种盈亏 / hospital analysis")(
    report_hospital_cmd.hospital
)
