"""Record-level QC of the multi-record settlement list (rules as data).

The flat-table rules (`opendip.qc.batch`) check what the engine groups; these check the
child records the flat table does not hold: times inside the stay, anaesthesia for surgery,
ventilator time against the stay, newborn weights, exactly one main diagnosis, condition on
admission, TCM pairs. Rules live in ``data/qc/settlement-list-record-rules.yaml`` (a region
may load its own file). Every rule compiles to one Ibis expression over the record tables;
a finding names the record (``procedures.begin_time``), the record's position within its list
(手术操作第 2 条) and the field. `check_records` runs the same code for one case or a batch,
so the single-case answer is the batch answer.
"""

from __future__ import annotations

import re
from functools import reduce
from pathlib import Path
from typing import Annotated, Literal

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import yaml
from ibis.backends import BaseBackend
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from opendip.contract.settlement import RECORD_TYPES
from opendip.contract.tables import QC_FINDINGS
from opendip.engine import connect, table_from_arrow

DEFAULT_RULES = (
    Path(__file__).resolve().parent.parent / "data" / "qc" / "settlement-list-record-rules.yaml"
)
RecordName = Literal["settlement_lists", "diagnoses", "procedures", "icu", "fees", "funds"]
#: How a finding names a child record: 手术操作第 2 条.
RECORD_NOUNS = {
    "diagnoses": "诊断",
    "procedures": "手术操作",
    "icu": "重症监护",
    "fees": "收费项目",
    "funds": "基金支付",
}
#: The code column each record's {code} placeholder shows.
CODE_COLUMNS = {
    "diagnoses": "diagnosis_code",
    "procedures": "procedure_code",
    "icu": "ward_type",
    "fees": "fee_category",
    "funds": "fund_type",
    "settlement_lists": "case_id",
}


