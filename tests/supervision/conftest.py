"""Hand-built CASES / HOSPITALS / GROUPED / SCORED fixtures for supervision tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from opendip.contract import CASES, GROUPED, HOSPITALS, SCORED
from opendip.engine import connect
from opendip.policy import Policy, demo_policy_path, load_policy
from opendip.supervision import SupervisionInputs, supervise
from opendip.supervision.prepare import prepare_stays

D = dt.date


def case(case_id: str, **kw: Any) -> dict[str, Any]:
    """A clean case with sensible defaults; keyword arguments override."""
    admit = kw.pop("admit", D(2026, 3, 1))
    los = kw.pop("los", 5)
    row: dict[str, Any] = {
        "case_id": case_id,
        "hospital_id": "H001",
        "patient_id": f"P{case_id}",
        "insurance_type": "resident",
        "sex": "1",
        "age": 50,
        "admit_date": admit,
        "discharge_date": admit + dt.timedelta(days=los),
        "los_days": los,
        "discharge_method": "1",
        "admission_route": "2",
        "department": "内科",
        "doctor_id": "H001-D01-01",
        "main_diagnosis": "J18.900",
        "other_diagnoses": [],
        "main_procedure": None,
        "other_procedures": [],
        "total_cost": 500_000,
        "personal_selfpay": 20_000,
        "out_of_list_cost": 10_000,
    }
    row.update(kw)
    if "settle_month" not in kw:
        row["settle_month"] = row["discharge_date"].strftime("%Y-%m")
    return row


def cases_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    rows = list(rows)
    keys = {k for r in rows for k in r}
    schema = pa.schema([f for f in CASES.schema if f.name in keys])
    return CASES.conform(pa.Table.from_pylist(rows, schema=schema))


def hospitals_table(levels: dict[str, str]) -> pa.Table:
    rows = [
        {"hospital_id": h, "name": f"医院{h}", "level": lv, "county": "城关区"}
        for h, lv in levels.items()
    ]
    return HOSPITALS.conform(pa.Table.from_pylist(rows))


def grouped_table(groups: dict[str, str]) -> pa.Table:
    rows = [
        {"case_id": c, "group_code": g, "group_type": "core", "match_step": "core", "reason": ""}
        for c, g in groups.items()
    ]
    return GROUPED.conform(pa.Table.from_pylist(rows))


def scored_table(rows: list[tuple[str, str, str, str]]) -> pa.Table:
    """(case_id, hospital_id, deviation, case_score)."""
    out = [
        {
            "case_id": c,
            "hospital_id": h,
            "pool": "resident",
            "deviation": dev,
            "case_score": Decimal(score),
            "hospital_coefficient": Decimal(1),
            "settled_score": Decimal(score),
            "personal_share_fen": 0,
            "ffs_fund_fen": 0,
            # the explanation's facts (the sentence is rendered on demand)
            "explain_body": "normal",
            "explain_tail": "coef",
            "review_rejected": False,
            "aux_coefficient": Decimal(1),
            "total_cost_fen": 0,
        }
        for c, h, dev, score in rows
    ]
    return SCORED.conform(pa.Table.from_pylist(out))


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(demo_policy_path(), at=D(2026, 6, 1))


def with_supervision(policy: Policy, **changes: Any) -> Policy:
    sv = policy.supervision.model_copy(update=changes)
    return policy.model_copy(update={"supervision": sv})


@pytest.fixture(scope="session")
def con():  # type: ignore[no-untyped-def]
    return connect()


class Runner:
    """Builds SupervisionInputs from Arrow tables on one connection."""

    def __init__(self, con) -> None:  # type: ignore[no-untyped-def]
        self.con = con
        self.n = 0

    def _t(self, table: pa.Table | None):  # type: ignore[no-untyped-def]
        if table is None:
            return None
        self.n += 1
        return self.con.create_table(f"sv_{id(self)}_{self.n}", table)

    def inputs(
        self,
        cases: pa.Table,
        history: pa.Table | None = None,
        hospitals: pa.Table | None = None,
        grouped: pa.Table | None = None,
        scored: pa.Table | None = None,
    ) -> SupervisionInputs:
        return SupervisionInputs(
            cases=self._t(cases),
            history=self._t(history),
            hospitals=self._t(hospitals),
            grouped=self._t(grouped),
            scored=self._t(scored),
        )

    def stays(self, policy: Policy, *args: Any, **kw: Any):  # type: ignore[no-untyped-def]
        return prepare_stays(self.inputs(*args, **kw), policy)

    def run(self, policy: Policy, *args: Any, **kw: Any):  # type: ignore[no-untyped-def]
        return supervise(self.inputs(*args, **kw), policy)


@pytest.fixture
def runner(con) -> Runner:  # type: ignore[no-untyped-def]
    return Runner(con)
