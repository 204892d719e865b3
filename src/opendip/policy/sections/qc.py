"""Settlement-list quality control (结算清单质控) parameters: reference §2."""

from __future__ import annotations

from pydantic import Field

from opendip.policy.sections.base import Section


class QcPolicy(Section):
    #: Rule set file (relative to the policy file, or a packaged name such as "default").
    rule_set: str = "default"
    #: Rule ids switched off in this region.
    disabled_rules: list[str] = []
    #: A same-day stay counts as this many days (most regions: 1).
    same_day_los: int = Field(default=1, ge=0, le=1)
