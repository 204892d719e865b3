"""Injected anomalies with ground-truth labels.

Behaviours (upcoding, split admission, low-standard admission, overlong stay, cost shifting)
and settlement-list errors (one QC error class per affected case) are injected at configured
rates into clean cases. `labels` records every injection: (row, label, detail).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from opendip.contract import CASES
from opendip.synth.catalogue import COMORBIDITIES, OUTPATIENT_LIKE, Catalogue
from opendip.synth.frame import Frame, concat, obj, take
from opendip.synth.money import split_fees, split_payment

QC_LABELS = (
    "qc_missing_field",
    "qc_unknown_code",
    "qc_invalid_main_diagnosis",
    "qc_sex_conflict",
    "qc_age_conflict",
    "qc_date_order",
    "qc_los_mismatch",
    "qc_fee_sum_mismatch",
    "qc_payment_split_mismatch",
    "qc_invalid_code_value",
    "qc_duplicate_case_id",
    "qc_duplicate_code",
    "qc_missing_main_procedure",
)
BEHAVIOUR_LABELS = (
    "upcoding",
    "split_admission",
    "low_standard_admission",
    "overlong_stay",
    "cost_shifting",
)


@dataclass(frozen=True)
class Rates:
    """Injection rates (share of a year's generated cases) and the gaming hospitals.

    Every labelled case carries exactly one QC error class or behaviour labels, never both;
    a QC-labelled case is otherwise clean (it passes every other QC rule).
    """

    #: share of cases with one settlement-list error; the 13 QC classes are equally likely
    #: (each ≈ qc_error / 13)
    qc_error: float = 0.03
    #: share of cases that are one half of a split admission (two labelled stays per pair)
    split_admission: float = 0.008
    #: share of cases turned into low-standard admissions (LOS 1–2, ~15% of typical cost)
    low_standard_admission: float = 0.006
    #: share of cases given a stay of 60–120 days
    overlong_stay: float = 0.003
    #: share of an upcoding hospital's cases upcoded, from `gaming_from_year`
    upcoding: float = 0.25
    #: extra self-paid share at cost-shifting hospitals (all their cases), from `gaming_from_year`
    cost_shifting_extra_share: float = 0.15
    upcoding_hospitals: tuple[str, ...] = ("H004", "H010", "H020")
    cost_shifting_hospitals: tuple[str, ...] = ("H007", "H015", "H025")
    gaming_from_year: int = 2025
    #: no unlabelled stay of a patient starts within this many days of the patient's previous
    #: discharge (the demo policy's supervision.readmission_window_days); injected split
    #: admissions readmit 1–14 days later
    readmission_window_days: int = 15


@dataclass
class Labels:
    row: list[int] = field(default_factory=list)
    label: list[str] = field(default_factory=list)
    detail: list[str] = field(default_factory=list)
    partner: list[int] = field(default_factory=list)  # row of the other stay (split), else -1

    def add(
        self,
        rows: np.ndarray,
        label: str,
        detail: str | list[str],
        partner: np.ndarray | None = None,
    ) -> None:
        self.row += rows.tolist()
        self.label += [label] * len(rows)
        self.detail += detail if isinstance(detail, list) else [detail] * len(rows)
        self.partner += partner.tolist() if partner is not None else [-1] * len(rows)


def _pick(rng: np.random.Generator, eligible: np.ndarray, count: int) -> np.ndarray:
    idx = np.flatnonzero(eligible)
    return np.sort(rng.choice(idx, size=min(count, len(idx)), replace=False))


def _reprice(
    frame: Frame, rows: np.ndarray, rng: np.random.Generator, extra_selfpay: float = 0.0
) -> None:
    fees = split_fees(frame["total_cost"][rows], frame["surgical"][rows], rng)
    pay = split_payment(frame["total_cost"][rows], frame["employee"][rows], rng, extra_selfpay)
    for k, v in (fees | pay).items():
        frame[k][rows] = v


def split_pairs(size: int, rates: Rates, before: int = 0) -> int:
    """Split-admission pairs in a year of `size` rows (each pair adds one row); with
    `before`, in a block of `size` rows after `before` rows of the year (see `quota`)."""
    return int((before + size) * rates.split_admission / 2) - int(
        before * rates.split_admission / 2
    )


def quota(rate: float, size: int, before: int = 0) -> int:
    """How many of a block's `size` rows, `before` rows into its year, get a `rate`:
    int((before + size) × rate) − int(before × rate). The blocks of a year add up to
    int(year × rate), the count of the year made in one block."""
    return int((before + size) * rate) - int(before * rate)


def inject_behaviours(
    frame: Frame,
    year: int,
    hospital_ids: np.ndarray,
    cat: Catalogue,
    rates: Rates,
    rng: np.random.Generator,
    target: int | None = None,
    before: int = 0,
) -> tuple[Frame, Labels]:
    """Inject the behaviours; rates are shares of `target` (the year's final row count,
    default: the frame's), split admissions adding one row per pair. For a block of a year,
    `target` is the block's final row count and `before` the year's rows before it."""
    labels = Labels()
    n = len(frame["total_cost"])
    size = target or n
    labelled = np.zeros(n, bool)
    ordinary = frame["combo"] >= 0
    hid = hospital_ids[frame["hospital_idx"]]

    # Overlong stays: LOS pushed to 60–120 days.
    rows = _pick(rng, ordinary & (frame["age_days"] < 0), quota(rates.overlong_stay, size, before))
    extra = rng.integers(60, 121, len(rows))
    frame["admit_date"][rows] = frame["discharge_date"][rows] - extra.astype("timedelta64[D]")
    frame["los_days"][rows] = extra
    frame["main_procedure_date"][rows] = np.where(
        frame["main_procedure"][rows] == None,  # noqa: E711 - object array comparison
        np.datetime64("NaT"),
        frame["admit_date"][rows] + np.ones(len(rows), int).astype("timedelta64[D]"),
    )
    frame["total_cost"][rows] = frame["total_cost"][rows] * 2
    frame["age"][rows] = _age(frame, rows)
    _reprice(frame, rows, rng)
    labels.add(rows, "overlong_stay", [f"住院 {d} 天" for d in extra])
    labelled[rows] = True

    # Low-standard admissions: outpatient-like conditions, 1–2 days, a fraction of the cost.
    # Deaths (5) and transfers (2, 3) are short for other reasons and are not gaming.
    outpatient = (
        np.isin(frame["main_diagnosis"].astype(str), OUTPATIENT_LIKE)
        & (frame["main_procedure"] == None)  # noqa: E711 - object array comparison
        & np.isin(frame["discharge_method"].astype(str), ["1", "4", "9"])
    )
    rows = _pick(rng, outpatient & ~labelled, quota(rates.low_standard_admission, size, before))
    short = rng.integers(1, 3, len(rows))
    frame["admit_date"][rows] = frame["discharge_date"][rows] - short.astype("timedelta64[D]")
    frame["los_days"][rows] = short
    frame["total_cost"][rows] = np.maximum(frame["total_cost"][rows] * 15 // 100, 30000)
    frame["icu_days"][rows] = 0
    frame["age"][rows] = _age(frame, rows)
    _reprice(frame, rows, rng)
    labels.add(rows, "low_standard_admission", "门诊可治疗疾病短期低费用住院")
    labelled[rows] = True

    if year >= rates.gaming_from_year:
        # Upcoding, cost unchanged: the main diagnosis shifted to a costlier sibling
        # subcategory where the family has one, else comorbidities added to the record.
        sibling = _costlier_sibling(cat)
        gaming = np.isin(hid, rates.upcoding_hospitals) & ordinary & ~labelled
        chosen = gaming & (rng.random(n) < rates.upcoding)
        has_sibling = sibling[np.maximum(frame["combo"], 0)] >= 0
        rows = np.flatnonzero(chosen & has_sibling)
        new = sibling[frame["combo"][rows]]
        details = [
            f"主要诊断由 {a} 改编为费用更高的 {b}"
            for a, b in zip(frame["main_diagnosis"][rows], cat.dx[new], strict=True)
        ]
        frame["main_diagnosis"][rows] = cat.dx[new]
        frame["combo"][rows] = new
        labels.add(rows, "upcoding", details)
        labelled[rows] = True
        rows = np.flatnonzero(chosen & ~has_sibling & (frame["age"] >= 18))
        labels.add(rows, "upcoding", _add_comorbidities(frame, rows, rng))
        labelled[rows] = True

        # Cost shifting: out-of-list / self-paid share raised at some hospitals.
        rows = np.flatnonzero(np.isin(hid, rates.cost_shifting_hospitals) & ~labelled)
        _reprice(frame, rows, rng, rates.cost_shifting_extra_share)
        frame["out_of_list_cost"][rows] = frame["personal_selfpay"][rows] * 9 // 10
        labels.add(rows, "cost_shifting", "目录外自费费用占比异常升高")
        labelled[rows] = True

    # Split admissions: one stay cut in two, readmitted 1–14 days later.
    last_day = np.datetime64(f"{year}-12-01")
    eligible = (
        (frame["admit_date"] >= np.datetime64(f"{year}-01-01"))
        & ordinary
        & ~labelled
        & (frame["los_days"] >= 4)
        & (frame["discharge_date"] < last_day)
        & (frame["age_days"] < 0)
    )
    first = _pick(rng, eligible, split_pairs(size, rates, before))
    second = take(frame, first)
    los = frame["los_days"][first]
    l1 = los // 2
    gap = rng.integers(1, 15, len(first))
    frame["discharge_date"][first] = frame["admit_date"][first] + l1.astype("timedelta64[D]")
    frame["los_days"][first] = l1
    second["admit_date"] = frame["discharge_date"][first] + gap.astype("timedelta64[D]")
    second["discharge_date"] = second["admit_date"] + (los - l1).astype("timedelta64[D]")
    second["los_days"] = los - l1
    for part in (frame, second):
        rows = first if part is frame else np.arange(len(first))
        has = part["main_procedure"][rows] != None  # noqa: E711
        part["main_procedure_date"][rows] = np.where(
            has, part["admit_date"][rows], np.datetime64("NaT")
        )
        part["total_cost"][rows] = part["total_cost"][rows] * 6 // 10
        part["icu_days"][rows] = np.minimum(part["icu_days"][rows], part["los_days"][rows])
        part["age"][rows] = _age(part, rows)
        _reprice(part, rows, rng)
    second_rows = np.arange(n, n + len(first))
    frame = concat(frame, second)
    labels.add(first, "split_admission", "分解住院：与再次入院病例拆分", second_rows)
    labels.add(second_rows, "split_admission", "分解住院：出院后短期再次入院", first)
    return frame, labels


def _add_comorbidities(frame: Frame, rows: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Add 2–3 comorbidities the stay's cost does not reflect; returns the details."""
    details = []
    order = np.argsort(rng.random((len(rows), len(COMORBIDITIES))), axis=1)
    for i, r in enumerate(rows):
        present = {frame["main_diagnosis"][r], *frame["other_diagnoses"][r]}
        extra = [COMORBIDITIES[j] for j in order[i] if COMORBIDITIES[j] not in present][:3]
        frame["other_diagnoses"][r] = [*frame["other_diagnoses"][r], *extra]
        details.append(f"虚增其他诊断 {'、'.join(extra)}（费用无相应增加）")
    return details


def _age(frame: Frame, rows: np.ndarray) -> np.ndarray:
    from opendip.synth.cases import exact_age

    return exact_age(frame["birth_date"][rows], frame["admit_date"][rows])


def _costlier_sibling(cat: Catalogue) -> np.ndarray:
    """For each combination, a conservative combination of the same category with a higher
    median cost and another subcategory (-1 if none)."""
    out = np.full(cat.size, -1)
    conservative = np.array([len(p) == 0 for p in cat.procs])
    by_cat: dict[str, list[int]] = {}
    for i in np.flatnonzero(conservative):
        by_cat.setdefault(cat.category[i], []).append(int(i))
    for i in np.flatnonzero(conservative):
        best = -1
        for j in by_cat[cat.category[i]]:
            if (
                cat.dx[j][:5] != cat.dx[i][:5]
                and cat.median_yuan[j] > 1.3 * cat.median_yuan[i]
                and cat.sex[j] in ("", cat.sex[i])
            ) and (best < 0 or cat.median_yuan[j] > cat.median_yuan[best]):
                best = j
        out[i] = best
    return out


def inject_qc_errors(
    frame: Frame, labels: Labels, rate: float, rng: np.random.Generator, before: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One QC error class per chosen clean case (`rate` of the rows; `before`: see `quota`).

    Returns (rows that must reuse another case's id, clean untouched rows whose id they may
    reuse); ids are assigned later, once the file order is known."""
    n = len(frame["total_cost"])
    clean = np.ones(n, bool)
    clean[labels.row] = False
    chosen = _pick(rng, clean & (frame["combo"] >= 0), quota(rate, n, before))
    classes = rng.choice(len(QC_LABELS), size=len(chosen))
    duplicates: list[tuple[int, int]] = []
    fields = (
        "department",
        "doctor_slot",
        "discharge_method",
        "admission_route",
        "los_days",
        "fund_paid",
    )
    for cls_index in range(len(QC_LABELS)):
        rows = chosen[classes == cls_index]
        label = QC_LABELS[cls_index]
        details: list[str] = []
        for r in rows:
            details.append(_break(frame, int(r), label, rng, fields, duplicates))
        labels.add(rows, label, details)
    untouched = np.flatnonzero(clean & ~np.isin(np.arange(n), chosen))
    return np.array([d for d, _ in duplicates], dtype=np.int64), untouched


def _break(
    frame: Frame,
    r: int,
    label: str,
    rng: np.random.Generator,
    fields: tuple[str, ...],
    duplicates: list[tuple[int, int]],
) -> str:
    if label == "qc_missing_field":
        name = str(rng.choice(fields))
        frame[name][r] = None if frame[name].dtype == object else -1
        column = "doctor_id" if name == "doctor_slot" else name
        return f"必填项 {CASES.column(column).label}（{column}）为空"
    if label == "qc_unknown_code":
        if frame["main_procedure"][r] is not None and rng.random() < 0.5:
            frame["main_procedure"][r] = frame["main_procedure"][r][:5] + "99x999"
            return f"主要手术操作代码 {frame['main_procedure'][r]} 不在医保版代码表"
        frame["main_diagnosis"][r] = frame["main_diagnosis"][r][:5] + "99x999"
        return f"主要诊断代码 {frame['main_diagnosis'][r]} 不在医保版代码表"
    if label == "qc_invalid_main_diagnosis":
        frame["main_diagnosis"][r] = str(rng.choice(["R50.900", "R10.400", "V89.200"]))
        return f"{frame['main_diagnosis'][r]} 不能作为主要诊断"
    if label == "qc_sex_conflict":
        if frame["sex"][r] == "1":
            frame["main_diagnosis"][r] = "D25.900"
            frame["main_procedure"][r] = None
            frame["other_procedures"][r] = []
            frame["main_procedure_date"][r] = np.datetime64("NaT")
        else:
            frame["main_diagnosis"][r] = "N40.x00"
            frame["main_procedure"][r] = None
            frame["other_procedures"][r] = []
            frame["main_procedure_date"][r] = np.datetime64("NaT")
        sex = "男" if frame["sex"][r] == "1" else "女"
        return f"{sex}性病例主要诊断为限{'女' if sex == '男' else '男'}性诊断 {frame['main_diagnosis'][r]}"
    if label == "qc_age_conflict":
        if frame["age_days"][r] >= 0:
            frame["newborn_birth_weight_g"][r] = -1
            frame["newborn_admit_weight_g"][r] = -1
            return f"新生儿（{frame['age_days'][r]} 天）未填写新生儿体重"
        frame["other_diagnoses"][r] = [*frame["other_diagnoses"][r], "P07.300"]
        return f"{frame['age'][r]} 岁病例含围生期诊断 P07.300"
    if label == "qc_date_order":
        if frame["main_procedure"][r] is not None and rng.random() < 0.5:
            later = frame["discharge_date"][r] + np.timedelta64(int(rng.integers(1, 8)), "D")
            frame["main_procedure_date"][r] = later
            return f"主要手术操作日期 {later} 晚于出院日期"
        frame["admit_date"][r] = frame["discharge_date"][r] + np.timedelta64(3, "D")
        return "入院日期晚于出院日期"
    if label == "qc_los_mismatch":
        frame["los_days"][r] = frame["los_days"][r] + int(rng.integers(2, 6))
        return "住院天数与出入院日期不符"
    if label == "qc_fee_sum_mismatch":
        frame["fee_other"][r] += int(rng.integers(100, 100000))
        return "费用分类合计不等于医疗总费用"
    if label == "qc_payment_split_mismatch":
        frame["fund_paid"][r] += int(rng.integers(100, 100000))
        return "支付构成合计不等于医疗总费用"
    if label == "qc_invalid_code_value":
        if rng.random() < 0.5:
            frame["admission_route"][r] = str(rng.choice(["4", "5", "0"]))
            return f"入院途径 {frame['admission_route'][r]} 不在代码集"
        frame["discharge_method"][r] = str(rng.choice(["6", "7", "0"]))
        return f"离院方式 {frame['discharge_method'][r]} 不在代码集"
    if label == "qc_duplicate_case_id":
        duplicates.append((r, -1))  # the row whose id it reuses is chosen by the caller
        return "清单号与文件中前面的另一病例重复（本行为后出现的重复行）"
    if label == "qc_duplicate_code":
        frame["other_diagnoses"][r] = [*frame["other_diagnoses"][r], frame["main_diagnosis"][r]]
        return "主要诊断在其他诊断中重复出现"
    if label == "qc_missing_main_procedure":
        frame["other_procedures"][r] = (
            [*frame["other_procedures"][r], "88.0100"]
            if frame["main_procedure"][r] is None
            else [*frame["other_procedures"][r], frame["main_procedure"][r]]
        )
        frame["main_procedure"][r] = None
        frame["main_procedure_date"][r] = np.datetime64("NaT")
        return "有手术操作但未填写主要手术操作"
    raise ValueError(label)


__all__ = [
    "BEHAVIOUR_LABELS",
    "QC_LABELS",
    "Labels",
    "Rates",
    "inject_behaviours",
    "inject_qc_errors",
    "obj",
]
