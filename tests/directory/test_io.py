from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from opendip.codes import demo_code_tables
from opendip.contract import DIRECTORY
from opendip.directory.io import (
    DirectoryFileError,
    diff_directories,
    export_diff_excel,
    export_excel,
    load_official_directory,
)

HEADER = "病种编码,病种名称,病种类型,主要诊断编码,手术操作编码,病种分值,次均费用"


def _write(tmp_path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path = tmp_path / "dir.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def test_load_official_directory_gbk(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            HEADER,
            "G1,阑尾炎腹腔镜,核心病种,K35.800,47.0100,171.34,2750.00",
            "G2,阑尾炎保守,核心病种,K35.8,,45.17,725",
            "G3,胆囊任一术式,核心病种,K80.1,51.2300/51.2200,300,30000",
            "G4,胆囊切除类,核心病种,K80.1,51.2*,280,28000",
        ],
        "gbk",
    )
    table = load_official_directory(path, demo_code_tables())
    rows = {r["group_code"]: r for r in table.to_pylist()}
    assert rows["G1"]["diagnosis_key"] == "K35.8" and rows["G1"]["procedure_match"] == "all"
    assert rows["G1"]["mean_cost_fen"] == 275000 and rows["G1"]["score"] == Decimal("171.3400")
    assert rows["G2"]["procedure_match"] == "none"
    assert (
        rows["G3"]["procedure_match"] == "any" and rows["G3"]["procedure_key"] == "51.2200/51.2300"
    )
    assert rows["G4"]["procedure_match"] == "prefix" and rows["G4"]["procedure_key"] == "51.2"


def test_bad_directory_lists_every_problem(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            HEADER,
            "G1,a,核心病种,K35.800,47.0100,171.34,1",
            "G1,dup,核心病种,K35.800,47.0100,100,1",
            "G2,no score,核心病种,K35.800,,,1",
            "G3,bad dx,核心病种,K35.7,47.0100,10,1",
            "G4,bad proc,核心病种,K35.800,99.9999,10,1",
            "G5,mixed,核心病种,K35.800,47.0100+51.2200/51.2300,10,1",
            "G6,bad prefix,核心病种,K35.800,19.99*,10,1",
            "G7,bad mean,核心病种,K35.800,,10,abc",
        ],
    )
    with pytest.raises(DirectoryFileError) as exc:
        load_official_directory(path, demo_code_tables())
    text = str(exc.value)
    assert "第 3 行：病种编码 G1 与第 2 行重复" in text
    assert "第 4 行：病种 G2 病种分值缺失或无效" in text
    assert "第 5 行：病种 G3 的诊断编码 K35.7 不在医保版代码表中" in text
    assert "第 6 行：病种 G4 的手术操作编码 99.9999 不在医保版代码表中" in text
    assert "第 7 行：病种 G5 的手术操作编码 '47.0100+51.2200/51.2300' 不能同时使用" in text
    assert "第 8 行：病种 G6 的手术操作编码 19.99 不在医保版代码表中" in text
    assert "第 9 行：病种 G7 次均费用无效（'abc'）" in text
    assert str(path) in text  # the error names the file


def test_missing_columns(tmp_path: Path) -> None:
    with pytest.raises(DirectoryFileError, match="缺少列"):
        load_official_directory(_write(tmp_path, ["病种名称", "x"]), demo_code_tables())


def _dir(rows: list[tuple[str, str]]) -> pa.Table:
    return DIRECTORY.conform(
        pa.Table.from_pylist(
            [
                {"group_code": c, "group_name": c, "group_type": "core", "diagnosis_key": "K35.8", "procedure_key": "",
                 "procedure_match": "none", "score": Decimal(s), "mean_cost_fen": 1}
                for c, s in rows
            ]
        )
    )  # fmt: skip


def test_diff_added_removed_changed_and_case_moves(tmp_path: Path) -> None:
    old = _dir([("A", "100"), ("B", "50"), ("C", "10")])
    new = _dir([("A", "110"), ("B", "50"), ("D", "5"), ("E", "5")])
    ids = ["1", "2", "3", "4", "5", "6"]
    grouped_old = pa.table({"case_id": ids, "group_code": ["C", "C", "A", "B", "A", None]})
    grouped_new = pa.table({"case_id": ids, "group_code": ["D", "E", "A", "B", "B", "B"]})
    result = diff_directories(old, new, grouped_old, grouped_new)
    assert result["added"]["group_code"].to_pylist() == ["D", "E"]
    assert result["removed"]["group_code"].to_pylist() == ["C"]
    assert result["score_changes"].to_pylist() == [
        {
            "group_code": "A",
            "old_score": Decimal("100.0000"),
            "new_score": Decimal("110.0000"),
            "change_pct": 10.0,
            "cases_affected": 1,  # case 3 is in A under the new directory
        }
    ]
    moves = {(r["old_group"], r["new_group"]): r for r in result["case_moves"].to_pylist()}
    # C's cases now fall in D and E: a split. B takes cases from B, A and '' (unmatched):
    # a merge; A → B is both (A's cases now in A and B).
    assert moves[("C", "D")]["kind"] == "拆分" and moves[("C", "E")]["cases"] == 1
    assert moves[("", "B")]["kind"] == "合并"
    assert moves[("A", "B")]["kind"] == "拆分合并"
    assert set(moves) == {("C", "D"), ("C", "E"), ("", "B"), ("A", "B")}
    export_diff_excel(result, tmp_path / "diff.xlsx")
    assert (tmp_path / "diff.xlsx").stat().st_size > 0
    export_excel(new, tmp_path / "d.xlsx")
    assert (tmp_path / "d.xlsx").stat().st_size > 0
