from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest

from opendip.policy import PolicyError, PolicyFile, load_policy
from opendip.policy.dated import change_dates, resolve

ROOT = Path(__file__).resolve().parents[2]


def test_demo_policy_is_valid_and_exact(demo_policy_path: Path) -> None:
    policy = load_policy(demo_policy_path)
    assert policy.region.code == "demo"
    assert policy.pool_ids == ["employee", "resident"]
    # floats are read as exact decimals, never binary floats
    assert policy.scoring.hospital_coefficient.levels["secondary"] == Decimal("0.88")
    assert policy.settlement.reserve_share == Decimal("0.08")


def test_dated_parameter_changes_mid_year(demo_policy_path: Path) -> None:
    pf = PolicyFile.read(demo_policy_path)
    assert pf.versions() == [dt.date(2026, 1, 1), dt.date(2026, 7, 1)]
    assert pf.at(dt.date(2026, 6, 30)).settlement.withholding_share == Decimal("0.05")
    assert pf.at(dt.date(2026, 7, 1)).settlement.withholding_share == Decimal("0.08")
    periods = pf.periods()
    assert [(s, e) for s, e, _ in periods] == [
        (dt.date(2026, 1, 1), dt.date(2026, 6, 30)),
        (dt.date(2026, 7, 1), dt.date(2026, 12, 31)),
    ]


@pytest.mark.parametrize("path", sorted((ROOT / "policies").glob("*.yaml")))
def test_every_shipped_policy_is_valid(path: Path) -> None:
    assert PolicyFile.read(path).issues() == []


def _demo_text(demo_policy_path: Path) -> str:
    return demo_policy_path.read_text(encoding="utf-8")


def test_error_names_key_path_in_both_languages(demo_policy_path: Path) -> None:
    text = _demo_text(demo_policy_path).replace(
        "{score_min: 100, high_multiple: 2,", "{score_min: 100, high_multiple: -2,"
    )
    issues = PolicyFile.parse(text).issues()
    assert len(issues) == 1
    assert issues[0].path == "scoring.deviation_bands[1].high_multiple"
    assert "必须大于 0" in issues[0].message_zh
    assert "greater than 0" in issues[0].message_en


def test_misspelt_key_is_an_error(demo_policy_path: Path) -> None:
    text = _demo_text(demo_policy_path).replace("base_score: 100", "base_scor: 100")
    paths = {i.path for i in PolicyFile.parse(text).issues()}
    assert paths == {"directory.base_scor"}


def test_missing_budget_for_a_pool(demo_policy_path: Path) -> None:
    text = re.sub(r"\n    employee: [^\n]*", "", _demo_text(demo_policy_path), count=1)
    assert "employee: {fund" not in text
    issues = PolicyFile.parse(text).issues()
    assert any("employee" in i.message_en and "budget" in i.message_en for i in issues)
    with pytest.raises(PolicyError):
        PolicyFile.parse(text).at()


def test_negative_budget_refused(demo_policy_path: Path) -> None:
    text = _demo_text(demo_policy_path).replace("420000000", "-5")
    issues = PolicyFile.parse(text).issues()
    assert [i.path for i in issues] == ["settlement.budget.employee.fund_budget_yuan"]


def test_change_date_outside_effective_period(demo_policy_path: Path) -> None:
    text = _demo_text(demo_policy_path).replace("2026-07-01: 0.08", "2027-07-01: 0.08")
    issues = PolicyFile.parse(text).issues()
    assert any("2027-07-01" in i.message_zh for i in issues)


def test_yaml_syntax_error_reports_line() -> None:
    with pytest.raises(PolicyError) as exc:
        PolicyFile.parse("region: [unclosed\nyear: 2026\n")
    assert "YAML" in str(exc.value)


def test_resolve_picks_latest_value_in_force() -> None:
    tree = {
        "a": {"values": {"2026-01-01": 1, "2026-03-01": 2}},
        "b": [{"values": {"2026-02-01": 5}}],
    }
    assert resolve(tree, dt.date(2026, 2, 15)) == {"a": 1, "b": [5]}
    assert resolve(tree, dt.date(2026, 3, 1)) == {"a": 2, "b": [5]}
    assert change_dates(tree) == [dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 3, 1)]


def test_blank_group_fraction_has_one_key(demo_policy_path: Path) -> None:
    """The blank-group payment share is scoring.fallback_fraction only; the old duplicate
    grouping.fallback.fraction is refused with a message saying where it moved."""
    text = _demo_text(demo_policy_path).replace(
        "    name: 空白病组\n", "    name: 空白病组\n    fraction: 0.7\n"
    )
    assert "    fraction: 0.7" in text
    issues = PolicyFile.parse(text).issues()
    assert [i.path for i in issues] == ["grouping.fallback"]
    assert "scoring.fallback_fraction" in issues[0].message_zh
