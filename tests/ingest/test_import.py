"""Import: header aliases, row validation, duplicates, quarantine, outputs, invariant."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opendip.contract import CASES, HOSPITALS, QUARANTINE
from opendip.ingest import ImportResult, read_cases, read_hospitals, write_outputs
from opendip.ingest.export import write_settlement_csv
from opendip.ingest.importer import InvariantError
from opendip.ingest.validate import ERROR_SCHEMA

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
BROKEN = FIXTURES / "broken_gbk.csv"
MISSING_COLUMNS = FIXTURES / "missing_columns.csv"

HEADER = "结算清单号,定点医疗机构代码,人员编号,险种类型,性别,年龄,出生日期,入院日期,出院日期,主要诊断代码,其他诊断代码,其他手术及操作代码,医疗总费用,结算月份"
GOOD = "{id},H001,P{n},职工,男,45,1980-01-01,2026-03-01,2026-03-05,K35.800x001,I10.x00|E11.900,47.0100,100.50,2026-03"
#: One row per kind of structural error (each is quarantined, for the reason in the comment).
BAD_ROWS = (
    "{id},H001,P{n},职工,男,45,,2026-02-30,2026-03-05,K35.8,,,1,2026-03",  # impossible date
    "{id},H001,P{n},职工,男,45,,2026-03-01,2026-03-05,BAD,,,1,2026-03",  # malformed code
    "{id},H001,P{n},职工,男,45,,2026-03-01,2026-03-05,K35.8,,,-1,2026-03",  # negative cost
    "{id},H001,,职工,男,45,,2026-03-01,2026-03-05,K35.8,,,1,2026-03",  # missing patient
    "{id},H001,P{n},学生,男,45,,2026-03-01,2026-03-05,K35.8,,,1,2026-03",  # not in code set
    "{id},H001,P{n},职工,男,131,,2026-03-01,2026-03-05,K35.8,,,1,2026-03",  # absurd age
    "{id},H001,P{n},职工,男,45,,2026-03-01,2026-03-05,K35.8,,X1,1,2026-03",  # list code
    "{id},H001,P{n},职工,男,45,,2026-03-01,2026-03-05,K35.8,,,1,2026-99",  # bad month
    "{id},H001,P{n},职工,男,45",  # ragged
)


def _csv(tmp_path: Path, lines: list[str], name: str = "f.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def _reasons(result: ImportResult) -> dict[int, str]:
    q = result.quarantine
    return dict(zip(q["row_number"].to_pylist(), q["reason"].to_pylist(), strict=True))


# --- the deliberately broken file ---------------------------------------------------------


def test_broken_file_loses_nothing_and_says_why() -> None:
    result = read_cases([BROKEN])
    assert result.files[0].encoding == "gb18030"
    assert (result.read, result.accepted.num_rows, result.quarantine.num_rows) == (16, 4, 12)
    assert result.accepted["case_id"].to_pylist() == ["A001", "A002", "A004", "A015"]
    assert result.sources is not None
    assert result.sources["row_number"].to_pylist() == [2, 3, 5, 17]
    reasons = _reasons(result)
    assert sorted(reasons) == [4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 18]  # row 16 is blank
    assert reasons[4] == "入院日期：日期无效（应为 YYYY-MM-DD，如 2026-01-05）"
    assert reasons[6].startswith("主要诊断代码：诊断代码格式无效")
    assert reasons[7] == "医疗总费用：金额不能为负"
    assert reasons[8] == "结算清单号：与第 2 行重复"
    assert reasons[9] == "列数不符：应为 17 列，实为 14 列"
    assert reasons[10] == "人员编号：必填项缺失"
    assert "险种类型：取值不在代码集" in reasons[11] and "离院方式：取值不在代码集" in reasons[11]
    assert reasons[12] == "年龄：超出合理范围（0–130 岁）"
    assert reasons[13].startswith("其他手术及操作代码：手术操作代码格式无效")
    assert reasons[14] == "实际住院天数：不能为负数"
    assert "医疗总费用：金额无效" in reasons[15] and "结算月份：结算月份无效" in reasons[15]
    assert reasons[18].startswith("出生日期：不合理")
    assert result.files[0].warnings == ["未识别的列“备注”已忽略"]


def test_broken_file_values_are_normalised() -> None:
    rows = {r["case_id"]: r for r in read_cases([BROKEN]).accepted.to_pylist()}
    a1, a2, a4, a15 = rows["A001"], rows["A002"], rows["A004"], rows["A015"]
    assert a1["total_cost"] == 1_234_560  # "12,345.60"
    assert (a1["insurance_type"], a1["sex"], a1["los_days"]) == ("employee", "1", 4)
    assert a1["birth_date"] == dt.date(1980, 5, 1)
    assert a1["other_diagnoses"] == ["I10.x00"] and a1["other_procedures"] == ["47.0100"]
    assert (a2["insurance_type"], a2["sex"], a2["discharge_method"]) == ("resident", "2", "1")
    assert (a2["admit_date"], a2["discharge_date"]) == (dt.date(2026, 3, 2), dt.date(2026, 3, 9))
    assert a2["main_diagnosis"] == "J18.900" and a2["other_diagnoses"] == ["I10.x00", "E11.900"]
    assert a2["settle_month"] == "2026-03" and a2["other_procedures"] == []
    assert a4["main_diagnosis"] == "K35.800x001" and a4["discharge_method"] == "1"
    assert a15["total_cost"] == 80_013  # "￥800.125": half up on the third decimal
    assert a15["admit_date"] == dt.date(2026, 3, 1) and a15["settle_month"] == "2026-03"


def test_missing_required_columns_are_named() -> None:
    result = read_cases([MISSING_COLUMNS])
    assert result.nothing_read and result.read == 0
    error = str(result.files[0].error)
    assert error.startswith("缺少必填列：定点医疗机构代码（hospital_id）、人员编号（patient_id）")
    assert "主要诊断代码（main_diagnosis）" in error and "结算清单号" not in error


def test_wrong_encoding_given_is_a_clear_file_error() -> None:
    result = read_cases([BROKEN], encoding="utf-8")
    assert result.nothing_read
    assert str(result.files[0].error).startswith("文件无法按 UTF-8 编码读取（第 1 行附近）")


def test_wrong_encoding_that_decodes_to_garbage_gets_a_hint(tmp_path: Path) -> None:
    path = _csv(tmp_path, [HEADER, GOOD.format(id="A1", n=1)])
    result = read_cases([path], encoding="latin-1")
    assert "缺少必填列" in str(result.files[0].error)
    assert "指定的编码 latin-1 可能不对，文件看来是 utf-8" in str(result.files[0].error)


def test_one_unreadable_file_does_not_stop_the_others(tmp_path: Path) -> None:
    good = _csv(tmp_path, [HEADER, GOOD.format(id="A1", n=1)])
    result = read_cases([tmp_path / "nope.csv", MISSING_COLUMNS, good])
    assert [f.error is None for f in result.files] == [False, False, True]
    assert result.files[0].error == "文件不存在"
    assert result.accepted.num_rows == 1 and not result.nothing_read


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    empty = read_cases([_csv(tmp_path, [""], "empty.csv")])
    assert empty.nothing_read and empty.files[0].error == "文件为空"
    header_only = read_cases([_csv(tmp_path, [HEADER], "h.csv")])
    assert not header_only.nothing_read
    assert (header_only.read, header_only.accepted.num_rows) == (0, 0)
    assert header_only.accepted.schema == CASES.schema
    assert header_only.quarantine.schema == QUARANTINE.schema


# --- headers -----------------------------------------------------------------------------


def test_national_interface_codes_and_english_names_as_headers(tmp_path: Path) -> None:
    national = "SETL_ID,FIXMEDINS_CODE,PSN_NO,INSUTYPE,GEND,AGE,ADM_TIME,DSCG_DATE,MAINDIAG_CODE,OTHDIAG_CODES,OTH_OPRN_CODES,MEDFEE_SUMAMT,SETL_MONTH,UNKNOWN_COL"
    english = ",".join(CASES.required_columns)
    a = _csv(
        tmp_path,
        [national, "S1,H001,P1,390,2,30,2026-03-01 08:00:00,20260303,O80.000,,,4600.00,202603,x"],
        "national.csv",
    )
    b = _csv(
        tmp_path,
        [english, "S2,H001,P2,resident,2,30,2026-03-01,2026-03-03,O80.000,,,4600,2026-03"],
        "english.csv",
    )
    result = read_cases([a, b])
    assert result.accepted["case_id"].to_pylist() == ["S1", "S2"]
    assert result.accepted["total_cost"].to_pylist() == [460_000, 460_000]
    assert result.accepted["insurance_type"].to_pylist() == ["resident", "resident"]
    assert result.files[0].warnings == ["未识别的列“UNKNOWN_COL”已忽略"]
    assert result.files[1].warnings == []


def test_header_spelling_variants_and_a_second_header_for_one_column(tmp_path: Path) -> None:
    header = HEADER.replace("医疗总费用", " 医疗总费用 ").replace("人员编号", "psn_no") + ",总费用"
    result = read_cases([_csv(tmp_path, [header, GOOD.format(id="A1", n=1) + ",999"])])
    assert result.accepted["total_cost"].to_pylist() == [10050]
    assert result.accepted["patient_id"].to_pylist() == ["P1"]
    assert result.files[0].warnings == ["列“总费用”与“医疗总费用”同为 total_cost，已忽略"]


# --- row rules ---------------------------------------------------------------------------


def test_duplicates_across_files_keep_the_first(tmp_path: Path) -> None:
    a = _csv(tmp_path, [HEADER, GOOD.format(id="A1", n=1), GOOD.format(id="A2", n=2)], "a.csv")
    b = _csv(tmp_path, [HEADER, GOOD.format(id="A2", n=3), GOOD.format(id="A2", n=4)], "b.csv")
    result = read_cases([a, b])
    assert result.accepted["patient_id"].to_pylist() == ["P1", "P2"]
    q = result.quarantine.to_pylist()
    assert [(Path(r["file"]).name, r["row_number"]) for r in q] == [("b.csv", 2), ("b.csv", 3)]
    assert all(r["reason"] == f"结算清单号：与文件 {a} 第 3 行重复" for r in q)
    assert [(f.read, f.accepted, f.quarantined) for f in result.files] == [(2, 2, 0), (2, 0, 2)]


def test_birth_date_after_discharge_is_absurd(tmp_path: Path) -> None:
    row = GOOD.format(id="A1", n=1).replace("1980-01-01", "2026-04-01")
    assert "出生日期：不合理" in _reasons(read_cases([_csv(tmp_path, [HEADER, row])]))[2]


def test_discharge_before_admission_is_left_to_qc(tmp_path: Path) -> None:
    row = GOOD.format(id="A1", n=1).replace("2026-03-05", "2026-02-01")
    assert read_cases([_csv(tmp_path, [HEADER, row])]).accepted.num_rows == 1


def test_every_error_of_a_row_is_listed(tmp_path: Path) -> None:
    row = "A1,H001,,学生,X,200,,2026-02-30,2026-03-05,BAD,,,-1,2026-13"
    result = read_cases([_csv(tmp_path, [HEADER, row])])
    assert sorted(result.errors["field"].to_pylist()) == sorted(
        ["patient_id", "insurance_type", "sex", "age", "admit_date", "main_diagnosis",
         "total_cost", "settle_month"]
    )  # fmt: skip
    q = result.quarantine.to_pylist()[0]
    assert q["reason"].count("；") == 7
    assert q["field"].split("、")[:2] == ["patient_id", "insurance_type"]  # contract order
    assert json.loads(q["original"])["险种类型"] == "学生"


# --- Parquet -----------------------------------------------------------------------------


def test_parquet_round_trip_and_validation(tmp_path: Path) -> None:
    good = read_cases([_csv(tmp_path, [HEADER, GOOD.format(id="A1", n=1)])]).accepted
    pq.write_table(good, tmp_path / "ok.parquet")
    assert read_cases([tmp_path / "ok.parquet"]).accepted.equals(good)
    bad = good.set_column(
        good.schema.get_field_index("total_cost"), "total_cost", pa.array([-5], pa.int64())
    )
    pq.write_table(bad, tmp_path / "bad.parquet")
    result = read_cases([tmp_path / "bad.parquet"])
    assert _reasons(result) == {1: "医疗总费用：金额不能为负"}


def test_parquet_with_float_money_is_refused(tmp_path: Path) -> None:
    good = read_cases([_csv(tmp_path, [HEADER, GOOD.format(id="A1", n=1)])]).accepted
    floats = good.set_column(
        good.schema.get_field_index("total_cost"), "total_cost", pa.array([100.5])
    )
    pq.write_table(floats, tmp_path / "f.parquet")
    error = read_cases([tmp_path / "f.parquet"]).files[0].error
    assert error == "Parquet 列类型不符：total_cost 应为 int64（分），实为 double"


# --- hospitals ---------------------------------------------------------------------------


def test_hospitals_import(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        [
            "医疗机构代码,医疗机构名称,医院等级,所属区县,所有制,核定床位数,加成系数",
            "H001,市人民医院,三级甲等,城关区,公立,800,0.05",
            "H002,县医院,二级,东县,民营,,",
            "H003,某诊所,五级,城关区,民营,,",
            "H001,重复,一级,城关区,公立,,",
            "H004,卫生院,未定级,西县,集体,-3,0.00001",
        ],
    )
    result = read_hospitals([path])
    rows = result.accepted.to_pylist()
    assert [(r["hospital_id"], r["level"], r["ownership"]) for r in rows] == [
        ("H001", "tertiary", "public"),
        ("H002", "secondary", "private"),
    ]
    assert rows[0]["beds"] == 800 and str(rows[0]["bonus_coefficient"]) == "0.0500"
    assert result.accepted.schema == HOSPITALS.schema
    reasons = _reasons(result)
    assert reasons[4].startswith("医院等级：取值不在代码集（允许：三级（tertiary）")
    assert reasons[5] == "定点医疗机构代码：与第 2 行重复"
    assert "所有制：取值不在代码集" in reasons[6] and "核定床位数：不能为负数" in reasons[6]
    assert "加成系数：不是有效数值（最多 4 位小数）" in reasons[6]


# --- outputs -----------------------------------------------------------------------------


def test_outputs_quarantine_and_errors_csv(tmp_path: Path) -> None:
    result = read_cases([BROKEN])
    paths = write_outputs(result, tmp_path / "out", "cases")
    assert pq.read_table(paths["accepted"]).schema == CASES.schema
    raw = paths["quarantine"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens UTF-8
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert len(rows) == 12
    assert list(rows[0])[:4] == ["文件", "原始行号", "隔离原因", "结算清单号"]
    assert "备注" in rows[0] and "原始行内容" in rows[0]  # all original columns + ragged text
    first = rows[0]
    assert (first["原始行号"], first["结算清单号"], first["入院日期"]) == (
        "4",
        "A003",
        "2026-02-30",
    )
    ragged = next(r for r in rows if r["原始行号"] == "9")
    assert ragged["原始行内容"].startswith("A008,H003,P8,") and ragged["结算清单号"] == ""
    errors = list(csv.DictReader(paths["errors"].read_text(encoding="utf-8-sig").splitlines()))
    assert list(errors[0]) == ["文件", "行号", "字段", "值", "错误类型", "错误说明"]
    assert (errors[0]["行号"], errors[0]["字段"], errors[0]["值"]) == (
        "4", "入院日期（admit_date）", "2026-02-30",
    )  # fmt: skip
    assert len(errors) == result.errors.num_rows == 14  # rows 11 and 15 have two errors
    assert {e["错误类型"] for e in errors} >= {"日期无效", "主键重复", "列数不符", "必填项缺失"}


def test_invariant_is_checked() -> None:
    result = read_cases([BROKEN])
    result.check_invariant()
    result.files[0].accepted -= 1
    with pytest.raises(InvariantError, match="读入 16 ≠ 接收 3 \\+ 隔离 12"):
        result.check_invariant()
    tampered = ImportResult(result.accepted, result.quarantine.slice(1), result.errors, [])
    with pytest.raises(InvariantError):
        tampered.check_invariant()


def test_round_trip_of_a_generated_region(tmp_path: Path) -> None:
    from opendip.synth import generate_region

    generate_region(tmp_path / "r", hospitals=6, cases_per_year=800, years=(2026,), seed=5)
    source = pq.read_table(tmp_path / "r" / "cases_2026.parquet")
    path = write_settlement_csv(source, tmp_path / "export.csv")
    result = read_cases([path])
    assert result.read == source.num_rows
    # the generator injects duplicated ids and invalid codes; everything else comes back equal
    by_id: dict[str, dict] = {}
    for row in source.to_pylist():
        by_id.setdefault(row["case_id"], row)
    for row in result.accepted.to_pylist():
        assert row == by_id[row["case_id"]]
    assert set(result.errors["rule"].to_pylist()) <= {"duplicate_key", "not_in_code_set"}


# --- the invariant over random inputs ------------------------------------------------------

RAGGED = BAD_ROWS[-1]
_ROW = st.one_of(st.just(GOOD), st.sampled_from(BAD_ROWS), st.just(""))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(st.tuples(_ROW, st.integers(0, 15)), max_size=25), min_size=1, max_size=3))
def test_input_equals_accepted_plus_quarantined(
    tmp_path: Path, files: list[list[tuple[str, int]]]
) -> None:
    target = tmp_path / "prop"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    paths, expected_read, ids_seen, expected_accepted = [], 0, set(), 0
    for i, rows in enumerate(files):
        lines = [HEADER]
        for template, key in rows:
            case_id = f"C{key}"
            lines.append(template.format(id=case_id, n=key))
            if template:
                expected_read += 1
                if template == GOOD and case_id not in ids_seen:
                    expected_accepted += 1
                if template != RAGGED:  # a ragged row has no parsed id to compare
                    ids_seen.add(case_id)
        paths.append(_csv(target, lines, f"f{i}.csv"))
    result = read_cases(paths)
    assert result.read == expected_read
    assert result.accepted.num_rows == expected_accepted
    assert result.accepted.num_rows + result.quarantine.num_rows == result.read
    assert sum(f.quarantined for f in result.files) == result.quarantine.num_rows
    assert result.accepted.schema == CASES.schema
    assert result.errors.schema == ERROR_SCHEMA
    assert len(set(result.accepted["case_id"].to_pylist())) == result.accepted.num_rows
    quarantined = set(zip(result.quarantine["file"].to_pylist(), result.quarantine["row_number"].to_pylist(), strict=True))  # fmt: skip
    assert quarantined == set(
        zip(result.errors["file"].to_pylist(), result.errors["row_number"].to_pylist(), strict=True)
    )


def test_duplicates_after_a_header_only_file(tmp_path: Path) -> None:
    # found by the property test below: an empty first file broke duplicate detection
    empty = _csv(tmp_path, [HEADER], "empty.csv")
    rows = _csv(tmp_path, [HEADER, GOOD.format(id="A1", n=1), GOOD.format(id="A1", n=2)])
    result = read_cases([empty, rows])
    assert result.accepted["patient_id"].to_pylist() == ["P1"]
    assert _reasons(result) == {3: "结算清单号：与第 2 行重复"}


def test_the_same_file_listed_twice_is_read_once(tmp_path: Path) -> None:
    path = _csv(tmp_path, [HEADER, GOOD.format(id="A1", n=1)])
    result = read_cases([path, tmp_path / "." / "f.csv"])
    assert result.accepted.num_rows == 1 and result.quarantine.num_rows == 0
    assert result.files[1].error == "与前面列出的文件是同一个文件，已跳过"
