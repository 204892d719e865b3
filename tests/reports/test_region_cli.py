"""`opendip report annual|monthly|publication` on the generated region's runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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


def test_publication_writes_its_own_manifest(region: Path, tmp_path: Path) -> None:
    """Issue 20 item 8: `opendip report publication` wrote no manifest, so a changed file
    (¥1,000,000 added) or a half-written rerun looked like a complete publication."""
    from opendip.reports.sealed import ReportIntegrityError, verify_sealed
    from opendip.settlement.output import sha256_file

    run = region / "settlement"
    r = runner.invoke(app, ["report", "publication", "--run", str(run), "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    manifest_file = tmp_path / "结算公示_2026.manifest.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    names = {f"结算公示_2026.{fmt}" for fmt in ("json", "xlsx", "html", "pdf")}
    assert set(manifest["outputs"]) == names
    for name in names:
        assert manifest["outputs"][name] == sha256_file(tmp_path / name)
    assert manifest["provenance"]["manifest_sha256"] == sha256_file(run / "manifest.json")
    assert (manifest["kind"], manifest["period"]) == ("publication", "2026")
    assert verify_sealed(tmp_path, "结算公示_2026") == manifest
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".staging-")]
    with (tmp_path / "结算公示_2026.xlsx").open("ab") as fh:
        fh.write(b"1000000")
    with pytest.raises(ReportIntegrityError, match=r"结算公示_2026\.xlsx（内容与清单不符）"):
        verify_sealed(tmp_path, "结算公示_2026")


def test_killed_or_failed_rerun_never_looks_complete(
    region: Path, tmp_path: Path, monkeypatch
) -> None:
    """Issue 20 item 8: a rerun into an existing directory that is killed while moving its
    files leaves no manifest (visibly incomplete), and one that fails while rendering leaves
    the previous publication untouched and still matching its manifest."""
    import os

    import opendip.settlement.output as output
    from opendip.reports.region import build_publication
    from opendip.reports.sealed import ReportIntegrityError, verify_sealed, write_sealed

    report = build_publication(region / "settlement")
    stem = "结算公示_2026"
    write_sealed(report, tmp_path, stem)
    before = verify_sealed(tmp_path, stem)

    def no_pdf(*_args, **_kwargs):
        raise RuntimeError("渲染中断")

    monkeypatch.setattr("opendip.reports.render.write_pdf", no_pdf)
    with pytest.raises(RuntimeError, match="渲染中断"):
        write_sealed(report, tmp_path, stem)
    assert verify_sealed(tmp_path, stem) == before
    monkeypatch.undo()

    moves: list[str] = []
    real_replace = os.replace

    def killed(src, dst) -> None:
        if moves:
            raise KeyboardInterrupt  # the process dies after the first file was moved
        moves.append(str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_sealed(report, tmp_path, stem)
    monkeypatch.undo()
    assert len(moves) == 1 and not (tmp_path / f"{stem}.manifest.json").exists()
    with pytest.raises(ReportIntegrityError, match=r"没有清单文件 结算公示_2026\.manifest\.json"):
        verify_sealed(tmp_path, stem)
