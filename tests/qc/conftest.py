"""QC test fixtures: tiny code tables in the contracts, a clean case, a batch runner."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from opendip.contract import CASES, DIAGNOSIS_CODES, PROCEDURE_CODES
from opendip.engine import connect, table_from_arrow
from opendip.qc import CaseChecker, Finding, RuleSet, codes_to_ibis, run_qc
from opendip.qc.batch import findings_expr
from opendip.qc.context import QcContext
from opendip.qc.rules import parse_rules
from tests.conftest import policy_with

RUN_DATE = dt.date(2026, 12, 31)
NULLABLE_CASES = pa.schema([f.with_nullable(True) for f in CASES.schema])


def _dx(code, name, main=True, sex=None, lo=None, hi=None):
    return {
        "code": code, "name": name, "chapter": "X", "block": code[:3], "category": code[:3],
        "subcategory": code[:5], "valid_as_main": main, "sex_restriction": sex,
        "age_min_days": lo, "age_max_days": hi,
    }  # fmt: skip


def _op(code, name, kind="surgery", sex=None):
    return {
        "code": code, "name": name, "category": code[:4], "subcategory": code[:5],
        "procedure_type": kind, "sex_restriction": sex,
    }  # fmt: skip


@dataclass(frozen=True)
class Codes:
    diagnoses: pa.Table
    procedures: pa.Table


CODES = Codes(
    DIAGNOSIS_CODES.conform(
        pa.Table.from_pylist(
            [
                _dx("K35.800", "急性阑尾炎"),
                _dx("I10.x00", "原发性高血压"),
                _dx("E11.900", "2型糖尿病"),
                _dx("R50.900", "发热", main=False),
                _dx("V89.200", "机动车交通事故", main=False),
                _dx("D25.900", "子宫平滑肌瘤", sex="2"),
                _dx("N40.x00", "前列腺增生", sex="1"),
                _dx("P07.300", "早产儿", hi=28),
                _dx("O80.000", "单胎顺产", sex="2", lo=4380),
                _dx("J05.000", "急性阻塞性喉炎", hi=5110),  # up to 14 years (14 × 365 days)
            ],
            schema=DIAGNOSIS_CODES.schema,
        )
    ),
    PROCEDURE_CODES.conform(
        pa.Table.from_pylist(
            [
                _op("47.0100", "腹腔镜下阑尾切除术"),
                _op("88.0100", "腹部CT", "diagnostic"),
                _op("68.4900", "子宫切除术", sex="2"),
                _op("60.2900", "经尿道前列腺切除术", sex="1"),
            ],
            schema=PROCEDURE_CODES.schema,
        )
    ),
)

FEES = {name: 0 for name in CASES.names if name.startswith("fee_")}


def clean_case(**overrides: Any) -> dict[str, Any]:
    """A settlement list that passes every default rule with CODES (total 1000.00 yuan)."""
    case: dict[str, Any] = {c: None for c in CASES.names}
    case.update(
        case_id="C1", hospital_id="H001", patient_id="P1", insurance_type="employee", sex="1",
        birth_date=dt.date(1980, 5, 1), age=45, admit_date=dt.date(2026, 3, 1),
        discharge_date=dt.date(2026, 3, 6), los_days=5, admission_route="2",
        discharge_method="1", department="普外科", doctor_id="D01",
        main_diagnosis="K35.800", other_diagnoses=["I10.x00"], main_procedure="47.0100",
        main_procedure_date=dt.date(2026, 3, 2), other_procedures=["88.0100"], icu_days=0,
        total_cost=100_000, **FEES, fund_paid=70_000, serious_illness_paid=0,
        medical_aid_paid=0, personal_copay=25_000, personal_selfpay=5_000,
        out_of_list_cost=1_000, settle_month="2026-03",
    )  # fmt: skip
    case.update(fee_surgery=60_000, fee_western_medicine=30_000, fee_bed=10_000)
    case.update(overrides)
    return case


def rules_from(*rules: dict[str, Any], version: str = "t1") -> RuleSet:
    parsed, problems = parse_rules({"rules": list(rules)})
    assert not problems, problems
    return RuleSet(version, "测试规则", tuple(parsed), "<test>")


def write_rules(tmp_path: Path, tree: dict[str, Any], name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")
    return path


def cases_table(cases: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(cases, schema=NULLABLE_CASES)


def key(f: Finding | dict[str, Any]) -> tuple:
    d = f if isinstance(f, dict) else f.__dict__
    return tuple(
        d[k] for k in ("case_id", "hospital_id", "rule_id", "level", "field", "value", "message")
    )


@pytest.fixture(scope="session")
def policy():
    return policy_with({"qc.run_date": RUN_DATE})


class Runner:
    """Runs rules over cases both ways and checks the two answers agree."""

    def __init__(self, policy) -> None:
        self.policy = policy
        self.con = connect()
        self.codes = codes_to_ibis(self.con, CODES)
        self._sql: dict[int, tuple[RuleSet, str]] = {}
        self._checkers: dict[int, CaseChecker] = {}

    def batch(self, cases: list[dict[str, Any]], rules: RuleSet):
        t = table_from_arrow(self.con, cases_table(cases), "qc_test_cases")
        return run_qc(t, self.codes, rules, self.policy)

    def findings(self, cases: list[dict[str, Any]], rules: RuleSet) -> list[dict[str, Any]]:
        """Batch findings; the compiled query is kept per rule set and re-run on new data
        (compiling the full rule set costs more than running it on a few rows). Test-harness
        only: the product goes through Ibis every time."""
        table_from_arrow(self.con, cases_table(cases), "qc_test_cases")
        if id(rules) not in self._sql:
            ctx = QcContext(rules, self.policy)
            expr = findings_expr(self.con.table("qc_test_cases"), self.codes, ctx)
            self._sql[id(rules)] = (rules, str(self.con.compile(expr)))
        sql = self._sql[id(rules)][1]
        return self.con.con.sql(sql).to_arrow_table().to_pylist()

    def both(self, cases: list[dict[str, Any]], rules: RuleSet) -> list[dict[str, Any]]:
        batch = self.findings(cases, rules)
        checker = self._checkers.get(id(rules)) or CaseChecker(CODES, rules, self.policy)
        self._checkers[id(rules)] = checker
        ids = [c.get("case_id") for c in cases]
        single = []
        for i, c in enumerate(cases):
            others = ids[:i] + ids[i + 1 :]
            single += checker.check(c, [x for x in others if x is not None])
        assert sorted(map(key, batch), key=repr) == sorted(map(key, single), key=repr)
        return batch


@pytest.fixture(scope="session")
def runner(policy) -> Runner:
    return Runner(policy)
