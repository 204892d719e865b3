"""Clean cases for one year: hospital, disease, patient, dates, costs, all consistent."""

from __future__ import annotations

import numpy as np

from opendip.synth.catalogue import (
    AGE_ELDERLY,
    AGE_MIXED,
    AGE_NEWBORN,
    AGE_OBSTETRIC,
    COMORBIDITIES,
    METASTASES,
    Catalogue,
)
from opendip.synth.frame import Frame, obj
from opendip.synth.money import split_fees, split_payment
from opendip.synth.patients import is_employee, patient_keys

LEVEL_COST = {"tertiary": 1.0, "secondary": 0.78, "primary": 0.58, "unrated": 0.55}
LEVEL_AFFINITY = {"tertiary": 0.5, "secondary": 0.0, "primary": -0.9, "unrated": -0.7}
LEVEL_VOLUME = {"tertiary": 3.0, "secondary": 1.6, "primary": 0.5, "unrated": 0.4}
DRIFT_PER_YEAR = 0.03
BASE_YEAR = 2023
CHEMO_SHARE = 0.015
#: Share of stays whose main diagnosis is written with its x0nn extension, when one exists.
EXTENSION_SHARE = 0.15
CANCERS = ("C34.900", "C50.900", "C16.900", "C18.900", "C22.000")


def _level_probabilities(cat: Catalogue, level: str) -> np.ndarray:
    z = np.log(cat.median_yuan)
    z = (z - z.mean()) / z.std()
    w = cat.weight * np.exp(LEVEL_AFFINITY[level] * z)
    if level in ("primary", "unrated"):
        w = np.where(cat.surgical & (cat.median_yuan > 25000), 0.0, w)
    return w / w.sum()


