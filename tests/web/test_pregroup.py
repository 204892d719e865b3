"""事前预分组 and /api/pregroup: group, score, deviation, settled score, the point value used
(and which), the estimated DIP amount, the candidate groups of the diagnosis; the same money
as the batch for the same case."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from opendip.scoring import ScoringError
from opendip.scoring.single import score_case
from tests.web.conftest import REGION


def _body(case: dict, **extra) -> dict:
    return {
        "hospital_id": case["hospital_id"],
        "insurance_type": case["insurance_type"],
        "sex": case["sex"],
        "age": case["age"],
        "discharge_date": case["discharge_date"].isoformat(),
        "los_days": case["los_days"],
        "main_diagnosis": case["main_diagnosis"],
        "other_diagnoses": case["other_diagnoses"],
        "main_procedure": case["main_procedure"],
        "other_procedures": case["other_procedures"],
        "total_cost_yuan": f"{case['total_cost'] / 100:.2f}",
        "discharge_method": case["discharge_method"] or "1",
        **extra,
    }


def test_pregroup_estimates_a_payment_at_the_budget_point_value(clients) -> None:
    body = {
        "hospital_id": "H001",
        "main_diagnosis": "a09.900x001",  # typed in lower case: the table spells it A09.900x001
        "total_cost_yuan": "3000",
        "los_days": 5,
        "age": 40,
        "discharge_date": "2026-03-10",
    }
    r = clients("agency").post("/api/pregroup", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["main_diagnosis"] == "A09.900x001"
    assert out["diagnosis_name"] and "胃肠炎" in out["diagnosis_name"]
    assert out["group_code"] == "基层:A09.9"
    # The demo policy's budget point value for employees in March 2026.
    assert out["point_value_basis"] == "budget"
    assert out["point_value_source"] == "2026-03 职工预算点值（政策规定）"
    assert Decimal(out["point_value"]) == Decimal("225")
    # Basic group: no hospital coefficient; amount = settled score × point value, half up.
    settled = Decimal(out["settled_score"])
    assert out["deviation"] == "normal" and settled == Decimal(out["base_score"])
    expected = (settled * Decimal(out["point_value"]) * 100).quantize(Decimal(1), "ROUND_HALF_UP")
    assert out["estimated_amount_fen"] == int(expected)
    assert "DIP金额" in out["scoring_note"]
    # The candidate groups of the diagnosis: the basic group and the comprehensive fallback.
    cands = {c["group_code"]: c for c in out["candidates"]}
    assert cands["基层:A09.9"]["current"] is True
    assert cands["基层:A09.9"]["estimated_amount_fen"] == out["estimated_amount_fen"]
    assert cands["基层:A09.9"]["how"] == "无计入分组的手术操作（保守治疗）"
    fallback = [c for c in out["candidates"] if c["group_type"] == "comprehensive"]
    assert len(fallback) == 1 and fallback[0]["estimated_amount_fen"] > 0


def test_pregroup_without_a_hospital_groups_only(clients) -> None:
    r = clients("agency").post(
        "/api/pregroup", json={"main_diagnosis": "A09.900x001", "total_cost_yuan": "3000"}
    )
    out = r.json()
    assert out["group_code"] == "基层:A09.9" and out["estimated_amount_fen"] is None
    assert out["scoring_note"] == "请选择医疗机构后估算分值与金额"


def test_single_case_equals_batch_money(clients) -> None:
    """A published annual clearing's cases, entered one by one with the published point
    value: the same group, settled score and DIP amount to the fen as the batch."""
    agency = clients("agency")
    run = agency.post("/api/runs", json={"kind": "annual", "period": "2026"}).json()
    for step in ("approve", "publish"):
        assert agency.post(f"/api/runs/{run['id']}/{step}").status_code == 200
    settled = pq.read_table(Path(run["manifest"]["outputs"]["settlement"]) / "cases.parquet")
    cases = {c["case_id"]: c for c in pq.read_table(REGION / "cases_2026.parquet").to_pylist()}
    checked = 0
    for dev in ("normal", "high", "low"):
        rows = settled.filter(pc.equal(settled["deviation"], dev)).slice(0, 3).to_pylist()
        for row in rows:
            case = cases[row["case_id"]]
            r = clients("h1" if case["hospital_id"] == "H001" else "agency").post(
                "/api/pregroup", json=_body(case, point_value_basis="published")
            )
            out = r.json()
            assert out["group_code"] == row["group_code"], row["case_id"]
            assert out["deviation"] == row["deviation"]
            assert Decimal(out["settled_score"]) == row["settled_score"]
            assert Decimal(out["point_value"]) == row["point_value"]
            assert out["estimated_amount_fen"] == row["dip_amount_fen"], row["case_id"]
            assert out["point_value_basis"] == "published"
            assert (
                f"第 {run['id']} 号运行（2026 年终清算，已公示）的结算点值"
                == (out["point_value_source"])
            )
            checked += 1
    assert checked >= 5


def test_pregroup_form_shows_refusals(clients) -> None:
    h1 = clients("h1")
    r = h1.post(
        "/pregroup",
        data={
            "csrf_token": h1.headers["X-CSRF-Token"],
            "main_diagnosis": "A09.9",
            "total_cost_yuan": "abc",
        },
        headers={"HX-Request": "true"},
    )
    # The fragment carries the message; static/app.js swaps 422 fragments in.
    assert r.status_code == 422 and 'role="alert"' in r.text and "总费用格式不正确" in r.text
    ok = h1.post(
        "/pregroup",
        data={
            "csrf_token": h1.headers["X-CSRF-Token"],
            "main_diagnosis": "a09.900X001",
            "total_cost_yuan": "3000",
        },
        headers={"HX-Request": "true"},
    )
    assert ok.status_code == 200 and 'id="pg-amount"' in ok.text
    assert "该诊断可入的病种" in ok.text and "预算点值" in ok.text


def test_score_case_refuses_a_missing_amount() -> None:
    from opendip.policy import PolicyFile, demo_policy_path

    case = pq.read_table(REGION / "cases_2026.parquet").slice(0, 1).to_pylist()[0]
    case["fund_paid"] = None
    grouped = {"group_code": "X", "group_type": "core", "base_score": Decimal("10")}
    hospital = {"hospital_id": case["hospital_id"], "level": "secondary"}
    with pytest.raises(ScoringError, match="统筹基金支付"):
        score_case(case, grouped, None, hospital, PolicyFile.read(demo_policy_path()))


def test_pregroup_flags_a_new_technology_settled_by_item(clients) -> None:
    """Demo policy: 32.23 (开放性肺病损消融术) is settled by item from 2026-01-01 to
    2026-06-30: the result says so as a typed flag with the item's code, not only in its
    text; after the transition period (July) the same case is scored by DIP."""
    cases = pq.read_table(REGION / "cases_2026.parquet").to_pylist()
    case = next(c for c in cases if c["main_procedure"] and c["hospital_id"] == "H001")
    body = _body(case, discharge_date="2026-03-10")
    body["other_procedures"] = [*body["other_procedures"], "32.23"]
    agency = clients("agency")
    out = agency.post("/api/pregroup", json=body).json()
    assert out["settled_by_item"] is True and out["new_technology_code"] == "32.23"
    assert out["estimated_amount_fen"] is None and out["case_score"] is None
    assert "按项目付费" in out["scoring_note"] and "新技术新项目" in out["scoring_note"]
    later = agency.post("/api/pregroup", json={**body, "discharge_date": "2026-07-10"}).json()
    assert later["settled_by_item"] is False and later["new_technology_code"] is None
    assert later["estimated_amount_fen"] is not None
    plain = agency.post("/api/pregroup", json=_body(case)).json()
    assert plain["settled_by_item"] is False
