"""院端分析 on a hand-made settlement run: every figure below is computed by hand.

Hospitals HA (tertiary) and HB (secondary) and HC (no cases). Groups G1 (score 50: high
×3, low ×0.5) and G2 (score 200: high ×2, low ×0.5). HA's cases (cost, mean → ratio):

  case dept doctor group  cost(fen)   mean(fen)  ratio   deviation  dip(fen)   personal  fund_paid
  A1   外科  D1    G1     3,500,000  1,200,000  2.9167  normal     1,500,000    500,000  2,800,000
  A2   外科  D1    G1     1,000,000  1,200,000  0.8333  normal     1,500,000    200,000    800,000
  A3   内科  D2    G1       700,000  1,200,000  0.5833  normal     1,500,000    100,000    600,000
  A4   内科  D2    G2    12,000,000  5,000,000  2.4     high       7,000,000  2,000,000 10,000,000
  A5   外科  D3    G2     2,000,000  5,000,000  0.4     low        2,400,000    400,000  1,600,000
  A6   外科  D3    G2    10,000,000  5,000,000  2.0     normal     6,000,000  1,000,000  9,000,000
  A7   内科  D2    G1       600,000  1,200,000  0.5     normal     1,500,000    100,000    500,000

HB: B1 G2 cost 3,000,000 (no secondary mean → regional 4,000,000: ratio 0.75);
B2 G1 cost 2,500,000 (secondary mean 800,000: ratio 3.125, high).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opendip.contract import tables as ct
from opendip.policy import PolicyFile
from opendip.reports.hospital import HospitalAnalysisError, build_hospital_report
from opendip.settlement.output import write_manifest

POLICY = """\
region: {code: test, name: 测试市}
year: 2026
version: "test.1"
effective_from: 2026-01-01
effective_to: 2026-12-31
pools:
  - {id: employee, name: 职工基本医疗保险}
  - {id: resident, name: 城乡居民基本医疗保险}
directory:
  year_weights: {2023: 1, 2024: 2, 2025: 7}
  base_score: 100
scoring:
  reference_mean: same_level
  level_mean_missing: regional
  deviation_bands:
    - {score_max: 100, high_multiple: 3, low_multiple: 0.5}
    - {score_min: 100, high_multiple: 2, low_multiple: 0.5}
  high_formula: add_excess
  high_excess_share: 1
  low_formula: proportional
  extreme: {multiple: 5, action: review}
  fallback_fraction: 0.7
  all_case_mean_yuan: 8000
  hospital_coefficient:
    levels: {tertiary: 1.0, secondary: 0.88, primary: 0.75, unrated: 0.7}
    apply_to_basic_groups: false
  score_decimals: 4
settlement:
  budget:
    employee: {fund_budget_yuan: 1000000, budget_point_value: 100}
    resident: {fund_budget_yuan: 500000, budget_point_value: 80}
  reserve_share: 0.08
  point_value_formula: fund_plus_personal
  point_value_decimals: 6
  withholding_share:
    values:
      2026-01-01: 0.05
      2026-07-01: 0.08
  assessment_bands:
    - {min_score: 0, return_share: 0}
  ffs_bands:
    - {ratio_min: 0, rule: pay_dip}
  community_netting: false