def exact_age(birth: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Completed years between two datetime64[D] arrays."""
    by = birth.astype("datetime64[Y]").astype(int)
    oy = on.astype("datetime64[Y]").astype(int)
    b_doy = (birth - birth.astype("datetime64[Y]")).astype(int)
    o_doy = (on - on.astype("datetime64[Y]")).astype(int)
    # compare (month, day) through day-of-year in a common leap-aware way
    bm = birth.astype("datetime64[M]").astype(int) % 12
    om = on.astype("datetime64[M]").astype(int) % 12
    bd = (birth - birth.astype("datetime64[M]")).astype(int)
    od = (on - on.astype("datetime64[M]")).astype(int)
    before = (om < bm) | ((om == bm) & (od < bd))
    del b_doy, o_doy
    return oy - by - before.astype(int)


#: 中医/民族医 treatments (procedure codes) some conservative stays of these diseases
#: (diagnosis category) receive in the current year: the demo policy's 中医优势病种 list
#: names them (小夹板外固定 93.54 for forearm and upper-arm fractures, 针刺 99.92).
TCM_TREATMENTS = {
    "S52": "93.5400",
    "S42": "93.5400",
    "M51": "99.9200",
    "M54": "99.9200",
    "I63": "99.9200",
}
TCM_SHARE = 0.3


def add_tcm_treatments(frame: Frame, rng: np.random.Generator) -> int:
    """Give TCM_SHARE of the conservative stays of TCM_TREATMENTS's diseases their TCM
    treatment as main procedure (dated the day after admission, within the stay); returns
    how many. Its own random stream: every other draw of the year is unchanged."""
    dx = frame["main_diagnosis"]
    n = len(dx)
    conservative = np.array([p is None for p in frame["main_procedure"]], dtype=bool) & np.array(
        [len(o) == 0 for o in frame["other_procedures"]], dtype=bool
    )
    category = np.array([str(d)[:3] for d in dx], dtype=object)
    chosen = conservative & (rng.random(n) < TCM_SHARE)
    codes = np.array([TCM_TREATMENTS.get(c) for c in category], dtype=object)
    rows = np.flatnonzero(chosen & (codes != None))  # noqa: E711 (element-wise)
    frame["main_procedure"] = frame["main_procedure"].astype(object)
    frame["main_procedure"][rows] = codes[rows]
    day_after = frame["admit_date"][rows] + np.timedelta64(1, "D")
    frame["main_procedure_date"][rows] = np.minimum(day_after, frame["discharge_date"][rows])
    return len(rows)


def generate_clean(
    year: int,
    n: int,
    hospitals: dict[str, np.ndarray],
    cat: Catalogue,
    rng: np.random.Generator,
) -> Frame:
    n_chemo = int(n * CHEMO_SHARE)
    frame = _ordinary(year, n - n_chemo, hospitals, cat, rng)
    chemo = _chemo_series(year, n_chemo, hospitals, rng)
    return {k: np.concatenate([frame[k], chemo[k]]) for k in frame}


def _ordinary(
    year: int, n: int, hospitals: dict[str, np.ndarray], cat: Catalogue, rng: np.random.Generator
) -> Frame:
    levels = hospitals["level"]
    volume = hospitals["beds"] * np.array([LEVEL_VOLUME[lv] for lv in levels])
    hosp = rng.choice(len(levels), size=n, p=volume / volume.sum())
    combo = np.empty(n, dtype=np.int64)
    for level in np.unique(levels):
        rows = np.flatnonzero(levels[hosp] == level)
        combo[rows] = rng.choice(cat.size, size=len(rows), p=_level_probabilities(cat, level))

    sex = np.where(cat.sex[combo] == "", np.where(rng.random(n) < 0.5, "1", "2"), cat.sex[combo])
    profile = cat.age_profile[combo]
    age = np.clip(rng.normal(55, 17, n), 18, 95)
    age = np.where(profile == AGE_ELDERLY, np.clip(rng.normal(67, 11, n), 35, 98), age)
    age = np.where(profile == AGE_OBSTETRIC, rng.uniform(20, 42, n), age)
    child = (profile == AGE_MIXED) & (rng.random(n) < 0.3)
    age = np.where(child, rng.uniform(1, 13, n), age)
    age = np.where((profile == AGE_MIXED) & ~child, np.clip(rng.normal(68, 12, n), 18, 98), age)
    newborn = profile == AGE_NEWBORN
    age_days_newborn = rng.integers(0, 28, n)

    # discharge date with mild winter seasonality
    doy = np.arange(365)
    season = 1 + 0.15 * np.cos(2 * np.pi * (doy - 15) / 365)
    discharge = np.datetime64(f"{year}-01-01") + rng.choice(365, size=n, p=season / season.sum())

    z = rng.normal(0, 1, n)
    scale = np.array([LEVEL_COST[lv] for lv in levels])[hosp] * (1 + DRIFT_PER_YEAR) ** (
        year - BASE_YEAR
    )
    cost_yuan = cat.median_yuan[combo] * scale * np.exp(0.45 * z)
    los = np.maximum(
        1, np.round(cat.los_median[combo] * np.exp(0.35 * z + 0.25 * rng.normal(0, 1, n)))
    )
    los = np.minimum(los, 45).astype(np.int64)
    day_surgery = cat.los_median[combo] <= 1
    los = np.where(day_surgery, 1, los)
    same_day = day_surgery & (rng.random(n) < 0.5)
    admit = discharge - np.where(same_day, 0, los).astype("timedelta64[D]")

    birth = (
        admit
        - (np.floor(age) * 365.25).astype("timedelta64[D]")
        - rng.integers(0, 365, n).astype("timedelta64[D]")
    )
    birth = np.where(newborn, admit - age_days_newborn.astype("timedelta64[D]"), birth)
    exact = exact_age(birth, admit)
    age_days = np.where(exact < 1, (admit - birth).astype(int), -1)

    total_fen = np.round(cost_yuan * 100).astype(np.int64)
    surgical = cat.surgical[combo]
    has_proc = np.array([len(p) > 0 for p in cat.procs])[combo]
    proc_date = admit + np.floor(rng.random(n) * (los + 1)).astype("timedelta64[D]")
    proc_date = np.minimum(proc_date, discharge)

    county_idx = np.unique(hospitals["county"], return_inverse=True)[1][hosp]
    keys = patient_keys(sex, birth, county_idx, rng.integers(0, 3, n))
    employee = is_employee(keys, exact)

    main_proc = obj([p[0] if p else None for p in cat.procs])[combo]
    others = obj([list(p[1:]) for p in cat.procs])[combo]
    other_dx = _comorbidities(cat.dx[combo], profile, exact, rng)

    severe = (cat.median_yuan[combo] > 40000) | np.isin(cat.category[combo], ["I21", "I63", "I61"])
    icu = np.where(severe & (rng.random(n) < 0.25), np.minimum(rng.integers(1, 8, n), los), 0)
    route = rng.choice(["2", "1", "3", "9"], size=n, p=[0.68, 0.26, 0.05, 0.01])
    method = rng.choice(
        ["1", "2", "3", "4", "5", "9"], size=n, p=[0.9, 0.03, 0.02, 0.035, 0.01, 0.005]
    )

    frame: Frame = {
        "hospital_idx": hosp,
        "combo": combo,
        "patient_key": keys,
        "insurance_type": np.where(employee, "employee", "resident"),
        "sex": sex,
        "birth_date": birth,
        "age": exact,
        "age_days": age_days,
        "newborn_birth_weight_g": np.where(newborn, rng.integers(1800, 4300, n), -1),
        "newborn_admit_weight_g": np.where(newborn, rng.integers(1800, 4300, n), -1),
        "admit_date": admit,
        "discharge_date": discharge,
        "los_days": los,
        "admission_route": route,
        "discharge_method": method,
        "department": cat.department[combo],
        "doctor_slot": rng.integers(0, 6, n),
        # Hospitals code some stays at the extension level (same subcategory).
        "main_diagnosis": np.where(
            rng.random(n) < EXTENSION_SHARE, cat.dx_extension[combo], cat.dx[combo]
        ).astype(object),
        "other_diagnoses": other_dx,
        "main_procedure": main_proc,
        "main_procedure_date": np.where(has_proc, proc_date, np.datetime64("NaT")),
        "other_procedures": others,
        "icu_days": icu,
        "total_cost": total_fen,
        "surgical": surgical,
        "employee": employee,
    }
    frame |= split_fees(total_fen, surgical, rng)
    frame |= split_payment(total_fen, employee, rng)
    return frame


def _comorbidities(
    main: np.ndarray, profile: np.ndarray, age: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Other diagnoses: 0–4 comorbidities (more for the elderly), metastases for some
    cancers. Vectorised: each row's list is one of a few hundred shared, prebuilt lists."""
    n = len(main)
    lam = np.where(age >= 60, 1.1, np.where(age >= 18, 0.35, 0.0))
    k = np.minimum(rng.poisson(lam), 4)
    rank = np.argsort(np.argsort(rng.random((n, len(COMORBIDITIES))), axis=1), axis=1)
    chosen = rank < k[:, None]
    main_str = main.astype(str)
    for j, code in enumerate(COMORBIDITIES):
        chosen[:, j] &= main_str != code
    bits = chosen @ (1 << np.arange(len(COMORBIDITIES)))
    meta = np.where(
        np.char.startswith(main_str, "C") & (rng.random(n) < 0.25),
        rng.integers(0, len(METASTASES), n) + 1,
        0,
    )
    meta = np.where(meta > 0, meta * (main_str != np.array(("", *METASTASES))[meta]), 0)
    signature = bits * (len(METASTASES) + 1) + meta
    lists = obj(
        [
            [c for j, c in enumerate(COMORBIDITIES) if (sig // (len(METASTASES) + 1)) >> j & 1]
            + ([METASTASES[sig % (len(METASTASES) + 1) - 1]] if sig % (len(METASTASES) + 1) else [])
            for sig in range((1 << len(COMORBIDITIES)) * (len(METASTASES) + 1))
        ]
    )
    return lists[signature]


def _chemo_series(
    year: int, n_rows: int, hospitals: dict[str, np.ndarray], rng: np.random.Generator
) -> Frame:
    """Planned chemotherapy cycles (Z51.1 + 99.25) every ~21 days: readmissions that are
    NOT split admissions."""
    big = np.flatnonzero(np.isin(hospitals["level"], ["tertiary", "secondary"]))
    cycles: list[int] = []
    drawn = 0
    while drawn < n_rows:
        cycles.append(int(rng.integers(3, 7)))
        drawn += cycles[-1]
    if cycles:
        cycles[-1] -= drawn - n_rows
    cycles = [c for c in cycles if c > 0]
    m = len(cycles)
    series = np.repeat(np.arange(m), cycles)
    step = np.concatenate([np.arange(c) for c in cycles]) if m else np.array([], int)
    n = len(series)
    start = np.datetime64(f"{year}-01-01") + rng.integers(0, 200, m)
    los = rng.integers(2, 5, n)
    discharge = start[series] + (step * 21 + rng.integers(0, 4, n) + los).astype("timedelta64[D]")
    admit = discharge - los.astype("timedelta64[D]")
    sex_s = rng.choice(["1", "2"], size=m)
    cancer_s = rng.choice(CANCERS, size=m)
    cancer_s = np.where((cancer_s == "C50.900") & (sex_s == "1"), "C34.900", cancer_s)
    sex, cancer = sex_s[series], cancer_s[series]
    age_years = np.clip(rng.normal(60, 10, m), 30, 85)
    birth = (start - (age_years * 365.25).astype("timedelta64[D]"))[series]
    hosp = rng.choice(big, size=m)[series]
    county = np.unique(hospitals["county"], return_inverse=True)[1][hosp]
    total = np.round(6000 * np.exp(rng.normal(0, 0.3, n)) * 100).astype(np.int64)
    keys = patient_keys(sex, birth, county, np.full(n, 3))
    employee = is_employee(keys, np.full(n, 60))
    frame: Frame = {
        "hospital_idx": hosp,
        "combo": np.full(n, -1),
        "patient_key": keys,
        "insurance_type": np.where(employee, "employee", "resident"),
        "sex": sex,
        "birth_date": birth,
        "age": exact_age(birth, admit),
        "age_days": np.full(n, -1),
        "newborn_birth_weight_g": np.full(n, -1),
        "newborn_admit_weight_g": np.full(n, -1),
        "admit_date": admit,
        "discharge_date": discharge,
        "los_days": los,
        "admission_route": np.full(n, "2"),
        "discharge_method": np.full(n, "1"),
        "department": np.full(n, "肿瘤科"),
        "doctor_slot": rng.integers(0, 6, n),
        "main_diagnosis": obj(["Z51.100"] * n),
        "other_diagnoses": obj([[c] for c in cancer]),
        "main_procedure": obj(["99.2500"] * n),
        "main_procedure_date": admit + np.ones(n, int).astype("timedelta64[D]"),
        "other_procedures": obj([[] for _ in range(n)]),
        "icu_days": np.zeros(n, int),
        "total_cost": total,
        "surgical": np.zeros(n, bool),
        "employee": employee,
    }
    frame |= split_fees(total, frame["surgical"], rng)
    frame |= split_payment(total, employee, rng)
    return frame