class RecordRuleError(ValueError):
    """A rule file that cannot be used (Chinese, naming the rule and the problem)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Required(_Model):
    type: Literal["required"]
    #: The rule holds when any of these other fields is filled instead.
    also: list[str] = []
    #: Only procedures of these types (code table procedure_type).
    procedure_types: list[str] = []
    #: Only records where the field is below the value, e.g. {age_days: 28}.
    when_below: dict[str, int] = {}


class Range(_Model):
    type: Literal["range"]
    min: float | None = None
    max: float | None = None


class ListRange(_Model):
    type: Literal["list_range"]
    min: float
    max: float


class WithinStay(_Model):
    type: Literal["within_stay"]


class Order(_Model):
    type: Literal["order"]
    first: str


class DurationWithinStay(_Model):
    type: Literal["duration_within_stay"]
    days: str
    hours: str
    minutes: str


class ChildCount(_Model):
    type: Literal["child_count"]
    child: RecordName
    where: dict[str, str] = {}
    equals: int


class PairComplete(_Model):
    type: Literal["pair_complete"]
    child: RecordName
    field: str
    pair: tuple[str, str]


Check = Annotated[
    Required | Range | ListRange | WithinStay | Order | DurationWithinStay | ChildCount
    | PairComplete,
    Field(discriminator="type"),
]  # fmt: skip


class RecordRule(_Model):
    id: str
    name: str
    level: Literal["error", "warning", "info"]
    record: RecordName
    fields: list[str]
    message: str
    check: Check
    #: Only the records whose fields equal these values, e.g. {diagnosis_kind: wm}.
    where: dict[str, str] = {}

    @model_validator(mode="before")
    @classmethod
    def _field_alias(cls, data: object) -> object:
        if isinstance(data, dict) and "field" in data:
            data = {**data, "fields": [data["field"]]}
            del data["field"]
        return data

    @model_validator(mode="after")
    def _known_fields(self) -> RecordRule:
        names = set(RECORD_TYPES[self.record].names)
        used = [*self.fields, *self.where]
        c = self.check
        if isinstance(c, Required):
            used += [*c.also, *c.when_below]
        if isinstance(c, Order):
            used.append(c.first)
        if isinstance(c, DurationWithinStay):
            used += [c.days, c.hours, c.minutes]
        unknown = [f for f in used if f not in names]
        if isinstance(c, ChildCount | PairComplete):
            child = set(RECORD_TYPES[c.child].names)
            extra = [*c.where] if isinstance(c, ChildCount) else [c.field]
            unknown += [f for f in extra if f not in child]
        if unknown:
            raise ValueError(f"未知字段 {'、'.join(unknown)}（须是记录 {self.record} 的列）")
        return self


class RecordRuleSet(_Model):
    version: str
    name: str
    description: str = ""
    rules: list[RecordRule]


def load_record_rules(path: str | Path | None = None) -> RecordRuleSet:
    """The record rule set (default: the shipped file); errors name the rule."""
    path = Path(path) if path else DEFAULT_RULES
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return RecordRuleSet.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise RecordRuleError(f"{path}：无法读取（{exc}）") from exc
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e["loc"])
            problems.append(f"{where}：{e['msg']}")
        raise RecordRuleError(f"{path}：" + "；".join(problems)) from exc


# --- compiling --------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _text(value: ir.Value) -> ir.StringValue:
    if value.type().is_timestamp():
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if value.type().is_date():
        return value.strftime("%Y-%m-%d")
    return value.cast("string")


def _render(template: str, parts: dict[str, ir.Value]) -> ir.StringValue:
    pieces: list[ir.StringValue] = []
    last = 0
    for m in _PLACEHOLDER.finditer(template):
        if m.start() > last:
            pieces.append(ibis.literal(template[last : m.start()]))
        value = parts.get(m.group(1))
        pieces.append(
            ibis.literal(m.group(0)) if value is None else _text(value).fill_null("（空）")
        )
        last = m.end()
    if last < len(template):
        pieces.append(ibis.literal(template[last:]))
    return reduce(lambda a, b: a.concat(b), pieces) if pieces else ibis.literal("")


def _present(value: ir.Value) -> ir.BooleanValue:
    if value.type().is_string():
        return value.notnull() & (value.strip() != "")
    return value.notnull()


class _Compiler:
    def __init__(self, tables: dict[str, ir.Table], procedure_types: ir.Table | None) -> None:
        self.tables = tables
        self.procedure_types = procedure_types
        header = tables["settlement_lists"]
        self.stay = header.select(
            _case=header.case_id,
            _hospital=header.hospital_id,
            _admit=header.admit_time,
            _discharge=header.discharge_time,
        )

    def base(self, rule: RecordRule) -> ir.Table:
        """The rule's records with hospital, stay and (children) their position in the list."""
        t = self.tables[rule.record]
        for name, value in rule.where.items():
            t = t.filter(t[name] == value)
        if rule.record == "settlement_lists":
            return t.mutate(
                _hospital=t.hospital_id, _admit=t.admit_time, _discharge=t.discharge_time
            )
        n = ibis.row_number().over(group_by=t.case_id, order_by=t._seq) + 1
        t = t.mutate(_n=n)
        return t.join(self.stay, t.case_id == self.stay._case).drop("_case")

    def findings(self, rule: RecordRule, field: str) -> ir.Table:
        t = self.base(rule)
        c = rule.check
        value: ir.Value = t[field]
        extra: dict[str, ir.Value] = {}
        if isinstance(c, Required):
            if c.procedure_types:
                if self.procedure_types is None:
                    raise RecordRuleError(f"规则 {rule.id} 需要手术操作代码表")
                types = self.procedure_types
                t = t.left_join(types, t.procedure_code == types.code)
                value = t[field]
            present = _present(t[field])
            for other in c.also:
                present = present | _present(t[other])
            bad = ~present
            if c.procedure_types:
                bad = bad & t.procedure_type.isin(c.procedure_types)
            for name, below in c.when_below.items():
                bad = bad & (t[name] < below)
                value = t[name]
        elif isinstance(c, Range):
            bad = ibis.literal(False)
            if c.min is not None:
                bad = bad | (value < c.min)
            if c.max is not None:
                bad = bad | (value > c.max)
        elif isinstance(c, ListRange):
            items = value.re_replace(r"[，,;；、\s]+", ",").strip().split(",")
            wrong = items.filter(
                lambda x: (
                    x.try_cast("float64").isnull()
                    | (x.try_cast("float64") < c.min)
                    | (x.try_cast("float64") > c.max)
                )
            )
            bad = _present(value) & (wrong.length() > 0)
        elif isinstance(c, WithinStay):
            if value.type().is_date():
                admit, discharge = t._admit.date(), t._discharge.date()
            else:
                admit, discharge = t._admit, t._discharge
            bad = (value < admit) | (value > discharge)
        elif isinstance(c, Order):
            bad = value < t[c.first]
        elif isinstance(c, DurationWithinStay):
            parts = [t[c.days], t[c.hours], t[c.minutes]]
            given = parts[0].notnull() | parts[1].notnull() | parts[2].notnull()
            minutes = (
                parts[0].fill_null(0).cast("int64") * 1440
                + parts[1].fill_null(0).cast("int64") * 60
                + parts[2].fill_null(0).cast("int64")
            )
            stay = t._discharge.delta(t._admit, unit="minute").cast("int64")
            bad = given & (minutes > stay)
            value, extra = minutes, {"limit": stay}
        elif isinstance(c, ChildCount):
            child = self.tables[c.child]
            for name, want in c.where.items():
                # a diagnosis row without DIAG_TYPE counts as western
                default = "wm" if name == "diagnosis_kind" else ""
                child = child.filter(child[name].fill_null(default) == want)
            counts = child.group_by(_c=child.case_id).aggregate(_count=child.count())
            t = t.left_join(counts, t.case_id == counts._c)
            count = t._count.fill_null(0)
            t = t.mutate(_bad=count != c.equals, _v=count)
            return self._emit(rule, field, t.filter(t._bad), t._v, {"count": t._v})
        elif isinstance(c, PairComplete):
            child = self.tables[c.child]
            first, second = c.pair
            counts = child.group_by(_c=child.case_id).aggregate(
                _a=(child[c.field] == first).sum(), _b=(child[c.field] == second).sum()
            )
            t = t.left_join(counts, t.case_id == counts._c)
            a, b = t._a.fill_null(0), t._b.fill_null(0)
            t = t.mutate(_bad=(a > 0) != (b > 0), _fa=a, _fb=b)
            return self._emit(
                rule, field, t.filter(t._bad), t[field], {"first": t._fa, "second": t._fb}
            )
        else:  # pragma: no cover - the model admits no other check
            raise RecordRuleError(f"规则 {rule.id}：未知检查 {c}")
        t = t.mutate(
            _bad=bad.fill_null(False), _v=value, **{f"_x_{k}": v for k, v in extra.items()}
        )
        t = t.filter(t._bad)
        return self._emit(rule, field, t, t._v, {k: t[f"_x_{k}"] for k in extra})

    def _emit(
        self,
        rule: RecordRule,
        field: str,
        t: ir.Table,
        value: ir.Value,
        extra: dict[str, ir.Value],
    ) -> ir.Table:
        contract = RECORD_TYPES[rule.record]
        code = t[CODE_COLUMNS[rule.record]]
        parts = {"value": value, "label": ibis.literal(contract.column(field).label), "code": code}
        parts.update(extra)
        message = _render(rule.message, parts)
        if rule.record in RECORD_NOUNS:
            position = ibis.literal(f"{RECORD_NOUNS[rule.record]}第").concat(
                t._n.cast("string"), ibis.literal("条：")
            )
            message = position.concat(message)
        out = t.select(
            case_id=t.case_id,
            hospital_id=t._hospital,
            rule_id=ibis.literal(rule.id),
            level=ibis.literal(rule.level),
            field=ibis.literal(f"{rule.record}.{field}"),
            value=_text(value),
            message=message,
        )
        return out.cast({name: "string" for name in out.columns})


