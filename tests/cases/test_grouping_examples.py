"""Worked grouping examples (tests/cases/grouping/*.yaml): a small directory, policy overrides
on the demo policy (dotted keys), cases and the group each must get, worked out by hand from
reference §3. Every case is grouped on the single-case path, each file once in batch."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from opendip.codes import demo_code_tables
from opendip.contract import CASES, DIRECTORY
from opendip.engine import connect, table_from_arrow
from opendip.grouping import GroupingIndex, group_case, group_cases
from opendip.policy.load import _DecimalLoader
from tests.conftest import policy_with

FILES = sorted((Path(__file__).parent / "grouping").glob("*.yaml"))


def _fen(value: Any) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


def load(path: Path) -> dict[str, Any]:
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_DecimalLoader)
    rows = []
    for g in doc["directory"]:
        row = {k: v for k, v in g.items() if k != "mean_cost_yuan"}
        row |= {"group_name": g["group_code"], "score": Decimal(str(g["score"]))}
        row["mean_cost_fen"] = _fen(g["mean_cost_yuan"])
        rows.append(row)
    cases = []
    for c in doc["cases"]:
        spec = dict(c["case"])
        procs = spec.pop("procedures", [])
        d = dt.date(2026, 6, 10)
        case = {
            "case_id": spec["case_id"], "hospital_id": "H1", "patient_id": "P",
            "insurance_type": "resident", "sex": "1", "age": spec.get("age", 40),
            "admit_date": d - dt.timedelta(days=3), "discharge_date": d, "los_days": 3,
            "department": "外科", "main_diagnosis": spec["main_diagnosis"],
            "other_diagnoses": spec.get("other_diagnoses", []),
            "main_procedure": procs[0] if procs else None, "other_procedures": procs[1:],
            "total_cost": _fen(spec["total_cost_yuan"]), "settle_month": "2026-06",
        }  # fmt: skip
        cases.append({"name": c["name"], "case": case, "expect": c["expect"]})
    return {
        "policy": policy_with(doc.get("policy") or {}),
        "directory": DIRECTORY.conform(pa.Table.from_pylist(rows)),
        "cases": cases,
    }


def check(row: dict[str, Any], expect: dict[str, Any], name: str) -> None:
    for key, value in expect.items():
        got = row[key]
        if isinstance(got, Decimal):
            assert got == Decimal(str(value)), f"{name}: {key}"
        else:
            assert got == value, f"{name}: {key} = {got!r}"


EXAMPLES = [(f, i) for f in FILES for i in range(len(load(f)["cases"]))]


@pytest.mark.parametrize(
    ("path", "i"),
    EXAMPLES,
    ids=[f"{p.stem}:{load(p)['cases'][i]['case']['case_id']}" for p, i in EXAMPLES],
)
def test_example_single_case(path: Path, i: int) -> None:
    doc = load(path)
    index = GroupingIndex.build(doc["directory"], doc["policy"], demo_code_tables())
    ex = doc["cases"][i]
    check(group_case(ex["case"], index).as_row(), ex["expect"], ex["name"])


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_file_batch_matches(path: Path) -> None:
    doc = load(path)
    con = connect()
    codes = demo_code_tables()
    cases = table_from_arrow(
        con, CASES.conform(pa.Table.from_pylist([c["case"] for c in doc["cases"]])), "cases"
    )
    got = group_cases(
        cases,
        table_from_arrow(con, doc["directory"], "directory"),
        table_from_arrow(con, codes.procedures.select(["code", "procedure_type"]), "pt"),
        doc["policy"],
        None,
        table_from_arrow(con, codes.diagnoses.select(["code", "valid_as_main"]), "dc"),
    ).to_pyarrow()
    rows = {r["case_id"]: r for r in got.to_pylist()}
    index = GroupingIndex.build(doc["directory"], doc["policy"], codes)
    for ex in doc["cases"]:
        row = rows[ex["case"]["case_id"]]
        check(row, ex["expect"], ex["name"])
        assert row == group_case(ex["case"], index).as_row(), ex["name"]
