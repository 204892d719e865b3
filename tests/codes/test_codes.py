from __future__ import annotations

from pathlib import Path

import ibis
import pyarrow as pa
import pytest

from opendip.codes import (
    CodeTableError,
    apply_mapping,
    demo_code_tables,
    diagnosis_block,
    diagnosis_category,
    diagnosis_chapter,
    diagnosis_subcategory,
    diagnosis_subcategory_expr,
    load_code_tables,
    normalise_code,
    procedure_category,
    procedure_chapter,
    procedure_subcategory,
)
from opendip.codes.demo_build import diagnosis_flags, procedure_type


@pytest.mark.parametrize(
    ("code", "category", "subcategory", "block", "chapter"),
    [
        ("K35.800x001", "K35", "K35.8", "K35-K38", "XI"),
        ("I74.800x021", "I74", "I74.8", "I70-I79", "IX"),
        ("I10.x00", "I10", "I10.x", "I10-I15", "IX"),
        ("O80.000", "O80", "O80.0", "O80-O84", "XV"),
        ("C34", "C34", "C34", "C30-C39", "II"),
    ],
)
def test_diagnosis_hierarchy(
    code: str, category: str, subcategory: str, block: str, chapter: str
) -> None:
    assert diagnosis_category(code) == category
    assert diagnosis_subcategory(code) == subcategory
    assert diagnosis_block(code) == block
    assert diagnosis_chapter(code) == chapter


def test_procedure_hierarchy() -> None:
    assert procedure_category("47.0100x001") == "47.0"
    assert procedure_subcategory("47.0100x001") == "47.01"
    assert procedure_chapter("47.0100") == "42-54"
    assert procedure_chapter("00.6600") == "00"
    assert procedure_chapter("xx") == ""


def test_batch_subcategory_matches_python() -> None:
    codes = ["K35.800x001", "I10.x00", "C34", "A09.900"]
    t = ibis.memtable({"code": codes})
    got = t.select(s=diagnosis_subcategory_expr(t.code)).to_pyarrow()["s"].to_pylist()
    assert got == [diagnosis_subcategory(c) for c in codes]


def test_normalise_code() -> None:
    assert normalise_code(" ｋ３５．８００Ｘ００１ ") == "K35.800x001"
    assert normalise_code("k35.800X001") == "K35.800x001"
    assert normalise_code("i10.X00") == "I10.x00"
    assert normalise_code("28.2X00") == "28.2x00"
    assert normalise_code("   ") is None
    assert normalise_code(None) is None


def test_flags_follow_national_rules() -> None:
    assert diagnosis_flags("R50.900")[0] is False  # symptom
    assert diagnosis_flags("V89.200")[0] is False  # external cause
    assert diagnosis_flags("Z51.100")[0] is True  # chemotherapy session accepted
    assert diagnosis_flags("Z00.000")[0] is False
    assert diagnosis_flags("O80.000")[1] == "2"
    assert diagnosis_flags("N40.x00")[1] == "1"
    assert diagnosis_flags("P59.900")[3] == 28
    assert procedure_type("88.0100") == "diagnostic"
    assert procedure_type("99.2500") == "therapeutic"
    assert procedure_type("00.6600") == "interventional"
    assert procedure_type("47.0100") == "surgery"


def test_demo_tables_are_consistent() -> None:
    tables = demo_code_tables()
    assert tables.diagnoses.num_rows > 10_000
    assert tables.procedures.num_rows > 2_000
    row = tables.diagnosis("K35.800")
    assert row is not None and row["name"] == "急性阑尾炎" and row["subcategory"] == "K35.8"
    assert tables.procedure("13.4100")["procedure_type"] == "surgery"  # type: ignore[index]
    assert len(set(tables.diagnoses["code"].to_pylist())) == tables.diagnoses.num_rows


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_load_official_tables_gbk_with_chinese_headers(tmp_path: Path) -> None:
    diag = _write(
        tmp_path / "d.csv",
        "诊断代码,诊断名称,可作主要诊断,性别限制\nk35.800x001,急性阑尾炎,是,\nN40.x00,前列腺增生,是,男\n",
        "gbk",
    )
    proc = _write(tmp_path / "p.csv", "代码,名称,手术操作类别\n47.0100,腹腔镜阑尾切除术,手术\n")
    tables = load_code_tables(diag, proc)
    assert tables.diagnosis("K35.800x001")["subcategory"] == "K35.8"  # type: ignore[index]
    assert tables.diagnosis("N40.x00")["sex_restriction"] == "1"  # type: ignore[index]
    assert tables.procedure("47.0100")["procedure_type"] == "surgery"  # type: ignore[index]


def test_bad_code_files_name_file_row_and_field(tmp_path: Path) -> None:
    proc = _write(tmp_path / "p.csv", "代码,名称,手术操作类别\n47.0100,阑尾切除,手术\n")
    missing = _write(tmp_path / "d1.csv", "诊断名称\n阑尾炎\n")
    with pytest.raises(CodeTableError, match="缺少列 code"):
        load_code_tables(missing, proc)
    dup = _write(tmp_path / "d2.csv", "诊断代码,诊断名称\nK35.800,a\nK35.800,b\n")
    with pytest.raises(CodeTableError, match=r"第 3 行.*与第 2 行重复"):
        load_code_tables(dup, proc)
    bad_type = _write(tmp_path / "p2.csv", "代码,名称,手术操作类别\n47.0100,阑尾切除,随便\n")
    ok_diag = _write(tmp_path / "d3.csv", "诊断代码,诊断名称\nK35.800,a\n")
    with pytest.raises(CodeTableError, match="第 2 行 字段 手术操作类别"):
        load_code_tables(ok_diag, bad_type)


def test_mapping_reports_unmapped_codes_with_counts() -> None:
    cases = pa.table(
        {
            "main_diagnosis": ["K35.801", "K35.801", "J18.999"],
            "other_diagnoses": [["I10.001"], [], ["I10.001"]],
            "main_procedure": ["47.0101", None, None],
            "other_procedures": [[], [], []],
        }
    )
    mapping = pa.table(
        {
            "kind": ["diagnosis", "diagnosis", "procedure"],
            "clinical_code": ["K35.801", "I10.001", "47.0101"],
            "insurance_code": ["K35.800x001", "I10.x00", "47.0100"],
        }
    )
    mapped, report = apply_mapping(cases, mapping)
    assert mapped["main_diagnosis"].to_pylist() == ["K35.800x001", "K35.800x001", "J18.999"]
    assert mapped["other_diagnoses"].to_pylist() == [["I10.x00"], [], ["I10.x00"]]
    assert mapped["main_procedure"].to_pylist() == ["47.0100", None, None]
    assert report.to_pylist() == [{"kind": "diagnosis", "clinical_code": "J18.999", "cases": 1}]