"""

# case, hospital, dept, doctor, group, cost, dip, personal, fund_paid, deviation, case score, month
CASES = [
    ("A1", "HA", "外科", "D1", "G1", 3_500_000, 1_500_000, 500_000, 2_800_000, "normal", "50", 3),
    ("A2", "HA", "外科", "D1", "G1", 1_000_000, 1_500_000, 200_000, 800_000, "normal", "50", 3),
    ("A3", "HA", "内科", "D2", "G1", 700_000, 1_500_000, 100_000, 600_000, "normal", "50", 4),
    (
        "A4",
        "HA",
        "内科",
        "D2",
        "G2",
        12_000_000,
        7_000_000,
        2_000_000,
        10_000_000,
        "high",
        "280",
        8,
    ),
    ("A5", "HA", "外科", "D3", "G2", 2_000_000, 2_400_000, 400_000, 1_600_000, "low", "80", 9),
    (
        "A6",
        "HA",
        "外科",
        "D3",
        "G2",
        10_000_000,
        6_000_000,
        1_000_000,
        9_000_000,
        "normal",
        "200",
        10,
    ),
    ("A7", "HA", "内科", "D2", "G1", 600_000, 1_500_000, 100_000, 500_000, "normal", "50", 11),
    ("B1", "HB", "外科", "D9", "G2", 3_000_000, 3_000_000, 300_000, 2_000_000, "normal", "200", 5),
    ("B2", "HB", "外科", "D9", "G1", 2_500_000, 2_000_000, 250_000, 2_000_000, "high", "106.25", 6),
    # Ratio 1.875 and 1.95 would be near the high threshold 2, but a special review and a
    # blank-group (fallback) case are not judged by the cost/mean ratio.
    (
        "B3",
        "HB",
        "内科",
        "D8",
        "G2",
        7_500_000,
        8_000_000,
        500_000,
        7_000_000,
        "special_review",
        "400",
        7,
    ),
    ("B4", "HB", "内科", "D8", "G2", 7_800_000, 5_000_000, 500_000, 7_000_000, "normal", "150", 7),
]
GROUP_TYPES = {"B4": "fallback"}
GROUPS = {
    # code: (score, regional mean, tertiary mean, secondary mean)
    "G1": ("50", 1_000_000, 1_200_000, 800_000),
    "G2": ("200", 4_000_000, 5_000_000, None),
}


def _table(contract: ct.TableContract, rows: list[dict[str, Any]]) -> pa.Table:
    schema = contract.schema
    return pa.table(
        {f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema},
        schema=pa.schema([pa.field(f.name, f.type) for f in schema]),
    )


def make_run(
    root: Path,
    policy: str = POLICY,
    raw_extra: dict[str, dict[str, Any]] | None = None,
    scored_extra: dict[str, dict[str, Any]] | None = None,
    not_dip: pa.Table | None = None,
) -> Path:
    """Inputs in `root`, the settlement run in `root/settlement` (manifest + cases);
    `raw_extra`/`scored_extra` add columns to a case's settlement list / scored row."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "policy.yaml").write_text(policy, encoding="utf-8")
    raw, grouped, scored = [], [], []
    for cid, hid, dept, doc, grp, cost, dip, personal, paid, dev, score, month in CASES:
        day = dt.date(2026, month, 15)
        raw.append(
            {
                "case_id": cid,
                "hospital_id": hid,
                "patient_id": f"P{cid}",
                "insurance_type": "employee",
                "sex": "1",
                "age": 50,
                "admit_date": day - dt.timedelta(days=5),
                "discharge_date": day,
                "los_days": 5,
                "department": dept,
                "doctor_id": doc,
                "main_diagnosis": "K35.8",
                "other_diagnoses": [],
                "other_procedures": [],
                "total_cost": cost,
                "fund_paid": paid,
                "personal_copay": personal,
                "personal_selfpay": 0,
                "settle_month": f"2026-{month:02d}",
            }
            | (raw_extra or {}).get(cid, {})
        )
        grouped.append(
            {
                "case_id": cid,
                "group_code": grp,
                "group_type": GROUP_TYPES.get(cid, "core"),
                "base_score": Decimal(GROUPS[grp][0]),
                "aux_coefficient": Decimal(1),
            }
        )
        scored.append(
            {
                "case_id": cid,
                "hospital_id": hid,
                "pool": "employee",
                "group_code": grp,
                "base_score": Decimal(GROUPS[grp][0]),
                "deviation": dev,
                "case_score": Decimal(score),
                "hospital_coefficient": Decimal(1),
                "settled_score": Decimal(score),
                "point_value": Decimal(100),
                "dip_amount_fen": dip,
                "personal_share_fen": personal,
                "fund_payable_fen": dip - personal,
                "ffs_fund_fen": paid,
                "explanation": "手工构造",
            }
            | (scored_extra or {}).get(cid, {})
        )
    directory = [
        {
            "group_code": code,
            "group_name": f"病种{code}",
            "group_type": "core",
            "diagnosis_key": "K35.8",
            "procedure_key": "",
            "procedure_match": "none",
            "score": Decimal(score),
            "mean_cost_fen": regional,
            "mean_cost_tertiary_fen": tertiary,
            "mean_cost_secondary_fen": secondary,
        }
        for code, (score, regional, tertiary, secondary) in GROUPS.items()
    ]
    hospitals = [
        {"hospital_id": h, "name": f"医院{h}", "level": lv, "county": "示范县"}
        for h, lv in (("HA", "tertiary"), ("HB", "secondary"), ("HC", "tertiary"))
    ]
    pq.write_table(_table(ct.CASES, raw), root / "cases.parquet")
    pq.write_table(_table(ct.GROUPED, grouped), root / "grouped.parquet")
    pq.write_table(_table(ct.DIRECTORY, directory), root / "directory.parquet")
    pq.write_table(_table(ct.HOSPITALS, hospitals), root / "hospitals.parquet")
    out = root / "settlement"
    out.mkdir(exist_ok=True)
    pq.write_table(_table(ct.SCORED, scored), out / "cases.parquet")
    if not_dip is None:
        not_dip = pa.table({"case_id": ["A9"], "hospital_id": ["HA"], "department": ["外科"]})
    pq.write_table(not_dip, out / "not_dip.parquet")
    write_manifest(
        out,
        command="settle year 2026",
        inputs={k: root / f"{k}.parquet" for k in ("cases", "grouped", "directory", "hospitals")},
        policy=PolicyFile.read(root / "policy.yaml"),
        parameters={"year": 2026},
        row_counts={"cases": len(CASES)},
        outputs=[out / "cases.parquet"],
    )
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("handmade"))


