"""Single-case QC (前置质控 for one settlement list): pure Python, the batch answer exactly.

`CaseChecker` prepares the code lookups and constants once; `check_case` is the one-call
form. The uniqueness rule needs the batch: for one case it compares the case id with
`known_case_ids` (the ids already uploaded or in the same file, not counting this case);
without them it cannot fire.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from opendip.policy import Policy
from opendip.qc.context import QcContext, pair_kind
from opendip.qc.fields import FIELD_KINDS, NULL_TEXT, Kind, field_label, is_present, render
from opendip.qc.rules import (
    LEVEL_LABELS,
    AllOf,
    AnyOf,
    AnyPrefix,
    CodeFlag,
    Compare,
    CompareCondition,
    Condition,
    Conditional,
    InCodeTable,
    InSet,
    InSetCondition,
    IsNull,
    ListNoDuplicates,
    Not,
    NotEmpty,
    NotNull,
    Operand,
    Range,
    Regex,
    Required,
    Rule,
    RuleSet,
    SumEquals,
    Unique,
)

#: Placeholders filled from constants (not from the case): empty text prints as NULL_TEXT.
_STATIC_EXTRAS = frozenset({"min", "max", "allowed"})
_OPS = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class Finding:
    """One QC problem of one case (a row of the batch `findings` table)."""

    case_id: str | None
    hospital_id: str | None
    rule_id: str
    level: str
    field: str
    value: str | None
    message: str

    @property
    def level_label(self) -> str:
        return LEVEL_LABELS[self.level]

    @property
    def blocking(self) -> bool:
        return self.level == "error"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready payload (for the web API): the row plus Chinese level and field label."""
        return {
            **asdict(self),
            "level_label": self.level_label,
            "field_label": field_label(self.field),
        }


@dataclass(frozen=True)
class _Code:
    name: str | None
    valid_as_main: bool | None
    sex: str | None
    age_min: int | None
    age_max: int | None


def _index(table: Any) -> dict[str, _Code]:
    names = set(table.column_names)

    def col(name: str) -> list[Any]:
        return table.column(name).to_pylist() if name in names else [None] * table.num_rows

    out: dict[str, _Code] = {}
    for code, name, vam, sex, lo, hi in zip(
        col("code"),
        col("name"),
        col("valid_as_main"),
        col("sex_restriction"),
        col("age_min_days"),
        col("age_max_days"),
        strict=True,
    ):
        if code is not None and code not in out:
            out[code] = _Code(name, vam, sex, lo, hi)
    return out


