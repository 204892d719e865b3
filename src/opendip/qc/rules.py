"""QC rule sets as data: a versioned YAML file of rules built from a few primitives.

A rule file::

    version: "2026.1"
    name: 默认质控规则集
    extends: default            # optional: start from another rule set (same id replaces)
    rules:
      - id: QC-DX-002
        name: 主要诊断不可作为主要诊断
        level: error            # error 错误 (blocks grouping) / warning 警告 / info 提示
        field: main_diagnosis   # or fields: [a, b]
        message: "主要诊断 {value}（{name}）不能作为主要诊断"
        check: {type: code_flag, table: diagnosis, flag: valid_as_main}
        when: {not_null: [main_diagnosis]}     # optional precondition

Check types (`check.type`): required, in_set, regex, range, compare, sum_equals,
in_code_table, code_flag, unique, list_no_duplicates, conditional. Conditions (`when`,
`if`, `then`) are one-key mappings: not_null, is_null, not_empty, in_set, compare,
any_prefix, all, any, not. Operands: a field name, `{value: x}`, `{param: name}` (a
`qc.` policy parameter, or `run_date`), `{days_between: [from, to], same_day: operand}`.
Amounts compared with money fields are written in yuan; a range's min/max and a sum_equals
tolerance are constants or parameters, never fields. Nothing here is ever `eval`-ed:
each primitive is compiled to an Ibis expression (batch) and to a Python function
(single case) by `opendip.qc.batch` / `opendip.qc.single`.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from opendip.policy.sections.qc import QcPolicy
from opendip.qc.fields import FIELD_KINDS, Kind

PACKAGED_DIR = Path(__file__).resolve().parent.parent / "data" / "qc"
LEVELS = ("error", "warning", "info")
LEVEL_LABELS = {"error": "错误", "warning": "警告", "info": "提示"}
_LEVEL_ALIASES = {v: k for k, v in LEVEL_LABELS.items()}
OPS = ("==", "!=", "<", "<=", ">", ">=")
CHECK_TYPES = (
    "required",
    "in_set",
    "regex",
    "range",
    "compare",
    "sum_equals",
    "in_code_table",
    "code_flag",
    "unique",
    "list_no_duplicates",
    "conditional",
)
CONDITION_KINDS = (
    "not_null",
    "is_null",
    "not_empty",
    "in_set",
    "compare",
    "any_prefix",
    "all",
    "any",
    "not",
)
#: Parameters a rule may name: the qc policy section's numbers, and the run date.
PARAMS = frozenset(
    {
        n
        for n in QcPolicy.model_fields
        if n not in ("rule_set", "disabled_rules", "front_page_rule_set")
    }
    | {"run_date"}
)
_RULE_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
#: Regex features the batch engines (RE2 in DuckDB, Java in Spark) do not share with Python.
_UNPORTABLE_REGEX = re.compile(r"\(\?[=!<]|\(\?P|\\[1-9]|\\[AZz]|\(\?[aiLmsux]")


class RuleSetError(ValueError):
    """A rule file that cannot be used; `issues` lists every problem, each naming its rule."""

    def __init__(self, source: str, issues: list[str]) -> None:
        self.source = source
        self.issues = issues
        lines = "\n".join(f"  - {i}" for i in issues)
        super().__init__(f"质控规则文件 {source} 有 {len(issues)} 处错误：\n{lines}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- operands -----------------------------------------------------------------------------


def _operand_shorthand(value: Any) -> Any:
    """`admit_date` → {field: admit_date}; a bare number or date → {value: ...}."""
    if isinstance(value, str):
        return {"field": value}
    if isinstance(value, int | Decimal | float | dt.date) and not isinstance(value, bool):
        return {"value": value}
    return value


class Operand(_Model):
    """One side of a comparison: exactly one of field / value / param / days_between."""

    field: str | None = None
    value: Decimal | dt.date | str | None = None
    param: str | None = None
    #: [from, to]: whole days from the first date field to the second.
    days_between: tuple[str, str] | None = None
    #: With days_between: the day count of a same-day stay (usually `{param: same_day_los}`).
    same_day: OperandRef | None = None

    @model_validator(mode="after")
    def _one(self) -> Operand:
        given = [
            k for k in ("field", "value", "param", "days_between") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError("操作数须且只能是 field / value / param / days_between 之一")
        if self.same_day is not None and self.days_between is None:
            raise ValueError("same_day 只能与 days_between 一起使用")
        return self

    def fields(self) -> list[str]:
        out = [self.field] if self.field else list(self.days_between or ())
        return out + (self.same_day.fields() if self.same_day else [])

    def kind(self) -> Kind | None:
        """The operand's own kind (None for literals and parameters: typed by the other side)."""
        if self.field:
            return FIELD_KINDS.get(self.field)
        if self.days_between:
            return "int"
        return None


