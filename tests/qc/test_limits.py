"""Every QC check with a limit, at the limit and one step past it, on both sides.

Each scenario is one settlement list (the clean case with a few fields changed) run through
the batch query and the single-case checker (`Runner.both` asserts the two agree); the
expected findings are worked out by hand from the default rules and the demo policy
(qc.max_age_years 120, newborn weights 200–20000 g, newborn_age_days 28, max_los_days 365,
max_total_cost_yuan 5000000, same_day_los 1; run_date 2026-12-31 in these tests).
The clean case: admitted 2026-03-01, discharged 2026-03-06, 5 days, procedure 03-02, total
1000.00 yuan = fees 600 + 300 + 100 = fund 700 + copay 250 + self-pay 50.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from opendip.qc import load_rule_set
from tests.conftest import policy_with
from tests.qc.conftest import RUN_DATE, Runner, clean_case, rules_from

D = dt.date
NB = {"newborn_birth_weight_g": 3000, "newborn_admit_weight_g": 3000}
ZERO_COST = {
    "fee_surgery": 0,
    "fee_western_medicine": 0,
    "personal_copay": 0,
    "personal_selfpay": 0,
    "out_of_list_cost": 0,
}


def _big(total: int) -> dict:
    """A consistent case of `total` fen (fees and payments still add up)."""
    return {
        "total_cost": total,
        "fee_surgery": total - 40_000,
        "fund_paid": total - 30_000,
    }


#: name → (overrides, [(rule_id, field, value, message)])
LIMITS = {
    # range with literal limits: QC-AGE-005 age_days in 0–365
    "age_days_at_max": ({"age": 0, "age_days": 365}, []),
    "age_days_past_max": (
        {"age": 0, "age_days": 366},
        [("QC-AGE-005", "age_days", "366", "不足 1 周岁的年龄（天）366 超出 0–365")],
    ),
    "age_days_at_min": ({"age": 0, "age_days": 0, **NB}, []),
    "age_days_past_min": (
        {"age": 0, "age_days": -1, **NB},
        [("QC-AGE-005", "age_days", "-1", "不足 1 周岁的年龄（天）-1 超出 0–365")],
    ),
    # range with a parameter limit: QC-AGE-004 age in 0–max_age_years (120)
    "age_at_max": ({"age": 120}, []),
    "age_past_max": ({"age": 121}, [("QC-AGE-004", "age", "121", "年龄 121 岁超出 0–120 岁")]),
    "age_at_min": ({"age": 0}, []),
    "age_past_min": ({"age": -1}, [("QC-AGE-004", "age", "-1", "年龄 -1 岁超出 0–120 岁")]),
    # range with parameters on both sides: QC-AGE-003 newborn weights 200–20000 g
    "weights_at_limits": (
        {"age": 0, "age_days": 10, "newborn_birth_weight_g": 200, "newborn_admit_weight_g": 20000},
        [],
    ),
    "weights_past_limits": (
        {"age": 0, "age_days": 10, "newborn_birth_weight_g": 199, "newborn_admit_weight_g": 20001},
        [
            (
                "QC-AGE-003",
                "newborn_admit_weight_g",
                "20001",
                "新生儿入院体重(克) 20001 克超出 200–20000 克",
            ),
            (
                "QC-AGE-003",
                "newborn_birth_weight_g",
                "199",
                "新生儿出生体重(克) 199 克超出 200–20000 克",
            ),
        ],
    ),
    # compare with a parameter: QC-AGE-002 newborn when age_days < newborn_age_days (28)
    "newborn_at_limit": ({"age": 0, "age_days": 28}, []),
    "newborn_one_day_under": (
        {"age": 0, "age_days": 27},
        [
            (
                "QC-AGE-002",
                "newborn_admit_weight_g",
                None,
                "新生儿病例（年龄 27 天）未填写新生儿入院体重(克)",
            ),
            (
                "QC-AGE-002",
                "newborn_birth_weight_g",
                None,
                "新生儿病例（年龄 27 天）未填写新生儿出生体重(克)",
            ),
        ],
    ),
    # money range in yuan: QC-FEE-003 total cost in 0.01–5000000 yuan
    "cost_at_min": ({**ZERO_COST, "total_cost": 1, "fee_bed": 1, "fund_paid": 1}, []),
    "cost_past_min": (
        {**ZERO_COST, "total_cost": 0, "fee_bed": 0, "fund_paid": 0},
        [("QC-FEE-003", "total_cost", "0.00", "医疗总费用 0.00 元不在 0.01–5000000.00 元之间")],
    ),
    "cost_at_max": (_big(500_000_000), []),
    "cost_past_max": (
        _big(500_000_001),
        [
            (
                "QC-FEE-003",
                "total_cost",
                "5000000.01",
                "医疗总费用 5000000.01 元不在 0.01–5000000.00 元之间",
            )
        ],
    ),
    # money range min 0: QC-FEE-002 negative amounts
    "fee_at_zero": ({"fee_bed": 0, "fee_other": 10_000}, []),
    "fee_one_fen_negative": (
        {"fee_other": -1, "fee_bed": 10_001},
        [("QC-FEE-002", "fee_other", "-0.01", "其他费 -0.01 元为负数")],
    ),
    # range with a parameter maximum only: QC-LOS-002 stay of at most max_los_days (365)
    "stay_at_max": (
        {
            "admit_date": D(2025, 12, 31),
            "main_procedure_date": D(2026, 1, 1),
            "discharge_date": D(2026, 12, 31),
            "los_days": 365,
        },
        [],
    ),
    "stay_past_max": (
        {
            "admit_date": D(2025, 12, 30),
            "main_procedure_date": D(2026, 1, 1),
            "discharge_date": D(2026, 12, 31),
            "los_days": 366,
        },
        [("QC-LOS-002", "los_days", "366", "实际住院天数 366 超过 365 天，请核实")],
    ),
    # date window: QC-LOS-001 los = days between admission and discharge, same day = 1
    "same_day_counts_one": (
        {"admit_date": D(2026, 3, 6), "main_procedure_date": D(2026, 3, 6), "los_days": 1},
        [],
    ),
    "same_day_zero_is_wrong": (
        {"admit_date": D(2026, 3, 6), "main_procedure_date": D(2026, 3, 6), "los_days": 0},
        [("QC-LOS-001", "los_days", "0", "实际住院天数 0 与出入院日期计算的 1 天不符")],
    ),
    "los_one_short": (
        {"los_days": 4},
        [("QC-LOS-001", "los_days", "4", "实际住院天数 4 与出入院日期计算的 5 天不符")],
    ),
    "los_one_over": (
        {"los_days": 6},
        [("QC-LOS-001", "los_days", "6", "实际住院天数 6 与出入院日期计算的 5 天不符")],
    ),
    # compare with a date parameter: QC-DT-004 discharge on or before run_date (2026-12-31)
    "discharge_on_run_date": (
        {
            "admit_date": D(2026, 12, 26),
            "main_procedure_date": D(2026, 12, 27),
            "discharge_date": RUN_DATE,
        },
        [],
    ),
    "discharge_day_after_run_date": (
        {
            "admit_date": D(2026, 12, 27),
            "main_procedure_date": D(2026, 12, 28),
            "discharge_date": D(2027, 1, 1),
        },
        [
            (
                "QC-DT-004",
                "discharge_date",
                "2027-01-01",
                "出院日期 2027-01-01 晚于质控日期 2026-12-31",
            )
        ],
    ),
    # date order (compare of two fields)
    "admit_day_after_discharge": (
        {"admit_date": D(2026, 3, 7), "main_procedure_date": D(2026, 3, 6), "los_days": 1},
        [
            (
                "QC-DT-001",
                "admit_date",
                "2026-03-07",
                "入院日期 2026-03-07 晚于出院日期 2026-03-06",
            ),
            (
                "QC-DT-002",
                "main_procedure_date",
                "2026-03-06",
                "主要手术操作日期 2026-03-06 早于入院日期 2026-03-07",
            ),
        ],
    ),
    "procedure_on_admission_day": ({"main_procedure_date": D(2026, 3, 1)}, []),
    "procedure_day_before_admission": (
        {"main_procedure_date": D(2026, 2, 28)},
        [
            (
                "QC-DT-002",
                "main_procedure_date",
                "2026-02-28",
                "主要手术操作日期 2026-02-28 早于入院日期 2026-03-01",
            )
        ],
    ),
    "procedure_on_discharge_day": ({"main_procedure_date": D(2026, 3, 6)}, []),
    "procedure_day_after_discharge": (
        {"main_procedure_date": D(2026, 3, 7)},
        [
            (
                "QC-DT-003",
                "main_procedure_date",
                "2026-03-07",
                "主要手术操作日期 2026-03-07 晚于出院日期 2026-03-06",
            )
        ],
    ),
    "born_on_admission_day": (
        {"birth_date": D(2026, 3, 1), "age": 0, "age_days": 0, **NB},
        [],
    ),
    "born_day_after_admission": (
        {"birth_date": D(2026, 3, 2), "age": 0, "age_days": 0, **NB},
        [("QC-DT-005", "birth_date", "2026-03-02", "出生日期 2026-03-02 晚于入院日期 2026-03-01")],
    ),
    # compare of two numbers: QC-LOS-003 icu ≤ los; QC-FEE-004 out-of-list ≤ self-pay
    "icu_equals_stay": ({"icu_days": 5}, []),
    "icu_one_day_over": (
        {"icu_days": 6},
        [("QC-LOS-003", "icu_days", "6", "重症监护天数 6 超过实际住院天数 5")],
    ),
    "icu_negative": (
        {"icu_days": -1},
        [("QC-LOS-004", "icu_days", "-1", "重症监护天数 -1 为负数")],
    ),
    "out_of_list_equals_selfpay": ({"out_of_list_cost": 5_000}, []),
    "out_of_list_one_fen_over": (
        {"out_of_list_cost": 5_001},
        [("QC-FEE-004", "out_of_list_cost", "50.01", "目录外费用 50.01 元超过个人自费 50.00 元")],
    ),
    # code table age window: P07.300 up to 28 days; O80.000 from 4380 days (age × 365)
    "perinatal_code_at_28_days": (
        {"age": 0, "age_days": 28, "other_diagnoses": ["P07.300"], **NB},
        [],
    ),
    "perinatal_code_at_29_days": (
        {"age": 0, "age_days": 29, "other_diagnoses": ["P07.300"], **NB},
        [
            (
                "QC-AGE-001",
                "other_diagnoses",
                "P07.300",
                "其他诊断代码 P07.300（早产儿）与年龄不符（0 岁，不足 1 岁天数 29）",
            )
        ],
    ),
    "obstetric_code_at_12": ({"age": 12, "sex": "2", "other_diagnoses": ["O80.000"]}, []),
    "obstetric_code_at_11": (
        {"age": 11, "sex": "2", "other_diagnoses": ["O80.000"]},
        [
            (
                "QC-AGE-001",
                "other_diagnoses",
                "O80.000",
                "其他诊断代码 O80.000（单胎顺产）与年龄不符（11 岁，不足 1 岁天数 （空））",
            )
        ],
    ),
    # age in whole years only (age_days null) counts 365 days a year: J05.000 up to 5110 days
    "child_code_at_14_years": ({"age": 14, "other_diagnoses": ["J05.000"]}, []),
    "child_code_at_15_years": (
        {"age": 15, "other_diagnoses": ["J05.000"]},
        [
            (
                "QC-AGE-001",
                "other_diagnoses",
                "J05.000",
                "其他诊断代码 J05.000（急性阻塞性喉炎）与年龄不符（15 岁，不足 1 岁天数 （空））",
            )
        ],
    ),
    # sum_equals with tolerance 0: one fen either way is a finding
    "fees_sum_one_fen_short": (
        {"fee_bed": 9_999},
        [
            (
                "QC-FEE-001",
                "total_cost",
                "1000.00",
                "费用分类合计 999.99 元不等于医疗总费用 1000.00 元",
            )
        ],
    ),
    # every part counts, not only the first: the one fen short is in the second part
    "fees_second_part_one_fen_short": (
        {"fee_bed": 0, "fee_consultation": 9_999},
        [
            (
                "QC-FEE-001",
                "total_cost",
                "1000.00",
                "费用分类合计 999.99 元不等于医疗总费用 1000.00 元",
            )
        ],
    ),
    "payments_second_part_counts": ({"fund_paid": 60_000, "serious_illness_paid": 10_000}, []),
    # a null part counts as 0 fen (not as null, not as 1 fen)
    "fees_with_a_null_part_add_up": ({"fee_consultation": None}, []),
    "fees_with_a_null_part_one_fen_short": (
        {"fee_consultation": None, "fee_bed": 9_999},
        [
            (
                "QC-FEE-001",
                "total_cost",
                "1000.00",
                "费用分类合计 999.99 元不等于医疗总费用 1000.00 元",
            )
        ],
    ),
    "payments_sum_one_fen_over": (
        {"personal_selfpay": 5_001, "out_of_list_cost": 0},
        [
            (
                "QC-PAY-001",
                "total_cost",
                "1000.00",
                "支付构成合计 1000.01 元不等于医疗总费用 1000.00 元",
            )
        ],
    ),
}


def _found(findings):
    return sorted(
        ((f["rule_id"], f["field"], f["value"], f["message"]) for f in findings),
        key=repr,
    )


@pytest.fixture(scope="module")
def default_rules():
    return load_rule_set()


@pytest.mark.parametrize("name", list(LIMITS))
def test_limit_batch_and_single(runner, default_rules, name):
    overrides, expected = LIMITS[name]
    found = runner.both([clean_case(case_id=name, **overrides)], default_rules)
    assert _found(found) == sorted(expected, key=repr)


def test_limits_in_one_batch(runner, default_rules):
    """All scenarios in one batch: the same findings, row by row (no cross-row effects)."""
    cases = [clean_case(case_id=name, **over) for name, (over, _) in LIMITS.items()]
    got = {
        (f["case_id"], f["rule_id"], f["field"], f["value"])
        for f in runner.both(cases, default_rules)
    }
    want = {(name, r, fld, v) for name, (_, exp) in LIMITS.items() for r, fld, v, _ in exp}
    assert got == want


# --- sum tolerance ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tolerant():
    """Policy with sum_tolerance_yuan 0.05: differences up to 5 fen pass, 6 fen do not."""
    return Runner(policy_with({"qc.run_date": RUN_DATE, "qc.sum_tolerance_yuan": Decimal("0.05")}))


TOLERANCE = {
    "fees_5_fen_short": ({"fee_bed": 9_995}, []),
    "fees_5_fen_over": ({"fee_bed": 10_005}, []),
    "fees_6_fen_short": (
        {"fee_bed": 9_994},
        [
            (
                "QC-FEE-001",
                "total_cost",
                "1000.00",
                "费用分类合计 999.94 元不等于医疗总费用 1000.00 元",
            )
        ],
    ),
    "fees_6_fen_over": (
        {"fee_bed": 10_006},
        [
            (
                "QC-FEE-001",
                "total_cost",
                "1000.00",
                "费用分类合计 1000.06 元不等于医疗总费用 1000.00 元",
            )
        ],
    ),
    "payments_5_fen_over": ({"personal_copay": 25_005}, []),
    "payments_6_fen_short": (
        {"personal_copay": 24_994},
        [
            (
                "QC-PAY-001",
                "total_cost",
                "1000.00",
                "支付构成合计 999.94 元不等于医疗总费用 1000.00 元",
            )
        ],
    ),
}


@pytest.mark.parametrize("name", list(TOLERANCE))
def test_sum_tolerance_at_and_past_limit(tolerant, default_rules, name):
    overrides, expected = TOLERANCE[name]
    found = tolerant.both([clean_case(case_id=name, **overrides)], default_rules)
    assert _found(found) == sorted(expected, key=repr)


# --- every comparison operator at equality and one step either side ------------------------

OPS = ["<", "<=", ">", ">=", "==", "!="]
OP_RULES = rules_from(
    *(
        {
            "id": f"QC-OP-{i}", "name": f"比较 {op}", "level": "error", "field": "icu_days",
            "message": "{left} {right}",
            "check": {"type": "compare", "left": "icu_days", "op": op, "right": "los_days"},
        }
        for i, op in enumerate(OPS)
    ),
    {
        "id": "QC-OP-L", "name": "字面量在左", "level": "error", "field": "icu_days",
        "message": "{left} {right}",
        "check": {"type": "compare", "left": {"value": 5}, "op": "<=", "right": "icu_days"},
    },
    {
        "id": "QC-OP-R", "name": "区间", "level": "error", "field": "icu_days",
        "message": "{value} {min} {max}",
        "check": {"type": "range", "min": 4, "max": {"value": 6}},
    },
)  # fmt: skip

#: icu_days against los_days 5: which rules are violated (the comparison is false).
OP_EXPECT = {
    3: {"QC-OP-2", "QC-OP-3", "QC-OP-4", "QC-OP-L", "QC-OP-R"},  # 3 < 5: >, >=, == false
    4: {"QC-OP-2", "QC-OP-3", "QC-OP-4", "QC-OP-L"},  # range min 4 inclusive; 5 <= 4 false
    5: {"QC-OP-0", "QC-OP-2", "QC-OP-5"},  # equal: <, >, != false
    6: {"QC-OP-0", "QC-OP-1", "QC-OP-4"},  # range max 6 inclusive
    7: {"QC-OP-0", "QC-OP-1", "QC-OP-4", "QC-OP-R"},
}


@pytest.mark.parametrize("icu", sorted(OP_EXPECT))
def test_compare_operators_and_range_bounds(runner, icu):
    found = runner.both([clean_case(case_id=f"icu{icu}", icu_days=icu)], OP_RULES)
    assert {f["rule_id"] for f in found} == OP_EXPECT[icu]


#: A day count whose same-day value is a field of the list, not a constant: the single path
#: must read that field from the case row (a same-day stay reporting 0 days passes, as it
#: reports what the rule takes for its length; a 5-day stay reporting 4 does not).
SAME_DAY_FIELD = rules_from(
    {
        "id": "QC-SD-F", "name": "住院天数与出入院日期一致", "level": "error",
        "field": "los_days", "message": "{left} {right}",
        "check": {
            "type": "compare", "left": "los_days", "op": "==",
            "right": {
                "days_between": ["admit_date", "discharge_date"],
                "same_day": {"field": "los_days"},
            },
        },
    },
)  # fmt: skip


def test_days_between_with_a_same_day_field_reads_it_from_the_case(runner):
    same_day = {"admit_date": dt.date(2026, 3, 6), "discharge_date": dt.date(2026, 3, 6)}
    cases = [
        clean_case(case_id="sd0", los_days=0, **same_day),
        clean_case(case_id="sd1", los_days=1, **same_day),
        clean_case(case_id="five", los_days=5),
        clean_case(case_id="four", los_days=4),
        # a missing date: no day count, nothing to compare (either date alone)
        clean_case(case_id="no_discharge", discharge_date=None),
        clean_case(case_id="no_admission", admit_date=None),
    ]
    found = runner.both(cases, SAME_DAY_FIELD)
    assert [(f["case_id"], f["rule_id"], f["value"]) for f in found] == [("four", "QC-SD-F", "4")]


#: Per-field checks over several scalar fields: the batch compiles each such rule into ONE
#: relation (`_per_field`), a one-field rule into its own; the single path checks field by
#: field. Both must give every field's own finding and print the constants the same way
#: (a missing bound prints （空）, a money bound in yuan with two decimals).
PER_FIELD = rules_from(
    {
        "id": "QC-PF-SET", "name": "代码值域", "level": "error",
        "fields": ["admission_route", "discharge_method"],
        "message": "{label} {value} 不在 {allowed} 之中",
        "check": {"type": "in_set", "values": ["1", "2", "9"]},
    },
    {
        "id": "QC-PF-RE", "name": "代码格式", "level": "warning",
        "fields": ["patient_id", "doctor_id"],
        "message": "{label} {value} 格式不符",
        "check": {"type": "regex", "pattern": "^[A-Z][0-9]+$"},
    },
    {
        "id": "QC-PF-MAX", "name": "金额上限", "level": "error",
        "fields": ["fee_bed", "fee_other"],
        "message": "{label} {value} 元不在 {min}–{max} 元之间",
        "check": {"type": "range", "max": {"param": "max_total_cost_yuan"}},
    },
    {
        "id": "QC-PF-MIN", "name": "金额下限（单字段）", "level": "error", "field": "fee_bed",
        "message": "{label} {value} 元不在 {min}–{max} 元之间",
        "check": {"type": "range", "min": 0},
    },
)  # fmt: skip


def test_per_field_checks_over_one_or_several_fields_batch_and_single(runner):
    cases = [
        # admission_route 2, discharge_method 1, P1, D01, fees 100.00 / 0.00: all pass
        clean_case(case_id="ok"),
        # null values are the required rules' business: in_set and regex pass them
        clean_case(
            case_id="nulls",
            admission_route=None,
            discharge_method=None,
            patient_id=None,
            doctor_id=None,
            fee_bed=None,
        ),
        clean_case(case_id="set", admission_route="3"),
        clean_case(case_id="re", patient_id="p1", doctor_id="D-01"),
        # 5000000.00 yuan is at the maximum (qc.max_total_cost_yuan), 1 fen more is past it
        clean_case(case_id="max", fee_bed=500_000_000, fee_other=500_000_001),
        clean_case(case_id="min", fee_bed=-1),
    ]
    found = runner.both(cases, PER_FIELD)
    assert [(f["case_id"], f["rule_id"], f["field"], f["value"], f["message"]) for f in found] == [
        (
            "max",
            "QC-PF-MAX",
            "fee_other",
            "5000000.01",
            "其他费 5000000.01 元不在 （空）–5000000.00 元之间",
        ),
        ("min", "QC-PF-MIN", "fee_bed", "-0.01", "床位费 -0.01 元不在 0.00–（空） 元之间"),
        ("re", "QC-PF-RE", "doctor_id", "D-01", "主诊医师代码 D-01 格式不符"),
        ("re", "QC-PF-RE", "patient_id", "p1", "人员编号 p1 格式不符"),
        ("set", "QC-PF-SET", "admission_route", "3", "入院途径 3 不在 1、2、9 之中"),
    ]


#: `required` on text: blank text (spaces, a tab) is missing like null, on a one-field rule
#: (its own relation) and on a several-field rule (the per-field relation); the finding keeps
#: the blank value as written.
REQUIRED_TEXT = rules_from(
    {
        "id": "QC-RQ-1", "name": "科别必填", "level": "error", "field": "department",
        "message": "{label}为空（{value}）", "check": {"type": "required"},
    },
    {
        "id": "QC-RQ-2", "name": "编号必填", "level": "error",
        "fields": ["patient_id", "doctor_id"],
        "message": "{label}为空（{value}）", "check": {"type": "required"},
    },
)  # fmt: skip


def test_required_text_that_is_blank_is_missing(runner):
    cases = [
        clean_case(case_id="filled"),
        clean_case(case_id="blank", department="  ", doctor_id="\t"),
        clean_case(case_id="null", department=None, patient_id=None),
    ]
    found = runner.both(cases, REQUIRED_TEXT)
    assert [(f["case_id"], f["rule_id"], f["field"], f["value"], f["message"]) for f in found] == [
        ("blank", "QC-RQ-1", "department", "  ", "出院科别为空（  ）"),
        ("blank", "QC-RQ-2", "doctor_id", "\t", "主诊医师代码为空（\t）"),
        ("null", "QC-RQ-1", "department", None, "出院科别为空（（空））"),
        ("null", "QC-RQ-2", "patient_id", None, "人员编号为空（（空））"),
    ]


#: A compare with a money constant on either side prints the constant in yuan (its kind comes
#: from the field on the other side), on both paths.
MONEY_CONSTANT = rules_from(
    {
        "id": "QC-MC-R", "name": "目录外费用上限", "level": "warning",
        "field": "out_of_list_cost", "message": "目录外费用 {left} 元超过 {right} 元",
        "check": {"type": "compare", "left": "out_of_list_cost", "op": "<=", "right": {"value": 50}},
    },
    {
        "id": "QC-MC-L", "name": "床位费下限", "level": "warning",
        "field": "fee_bed", "message": "床位费 {right} 元低于 {left} 元",
        "check": {"type": "compare", "left": {"value": "0.5"}, "op": "<=", "right": "fee_bed"},
    },
)  # fmt: skip


def test_a_money_constant_compared_prints_in_yuan_on_both_paths(runner):
    cases = [
        clean_case(case_id="at", out_of_list_cost=5_000, fee_bed=50),
        clean_case(case_id="past", out_of_list_cost=5_001, fee_bed=49),
    ]
    found = runner.both(cases, MONEY_CONSTANT)
    assert [(f["case_id"], f["rule_id"], f["value"], f["message"]) for f in found] == [
        ("past", "QC-MC-R", "50.01", "目录外费用 50.01 元超过 50.00 元"),
        ("past", "QC-MC-L", "0.49", "床位费 0.49 元低于 0.50 元"),
    ]


#: A sum_equals without a tolerance: the parts must add up to the fen (the default rules always
#: name `qc.sum_tolerance_yuan`, so this is the other branch of both engines).
NO_TOLERANCE = rules_from(
    {
        "id": "QC-SUM-0", "name": "支付合计", "level": "error", "field": "total_cost",
        "message": "合计 {sum} 元，总费用 {total} 元",
        "check": {
            "type": "sum_equals",
            "parts": ["fund_paid", "personal_copay", "personal_selfpay"],
            "total": "total_cost",
        },
    },
)  # fmt: skip


def test_a_sum_without_tolerance_must_add_up_to_the_fen(runner):
    cases = [
        clean_case(case_id="equal"),  # 700 + 250 + 50 = 1000.00
        clean_case(case_id="over", personal_selfpay=5_001),
        clean_case(case_id="short", personal_selfpay=4_999),
        clean_case(case_id="no_total", total_cost=None),
    ]
    found = runner.both(cases, NO_TOLERANCE)
    assert [(f["case_id"], f["value"], f["message"]) for f in found] == [
        ("over", "1000.00", "合计 1000.01 元，总费用 1000.00 元"),
        ("short", "1000.00", "合计 999.99 元，总费用 1000.00 元"),
    ]


#: A conditional whose finding field holds a value (the default conditionals all report a
#: missing field): the finding shows the value, money in yuan, on both paths.
CONDITIONAL = rules_from(
    {
        "id": "QC-IF-1", "name": "有手术费须有主要手术", "level": "warning", "field": "fee_surgery",
        "message": "手术费 {value} 元，未填写主要手术操作",
        "check": {
            "type": "conditional",
            "if": {"compare": {"left": "fee_surgery", "op": ">", "right": {"value": 0}}},
            "then": {"not_null": ["main_procedure"]},
        },
    },
)  # fmt: skip


def test_a_conditional_finding_shows_the_field_value(runner):
    cases = [
        clean_case(case_id="with_procedure"),
        clean_case(case_id="without", main_procedure=None, main_procedure_date=None),
        clean_case(case_id="no_fee", main_procedure=None, fee_surgery=0, fee_bed=70_000),
    ]
    found = runner.both(cases, CONDITIONAL)
    assert [(f["case_id"], f["value"], f["message"]) for f in found] == [
        ("without", "600.00", "手术费 600.00 元，未填写主要手术操作"),
    ]


#: `unique` with a `when`: rows are counted over the whole batch (the single case compares
#: with every other known id), but only rows meeting `when` are reported.
UNIQUE_WHEN = rules_from(
    {
        "id": "QC-UQ-1", "name": "职工清单号重复", "level": "error", "field": "case_id",
        "message": "清单号 {value} 重复", "check": {"type": "unique"},
        "when": {"in_set": {"field": "insurance_type", "values": ["employee"]}},
    },
)  # fmt: skip


def test_unique_with_when_counts_every_row_and_reports_the_matching_ones(runner):
    cases = [
        clean_case(case_id="A"),
        clean_case(case_id="A", insurance_type="resident"),
        clean_case(case_id="B"),
        clean_case(case_id="B"),
        clean_case(case_id="B"),
        clean_case(case_id="C", insurance_type="resident"),
        clean_case(case_id="C", insurance_type="resident"),
        clean_case(case_id="D"),
    ]
    found = runner.both(cases, UNIQUE_WHEN)
    assert [(f["case_id"], f["value"], f["message"]) for f in found] == [
        ("A", "A", "清单号 A 重复"),
        ("B", "B", "清单号 B 重复"),
        ("B", "B", "清单号 B 重复"),
        ("B", "B", "清单号 B 重复"),
    ]


#: Code-flag rules whose messages print neither sex nor age still read them (the batch keeps
#: only the columns a rule reads or prints before unnesting the codes).
CODE_FLAGS_UNPRINTED = rules_from(
    {
        "id": "QC-CF-SEX", "name": "性别", "level": "error",
        "fields": ["main_diagnosis", "other_diagnoses"],
        "message": "{label} {value}（{name}）与性别不符",
        "check": {"type": "code_flag", "table": "diagnosis", "flag": "sex"},
    },
    {
        "id": "QC-CF-AGE", "name": "年龄", "level": "error",
        "fields": ["main_diagnosis", "other_diagnoses"],
        "message": "{label} {value}（{name}）与年龄不符",
        "check": {"type": "code_flag", "table": "diagnosis", "flag": "age"},
    },
)  # fmt: skip


def test_code_flag_rules_read_sex_and_age_they_do_not_print(runner):
    cases = [
        clean_case(case_id="fine"),
        clean_case(case_id="sex", other_diagnoses=["D25.900"]),  # female-only code, sex 1
        clean_case(case_id="days", age=0, age_days=29, other_diagnoses=["P07.300"]),  # ≤ 28
        clean_case(case_id="years", age=15, other_diagnoses=["J05.000"]),  # ≤ 5110 days
    ]
    found = runner.both(cases, CODE_FLAGS_UNPRINTED)
    assert [(f["case_id"], f["rule_id"], f["value"], f["message"]) for f in found] == [
        ("days", "QC-CF-AGE", "P07.300", "其他诊断代码 P07.300（早产儿）与年龄不符"),
        ("sex", "QC-CF-SEX", "D25.900", "其他诊断代码 D25.900（子宫平滑肌瘤）与性别不符"),
        ("years", "QC-CF-AGE", "J05.000", "其他诊断代码 J05.000（急性阻塞性喉炎）与年龄不符"),
    ]
