from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from opendip.codes import demo_code_tables
from opendip.contract import DIRECTORY
from opendip.directory.io import (
    DirectoryFileError,
    diff_directories,
    directory_kinds,
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


def _row(code, gtype, dx, pk, match, score, mean, **extra) -> dict:
    return {
        "group_code": code, "group_name": f"{code} 名称", "group_type": gtype,
        "diagnosis_key": dx, "procedure_key": pk, "procedure_match": match,
        "score": Decimal(score), "mean_cost_fen": mean,
        "origin": None, "added_by": None, "added_on": None, "added_basis": None, **extra,
    }  # fmt: skip


EVERY_TYPE = DIRECTORY.conform(
    pa.Table.from_pylist(
        [
            _row("K35.8:47.0100", "core", "K35.8", "47.0100", "all", "171.3396", 275012,
                 mean_cost_tertiary_fen=300001, mean_cost_secondary_fen=250099, case_count=40,
                 cv=0.1234),
            _row("K35.8:保守", "core", "K35.8", "", "none", "45.17", 72500, case_count=16),
            _row("K80.1:A", "core", "K80.1", "51.2300+88.0100", "all", "320", 3100000),
            _row("K80.1:B", "core", "K80.1", "51.2200/51.2300", "any", "300", 3000000),
            _row("K80.1:C", "core", "K80.1", "51.2300", "any", "299.5", 2990000),
            _row("K80.1:D", "core", "K80.1", "51.2", "prefix", "280", 2800000),
            _row("K80.1:E", "core", "K80.1", "51.22/51.3", "prefix", "281", 2810000),
            _row("K80.1:N", "core", "K80.1", "51.2200+88.0100", "all", "330", 3300000,
                 origin="local", added_by="示范市医疗保障局", added_on=dt.date(2026, 3, 1),
                 added_basis="示医保发〔2026〕12号"),
            _row("K80.1:F", "core", "K80.1", "51.2300+88.0100", "all", "250", 2500000,
                 origin="national"),
            _row("基层:J18.9", "basic", "J18.9", "", "none", "30", 500000,
                 mean_cost_primary_fen=500000),
            _row("综合:K80:相关手术", "comprehensive", "K80", "surgery", "type", "150", 2000000),
            _row("综合:K35-K38:治疗性操作", "comprehensive", "K35-K38", "therapeutic", "type",
                 "80", 800000),
            _row("综合:XI:诊断性操作", "comprehensive", "XI", "diagnostic", "type", "90", 900000),
            _row("综合:XI:保守治疗", "comprehensive", "XI", "conservative", "type", "40", 400000,
                 mean_cost_unrated_fen=390000),
            _row("BD-F20", "special", "F20", "", "prefix", "100", 800000,
                 score_per_day=Decimal("4.5")),
            _row("DS-CATARACT", "special", "H25|H26", "13.41", "prefix", "27", 600000),
        ]
    )
)  # fmt: skip


def test_export_then_load_gives_the_same_directory(tmp_path: Path) -> None:
    book = export_excel(EVERY_TYPE, tmp_path / "目录.xlsx", {"core_threshold": 15})
    loaded = load_official_directory(book, demo_code_tables())
    assert loaded.to_pylist() == EVERY_TYPE.to_pylist()
    new = loaded.filter(pc.equal(loaded["origin"], "local")).to_pylist()
    assert [(r["group_code"], r["added_by"], r["added_on"], r["added_basis"]) for r in new] == [
        ("K80.1:N", "示范市医疗保障局", dt.date(2026, 3, 1), "示医保发〔2026〕12号")
    ]


def test_directory_kinds_count_new_groups_apart(tmp_path: Path) -> None:
    """新增病种 are counted on their own (Lhasa: 1,298 core, 385 comprehensive, 22 basic,
    322 new), here 8 core + 1 new among the 16 groups; the workbook says so too."""
    from openpyxl import load_workbook

    assert directory_kinds(EVERY_TYPE) == {
        "core": 8,
        "comprehensive": 4,
        "basic": 1,
        "special": 2,
        "new": 1,
    }
    book = load_workbook(export_excel(EVERY_TYPE, tmp_path / "目录.xlsx"))
    rows = [tuple(r) for r in book["目录构成"].iter_rows(values_only=True)]
    assert rows == [
        ("病种类别", "病种数"),
        ("核心病种", 8),
        ("综合病种", 4),
        ("基层病种", 1),
        ("特殊病种", 2),
        ("新增病种", 1),
        ("合计", 16),
    ]


def test_new_groups_need_their_provenance(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            "病种编码,病种名称,病种类型,诊断键,手术操作,病种分值,次均费用,新增单位,新增日期,新增依据",
            "N1,新增甲,新增病种,K80.1,51.2200,280,28000,示范市医保局,2026-03-01,示医保发〔2026〕12号",
            "N2,新增乙,新增病种,K80.1,51.2300+88.0100,260,26000,示范市医保局,,",
            "N3,国家乙,核心病种,K80.1,51.2300,260,26000,,2026-13-01,",
        ],
    )
    with pytest.raises(DirectoryFileError) as err:
        load_official_directory(path, demo_code_tables())
    assert err.value.problems == [
        "第 3 行：新增病种 N2 缺少新增日期",
        "第 3 行：新增病种 N2 缺少新增依据（决定文件）",
        "第 4 行：病种 N3 新增日期无效（'2026-13-01'，应为 YYYY-MM-DD）",
        "第 4 行：病种 N3 为国家目录病种，不应填写新增单位、日期或依据",
    ]