OperandRef = Annotated[Operand, BeforeValidator(_operand_shorthand)]
Operand.model_rebuild()
Op = Literal["==", "!=", "<", "<=", ">", ">="]


# --- conditions ---------------------------------------------------------------------------


def _fields_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _condition_shorthand(value: Any) -> Any:
    """{not_null: [a, b]} → {kind: not_null, fields: [a, b]} and so on."""
    if not isinstance(value, dict) or "kind" in value:
        return value
    if len(value) != 1:
        raise ValueError(
            f"条件须是只有一个键的映射（{'、'.join(CONDITION_KINDS)} 之一），得到 {value!r}"
        )
    ((kind, arg),) = value.items()
    if kind not in CONDITION_KINDS:
        raise ValueError(f"未知的条件 {kind!r}（可用：{'、'.join(CONDITION_KINDS)}）")
    if kind in ("not_null", "is_null"):
        return {"kind": kind, "fields": _fields_list(arg)}
    if kind == "not_empty":
        return {"kind": kind, "field": arg}
    if kind in ("all", "any"):
        return {"kind": kind, "items": arg}
    if kind == "not":
        return {"kind": kind, "item": arg}
    if not isinstance(arg, dict):
        raise ValueError(f"条件 {kind} 的参数须是映射，得到 {arg!r}")
    return {"kind": kind, **arg}


class NotNull(_Model):
    kind: Literal["not_null"]
    fields: list[str] = Field(min_length=1)


class IsNull(_Model):
    kind: Literal["is_null"]
    fields: list[str] = Field(min_length=1)


class NotEmpty(_Model):
    kind: Literal["not_empty"]
    field: str


class InSetCondition(_Model):
    kind: Literal["in_set"]
    field: str
    values: list[str] = Field(min_length=1)


class CompareCondition(_Model):
    kind: Literal["compare"]
    left: OperandRef
    op: Op
    right: OperandRef


class AnyPrefix(_Model):
    kind: Literal["any_prefix"]
    fields: Annotated[list[str], BeforeValidator(_fields_list)] = Field(min_length=1)
    prefixes: list[str] = Field(min_length=1)


class AllOf(_Model):
    kind: Literal["all"]
    items: list[ConditionRef] = Field(min_length=1)


class AnyOf(_Model):
    kind: Literal["any"]
    items: list[ConditionRef] = Field(min_length=1)


class Not(_Model):
    kind: Literal["not"]
    item: ConditionRef


Condition = (
    NotNull
    | IsNull
    | NotEmpty
    | InSetCondition
    | CompareCondition
    | AnyPrefix
    | AllOf
    | AnyOf
    | Not
)
ConditionRef = Annotated[
    Condition, Field(discriminator="kind"), BeforeValidator(_condition_shorthand)
]
for _m in (AllOf, AnyOf, Not):
    _m.model_rebuild()


def condition_fields(c: Condition) -> list[str]:
    if isinstance(c, NotNull | IsNull | AnyPrefix):
        return list(c.fields)
    if isinstance(c, NotEmpty | InSetCondition):
        return [c.field]
    if isinstance(c, CompareCondition):
        return c.left.fields() + c.right.fields()
    if isinstance(c, AllOf | AnyOf):
        return [f for item in c.items for f in condition_fields(item)]
    return condition_fields(c.item)


def compare_conditions(c: Condition) -> list[CompareCondition]:
    """Every comparison inside a condition."""
    if isinstance(c, CompareCondition):
        return [c]
    if isinstance(c, AllOf | AnyOf):
        return [p for item in c.items for p in compare_conditions(item)]
    if isinstance(c, Not):
        return compare_conditions(c.item)
    return []


