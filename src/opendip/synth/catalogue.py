"""The disease mix: (main diagnosis × procedure set) combinations with typical costs.

Long-tailed: a few forced frequent combinations (the demo policy's basic groups, special groups,
common surgeries) lead a Zipf-like ranking of a few thousand combinations drawn from the demo
code tables, procedures chosen from the body system of the diagnosis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from opendip.codes import CodeTables

CHAPTER_WEIGHT = {
    "I": 4, "II": 10, "III": 2, "IV": 4, "V": 2, "VI": 4, "VII": 4, "VIII": 1, "IX": 14,
    "X": 14, "XI": 12, "XII": 2, "XIII": 7, "XIV": 7, "XV": 6, "XVI": 2, "XVII": 1, "XIX": 6,
}  # fmt: skip
CHAPTER_DEPARTMENT = {
    "I": "感染科", "II": "肿瘤科", "III": "血液科", "IV": "内分泌科", "V": "精神科",
    "VI": "神经内科", "VII": "眼科", "VIII": "耳鼻喉科", "IX": "心血管内科", "X": "呼吸内科",
    "XI": "消化内科", "XII": "皮肤科", "XIII": "骨科", "XIV": "泌尿外科", "XV": "产科",
    "XVI": "新生儿科", "XVII": "儿科", "XIX": "创伤外科", "XXI": "肿瘤科",
}  # fmt: skip
CONSERVATIVE_BASE_YUAN = {"II": 12000, "IX": 9000, "V": 9000, "VI": 8000, "X": 7000}
#: ICD-9-CM-3 chapter heads (first two digits) used for each ICD-10 chapter's procedures.
CHAPTER_PROCEDURE_HEADS: dict[str, tuple[int, ...]] = {
    "I": (33, 38, 54), "II": (32, 43, 45, 48, 50, 85, 99), "III": (41,), "IV": (6, 7),
    "V": (94,), "VI": (1, 3, 4), "VII": (8, 10, 12, 13, 14), "VIII": (18, 19, 20),
    "IX": (0, 35, 36, 37, 38, 39), "X": (31, 32, 33, 34), "XI": (42, 43, 44, 45, 47, 51, 53),
    "XII": (85, 86), "XIII": (76, 77, 78, 79, 80, 81, 83), "XIV": (55, 56, 57, 58, 59),
    "XV": (73, 74, 75), "XVI": (96, 99), "XVII": (35, 37), "XIX": (79, 86, 1),
}  # fmt: skip
#: (main diagnosis, procedures main-first, median cost yuan, median LOS, department)
FORCED: tuple[tuple[str, tuple[str, ...], float, float, str], ...] = (
    ("J18.900", (), 5200, 7, "呼吸内科"),
    ("I63.900", (), 8800, 10, "神经内科"),
    ("I10.x00", (), 4200, 6, "心血管内科"),
    ("J44.100", (), 7600, 9, "呼吸内科"),
    ("E11.900", (), 5600, 8, "内分泌科"),
    ("J20.900", (), 3600, 5, "呼吸内科"),
    ("K29.700", (), 3900, 5, "消化内科"),
    ("I25.100", (), 6500, 7, "心血管内科"),
    ("N39.000", (), 4300, 6, "肾内科"),
    ("A09.900", (), 3100, 4, "消化内科"),
    ("K35.800", ("47.0100",), 14000, 6, "普外科"),
    ("H25.900", ("13.4100",), 6200, 1, "眼科"),
    ("O80.000", ("73.5900",), 4600, 3, "产科"),
    ("O82.000", ("74.1x00",), 8200, 5, "产科"),
    ("K80.100", ("51.2300",), 16000, 6, "普外科"),
    ("I21.900", ("00.6600", "36.0600"), 46000, 8, "心血管内科"),
    ("F20.000", (), 15000, 40, "精神科"),
    ("M17.900", ("81.5400",), 62000, 14, "骨科"),
    ("S72.000", ("79.3500",), 38000, 15, "骨科"),
    ("N40.x00", ("60.2900",), 15000, 8, "泌尿外科"),
    ("C34.900", ("32.4x00",), 68000, 14, "胸外科"),
    ("C50.900", ("85.4100",), 30000, 10, "乳腺外科"),
    ("D25.900", ("68.2900",), 17000, 7, "妇科"),
    ("P59.900", ("99.8300",), 3800, 5, "新生儿科"),
    ("J06.900", (), 2600, 4, "呼吸内科"),
    ("K80.200", ("51.2300",), 15000, 5, "普外科"),
    ("I50.900", (), 9800, 10, "心血管内科"),
    ("C16.900", ("43.7x00",), 72000, 18, "胃肠外科"),
    ("H26.900", ("13.4100",), 5800, 1, "眼科"),
)
#: Codes added to other_diagnoses as comorbidities (policy comorbidity prefixes overlap).
COMORBIDITIES = (
    "E11.900", "I10.x00", "I50.900", "N18.900", "J44.900", "I48.900", "E78.500", "K74.600",
)  # fmt: skip
METASTASES = ("C77.900", "C78.000", "C79.500")
#: Conditions usually treated as outpatients (targets of low-standard admissions).
OUTPATIENT_LIKE = ("J06.900", "J20.900", "K29.700", "I10.x00", "E11.900", "A09.900")

AGE_ADULT, AGE_NEWBORN, AGE_OBSTETRIC, AGE_ELDERLY, AGE_MIXED = range(5)


@dataclass(frozen=True)
class Catalogue:
    dx: np.ndarray  # main diagnosis per combination
    procs: list[tuple[str, ...]]  # procedures, main (most intensive) first
    median_yuan: np.ndarray
    los_median: np.ndarray
    weight: np.ndarray  # regional popularity
    surgical: np.ndarray  # bool: has a surgery/interventional procedure
    sex: np.ndarray  # '' any, '1' male only, '2' female only
    age_profile: np.ndarray
    department: np.ndarray
    category: np.ndarray  # diagnosis category (for upcoding siblings)
    #: an insurance-edition extension of the main diagnosis (``K35.800x001``), same
    #: subcategory; equal to `dx` when the table has none
    dx_extension: np.ndarray

    @property
    def size(self) -> int:
        return len(self.dx)


def _pools(codes: CodeTables) -> dict[int, dict[str, list[str]]]:
    proc = codes.procedures.filter(pc.invert(pc.match_substring(codes.procedures["code"], "x0")))
    pools: dict[int, dict[str, list[str]]] = {}
    for code, kind in zip(
        proc["code"].to_pylist(), proc["procedure_type"].to_pylist(), strict=True
    ):
        pools.setdefault(int(code[:2]), {}).setdefault(kind, []).append(code)
    return pools


def build_catalogue(
    codes: CodeTables, rng: np.random.Generator, n_diagnoses: int = 1400
) -> Catalogue:
    diag = codes.diagnoses
    base = diag.filter(
        pc.and_(diag["valid_as_main"], pc.invert(pc.match_substring(diag["code"], "x0")))
    ).to_pylist()
    base = [r for r in base if r["chapter"] in CHAPTER_WEIGHT and r["category"][0] != "P"]
    w = np.array([CHAPTER_WEIGHT[r["chapter"]] for r in base], float)
    chosen = rng.choice(len(base), size=min(n_diagnoses, len(base)), replace=False, p=w / w.sum())
    pools = _pools(codes)
    proc_sex = dict(
        zip(
            codes.procedures["code"].to_pylist(),
            codes.procedures["sex_restriction"].to_pylist(),
            strict=True,
        )
    )

    rows: list[tuple] = []
    for dx, procs, median, los, dept in FORCED:
        rows.append((dx, procs, median, los, dept))
    forced_keys = {(r[0], r[1]) for r in rows}
    for i in chosen:
        r = base[int(i)]
        chapter, sex = r["chapter"], r["sex_restriction"]
        dept = CHAPTER_DEPARTMENT.get(chapter, "内科")
        heads = CHAPTER_PROCEDURE_HEADS.get(chapter, (99,))
        if chapter == "XIV":
            heads = (60, 61, 62) if sex == "1" else (65, 66, 68, 69) if sex == "2" else heads
        conservative = CONSERVATIVE_BASE_YUAN.get(chapter, 6000) * rng.lognormal(0, 0.45)
        options = [((), conservative, 3 + conservative / 1500)]
        for _ in range(int(rng.integers(0, 4))):
            head = int(rng.choice(heads))
            kinds = pools.get(head, {})
            kind = str(
                rng.choice(
                    [
                        k
                        for k in ("surgery", "interventional", "therapeutic", "diagnostic")
                        if k in kinds
                    ]
                    or ["therapeutic"]
                )
            )
            if kind not in kinds:
                continue
            main = str(rng.choice(kinds[kind]))
            extra: list[str] = []
            if rng.random() < 0.35:
                aux_kind = "diagnostic" if rng.random() < 0.6 else "therapeutic"
                aux_head = int(rng.choice((87, 88, 89, 93, 96, 99)))
                pool = pools.get(aux_head, {}).get(aux_kind) or pools[99]["therapeutic"]
                extra.append(str(rng.choice(pool)))
            procs = (main, *[e for e in extra if e != main])
            if any(proc_sex.get(p) not in (None, sex) for p in procs):
                continue
            factor = {
                "surgery": 18000,
                "interventional": 35000,
                "therapeutic": 2500,
                "diagnostic": 1200,
            }
            median = conservative + factor[kind] * rng.lognormal(0, 0.5) + 1500 * len(extra)
            options.append((procs, median, 4 + median / 3000))
        for procs, median, los in options:
            if (r["code"], procs) not in forced_keys:
                forced_keys.add((r["code"], procs))
                rows.append((r["code"], procs, median, min(los, 30.0), dept))

    n = len(rows)
    rank = np.empty(n, float)
    rank[: len(FORCED)] = np.arange(len(FORCED))
    rank[len(FORCED) :] = len(FORCED) + rng.permutation(n - len(FORCED))
    weight = 1.0 / (rank + 3.0) ** 1.05
    dx = np.array([r[0] for r in rows])
    procs = [r[1] for r in rows]
    sexes = []
    profiles = []
    dxinfo = {k: codes.diagnosis(k) for k in set(dx.tolist())}
    for code, ps in zip(dx, procs, strict=True):
        info = dxinfo[code] or {}
        s = info.get("sex_restriction") or next((proc_sex[p] for p in ps if proc_sex.get(p)), "")
        sexes.append(s or "")
        letter = code[0]
        profiles.append(
            AGE_NEWBORN if letter == "P"
            else AGE_OBSTETRIC if letter == "O"
            else AGE_ELDERLY if letter in "CI" or code.startswith(("M17", "S72", "N40", "H25", "H26"))
            else AGE_MIXED if letter == "J"
            else AGE_ADULT
        )  # fmt: skip
    kinds = {
        c: k
        for c, k in zip(
            codes.procedures["code"].to_pylist(),
            codes.procedures["procedure_type"].to_pylist(),
            strict=True,
        )
    }
    return Catalogue(
        dx=dx,
        procs=procs,
        median_yuan=np.array([r[2] for r in rows], float),
        los_median=np.array([r[3] for r in rows], float),
        weight=weight,
        surgical=np.array(
            [any(kinds.get(p) in ("surgery", "interventional") for p in ps) for ps in procs]
        ),
        sex=np.array(sexes),
        age_profile=np.array(profiles),
        department=np.array([r[4] for r in rows]),
        category=np.array([c[:3] for c in dx]),
        dx_extension=_extensions(codes, dx),
    )


def _extensions(codes: CodeTables, dx: np.ndarray) -> np.ndarray:
    """First ``x0nn`` extension of each main diagnosis in the code table (or the code)."""
    all_codes = codes.diagnoses["code"].to_pylist()
    first: dict[str, str] = {}
    for code in all_codes:
        if len(code) > 7 and code[7] == "x":
            first.setdefault(code[:7], code)
    return np.array([first.get(c, c) for c in dx.tolist()], dtype=object)
