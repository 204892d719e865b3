"""Issue 20 item 13: `opendip policy check` on files that crashed it or were wrongly
accepted: every one exits 1 with a Chinese message naming the key path (or line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from opendip.cli.main import app
from opendip.policy import demo_policy_path

BASE = demo_policy_path().read_text(encoding="utf-8")


def _bomb() -> str:
    text = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    prev = "a"
    for i in range(1, 9):
        name = chr(ord("a") + i)
        text += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    return text


def _sub(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


CASES = [
    ("gbk", BASE.encode("gbk"), "(根)", "不是 UTF-8 编码"),
    ("nan", _sub("reserve_share: 0.08", "reserve_share: .nan"), "settlement.reserve_share", "有限的数字"),
    ("inf", _sub("reserve_share: 0.08", "reserve_share: .inf"), "settlement.reserve_share", "有限的数字"),
    ("feb30", _sub("run_date: 2027-01-15", "run_date: 2026-02-30"), "qc.run_date", "必须是日期"),
    ("july", _sub("effective_from: 2026-01-01", 'effective_from: "July 2026"'), "effective_from", "必须是日期"),
    ("july-dated", _sub("      2026-07-01: 0.08", '      "July 2026": 0.08'), "settlement.withholding_share.values", "不是 YYYY-MM-DD"),
    ("duplicate-date", _sub("      2026-07-01: 0.08", "      2026-07-01: 0.08\n      2026-07-01: 0.09"), "settlement.withholding_share.values.2026-07-01", "重复"),
    ("same-day-twice", _sub("      2026-07-01: 0.08", "      2026-07-01: 0.08\n      2026-07-01 00:00:00: 0.09"), "settlement.withholding_share.values", "出现多次"),
    ("overlap", _sub("{score_min: 100, high_multiple: 2", "{score_min: 90, high_multiple: 2"), "scoring.deviation_bands[1]", "重叠"),
    ("gap", _sub("{score_min: 100, high_multiple: 2", "{score_min: 120, high_multiple: 2"), "scoring.deviation_bands[1]", "空缺"),
    ("year", _sub("year: 2026", "year: 2025"), "year", "年度 2025 与 effective_from 2026-01-01 不符"),
    ("huge", _sub("fund_budget_yuan: 420000000", "fund_budget_yuan: 1.0e+400"), "settlement.budget.employee.fund_budget_yuan", "数值过大"),
    ("alias-bomb", _bomb(), "(根)", "别名炸弹"),
    ("score-bands", _sub("score_bands: [0, 100, 500, 1000, 2000]", "score_bands: [0, 500, 100]"), "reporting.score_bands", "严格递增"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "path", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_policy_is_refused_with_its_key_path(
    tmp_path: Path, name: str, content, path: str, message: str
) -> None:
    file = tmp_path / f"{name}.yaml"
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(app, ["policy", "check", str(file)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    flat = "".join(result.output.split())  # the console wraps long lines
    assert f"{path}:" in flat and "".join(message.split()) in flat, result.output
    issue = flat[flat.index(f"{path}:") :]
    assert "".join(message.split()) in issue, result.output


def test_the_shipped_policies_still_pass(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["policy", "check", str(demo_policy_path())])
    assert result.exit_code == 0, result.output