def _condition_operands(c: Condition) -> list[tuple[Operand, Operand]]:
    return [(p.left, p.right) for p in compare_conditions(c)]


# --- checks -------------------------------------------------------------------------------


class Required(_Model):
    type: Literal["required"]


class InSet(_Model):
    type: Literal["in_set"]
    values: list[str] = Field(min_length=1)


class Regex(_Model):
    type: Literal["regex"]
    pattern: str


class Range(_Model):
    type: Literal["range"]
    min: OperandRef | None = None
    max: OperandRef | None = None


class Compare(_Model):
    type: Literal["compare"]
    left: OperandRef
    op: Op
    right: OperandRef


class SumEquals(_Model):
    type: Literal["sum_equals"]
    parts: list[str] = Field(min_length=2)
    total: str
    tolerance: OperandRef | None = None


class InCodeTable(_Model):
    type: Literal["in_code_table"]
    table: Literal["diagnosis", "procedure"]


class CodeFlag(_Model):
    type: Literal["code_flag"]
    table: Literal["diagnosis", "procedure"]
    #: valid_as_main: the code may not be a main diagnosis; sex: the code's sex restriction
    #: differs from the case's sex (1/2); age: the case's age in days lies outside the code's
    #: [age_min_days, age_max_days].
    flag: Literal["valid_as_main", "sex", "age"]


class Unique(_Model):
    type: Literal["unique"]


class ListNoDuplicates(_Model):
    type: Literal["list_no_duplicates"]


class Conditional(_Model):
    type: Literal["conditional"]
    if_: ConditionRef = Field(alias="if")
    then: ConditionRef


Check = Annotated[
    Required
    | InSet
    | Regex
    | Range
    | Compare
    | SumEquals
    | InCodeTable
    | CodeFlag
    | Unique
    | ListNoDuplicates
    | Conditional,
    Field(discriminator="type"),
]

#: Extra message placeholders each check provides (besides value, field, label, case fields).
CHECK_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "range": ("min", "max"),
    "compare": ("left", "right"),
    "sum_equals": ("sum", "total"),
    "in_set": ("allowed",),
    "code_flag": ("name",),
}


def _level(value: Any) -> Any:
    if isinstance(value, str):
        return _LEVEL_ALIASES.get(value.strip(), value.strip())
    return value


class Rule(_Model):
    """One QC rule."""

    id: str
    name: str
    level: Annotated[Literal["error", "warning", "info"], BeforeValidator(_level)]
    fields: Annotated[list[str], BeforeValidator(_fields_list)] = []
    message: str
    check: Check
    when: ConditionRef | None = None
    #: The kind of problem (e.g. unknown_code), for reports and measuring against labels.
    category: str | None = None
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _field_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "field" in data:
            if "fields" in data:
                raise ValueError("field 与 fields 只能写一个")
            data = {**data, "fields": data["field"]}
            del data["field"]
        return data

    @model_validator(mode="after")
    def _semantics(self) -> Rule:
        problems = rule_problems(self)
        if problems:
            raise ValueError("；".join(problems))
        return self

    @property
    def level_label(self) -> str:
        return LEVEL_LABELS[self.level]

    def finding_fields(self) -> list[str]:
        """The field each finding names: one per `fields` entry for per-field checks."""
        c = self.check
        if self.fields:
            if isinstance(c, ListNoDuplicates):
                return ["+".join(self.fields)]
            if isinstance(c, Compare | SumEquals | Conditional | Unique):
                return [self.fields[0]]
            return list(self.fields)
        if isinstance(c, Compare):
            return [c.left.fields()[0]]
        return [c.total]  # SumEquals (others need fields; checked by rule_problems)


def _placeholders(template: str) -> tuple[list[str], str | None]:
    """Placeholder names of a message template, or an error text."""
    names = []
    try:
        for _, name, spec, conversion in string.Formatter().parse(template):
            if name is None:
                continue
            if spec or conversion or not name.isidentifier():
                return (
                    [],
                    f"消息模板中的占位符 {{{name}}} 无效（只能写 {{字段名}}，不能带格式或下标）",
                )
            names.append(name)
    except ValueError as exc:
        return [], f"消息模板格式错误（{exc}）；花括号请写成 {{{{ 和 }}}}"
    return names, None


