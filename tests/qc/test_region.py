"""On a generated synthetic region: every injected error found, no clean case flagged; the
CLI writes its tables and a readable workbook; summaries add up."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from opendip.cli.main import app
from opendip.codes import demo_code_tables
from opendip.engine import connect
from opendip.policy import demo_policy_path, load_policy
from opendip.qc import codes_to_ibis, load_rule_set, run_qc
from opendip.qc.summary import by_hospital, by_rule, evaluate_labels
from opendip.synth import QC_LABELS, Rates, generate_region

RUN_DATE = dt.date(2027, 1, 15)


@pytest.fixture(scope="module")
def region(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qc-region")
    generate_region(
        out, hospitals=6, cases_per_year=2500, years=(2026,), seed=11, rates=Rates(qc_error=0.1)
    )
    return out


@pytest.fixture(scope="module")
def measured(region):
    con = connect()
    cases = con.read_parquet(str(region / "cases_2026.parquet"))
    rules = load_rule_set()
    result = run_qc(
        cases, codes_to_ibis(con, demo_code_tables()), rules, load_policy(demo_policy_path()),
        RUN_DATE,
    )  # fmt: skip
    per_label, clean = evaluate_labels(
        result.findings, con.read_parquet(str(region / "labels.parquet")), cases, rules
    )
    return result, per_label.to_pyarrow().to_pylist(), clean.to_pyarrow()


def test_every_injected_error_is_found_and_no_clean_case_is_flagged(measured):
    _, per_label, clean = measured
    by_label = {r["label"]: r for r in per_label}
    assert set(by_label) == set(QC_LABELS)
    for label, r in by_label.items():
        assert r["injected"] > 0, label
        assert r["found"] == r["injected"], (label, r)
        assert r["true_positives"] == r["flagged"], (label, r)
    assert clean.num_rows == 0, clean.slice(0, 5).to_pylist()


def test_case_status_has_every_row_and_blocks_exactly_the_error_cases(measured, region):
    result, _, _ = measured
    status = result.case_status.to_pyarrow()
    cases = pq.read_table(region / "cases_2026.parquet", columns=["case_id"])
    assert status.num_rows == cases.num_rows
    findings = result.findings.to_pyarrow()
    error_ids = {f["case_id"] for f in findings.to_pylist() if f["level"] == "error"}
    blocked = {s["case_id"] for s in status.to_pylist() if s["blocking"]}
    assert blocked == error_ids


def test_summaries_add_up(measured):
    result, _, _ = measured
    status = result.case_status.to_pyarrow().to_pylist()
    hospitals = by_hospital(result.case_status).to_pyarrow().to_pylist()
    assert sum(h["cases"] for h in hospitals) == len(status)
    for h in hospitals:
        mine = [s for s in status if s["hospital_id"] == h["hospital_id"]]
        assert h["passed"] == sum(s["passed"] for s in mine)
        assert h["pass_rate"] == pytest.approx(h["passed"] / h["cases"])
    rules = by_rule(result.findings, result.case_status, result.rules).to_pyarrow().to_pylist()
    assert [r["rule_id"] for r in rules] == result.rules.ids  # every rule, in file order
    findings = result.findings.to_pyarrow().to_pylist()
    assert sum(r["findings"] for r in rules) == len(findings)


def test_cli_writes_tables_and_workbook(region, tmp_path):
    out = tmp_path / "qc"
    result = CliRunner().invoke(
        app,
        [
            "qc", "--policy", str(demo_policy_path()), "--cases", str(region / "cases_2026.parquet"),
            "--out", str(out), "--labels", str(region / "labels.parquet"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "合格率" in result.output and "查全率" in result.output
    assert "无注入错误却被判为错误的病例记录：0" in result.output
    for name in ("findings", "case_status", "summary_by_hospital", "summary_by_rule"):
        assert (out / f"{name}.parquet").exists()
    findings = pq.read_table(out / "findings.parquet")
    assert findings.column_names == [
        "case_id", "hospital_id", "rule_id", "level", "field", "value", "message",
    ]  # fmt: skip
    from openpyxl import load_workbook

    book = load_workbook(out / "qc_report.xlsx", read_only=True)
    assert book.sheetnames == ["汇总", "按医院", "按规则", "问题明细"]
    detail = list(book["问题明细"].iter_rows(values_only=True))
    assert detail[0] == (
        "结算清单号",
        "医疗机构代码",
        "规则编号",
        "规则名称",
        "级别",
        "字段",
        "值",
        "问题描述",
    )
    assert len(detail) == findings.num_rows + 1
    assert {row[4] for row in detail[1:]} <= {"错误", "警告", "提示"}
    summary = dict(list(book["汇总"].iter_rows(values_only=True))[1:])
    assert summary["检查病例数"] == pq.read_table(out / "case_status.parquet").num_rows


def test_cli_bad_rule_file_fails_with_the_rule_named(region, tmp_path):
    rules = tmp_path / "bad.yaml"
    rules.write_text(
        "version: '1'\nrules:\n  - {id: QC-X-001, name: x, level: 严重, field: age, message: m,"
        " check: {type: required}}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app,
        ["qc", "--policy", str(demo_policy_path()), "--cases", str(region / "cases_2026.parquet"),
         "--out", str(tmp_path / "o"), "--rules", str(rules)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "QC-X-001" in result.output and "level" in result.output
    bad_date = CliRunner().invoke(
        app,
        ["qc", "--policy", str(demo_policy_path()), "--cases", str(region / "cases_2026.parquet"),
         "--out", str(tmp_path / "o"), "--run-date", "2027-13-01"],
    )  # fmt: skip
    assert bad_date.exit_code == 1 and "--run-date" in bad_date.output
