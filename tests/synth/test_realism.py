"""The synthetic region behaves like a real one: patients, stays, hospitals, anomalies."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from opendip.bench import BenchContext
from opendip.cli.main import app
from opendip.codes import CodeTables
from opendip.contract import CASES, FEE_NAMES
from opendip.synth import BEHAVIOUR_LABELS, QC_LABELS, Rates, SynthError, generate_region
from opendip.synth.cases import (
    TCM_TREATMENTS,
    exact_age,
)
from opendip.synth.hospitals import BEDS, LEVEL_SHARES
from opendip.synth.money import split_fees, split_payment

BASIC = ("J18.9", "J20.9", "J44.1", "I63.9", "I10.x", "E11.9", "K29.7", "N39.0", "A09.9", "I25.1")


def _rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


def _labelled(labels: pa.Table, *names: str) -> set[str]:
    return set(labels.filter(pc.is_in(labels["label"], pa.array(names)))["case_id"].to_pylist())


def _both_years(region: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(region / f"cases_{y}.parquet") for y in (2025, 2026))


def test_label_vocabulary_details_and_one_label_per_case(labels: pa.Table) -> None:
    assert set(labels["label"].to_pylist()) == set(QC_LABELS) | set(BEHAVIOUR_LABELS)
    assert all(
        d and any("\u4e00" <= ch <= "\u9fff" for ch in d) for d in labels["detail"].to_pylist()
    )
    per_case = Counter(labels["case_id"].to_pylist())
    repeated = {c for c, k in per_case.items() if k > 1}
    assert repeated <= _labelled(labels, "qc_duplicate_case_id")


def test_every_year_has_exactly_the_requested_rows(region: Path) -> None:
    for year in (2025, 2026):
        assert pq.read_table(region / f"cases_{year}.parquet").num_rows == 20_000


def test_manifest_records_parameters_counts_and_rates(region: Path, labels: pa.Table) -> None:
    manifest = json.loads((region / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == 11 and manifest["hospitals"] == 40
    assert manifest["years"] == [2025, 2026]
    assert manifest["rows"] == {"2025": 20_000, "2026": 20_000}
    assert manifest["labels"] == dict(Counter(labels["label"].to_pylist()))
    assert manifest["rates"]["qc_error"] == Rates().qc_error
    assert (
        manifest["label_rates"]["split_admission"] == manifest["labels"]["split_admission"] / 40_000
    )


def test_hospitals_levels_sizes_and_communities(region: Path) -> None:
    hospitals = _rows(pq.read_table(region / "hospitals.parquet"))
    assert [h["hospital_id"] for h in hospitals] == [f"H{i:03d}" for i in range(1, 41)]
    levels = Counter(h["level"] for h in hospitals)
    for level, share in LEVEL_SHARES:
        assert abs(levels[level] / 40 - share) <= 0.05
    by_id = {h["hospital_id"]: h for h in hospitals}
    for h in hospitals:
        lo, hi = BEDS[h["level"]]
        assert lo <= h["beds"] < hi
        assert "示范市" in h["name"]
        if h["level"] == "tertiary":
            assert h["ownership"] == "public" and h["community_id"] is None
        if h["community_id"]:
            leader = by_id[h["community_id"].removeprefix("YGT-")]
            assert leader["level"] == "secondary" and leader["county"] == h["county"]
    assert sum(1 for h in hospitals if h["level"] == "primary" and h["community_id"]) >= 10
    assert len({h["county"] for h in hospitals}) == 8


def test_patients_are_stable_across_stays_and_years(region: Path) -> None:
    cases = _both_years(region)
    people: dict[str, set[tuple]] = defaultdict(set)
    pools: dict[str, set[str]] = defaultdict(set)
    years: dict[str, set[int]] = defaultdict(set)
    for pid, sex, birth, pool, admit in zip(
        *(
            cases[c].to_pylist()
            for c in ("patient_id", "sex", "birth_date", "insurance_type", "admit_date")
        ),
        strict=True,
    ):
        people[pid].add((sex, birth))
        pools[pid].add(pool)
        years[pid].add(admit.year)
    assert all(len(v) == 1 for v in people.values())  # one sex and birth date per person
    switched = sum(1 for v in pools.values() if len(v) > 1)
    assert switched <= 0.01 * len(pools)  # the pool is a property of the person
    multi = sum(1 for v in Counter(cases["patient_id"].to_pylist()).values() if v > 1)
    assert multi > 300
    assert sum(1 for v in years.values() if len(v) > 1) > 100


def test_no_unlabelled_readmission_within_the_window(region: Path, labels: pa.Table) -> None:
    """Within and across years, a stay starting ≤ 15 days after the same patient's previous
    discharge is an injected split admission or a planned chemotherapy cycle."""
    split = _labelled(labels, "split_admission")
    qc = _labelled(labels, *QC_LABELS)
    cases = _both_years(region).sort_by([("patient_id", "ascending"), ("admit_date", "ascending")])
    columns = ["case_id", "patient_id", "admit_date", "discharge_date", "main_diagnosis"]
    rows = [r for r in _rows(cases.select(columns)) if r["case_id"] not in qc]
    close = 0
    for a, b in itertools.pairwise(rows):
        if a["patient_id"] != b["patient_id"] or (b["admit_date"] - a["discharge_date"]).days > 15:
            continue
        close += 1
        planned = a["main_diagnosis"] == b["main_diagnosis"] == "Z51.100"
        assert planned or (a["case_id"] in split and b["case_id"] in split), (a, b)
    assert close >= len(split) // 2


def test_split_admissions_are_the_same_patient_and_diagnosis_family(
    cases_2026: pa.Table, labels: pa.Table
) -> None:
    by_id = {r["case_id"]: r for r in _rows(cases_2026)}
    pairs = [r for r in _rows(labels) if r["label"] == "split_admission" and r["case_id"] in by_id]
    assert len(pairs) == 2 * int(20_000 * Rates().split_admission / 2)
    for lab in pairs:
        other = by_id[lab["detail"].split("关联病例 ")[1].rstrip("）")]
        mine = by_id[lab["case_id"]]
        assert mine["main_diagnosis"][:3] == other["main_diagnosis"][:3]
        assert mine["hospital_id"] == other["hospital_id"]


def test_gaming_happens_only_at_its_hospitals_from_its_year(region: Path, labels: pa.Table) -> None:
    rates = Rates()
    cases = _both_years(region)
    hospital = dict(
        zip(cases["case_id"].to_pylist(), cases["hospital_id"].to_pylist(), strict=True)
    )
    for lab in _rows(labels):
        if lab["label"] == "upcoding":
            assert hospital[lab["case_id"]] in rates.upcoding_hospitals
        if lab["label"] == "cost_shifting":
            assert hospital[lab["case_id"]] in rates.cost_shifting_hospitals
        if lab["label"] in ("upcoding", "cost_shifting"):
            assert lab["case_id"].startswith(("C2025", "C2026"))
    shifted = _labelled(labels, "cost_shifting")
    share = pc.divide(
        pc.cast(cases["personal_selfpay"], pa.float64()), cases["total_cost"]
    ).to_numpy()
    flag = np.isin(np.array(cases["case_id"].to_pylist()), list(shifted))
    assert share[flag].mean() > share[~flag].mean() + 0.1
    upcoded = [r["detail"] for r in _rows(labels) if r["label"] == "upcoding"]
    assert any("改编为费用更高" in d for d in upcoded) and any("虚增其他诊断" in d for d in upcoded)


def test_low_standard_and_overlong_stays(cases_2026: pa.Table, labels: pa.Table) -> None:
    low = _labelled(labels, "low_standard_admission")
    long = _labelled(labels, "overlong_stay")
    typical: dict[str, list[int]] = defaultdict(list)
    for r in _rows(cases_2026):
        if r["case_id"] in long:
            assert r["los_days"] >= 60
        elif r["los_days"] is not None:
            assert r["los_days"] < 60  # only labelled stays are overlong
        if r["case_id"] not in low and r["main_procedure"] is None:
            typical[r["main_diagnosis"]].append(r["total_cost"])
    ratios = []
    for r in _rows(cases_2026):
        if r["case_id"] in low:
            assert r["los_days"] <= 2 and r["main_procedure"] is None
            # never a death or a transfer: those are short for reasons that are not gaming
            assert r["discharge_method"] in ("1", "4", "9")
            ratios.append(r["total_cost"] / np.median(typical[r["main_diagnosis"]]))
    assert len(ratios) == int(20_000 * Rates().low_standard_admission)
    assert np.median(ratios) < 0.3


def test_special_and_basic_groups_are_present(cases_2026: pa.Table) -> None:
    rows = _rows(cases_2026)
    f20 = [r for r in rows if r["main_diagnosis"].startswith("F20")]
    assert len(f20) > 50 and {r["department"] for r in f20} == {"精神科"}
    assert np.median([r["los_days"] for r in f20 if r["los_days"]]) >= 25
    cataract = [
        r
        for r in rows
        if r["main_diagnosis"][:3] in ("H25", "H26") and r["main_procedure"] == "13.4100"
    ]
    assert {r["main_diagnosis"][:3] for r in cataract} == {"H25", "H26"}
    assert Counter(r["los_days"] for r in cataract).most_common(1)[0][0] == 1
    conservative = Counter(r["main_diagnosis"][:5] for r in rows if r["main_procedure"] is None)
    top = {code for code, _ in conservative.most_common(40)}
    assert set(BASIC) <= top


def test_demographics_follow_the_diagnosis(cases_2026: pa.Table, labels: pa.Table) -> None:
    qc = _labelled(labels, *QC_LABELS)
    rows = [r for r in _rows(cases_2026) if r["case_id"] not in qc]
    newborns = [r for r in rows if r["main_diagnosis"].startswith("P")]
    assert newborns and all(r["age"] == 0 and 0 <= r["age_days"] < 28 for r in newborns)
    assert all(1500 <= r["newborn_birth_weight_g"] <= 5000 for r in newborns)
    obstetric = [r for r in rows if r["main_diagnosis"].startswith("O")]
    assert obstetric and all(r["sex"] == "2" and 15 <= r["age"] <= 50 for r in obstetric)
    prostate = [r for r in rows if r["main_diagnosis"][:3] in ("N40", "C61")]
    assert prostate and all(r["sex"] == "1" for r in prostate)
    elderly = np.mean([len(r["other_diagnoses"]) for r in rows if r["age"] >= 65])
    young = np.mean([len(r["other_diagnoses"]) for r in rows if 18 <= r["age"] < 40])
    assert elderly > 2 * young
    cancers = [
        r
        for r in rows
        if r["main_diagnosis"].startswith("C")
        and not r["main_diagnosis"].startswith(("C77", "C78", "C79"))
    ]
    with_metastasis = sum(
        any(c[:3] in ("C77", "C78", "C79") for c in r["other_diagnoses"]) for r in cancers
    )
    assert 0.1 < with_metastasis / len(cancers) < 0.4
    icu = [r["icu_days"] for r in rows if r["icu_days"]]
    assert 0 < len(icu) < 0.1 * len(rows)


def test_yearly_drift_and_seasonality(region: Path) -> None:
    medians = {}
    for year in (2025, 2026):
        t = pq.read_table(region / f"cases_{year}.parquet")
        # conservative stays: no procedure, or only the TCM treatment the current year adds
        # to some of them (its own random stream; costs unchanged)
        tcm = pa.array(sorted(set(TCM_TREATMENTS.values())))
        t = t.filter(
            pc.and_(
                pc.or_(pc.is_null(t["main_procedure"]), pc.is_in(t["main_procedure"], tcm)),
                pc.is_in(t["main_diagnosis"], pa.array([f"{c}00" for c in BASIC])),
            )
        )
        medians[year] = np.median(np.log(t["total_cost"].to_numpy()))
    assert 0.0 < np.exp(medians[2026] - medians[2025]) - 1 < 0.07
    months = Counter(
        d.month for d in pq.read_table(region / "cases_2026.parquet")["discharge_date"].to_pylist()
    )
    assert months[1] + months[12] > months[6] + months[7]


def test_cost_shares_by_level_are_ordered_across_the_mix(
    region: Path, cases_2026: pa.Table
) -> None:
    hospitals = pq.read_table(region / "hospitals.parquet")
    level = dict(
        zip(hospitals["hospital_id"].to_pylist(), hospitals["level"].to_pylist(), strict=True)
    )
    mean_cost: dict[str, list[int]] = defaultdict(list)
    for h, cost in zip(
        cases_2026["hospital_id"].to_pylist(), cases_2026["total_cost"].to_pylist(), strict=True
    ):
        mean_cost[level[h]].append(cost)
    avg = {k: np.mean(v) for k, v in mean_cost.items()}
    assert avg["tertiary"] > avg["secondary"] > avg["primary"]  # level and case mix


def test_configured_rates_are_honoured(tmp_path: Path) -> None:
    rates = Rates(
        qc_error=0.0, split_admission=0.02, low_standard_admission=0.0, overlong_stay=0.01
    )
    manifest = generate_region(
        tmp_path, hospitals=8, cases_per_year=3000, years=(2024,), seed=5, rates=rates
    )
    labels = manifest["labels"]
    assert not any(k.startswith("qc_") for k in labels)
    assert labels["split_admission"] == 2 * int(3000 * 0.02 / 2)
    assert labels["overlong_stay"] == 30
    assert "low_standard_admission" not in labels
    assert "upcoding" not in labels  # 2024 is before gaming_from_year
    assert manifest["rows"] == {"2024": 3000}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 10**10), min_size=1, max_size=50),
    st.integers(0, 2**32 - 1),
    st.floats(0, 0.4),
)
def test_money_splits_are_exact_for_any_amounts(totals: list[int], seed: int, extra: float) -> None:
    total = np.array(totals, dtype=np.int64)
    rng = np.random.default_rng(seed)
    surgical = rng.random(len(total)) < 0.5
    employee = rng.random(len(total)) < 0.2
    fees = split_fees(total, surgical, rng)
    pay = split_payment(total, employee, rng, extra)
    assert list(fees) == list(FEE_NAMES)
    assert (sum(fees.values()) == total).all()
    assert all((v >= 0).all() for v in fees.values())
    parts = (
        "fund_paid",
        "serious_illness_paid",
        "medical_aid_paid",
        "personal_copay",
        "personal_selfpay",
    )
    assert (sum(pay[k] for k in parts) == total).all()
    assert all((pay[k] >= 0).all() for k in (*parts, "out_of_list_cost"))
    assert (pay["out_of_list_cost"] <= pay["personal_selfpay"]).all()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.dates(dt.date(1900, 1, 1), dt.date(2030, 12, 31)), st.integers(0, 40_000)),
        min_size=1,
        max_size=30,
    )
)
def test_exact_age_is_completed_years(pairs: list[tuple[dt.date, int]]) -> None:
    birth = np.array([b for b, _ in pairs], dtype="datetime64[D]")
    on = birth + np.array([d for _, d in pairs]).astype("timedelta64[D]")
    got = exact_age(birth, on)
    for (b, _), o, age in zip(pairs, on.tolist(), got, strict=True):
        assert age == o.year - b.year - ((o.month, o.day) < (b.month, b.day))


def test_bench_stage_records_its_artifacts(tmp_path: Path) -> None:
    from opendip.synth.bench import run

    ctx = BenchContext(workdir=tmp_path, n_cases=2000, seed=3)
    result = run(ctx)
    assert result.rows == 2000 + 3 * 1000
    assert [p.name for p in ctx.artifacts["history"]] == [
        f"cases_{y}.parquet" for y in (2023, 2024, 2025)
    ]
    assert pq.read_table(ctx.artifacts["cases"]).num_rows == 2000
    assert pq.read_table(ctx.artifacts["cases"]).schema == CASES.schema
    assert ctx.artifacts["hospitals"].exists() and ctx.artifacts["labels"].exists()
    assert isinstance(ctx.artifacts["codes"], CodeTables)


def test_cli_synth(tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = CliRunner().invoke(
        app,
        [
            "synth",
            "--hospitals",
            "8",
            "--cases-per-year",
            "500",
            "--years",
            "2025-2026",
            "--seed",
            "3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2026 年病例" in result.output
    assert {p.name for p in out.iterdir()} == {
        "hospitals.parquet",
        "cases_2025.parquet",
        "cases_2026.parquet",
        "labels.parquet",
        "manifest.json",
    }
    bad = CliRunner().invoke(app, ["synth", "--years", "twenty", "--out", str(out)])
    assert bad.exit_code == 1 and "年份格式" in bad.output


def test_some_main_diagnoses_use_insurance_extensions(cases_2026: pa.Table) -> None:
    codes = cases_2026["main_diagnosis"].to_pylist()
    extended = [c for c in codes if len(c) == 11 and c[7] == "x"]
    assert 0.05 < len(extended) / len(codes) < 0.2
    base = {c[:7] for c in codes if len(c) == 7}
    assert sum(c[:7] in base for c in extended) > 0.9 * len(extended)


def test_bad_generator_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match="医疗机构数至少为 4"):
        generate_region(tmp_path, hospitals=2, cases_per_year=1000, years=(2026,))
    with pytest.raises(SynthError, match="每年病例数至少为 100"):
        generate_region(tmp_path, hospitals=8, cases_per_year=10, years=(2026,))
    with pytest.raises(SynthError, match="年份重复"):
        generate_region(tmp_path, hospitals=8, cases_per_year=1000, years=(2026, 2026))
    with pytest.raises(SynthError, match="至少需要一个年份"):
        generate_region(tmp_path, hospitals=8, cases_per_year=1000, years=())
    result = CliRunner().invoke(app, ["synth", "--years", "2025,2025", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "年份重复" in result.output
    assert not list(tmp_path.iterdir())  # nothing written for refused arguments


def test_demo_policy_budgets_sized_to_the_region(tmp_path) -> None:
    """3 000 cases a year: the demo budgets (for 100 000) × 0.03, comments kept."""
    from opendip.policy import PolicyFile
    from opendip.synth.policy import scaled_demo_policy

    path = scaled_demo_policy(3000, tmp_path / "policy.yaml")
    text = path.read_text(encoding="utf-8")
    assert "fund_budget_yuan: 12600000," in text and "fund_budget_yuan: 34500000," in text
    assert text.startswith("# 示范市")
    budget = PolicyFile.read(path).at().settlement.budget
    assert budget["employee"].fund_budget_yuan == 12_600_000
    assert budget["resident"].fund_budget_yuan == 34_500_000