def record_findings(
    con: BaseBackend,
    records: dict[str, pa.Table],
    rules: RecordRuleSet | None = None,
    procedures: pa.Table | None = None,
) -> ir.Table:
    """Findings (QC_FINDINGS schema, field = 'record.field') of the record tables (the
    contracts of `opendip.contract.settlement`; missing record types count as empty)."""
    rules = rules or load_record_rules()
    tables: dict[str, ir.Table] = {}
    for name, contract in RECORD_TYPES.items():
        table = records.get(name)
        table = contract.conform(table) if table is not None else contract.empty()
        seq = pa.array(range(table.num_rows), pa.int64())
        tables[name] = table_from_arrow(con, table.append_column("_seq", seq), f"qc_rec_{name}")
    types = None
    if procedures is not None:
        types = table_from_arrow(
            con, procedures.select(["code", "procedure_type"]), "qc_rec_procedure_types"
        )
    compiler = _Compiler(tables, types)
    parts = [compiler.findings(rule, f) for rule in rules.rules for f in rule.fields]
    union = reduce(lambda a, b: a.union(b), parts)
    return union.order_by(["case_id", "rule_id", "field", "message"])


def check_records(
    records: dict[str, pa.Table],
    rules: RecordRuleSet | None = None,
    procedures: pa.Table | None = None,
    case_id: str | None = None,
) -> pa.Table:
    """Findings as Arrow, for a whole import or (with `case_id`) one list: the same rules
    compiled the same way, so one case's answer equals its rows of the batch answer."""
    if case_id is not None:
        records = {
            name: t.filter(pa.compute.equal(t["case_id"], case_id)) for name, t in records.items()
        }
    con = connect()
    return QC_FINDINGS.conform(record_findings(con, records, rules, procedures).to_pyarrow())