@pytest.fixture(scope="module")
def report(run: Path):
    return build_hospital_report(run, "HA")


def _fig(report, key: str):
    return report.figure(key).value


def test_summary_is_hand_computed(report) -> None:
    assert report.kind == "hospital" and report.period == "2026"
    assert _fig(report, "hospital.cases") == 7
    assert _fig(report, "hospital.total_cost_fen") == 29_800_000
    assert _fig(report, "hospital.dip_amount_fen") == 21_400_000
    assert _fig(report, "hospital.balance_fen") == -8_400_000
    assert _fig(report, "hospital.balance_rate") == Decimal("-0.2819")  # −8.4 / 29.8
    assert _fig(report, "hospital.fund_payable_fen") == 17_100_000
    assert _fig(report, "hospital.ffs_fund_fen") == 25_300_000
    assert _fig(report, "hospital.fund_balance_fen") == -8_200_000
    assert _fig(report, "hospital.cmi") == Decimal("1.0857")  # 760 / 7 / 100
    assert _fig(report, "hospital.cost_per_case_fen") == 4_257_143  # 29.8M / 7, half up
    assert _fig(report, "hospital.not_dip_cases") == 1
    assert report.provenance["policy_version"] == "test.1"


def _by(table, *keys: str) -> dict[Any, dict[str, Any]]:
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in table.rows}


def test_departments(report) -> None:
    t = report.table("hospital.departments")
    assert [r["department"] for r in t.rows] == ["外科", "内科"]  # biggest loss first
    d = _by(t, "department")
    assert d["外科"]["cases"] == 4
    assert d["外科"]["total_cost_fen"] == 16_500_000
    assert d["外科"]["dip_amount_fen"] == 11_400_000
    assert d["外科"]["balance_fen"] == -5_100_000
    assert d["外科"]["balance_rate"] == Decimal("-0.3091")
    assert (d["外科"]["high_cases"], d["外科"]["low_cases"]) == (0, 1)
    assert d["内科"]["balance_fen"] == -3_300_000
    assert d["内科"]["balance_rate"] == Decimal("-0.2481")
    assert d["内科"]["fund_balance_fen"] == (1_400_000 + 5_000_000 + 1_400_000) - 11_100_000
    assert (d["内科"]["high_cases"], d["内科"]["low_cases"]) == (1, 0)
    chart = report.chart("hospital.balance_by_department")
    assert chart.kind == "bar"
    assert chart.series[0].points == [("外科", Decimal("-51000")), ("内科", Decimal("-33000"))]


def test_doctors(report) -> None:
    t = report.table("hospital.doctors")
    assert [(r["doctor_id"], r["balance_fen"]) for r in t.rows] == [
        ("D3", -3_600_000),
        ("D2", -3_300_000),
        ("D1", -1_500_000),
    ]
    assert _by(t, "doctor_id")["D1"]["department"] == "外科"


