"""Rule step "special payment" (特殊支付规则), shared by batch and single-case scoring:

- 中医/民族医优势病种 (`scoring.tcm_advantage`): a case whose main diagnosis is on a listed
  disease and which received a listed TCM/ethnic-medicine treatment (procedure/item code)
  keeps its group; its base score is adjusted: same_as_western (中西医同病同价: the score
  of the western surgical group), + added_score, or × coefficient (4 decimals, half up);
- 新技术新项目 (`scoring.new_technologies`): a case using a listed new procedure/item and
  discharged in its transition period is settled by item (out of DIP, `by_item`) or gets
  added_score points on its base score (after the TCM adjustment).

The deviation band and the reference mean stay those of the case's own group: only the
score the formulas start from changes. Each rule appends one sentence to the explanation
(which rule, which list entry). Entries match in list order; the first matching applies.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir

from opendip.policy import Policy
from opendip.scoring.errors import InputDataError
from opendip.scoring.exact import decimal_to_units, div_half_up, py_div_half_up, scaled

MEDICINE_LABELS = {"tcm": "中医", "ethnic": "民族医"}
#: Group types whose base score the rules adjust (not fallback, bed-day scores stay).
ADJUSTED_TYPES = ("core", "basic", "comprehensive")
SCORE_T = "decimal(18, 4)"

TCM_NOTE = {
    "same_as_western": "{medicine}优势病种{code}（{name}，{medicine}治疗{treatments}）："
    "中西医同病同价，按西医手术病种{western}分值{adjusted}作为基准分值；",
    "added_score": "{medicine}优势病种{code}（{name}，{medicine}治疗{treatments}）："
    "基准分值{base}+加分{added}={adjusted}；",
    "coefficient": "{medicine}优势病种{code}（{name}，{medicine}治疗{treatments}）："
    "基准分值{base}×优势病种系数{coef}={adjusted}；",
}
#: same_as_western with the western group absent from the directory (western_group_missing:
#: own_score): the case keeps its own group's score.
TCM_NOTE_MISSING = (
    "{medicine}优势病种{code}（{name}，{medicine}治疗{treatments}）：中西医同病同价，"
    "但西医手术病种{western}不在本期病种目录，按政策以本病种基准分值{adjusted}结算；"
)
NEW_TECH_NOTE = (
    "新技术新项目{code}（{name}，过渡期{start}至{end}）：基准分值{base}+加分{added}={adjusted}；"
)
BY_ITEM_REASON = (
    "使用新技术新项目{code}（{name}），在过渡期{start}至{end}内按项目付费，不按 DIP 结算"
)
#: not_dip.exemption of a case settled by item as a new technology.
EXEMPTION_NEW_TECH = "new_technology"


@dataclass(frozen=True)
class TcmRule:
    code: str
    name: str
    medicine: str
    diagnosis_prefixes: tuple[str, ...]
    treatment_codes: tuple[str, ...]
    western_group: str | None
    start: dt.date
    end: dt.date | None
    #: the western group's score × 10**4 (resolved from the directory; same_as_western)
    western4: int | None = None


@dataclass(frozen=True)
class NewTechRule:
    code: str
    name: str
    start: dt.date
    end: dt.date
    mode: str
    added4: int | None


@dataclass(frozen=True)
class SpecialRules:
    tcm_mode: str
    tcm_added4: int | None
    tcm_coef4: int | None
    tcm_coef_text: str
    tcm: tuple[TcmRule, ...]
    new_tech: tuple[NewTechRule, ...]
    #: scoring.tcm_advantage.western_group_missing (refuse / own_score)
    tcm_missing: str = "refuse"

    @property
    def by_item(self) -> tuple[NewTechRule, ...]:
        return tuple(r for r in self.new_tech if r.mode == "by_item")

    @property
    def added(self) -> tuple[NewTechRule, ...]:
        return tuple(r for r in self.new_tech if r.mode == "added_score")

    def western_codes(self) -> list[str]:
        return sorted({r.western_group for r in self.tcm if r.western_group})

    def resolved(self, western4: Mapping[str, int]) -> SpecialRules:
        """The rules with the western groups' scores (× 10**4) filled in where known;
        remembered per rules object and scores (the single-case path resolves the same
        rules for every case: the pre-grouping API, issue 16 §4)."""
        key = (id(self), tuple(sorted(western4.items())))
        found = _RESOLVED.get(key)
        if found is not None and found[0] is self:
            return found[1]
        tcm = tuple(
            dataclasses.replace(r, western4=western4.get(r.western_group or "")) for r in self.tcm
        )
        out = dataclasses.replace(self, tcm=tcm)
        if len(_RESOLVED) >= 64:
            _RESOLVED.clear()
        _RESOLVED[key] = (self, out)
        return out


#: `SpecialRules.resolved` results: (rules object id, western scores) → (rules, resolved).
#: The rules object is kept so that its id cannot be reused while the entry exists.
_RESOLVED: dict[tuple[int, tuple[tuple[str, int], ...]], tuple[SpecialRules, SpecialRules]] = {}


def _fmt4(units: int) -> str:
    return format(Decimal(units).scaleb(-4), ".4f")


def special_rules(policy: Policy) -> SpecialRules:
    """The special payment rules of one policy version (scores and coefficients × 10**4)."""
    s = policy.scoring
    t = s.tcm_advantage
    tcm = tuple(
        TcmRule(
            g.code,
            g.name,
            g.medicine,
            tuple(g.diagnosis_prefixes),
            tuple(g.treatment_codes),
            g.western_group,
            g.valid_from,
            g.valid_to,
        )
        for g in t.groups
    )
    new_tech = tuple(
        NewTechRule(
            n.code,
            n.name,
            n.valid_from,
            n.valid_to,
            n.mode,
            scaled(n.added_score, 4) if n.added_score is not None else None,
        )
        for n in s.new_technologies
    )
    return SpecialRules(
        tcm_mode=t.mode,
        tcm_added4=scaled(t.added_score, 4) if t.added_score is not None else None,
        tcm_coef4=scaled(t.coefficient, 4) if t.coefficient is not None else None,
        tcm_coef_text=format(t.coefficient.normalize(), "f") if t.coefficient else "",
        tcm=tcm,
        new_tech=new_tech,
        tcm_missing=t.western_group_missing,
    )


def western_scores(rules: SpecialRules, rows: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """western group code → score × 10**4, from directory rows by group code."""
    out = {}
    for code in rules.western_codes():
        row = rows.get(code)
        if row is not None and row.get("score") is not None:
            out[code] = scaled(Decimal(row["score"]), 4)
    return out


def missing_western(rules: SpecialRules) -> InputDataError:
    codes = [r.western_group or "" for r in rules.tcm if r.western4 is None]
    return InputDataError(
        "directory",
        "group_code",
        "政策 scoring.tcm_advantage 中西医同病同价所指的西医手术病种不在病种目录中",
        codes,
    )


# -- texts ---------------------------------------------------------------------------------


def _tcm_template(rules: SpecialRules, rule: TcmRule) -> str:
    if rules.tcm_mode == "same_as_western" and rule.western4 is None:
        return TCM_NOTE_MISSING
    return TCM_NOTE[rules.tcm_mode]


def _check_western(rules: SpecialRules) -> None:
    missing = any(r.western4 is None for r in rules.tcm)
    if rules.tcm_mode == "same_as_western" and rules.tcm_missing == "refuse" and missing:
        raise missing_western(rules)


def tcm_note(rules: SpecialRules, rule: TcmRule, base4: int, adjusted4: int) -> str:
    medicine = MEDICINE_LABELS[rule.medicine]
    return _tcm_template(rules, rule).format(
        medicine=medicine,
        code=rule.code,
        name=rule.name,
        treatments="/".join(rule.treatment_codes),
        western=rule.western_group or "",
        base=_fmt4(base4),
        added=_fmt4(rules.tcm_added4 or 0),
        coef=rules.tcm_coef_text,
        adjusted=_fmt4(adjusted4),
    )


def new_tech_note(rule: NewTechRule, base4: int, adjusted4: int) -> str:
    return NEW_TECH_NOTE.format(
        code=rule.code,
        name=rule.name,
        start=rule.start.isoformat(),
        end=rule.end.isoformat(),
        base=_fmt4(base4),
        added=_fmt4(rule.added4 or 0),
        adjusted=_fmt4(adjusted4),
    )


def by_item_reason(rule: NewTechRule) -> str:
    return BY_ITEM_REASON.format(
        code=rule.code, name=rule.name, start=rule.start.isoformat(), end=rule.end.isoformat()
    )


def tcm_adjusted4(rules: SpecialRules, rule: TcmRule, base4: int) -> int:
    if rules.tcm_mode == "same_as_western":
        if rule.western4 is None:
            if rules.tcm_missing == "own_score":
                return base4
            raise missing_western(rules)
        return rule.western4
    if rules.tcm_mode == "added_score":
        return base4 + (rules.tcm_added4 or 0)
    return py_div_half_up(base4 * (rules.tcm_coef4 or 10**4), 10**4)


# -- single case ---------------------------------------------------------------------------


def _codes(case: Mapping[str, Any]) -> list[str]:
    return [c for c in [case.get("main_procedure"), *(case.get("other_procedures") or [])] if c]


def _in_period(when: dt.date, start: dt.date, end: dt.date | None) -> bool:
    return start <= when and (end is None or when <= end)


def _any(codes: list[str], prefixes: tuple[str, ...]) -> bool:
    return any(c.startswith(prefixes) for c in codes)


def new_tech_match(case: Mapping[str, Any], rules: tuple[NewTechRule, ...]) -> NewTechRule | None:
    codes = _codes(case)
    when = case["discharge_date"]
    for r in rules:
        if _in_period(when, r.start, r.end) and _any(codes, (r.code,)):
            return r
    return None


def tcm_match(case: Mapping[str, Any], rules: SpecialRules) -> TcmRule | None:
    codes = _codes(case)
    main = case.get("main_diagnosis") or ""
    when = case["discharge_date"]
    for r in rules.tcm:
        if (
            _in_period(when, r.start, r.end)
            and main.startswith(r.diagnosis_prefixes)
            and _any(codes, r.treatment_codes)
        ):
            return r
    return None


@dataclass(frozen=True)
class Adjusted:
    """The base score the formulas start from (× 10**4), the explanation sentences and the
    codes of the rules applied (None when not applied)."""

    pay4: int | None
    note: str
    tcm: str | None
    new_tech: str | None


def adjust_single(
    case: Mapping[str, Any], group_type: str, base4: int | None, rules: SpecialRules, active: bool
) -> Adjusted:
    """The special payment rules for one case (`active`: not an accepted special review)."""
    if base4 is None or group_type not in ADJUSTED_TYPES or not active:
        return Adjusted(base4, "", None, None)
    note, tcm_code, nt_code = "", None, None
    pay4 = base4
    t = tcm_match(case, rules)
    if t is not None:
        pay4 = tcm_adjusted4(rules, t, base4)
        note += tcm_note(rules, t, base4, pay4)
        tcm_code = t.code
    n = new_tech_match(case, rules.added)
    if n is not None:
        before = pay4
        pay4 = before + (n.added4 or 0)
        note += new_tech_note(n, before, pay4)
        nt_code = n.code
    return Adjusted(pay4, note, tcm_code, nt_code)


# -- batch ----------------------------------------------------------------------------------


def _prefix_any(col: ir.StringValue, prefixes: tuple[str, ...]) -> ir.BooleanValue:
    return ibis.or_(*[col.startswith(p) for p in prefixes])


def _uses(t: ir.Table, prefixes: tuple[str, ...]) -> ir.BooleanValue:
    main = _prefix_any(t.main_procedure, prefixes).fill_null(False)
    others = (t.other_procedures.filter(lambda p: _prefix_any(p, prefixes)).length() > 0).fill_null(
        False
    )
    return main | others


def _period(t: ir.Table, start: dt.date, end: dt.date | None) -> ir.BooleanValue:
    cond = t.discharge_date >= start
    if end is not None:
        cond &= t.discharge_date <= end
    return cond


def _first(conds: list[ir.BooleanValue]) -> ir.IntegerValue:
    """Index of the first true condition, else null."""
    if not conds:
        return ibis.null("int16")
    return ibis.cases(
        *[(c, ibis.literal(i, type="int16")) for i, c in enumerate(conds)], else_=ibis.null("int16")
    )


def by_item_batch(t: ir.Table, rules: SpecialRules) -> ir.Table:
    """Adds `_by_item` (the by-item new technology's reason, or null)."""
    entries = rules.by_item
    if not entries:
        return t.mutate(_by_item=ibis.null("string"))
    idx = _first([_period(t, r.start, r.end) & _uses(t, (r.code,)) for r in entries])
    t = t.mutate(_by_item_i=idx)
    return t.mutate(
        _by_item=ibis.cases(
            *[(t._by_item_i == i, ibis.literal(by_item_reason(r))) for i, r in enumerate(entries)],
            else_=ibis.null("string"),
        )
    ).drop("_by_item_i")


def _text4(units: ir.IntegerValue) -> ir.StringValue:
    from opendip.scoring.exact import units_to_decimal

    return units_to_decimal(units, 4, SCORE_T).cast("string")


def _template(template: str, values: dict[str, ir.StringValue | str]) -> ir.StringValue:
    from string import Formatter

    out: ir.StringValue = ibis.literal("")
    for lit, name, _, _ in Formatter().parse(template):
        if lit:
            out = out + ibis.literal(lit)
        if name is not None:
            v = values[name]
            out = out + (ibis.literal(v) if isinstance(v, str) else v)
    return out


def adjust_batch(t: ir.Table, rules: SpecialRules, active: ir.BooleanValue) -> ir.Table:
    """Adds `_pay_b4` (base score × 10**4 the formulas start from), `_rule_note`, and the
    codes of the rules applied, `tcm_group` and `new_tech` (null when none)."""
    b4 = decimal_to_units(t.base_score, 4)
    if not rules.tcm and not rules.added:
        return t.mutate(
            _pay_b4=b4,
            _rule_note=ibis.literal(""),
            tcm_group=ibis.null("string"),
            new_tech=ibis.null("string"),
        )
    eligible = t.base_score.notnull() & t.group_type.isin(ADJUSTED_TYPES) & active
    main = t.main_diagnosis.fill_null("")
    tcm_i = _first(
        [
            _period(t, r.start, r.end)
            & _prefix_any(main, r.diagnosis_prefixes)
            & _uses(t, r.treatment_codes)
            for r in rules.tcm
        ]
    )
    nt_i = _first([_period(t, r.start, r.end) & _uses(t, (r.code,)) for r in rules.added])
    t = t.mutate(
        _tcm_i=ibis.ifelse(eligible, tcm_i, ibis.null("int16")),
        _nt_i=ibis.ifelse(eligible, nt_i, ibis.null("int16")),
        _b4_0=b4,
    )
    # TCM-adjusted base.
    if not rules.tcm:
        tcm4 = t._b4_0
    elif rules.tcm_mode == "same_as_western":
        _check_western(rules)
        found = [(i, r) for i, r in enumerate(rules.tcm) if r.western4 is not None]
        tcm4 = (
            ibis.cases(
                *[(t._tcm_i == i, ibis.literal(r.western4, type="int64")) for i, r in found],
                else_=t._b4_0,
            )
            if found
            else t._b4_0
        )
    elif rules.tcm_mode == "added_score":
        tcm4 = ibis.ifelse(t._tcm_i.notnull(), t._b4_0 + (rules.tcm_added4 or 0), t._b4_0)
    else:
        tcm4 = ibis.ifelse(
            t._tcm_i.notnull(),
            div_half_up(t._b4_0 * (rules.tcm_coef4 or 10**4), 10**4),
            t._b4_0,
        )
    t = t.mutate(_tcm_b4=tcm4.cast("int64"))
    added = (
        ibis.cases(
            *[
                (t._nt_i == i, ibis.literal(r.added4 or 0, type="int64"))
                for i, r in enumerate(rules.added)
            ],
            else_=ibis.literal(0, type="int64"),
        )
        if rules.added
        else ibis.literal(0, type="int64")
    )
    t = t.mutate(_pay_b4=t._tcm_b4 + added)
    base_text, tcm_text, pay_text = _text4(t._b4_0), _text4(t._tcm_b4), _text4(t._pay_b4)
    tcm_notes = [
        (
            t._tcm_i == i,
            _template(
                _tcm_template(rules, r),
                {
                    "medicine": MEDICINE_LABELS[r.medicine],
                    "code": r.code,
                    "name": r.name,
                    "treatments": "/".join(r.treatment_codes),
                    "western": r.western_group or "",
                    "base": base_text,
                    "added": _fmt4(rules.tcm_added4 or 0),
                    "coef": rules.tcm_coef_text,
                    "adjusted": tcm_text,
                },
            ),
        )
        for i, r in enumerate(rules.tcm)
    ]
    nt_notes = [
        (
            t._nt_i == i,
            _template(
                NEW_TECH_NOTE,
                {
                    "code": r.code,
                    "name": r.name,
                    "start": r.start.isoformat(),
                    "end": r.end.isoformat(),
                    "base": tcm_text,
                    "added": _fmt4(r.added4 or 0),
                    "adjusted": pay_text,
                },
            ),
        )
        for i, r in enumerate(rules.added)
    ]
    empty = ibis.literal("")
    tcm_note_x = ibis.cases(*tcm_notes, else_=empty) if tcm_notes else empty
    nt_note_x = ibis.cases(*nt_notes, else_=empty) if nt_notes else empty
    tcm_code = (
        ibis.cases(
            *[(t._tcm_i == i, ibis.literal(r.code)) for i, r in enumerate(rules.tcm)],
            else_=ibis.null("string"),
        )
        if rules.tcm
        else ibis.null("string")
    )
    nt_code = (
        ibis.cases(
            *[(t._nt_i == i, ibis.literal(r.code)) for i, r in enumerate(rules.added)],
            else_=ibis.null("string"),
        )
        if rules.added
        else ibis.null("string")
    )
    t = t.mutate(_rule_note=tcm_note_x + nt_note_x, tcm_group=tcm_code, new_tech=nt_code)
    return t.drop("_tcm_i", "_nt_i", "_b4_0", "_tcm_b4")
