"""The demo policy sized to a generated region: its annual fund budgets are set for
`DEMO_CASES_PER_YEAR` cases, so a region of another size gets budgets scaled in proportion
(point values, surplus and deficit then look like the demo's at any size)."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from opendip.policy import demo_policy_path

#: The case count a year the demo policy's `settlement.budget.*.fund_budget_yuan` are for.
DEMO_CASES_PER_YEAR = 100_000
_BUDGET = re.compile(r"(fund_budget_yuan:\s*)(\d+(?:\.\d+)?)")


def scaled_demo_policy(cases_per_year: int, out: Path, source: Path | None = None) -> Path:
    """Write the demo policy (or `source`) with every fund budget × cases ÷ 100 000, whole
    yuan half up, keeping comments and layout; returns the written path."""
    text = (source or demo_policy_path()).read_text(encoding="utf-8")
    factor = Decimal(cases_per_year) / DEMO_CASES_PER_YEAR

    def scale(m: re.Match[str]) -> str:
        value = (Decimal(m[2]) * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return f"{m[1]}{max(value, Decimal(1))}"

    scaled, n = _BUDGET.subn(scale, text)
    if n == 0:
        raise ValueError(
            f"{source or demo_policy_path()} 没有 fund_budget_yuan，无法按规模调整预算"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(scaled, encoding="utf-8")
    return out
