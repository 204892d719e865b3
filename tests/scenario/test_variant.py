"""Variant files: overlay of any policy key, validated as the policy is; bad input refused."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from opendip.policy import PolicyError, PolicyFile
from opendip.scenario import Variant, VariantError
from opendip.scenario.variant import parse_path

ROOT = Path(__file__).resolve().parents[2]
DEMO = PolicyFile.read(ROOT / "policies" / "demo-region.yaml")


def test_dotted_and_nested_overlay_change_exactly_those_keys():
    v = Variant.parse(
        "name: 测试\npolicy:\n  scoring.hospital_coefficient.levels.secondary: 0.92\n"
        "  settlement:\n    reserve_share: 0.06\n  settlement.ffs_bands[1].ratio_min: 0.9\n"
        "  settlement.ffs_bands[2].ratio_max: 0.9\n"
    )
    assert v.changed_paths() == [
        "scoring.hospital_coefficient.levels.secondary",
        "settlement.ffs_bands[1].ratio_min",
        "settlement.ffs_bands[2].ratio_max",
        "settlement.reserve_share",
    ]
    assert not v.needs_regrouping()
    pol = v.apply(DEMO).at()
    base = DEMO.at()
    assert pol.scoring.hospital_coefficient.levels["secondary"] == Decimal("0.92")
    assert pol.settlement.reserve_share == Decimal("0.06")
    assert pol.settlement.ffs_bands[1].ratio_min == Decimal("0.9")
    assert pol.scoring.hospital_coefficient.levels["tertiary"] == Decimal("1.0")
    assert pol.settlement.withholding_share == base.settlement.withholding_share
    # The dated withholding share survives the round trip through YAML.
    assert [p.settlement.withholding_share for *_, p in v.apply(DEMO).periods()] == [
        Decimal("0.05"),
        Decimal("0.08"),
    ]


def test_overlay_error_names_the_key_path():
    v = Variant.parse("name: 坏\npolicy:\n  scoring.deviation_bands[1].high_multiple: -2\n")
    with pytest.raises(PolicyError) as err:
        v.apply(DEMO)
    assert "scoring.deviation_bands[1].high_multiple" in str(err.value)
    v = Variant.parse("name: 拼错\npolicy:\n  settlement.reserve_shar: 0.1\n")
    with pytest.raises(PolicyError, match=r"settlement\.reserve_shar: 未知的键"):
        v.apply(DEMO)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("policy: {}\n", "name（方案名称）必填"),
        ("name: x\npolicy: [1]\n", "policy 必须是映射"),
        ("name: x\nbudget: 1\n", "未知的键 budget"),
        ("name: x\ndirectory: 不存在.parquet\n", "目录文件不存在"),
        ("name: x\ndirectory_scores: {G1: -3}\n", "directory_scores.G1 必须大于 0"),
        ("name: x\ndirectory_scores: {G1: abc}\n", "directory_scores.G1 必须是数字"),
        ("name: [\n", "不是有效的 YAML"),
        ("- 1\n", "顶层必须是映射"),
    ],
)
def test_bad_variant_files_are_refused_in_chinese(text: str, message: str):
    with pytest.raises(VariantError, match=message):
        Variant.parse(text, "v.yaml", base_dir=Path("/nonexistent"))


def test_bad_paths_are_refused():
    with pytest.raises(VariantError, match="超出列表长度"):
        Variant.parse("name: x\npolicy:\n  settlement.ffs_bands[7].share: 0.5\n").apply(DEMO)
    with pytest.raises(VariantError, match="不是列表"):
        Variant.parse("name: x\npolicy:\n  settlement.reserve_share[0]: 0.5\n").apply(DEMO)
    with pytest.raises(VariantError, match="带日期的值"):
        Variant.parse("name: x\npolicy:\n  settlement.withholding_share.values: 1\n").apply(DEMO)
    with pytest.raises(VariantError, match="格式不对"):
        parse_path("a..b")


def test_grouping_change_means_regrouping():
    assert Variant.parse(
        "name: x\npolicy:\n  grouping.fallback.mode: blank_group\n"
    ).needs_regrouping()
    assert Variant.parse("name: x\ndirectory_scores: {G1: 2}\n").needs_regrouping()


def test_cli_refuses_bad_variant_and_missing_base(tmp_path: Path):
    from typer.testing import CliRunner

    from opendip.cli.main import app

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: 坏\npolicy:\n  settlement.reserve_share: 2\n", encoding="utf-8")
    r = CliRunner().invoke(
        app, ["scenario", "run", "--base", str(tmp_path / "无"), "--variant", str(bad),
              "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert r.exit_code == 1
    assert "结算运行目录不存在" in r.output
    r = CliRunner().invoke(
        app, ["scenario", "run", "--base", str(tmp_path), "--variant", str(tmp_path / "x.yaml"),
              "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert r.exit_code == 1 and "无法读取方案文件" in r.output