def _kind_problems(rule: Rule) -> list[str]:
    """Fields exist and have a kind the check can work on."""
    c = rule.check
    out = []
    used = list(rule.fields)
    if isinstance(c, SumEquals):
        used += [*c.parts, c.total]
    if isinstance(c, Compare):
        used += c.left.fields() + c.right.fields()
    if isinstance(c, Range):
        used += [f for o in (c.min, c.max) if o for f in o.fields()]
    if isinstance(c, SumEquals) and c.tolerance:
        used += c.tolerance.fields()
    if isinstance(c, Conditional):
        used += condition_fields(c.if_) + condition_fields(c.then)
    if rule.when:
        used += condition_fields(rule.when)
    unknown = sorted({f for f in used if f not in FIELD_KINDS})
    if unknown:
        return [f"未知字段 {'、'.join(unknown)}（须是结算清单数据契约中的列名）"]

    def kinds(names: list[str], allowed: tuple[str, ...], what: str) -> None:
        for f in names:
            if FIELD_KINDS[f] not in allowed:
                out.append(f"字段 {f} 是 {FIELD_KINDS[f]} 类型，{what}")

    needs_fields = not isinstance(c, Compare | SumEquals)
    if needs_fields and not rule.fields:
        out.append(f"{c.type} 检查须指定 field/fields")
    if isinstance(c, InSet | Regex | InCodeTable | CodeFlag | ListNoDuplicates):
        kinds(rule.fields, ("string", "list"), f"{c.type} 只能检查文本或文本列表字段")
    if isinstance(c, Range):
        kinds(rule.fields, ("int", "money", "date"), "range 只能检查数值、金额或日期字段")
        if c.min is None and c.max is None:
            out.append("range 须至少给出 min 或 max")
        for o in (c.min, c.max):
            if o is not None and o.fields():
                out.append("range 的 min/max 只能是常数或政策参数（比较两个字段请用 compare）")
    if isinstance(c, SumEquals):
        kinds([*c.parts, c.total], ("int", "money"), "sum_equals 只能相加数值或金额字段")
        if c.tolerance is not None and c.tolerance.fields():
            out.append("sum_equals 的 tolerance 只能是常数或政策参数")
    if isinstance(c, Unique):
        if len(rule.fields) != 1:
            out.append("unique 须且只能指定一个字段")
        kinds(rule.fields, ("string", "int", "date"), "unique 不能用于列表字段")
    if isinstance(c, CodeFlag) and c.table == "procedure" and c.flag in ("valid_as_main", "age"):
        out.append(f"手术操作代码表没有 {c.flag} 标志（只能检查 sex）")
    pairs: list[tuple[Operand, Operand]] = []
    if isinstance(c, Compare):
        pairs.append((c.left, c.right))
    if isinstance(c, Conditional):
        pairs += _condition_operands(c.if_) + _condition_operands(c.then)
    if rule.when:
        pairs += _condition_operands(rule.when)
    for left, right in pairs:
        lk, rk = left.kind(), right.kind()
        if lk is None and rk is None:
            out.append("比较的两边至少有一边须是字段或 days_between")
        elif lk and rk and {lk, rk} != {lk} and {lk, rk} != {"int", "money"}:
            out.append(f"不能比较 {lk} 与 {rk}（{left.fields() or '常数'} 与 {right.fields()}）")
        elif "list" in (lk, rk):
            out.append("compare 不能用于列表字段")
    for o in _all_operands(rule):
        if o.param is not None and o.param not in PARAMS:
            out.append(f"未知的政策参数 {o.param}（可用：{'、'.join(sorted(PARAMS))}）")
        if o.days_between:
            kinds(list(o.days_between), ("date",), "days_between 只能用于日期字段")
    return out


