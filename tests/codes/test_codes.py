"""Code tables: demo tables, loaders (Chinese headers, GBK, Excel), mapping, CLI."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from typer.testing import CliRunner

from opendip.cli.main import app
from opendip.codes import (
    CodeTableError,
    apply_mapping,
    demo_code_tables,
    load_code_tables,
    load_mapping,
    read_code_tables,
)
from opendip.codes.demo_build import (
    build_diagnoses,
    build_procedures,
    diagnosis_flags,
    procedure_type,
)
from opendip.codes.tables import DEMO_DIR
from opendip.contract import DIAGNOSIS_CODES, PROCEDURE_CODES

runner = CliRunner()


# --- demo tables -------------------------------------------------------------------------


def test_flags_follow_national_rules() -> None:
    assert diagnosis_flags("R50.900")[0] is False  # symptom
    assert diagnosis_flags("V89.200")[0] is False  # external cause
    assert diagnosis_flags("Y98.x00")[0] is False  # last external-cause category
    assert diagnosis_flags("Z51.100")[0] is True  # chemotherapy session accepted
    assert diagnosis_flags("Z00.000")[0] is False  # most Z codes are not
    assert diagnosis_flags("K35.800")[0] is True
    assert diagnosis_flags("O80.000")[1] == "2"
    assert diagnosis_flags("C53.900")[1] == "2"
    assert diagnosis_flags("N97.900")[1] == "2"
    assert diagnosis_flags("D25.900")[1] == "2"
    assert diagnosis_flags("N40.x00")[1] == "1"
    assert diagnosis_flags("C61.x00")[1] == "1"
    assert diagnosis_flags("N52.900")[1] is None  # just outside the male range
    assert diagnosis_flags("P59.900")[3] == 28
    assert diagnosis_flags("Q21.000")[3] is None
    assert procedure_type("88.0100") == "diagnostic"
    assert procedure_type("45.1300") == "diagnostic"
    assert procedure_type("99.2500") == "therapeutic"
    assert procedure_type("00.6600") == "interventional"
    assert procedure_type("36.0600") == "interventional"
    assert procedure_type("47.0100") == "surgery"


def test_demo_tables_are_consistent() -> None:
    tables = demo_code_tables()
    assert tables is demo_code_tables()  # cached
    assert tables.diagnoses.schema == DIAGNOSIS_CODES.schema
    assert tables.procedures.schema == PROCEDURE_CODES.schema
    assert tables.diagnoses.num_rows > 10_000
    assert tables.procedures.num_rows > 2_000
    row = tables.diagnosis("K35.800")
    assert row is not None and row["name"] == "急性阑尾炎" and row["subcategory"] == "K35.8"
    assert tables.diagnosis("K35.800x001") is not None  # insurance-style extension
    assert tables.procedure("13.4100")["procedure_type"] == "surgery"  # type: ignore[index]
    assert tables.procedure("47.0100")["name"] == "腹腔镜下阑尾切除术"  # type: ignore[index]
    assert tables.procedure("65.0100")["sex_restriction"] == "2"  # type: ignore[index]
    assert tables.procedure("60.2900")["sex_restriction"] == "1"  # type: ignore[index]
    assert tables.diagnosis("NOPE") is None
    for table in (tables.diagnoses, tables.procedures):
        assert len(set(table["code"].to_pylist())) == table.num_rows
    types = Counter(tables.procedures["procedure_type"].to_pylist())
    assert set(types) == {"diagnostic", "therapeutic", "interventional", "surgery"}
    chapters = set(tables.diagnoses["chapter"].to_pylist())
    assert {"I", "II", "IX", "XI", "XV", "XXI"} <= chapters


def test_every_demo_code_has_a_chinese_name() -> None:
    import re

    tables = demo_code_tables()
    for table in (tables.diagnoses, tables.procedures):
        names = table["name"].to_pylist()
        # Chinese text in every name, no English phrase (terms such as [HIV], H.pylori stay)
        assert all(re.search(r"[\u4e00-\u9fff]", n) for n in names)
        assert not [n for n in names if re.search(r"[A-Za-z]{2,} [A-Za-z]{2,}", n)]
    # Chinese ICD titles where the code is a real ICD code, the demo region's names first
    assert tables.diagnosis("K80.200")["name"] == "胆囊结石不伴胆囊炎"  # type: ignore[index]
    assert tables.diagnosis("K80.000")["name"] == "胆囊结石伴有急性胆囊炎"  # type: ignore[index]
    assert tables.procedure("51.2300")["name"] == "腹腔镜胆囊切除术"  # type: ignore[index]
    assert tables.procedure("51.2200")["name"] == "胆囊切除术"  # type: ignore[index]
    # a demo-only subcategory is labelled as demo
    demo_only = [n for n in tables.procedures["name"].to_pylist() if "（示范）" in n]
    assert demo_only and all("其他操作" in n for n in demo_only)


def test_shipped_tables_are_exactly_what_the_build_script_makes() -> None:
    assert build_diagnoses().equals(pq.read_table(DEMO_DIR / "diagnoses.parquet"))
    assert build_procedures().equals(pq.read_table(DEMO_DIR / "procedures.parquet"))
    provenance = (DEMO_DIR / "PROVENANCE.md").read_text(encoding="utf-8")
    assert "这不是官方医保版代码表" in provenance and "not the official" in provenance


# --- loaders -----------------------------------------------------------------------------


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _proc(tmp_path: Path) -> Path:
    return _write(tmp_path / "p.csv", "代码,名称,手术操作类别\n47.0100,腹腔镜阑尾切除术,手术\n")


def test_load_official_tables_gbk_with_chinese_headers(tmp_path: Path) -> None:
    diag = _write(
        tmp_path / "d.csv",
        "诊断代码,诊断名称,可作主要诊断,性别限制,最大年龄(天)\n"
        "k35.800x001,急性阑尾炎,是,,\n"
        "N40.x00,前列腺增生,是,男,\n"
        "R50.900,发热,否,,\n"
        "P59.900,新生儿黄疸,1,,28\n",
        "gbk",
    )
    proc = _write(
        tmp_path / "p.csv",
        "代码,名称,手术操作类别,性别限制\n"
        "47.0100,腹腔镜阑尾切除术,手术\n"
        "88.0100,腹部CT,诊断性操作,\n"
        "74.1x00,子宫下段剖宫产,手术,女\n",
        "gb18030",
    )
    tables = load_code_tables(diag, proc)
    k35 = tables.diagnosis("K35.800x001")
    assert k35 == {
        "code": "K35.800x001",
        "name": "急性阑尾炎",
        "chapter": "XI",
        "block": "K35-K38",
        "category": "K35",
        "subcategory": "K35.8",
        "valid_as_main": True,
        "sex_restriction": None,
        "age_min_days": None,
        "age_max_days": None,
    }
    assert tables.diagnosis("N40.x00")["sex_restriction"] == "1"  # type: ignore[index]
    assert tables.diagnosis("R50.900")["valid_as_main"] is False  # type: ignore[index]
    assert tables.diagnosis("P59.900")["age_max_days"] == 28  # type: ignore[index]
    assert tables.procedure("47.0100")["procedure_type"] == "surgery"  # type: ignore[index]
    assert tables.procedure("88.0100")["procedure_type"] == "diagnostic"  # type: ignore[index]
    assert tables.procedure("74.1x00")["sex_restriction"] == "2"  # type: ignore[index]
    assert tables.procedure("74.1x00")["subcategory"] == "74.1x"  # type: ignore[index]


def test_load_excel_and_round_trip(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["疾病代码", "疾病名称", "是否可作主诊断"])
    sheet.append(["J18.900", "肺炎", 1])
    sheet.append(["R10.400", "腹痛", 0])
    book.save(tmp_path / "d.xlsx")
    tables = load_code_tables(tmp_path / "d.xlsx", _proc(tmp_path))
    assert tables.diagnosis("J18.900")["valid_as_main"] is True  # type: ignore[index]
    assert tables.diagnosis("R10.400")["valid_as_main"] is False  # type: ignore[index]
    tables.write(tmp_path / "out")
    again = read_code_tables(tmp_path / "out")
    assert again.diagnoses.equals(tables.diagnoses)
    assert again.procedures.equals(tables.procedures)


def test_missing_columns_name_the_file(tmp_path: Path) -> None:
    missing = _write(tmp_path / "d1.csv", "诊断名称\n阑尾炎\n")
    with pytest.raises(CodeTableError, match=r"d1\.csv: 缺少列 code（诊断代码）"):
        load_code_tables(missing, _proc(tmp_path))
    no_type = _write(tmp_path / "p1.csv", "代码,名称\n47.0100,阑尾切除\n")
    ok = _write(tmp_path / "d.csv", "诊断代码,诊断名称\nK35.800,a\n")
    with pytest.raises(CodeTableError, match="缺少列 procedure_type（手术操作类别）"):
        load_code_tables(ok, no_type)


def test_every_bad_row_is_reported_with_file_row_and_field(tmp_path: Path) -> None:
    diag = _write(
        tmp_path / "d.csv",
        "诊断代码,诊断名称,可作主要诊断,性别限制,最小年龄(天),最大年龄(天)\n"
        "K35.800,阑尾炎,是,,,\n"  # row 2 fine
        "K35.800,重复,是,,,\n"  # row 3 duplicate
        ",空代码,是,,,\n"  # row 4 empty code
        "K35.8-00,坏格式,是,,,\n"  # row 5 malformed
        "J18.900,肺炎,也许,,,\n"  # row 6 bad flag
        "N40.x00,前列腺增生,是,X,,\n"  # row 7 bad sex
        "P59.900,黄疸,是,,abc,\n"  # row 8 bad age
        "P07.300,早产,是,,30,28\n"  # row 9 min > max
        "A09.900,,是,,,\n",  # row 10 empty name
    )
    proc = _write(
        tmp_path / "p.csv",
        "代码,名称,手术操作类别,性别限制\n47.0100,阑尾切除,随便,\n4701,坏格式,手术,\n60.2900,电切,手术,3\n",
    )
    with pytest.raises(CodeTableError) as info:
        load_code_tables(diag, proc)
    errors = info.value.errors
    expected = [
        ("d.csv 第 3 行 字段 code", "与第 2 行重复"),
        ("d.csv 第 4 行 字段 code", "代码为空"),
        ("d.csv 第 5 行 字段 code", "不符合 ICD-10 医保版格式"),
        ("d.csv 第 6 行 字段 可作主要诊断", "无效值 '也许'"),
        ("d.csv 第 7 行 字段 性别限制", "无效值 'X'"),
        ("d.csv 第 8 行 字段 最小年龄(天)", "无效值 'abc'"),
        ("d.csv 第 9 行 字段 最大年龄(天)", "最小年龄 30 天大于最大年龄 28 天"),
        ("d.csv 第 10 行 字段 name", "名称为空"),
        ("p.csv 第 2 行 字段 手术操作类别", "无效值 '随便'"),
        ("p.csv 第 3 行 字段 code", "不符合 ICD-9-CM-3 医保版格式"),
        ("p.csv 第 4 行 字段 性别限制", "无效值 '3'"),
    ]
    assert len(errors) == len(expected)
    for (where, what), line in zip(expected, errors, strict=True):
        assert where in line and what in line, line
    assert str(tmp_path) in errors[0]


def test_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(CodeTableError, match="文件不存在"):
        load_code_tables(tmp_path / "none.csv", _proc(tmp_path))
    empty = _write(tmp_path / "e.csv", "\n\n")
    with pytest.raises(CodeTableError, match="文件为空"):
        load_code_tables(empty, _proc(tmp_path))
    bad_xlsx = _write(tmp_path / "b.xlsx", "not a workbook")
    with pytest.raises(CodeTableError, match="无法读取 Excel"):
        load_code_tables(bad_xlsx, _proc(tmp_path))
    with pytest.raises(CodeTableError, match="请先运行 opendip codes load"):
        read_code_tables(tmp_path)


# --- mapping -----------------------------------------------------------------------------

MAPPING = pa.table(
    {
        "kind": ["diagnosis", "diagnosis", "procedure"],
        "clinical_code": ["K35.801", "I10.001", "47.0101"],
        "insurance_code": ["K35.800x001", "I10.x00", "47.0100"],
    }
)


def test_mapping_reports_unmapped_codes_with_counts() -> None:
    cases = pa.table(
        {
            "case_id": ["a", "b", "c", "d"],
            "main_diagnosis": ["K35.801", "K35.801", "J18.999", "I10.x00"],
            "other_diagnoses": [["I10.001", "E11.901", "E11.901"], [], None, ["E11.901"]],
            "main_procedure": ["47.0101", None, "99.9999", None],
            "other_procedures": [["47.0101"], [], [], None],
        }
    )
    mapped, report = apply_mapping(cases, MAPPING)
    assert mapped["case_id"].to_pylist() == ["a", "b", "c", "d"]
    assert mapped["main_diagnosis"].to_pylist() == [
        "K35.800x001",
        "K35.800x001",
        "J18.999",
        "I10.x00",  # already an insurance code: kept, not reported
    ]
    assert mapped["other_diagnoses"].to_pylist() == [
        ["I10.x00", "E11.901", "E11.901"],
        [],
        None,
        ["E11.901"],
    ]
    assert mapped["main_procedure"].to_pylist() == ["47.0100", None, "99.9999", None]
    assert mapped["other_procedures"].to_pylist() == [["47.0100"], [], [], None]
    assert report.to_pylist() == [
        {"kind": "diagnosis", "clinical_code": "E11.901", "occurrences": 3, "cases": 2},
        {"kind": "diagnosis", "clinical_code": "J18.999", "occurrences": 1, "cases": 1},
        {"kind": "procedure", "clinical_code": "99.9999", "occurrences": 1, "cases": 1},
    ]


def test_mapping_nothing_unmapped_gives_an_empty_report() -> None:
    cases = pa.table({"main_diagnosis": ["K35.801"], "other_diagnoses": [["I10.001"]]})
    mapped, report = apply_mapping(cases, MAPPING)
    assert mapped["main_diagnosis"].to_pylist() == ["K35.800x001"]
    assert report.num_rows == 0
    assert report.column_names == ["kind", "clinical_code", "occurrences", "cases"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["K35.801", "I10.001", "X", "Y", "I10.x00"]), max_size=4),
        min_size=1,
        max_size=20,
    )
)
def test_mapping_keeps_every_code_and_counts_every_unmapped_one(lists: list[list[str]]) -> None:
    cases = pa.table({"other_diagnoses": pa.array(lists, pa.list_(pa.string()))})
    mapped, report = apply_mapping(cases, MAPPING)
    table = {"K35.801": "K35.800x001", "I10.001": "I10.x00"}
    assert mapped["other_diagnoses"].to_pylist() == [
        [table.get(c, c) for c in lst] for lst in lists
    ]
    want = Counter(c for lst in lists for c in lst if c in ("X", "Y"))
    assert {r["clinical_code"]: r["occurrences"] for r in report.to_pylist()} == dict(want)


def test_load_mapping_file_with_chinese_headers(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "m.csv",
        "类型,国临版代码,医保版代码\n诊断,k35.801,K35.800X001\n手术操作,47.0101,47.0100\n",
        "gbk",
    )
    table = load_mapping(path)
    assert table.to_pylist() == [
        {"kind": "diagnosis", "clinical_code": "K35.801", "insurance_code": "K35.800x001"},
        {"kind": "procedure", "clinical_code": "47.0101", "insurance_code": "47.0100"},
    ]


def test_bad_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(CodeTableError, match="缺少列 insurance_code"):
        load_mapping(_write(tmp_path / "a.csv", "类型,国临版代码\n诊断,K35.801\n"))
    bad = _write(
        tmp_path / "b.csv",
        "类型,国临版代码,医保版代码\n其他,K35.801,K35.800\n诊断,,K35.800\n"
        "诊断,K35.801,K35.800\n诊断,K35.801,K35.900\n",
    )
    with pytest.raises(CodeTableError) as info:
        load_mapping(bad)
    assert len(info.value.errors) == 3
    assert "第 2 行 字段 类型: 无效值 '其他'" in info.value.errors[0]
    assert "第 3 行 字段 国临版代码: 代码为空" in info.value.errors[1]
    assert "第 5 行 字段 国临版代码: K35.801 与第 4 行重复" in info.value.errors[2]


# --- CLI ---------------------------------------------------------------------------------


def test_cli_codes_load_writes_parquet(tmp_path: Path) -> None:
    diag = _write(tmp_path / "d.csv", "诊断代码,诊断名称\nK35.800,阑尾炎\nJ18.900,肺炎\n", "gbk")
    result = runner.invoke(
        app, ["codes", "load", str(diag), str(_proc(tmp_path)), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert "疾病诊断" in result.output
    assert pq.read_table(tmp_path / "o" / "diagnoses.parquet").num_rows == 2
    assert pq.read_table(tmp_path / "o" / "procedures.parquet").num_rows == 1


def test_cli_codes_load_lists_errors_and_fails(tmp_path: Path) -> None:
    diag = _write(tmp_path / "d.csv", "诊断代码,诊断名称\nK35.800,a\nK35.800,b\n")
    result = runner.invoke(
        app, ["codes", "load", str(diag), str(_proc(tmp_path)), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "第 3 行 字段 code" in result.output
    assert not (tmp_path / "o").exists()


def test_cli_codes_show(tmp_path: Path) -> None:
    result = runner.invoke(app, ["codes", "show", "k35.800X001"])
    assert result.exit_code == 0, result.output
    for text in ("K35.800x001", "K35-K38", "K35.8", "可作主要诊断"):
        assert text in result.output
    result = runner.invoke(app, ["codes", "show", "13.4100"])
    assert result.exit_code == 0 and "08-16 眼部手术" in result.output and "手术" in result.output
    result = runner.invoke(app, ["codes", "show", "13.41"])
    assert result.exit_code == 1
    assert "不在代码表中" in result.output and "13.4100" in result.output


def test_cli_codes_map(tmp_path: Path) -> None:
    cases = pa.table(
        {"main_diagnosis": ["K35.801", "J18.999"], "other_diagnoses": [["I10.001"], ["J18.999"]]}
    )
    pq.write_table(cases, tmp_path / "cases.parquet")
    mapping = _write(
        tmp_path / "m.csv",
        "类型,国临版代码,医保版代码\n诊断,K35.801,K35.800x001\n诊断,I10.001,I10.x00\n",
    )
    result = runner.invoke(
        app,
        [
            "codes",
            "map",
            str(tmp_path / "cases.parquet"),
            "--mapping",
            str(mapping),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "J18.999" in result.output
    out = pq.read_table(tmp_path / "o" / "cases.parquet")
    assert out["main_diagnosis"].to_pylist() == ["K35.800x001", "J18.999"]
    report = (tmp_path / "o" / "unmapped.csv").read_text(encoding="utf-8-sig").splitlines()
    assert report == ["类型,国临版代码,出现次数,病例数", "诊断,J18.999,2,1"]
    result = runner.invoke(
        app,
        [
            "codes",
            "map",
            str(tmp_path / "none.parquet"),
            "--mapping",
            str(mapping),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 1 and "文件不存在" in result.output
