"""Confirmed supervision findings change money at the clearing; unconfirmed ones change
nothing; reconciliation still holds to the fen; bad findings are refused in Chinese."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opendip.settlement.errors import InputDataError
from opendip.settlement.findings import normalise_findings
from opendip.settlement.run import InputFiles, run_year
from tests.reports.region import make_region

MONEY = ("dip_amount_fen", "fund_payable_fen", "clearing_total_fen", "clearing_payment_fen")


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_region(tmp_path_factory.mktemp("findings-region"))


def files(root: Path) -> InputFiles:
    import json

    mean = json.loads((root / "directory.metrics.json").read_text())["all_case_mean_fen"]
    return InputFiles(
        policy=root / "policy.yaml",
        cases=root / "cases_2026.parquet",
        grouped=root / "grouped.parquet",
        directory=root / "directory.parquet",
        hospitals=root / "hospitals.parquet",
        all_case_mean_fen=mean,
        # the region's clearing applied last year's credit grades (withholding share)
        credit=root / "credit" / "2025" / "ratings.parquet",
    )


@pytest.fixture(scope="module")
def chosen(region: Path) -> dict[str, str]:
    con = duckdb.connect()
    s = region / "settlement" / "cases.parquet"
    raw = region / "cases_2026.parquet"
    # A core case at H001 to move into another core group with a different score.
    case, group = con.execute(
        f"""SELECT case_id, group_code FROM '{s}' WHERE hospital_id = 'H001'
            AND deviation = 'normal' ORDER BY case_id LIMIT 1"""
    ).fetchone()
    target = con.execute(
        f"""SELECT group_code FROM '{region / "directory.parquet"}'
            WHERE group_type = 'core' AND group_code <> ? ORDER BY score DESC LIMIT 1""",
        [group],
    ).fetchone()[0]
    # Two DIP stays of one hospital (H003) to merge; and a case at H002 for a deduction.
    first, second = (
        r[0]
        for r in con.execute(
            f"""SELECT s.case_id FROM '{s}' s JOIN '{raw}' r USING (case_id)
                WHERE s.hospital_id = 'H003' AND r.insurance_type = (
                    SELECT insurance_type FROM '{raw}' WHERE hospital_id = 'H003' LIMIT 1)
                ORDER BY s.case_id LIMIT 2"""
        ).fetchall()
    )
    deduct_case = con.execute(
        f"SELECT case_id FROM '{s}' WHERE hospital_id = 'H002' ORDER BY case_id LIMIT 1"
    ).fetchone()[0]
    return {
        "case": case, "target": target, "first": first, "second": second,
        "deduct_case": deduct_case,
    }  # fmt: skip


def findings_table(c: dict[str, str], status: str = "confirmed") -> pa.Table:
    return pa.table(
        {
            "finding_id": ["F1", "F2", "F3", "F4"],
            "lead_id": ["UPC-1", "RDM-1", "CST-1", "UPC-2"],
            "hospital_id": ["H001", "H003", "H002", "H001"],
            "kind": ["regroup", "merge", "deduct", "deduct"],
            "case_id": [c["case"], c["second"], c["deduct_case"], c["case"]],
            "target_group_code": [c["target"], None, None, None],
            "merge_into": [None, c["first"], None, None],
            "amount_yuan": [None, None, "1234.56", "99.99"],
            "decision": ["经核实高套，改入", "经核实分解住院，合并", "扣款", "扣款（未确认）"],
            "status": [status, status, status, "open"],
        }
    )


@pytest.fixture(scope="module")
def applied(region: Path, chosen: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("findings")
    pq.write_table(findings_table(chosen), work / "findings.parquet")
    run_year(files(region), 2026, work / "run", findings=work / "findings.parquet", excel=True,
             assessment=region / "assessment" / "assessment.parquet",
             case_excel=False)  # fmt: skip
    return work / "run"


def test_reconciliation_holds_to_the_fen(applied: Path):
    h = pq.read_table(applied / "hospitals.parquet").to_pylist()
    for r in h:
        assert r["clearing_total_fen"] == (
            r["adjusted_fen"] - r["deposit_deducted_fen"] - r["findings_deducted_fen"]
        )
        assert r["clearing_payment_fen"] == r["clearing_total_fen"] - r["advances_fen"]
    for p in pq.read_table(applied / "reconciliation.parquet").to_pylist():
        rows = [r for r in h if r["pool"] == p["pool"]]
        assert p["cases_equal_hospitals"] and p["clearing_identity"]
        assert p["clearing_total_fen"] == sum(r["clearing_total_fen"] for r in rows)
        assert p["findings_deducted_fen"] == sum(r["findings_deducted_fen"] for r in rows)
    assert "监管结果应用" in (applied / "reconciliation.md").read_text(encoding="utf-8")


def test_each_confirmed_finding_is_applied(region: Path, applied: Path, chosen: dict[str, str]):
    con = duckdb.connect()
    cases = applied / "cases.parquet"
    group, score = con.execute(
        f"SELECT group_code, base_score FROM '{cases}' WHERE case_id = ?", [chosen["case"]]
    ).fetchone()
    expected = con.execute(
        f"SELECT score FROM '{region / 'directory.parquet'}' WHERE group_code = ?",
        [chosen["target"]],
    ).fetchone()[0]
    assert (group, score) == (chosen["target"], expected)
    # The merged stay is settled as part of the first one: its fund payment added.
    gone = con.execute(
        f"""SELECT (SELECT count(*) FROM '{cases}' WHERE case_id = $1)
                 + (SELECT count(*) FROM '{applied / "not_dip.parquet"}' WHERE case_id = $1)""",
        [chosen["second"]],
    ).fetchone()[0]
    assert gone == 0
    ffs = con.execute(
        f"SELECT ffs_fund_fen FROM '{cases}' WHERE case_id = ?", [chosen["first"]]
    ).fetchone()[0]
    both = con.execute(
        f"SELECT sum(fund_paid) FROM '{region / 'cases_2026.parquet'}' WHERE case_id IN (?, ?)",
        [chosen["first"], chosen["second"]],
    ).fetchone()[0]
    assert ffs == both
    h = {
        (r["hospital_id"], r["pool"]): r
        for r in pq.read_table(applied / "hospitals.parquet").to_pylist()
    }
    deducted = {k: r["findings_deducted_fen"] for k, r in h.items() if r["findings_deducted_fen"]}
    assert list(deducted.values()) == [123456]  # the open 99.99 yuan deduction is not applied
    assert [k[0] for k in deducted] == ["H002"]
    listed = pq.read_table(applied / "findings.parquet").to_pylist()
    assert [r["finding_id"] for r in listed] == ["F1", "F3", "F2"]  # by hospital, confirmed only
    assert {r["kind_label"] for r in listed} == {"改入病种", "合并分解住院", "扣减金额"}
    assert listed[0]["settled_group"] == chosen["target"]
    applied_counts = sum(r["findings_applied"] for r in h.values())
    assert applied_counts == 3


def test_unconfirmed_findings_change_nothing(region: Path, chosen: dict[str, str], tmp_path: Path):
    pq.write_table(findings_table(chosen, status="open"), tmp_path / "f.parquet")
    run_year(files(region), 2026, tmp_path / "run", findings=tmp_path / "f.parquet",
             assessment=region / "assessment" / "assessment.parquet",
             excel=False, case_excel=False)  # fmt: skip
    base = pq.read_table(region / "settlement" / "hospitals.parquet")
    got = pq.read_table(tmp_path / "run" / "hospitals.parquet")
    for col in MONEY:
        assert got.column(col).equals(base.column(col)), col
    assert pq.read_table(region / "settlement" / "cases.parquet").equals(
        pq.read_table(tmp_path / "run" / "cases.parquet")
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"decision": ["", "x", "x", "x"]}, "第 2 行 decision"),
        ({"kind": ["upgrade", "merge", "deduct", "deduct"]}, "第 2 行 kind"),
        ({"amount_yuan": [None, None, "-5", "1"]}, "第 4 行 amount_yuan"),
        ({"amount_yuan": [None, None, "1.234", "1"]}, "第 4 行 amount_yuan"),
        ({"finding_id": ["F1", "F1", "F3", "F4"]}, "第 3 行 finding_id：编号 F1 重复"),
    ],
)
def test_bad_findings_rows_are_named(chosen: dict[str, str], change: dict, message: str):
    t = findings_table(chosen)
    for col, values in change.items():
        t = t.set_column(t.schema.get_field_index(col), col, pa.array(values))
    with pytest.raises(InputDataError, match=message):
        normalise_findings(t)


@pytest.mark.parametrize(
    ("col", "row", "value", "message"),
    [
        ("case_id", 0, "NOPE", "不在本次清算中"),
        ("hospital_id", 0, "H002", "不属于所列医疗机构"),
        ("target_group_code", 0, "ZZZ", "改入的病种不在病种目录中"),
    ],
)
def test_findings_that_do_not_fit_the_year_are_refused(
    region: Path, chosen: dict[str, str], tmp_path: Path, col: str, row: int, value: str,
    message: str,
):  # fmt: skip
    t = findings_table(chosen)
    values = t.column(col).to_pylist()
    values[row] = value
    t = t.set_column(t.schema.get_field_index(col), col, pa.array(values, pa.string()))
    pq.write_table(t, tmp_path / "f.parquet")
    with pytest.raises(InputDataError, match=message):
        run_year(files(region), 2026, tmp_path / "run", findings=tmp_path / "f.parquet",
                 excel=False, case_excel=False)  # fmt: skip


def test_publication_lists_the_findings(applied: Path, region: Path):
    from opendip.reports.region import build_publication

    pub = build_publication(applied, search_dirs=(region,))
    listed = pub.table("publication.findings").rows
    assert [r["kind_label"] for r in listed] == ["改入病种", "扣减金额", "合并分解住院"]
    assert [r["amount_fen"] for r in listed] == [None, 123456, None]
    clearing = pub.table("publication.clearing").rows
    totals = [r for r in clearing if r.get("is_total")]
    assert sum(int(r["findings_deducted_fen"]) for r in totals) == 123456