def _all_operands(rule: Rule) -> list[Operand]:
    c = rule.check
    out: list[Operand] = []
    if isinstance(c, Compare):
        out += [c.left, c.right]
    if isinstance(c, Range):
        out += [o for o in (c.min, c.max) if o]
    if isinstance(c, SumEquals) and c.tolerance:
        out.append(c.tolerance)
    conditions = ([c.if_, c.then] if isinstance(c, Conditional) else []) + (
        [rule.when] if rule.when else []
    )
    for cond in conditions:
        out += [o for pair in _condition_operands(cond) for o in pair]
    return out + [o.same_day for o in out if o.same_day]


def rule_problems(rule: Rule) -> list[str]:
    """Everything wrong with a parsed rule (empty when it is usable)."""
    out = []
    if not _RULE_ID.match(rule.id):
        out.append(f"规则编号 {rule.id!r} 格式不符（应如 QC-DX-001：大写字母、数字与连字符）")
    c = rule.check
    if isinstance(c, Regex):
        try:
            re.compile(c.pattern)
        except re.error as exc:
            out.append(f"正则表达式 {c.pattern!r} 无效（{exc}）")
        else:
            if _UNPORTABLE_REGEX.search(c.pattern):
                out.append(
                    f"正则表达式 {c.pattern!r} 使用了批处理引擎不支持的写法"
                    "（前后查找、反向引用、命名组、内联标志、\\A \\Z）"
                )
    out += _kind_problems(rule)
    names, error = _placeholders(rule.message)
    if error:
        out.append(error)
    allowed = {"value", "field", "label", *FIELD_KINDS, *CHECK_PLACEHOLDERS.get(c.type, ())}
    bad = sorted({n for n in names if n not in allowed})
    if bad:
        extra = CHECK_PLACEHOLDERS.get(c.type, ())
        out.append(
            f"消息模板中的占位符 {'、'.join('{' + b + '}' for b in bad)} 未知"
            f"（可用：{{value}} {{label}} {{field}}、结算清单字段名"
            + (f"、{'、'.join('{' + e + '}' for e in extra)}" if extra else "")
            + "）"
        )
    return out


# --- rule sets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSet:
    """A versioned, validated list of rules (in file order)."""

    version: str
    name: str
    rules: tuple[Rule, ...]
    source: str = ""
    #: version of each rule set this one extends, outermost last
    lineage: tuple[str, ...] = field(default=())

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.rules]

    def without(self, disabled: list[str] | tuple[str, ...]) -> RuleSet:
        """The rule set with some rules switched off; unknown ids are an error (a typo must
        not leave a rule silently on)."""
        unknown = sorted(set(disabled) - set(self.ids))
        if unknown:
            raise RuleSetError(
                self.source,
                [
                    f"qc.disabled_rules 中的规则 {u} 不在规则集 {self.name}（{self.version}）中"
                    for u in unknown
                ],
            )
        keep = tuple(r for r in self.rules if r.id not in set(disabled))
        return RuleSet(self.version, self.name, keep, self.source, self.lineage)


class _DecimalLoader(yaml.SafeLoader):
    """Safe YAML loader reading floats as exact Decimals."""


_DecimalLoader.add_constructor(
    "tag:yaml.org,2002:float",
    lambda loader, node: Decimal(loader.construct_scalar(node).replace("_", "")),  # type: ignore[arg-type]
)

_ZH = {
    "missing": "缺少必填项",
    "extra_forbidden": "未知的键（可能拼写错误）",
    "literal_error": "取值必须是 {expected} 之一",
    "union_tag_invalid": "未知的类型 {tag}（可用：{expected_tags}）",
    "union_tag_not_found": "缺少 {discriminator}",
    "string_type": "必须是文本",
    "list_type": "必须是列表",
    "too_short": "至少需要 {min_length} 项",
    "model_type": "必须是映射（键: 值）",
    "model_attributes_type": "必须是映射（键: 值）",
    "decimal_parsing": "必须是数字",
}


def _issue_text(rule_ref: str, err: dict[str, Any]) -> str:
    loc = ".".join(
        str(p) for p in err["loc"] if not (isinstance(p, str) and ("[" in p or "function-" in p))
    )
    ctx = err.get("ctx") or {}
    if err["type"] == "value_error":
        text = str(ctx.get("error", err["msg"]))
    else:
        template = _ZH.get(err["type"])
        try:
            text = template.format(**ctx) if template else err["msg"]
        except (KeyError, IndexError):
            text = template or err["msg"]
        if err["type"] not in ("missing",) and not isinstance(err.get("input"), dict | list):
            text += f"（当前值: {err.get('input')!r}）"
    where = f" {loc}" if loc else ""
    return f"{rule_ref}{where}: {text}"


