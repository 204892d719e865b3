"""院端分析 section 中医优势病种与新技术 on the hand-made run of test_hospital_handmade, with
TCM/new-technology facts added (every figure computed by hand):

HA's DIP cases (cost / DIP amount, fen): A2 1,000,000 / 1,500,000 and A3 700,000 / 1,500,000
are ZY-M51, A5 2,000,000 / 2,400,000 is ZY-S52 → 3 TCM cases, DIP 5,400,000, cost 3,700,000,
balance +1,700,000; A4 12,000,000 / 7,000,000 used 35.24 (added score) → 1 case, DIP 7,000,000.
Not settled by DIP: A9 (HA 外科, 新技术 by item, fund 800,000), A8 (HA 内科, not a new
technology, 100,000), B9 (HB, new technology, 50,000) → HA: 1 case, 800,000.
中医药费用 (中药饮片 + 中成药): A1 100,000; A2 50,000 + 200,000; A5 150,000; B1 300,000.
HA: 500,000 ÷ 29,800,000 = 0.016779 → 0.0168; region: 800,000 ÷ 50,600,000 = 0.015810 →
0.0158. 内科 alone (A3, A4, A7): TCM 1 case (A3, DIP 1,500,000), new technology A4, no
by-item case (A8 is not one), TCM fee 0 of 13,300,000 → 0.0000.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from opendip.reports.hospital import build_hospital_report
from tests.reports.test_hospital_handmade import POLICY, make_run

TCM_POLICY = POLICY.replace(
    "  score_decimals: 4\n",
    "  score_decimals: 4\n"
    "  tcm_advantage:\n"
    "    mode: added_score\n"
    "    added_score: 10\n"
    "    groups:\n"
    "      - {code: ZY-S52, name: 前臂骨折中医正骨, diagnosis_prefixes: [S52],"
    " treatment_codes: ['93.54'], valid_from: 2026-01-01}\n"
    "      - {code: ZY-M51, name: 腰椎间盘突出症针刺, diagnosis_prefixes: [M51],"
    " treatment_codes: ['99.92'], valid_from: 2026-01-01}\n"
    "  new_technologies:\n"
    "    - {code: '35.24', name: 二尖瓣置换新术式, valid_from: 2026-01-01,"
    " valid_to: 2026-12-31, mode: added_score, added_score: 30}\n",
)
RAW = {
    "A1": {"fee_herbal_pieces": 100_000},
    "A2": {"fee_herbal_pieces": 50_000, "fee_chinese_patent_medicine": 200_000},
    "A5": {"fee_herbal_pieces": 150_000},
    "B1": {"fee_herbal_pieces": 300_000},
}
SCORED = {
    "A2": {"tcm_group": "ZY-M51"},
    "A3": {"tcm_group": "ZY-M51"},
    "A5": {"tcm_group": "ZY-S52"},
    "A4": {"new_tech": "35.24"},
}
NOT_DIP = pa.table(
    {
        "case_id": ["A9", "A8", "B9"],
        "hospital_id": ["HA", "HA", "HB"],
        "department": ["外科", "内科", "外科"],
        "ffs_fund_fen": [800_000, 100_000, 50_000],
        "exemption": ["new_technology", None, "new_technology"],
    }
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert TCM_POLICY != POLICY
    return make_run(tmp_path_factory.mktemp("tcm"), TCM_POLICY, RAW, SCORED, NOT_DIP)


def _figs(report) -> dict:
    return {f.key: f.value for s in report.sections for f in s.figures}


def test_whole_hospital(run: Path) -> None:
    report = build_hospital_report(run, "HA")
    f = _figs(report)
    assert f["hospital.tcm_cases"] == 3
    assert f["hospital.tcm_dip_fen"] == 5_400_000
    assert f["hospital.tcm_balance_fen"] == 1_700_000
    assert f["hospital.new_tech_cases"] == 1
    assert f["hospital.new_tech_dip_fen"] == 7_000_000
    assert f["hospital.new_tech_by_item_cases"] == 1
    assert f["hospital.new_tech_by_item_fen"] == 800_000
    assert f["hospital.tcm_fee_fen"] == 500_000
    assert f["hospital.tcm_fee_share"] == Decimal("0.0168")
    assert f["hospital.region_tcm_fee_share"] == Decimal("0.0158")
    rows = report.table("hospital.tcm_groups").rows
    assert [
        (r["tcm_group"], r["tcm_name"], r["cases"], r["dip_amount_fen"], r["balance_fen"])
        for r in rows
    ] == [
        ("ZY-S52", "前臂骨折中医正骨", 1, 2_400_000, 400_000),  # smaller surplus first
        ("ZY-M51", "腰椎间盘突出症针刺", 2, 3_000_000, 1_300_000),
    ]
    nt = report.table("hospital.new_tech").rows
    assert [(r["new_tech"], r["new_tech_name"], r["balance_fen"]) for r in nt] == [
        ("35.24", "二尖瓣置换新术式", -5_000_000)
    ]


def test_one_department(run: Path) -> None:
    f = _figs(build_hospital_report(run, "HA", department="内科"))
    assert (f["hospital.tcm_cases"], f["hospital.tcm_dip_fen"]) == (1, 1_500_000)
    assert (f["hospital.new_tech_cases"], f["hospital.new_tech_dip_fen"]) == (1, 7_000_000)
    assert (f["hospital.new_tech_by_item_cases"], f["hospital.new_tech_by_item_fen"]) == (0, 0)
    assert (f["hospital.tcm_fee_fen"], f["hospital.tcm_fee_share"]) == (0, Decimal("0.0000"))
    assert f["hospital.region_tcm_fee_share"] == Decimal("0.0158")


def test_one_group(run: Path) -> None:
    """G1 of HA: A1, A2, A3, A7 → TCM A2, A3; fees 100,000 + 250,000 of 5,800,000 = 0.0603."""
    f = _figs(build_hospital_report(run, "HA", group_code="G1"))
    assert (f["hospital.tcm_cases"], f["hospital.tcm_dip_fen"]) == (2, 3_000_000)
    assert f["hospital.new_tech_cases"] == 0
    assert f["hospital.new_tech_by_item_cases"] == 0  # by-item cases belong to no group
    assert (f["hospital.tcm_fee_fen"], f["hospital.tcm_fee_share"]) == (350_000, Decimal("0.0603"))
