"""What a rule set needs from the policy and the run: typed constants, active rules.

Both engines (batch and single case) take their constants from here, so a parameter means
the same number in both: money in fen, dates as dates, day counts as integers.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from opendip.money import MoneyError, yuan_to_fen
from opendip.policy import Policy
from opendip.qc.fields import FIELD_KINDS, Kind, render
from opendip.qc.rules import (
    Compare,
    Condition,
    Conditional,
    Operand,
    Range,
    Rule,
    RuleSet,
    RuleSetError,
    SumEquals,
    compare_conditions,
)


def resolve_run_date(policy: Policy, run_date: dt.date | None = None) -> dt.date:
    """The QC "today": an explicit run date, else the policy's `qc.run_date`, else today."""
    return run_date or policy.qc.run_date or dt.date.today()


def active_rules(rules: RuleSet, policy: Policy) -> RuleSet:
    """The rule set minus the policy's `qc.disabled_rules` (unknown ids are an error)."""
    return rules.without(policy.qc.disabled_rules)


class QcContext:
    """Typed constants of one QC run (policy parameters and the run date)."""

    def __init__(self, rules: RuleSet, policy: Policy, run_date: dt.date | None = None) -> None:
        self.rules = active_rules(rules, policy)
        self.run_date = resolve_run_date(policy, run_date)
        self.params: dict[str, Any] = {**policy.qc.model_dump(), "run_date": self.run_date}
        self._cache: dict[tuple[int, str], Any] = {}
        problems = []
        for rule in self.rules.rules:
            for operand, kind in operand_kinds(rule):
                try:
                    self.constant(operand, kind, rule)
                except RuleSetError as exc:
                    problems += exc.issues
        if problems:
            raise RuleSetError(self.rules.source, problems)

    def constant(self, operand: Operand, kind: Kind, rule: Rule) -> Any:
        """The Python value of a literal/parameter operand, in `kind` (fen for money)."""
        key = (id(operand), kind)
        if key not in self._cache:
            self._cache[key] = self._convert(operand, kind, rule)
        return self._cache[key]

    def _convert(self, operand: Operand, kind: Kind, rule: Rule) -> Any:
        if operand.param is not None:
            raw, what = self.params.get(operand.param), f"政策参数 qc.{operand.param}"
        else:
            raw, what = operand.value, f"常数 {operand.value!r}"
        if raw is None:
            raise RuleSetError(self.rules.source, [f"规则 {rule.id}: {what} 没有值"])

        def bad(expected: str) -> RuleSetError:
            return RuleSetError(
                self.rules.source, [f"规则 {rule.id}: {what} 的值 {raw!r} 不是{expected}"]
            )

        if kind == "date":
            if isinstance(raw, dt.datetime):
                return raw.date()
            if isinstance(raw, dt.date):
                return raw
            try:
                return dt.date.fromisoformat(str(raw))
            except ValueError:
                raise bad("日期 YYYY-MM-DD") from None
        if kind == "money":
            if isinstance(raw, dt.date | bool):
                raise bad("金额（元）")
            try:
                return yuan_to_fen(raw)
            except MoneyError:
                raise bad("金额（元）") from None
        if kind == "int":
            if isinstance(raw, bool) or not isinstance(raw, int | Decimal | float | str):
                raise bad("整数")
            try:
                number = Decimal(str(raw))
            except ArithmeticError:
                raise bad("整数") from None
            if number != number.to_integral_value():
                raise bad("整数")
            return int(number)
        return str(raw)

    def rendered(self, operand: Operand, kind: Kind, rule: Rule) -> str:
        return render(self.constant(operand, kind, rule), kind) or ""


def pair_kind(left: Operand, right: Operand) -> Kind:
    """The kind both sides of a comparison are read in (a field's kind wins)."""
    kind = left.kind() or right.kind()
    assert kind is not None  # rule validation guarantees a typed side
    return kind


def operand_kinds(rule: Rule) -> list[tuple[Operand, Kind]]:
    """Every constant operand of a rule with the kind it is read in."""
    c = rule.check
    out: list[tuple[Operand, Kind]] = []

    def add(o: Operand | None, kind: Kind) -> None:
        if o is None:
            return
        if o.field is None and o.days_between is None:
            out.append((o, kind))
        if o.same_day is not None:
            add(o.same_day, "int")

    def pair(left: Operand, right: Operand) -> None:
        kind = pair_kind(left, right)
        add(left, left.kind() or kind)
        add(right, right.kind() or kind)

    if isinstance(c, Range):
        for f in rule.fields:
            add(c.min, FIELD_KINDS[f])
            add(c.max, FIELD_KINDS[f])
    if isinstance(c, SumEquals):
        add(c.tolerance, FIELD_KINDS[c.total])
    if isinstance(c, Compare):
        pair(c.left, c.right)
    conditions: list[Condition] = [c.if_, c.then] if isinstance(c, Conditional) else []
    if rule.when:
        conditions.append(rule.when)
    for cond in conditions:
        for cmp in compare_conditions(cond):
            pair(cmp.left, cmp.right)
    return out


__all__ = [
    "QcContext",
    "active_rules",
    "operand_kinds",
    "pair_kind",
    "resolve_run_date",
]