def parse_rules(tree: Any, source: str = "<rules>") -> tuple[list[Rule], list[str]]:
    """Validate each rule of a parsed file; (rules, problems), problems naming their rule."""
    issues: list[str] = []
    raw = tree.get("rules") if isinstance(tree, dict) else None
    if not isinstance(raw, list):
        return [], ["rules 必须是规则列表"]
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for number, item in enumerate(raw, start=1):
        rule_id = item.get("id") if isinstance(item, dict) else None
        ref = f"规则 {rule_id}" if rule_id else f"第 {number} 条规则"
        if not isinstance(item, dict):
            issues.append(f"{ref}: 必须是映射（键: 值）")
            continue
        try:
            rule = Rule.model_validate(item)
        except ValidationError as exc:
            issues += [_issue_text(ref, e) for e in exc.errors()]
            continue
        if rule.id in seen:
            issues.append(f"{ref}: 规则编号与第 {seen[rule.id]} 条规则重复")
            continue
        seen[rule.id] = number
        rules.append(rule)
    return rules, issues


def _resolve_path(name: str, base_dir: Path | None) -> Path:
    if "/" not in name and "\\" not in name and not name.endswith((".yaml", ".yml")):
        return PACKAGED_DIR / f"{name}-rules.yaml"
    path = Path(name)
    return path if path.is_absolute() or base_dir is None else base_dir / path


def load_rule_set(
    name_or_path: str | Path = "default", base_dir: Path | None = None, _depth: int = 0
) -> RuleSet:
    """Read and validate a rule set: a packaged name ("default") or a YAML file (relative
    paths resolve against `base_dir`, e.g. the policy file's folder). Raises RuleSetError."""
    path = _resolve_path(str(name_or_path), base_dir)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleSetError(source, [f"无法读取规则文件（{exc.strerror or exc}）"]) from exc
    try:
        tree = yaml.load(text, Loader=_DecimalLoader)  # a SafeLoader: no objects, no code
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"第 {mark.line + 1} 行第 {mark.column + 1} 列" if mark else ""
        raise RuleSetError(source, [f"YAML 语法错误 {where}: {exc}"]) from exc
    if not isinstance(tree, dict):
        raise RuleSetError(source, ["文件顶层必须是映射（version / name / rules）"])
    issues = []
    unknown = sorted(set(tree) - {"version", "name", "description", "extends", "rules"})
    if unknown:
        issues.append(f"文件顶层有未知的键 {'、'.join(unknown)}")
    version = tree.get("version")
    if version is None or str(version).strip() == "":
        issues.append("缺少 version（规则集版本号）")
    rules, problems = parse_rules(tree, source)
    issues += problems
    if issues:
        raise RuleSetError(source, issues)
    lineage: tuple[str, ...] = ()
    if tree.get("extends"):
        if _depth > 5:
            raise RuleSetError(source, ["extends 嵌套过深（是否循环引用？）"])
        base = load_rule_set(str(tree["extends"]), path.parent, _depth + 1)
        mine = {r.id: r for r in rules}
        merged = [mine.pop(r.id, r) for r in base.rules]
        rules = merged + [r for r in rules if r.id in mine]
        lineage = (*base.lineage, f"{base.name} {base.version}")
    return RuleSet(str(version), str(tree.get("name") or path.stem), tuple(rules), source, lineage)


def rules_for_policy(policy: Any, policy_path: str | Path | None = None) -> RuleSet:
    """The rule set a policy names (`qc.rule_set`, relative to the policy file)."""
    base = Path(policy_path).resolve().parent if policy_path else None
    return load_rule_set(policy.qc.rule_set, base)


__all__ = [
    "CHECK_TYPES",
    "LEVELS",
    "LEVEL_LABELS",
    "PARAMS",
    "Condition",
    "Operand",
    "Rule",
    "RuleSet",
    "RuleSetError",
    "load_rule_set",
    "parse_rules",
    "rule_problems",
    "rules_for_policy",
]
