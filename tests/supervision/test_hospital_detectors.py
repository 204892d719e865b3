"""Cost shifting, upcoding (diagnosis shift, comorbidities, unbilled procedures) and
high-multiple clusters on one hand-built region of four tertiary hospitals."""

import math

import pytest

from opendip.supervision.cost_shifting import cost_shifting_leads
from opendip.supervision.overlong import high_multiple_cluster_leads
from opendip.supervision.upcoding import (
    comorbidity_leads,
    diagnosis_shift_leads,
    unbilled_procedure_leads,
)

from .conftest import D, Runner, case, cases_table, hospitals_table, scored_table, with_supervision


def _stay(cid: str, hospital: str, dx: str, cost: int, shifting: bool = False, **kw) -> dict:
    selfpay = cost // 5 if shifting else cost // 20  # 20 % vs 5 %
    oo = cost * 18 // 100 if shifting else cost * 3 // 100  # 18 % vs 3 %
    return case(cid, hospital_id=hospital, main_diagnosis=dx, total_cost=cost,
                personal_selfpay=selfpay, out_of_list_cost=oo, admit=D(2026, 3, 1), **kw)  # fmt: skip


def _region() -> tuple[list[dict], list[dict]]:
    cur, hist = [], []
    for h in ("H001", "H002", "H003"):
        for i in range(30):
            dx = "J18.100" if i < 2 else "J18.900"
            cost = 800_000 if i < 2 else 400_000
            doctor = f"{h}-D1" if i < 10 else f"{h}-D2"
            cur.append(_stay(f"{h}-{i:02d}", h, dx, cost, doctor_id=doctor))
    # H004: half its J18 stays coded to the costlier J18.1, ten of them at J18.9 cost
    for i in range(30):
        if i < 10:
            dx, cost = "J18.100", 450_000
        elif i < 15:
            dx, cost = "J18.100", 820_000
        else:
            dx, cost = "J18.900", 400_000
        cur.append(_stay(f"H004-{i:02d}", "H004", dx, cost, shifting=True))
    for i in range(25):
        hist.append(_stay(f"H004-h{i:02d}", "H004", "J18.900", 400_000))
    return cur, hist


@pytest.fixture(scope="module")
def stays(con, policy):
    cur, hist = _region()
    for r in hist:
        r["admit_date"] = D(2025, 3, 1)
        r["discharge_date"] = D(2025, 3, 6)
        r["settle_month"] = "2025-03"
    scored = scored_table(
        [
            (
                r["case_id"],
                r["hospital_id"],
                "high" if r["case_id"] in {f"H002-{i:02d}" for i in range(2, 10)} else "normal",
                "100",
            )
            for r in cur
        ]
    )
    levels = hospitals_table({h: "tertiary" for h in ("H001", "H002", "H003", "H004")})
    return (
        Runner(con)
        .stays(policy, cases_table(cur), history=cases_table(hist), hospitals=levels, scored=scored)
        .cache()
    )


def test_cost_shifting(stays, policy):
    (lead,) = cost_shifting_leads(stays, policy).to_pyarrow().to_pylist()
    assert lead["hospital_id"] == "H004"
    # H004 total = 10 × 4500 + 5 × 8200 + 15 × 4000 yuan = 14 600 000 fen; 18 % vs 3 % out of list
    assert lead["impact_fen"] == 2_190_000
    assert lead["score"] == pytest.approx(0.18 / 0.03, rel=1e-6)
    assert len(lead["case_ids"]) == 30
    for text in ("个人自费占比 20.0%", "目录外费用占比 18.0%", "同级医院分别为 5.0%、3.0%",
                 "本院历史期分别为 5.0%、3.0%", "目录外费用占比 ≥ 15%", "较本院历史上升 ≥ 5%",
                 "门诊"):  # fmt: skip
        assert text in lead["evidence"], text


def test_cost_shifting_thresholds(stays, policy):
    lax = with_supervision(
        policy,
        out_of_list_share_alert="0.5",
        cost_shift_rise_alert="0.5",
        cost_shift_peer_ratio_alert="10",
    )
    assert cost_shifting_leads(stays, lax).to_pyarrow().num_rows == 0