class CaseChecker:
    """Checks single cases; build once (code lookups, constants), call `check` per case."""

    def __init__(
        self, codes: Any, rules: RuleSet, policy: Policy, run_date: dt.date | None = None
    ) -> None:
        self.ctx = QcContext(rules, policy, run_date)
        self.rules = self.ctx.rules
        self.run_date = self.ctx.run_date
        self._diagnoses = _index(codes.diagnoses)
        self._procedures = _index(codes.procedures)
        self._patterns = {
            r.id: re.compile(r.check.pattern)
            for r in self.rules.rules
            if isinstance(r.check, Regex)
        }

    def check(
        self, case: Mapping[str, Any], known_case_ids: Collection[str] | None = None
    ) -> list[Finding]:
        """Every finding for `case` (a dict in the CASES contract; missing keys are null),
        ordered like the batch table (rule order, field, value)."""
        row = {f: case.get(f) for f in FIELD_KINDS}
        out: list[tuple[int, Finding]] = []
        for order, rule in enumerate(self.rules.rules):
            if rule.when is not None and not self._condition(row, rule.when, rule):
                continue
            for field in rule.finding_fields():
                for value, extras in self._hits(row, rule, field, known_case_ids):
                    out.append((order, self._finding(row, rule, field, value, extras)))
        out.sort(key=lambda x: (x[0], x[1].field, x[1].value is None, x[1].value or ""))
        return [f for _, f in out]

    # operands and conditions --------------------------------------------------------------

    def _operand(self, row: dict[str, Any], o: Operand, kind: Kind, rule: Rule) -> Any:
        if o.field is not None:
            return row[o.field]
        if o.days_between is not None:
            start, end = (row[f] for f in o.days_between)
            if start is None or end is None:
                return None
            days = (end - start).days
            if days == 0 and o.same_day is not None:
                return self._operand(row, o.same_day, "int", rule)
            return days
        return self.ctx.constant(o, kind, rule)

    def _compare(
        self, row: dict[str, Any], left: Operand, op: str, right: Operand, rule: Rule
    ) -> tuple[Any, Any, bool | None]:
        kind = pair_kind(left, right)
        lhs = self._operand(row, left, left.kind() or kind, rule)
        rhs = self._operand(row, right, right.kind() or kind, rule)
        if lhs is None or rhs is None:
            return lhs, rhs, None
        return lhs, rhs, _OPS[op](lhs, rhs)

    def _condition(self, row: dict[str, Any], c: Condition, rule: Rule) -> bool:
        if isinstance(c, NotNull):
            return all(is_present(row[f], FIELD_KINDS[f]) for f in c.fields)
        if isinstance(c, IsNull):
            return all(not is_present(row[f], FIELD_KINDS[f]) for f in c.fields)
        if isinstance(c, NotEmpty):
            value, kind = row[c.field], FIELD_KINDS[c.field]
            if kind == "list":
                return value is not None and len(value) > 0
            return is_present(value, kind)
        if isinstance(c, InSetCondition):
            return row[c.field] is not None and row[c.field] in c.values
        if isinstance(c, CompareCondition):
            return bool(self._compare(row, c.left, c.op, c.right, rule)[2])
        if isinstance(c, AnyPrefix):
            return any(
                e.startswith(p)
                for f in c.fields
                for e in _elements(row[f], FIELD_KINDS[f])
                for p in c.prefixes
            )
        if isinstance(c, AllOf):
            return all(self._condition(row, i, rule) for i in c.items)
        if isinstance(c, AnyOf):
            return any(self._condition(row, i, rule) for i in c.items)
        if isinstance(c, Not):
            return not self._condition(row, c.item, rule)
        raise TypeError(c)  # pragma: no cover - the union is closed

    # checks -----------------------------------------------------------------------------------

    def _hits(
        self,
        row: dict[str, Any],
        rule: Rule,
        field: str,
        known_case_ids: Collection[str] | None,
    ) -> list[tuple[str | None, dict[str, str | None]]]:
        """(rendered value, extra placeholders) per violation."""
        c = rule.check
        kind = FIELD_KINDS.get(field, "string")
        value = row.get(field)
        if isinstance(c, Required):
            return [] if is_present(value, kind) else [(render(value, kind), {})]
        if isinstance(c, Range):
            if value is None:
                return []
            extras: dict[str, str | None] = {}
            bad = False
            for name, o, op in (("min", c.min, "<"), ("max", c.max, ">")):
                extras[name] = self.ctx.rendered(o, kind, rule) if o is not None else ""
                if o is not None and _OPS[op](value, self.ctx.constant(o, kind, rule)):
                    bad = True
            return [(render(value, kind), extras)] if bad else []
        if isinstance(c, Compare):
            lhs, rhs, ok = self._compare(row, c.left, c.op, c.right, rule)
            if ok is None or ok:
                return []
            pk = pair_kind(c.left, c.right)
            extras = {
                "left": render(lhs, c.left.kind() or pk),
                "right": render(rhs, c.right.kind() or pk),
            }
            return [(render(value, kind), extras)]
        if isinstance(c, SumEquals):
            total = row[c.total]
            if total is None:
                return []
            total_kind = FIELD_KINDS[c.total]
            summed = sum(int(row[p] or 0) for p in c.parts)
            tol = self.ctx.constant(c.tolerance, total_kind, rule) if c.tolerance else 0
            if abs(summed - total) <= tol:
                return []
            extras = {"sum": render(summed, total_kind), "total": render(total, total_kind)}
            return [(render(value, kind), extras)]
        if isinstance(c, Conditional):
            if self._condition(row, c.if_, rule) and not self._condition(row, c.then, rule):
                return [(render(value, kind), {})]
            return []
        if isinstance(c, Unique):
            if value is not None and known_case_ids is not None and value in known_case_ids:
                return [(render(value, kind), {})]
            return []
        if isinstance(c, ListNoDuplicates):
            seen: set[str] = set()
            dups: list[str] = []
            for f in rule.fields:
                for e in _elements(row[f], FIELD_KINDS[f]):
                    if e in seen and e not in dups:
                        dups.append(e)
                    seen.add(e)
            return [(d, {}) for d in dups]
        elems = _elements(value, kind)
        if isinstance(c, InSet):
            allowed = "、".join(c.values)
            return [(e, {"allowed": allowed}) for e in elems if e not in c.values]
        if isinstance(c, Regex):
            pattern = self._patterns[rule.id]
            return [(e, {}) for e in elems if pattern.search(e) is None]
        lookup = self._diagnoses if c.table == "diagnosis" else self._procedures
        if isinstance(c, InCodeTable):
            return [(e, {}) for e in elems if e not in lookup]
        assert isinstance(c, CodeFlag)
        out: list[tuple[str | None, dict[str, str | None]]] = []
        for e in elems:
            code = lookup.get(e)
            if code is not None and self._flag_violated(row, code, c):
                out.append((e, {"name": code.name}))
        return out

    @staticmethod
    def _flag_violated(row: dict[str, Any], code: _Code, c: CodeFlag) -> bool:
        if c.flag == "valid_as_main":
            return code.valid_as_main is False
        if c.flag == "sex":
            sex = row["sex"]
            return sex in ("1", "2") and code.sex is not None and code.sex != sex
        age = row["age_days"]
        if age is None and row["age"] is not None:
            age = int(row["age"]) * 365
        if age is None:
            return False
        return (code.age_min is not None and age < code.age_min) or (
            code.age_max is not None and age > code.age_max
        )

    def _finding(
        self,
        row: dict[str, Any],
        rule: Rule,
        field: str,
        value: str | None,
        extras: dict[str, str | None],
    ) -> Finding:
        parts: list[str] = []
        for literal, name in _template(rule.message):
            parts.append(literal)
            if name is None:
                continue
            if name == "value":
                text = value
            elif name == "label":
                text = field_label(field)
            elif name == "field":
                text = field
            elif name in extras:
                text = extras[name]
            else:
                text = render(row[name], FIELD_KINDS[name])
            if name in _STATIC_EXTRAS:
                parts.append(text or NULL_TEXT)  # constants: empty prints as null, like batch
            else:
                parts.append(NULL_TEXT if text is None else text)
        return Finding(
            row["case_id"],
            row["hospital_id"],
            rule.id,
            rule.level,
            field,
            value,
            "".join(parts),
        )


def _template(message: str) -> list[tuple[str, str | None]]:
    import string

    return [(lit, name) for lit, name, _, _ in string.Formatter().parse(message)]


def _elements(value: Any, kind: Kind) -> list[str]:
    if value is None:
        return []
    if kind == "list":
        return [e for e in value if e is not None]
    return [value]


def check_case(
    case: Mapping[str, Any],
    codes: Any,
    rules: RuleSet,
    policy: Policy,
    known_case_ids: Collection[str] | None = None,
    run_date: dt.date | None = None,
) -> list[Finding]:
    """QC one case; the same findings the batch gives this case (see module doc for the
    uniqueness rule). For many cases build a `CaseChecker` once instead."""
    return CaseChecker(codes, rules, policy, run_date).check(case, known_case_ids)


__all__ = ["CaseChecker", "Finding", "check_case"]
