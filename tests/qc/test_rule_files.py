"""Rule files: loading, extending, and a clear error for every kind of bad rule."""

from __future__ import annotations

import datetime as dt

import pytest

from opendip.qc import RuleSetError, check_case, load_rule_set, rules_for_policy
from opendip.qc.context import QcContext
from tests.conftest import policy_with
from tests.qc.conftest import CODES, RUN_DATE, clean_case, rules_from, write_rules

GOOD = {
    "id": "QC-T-001",
    "name": "测试",
    "level": "error",
    "field": "department",
    "message": "{label} 为空",
    "check": {"type": "required"},
}


def bad(tmp_path, **changes) -> str:
    rule = {**GOOD, **changes}
    for k in [k for k, v in rule.items() if v is None]:
        del rule[k]
    path = write_rules(tmp_path, {"version": "1", "rules": [rule]})
    with pytest.raises(RuleSetError) as info:
        load_rule_set(path)
    return str(info.value)


def test_default_rule_set_loads_with_version_and_unique_ids():
    rules = load_rule_set("default")
    assert rules.version == "2026.1"
    assert len(rules.ids) == len(set(rules.ids)) >= 30
    assert all(r.name and r.message for r in rules.rules)


def test_good_rule_file_loads(tmp_path):
    path = write_rules(tmp_path, {"version": "9", "name": "区规则", "rules": [GOOD]})
    rules = load_rule_set(path)
    assert (rules.version, rules.name, rules.ids) == ("9", "区规则", ["QC-T-001"])
    assert rules.rules[0].level_label == "错误"


def test_chinese_level_names_are_accepted(tmp_path):
    path = write_rules(tmp_path, {"version": "1", "rules": [{**GOOD, "level": "警告"}]})
    assert load_rule_set(path).rules[0].level == "warning"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"check": {"type": "eval_python"}}, "check: 未知的类型 eval_python"),
        ({"field": "no_such_column"}, "未知字段 no_such_column"),
        ({"level": "fatal"}, "level: 取值必须是 'error', 'warning' or 'info' 之一"),
        ({"check": {"type": "regex", "pattern": "([A-Z"}}, "正则表达式 '([A-Z' 无效"),
        ({"check": {"type": "regex", "pattern": "^(?=K)"}}, "批处理引擎不支持"),
        ({"message": "{nope} 为空"}, "占位符 {nope} 未知"),
        ({"message": "{value!r}"}, "占位符 {value} 无效"),
        ({"message": "{value"}, "消息模板格式错误"),
        ({"id": "qc_lower_1"}, "规则编号 'qc_lower_1' 格式不符"),
        ({"name": None}, "name: 缺少必填项"),
        ({"check": {"type": "required", "extra": 1}}, "未知的键"),
        ({"check": {"type": "range"}, "field": "age"}, "range 须至少给出 min 或 max"),
        ({"check": {"type": "range", "max": 5}}, "range 只能检查数值、金额或日期字段"),
        ({"check": {"type": "in_set", "values": ["1"]}, "field": "age"}, "in_set 只能检查文本"),
        (
            {"check": {"type": "compare", "left": "admit_date", "op": "<=", "right": "age"}},
            "不能比较 date 与 int",
        ),
        (
            {"check": {"type": "compare", "left": "age", "op": "=~", "right": 1}},
            "check.compare.op",
        ),
        (
            {"check": {"type": "range", "max": {"param": "no_such"}}, "field": "age"},
            "未知的政策参数 no_such",
        ),
        (
            {
                "check": {"type": "code_flag", "table": "procedure", "flag": "age"},
                "field": "main_procedure",
            },
            "手术操作代码表没有 age 标志",
        ),
        (
            {"check": {"type": "unique"}, "field": None, "fields": ["case_id", "hospital_id"]},
            "unique 须且只能指定一个字段",
        ),
        ({"fields": ["age"]}, "field 与 fields 只能写一个"),
        ({"when": {"maybe": ["age"]}}, "未知的条件 'maybe'"),
        ({"when": {"not_null": ["age"], "is_null": ["age"]}}, "只有一个键"),
        (
            {"check": {"type": "range", "max": {"field": "age", "value": 3}}, "field": "age"},
            "操作数须且只能是",
        ),
        (
            {"check": {"type": "range", "max": {"field": "icu_days"}}, "field": "los_days"},
            "range 的 min/max 只能是常数或政策参数",
        ),
        (  # the single path reads a tolerance as a constant: a field there is refused
            {
                "check": {
                    "type": "sum_equals",
                    "parts": ["fee_bed", "fee_surgery"],
                    "total": "total_cost",
                    "tolerance": {"field": "fee_other"},
                },
                "field": "total_cost",
            },
            "sum_equals 的 tolerance 只能是常数或政策参数",
        ),
    ],
)
def test_bad_rule_is_named_with_what_is_wrong(tmp_path, changes, expected):
    message = bad(tmp_path, **changes)
    assert "QC-T-001" in message or "qc_lower_1" in message
    assert expected in message


