"""Lead ids, ranking, severity; input errors; text helpers."""

import ibis
import pyarrow as pa
import pytest

from opendip.supervision import LEADS, SupervisionInputError, SupervisionInputs, supervise
from opendip.supervision.leads import rank_leads
from opendip.supervision.prepare import prepare_stays
from opendip.supervision.text import pct, yuan

from .conftest import D, case, cases_table


def _found(rows):
    return ibis.memtable(
        pa.table(
            {
                "lead_type": [r[0] for r in rows],
                "key": [r[1] for r in rows],
                "hospital_id": ["H001"] * len(rows),
                "department": pa.nulls(len(rows), pa.string()),
                "doctor_id": pa.nulls(len(rows), pa.string()),
                "case_ids": [[r[1]] for r in rows],
                "score": [r[2] for r in rows],
                "impact_fen": [r[3] for r in rows],
                "evidence": [f"证据{r[1]}" for r in rows],
            }
        )
    )


def test_ids_ranking_and_duplicates():
    rows = [
        ("overlong_stay", "C1", 1.5, 100),
        ("overlong_stay", "C2", 2.0, 50),
        ("overlong_stay", "C2", 1.0, 50),  # duplicated case id: the stronger one is kept
        ("cost_shifting", "H009", 6.0, 1_000),
        ("low_standard_admission", "C3", 0.5, 10),
        ("low_standard_admission", "C4", 0.9, 10),
        ("low_standard_admission", "C5", 0.7, 10),
        ("low_standard_admission", "C6", 0.1, 10),
        ("low_standard_admission", "C7", 0.2, 10),
    ]
    out = rank_leads([_found(rows)], "2026-01~2026-12").to_pyarrow()
    LEADS.conform(out)  # contract holds
    by_id = {r["lead_id"]: r for r in out.to_pylist()}
    assert set(by_id) == {"OL-C1", "OL-C2", "CS-H009@2026-01~2026-12", "LS-C3", "LS-C4", "LS-C5",
                          "LS-C6", "LS-C7"}  # fmt: skip
    assert by_id["OL-C2"]["score"] == 2.0
    assert by_id["OL-C2"]["rank_in_type"] == 1 and by_id["OL-C1"]["rank_in_type"] == 2
    # overall: by amount at stake
    assert out["lead_id"].to_pylist()[:3] == ["CS-H009@2026-01~2026-12", "OL-C1", "OL-C2"]
    assert out["rank_overall"].to_pylist() == list(range(1, 9))
    # severity by strength within type: percent rank < 0.2 high, < 0.5 medium
    sev = {k: by_id[k]["severity"] for k in ("LS-C4", "LS-C5", "LS-C3", "LS-C7", "LS-C6")}
    assert sev == {
        "LS-C4": "high",
        "LS-C5": "medium",
        "LS-C3": "low",
        "LS-C7": "low",
        "LS-C6": "low",
    }
    assert all(r["status"] == "open" for r in by_id.values())
    # deterministic: the same input in another order gives the same table
    again = rank_leads([_found(list(reversed(rows)))], "2026-01~2026-12").to_pyarrow()
    assert again.equals(out)


def test_missing_required_column_is_named(con, policy):
    table = cases_table([case("A")]).drop(["patient_id"])
    with pytest.raises(SupervisionInputError, match=r"病例表.*patient_id（人员编号）"):
        prepare_stays(SupervisionInputs(cases=con.create_table("bad1", table)), policy)


def test_bad_optional_tables_are_named(con, policy):
    cases = con.create_table("ok1", cases_table([case("A")]))
    bad = con.create_table("bad2", pa.table({"hospital_id": ["H001"]}))
    with pytest.raises(SupervisionInputError, match="医疗机构表"):
        prepare_stays(SupervisionInputs(cases=cases, hospitals=bad), policy)
    with pytest.raises(SupervisionInputError, match=r"入组结果表.*case_id"):
        prepare_stays(SupervisionInputs(cases=cases, grouped=bad), policy)
    with pytest.raises(SupervisionInputError, match="分值结果表"):
        prepare_stays(SupervisionInputs(cases=cases, scored=bad), policy)


def test_uncastable_column_is_named(con, policy):
    table = (
        cases_table([case("A")])
        .drop(["admit_date"])
        .append_column("admit_date", pa.array([[1]], pa.list_(pa.int64())))
    )
    with pytest.raises(SupervisionInputError, match="admit_date"):
        prepare_stays(SupervisionInputs(cases=con.create_table("bad3", table)), policy)


def test_empty_period_and_notes(con, policy):
    empty = con.create_table("empty1", cases_table([case("A")]).slice(0, 0))
    result = supervise(SupervisionInputs(cases=empty), policy)
    assert result.leads.num_rows == 0 and result.period == "empty"
    assert any("分值结果" in n for n in result.notes)
    assert any("门诊" in n for n in result.notes)


def test_text_helpers(con):
    t = con.create_table("txt", pa.table({"f": [123456, -250, None], "s": [0.12345, 1.0, None]}))
    got = t.select(y=yuan(t.f), p=pct(t.s)).to_pyarrow().to_pylist()
    assert got == [
        {"y": "1234.56", "p": "12.3%"},
        {"y": "-2.50", "p": "100.0%"},
        {"y": "—", "p": "—"},
    ]


def test_date_columns_define_los(con, policy):
    same_day = case("A", admit=D(2026, 3, 1), los=0)
    broken = case("B", admit=D(2026, 3, 5), los=0)
    broken["discharge_date"] = D(2026, 3, 1)
    stays = prepare_stays(
        SupervisionInputs(cases=con.create_table("los1", cases_table([same_day, broken]))), policy
    )
    got = dict(
        stays.select("case_id", "los").to_pyarrow().to_pylist()[i].values() for i in range(2)
    )
    assert got == {"A": policy.qc.same_day_los, "B": None}
