"""病案首页质控: hand-computed findings and pass rates on five front pages."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opendip.policy.sections.qc import QcPolicy
from opendip.qc.frontpage import (
    FrontPageRuleError,
    check_front_pages,
    load_front_page_rules,
    rules_for_qc_policy,
)

D = dt.date


def _pages() -> pa.Table:
    # C1 agrees and is on time (discharged 3-10, submitted 3-17: day 7 = limit)
    # C2 main diagnosis differs (I21.0 vs I21.9) and main procedure differs (null vs 36.0600)
    # C3 late: submitted 3-20, day 10 > 7
    # C4 department and main diagnosis empty (the diagnosis then also differs from the list)
    # C5 no settlement list: only completeness and timeliness apply (all fine)
    return pa.table(
        {
            "case_id": ["C1", "C2", "C3", "C4", "C5"],
            "hospital_id": ["H1", "H1", "H2", "H2", "H2"],
            "patient_id": ["B1", "B2", "B3", "B4", "B5"],
            "sex": ["1", "2", "1", "2", "1"],
            "birth_date": [D(1960, 1, 1)] * 5,
            "admit_date": [D(2026, 3, 1)] * 5,
            "discharge_date": [D(2026, 3, 10)] * 5,
            "department": ["A03", "A03", "A03", " ", "A03"],
            "main_diagnosis": ["J18.9", "I21.0", "K35.8", None, "J18.9"],
            "main_procedure": [None, None, "47.0100", None, None],
            "submitted_date": [D(2026, 3, 17), D(2026, 3, 12), D(2026, 3, 20), D(2026, 3, 11),
                               D(2026, 3, 10)],
        }
    )  # fmt: skip


def _lists() -> pa.Table:
    return pa.table(
        {
            "case_id": ["C1", "C2", "C3", "C4"],
            "hospital_id": ["H1", "H1", "H2", "H2"],
            "main_diagnosis": ["J18.9", "I21.9", "K35.8", "O80.0"],
            "main_procedure": [None, "36.0600", "47.0100", None],
        }
    )


def test_findings_pass_rate_and_single_case() -> None:
    qc = QcPolicy()
    result = check_front_pages(_pages(), _lists(), qc)
    got = list(
        zip(
            result.findings["case_id"].to_pylist(),
            result.findings["rule_id"].to_pylist(),
            result.findings["field"].to_pylist(),
            result.findings["message"].to_pylist(),
            strict=True,
        )
    )
    assert got == [
        ("C2", "FP-CON-001", "front_pages.main_diagnosis",
         "主要诊断编码不一致：病案首页 I21.0，结算清单 I21.9"),
        ("C2", "FP-CON-002", "front_pages.main_procedure",
         "主要手术及操作编码不一致：病案首页 （空），结算清单 36.0600"),
        ("C3", "FP-TIME-001", "front_pages.submitted_date",
         "病案首页上传日期 2026-03-20 在出院后第 10 天，超过 7 天时限"),
        ("C4", "FP-CON-001", "front_pages.main_diagnosis",
         "主要诊断编码不一致：病案首页 （空），结算清单 O80.0"),
        ("C4", "FP-REQ-001", "front_pages.department", "病案首页“出院科别”为空"),
        ("C4", "FP-REQ-001", "front_pages.main_diagnosis", "病案首页“主要诊断编码”为空"),
    ]  # fmt: skip
    assert result.status["passed"].to_pylist() == [True, False, False, False, True]
    assert result.status["error_count"].to_pylist() == [0, 2, 1, 3, 0]
    # H1: 1 of 2 passed (0.5); H2: 1 of 3 passed
    assert result.by_hospital.to_pylist() == [
        {"hospital_id": "H1", "checked": 2, "passed": 1},
        {"hospital_id": "H2", "checked": 3, "passed": 1},
    ]
    one = check_front_pages(_pages(), _lists(), qc, case_id="C4")
    assert one.findings.equals(result.findings.slice(3, 3))


def test_submit_days_and_disabled_rules_are_policy() -> None:
    qc = QcPolicy(front_page_submit_days=10, disabled_rules=["FP-CON-002"])
    result = check_front_pages(_pages(), _lists(), qc, rules_for_qc_policy(qc))
    assert set(result.findings["rule_id"].to_pylist()) == {"FP-CON-001", "FP-REQ-001"}
    assert result.status["passed"].to_pylist() == [True, False, True, False, True]


def test_bad_rule_file_names_the_rule(tmp_path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "version: '1'\nname: x\nrules:\n  - {id: FP-X, name: x, level: error, "
        "fields: [nosuch], message: m, check: {type: required}}\n",
        encoding="utf-8",
    )
    with pytest.raises(FrontPageRuleError, match=r"rules\.0.*未知字段 nosuch"):
        load_front_page_rules(path)


def test_pass_rate_is_an_assessment_indicator() -> None:
    """H1 passes 1 of 2 front pages, H2 1 of 3; weight 10, full at 1.0, none at 0:
    H1 10 × 1/2 = 5.0000, H2 10 × 1/3 = 3.3333 (half up); totals × 100 ÷ 10."""
    from pathlib import Path

    from opendip.assessment.engine import AssessmentError, AssessmentInputs, assess
    from opendip.engine import connect, table_from_arrow
    from opendip.policy import PolicyFile
    from opendip.policy.sections.assessment import AssessmentPolicy, Indicator

    demo = PolicyFile.read(Path(__file__).parents[2] / "policies" / "demo-region.yaml")
    card = AssessmentPolicy(
        decimals=4,
        indicators=[
            Indicator(id="front_page", measure="front_page_qc_pass_rate", weight=10,
                      target=1, zero_at=0)
        ],
    )  # fmt: skip
    policy = demo.periods()[-1][2].model_copy(update={"assessment": card})
    status = check_front_pages(_pages(), _lists(), QcPolicy()).status
    con = connect()
    ids = status.select(["case_id", "hospital_id"])
    inp = AssessmentInputs(
        cases=table_from_arrow(con, ids, "fp_cases"),
        grouped=table_from_arrow(
            con, pa.table({"case_id": ["C1"], "group_type": ["core"]}), "fp_grouped"
        ),
        hospitals=table_from_arrow(
            con, pa.table({"hospital_id": ["H1", "H2"], "level": ["tertiary"] * 2}), "fp_h"
        ),
    )
    with pytest.raises(AssessmentError, match=r"病案首页质控通过率.*--front-page-status"):
        assess(inp, policy)
    inp.front_page_status = table_from_arrow(con, status, "fp_status")
    result = assess(inp, policy)
    rows = result.breakdown.select(["hospital_id", "value", "points"]).to_pylist()
    assert [(r["hospital_id"], str(r["value"]), str(r["points"])) for r in rows] == [
        ("H1", "0.5000", "5.0000"),
        ("H2", "0.3333", "3.3333"),
    ]
    assert [str(s) for s in result.scores["assessment_score"].to_pylist()] == [
        "50.0000",
        "33.3330",
    ]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["J18.9", "I21.0", None]),
            st.sampled_from(["J18.9", "I21.0", None]),
            st.integers(min_value=0, max_value=12),
            st.booleans(),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_single_case_equals_batch(rows: list[tuple[str | None, str | None, int, bool]]) -> None:
    """Any front pages: one case's findings are its rows of the batch; a page passes exactly
    when it has no error finding; pass counts add up to the pages checked."""
    n = len(rows)
    ids = [f"C{i}" for i in range(n)]
    pages = pa.table(
        {
            "case_id": ids, "hospital_id": ["H1"] * n, "patient_id": ["B"] * n,
            "sex": ["1"] * n, "birth_date": [D(1960, 1, 1)] * n,
            "admit_date": [D(2026, 3, 1)] * n, "discharge_date": [D(2026, 3, 10)] * n,
            "department": ["A03"] * n, "main_diagnosis": [r[0] for r in rows],
            "submitted_date": [D(2026, 3, 10) + dt.timedelta(days=r[2]) for r in rows],
        }
    )  # fmt: skip
    listed = [i for i, r in enumerate(rows) if r[3]]
    lists = pa.table(
        {
            "case_id": pa.array([ids[i] for i in listed], pa.string()),
            "main_diagnosis": pa.array([rows[i][1] for i in listed], pa.string()),
        }
    )
    qc = QcPolicy()
    batch = check_front_pages(pages, lists, qc)
    errors = set(
        batch.findings.filter(pc.equal(batch.findings["level"], "error"))["case_id"].to_pylist()
    )
    assert batch.status["passed"].to_pylist() == [c not in errors for c in ids]
    assert sum(r["checked"] for r in batch.by_hospital.to_pylist()) == n
    for i in (0, n - 1):
        one = check_front_pages(pages, lists, qc, case_id=ids[i])
        mine = batch.findings.filter(pc.equal(batch.findings["case_id"], ids[i]))
        assert one.findings.equals(mine)
        late = rows[i][2] > qc.front_page_submit_days
        assert ("FP-TIME-001" in one.findings["rule_id"].to_pylist()) == late
