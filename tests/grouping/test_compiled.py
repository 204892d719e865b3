"""Batch grouping is compiled once per engine, policy, auxiliary directory and input schema
and reused (`opendip.grouping.compiled`): the cache must be keyed by everything the SQL
depends on, and never serve one input's rows for another's."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from opendip.codes import demo_code_tables
from opendip.contract import CASES
from opendip.engine import connect, table_from_arrow
from opendip.grouping import compiled, group_cases
from opendip.grouping.batch import Steps, grouping
from opendip.grouping.inputs import diagnosis_codes, procedure_types
from tests.conftest import POLICIES, policy_with
from tests.grouping.test_grouping import DIR, case

CASE_ROWS = [
    case("a", "K35.800", ["47.0100"], 2800),  # core K35.8:47.0100
    case("b", "K35.800", [], 700),  # core K35.8:保守
    case("c", "K80.100", ["51.2300", "88.0100"], 31000),  # core, both procedures
    case("d", "K80.200", ["51.2300"], 39000),  # two rows tie on everything but cost
    case("e", "J18.900", [], 4000),  # basic
    case("f", "K37.x00", ["47.0100"], 9000),  # comprehensive by block
]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    pq.write_table(CASES.conform(pa.Table.from_pylist(CASE_ROWS)), tmp_path / "cases.parquet")
    pq.write_table(DIR, tmp_path / "directory.parquet")
    return tmp_path


def _group(con, files: Path, policy, directory: str = "directory.parquet") -> dict[str, str]:
    codes = demo_code_tables()
    out = group_cases(
        con.read_parquet(str(files / "cases.parquet")),
        con.read_parquet(str(files / directory)),
        procedure_types(con, codes),
        policy,
        None,
        diagnosis_codes(con, codes),
    ).to_pyarrow()
    return dict(zip(out["case_id"].to_pylist(), out["group_code"].to_pylist(), strict=True))


EXPECTED = {
    "a": "K35.8:47.0100",
    "b": "K35.8:保守",
    "c": "K80.1:51.2300+88.0100",
    "d": "K80.2:B",  # closest mean cost: 40 000 fen is nearer 39 000 than 20 000
    "e": "基层:J18.9",
    "f": "综合:K35-K38:相关手术",
}


def test_same_policy_and_schemas_compile_once_and_read_each_calls_rows(files: Path) -> None:
    compiled.COMPILED.clear()
    con = connect()
    policy = policy_with()
    before = compiled.compiles
    assert _group(con, files, policy) == EXPECTED
    assert compiled.compiles == before + 1
    # New input tables (new views of the files), the same policy re-read from its file: the
    # compiled SQL is reused.
    assert _group(con, files, policy_with()) == EXPECTED
    assert compiled.compiles == before + 1

    # A directory file with other rows and the same columns: no new compile (the SQL does
    # not depend on rows) and the new rows are what counts: without the core rows of K80.2
    # case d falls to its comprehensive group (none for K80 here: the blank group).
    d = pq.read_table(files / "directory.parquet")
    pq.write_table(
        d.filter(pc.invert(pc.starts_with(d["group_code"], "K80.2"))), files / "dir2.parquet"
    )
    got = _group(con, files, policy, "dir2.parquet")
    assert compiled.compiles == before + 1
    assert got == EXPECTED | {"d": "BLANK"}

    # A directory with another schema (an extra column): a new compile, the same answers.
    pq.write_table(d.append_column("note", pa.array(["x"] * d.num_rows)), files / "dir3.parquet")
    assert _group(con, files, policy, "dir3.parquet") == EXPECTED
    assert compiled.compiles == before + 2


def test_a_changed_policy_compiles_anew(files: Path, tmp_path: Path) -> None:
    compiled.COMPILED.clear()
    con = connect()
    before = compiled.compiles
    assert _group(con, files, policy_with()) == EXPECTED
    # Another tie-break: highest score first picks K80.2:B (210) for d whatever its cost —
    # and for a cheap case too, where closest mean cost picked K80.2:A.
    rows = [*CASE_ROWS, case("g", "K80.200", ["51.2300"], 19000)]
    pq.write_table(CASES.conform(pa.Table.from_pylist(rows)), files / "cases.parquet")
    assert _group(con, files, policy_with())["g"] == "K80.2:A"
    assert compiled.compiles == before + 1
    changed = policy_with({"grouping.tie_break": ["highest_score"]})
    assert _group(con, files, changed)["g"] == "K80.2:B"
    assert compiled.compiles == before + 2
    # A policy file edited on disk and loaded again: keyed by content, not by object.
    from opendip.policy import load_policy

    text = (POLICIES / "demo-region.yaml").read_text(encoding="utf-8")
    edited = tmp_path / "edited.yaml"
    edited.write_text(text.replace("target_grouping_rate: 0.9", "target_grouping_rate: 0.8"))
    assert "target_grouping_rate: 0.8" in edited.read_text()
    _group(con, files, load_policy(edited))
    assert compiled.compiles == before + 3
    _group(con, files, load_policy(edited))
    assert compiled.compiles == before + 3


def test_compiled_equals_the_rule_steps_run_directly(files: Path) -> None:
    """The compiled path and the rule steps built and run directly give the same rows."""
    con = connect()
    codes = demo_code_tables()
    inputs = {
        "cases": con.read_parquet(str(files / "cases.parquet")),
        "directory": con.read_parquet(str(files / "directory.parquet")),
        "procedure_types": procedure_types(con, codes),
        "diagnosis_codes": diagnosis_codes(con, codes),
    }
    policy = policy_with()
    direct = grouping(inputs, policy, None, (), Steps(spark=False)).to_pyarrow()
    via = group_cases(
        inputs["cases"], inputs["directory"], inputs["procedure_types"], policy, None,
        inputs["diagnosis_codes"],
    ).to_pyarrow()  # fmt: skip
    assert via.sort_by("case_id") == direct.sort_by("case_id")
    assert direct.num_rows == len(CASE_ROWS)


def test_inputs_that_are_expressions_are_bound_as_views(files: Path) -> None:
    """An input that is an expression (here: filtered cases, an in-memory directory) is
    read through a view of it, never by a stale name."""
    con = connect()
    codes = demo_code_tables()
    cases = con.read_parquet(str(files / "cases.parquet"))
    out = group_cases(
        cases.filter(cases.case_id != "a"),
        table_from_arrow(con, DIR, "some_directory"),
        procedure_types(con, codes),
        policy_with(),
        None,
        diagnosis_codes(con, codes),
    ).to_pyarrow()
    got = dict(zip(out["case_id"].to_pylist(), out["group_code"].to_pylist(), strict=True))
    assert got == {k: v for k, v in EXPECTED.items() if k != "a"}