def test_groups_losers_and_gainers(report) -> None:
    losers = report.table("hospital.groups_losers").rows
    gainers = report.table("hospital.groups_gainers").rows
    assert [(r["group_code"], r["balance_fen"]) for r in losers] == [("G2", -8_600_000)]
    assert [(r["group_code"], r["balance_fen"]) for r in gainers] == [("G1", 200_000)]
    assert losers[0]["group_name"] == "病种G2"
    assert losers[0]["cost_per_case_fen"] == 8_000_000
    assert gainers[0]["cmi"] == Decimal("0.5000")
    assert _fig(report, "hospital.groups_in_loss") == 1
    assert _fig(report, "hospital.groups_in_surplus") == 1


def test_deviation_cases(report) -> None:
    assert _fig(report, "hospital.high_cases") == 1
    assert _fig(report, "hospital.high_balance_fen") == -5_000_000
    assert _fig(report, "hospital.low_cases") == 1
    assert _fig(report, "hospital.low_balance_fen") == 400_000
    assert _fig(report, "hospital.special_review_cases") == 0
    labels = [r["deviation_label"] for r in report.table("hospital.deviation").rows]
    assert labels == ["正常", "高倍率", "低倍率"]


def test_near_threshold_cases(report) -> None:
    high = report.table("hospital.near_high").rows
    low = report.table("hospital.near_low").rows
    # A6 sits exactly on the high threshold 2 (still normal), A1 is 0.0833 below 3.
    assert [(r["case_id"], r["ratio"], r["threshold"], r["gap"]) for r in high] == [
        ("A6", Decimal("2.0000"), Decimal("2.0000"), Decimal("0.0000")),
        ("A1", Decimal("2.9167"), Decimal("3.0000"), Decimal("0.0833")),
    ]
    # A7 exactly on the low threshold 0.5 (normal), A3 at 0.5833; A5 (0.4) is already low.
    assert [(r["case_id"], r["ratio"], r["gap"]) for r in low] == [
        ("A7", Decimal("0.5000"), Decimal("0.0000")),
        ("A3", Decimal("0.5833"), Decimal("0.0833")),
    ]
    assert high[1]["mean_fen"] == 1_200_000 and high[1]["balance_fen"] == -2_000_000
    assert _fig(report, "hospital.near_high_cases") == 2
    assert _fig(report, "hospital.near_low_cases") == 2


def test_ratio_histogram(report) -> None:
    points = dict(report.chart("hospital.ratio_histogram").series[0].points)
    assert points["0.5–0.6"] == 2  # A3 0.5833, A7 0.5
    assert points["2.9–3.0"] == 1 and points["2.4–2.5"] == 1 and points["2.0–2.1"] == 1
    assert points["0.4–0.5"] == 1 and points["0.8–0.9"] == 1
    assert sum(points.values()) == 7


def test_secondary_hospital_uses_regional_mean_when_level_mean_missing(run: Path) -> None:
    r = build_hospital_report(run, "HB")
    assert r.table("hospital.near_low").rows == []
    wider = build_hospital_report(run, "HB", near_band=Decimal("0.3"))
    rows = wider.table("hospital.near_low").rows
    assert [(x["case_id"], x["mean_fen"], x["ratio"]) for x in rows] == [
        ("B1", 4_000_000, Decimal("0.7500"))
    ]
    assert wider.provenance["near_band"] == "0.3"


def test_special_review_and_blank_group_cases_are_not_near(run: Path) -> None:
    r = build_hospital_report(run, "HB")
    assert r.table("hospital.near_high").rows == []
    assert _fig(r, "hospital.no_ratio_cases") == 2
    assert _fig(r, "hospital.special_review_cases") == 1
    assert _fig(r, "hospital.special_review_balance_fen") == 500_000
    assert _fig(r, "hospital.cases") == 4
    assert sum(n for _, n in r.chart("hospital.ratio_histogram").series[0].points) == 2


def test_narrower_band_drops_far_cases(run: Path) -> None:
    r = build_hospital_report(run, "HA", near_band=Decimal("0.05"))
    assert [x["case_id"] for x in r.table("hospital.near_high").rows] == ["A6"]
    assert [x["case_id"] for x in r.table("hospital.near_low").rows] == ["A7"]


