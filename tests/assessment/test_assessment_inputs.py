"""Assessment policy and inputs: bad scorecards and missing inputs refused in Chinese."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opendip.assessment.engine import AssessmentError
from opendip.assessment.run import AssessFiles, run_assess
from opendip.policy import PolicyError, PolicyFile
from opendip.scenario import Variant

ROOT = Path(__file__).resolve().parents[2]
DEMO = PolicyFile.read(ROOT / "policies" / "demo-region.yaml")


@pytest.mark.parametrize(
    ("overlay", "path"),
    [
        ("assessment.indicators[0].measure: cmi", "assessment.indicators[0].measure"),
        ("assessment.indicators[1].target: 0.9", "assessment.indicators[1]"),
        ("assessment.indicators[0].weight: 0", "assessment.indicators[0].weight"),
        ("assessment.indicators[6].levels: [county]", "assessment.indicators[6].levels[0]"),
        ("assessment.indicators[1].id: qc_pass", "assessment"),
        ("assessment.indicators: []", "assessment.indicators"),
    ],
)
def test_bad_scorecard_names_the_key(overlay: str, path: str):
    v = Variant.parse(f"name: x\npolicy:\n  {overlay}\n")
    with pytest.raises(PolicyError) as err:
        v.apply(DEMO)
    assert path in str(err.value)


def _tiny(tmp: Path) -> AssessFiles:
    cases = pa.table(
        {
            "case_id": ["C1", "C2"],
            "hospital_id": ["H1", "H1"],
            "patient_id": ["P1", "P2"],
            "admit_date": pa.array([0, 0], pa.int32()).cast(pa.date32()),
            "discharge_date": pa.array([3, 3], pa.int32()).cast(pa.date32()),
            "main_diagnosis": ["J18.9", "J18.9"],
            "total_cost": [1000, 3000],
            "personal_selfpay": [100, 0],
            "settle_month": ["2026-01", "2026-02"],
        }
    )
    pq.write_table(cases, tmp / "c.parquet")
    pq.write_table(
        pa.table({"case_id": ["C1", "C2"], "group_type": ["basic", "unmatched"]}),
        tmp / "g.parquet",
    )
    pq.write_table(pa.table({"hospital_id": ["H1"], "level": ["primary"]}), tmp / "h.parquet")
    return AssessFiles(ROOT / "policies" / "demo-region.yaml", tmp / "c.parquet",
                       tmp / "g.parquet", tmp / "h.parquet")  # fmt: skip


def test_missing_qc_status_is_named(tmp_path: Path):
    with pytest.raises(AssessmentError, match=r"结算清单质控通过率.*质控结果"):
        run_assess(_tiny(tmp_path), 2026, tmp_path / "o")


def test_wrong_year_and_missing_file(tmp_path: Path):
    files = _tiny(tmp_path)
    with pytest.raises(AssessmentError, match="不能考核 2025 年"):
        run_assess(files, 2025, tmp_path / "o")
    files.case_status = tmp_path / "无.parquet"
    with pytest.raises(AssessmentError, match="文件不存在"):
        run_assess(files, 2026, tmp_path / "o")


def test_hand_computed_small_hospital(tmp_path: Path):
    """One primary hospital, 2 cases: QC 1/2 passed, grouping 1/2, basic 1/1, self-pay
    100/4000 = 0.025, no readmission, no previous year (cost growth not applicable)."""
    files = _tiny(tmp_path)
    pq.write_table(
        pa.table({"case_id": ["C1", "C2"], "hospital_id": ["H1", "H1"], "passed": [True, False]}),
        tmp_path / "q.parquet",
    )
    files.case_status = tmp_path / "q.parquet"
    files.previous_cases = None
    # cost growth needs last year's cases: refused, with the input named.
    with pytest.raises(AssessmentError, match="上年度结算清单"):
        run_assess(files, 2026, tmp_path / "o")
    files.previous_cases = tmp_path / "c.parquet"  # same cases last year: growth 0
    run_assess(files, 2026, tmp_path / "o")
    rows = {
        r["indicator"]: r for r in pq.read_table(tmp_path / "o" / "breakdown.parquet").to_pylist()
    }
    # qc 0.5 < 0.85 → 0; grouping 0.5 < 0.90 → 0; readmission 0 → 15; violations 0 → 15;
    # cost growth 0 ≤ 0.03 → 15; self-pay 0.025 ≤ 0.05 → 10; basic 1.0 ≥ 0.40 → 10.
    assert {k: str(v["points"]) for k, v in rows.items()} == {
        "qc_pass": "0.0000",
        "grouping": "0.0000",
        "readmission": "15.0000",
        "violations": "15.0000",
        "cost_growth": "15.0000",
        "selfpay": "10.0000",
        "basic_share": "10.0000",
    }
    score = pq.read_table(tmp_path / "o" / "assessment.parquet").to_pylist()[0]
    assert str(score["assessment_score"]) == "65.0000"  # 65 of 100 weights, all apply
