from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from opendip.cli.main import app
from opendip.contract import CASES
from opendip.ingest import read_cases, read_file, read_hospitals
from opendip.ingest.export import fen_to_yuan_text, write_settlement_csv
from opendip.ingest.readers import ReadError
from opendip.ingest.values import parse_date, parse_money

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
BROKEN = FIXTURES / "broken_gbk.csv"
HEADER = "结算清单号,定点医疗机构代码,人员编号,险种类型,性别,年龄,入院日期,出院日期,主要诊断代码,其他诊断代码,其他手术及操作代码,医疗总费用,结算月份"
GOOD = "B{n},H001,P{n},职工,男,45,2026-03-01,2026-03-05,K35.800x001,I10.x00|E11.900,47.0100,100.50,2026-03"
BAD = "B{n},H001,P{n},职工,男,45,2026-03-01,2026-03-05,K35.800x001,,,-1,2026-03"


def _csv(tmp_path: Path, lines: list[str], name: str = "f.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def test_broken_file_loses_nothing_and_says_why() -> None:
    result = read_cases([BROKEN])
    assert result.read == 10
    assert result.accepted["case_id"].to_pylist() == ["A001", "A002", "A004"]
    assert result.quarantine.num_rows == 7
    reasons = dict(
        zip(
            result.quarantine["row_number"].to_pylist(),
            result.quarantine["reason"].to_pylist(),
            strict=True,
        )
    )
    assert "入院日期：日期无效" in reasons[4]
    assert "主要诊断代码：诊断代码格式无效" in reasons[6]
    assert "医疗总费用：金额不能为负" in reasons[7]
    assert "结算清单号：与" in reasons[8] and "第 2 行重复" in reasons[8]
    assert "列数不符" in reasons[9]
    assert "人员编号：必填项缺失" in reasons[10]
    assert "险种类型：取值不在代码集" in reasons[11] and "离院方式：取值不在代码集" in reasons[11]
    first = result.accepted.to_pylist()[0]
    assert first["total_cost"] == 1_234_560
    assert first["insurance_type"] == "employee" and first["sex"] == "1"
    assert first["other_diagnoses"] == ["I10.x00"]
    second = result.accepted.to_pylist()[1]
    assert second["main_diagnosis"] == "J18.900"  # normalised upper-case
    assert str(second["admit_date"]) == "2026-03-02"
    assert second["settle_month"] == "2026-03"


def test_cli_on_broken_file_writes_quarantine(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["import", "cases", str(BROKEN), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert pq.read_table(out / "cases.parquet").num_rows == 3
    with (out / "quarantine.csv").open(encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:3] == ["文件", "原始行号", "隔离原因"]
    assert len(rows) == 1 + 7
    assert "读入 = 接收 + 隔离" in res.output


def test_cli_fails_only_when_nothing_readable(tmp_path: Path) -> None:
    empty = _csv(tmp_path, [""], "empty.csv")
    res = CliRunner().invoke(app, ["import", "cases", str(empty), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    res = CliRunner().invoke(
        app, ["import", "cases", str(empty), str(BROKEN), "--out", str(tmp_path / "o2")]
    )
    assert res.exit_code == 0


def test_wrong_encoding_given_is_a_clear_error(tmp_path: Path) -> None:
    result = read_cases([BROKEN], encoding="utf-8")
    assert result.nothing_read
    assert "无法按 utf-8 编码读取" in str(result.files[0].error)


def test_encodings_detected(tmp_path: Path) -> None:
    lines = [HEADER, GOOD.format(n=1).replace("P1", "P𠀀")]  # a GB18030-only character
    for enc in ("utf-8", "utf-8-sig", "gb18030"):
        result = read_cases([_csv(tmp_path, lines, f"{enc}.csv", enc)])
        assert result.accepted["patient_id"].to_pylist() == ["P𠀀"], enc
    gbk = read_cases([_csv(tmp_path, [HEADER, GOOD.format(n=1)], "gbk.csv", "gbk")])
    assert gbk.files[0].encoding == "gb18030" and gbk.accepted.num_rows == 1


def test_missing_required_columns_named(tmp_path: Path) -> None:
    path = _csv(tmp_path, ["结算清单号,医疗总费用", "X1,100"])
    result = read_cases([path])
    assert result.nothing_read
    assert "缺少必填列" in str(result.files[0].error)
    assert "主要诊断代码（main_diagnosis）" in str(result.files[0].error)


def test_header_only_file(tmp_path: Path) -> None:
    result = read_cases([_csv(tmp_path, [HEADER])])
    assert result.read == 0 and result.accepted.num_rows == 0 and not result.nothing_read


def test_national_interface_codes_as_headers(tmp_path: Path) -> None:
    header = "SETL_ID,FIXMEDINS_CODE,PSN_NO,INSUTYPE,GEND,AGE,ADM_TIME,DSCG_DATE,MAINDIAG_CODE,OTHDIAG_CODES,OTH_OPRN_CODES,MEDFEE_SUMAMT,SETL_MONTH,UNKNOWN_COL"
    path = _csv(
        tmp_path, [header, "S1,H001,P1,390,2,30,20260301,20260303,O80.000,,,4600.00,202603,x"]
    )
    result = read_cases([path])
    assert result.accepted.num_rows == 1
    assert result.accepted["insurance_type"].to_pylist() == ["resident"]
    assert any("UNKNOWN_COL" in w for w in result.files[0].warnings)


def test_excel_and_parquet(tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(HEADER.split(","))
    ws.append(GOOD.format(n=1).split(","))
    ws.append([])
    xlsx = tmp_path / "f.xlsx"
    wb.save(xlsx)
    result = read_cases([xlsx])
    assert result.accepted.num_rows == 1 and result.accepted["total_cost"].to_pylist() == [10050]
    pq.write_table(result.accepted, tmp_path / "f.parquet")
    again = read_cases([tmp_path / "f.parquet"])
    assert again.accepted.equals(result.accepted)


def test_unsupported_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="不支持"):
        read_file(_csv(tmp_path, ["a"], "x.json"))
    with pytest.raises(ReadError, match="不存在"):
        read_file(tmp_path / "nope.csv")


def test_money_parsing_is_exact() -> None:
    got = parse_money(pa.array(["1,234.565", "0.1249", "0.125", "7.5", "12", "abc", None]))[
        0
    ].to_pylist()
    assert got == [123457, 12, 13, 750, 1200, None, None]
    assert fen_to_yuan_text(pa.array([123456, -5, 0, 7])).to_pylist() == [
        "1234.56",
        "-0.05",
        "0.00",
        "0.07",
    ]


def test_dates_strict() -> None:
    dates, bad = parse_date(
        pa.array(["2026/1/5", "20260105", "2026年1月5日", "2026-02-30", "x", None])
    )
    assert [str(d) if d else None for d in dates.to_pylist()] == ["2026-01-05"] * 3 + [None] * 3
    assert bad.to_pylist() == [False, False, False, True, True, False]


def test_hospitals_import(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        [
            "医疗机构代码,医疗机构名称,医院等级,所属区县,所有制",
            "H001,市人民医院,三级甲等,城关区,公立",
            "H002,某诊所,五级,城关区,民营",
        ],
    )
    result = read_hospitals([path])
    assert result.accepted.to_pylist()[0]["level"] == "tertiary"
    assert result.quarantine.num_rows == 1


def test_round_trip_of_generated_region(tmp_path: Path) -> None:
    from opendip.synth import generate_region

    generate_region(tmp_path / "r", hospitals=8, cases_per_year=1500, years=(2026,), seed=5)
    source = pq.read_table(tmp_path / "r" / "cases_2026.parquet")
    path = write_settlement_csv(source, tmp_path / "export.csv")
    result = read_cases([path])
    assert result.read == source.num_rows
    ok_ids = set(result.accepted["case_id"].to_pylist())
    kept = source.filter(pa.compute.is_in(source["case_id"], pa.array(sorted(ok_ids))))
    first_rows = {}
    for row in kept.to_pylist():
        first_rows.setdefault(row["case_id"], row)
    for row in result.accepted.to_pylist()[:200]:
        assert row == first_rows[row["case_id"]]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.booleans(), min_size=0, max_size=30), st.booleans())
def test_input_equals_accepted_plus_quarantined(
    tmp_path: Path, goods: list[bool], ragged: bool
) -> None:
    lines = [HEADER] + [(GOOD if g else BAD).format(n=i) for i, g in enumerate(goods)]
    if ragged:
        lines.append("R,1,2")
    target = tmp_path / "prop"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    result = read_cases([_csv(target, lines)])
    assert result.read == len(goods) + ragged
    assert result.accepted.num_rows == sum(goods)
    assert result.accepted.num_rows + result.quarantine.num_rows == result.read
    assert result.accepted.schema == CASES.schema


def test_text_stays_text(tmp_path: Path) -> None:
    """Codes like 47.0100 and ids with leading zeros are never read as numbers."""
    line = "007,H001,00042,职工,男,45,2026-03-01,2026-03-05,K35.800,,47.0100,100,2026-03"
    result = read_cases([_csv(tmp_path, [HEADER, line])])
    row = result.accepted.to_pylist()[0]
    assert row["case_id"] == "007" and row["patient_id"] == "00042"
    assert row["other_procedures"] == ["47.0100"]