def test_department_scope(run: Path) -> None:
    r = build_hospital_report(run, "HA", department="内科")
    assert _fig(r, "hospital.cases") == 3
    assert _fig(r, "hospital.balance_fen") == -3_300_000
    assert [x["doctor_id"] for x in r.table("hospital.doctors").rows] == ["D2"]
    assert r.provenance["scope"] == "科室：内科"


def test_group_scope(run: Path) -> None:
    r = build_hospital_report(run, "HA", group_code="G1")
    assert _fig(r, "hospital.cases") == 4
    assert _fig(r, "hospital.balance_fen") == 200_000


def test_hospital_without_cases_gets_an_explicit_empty_report(run: Path) -> None:
    r = build_hospital_report(run, "HC")
    assert r.provenance["empty"] == "true"
    assert _fig(r, "hospital.cases") == 0
    assert _fig(r, "hospital.balance_fen") is None  # not a zero pretending
    assert r.figure("hospital.dip_amount_fen").note == "无病例"
    assert "没有 DIP 结算病例" in r.sections[0].paragraphs[0]
    with pytest.raises(KeyError):
        r.table("hospital.departments")


def test_unknown_hospital(run: Path) -> None:
    with pytest.raises(HospitalAnalysisError, match="医疗机构 HX 不在本次结算的医疗机构表中"):
        build_hospital_report(run, "HX")


def test_empty_hospital_id(run: Path) -> None:
    with pytest.raises(HospitalAnalysisError, match="未指定医疗机构代码"):
        build_hospital_report(run, "  ")


@pytest.mark.parametrize(
    "band", [Decimal(0), Decimal("-0.1"), Decimal("1.5"), "abc", "NaN", "1e-99999999", "0.00001"]
)
def test_bad_band(run: Path, band) -> None:
    with pytest.raises(HospitalAnalysisError, match="临界区间宽度"):
        build_hospital_report(run, "HA", near_band=band)


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(HospitalAnalysisError, match="结算运行目录不存在"):
        build_hospital_report(tmp_path / "nope", "HA")
    with pytest.raises(HospitalAnalysisError, match=r"缺少 manifest\.json"):
        build_hospital_report(tmp_path, "HA")


def test_broken_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(HospitalAnalysisError, match="无法读取结算运行清单"):
        build_hospital_report(tmp_path, "HA")


def test_missing_case_results(run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "cases.parquet").unlink()
    with pytest.raises(HospitalAnalysisError, match=r"缺少病例结果 cases\.parquet"):
        build_hospital_report(copy, "HA")


