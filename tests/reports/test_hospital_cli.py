"""`opendip report hospital` (the command function, on a Typer app of its own here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from opendip.cli.report_hospital_cmd import hospital
from tests.reports.test_hospital_handmade import make_run

app = typer.Typer()
app.command("hospital")(hospital)
app.command("other")(lambda: None)  # two commands: the sub-command name is required


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("cli"))


def test_writes_the_report(run: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app, ["hospital", "--run", str(run), "--hospital", "HA", "--out", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    assert "7 例，亏损 84,000.00 元" in r.output
    data = json.loads((tmp_path / "院端分析_HA_2026.json").read_text(encoding="utf-8"))
    assert data["kind"] == "hospital"
    figures = {f["key"]: f["value"] for s in data["sections"] for f in s["figures"]}
    assert figures["hospital.balance_fen"] == -8_400_000


def test_inputs_elsewhere(run: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    (moved / "settlement").mkdir(parents=True)
    for name in ("manifest.json", "cases.parquet"):
        (moved / "settlement" / name).write_bytes((run / name).read_bytes())
    args = ["hospital", "--run", str(moved / "settlement"), "--hospital", "HA"]
    args += ["--out", str(tmp_path / "out")]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1 and "找不到结算运行的输入文件" in r.output
    for key in ("cases", "grouped", "directory", "hospitals"):
        args += [f"--{key}", str(run.parent / f"{key}.parquet")]
    args += ["--policy", str(run.parent / "policy.yaml")]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output


def test_empty_hospital(run: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app, ["hospital", "--run", str(run), "--hospital", "HC", "--out", str(tmp_path)]
    )
    assert r.exit_code == 0 and "本期没有 DIP 结算病例" in r.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--hospital", "HX"], "医疗机构 HX 不在本次结算的医疗机构表中"),
        (["--hospital", "HA", "--near-band", "x"], "临界区间宽度不是数字"),
        (["--hospital", "HA", "--near-band", "3"], "临界区间宽度须大于 0 且不超过 1"),
    ],
)
def test_bad_input(run: Path, tmp_path: Path, extra: list[str], message: str) -> None:
    r = CliRunner().invoke(app, ["hospital", "--run", str(run), "--out", str(tmp_path), *extra])
    assert r.exit_code == 1
    assert message in r.output
