"""`opendip import` through the CLI: the issue's "done when" on a deliberately broken CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from opendip.cli.main import app
from opendip.contract import CASES, HOSPITALS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
BROKEN = FIXTURES / "broken_gbk.csv"
MISSING_COLUMNS = FIXTURES / "missing_columns.csv"


def _invoke(*args: str):
    return CliRunner().invoke(app, ["import", *args], env={"COLUMNS": "200"})


def test_broken_csv_gives_clear_errors_a_quarantine_file_and_loses_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    res = _invoke("cases", str(BROKEN), str(MISSING_COLUMNS), "--out", str(out))
    assert res.exit_code == 0, res.output
    accepted = pq.read_table(out / "cases.parquet")
    assert accepted.schema == CASES.schema and accepted.num_rows == 4
    with (out / "quarantine.csv").open(encoding="utf-8-sig", newline="") as fh:
        quarantine = list(csv.DictReader(fh))
    assert len(quarantine) == 12
    assert accepted.num_rows + len(quarantine) == 16  # every data row of the file
    assert {q["原始行号"] for q in quarantine} == {
        "4", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "18",
    }  # fmt: skip
    assert (out / "errors.csv").exists()
    output = res.output
    assert "读入 16 = 接收 4 + 隔离 12 ✓" in output
    assert "缺少必填列：定点医疗机构代码（hospital_id）" in output
    for kind in ("日期无效", "代码格式无效", "不能为负", "主键重复", "列数不符", "取值不在代码集"):
        assert kind in output, kind
    assert "未识别的列“备注”已忽略" in output


def test_exit_code_is_non_zero_only_when_nothing_could_be_read(tmp_path: Path) -> None:
    wrong = _invoke("cases", str(BROKEN), "--encoding", "utf-8", "--out", str(tmp_path / "a"))
    assert wrong.exit_code == 1
    assert "无法按 UTF-8 编码读取" in wrong.output and "没有任何文件可以读取" in wrong.output
    missing = _invoke("cases", str(MISSING_COLUMNS), "--out", str(tmp_path / "b"))
    assert missing.exit_code == 1
    nothing = _invoke("cases", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "c"))
    assert nothing.exit_code == 1 and "文件不存在" in nothing.output
    # outputs are still written (empty), so a caller can always look at them
    assert pq.read_table(tmp_path / "c" / "cases.parquet").num_rows == 0
    some = _invoke("cases", str(MISSING_COLUMNS), str(BROKEN), "--out", str(tmp_path / "d"))
    assert some.exit_code == 0


def test_encoding_given_explicitly(tmp_path: Path) -> None:
    res = _invoke("cases", str(BROKEN), "--encoding", "gbk", "--out", str(tmp_path / "o"))
    assert res.exit_code == 0, res.output
    assert pq.read_table(tmp_path / "o" / "cases.parquet").num_rows == 4


def test_excel_sheet_option(tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "说明"
    ws = wb.create_sheet("机构")
    ws.append(["医疗机构代码", "医疗机构名称", "医院等级", "所属区县"])
    ws.append(["H001", "市人民医院", "三级", "城关区"])
    wb.save(tmp_path / "h.xlsx")
    res = _invoke("hospitals", str(tmp_path / "h.xlsx"), "--sheet", "机构", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    table = pq.read_table(tmp_path / "hospitals.parquet")
    assert table.schema == HOSPITALS.schema and table["level"].to_pylist() == ["tertiary"]


def test_help_is_bilingual() -> None:
    res = CliRunner().invoke(app, ["import", "--help"])
    assert res.exit_code == 0
    assert "导入医保结算清单" in res.output and "import settlement lists" in res.output