def test_changed_input_is_refused(run: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(run.parent, root)
    (root / "hospitals.parquet").write_bytes(b"changed")
    with pytest.raises(HospitalAnalysisError, match=r"找不到结算运行的输入文件 hospitals"):
        build_hospital_report(root / "settlement", "HA")


def test_explicit_inputs_are_hash_checked(run: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.parquet"
    other.write_bytes(b"x")
    with pytest.raises(HospitalAnalysisError, match="与结算运行时使用的文件不一致"):
        build_hospital_report(run, "HA", inputs={"directory": other})
    with pytest.raises(HospitalAnalysisError, match="指定的输入文件 directory 不存在"):
        build_hospital_report(run, "HA", inputs={"directory": tmp_path / "none.parquet"})
    with pytest.raises(HospitalAnalysisError, match=r"政策文件.*不一致"):
        build_hospital_report(run, "HA", inputs={"policy": other})
    # The right files, given explicitly, are accepted.
    ok = build_hospital_report(run, "HA", inputs={"directory": run.parent / "directory.parquet"})
    assert ok.figure("hospital.cases").value == 7


def test_missing_policy_file(run: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(run.parent, root)
    (root / "policy.yaml").unlink()
    with pytest.raises(HospitalAnalysisError, match=r"找不到结算运行使用的政策文件 policy\.yaml"):
        build_hospital_report(root / "settlement", "HA")


def test_run_without_point_value_is_refused(run: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(run.parent, root)
    path = root / "settlement" / "cases.parquet"
    t = pq.read_table(path)
    i = t.schema.get_field_index("dip_amount_fen")
    t = t.set_column(i, t.schema.field(i), pa.nulls(t.num_rows, pa.int64()))
    pq.write_table(t, path)
    with pytest.raises(HospitalAnalysisError, match="与运行清单不一致"):  # changed output
        build_hospital_report(root / "settlement", "HA")
    _remanifest(root)  # a run that really wrote no amounts
    with pytest.raises(HospitalAnalysisError, match="没有 DIP 金额"):
        build_hospital_report(root / "settlement", "HA")


def test_manifest_without_period(run: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(run.parent, root)
    m = root / "settlement" / "manifest.json"
    data = json.loads(m.read_text(encoding="utf-8"))
    data["parameters"] = {}
    m.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(HospitalAnalysisError, match="未说明期间"):
        build_hospital_report(root / "settlement", "HA")


def test_report_serialises(report) -> None:
    data = json.loads(report.to_json())
    assert data["kind"] == "hospital"
    assert [s["key"] for s in data["sections"]] == [
        "summary",
        "departments",
        "doctors",
        "groups",
        "tcm",
        "deviation",
        "near",
    ]


def _remanifest(root: Path, **inputs: Path) -> None:
    out = root / "settlement"
    write_manifest(
        out,
        command="settle year 2026",
        inputs=inputs
        or {k: root / f"{k}.parquet" for k in ("cases", "grouped", "directory", "hospitals")},
        policy=PolicyFile.read(root / "policy.yaml"),
        parameters={"year": 2026},
        row_counts={"cases": len(CASES)},
        outputs=[out / "cases.parquet"],
    )


def test_scored_case_missing_from_the_cases_file(run: Path, tmp_path: Path) -> None:
    import pyarrow.compute as pc

    root = tmp_path / "copy"
    shutil.copytree(run.parent, root)
    raw = pq.read_table(root / "cases.parquet")
    pq.write_table(raw.filter(pc.not_equal(raw["case_id"], "A7")), root / "cases.parquet")
    _remanifest(root)
    with pytest.raises(HospitalAnalysisError, match="结算结果中 HA 有 7 例，但病例文件只找到 6 例"):
        build_hospital_report(root / "settlement", "HA")


def test_manifest_without_an_input(run: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(run.parent, root)
    _remanifest(root, cases=root / "cases.parquet", hospitals=root / "hospitals.parquet")
    with pytest.raises(HospitalAnalysisError, match="结算运行清单没有记录输入 grouped"):
        build_hospital_report(root / "settlement", "HA")


@pytest.mark.parametrize(
    ("reference", "extra", "near_high", "near_low"),
    [
        # Regional means: G1 1,000,000 and G2 4,000,000 fen.
        (
            "regional",
            "",
            [],
            [("A5", 4_000_000, "0.5000"), ("A7", 1_000_000, "0.6000"), ("A3", 1_000_000, "0.7000")],
        ),
        # Score × 240 yuan per point: G1 50 × 240 = 12,000 yuan, G2 200 × 240 = 48,000 yuan.
        (
            "score_times_factor",
            "  yuan_per_point: {employee: 240, resident: 240}\n",
            [("A1", 1_200_000, "2.9167")],
            [("A7", 1_200_000, "0.5000"), ("A3", 1_200_000, "0.5833")],
        ),
    ],
)
def test_reference_mean_follows_the_policy(
    tmp_path: Path, reference: str, extra: str, near_high: list, near_low: list
) -> None:
    # level_mean_missing applies only to same_level means (refused with any other)
    policy = POLICY.replace("  level_mean_missing: regional\n", "").replace(
        "reference_mean: same_level\n", f"reference_mean: {reference}\n{extra}"
    )
    assert policy != POLICY
    r = build_hospital_report(make_run(tmp_path / reference, policy), "HA")
    for key, want in (("hospital.near_high", near_high), ("hospital.near_low", near_low)):
        got = [(x["case_id"], x["mean_fen"], str(x["ratio"])) for x in r.table(key).rows]
        assert got == want


def test_cases_file_without_department(run: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(run.parent, root)
    raw = pq.read_table(root / "cases.parquet")
    pq.write_table(raw.drop_columns(["department"]), root / "cases.parquet")
    _remanifest(root)
    with pytest.raises(HospitalAnalysisError, match=r"病例文件 cases\.parquet 缺少列：department"):
        build_hospital_report(root / "settlement", "HA")
