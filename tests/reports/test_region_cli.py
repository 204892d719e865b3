"""`opendip report annual|monthly|publication` on the generated region's runs."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from opendip.cli.main import app
from tests.reports.region import MONTH

runner = CliRunner()


def test_annual_writes_every_format(region: Path, tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["report", "annual", "--run", str(region / "settlement"), "--out", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    stem = tmp_path / "年度运行分析报告_2026"
    for fmt in ("json", "xlsx", "html", "pdf"):
        assert stem.with_suffix(f".{fmt}").stat().st_size > 1000, fmt
    data = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    assert data["kind"] == "annual" and data["period"] == "2026"


def test_monthly_with_applications(region: Path, tmp_path: Path) -> None:
    apps = tmp_path / "apps.csv"
    apps.write_text("kind,state\ndispute,受理申诉\nspecial_review,专家评审中\n", encoding="utf-8")
    run = region / f"settlement-{MONTH}"
    r = runner.invoke(
        app,
        [
            "report",
            "monthly",
            "--run",
            str(run),
            "--out",
            str(tmp_path),
            "--applications",
            str(apps),
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / f"月度运行分析报告_{MONTH}.json").read_text(encoding="utf-8"))
    figures = {f["key"]: f["value"] for s in data["sections"] for f in s["figures"]}
    assert figures["applications.dispute"] == 1 and figures["applications.special_review"] == 1


def test_wrong_kind_and_bad_inputs(region: Path, tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["report", "monthly", "--run", str(region / "settlement"), "--out", str(tmp_path)]
    )
    assert r.exit_code == 1 and "年终清算运行" in r.output and "report annual" in r.output
    r = runner.invoke(app, ["report", "annual", "--run", str(tmp_path), "--out", str(tmp_path)])
    assert r.exit_code == 1 and "缺少 manifest.json" in r.output
    bad = tmp_path / "apps.json"
    bad.write_text('[{"kind": "dispute"}]', encoding="utf-8")
    r = runner.invoke(
        app,
        [
            "report",
            "annual",
            "--run",
            str(region / "settlement"),
            "--out",
            str(tmp_path),
            "--applications",
            str(bad),
        ],
    )
    assert r.exit_code == 1 and "每条含 kind 与 state" in r.output
    r = runner.invoke(
        app,
        [
            "report",
            "annual",
            "--run",
            str(region / "settlement"),
            "--out",
            str(tmp_path),
            "--previous",
            str(tmp_path / "none.parquet"),
        ],
    )
    assert r.exit_code == 1 and "上年结算清单文件不存在" in r.output


def test_publication(region: Path, tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["report", "publication", "--run", str(region / "settlement"), "--out", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "结算公示_2026.xlsx").is_file() and (
        tmp_path / "结算公示_2026.pdf"
    ).is_file()