def test_diagnosis_shift(stays, policy):
    (lead,) = diagnosis_shift_leads(stays, policy).to_pyarrow().to_pylist()
    assert lead["hospital_id"] == "H004"
    assert lead["key"] == "DX-H004-J18"
    peer = (6 + 0.5) / (90 + 1)
    hist = 0.5 / 26
    # two-sample z against the 25 history stays (the larger of the peer and history z)
    z_hist = (15 / 30 - hist) / math.sqrt(hist * (1 - hist) * (1 / 30 + 1 / 25))
    z_peer = (15 / 30 - peer) / math.sqrt(peer * (1 - peer) * (1 / 30 + 1 / 90))
    assert lead["score"] == pytest.approx(max(z_hist, z_peer))
    excess = 15 - 30 * max(peer, hist)
    # 13 cases listed: the ten cheapest, then three of the dearer ones by id
    assert lead["case_ids"] == [f"H004-{i:02d}" for i in range(13)]
    assert lead["impact_fen"] == round(excess * (800_000 - 400_000))
    for text in ("本期 30 例中 15 例（50.0%）", "J18.1", "8000.00 元", "同级医院 90 例中占 7.1%"):
        assert text in lead["evidence"], text


def test_diagnosis_shift_needs_enough_cases(stays, policy):
    assert (
        diagnosis_shift_leads(stays, with_supervision(policy, upcoding_min_cases=31))
        .to_pyarrow()
        .num_rows
        == 0
    )


def test_no_comorbidity_or_procedure_signal_without_such_data(stays, policy):
    assert comorbidity_leads(stays, policy).to_pyarrow().num_rows == 0
    assert unbilled_procedure_leads(stays, policy).to_pyarrow().num_rows == 0


def test_high_multiple_clusters(stays, policy):
    leads = {
        r["key"]: r for r in high_multiple_cluster_leads(stays, policy).to_pyarrow().to_pylist()
    }
    assert sorted(leads) == ["H002-H002-D1", "H002-内科"]
    p = 0.5 / 111
    assert leads["H002-H002-D1"]["score"] == pytest.approx(
        (8 - 10 * p) / math.sqrt(10 * p * (1 - p))
    )
    assert leads["H002-H002-D1"]["case_ids"] == [f"H002-{i:02d}" for i in range(2, 10)]
    assert "高倍率病例 8 例（80.0%）" in leads["H002-H002-D1"]["evidence"]
    assert leads["H002-H002-D1"]["impact_fen"] == 8 * 400_000


@pytest.fixture(scope="module")
def coded(con, policy):
    rows = []
    for h in ("H001", "H002", "H003", "H004"):
        for i in range(30):
            extra = ["E11.900", "I10.x00", "I50.900"] if h == "H004" and i < 15 else []
            rows.append(case(f"{h}-{i:02d}", hospital_id=h, other_diagnoses=extra))
    for i in range(25):
        rows.append(case(f"S{i:02d}", main_diagnosis="K35.800", main_procedure="47.0100",
                         fee_surgery=100_000, total_cost=800_000))  # fmt: skip
    for i in range(5):
        rows.append(case(f"U{i}", hospital_id="H002", main_diagnosis="K35.800",
                         main_procedure="47.0100", fee_surgery=0, total_cost=800_000))  # fmt: skip
    levels = hospitals_table({h: "tertiary" for h in ("H001", "H002", "H003", "H004")})
    return Runner(con).stays(policy, cases_table(rows), hospitals=levels).cache()


def test_comorbidity_inflation(coded, policy):
    (lead,) = comorbidity_leads(coded, policy).to_pyarrow().to_pylist()
    assert lead["key"] == "CC-H004-J18"
    # mean 1.5; own variance 135/30 − 2.25 = 2.25; peers all 0 → variance floored at 0.25
    assert lead["score"] == pytest.approx(1.5 / math.sqrt(2.25 / 30 + 0.25 / 90))
    assert lead["case_ids"] == [f"H004-{i:02d}" for i in range(15)]
    # listed cost × (largest comorbidity coefficient 1.08 − 1)
    assert lead["impact_fen"] == round(15 * 500_000 * 0.08)
    assert "平均合并症（其他诊断）1.50 个" in lead["evidence"]


def test_procedures_without_matching_cost(coded, policy):
    (lead,) = unbilled_procedure_leads(coded, policy).to_pyarrow().to_pylist()
    assert lead["hospital_id"] == "H002"
    assert lead["case_ids"] == [f"U{i}" for i in range(5)]
    assert lead["impact_fen"] == 5 * 100_000
    assert "5 例" in lead["evidence"]
    assert (
        unbilled_procedure_leads(coded, with_supervision(policy, cluster_min_cases=6))
        .to_pyarrow()
        .num_rows
        == 0
    )
