from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opendip.codes import demo_code_tables, diagnosis_subcategory
from opendip.contract import CASES, FEE_NAMES, HOSPITALS
from opendip.synth import QC_LABELS, generate_region

PAY = (
    "fund_paid",
    "serious_illness_paid",
    "medical_aid_paid",
    "personal_copay",
    "personal_selfpay",
)


def _clean(cases: pa.Table, labels: pa.Table) -> pa.Table:
    """Cases without a settlement-list (QC) error: clean and behaviour-labelled cases, which
    must all pass every QC rule."""
    qc = labels.filter(pc.starts_with(labels["label"], "qc_"))
    flagged = pa.array(sorted(set(qc["case_id"].to_pylist())), pa.string())
    return cases.filter(pc.invert(pc.is_in(cases["case_id"], flagged)))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_deterministic_by_seed(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_region(tmp_path / name, hospitals=8, cases_per_year=2000, years=(2026,), seed=seed)
    files = ("hospitals.parquet", "cases_2026.parquet", "labels.parquet")
    assert [_sha(tmp_path / "a" / f) for f in files] == [_sha(tmp_path / "b" / f) for f in files]
    assert _sha(tmp_path / "a" / "cases_2026.parquet") != _sha(
        tmp_path / "c" / "cases_2026.parquet"
    )


def test_tables_follow_the_contract(region: Path, cases_2026: pa.Table) -> None:
    assert cases_2026.schema == CASES.schema
    assert pq.read_table(region / "hospitals.parquet").schema == HOSPITALS.schema


def test_demo_policy_hospital_ids_exist(region: Path) -> None:
    ids = set(pq.read_table(region / "hospitals.parquet")["hospital_id"].to_pylist())
    assert {"H001", "H002", "H031", "H032", "H033"} <= ids
    levels = Counter(pq.read_table(region / "hospitals.parquet")["level"].to_pylist())
    assert levels == {"tertiary": 6, "secondary": 14, "primary": 16, "unrated": 4}


def test_money_splits_are_exact_on_clean_cases(cases_2026: pa.Table, labels: pa.Table) -> None:
    clean = _clean(cases_2026, labels)
    total = clean["total_cost"].to_numpy()
    fees = sum(clean[name].to_numpy() for name in FEE_NAMES)
    pay = sum(clean[name].to_numpy() for name in PAY)
    assert (fees == total).all()
    assert (pay == total).all()
    assert (clean["out_of_list_cost"].to_numpy() <= clean["personal_selfpay"].to_numpy()).all()
    assert (total > 0).all()


def test_pool_split_and_personal_share(cases_2026: pa.Table) -> None:
    employee = np.array(cases_2026["insurance_type"].to_pylist()) == "employee"
    assert abs(employee.mean() - 0.2) < 0.02
    total = cases_2026["total_cost"].to_numpy()
    personal = cases_2026["personal_copay"].to_numpy() + cases_2026["personal_selfpay"].to_numpy()
    share = personal / total
    assert share[employee].mean() < share[~employee].mean() - 0.08


def test_long_tailed_disease_mix(cases_2026: pa.Table) -> None:
    keys = Counter(
        (d, tuple(sorted(([p] if p else []) + o)))
        for d, p, o in zip(
            cases_2026["main_diagnosis"].to_pylist(),
            cases_2026["main_procedure"].to_pylist(),
            cases_2026["other_procedures"].to_pylist(),
            strict=True,
        )
    )
    counts = sorted(keys.values(), reverse=True)
    assert len(counts) > 1500  # thousands of combinations at full size
    top300 = sum(counts[:300]) / sum(counts)
    assert 0.5 < top300 < 0.9
    assert counts[0] > 20 * counts[299]


def test_cost_rises_with_hospital_level(region: Path, cases_2026: pa.Table) -> None:
    hospitals = pq.read_table(region / "hospitals.parquet")
    level = dict(
        zip(hospitals["hospital_id"].to_pylist(), hospitals["level"].to_pylist(), strict=True)
    )
    by_level: dict[str, list[int]] = {}
    for dx, h, cost, proc in zip(
        cases_2026["main_diagnosis"].to_pylist(),
        cases_2026["hospital_id"].to_pylist(),
        cases_2026["total_cost"].to_pylist(),
        cases_2026["main_procedure"].to_pylist(),
        strict=True,
    ):
        if dx == "J18.900" and proc is None:
            by_level.setdefault(level[h], []).append(cost)
    med = {k: float(np.median(v)) for k, v in by_level.items()}
    assert med["tertiary"] > med["secondary"] > med["primary"]


def test_los_correlates_with_cost(cases_2026: pa.Table) -> None:
    los = cases_2026["los_days"].to_numpy(zero_copy_only=False).astype(float)
    cost = cases_2026["total_cost"].to_numpy().astype(float)
    ok = ~np.isnan(los)
    assert np.corrcoef(np.log(los[ok]), np.log(cost[ok]))[0, 1] > 0.3


def test_labels_at_their_rates(labels: pa.Table, cases_2026: pa.Table) -> None:
    counts = Counter(labels["label"].to_pylist())
    n = 2 * 20_000
    qc = sum(counts[k] for k in QC_LABELS)
    assert abs(qc / n - 0.03) < 0.005
    assert set(QC_LABELS) <= set(counts)
    per_class = n * 0.03 / len(QC_LABELS)  # classes are equally likely
    assert all(0.6 * per_class < counts[k] < 1.4 * per_class for k in QC_LABELS)
    assert abs(counts["overlong_stay"] / n - 0.003) < 0.001
    assert counts["split_admission"] == 2 * (counts["split_admission"] // 2) > 0
    assert counts["upcoding"] > 0 and counts["cost_shifting"] > 0


def test_clean_cases_are_internally_consistent(cases_2026: pa.Table, labels: pa.Table) -> None:
    clean = _clean(cases_2026, labels).to_pylist()
    codes = demo_code_tables()
    for row in clean:
        days = (row["discharge_date"] - row["admit_date"]).days
        assert row["los_days"] == max(days, 1)
        assert row["admit_date"] <= row["discharge_date"]
        assert row["settle_month"] == row["discharge_date"].strftime("%Y-%m")
        dx = codes.diagnosis(row["main_diagnosis"])
        assert dx is not None and dx["valid_as_main"], row["main_diagnosis"]
        assert dx["sex_restriction"] in (None, row["sex"])
        all_dx = [row["main_diagnosis"], *row["other_diagnoses"]]
        assert len(all_dx) == len(set(all_dx))
        assert all(codes.diagnosis(c) is not None for c in row["other_diagnoses"])
        for code in all_dx:
            info = codes.diagnosis(code)
            assert info is not None, code
            assert info["sex_restriction"] in (None, row["sex"])
            days_old = (row["admit_date"] - row["birth_date"]).days
            assert info["age_max_days"] is None or days_old <= info["age_max_days"]
            assert info["age_min_days"] is None or days_old >= info["age_min_days"]
        procs = [p for p in [row["main_procedure"], *row["other_procedures"]] if p]
        assert len(procs) == len(set(procs))
        for code in procs:
            info = codes.procedure(code)
            assert info is not None, code
            assert info["sex_restriction"] in (None, row["sex"])
        assert 0 <= row["icu_days"] <= row["los_days"]
        assert row["admission_route"] in ("1", "2", "3", "9")
        assert row["insurance_type"] in ("employee", "resident")
        if (row["admit_date"] - row["birth_date"]).days < 28:
            assert row["newborn_birth_weight_g"] and row["newborn_admit_weight_g"]
        money = [row[k] for k in (*FEE_NAMES, *PAY, "out_of_list_cost")]
        assert min(money) >= 0 and row["total_cost"] > 0
        if row["other_procedures"]:
            assert row["main_procedure"] is not None
        if row["main_procedure"]:
            assert row["admit_date"] <= row["main_procedure_date"] <= row["discharge_date"]
        if row["main_diagnosis"].startswith("P"):
            assert row["age_days"] is not None and row["age_days"] < 28
            assert row["newborn_birth_weight_g"] is not None
        else:
            assert not any(c.startswith("P") for c in all_dx)
        age = (
            row["admit_date"].year
            - row["birth_date"].year
            - (
                (row["admit_date"].month, row["admit_date"].day)
                < (row["birth_date"].month, row["birth_date"].day)
            )
        )
        assert row["age"] == age
        assert row["discharge_method"] in ("1", "2", "3", "4", "5", "9")
        assert row["department"] and row["doctor_id"]
        assert diagnosis_subcategory(row["main_diagnosis"])


def test_case_ids_unique_except_injected_duplicates(cases_2026: pa.Table, labels: pa.Table) -> None:
    ids = Counter(cases_2026["case_id"].to_pylist())
    duplicated = {k for k, v in ids.items() if v > 1}
    injected = {r["case_id"] for r in labels.to_pylist() if r["label"] == "qc_duplicate_case_id"}
    assert duplicated <= injected and duplicated


def test_split_admissions_readmit_within_15_days(cases_2026: pa.Table, labels: pa.Table) -> None:
    rows = {r["case_id"]: r for r in cases_2026.to_pylist()}
    split = [
        r
        for r in labels.to_pylist()
        if r["label"] == "split_admission" and r["case_id"].startswith("C2026")
    ]
    assert split
    for lab in split:
        other = lab["detail"].split("关联病例 ")[1].rstrip("）")
        a, b = rows[lab["case_id"]], rows[other]
        assert a["patient_id"] == b["patient_id"]
        first, second = sorted((a, b), key=lambda r: r["admit_date"])
        assert 1 <= (second["admit_date"] - first["discharge_date"]).days <= 14


def test_chemotherapy_cycles_are_planned_not_split(cases_2026: pa.Table, labels: pa.Table) -> None:
    chemo = cases_2026.filter(pc.equal(cases_2026["main_diagnosis"], "Z51.100"))
    assert chemo.num_rows > 100
    labelled = set(
        labels.filter(pc.equal(labels["label"], "split_admission"))["case_id"].to_pylist()
    )
    assert not labelled & set(chemo["case_id"].to_pylist())
    per_patient = Counter(chemo["patient_id"].to_pylist())
    assert max(per_patient.values()) >= 3
