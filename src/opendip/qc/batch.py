"""Batch QC: every rule compiled to one Ibis expression over the whole case table.

Each rule (per finding field) becomes a relation of its violations (case_id, hospital_id,
rule_id, level, field, value, message); the relations are unioned into `findings`.
List fields (other diagnoses, procedures) are unnested only by the rules that look inside
them. `case_status` has one row per input row: nothing is dropped, blocking rows are marked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from opendip.contract.tables import QC_CASE_STATUS, QC_FINDINGS
from opendip.engine import table_from_arrow
from opendip.policy import Policy
from opendip.qc.context import QcContext, pair_kind
from opendip.qc.fields import FIELD_KINDS, NULL_TEXT, Kind, field_label
from opendip.qc.rules import (
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

#: Findings of a row whose case_id is null are keyed here (such rows share their findings).
NULL_KEY = "\x00"
_IBIS_TYPES = {"string": "string", "int": "int64", "money": "int64", "date": "date"}

FINDINGS_SCHEMA = QC_FINDINGS.schema
CASE_STATUS_SCHEMA = QC_CASE_STATUS.schema


@dataclass(frozen=True)
class QcCodes:
    """Insurance-edition code tables as Ibis tables (DIAGNOSIS_CODES / PROCEDURE_CODES)."""

    diagnoses: ir.Table
    procedures: ir.Table


def codes_to_ibis(con: BaseBackend, codes: Any) -> QcCodes:
    """Register Arrow code tables (anything with `.diagnoses` / `.procedures`) with a backend."""
    return QcCodes(
        table_from_arrow(con, codes.diagnoses, "qc_diagnosis_codes"),
        table_from_arrow(con, codes.procedures, "qc_procedure_codes"),
    )


@dataclass(frozen=True)
class QcResult:
    """Findings (one row per problem) and case status (one row per input row)."""

    findings: ir.Table
    case_status: ir.Table
    rules: RuleSet
    run_date: dt.date


# --- expressions shared by the checks -------------------------------------------------------


def _render(expr: ir.Value, kind: Kind) -> ir.StringValue:
    """The batch twin of `opendip.qc.fields.render` (null stays null)."""
    if kind == "string":
        return expr
    if kind == "money":
        magnitude = expr.abs()
        sign = ibis.ifelse(expr < 0, "-", "")
        return sign.concat(
            (magnitude // 100).cast("string"), ".", (magnitude % 100).cast("string").lpad(2, "0")
        )
    if kind == "list":
        return expr.join(",")
    return expr.cast("string")


def _present(expr: ir.Value, kind: Kind) -> ir.BooleanValue:
    if kind == "string":
        return expr.notnull() & (expr.strip() != "")
    return expr.notnull()


class _Compiler:
    """Compiles one rule set against one case table."""

    def __init__(self, cases: ir.Table, codes: QcCodes, ctx: QcContext) -> None:
        self.cases = cases
        self.codes = codes
        self.ctx = ctx

    # operands and conditions ------------------------------------------------------------

    def operand(self, t: ir.Table, o: Operand, kind: Kind, rule: Rule) -> ir.Value:
        if o.field is not None:
            return t[o.field]
        if o.days_between is not None:
            start, end = (t[f] for f in o.days_between)
            days = end.delta(start, unit="day").cast("int64")
            if o.same_day is not None:
                same = self.operand(t, o.same_day, "int", rule)
                days = ibis.ifelse(days == 0, same, days)
            return days
        return ibis.literal(self.ctx.constant(o, kind, rule), type=_IBIS_TYPES[kind])

    def compare(
        self, t: ir.Table, left: Operand, op: str, right: Operand, rule: Rule
    ) -> tuple[ir.Value, ir.Value, ir.BooleanValue]:
        kind = pair_kind(left, right)
        lhs = self.operand(t, left, left.kind() or kind, rule)
        rhs = self.operand(t, right, right.kind() or kind, rule)
        result = _OPS[op](lhs, rhs)
        return lhs, rhs, result

    def condition(self, t: ir.Table, c: Condition, rule: Rule) -> ir.BooleanValue:
        """A condition as a never-null boolean (null inputs make a leaf false)."""
        if isinstance(c, NotNull):
            return _all([_present(t[f], FIELD_KINDS[f]) for f in c.fields])
        if isinstance(c, IsNull):
            return _all([~_present(t[f], FIELD_KINDS[f]) for f in c.fields])
        if isinstance(c, NotEmpty):
            col, kind = t[c.field], FIELD_KINDS[c.field]
            if kind == "list":
                return (col.notnull() & (col.length() > 0)).fill_null(False)
            return _present(col, kind)
        if isinstance(c, InSetCondition):
            return t[c.field].isin(c.values).fill_null(False)
        if isinstance(c, CompareCondition):
            lhs, rhs, result = self.compare(t, c.left, c.op, c.right, rule)
            return (lhs.notnull() & rhs.notnull() & result).fill_null(False)
        if isinstance(c, AnyPrefix):
            parts = []
            for f in c.fields:
                col = t[f]
                if FIELD_KINDS[f] == "list":
                    hits = col.filter(lambda x: _any_prefix(x, c.prefixes))
                    parts.append((hits.length() > 0).fill_null(False))
                else:
                    parts.append(_any_prefix(col, c.prefixes).fill_null(False))
            return _any(parts)
        if isinstance(c, AllOf):
            return _all([self.condition(t, i, rule) for i in c.items])
        if isinstance(c, AnyOf):
            return _any([self.condition(t, i, rule) for i in c.items])
        if isinstance(c, Not):
            return ~self.condition(t, c.item, rule)
        raise TypeError(c)  # pragma: no cover - the union is closed

    # rules --------------------------------------------------------------------------------

    def rule(self, rule: Rule, order: int) -> list[ir.Table]:
        t = self.cases
        c = rule.check
        if rule.when is not None and not isinstance(c, Unique):
            t = t.filter(self.condition(t, rule.when, rule))
        combined = self._per_field(t, rule, order)
        if combined is not None:
            return [combined]
        out: list[ir.Table] = []
        for field in rule.finding_fields():
            for hits, extras in self._hits(t, rule, field):
                out.append(self._finish(hits, rule, field, extras, order))
        return out

    def _hits(self, t: ir.Table, rule: Rule, field: str) -> list[tuple[ir.Table, dict[str, str]]]:
        """Violating rows with `_value` (and `_x_<name>` extra placeholder columns)."""
        c = rule.check
        kind = FIELD_KINDS.get(field, "string")
        if isinstance(c, Required):
            hits = t.filter(~_present(t[field], kind))
            return [(hits.mutate(_value=_render(hits[field], kind)), {})]
        if isinstance(c, Range):
            col = t[field]
            bad = []
            extras = {}
            for name, o, op in (("min", c.min, "<"), ("max", c.max, ">")):
                extras[name] = self.ctx.rendered(o, kind, rule) if o is not None else ""
                if o is not None:
                    bad.append(_OPS[op](col, self.operand(t, o, kind, rule)))
            hits = t.filter(col.notnull() & _any(bad))
            return [(hits.mutate(_value=_render(hits[field], kind)), extras)]
        if isinstance(c, Compare):
            lhs, rhs, result = self.compare(t, c.left, c.op, c.right, rule)
            pk = pair_kind(c.left, c.right)
            hits = t.mutate(
                _x_left=_render(lhs, c.left.kind() or pk),
                _x_right=_render(rhs, c.right.kind() or pk),
                _bad=lhs.notnull() & rhs.notnull() & ~result,
            ).filter(lambda s: s._bad)
            return [(hits.mutate(_value=_render(hits[field], kind)), {})]
        if isinstance(c, SumEquals):
            total_kind = FIELD_KINDS[c.total]
            total = t[c.total]
            summed = _sum([t[p].cast("int64").fill_null(0) for p in c.parts])
            tol = (
                self.operand(t, c.tolerance, total_kind, rule)
                if c.tolerance is not None
                else ibis.literal(0, type="int64")
            )
            hits = t.mutate(
                _x_sum=_render(summed, total_kind),
                _x_total=_render(total, total_kind),
                _bad=total.notnull() & ((summed - total).abs() > tol),
            ).filter(lambda s: s._bad)
            return [(hits.mutate(_value=_render(hits[field], kind)), {})]
        if isinstance(c, Conditional):
            bad = self.condition(t, c.if_, rule) & ~self.condition(t, c.then, rule)
            hits = t.filter(bad)
            return [(hits.mutate(_value=_render(hits[field], kind)), {})]
        if isinstance(c, Unique):
            col = t[field]
            counted = t.mutate(_n=col.count().over(ibis.window(group_by=col)))
            keep = counted[field].notnull() & (counted._n > 1)
            if rule.when is not None:
                keep = keep & self.condition(counted, rule.when, rule)
            hits = counted.filter(keep)
            return [(hits.mutate(_value=_render(hits[field], kind)), {})]
        if isinstance(c, ListNoDuplicates):
            return [(self._duplicates(_project(t, rule, set(rule.fields)), rule.fields), {})]
        # element-wise checks: InSet, Regex, InCodeTable, CodeFlag
        needs = {field}
        if isinstance(c, CodeFlag):
            needs |= {"sex"} if c.flag == "sex" else {"age", "age_days"}
        elems = self._elements(_project(t, rule, needs), field)
        e = elems._elem
        if isinstance(c, InSet):
            extras = {"allowed": "、".join(c.values)}
            return [(elems.filter(~e.isin(c.values)).mutate(_value=e), extras)]
        if isinstance(c, Regex):
            return [(elems.filter(~e.re_search(c.pattern)).mutate(_value=e), {})]
        table = self.codes.diagnoses if c.table == "diagnosis" else self.codes.procedures
        if isinstance(c, InCodeTable):
            known = table.select(_c_code=table.code)
            hits = elems.anti_join(known, elems._elem == known._c_code)
            return [(hits.mutate(_value=hits._elem), {})]
        assert isinstance(c, CodeFlag)
        return [(self._code_flag(elems, table, c), {})]

    def _elements(self, t: ir.Table, field: str) -> ir.Table:
        """One row per non-null element (a scalar field: one row per non-null value)."""
        if FIELD_KINDS[field] == "list":
            # a select-list UNNEST: DuckDB runs it far faster than Table.unnest's lateral join
            u = t.mutate(_elem=t[field].unnest())
        else:
            u = t.mutate(_elem=t[field])
        return u.filter(u._elem.notnull())

    def _code_flag(self, elems: ir.Table, table: ir.Table, c: CodeFlag) -> ir.Table:
        cols: dict[str, ir.Value] = {"_c_code": table.code, "_c_name": table.name}
        if c.flag == "valid_as_main":
            cols["_c_flag"] = table.valid_as_main
        elif c.flag == "sex":
            cols["_c_sex"] = table.sex_restriction
        else:
            cols["_c_min"] = table.age_min_days.cast("int64")
            cols["_c_max"] = table.age_max_days.cast("int64")
        flags = table.select(**cols)
        j = elems.join(flags, elems._elem == flags._c_code)
        if c.flag == "valid_as_main":
            bad = (j._c_flag == False).fill_null(False)  # noqa: E712 - SQL comparison
        elif c.flag == "sex":
            bad = (j.sex.isin(["1", "2"]) & j._c_sex.notnull() & (j._c_sex != j.sex)).fill_null(
                False
            )
        else:
            age = j.age_days.cast("int64").fill_null(j.age.cast("int64") * 365)
            bad = (
                age.notnull()
                & (
                    (j._c_min.notnull() & (age < j._c_min))
                    | (j._c_max.notnull() & (age > j._c_max))
                )
            ).fill_null(False)
        hits = j.filter(bad)
        return hits.mutate(_value=hits._elem, _x_name=hits._c_name)

    def _duplicates(self, t: ir.Table, fields: list[str]) -> ir.Table:
        empty = ibis.literal([], type="array<string>")
        parts = [
            t[f].fill_null(empty) if FIELD_KINDS[f] == "list" else ibis.array([t[f]])
            for f in fields
        ]
        combined = parts[0].concat(*parts[1:]) if len(parts) > 1 else parts[0]
        rows = t.mutate(_all=combined.filter(lambda x: x.notnull()))
        rows = rows.filter(rows._all.length() > 1)  # cheap first cut: most lists are short
        rows = rows.filter(rows._all.length() != rows._all.unique().length())
        rows = rows.mutate(_rk=ibis.row_number())
        u = rows.mutate(_elem=rows._all.unnest())
        w = ibis.window(group_by=[u._rk, u._elem])
        u = u.mutate(_n=u._elem.count().over(w), _first=ibis.row_number().over(w))
        hits = u.filter((u._n > 1) & (u._first == 0))
        return hits.mutate(_value=hits._elem)

    def _scalar_bad(
        self, t: ir.Table, rule: Rule, field: str
    ) -> tuple[ir.BooleanValue, dict[str, str]]:
        """Violation of a per-field check on a scalar field, and its constant placeholders."""
        c = rule.check
        col, kind = t[field], FIELD_KINDS[field]
        if isinstance(c, Required):
            return ~_present(col, kind), {}
        if isinstance(c, InSet):
            return col.notnull() & ~col.isin(c.values), {"allowed": "、".join(c.values)}
        if isinstance(c, Regex):
            return col.notnull() & ~col.re_search(c.pattern), {}
        assert isinstance(c, Range)
        bad, extras = [], {}
        for name, o, op in (("min", c.min, "<"), ("max", c.max, ">")):
            extras[name] = self.ctx.rendered(o, kind, rule) if o is not None else ""
            if o is not None:
                bad.append(_OPS[op](col, self.operand(t, o, kind, rule)))
        return col.notnull() & _any(bad), extras

    def _per_field(self, t: ir.Table, rule: Rule, order: int) -> ir.Table | None:
        """A per-field check over several scalar fields as ONE relation: the rows failing any
        field, each carrying an array of (field, value, message) findings, unnested. Fewer
        relations compile faster and scan once."""
        fields = rule.finding_fields()
        if (
            len(fields) < 2
            or not isinstance(rule.check, Required | Range | InSet | Regex)
            or any(FIELD_KINDS[f] == "list" for f in fields)
        ):
            return None
        hits = t.filter(_any([self._scalar_bad(t, rule, f)[0] for f in fields]))
        items = []
        for f in fields:
            bad, extras = self._scalar_bad(hits, rule, f)
            value = _render(hits[f], FIELD_KINDS[f]).cast("string")
            found = ibis.struct(
                {
                    "field": ibis.literal(f),
                    "value": value,
                    "message": self._message(hits, rule, f, value, extras),
                }
            )
            items.append(ibis.ifelse(bad, found, ibis.null(found.type())))
        h = hits.mutate(_h=ibis.array(items).filter(lambda x: x.notnull()).unnest())
        return h.select(
            case_id=h.case_id,
            hospital_id=h.hospital_id,
            rule_id=ibis.literal(rule.id),
            level=ibis.literal(rule.level),
            field=h._h["field"],
            value=h._h["value"],
            message=h._h["message"],
            _order=ibis.literal(order, type="int32"),
        )

    def _finish(
        self, hits: ir.Table, rule: Rule, field: str, extras: dict[str, str], order: int
    ) -> ir.Table:
        return hits.select(
            case_id=hits.case_id,
            hospital_id=hits.hospital_id,
            rule_id=ibis.literal(rule.id),
            level=ibis.literal(rule.level),
            field=ibis.literal(field),
            value=hits._value.cast("string"),
            message=self._message(hits, rule, field, hits._value, extras),
            _order=ibis.literal(order, type="int32"),
        )

    def _message(
        self,
        hits: ir.Table,
        rule: Rule,
        field: str,
        value: ir.StringValue,
        extras: dict[str, str],
    ) -> ir.StringValue:
        pieces: list[ir.StringValue] = []
        for literal, name in _template(rule.message):
            if literal:
                pieces.append(ibis.literal(literal))
            if name is None:
                continue
            if name == "value":
                pieces.append(value.fill_null(NULL_TEXT))
            elif name == "label":
                pieces.append(ibis.literal(field_label(field)))
            elif name == "field":
                pieces.append(ibis.literal(field))
            elif name in extras:
                pieces.append(ibis.literal(extras[name] or NULL_TEXT))
            elif f"_x_{name}" in hits.columns:
                pieces.append(hits[f"_x_{name}"].fill_null(NULL_TEXT))
            else:
                pieces.append(_render(hits[name], FIELD_KINDS[name]).fill_null(NULL_TEXT))
        if not pieces:
            return ibis.literal("")
        return pieces[0].concat(*pieces[1:]) if len(pieces) > 1 else pieces[0]


def _project(t: ir.Table, rule: Rule, needs: set[str]) -> ir.Table:
    """Only the columns a rule reads and prints (unnesting carries every column along)."""
    printed = {name for _, name in _template(rule.message) if name in FIELD_KINDS}
    keep = {"case_id", "hospital_id"} | needs | printed
    return t.select(*[c for c in t.columns if c in keep])


def _template(message: str) -> list[tuple[str, str | None]]:
    import string

    return [(lit, name) for lit, name, _, _ in string.Formatter().parse(message)]


def _any_prefix(expr: ir.StringValue, prefixes: list[str]) -> ir.BooleanValue:
    return _any([expr.startswith(p) for p in prefixes])


def _all(items: list[ir.BooleanValue]) -> ir.BooleanValue:
    out = items[0]
    for i in items[1:]:
        out = out & i
    return out


def _any(items: list[ir.BooleanValue]) -> ir.BooleanValue:
    out = items[0]
    for i in items[1:]:
        out = out | i
    return out


def _sum(items: list[ir.IntegerValue]) -> ir.IntegerValue:
    out = items[0]
    for i in items[1:]:
        out = out + i
    return out


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _nullable(t: ir.Table) -> ir.Table:
    strict = {name: typ.copy(nullable=True) for name, typ in t.schema().items() if not typ.nullable}
    return t.cast(strict) if strict else t


def findings_expr(cases: ir.Table, codes: QcCodes, ctx: QcContext) -> ir.Table:
    """All findings of the active rules, ordered by case, rule order, field, value."""
    compiler = _Compiler(cases, codes, ctx)
    parts = [part for i, rule in enumerate(ctx.rules.rules) for part in compiler.rule(rule, i)]
    if not parts:
        return ibis.memtable(FINDINGS_SCHEMA.empty_table())
    # A rule's part may carry the input's NOT NULL case_id (an importer's conformed table),
    # another a nullable one: the union needs one schema, so every part is made nullable.
    parts = [_nullable(p) for p in parts]
    union = parts[0].union(*parts[1:], distinct=False) if len(parts) > 1 else parts[0]
    ordered = union.order_by(["case_id", "_order", "field", "value"])
    return ordered.drop("_order")


def case_status_expr(cases: ir.Table, findings: ir.Table) -> ir.Table:
    """One row per input row: counts by level, passed (no error or warning), blocking."""
    f = findings.mutate(_key=findings.case_id.fill_null(NULL_KEY))
    counts = f.group_by("_key").aggregate(
        _e=(f.level == "error").cast("int64").sum(),
        _w=(f.level == "warning").cast("int64").sum(),
        _i=(f.level == "info").cast("int64").sum(),
    )
    rows = cases.select("case_id", "hospital_id", _key=cases.case_id.fill_null(NULL_KEY))
    j = rows.left_join(counts, rows._key == counts._key)
    errors = j._e.fill_null(0)
    warnings = j._w.fill_null(0)
    return j.select(
        case_id=j.case_id,
        hospital_id=j.hospital_id,
        passed=(errors + warnings) == 0,
        blocking=errors > 0,
        error_count=errors,
        warning_count=warnings,
        info_count=j._i.fill_null(0),
    )


def run_qc(
    cases: ir.Table,
    codes: QcCodes,
    rules: RuleSet,
    policy: Policy,
    run_date: dt.date | None = None,
    materialise: bool = True,
) -> QcResult:
    """Check a batch of cases (CASES contract) against a rule set.

    `rules` minus the policy's `qc.disabled_rules` apply; future dates are judged against
    `run_date` (default: the policy's `qc.run_date`, else today). With `materialise` the
    findings are computed once and cached in the backend, so reading both tables does not
    run the rules twice.
    """
    ctx = QcContext(rules, policy, run_date)
    findings = findings_expr(cases, codes, ctx)
    if materialise:
        findings = findings.cache()
    return QcResult(findings, case_status_expr(cases, findings), ctx.rules, ctx.run_date)


__all__ = [
    "CASE_STATUS_SCHEMA",
    "FINDINGS_SCHEMA",
    "QcCodes",
    "QcResult",
    "case_status_expr",
    "codes_to_ibis",
    "findings_expr",
    "run_qc",
]