def test_every_problem_is_listed_and_duplicates_named(tmp_path):
    rules = [GOOD, GOOD, {**GOOD, "id": "QC-T-002", "level": "x"}, "not a mapping"]
    path = write_rules(tmp_path, {"version": "1", "rules": rules})
    with pytest.raises(RuleSetError) as info:
        load_rule_set(path)
    issues = info.value.issues
    assert any("规则 QC-T-001: 规则编号与第 1 条规则重复" in i for i in issues)
    assert any(i.startswith("规则 QC-T-002 level") for i in issues)
    assert any(i.startswith("第 4 条规则") for i in issues)
    assert str(path) in str(info.value)


def test_file_level_problems(tmp_path):
    path = write_rules(tmp_path, {"rules": [GOOD], "typo": 1})
    with pytest.raises(RuleSetError, match="缺少 version") as info:
        load_rule_set(path)
    assert any("未知的键 typo" in i for i in info.value.issues)
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nrules: [\n", encoding="utf-8")
    with pytest.raises(RuleSetError, match="YAML 语法错误 第"):
        load_rule_set(broken)
    with pytest.raises(RuleSetError, match="无法读取规则文件"):
        load_rule_set(tmp_path / "missing.yaml")
    with pytest.raises(RuleSetError, match="rules 必须是规则列表"):
        load_rule_set(write_rules(tmp_path, {"version": "1", "rules": {"a": 1}}, "r2.yaml"))


def test_parameter_of_wrong_type_is_an_error_at_run_time():
    rules = rules_from(
        {**GOOD, "field": "age", "check": {"type": "range", "max": {"param": "run_date"}}}
    )
    with pytest.raises(
        RuleSetError, match=r"规则 QC-T-001: 政策参数 qc\.run_date 的值 .* 不是整数"
    ):
        QcContext(rules, policy_with({"qc.run_date": RUN_DATE}))


def test_a_constant_of_the_wrong_kind_is_refused_when_the_run_starts_on_either_side():
    """Every constant of a compare is converted once before any case is checked, the right
    operand as well as the left: a bad rule fails the whole run up front, naming itself."""
    pol = policy_with({"qc.run_date": RUN_DATE})
    for left, right in (
        ("age", {"param": "run_date"}),
        ({"param": "run_date"}, "age"),
        ("admit_date", {"value": "明天"}),
    ):
        rules = rules_from(
            {
                **GOOD,
                "field": "age",
                "check": {"type": "compare", "left": left, "op": "<=", "right": right},
            }
        )
        with pytest.raises(RuleSetError) as info:
            QcContext(rules, pol)
        issue = "不是日期 YYYY-MM-DD" if left == "admit_date" else "不是整数"
        assert len(info.value.issues) == 1
        assert info.value.issues[0].startswith("规则 QC-T-001: ")
        assert info.value.issues[0].endswith(issue)


def test_unknown_disabled_rule_is_an_error():
    pol = policy_with({"qc.run_date": RUN_DATE, "qc.disabled_rules": ["QC-NOPE-001"]})
    with pytest.raises(RuleSetError, match="QC-NOPE-001 不在规则集"):
        check_case(clean_case(), CODES, load_rule_set(), pol)


def test_region_extends_default_replacing_and_adding_rules(tmp_path):
    mine = {
        "version": "2026.1-拉萨",
        "extends": "default",
        "rules": [
            {
                **GOOD,
                "id": "QC-REQ-003",
                "level": "error",
                "field": "birth_date",
                "message": "出生日期为空（本区为错误）",
            },
            {
                **GOOD,
                "id": "QC-LS-001",
                "name": "主诊医师代码格式",
                "field": "doctor_id",
                "message": "主诊医师代码 {value} 格式不符",
                "check": {"type": "regex", "pattern": "^D[0-9]{2}$"},
            },
        ],
    }
    policy_file = tmp_path / "region.yaml"
    rules_path = write_rules(tmp_path, mine, "lhasa-rules.yaml")
    pol = policy_with({"qc.run_date": RUN_DATE, "qc.rule_set": "lhasa-rules.yaml"})
    rules = rules_for_policy(pol, policy_file)
    assert rules.source == str(rules_path)
    base = load_rule_set()
    assert rules.ids == [*base.ids, "QC-LS-001"]
    assert rules.rule("QC-REQ-003").level == "error"
    assert rules.lineage == ("OpenDIP 默认质控规则集 2026.1",)
    found = check_case(clean_case(birth_date=None, doctor_id="X1"), CODES, rules, pol)
    assert [(f.rule_id, f.level, f.message) for f in found] == [
        ("QC-REQ-003", "error", "出生日期为空（本区为错误）"),
        ("QC-LS-001", "error", "主诊医师代码 X1 格式不符"),
    ]


def test_run_date_defaults_to_today_without_policy_value(monkeypatch):
    import types

    import opendip.qc.context as context

    class Today(dt.date):
        @classmethod
        def today(cls):
            return cls(2031, 5, 17)

    monkeypatch.setattr(context, "dt", types.SimpleNamespace(**{**vars(dt), "date": Today}))
    pol = policy_with({"qc.run_date": None})
    ctx = QcContext(load_rule_set(), pol)
    assert ctx.run_date == dt.date(2031, 5, 17)
    assert QcContext(load_rule_set(), pol, dt.date(2026, 1, 2)).run_date == dt.date(2026, 1, 2)


def test_a_money_constant_that_is_no_amount_is_refused_naming_the_rule_file():
    rules = rules_from(
        {**GOOD, "field": "total_cost", "check": {"type": "range", "max": {"value": "很多"}}}
    )
    with pytest.raises(RuleSetError) as info:
        QcContext(rules, policy_with({"qc.run_date": RUN_DATE}))
    assert info.value.source == rules.source
    assert info.value.issues == ["规则 QC-T-001: 常数 '很多' 的值 '很多' 不是金额（元）"]
    day = dt.date(2026, 1, 1)  # a date is no amount either (refused before the conversion)
    rules = rules_from(
        {**GOOD, "field": "total_cost", "check": {"type": "range", "max": {"value": day}}}
    )
    with pytest.raises(RuleSetError) as info:
        QcContext(rules, policy_with({"qc.run_date": RUN_DATE}))
    assert info.value.issues == [f"规则 QC-T-001: 常数 {day!r} 的值 {day!r} 不是金额（元）"]


def _compare_rule(rule_id: str, left: str, right: object) -> dict:
    return {
        **GOOD,
        "id": rule_id,
        "field": left,
        "check": {"type": "compare", "left": left, "op": "<=", "right": {"value": right}},
    }


def test_constants_are_converted_to_the_kind_of_the_field_they_meet():
    rules = rules_from(
        _compare_rule("QC-T-001", "admit_date", "2026-01-02"),  # text → date
        _compare_rule("QC-T-002", "age", "5"),  # text → int
        _compare_rule("QC-T-003", "age", 7.0),  # a whole Decimal → int
        _compare_rule("QC-T-004", "total_cost", "0.5"),  # yuan → fen
        _compare_rule("QC-T-005", "sex", "2"),  # text stays text
    )
    ctx = QcContext(rules, policy_with({"qc.run_date": RUN_DATE}))
    kinds = ["date", "int", "int", "money", "string"]
    got = [ctx.constant(r.check.right, k, r) for r, k in zip(rules.rules, kinds, strict=True)]
    assert got == [dt.date(2026, 1, 2), 5, 7, 50, "2"]
    assert [type(v) for v in got] == [dt.date, int, int, int, str]


def test_every_bad_constant_is_listed_when_the_run_starts():
    """Each problem of each rule is kept (not only the last), with the rule file's name; an
    integer must be a whole number written as one."""
    rules = rules_from(
        _compare_rule("QC-T-001", "age", "abc"),
        _compare_rule("QC-T-002", "age", 1.5),
        _compare_rule("QC-T-003", "los_days", "2.0"),  # a whole number: accepted
    )
    with pytest.raises(RuleSetError) as info:
        QcContext(rules, policy_with({"qc.run_date": RUN_DATE}))
    assert info.value.source == rules.source
    assert info.value.issues == [
        "规则 QC-T-001: 常数 'abc' 的值 'abc' 不是整数",
        "规则 QC-T-002: 常数 Decimal('1.5') 的值 Decimal('1.5') 不是整数",
    ]


def test_every_constant_position_is_checked_when_the_run_starts():
    """A bad constant anywhere in a rule (range bounds, tolerance, a same-day count, the
    conditions of a conditional and of `when`) fails QcContext, before any case is read."""
    bad_int = {"value": "x"}
    req = {"type": "required"}
    too_old = {"compare": {"left": "age", "op": ">", "right": bad_int}}
    rules = rules_from(
        {**GOOD, "id": "QC-T-001", "field": "age", "check": {"type": "range", "min": bad_int}},
        {**GOOD, "id": "QC-T-002", "field": "age", "check": {"type": "range", "max": bad_int}},
        {
            **GOOD,
            "id": "QC-T-003",
            "field": "total_cost",
            "check": {
                "type": "sum_equals",
                "parts": ["fee_bed", "fee_surgery"],
                "total": "total_cost",
                "tolerance": {"value": "y"},
            },
        },
        {
            **GOOD,
            "id": "QC-T-004",
            "field": "los_days",
            "check": {
                "type": "compare",
                "left": "los_days",
                "op": "==",
                "right": {"days_between": ["admit_date", "discharge_date"], "same_day": bad_int},
            },
        },
        {
            **GOOD,
            "id": "QC-T-005",
            "check": {"type": "conditional", "if": too_old, "then": {"not_null": ["age"]}},
        },
        {
            **GOOD,
            "id": "QC-T-006",
            "check": {"type": "conditional", "if": {"not_null": ["age"]}, "then": too_old},
        },
        {**GOOD, "id": "QC-T-007", "check": req, "when": {"not": too_old}},
    )
    with pytest.raises(RuleSetError) as info:
        QcContext(rules, policy_with({"qc.run_date": RUN_DATE}))
    assert info.value.issues == [
        "规则 QC-T-001: 常数 'x' 的值 'x' 不是整数",
        "规则 QC-T-002: 常数 'x' 的值 'x' 不是整数",
        "规则 QC-T-003: 常数 'y' 的值 'y' 不是金额（元）",
        "规则 QC-T-004: 常数 'x' 的值 'x' 不是整数",
        "规则 QC-T-005: 常数 'x' 的值 'x' 不是整数",
        "规则 QC-T-006: 常数 'x' 的值 'x' 不是整数",
        "规则 QC-T-007: 常数 'x' 的值 'x' 不是整数",
    ]
