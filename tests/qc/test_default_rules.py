"""The default rule set on hand-made cases: exact findings, batch and single agreeing."""

from __future__ import annotations

import datetime as dt

import pytest

from opendip.qc import load_rule_set
from tests.qc.conftest import clean_case


@pytest.fixture(scope="module")
def default_rules():
    return load_rule_set("default")


def D(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


# (case overrides, expected findings as (rule_id, field, value, message))
CASES = {
    "clean": ({}, []),
    "same_day_stay_counts_one_day": (
        {"admit_date": D("2026-03-06"), "main_procedure_date": D("2026-03-06"), "los_days": 1},
        [],
    ),
    "los_mismatch": (
        {"los_days": 7},
        [("QC-LOS-001", "los_days", "7", "实际住院天数 7 与出入院日期计算的 5 天不符")],
    ),
    "same_day_stay_zero_days": (
        {"admit_date": D("2026-03-06"), "main_procedure_date": D("2026-03-06"), "los_days": 0},
        [("QC-LOS-001", "los_days", "0", "实际住院天数 0 与出入院日期计算的 1 天不符")],
    ),
    "admit_after_discharge_no_los_double_report": (
        {"admit_date": D("2026-03-09"), "main_procedure_date": D("2026-03-09")},
        [
            (
                "QC-DT-001",
                "admit_date",
                "2026-03-09",
                "入院日期 2026-03-09 晚于出院日期 2026-03-06",
            ),
            (
                "QC-DT-003",
                "main_procedure_date",
                "2026-03-09",
                "主要手术操作日期 2026-03-09 晚于出院日期 2026-03-06",
            ),
        ],
    ),
    "procedure_before_admission": (
        {"main_procedure_date": D("2026-02-27")},
        [
            (
                "QC-DT-002",
                "main_procedure_date",
                "2026-02-27",
                "主要手术操作日期 2026-02-27 早于入院日期 2026-03-01",
            )
        ],
    ),
    "future_discharge": (
        {
            "admit_date": D("2027-01-01"),
            "discharge_date": D("2027-01-03"),
            "los_days": 2,
            "main_procedure_date": D("2027-01-02"),
        },
        [
            (
                "QC-DT-004",
                "discharge_date",
                "2027-01-03",
                "出院日期 2027-01-03 晚于质控日期 2026-12-31",
            )
        ],
    ),
    "fee_sum_in_yuan": (
        {"fee_other": 1_234},
        [
            (
                "QC-FEE-001",
                "total_cost",
                "1000.00",
                "费用分类合计 1012.34 元不等于医疗总费用 1000.00 元",
            )
        ],
    ),
    "payment_split": (
        {"fund_paid": 69_995},
        [
            (
                "QC-PAY-001",
                "total_cost",
                "1000.00",
                "支付构成合计 999.95 元不等于医疗总费用 1000.00 元",
            )
        ],
    ),
    "missing_fund_reports_once": (
        {"fund_paid": None},
        [("QC-REQ-001", "fund_paid", None, "必填项 统筹基金支付（fund_paid）为空")],
    ),
    "blank_department_is_missing": (
        {"department": "  "},
        [("QC-REQ-001", "department", "  ", "必填项 出院科别（department）为空")],
    ),
    "negative_fee": (
        {"fee_bed": -500, "fee_western_medicine": 40_500},
        [("QC-FEE-002", "fee_bed", "-5.00", "床位费 -5.00 元为负数")],
    ),
    "absurd_total": (
        {"total_cost": 600_000_000, "fee_surgery": 599_960_000, "fund_paid": 599_970_000},
        [
            (
                "QC-FEE-003",
                "total_cost",
                "6000000.00",
                "医疗总费用 6000000.00 元不在 0.01–5000000.00 元之间",
            )
        ],
    ),
    "unknown_codes_each_element": (
        {"other_diagnoses": ["I10.x00", "Z99.999", "Q00.000"], "other_procedures": ["99.9999"]},
        [
            (
                "QC-DX-003",
                "other_diagnoses",
                "Q00.000",
                "其他诊断代码 Q00.000 不在医保版疾病诊断代码表中（入组时忽略）",
            ),
            (
                "QC-DX-003",
                "other_diagnoses",
                "Z99.999",
                "其他诊断代码 Z99.999 不在医保版疾病诊断代码表中（入组时忽略）",
            ),
            (
                "QC-OP-003",
                "other_procedures",
                "99.9999",
                "其他手术及操作代码 99.9999 不在医保版手术操作代码表中（入组时忽略）",
            ),
        ],
    ),
    "symptom_as_main": (
        {"main_diagnosis": "R50.900"},
        [("QC-DX-002", "main_diagnosis", "R50.900", "主要诊断 R50.900（发热）不能作为主要诊断")],
    ),
    "external_cause_as_other_is_fine": ({"other_diagnoses": ["I10.x00", "V89.200"]}, []),
    "male_with_female_codes": (
        {"other_diagnoses": ["D25.900"], "other_procedures": ["68.4900"]},
        [
            (
                "QC-SEX-001",
                "other_diagnoses",
                "D25.900",
                "其他诊断代码 D25.900（子宫平滑肌瘤）与性别 1 不符",
            ),
            (
                "QC-SEX-002",
                "other_procedures",
                "68.4900",
                "其他手术及操作代码 68.4900（子宫切除术）与性别 1 不符",
            ),
        ],
    ),
    "female_with_male_codes": (
        {"sex": "2", "other_diagnoses": ["N40.x00"], "other_procedures": ["60.2900"]},
        [
            (
                "QC-SEX-001",
                "other_diagnoses",
                "N40.x00",
                "其他诊断代码 N40.x00（前列腺增生）与性别 2 不符",
            ),
            (
                "QC-SEX-002",
                "other_procedures",
                "60.2900",
                "其他手术及操作代码 60.2900（经尿道前列腺切除术）与性别 2 不符",
            ),
        ],
    ),
    "unknown_sex_skips_sex_rules": ({"sex": "9", "other_diagnoses": ["D25.900"]}, []),
    # a missing discharge date: the required-field error only (no stay length to compare)
    "missing_discharge_date": (
        {"discharge_date": None},
        [("QC-REQ-001", "discharge_date", None, "必填项 出院日期（discharge_date）为空")],
    ),
    # a missing age (years and days) is a required-field error only, never an age conflict
    "missing_age_skips_age_rules": (
        {"age": None, "other_diagnoses": ["P07.300"]},
        [("QC-REQ-001", "age", None, "必填项 年龄（age）为空")],
    ),
    # a missing sex is a required-field error only, never a sex conflict
    "missing_sex_skips_sex_rules": (
        {"sex": None, "other_diagnoses": ["D25.900"], "other_procedures": ["60.2900"]},
        [("QC-REQ-001", "sex", None, "必填项 性别（sex）为空")],
    ),
    "adult_with_perinatal_code": (
        {"other_diagnoses": ["P07.300"]},
        [
            (
                "QC-AGE-001",
                "other_diagnoses",
                "P07.300",
                "其他诊断代码 P07.300（早产儿）与年龄不符（45 岁，不足 1 岁天数 （空））",
            )
        ],
    ),
    "newborn_without_weights": (
        {"age": 0, "age_days": 10, "birth_date": D("2026-02-19"), "other_diagnoses": ["P07.300"]},
        [
            (
                "QC-AGE-002",
                "newborn_admit_weight_g",
                None,
                "新生儿病例（年龄 10 天）未填写新生儿入院体重(克)",
            ),
            (
                "QC-AGE-002",
                "newborn_birth_weight_g",
                None,
                "新生儿病例（年龄 10 天）未填写新生儿出生体重(克)",
            ),
        ],
    ),
    "newborn_with_weights": (
        {
            "age": 0,
            "age_days": 10,
            "birth_date": D("2026-02-19"),
            "other_diagnoses": ["P07.300"],
            "newborn_birth_weight_g": 2500,
            "newborn_admit_weight_g": 150,
        },
        [
            (
                "QC-AGE-003",
                "newborn_admit_weight_g",
                "150",
                "新生儿入院体重(克) 150 克超出 200–20000 克",
            )
        ],
    ),
    "infant_with_p_code_needs_weights": (
        {
            "age": 0,
            "age_days": 60,
            "birth_date": D("2026-01-01"),
            "newborn_birth_weight_g": 3000,
            "other_diagnoses": ["P07.300"],
        },
        [
            (
                "QC-AGE-001",
                "other_diagnoses",
                "P07.300",
                "其他诊断代码 P07.300（早产儿）与年龄不符（0 岁，不足 1 岁天数 60）",
            ),
            (
                "QC-AGE-002",
                "newborn_admit_weight_g",
                None,
                "新生儿病例（年龄 60 天）未填写新生儿入院体重(克)",
            ),
        ],
    ),
    "obstetric_code_below_min_age": (
        {"sex": "2", "age": 11, "birth_date": D("2014-06-01"), "other_diagnoses": ["O80.000"]},
        [
            (
                "QC-AGE-001",
                "other_diagnoses",
                "O80.000",
                "其他诊断代码 O80.000（单胎顺产）与年龄不符（11 岁，不足 1 岁天数 （空））",
            )
        ],
    ),
    "bad_code_values": (
        {"discharge_method": "7", "admission_route": "0"},
        [
            ("QC-VAL-001", "discharge_method", "7", "离院方式 7 不在代码集（1、2、3、4、5、9）"),
            ("QC-VAL-002", "admission_route", "0", "入院途径 0 不在代码集（1、2、3、9）"),
        ],
    ),
    "duplicated_diagnosis": (
        {"other_diagnoses": ["I10.x00", "K35.800", "I10.x00"]},
        [
            (
                "QC-DUP-002",
                "main_diagnosis+other_diagnoses",
                "I10.x00",
                "诊断代码 I10.x00 在主要诊断与其他诊断中重复出现",
            ),
            (
                "QC-DUP-002",
                "main_diagnosis+other_diagnoses",
                "K35.800",
                "诊断代码 K35.800 在主要诊断与其他诊断中重复出现",
            ),
        ],
    ),
    "other_procedures_without_main": (
        {"main_procedure": None, "main_procedure_date": None},
        [("QC-OP-002", "main_procedure", None, "填写了其他手术操作 88.0100，但主要手术操作为空")],
    ),
    "main_procedure_without_date": (
        {"main_procedure_date": None},
        [
            (
                "QC-REQ-002",
                "main_procedure_date",
                None,
                "已填写主要手术操作 47.0100，但未填写主要手术操作日期",
            )
        ],
    ),
    "icu_longer_than_stay": (
        {"icu_days": 6},
        [("QC-LOS-003", "icu_days", "6", "重症监护天数 6 超过实际住院天数 5")],
    ),
    "bad_settle_month": (
        {"settle_month": "2026-13"},
        [("QC-VAL-005", "settle_month", "2026-13", "结算月份 2026-13 不是 YYYY-MM 格式")],
    ),
    "long_stay_warning": (
        {"admit_date": D("2025-01-01"), "main_procedure_date": D("2025-01-02"), "los_days": 429},
        [("QC-LOS-002", "los_days", "429", "实际住院天数 429 超过 365 天，请核实")],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_default_rules_single_case(name, default_rules, policy):
    from opendip.qc import check_case
    from tests.qc.conftest import CODES

    overrides, expected = CASES[name]
    found = check_case(clean_case(**overrides), CODES, default_rules, policy)
    assert [(f.rule_id, f.field, f.value, f.message) for f in found] == expected


def test_default_rules_batch_equals_single_on_all_examples(runner, default_rules):
    cases = [clean_case(case_id=name, **over) for name, (over, _) in CASES.items()]
    findings = runner.both(cases, default_rules)
    got = {(f["case_id"], f["rule_id"], f["field"], f["value"], f["message"]) for f in findings}
    want = {(name, *e) for name, (_, exp) in CASES.items() for e in exp}
    assert got == want
    levels = {f["rule_id"]: f["level"] for f in findings}
    assert levels["QC-LOS-002"] == "warning" and levels["QC-DX-002"] == "error"


@pytest.fixture(scope="module")
def mixed_batch(runner, default_rules):
    """One batch (one compile of the full rule set) for the status and summary tests."""
    cases = [
        clean_case(case_id="A"),
        clean_case(case_id="A"),
        clean_case(case_id="B"),
        clean_case(case_id="ok", hospital_id="H2"),
        clean_case(
            case_id="warn",
            hospital_id="H2",
            los_days=404,
            admit_date=dt.date(2025, 1, 26),
            main_procedure_date=dt.date(2025, 1, 27),
        ),
        clean_case(case_id="err", hospital_id="H2", main_diagnosis="R50.900", discharge_method="8"),
        clean_case(case_id=None, hospital_id="H3"),
    ]
    return runner.batch(cases, default_rules)


def test_duplicate_case_ids_flag_every_row_and_status_blocks_both(
    mixed_batch, runner, default_rules
):
    findings = mixed_batch.findings.to_pyarrow().to_pylist()
    assert [(f["case_id"], f["rule_id"]) for f in findings if f["case_id"] in ("A", "B")] == [
        ("A", "QC-DUP-001"),
        ("A", "QC-DUP-001"),
    ]
    status = sorted(
        (s for s in mixed_batch.case_status.to_pyarrow().to_pylist() if s["case_id"] in ("A", "B")),
        key=lambda r: r["case_id"],
    )
    assert [(s["case_id"], s["blocking"], s["passed"], s["error_count"]) for s in status] == [
        ("A", True, False, 2),
        ("A", True, False, 2),
        ("B", False, True, 0),
    ]
    # single case: the rule fires only against known ids
    from opendip.qc import check_case
    from tests.qc.conftest import CODES

    case = clean_case(case_id="A")
    assert check_case(case, CODES, default_rules, runner.policy) == []
    ids = [f.rule_id for f in check_case(case, CODES, default_rules, runner.policy, {"A"})]
    assert ids == ["QC-DUP-001"]


def test_case_status_keeps_every_row_and_counts_levels(mixed_batch):
    rows = mixed_batch.case_status.to_pyarrow().to_pylist()
    assert len(rows) == 7
    status = {s["case_id"]: s for s in rows}
    assert (status["ok"]["passed"], status["ok"]["blocking"]) == (True, False)
    assert (status["warn"]["passed"], status["warn"]["blocking"]) == (False, False)
    assert status["warn"]["warning_count"] == 1
    assert (status["err"]["blocking"], status["err"]["error_count"]) == (True, 2)
    assert status[None]["blocking"] is True  # missing case id: never silently passed


def test_summaries_hand_computed(mixed_batch, default_rules):
    from opendip.qc.summary import by_hospital, by_rule

    hospitals = by_hospital(mixed_batch.case_status).to_pyarrow().to_pylist()
    got = [
        (h["hospital_id"], h["cases"], h["passed"], h["blocking"], h["errors"], h["warnings"])
        for h in hospitals
    ]
    # H001: A, A (duplicate: 2 errors each), B; H2: ok, warn (1 warning), err (2 errors);
    # H3: the row without a case id (1 error: required case_id)
    assert got == [("H001", 3, 1, 2, 4, 0), ("H2", 3, 1, 1, 2, 1), ("H3", 1, 0, 1, 1, 0)]
    assert [h["pass_rate"] for h in hospitals] == [pytest.approx(1 / 3), pytest.approx(1 / 3), 0]
    per_rule = {
        r["rule_id"]: r
        for r in by_rule(mixed_batch.findings, mixed_batch.case_status, default_rules)
        .to_pyarrow()
        .to_pylist()
    }
    assert (per_rule["QC-DUP-001"]["findings"], per_rule["QC-DUP-001"]["cases"]) == (2, 1)
    assert (per_rule["QC-VAL-001"]["cases"], per_rule["QC-VAL-001"]["case_share"]) == (1, 1 / 7)
    assert per_rule["QC-DX-001"]["findings"] == 0


def test_disabled_rules_switch_off(runner, default_rules):
    from opendip.qc import check_case
    from tests.conftest import policy_with
    from tests.qc.conftest import CODES, RUN_DATE

    pol = policy_with({"qc.run_date": RUN_DATE, "qc.disabled_rules": ["QC-DX-002"]})
    case = clean_case(main_diagnosis="R50.900")
    assert check_case(case, CODES, default_rules, pol) == []
    assert [f.rule_id for f in check_case(case, CODES, default_rules, runner.policy)] == [
        "QC-DX-002"
    ]


def test_policy_parameters_drive_the_rules(default_rules):
    from opendip.qc import check_case
    from tests.conftest import policy_with
    from tests.qc.conftest import CODES, RUN_DATE

    loose = policy_with({"qc.run_date": RUN_DATE, "qc.sum_tolerance_yuan": 0.5})
    case = clean_case(fee_other=50)  # 0.50 yuan off: within tolerance
    assert check_case(case, CODES, default_rules, loose) == []
    zero = policy_with({"qc.run_date": RUN_DATE, "qc.same_day_los": 0})
    same_day = clean_case(admit_date=dt.date(2026, 3, 6), main_procedure_date=dt.date(2026, 3, 6))
    same_day["los_days"] = 0
    assert check_case(same_day, CODES, default_rules, zero) == []
    early = policy_with({"qc.run_date": dt.date(2026, 3, 5)})
    assert [f.rule_id for f in check_case(clean_case(), CODES, default_rules, early)] == [
        "QC-DT-004"
    ]


def test_importer_schema_with_not_null_keys(runner, default_rules):
    """The importer's conformed table marks key columns NOT NULL (the CASES contract); QC
    takes it as it is (its rule parts are unioned under one nullable schema)."""
    import pyarrow as pa

    from opendip.contract import CASES
    from opendip.engine import table_from_arrow
    from opendip.qc import run_qc

    cases = [clean_case(case_id="N1"), clean_case(case_id="N2", sex="9")]
    strict = pa.Table.from_pylist(cases, schema=CASES.schema)
    assert not strict.schema.field("case_id").nullable
    t = table_from_arrow(runner.con, strict, "qc_strict_cases")
    result = run_qc(t, runner.codes, default_rules, runner.policy)
    status = {r["case_id"]: r for r in result.case_status.to_pyarrow().to_pylist()}
    assert set(status) == {"N1", "N2"} and status["N1"]["passed"]


def test_unknown_secondary_codes_warn_unknown_main_codes_block(runner, default_rules):
    """Issue 14: a secondary code missing from the code table is a warning (grouping ignores
    it); a missing main diagnosis or main procedure code is an error."""
    from opendip.qc import check_case
    from tests.qc.conftest import CODES

    other = clean_case(other_diagnoses=["Z99.999"], other_procedures=["99.9999"])
    levels = {(f.rule_id, f.level) for f in check_case(other, CODES, default_rules, runner.policy)}
    assert levels == {("QC-DX-003", "warning"), ("QC-OP-003", "warning")}
    main = clean_case(main_diagnosis="Z99.999")
    found = check_case(main, CODES, default_rules, runner.policy)
    assert ("QC-DX-001", "error") in {(f.rule_id, f.level) for f in found}