def test_export_then_load_a_built_directory(tmp_path: Path) -> None:
    from opendip.directory import build_directory
    from opendip.engine import connect
    from opendip.grouping.inputs import diagnosis_codes, procedure_types
    from opendip.synth.region import generate_region
    from tests.conftest import policy_with

    generate_region(tmp_path, cases_per_year=3000, years=(2024, 2025), seed=5)
    con = connect()
    codes = demo_code_tables()
    built = build_directory(
        con.read_parquet([str(tmp_path / f"cases_{y}.parquet") for y in (2024, 2025)]),
        con.read_parquet(str(tmp_path / "hospitals.parquet")),
        procedure_types(con, codes),
        policy_with({"directory.year_weights": {2024: 1, 2025: 2}}),
        diagnosis_codes=diagnosis_codes(con, codes),
    )
    table = DIRECTORY.conform(built.table.select(DIRECTORY.names))
    assert set(table["group_type"].to_pylist()) >= {"core", "comprehensive", "basic", "special"}
    loaded = load_official_directory(export_excel(table, tmp_path / "d.xlsx"), codes)
    assert loaded.to_pylist() == table.to_pylist()


def test_short_codes_are_prefixes_and_every_type_loads_from_csv(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            "病种编码,病种名称,病种类型,诊断键,手术操作,病种分值,次均费用,床日分值",
            "P1,胆囊手术类,核心病种,K80.1,51.2,280,28000,",
            "P2,短编码任一,核心病种,K80.1,51.22/47.01,260,26000,",
            "P3,保守,核心病种,K80.1,保守治疗,80,8000,",
            "C1,综合,综合病种,K80-K87,相关手术,150,15000,",
            "C2,综合章,综合病种,XI,诊断性操作,90,9000,",
            "S1,精神分裂症床日,特殊病种,F20,,100,8000,4.5",
            "B1,肺炎,基层病种,J18.9,,30,3000,",
        ],
    )
    rows = {
        r["group_code"]: r for r in load_official_directory(path, demo_code_tables()).to_pylist()
    }
    assert (rows["P1"]["procedure_match"], rows["P1"]["procedure_key"]) == ("prefix", "51.2")
    assert (rows["P2"]["procedure_match"], rows["P2"]["procedure_key"]) == ("prefix", "47.01/51.22")
    assert (rows["P3"]["procedure_match"], rows["P3"]["procedure_key"]) == ("none", "")
    assert (rows["C1"]["procedure_match"], rows["C1"]["procedure_key"]) == ("type", "surgery")
    assert rows["C2"]["diagnosis_key"] == "XI" and rows["C2"]["procedure_key"] == "diagnostic"
    assert (
        rows["S1"]["score_per_day"] == Decimal("4.5000") and rows["S1"]["group_type"] == "special"
    )
    assert rows["B1"]["group_type"] == "basic"


def test_every_type_s_bad_keys_are_listed(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            "病种编码,病种名称,病种类型,诊断键,手术操作,病种分值,次均费用",
            "C1,综合,综合病种,K99-K99,相关手术,150,15000",
            "C2,综合,综合病种,K80,手术啦,150,15000",
            "S1,特殊,特殊病种,ZZ9|F20,19.9,100,8000",
            "P1,混用,核心病种,K80.1,51.2/51.2300,100,8000",
        ],
    )
    with pytest.raises(DirectoryFileError) as exc:
        load_official_directory(path, demo_code_tables())
    text = str(exc.value)
    assert "第 2 行：病种 C1 的诊断键 K99-K99 不是代码表中的类目、节或章" in text
    assert (
        "第 3 行：病种 C2 的手术操作 '手术啦' 不是操作类别（保守治疗、诊断性操作、治疗性操作、相关手术）"
        in text
    )
    assert "第 4 行：病种 S1 的诊断编码前缀 ZZ9 在医保版代码表中没有对应编码" in text
    assert "第 4 行：病种 S1 的手术操作编码前缀 19.9 在医保版代码表中没有对应编码" in text
    assert (
        "第 5 行：病种 P1 的手术操作编码 '51.2/51.2300' 前缀条件（短编码或 *）须全部为前缀并以 / 分隔"
        in text
    )
