"""The national grouping scheme as the starting directory: read, localise with the region's
history (hand-computed), merge thin core groups into comprehensive ones, 入组率, and the CLI."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from opendip.cli.main import app
from opendip.codes import demo_code_tables
from opendip.contract import CASES
from opendip.directory.national import entry_rate, load_national_scheme, localise
from opendip.engine import connect, table_from_arrow
from opendip.grouping.inputs import diagnosis_codes, procedure_types
from tests.directory.test_build import HISTORY, POLICY, case

SCHEME = (
    "病种编码,病种名称,病种类型,主要诊断编码,主要诊断名称,手术操作编码,手术操作名称,手术操作类型,分值\n"
    "K35.8-01,急性阑尾炎保守,核心,K35.8,急性阑尾炎,,,保守治疗,40\n"
    "K35.8-02,急性阑尾炎手术,核心,K35.8,急性阑尾炎,47.0100/47.0900,阑尾切除术,相关手术,120\n"
    "J18.9-01,肺炎保守,核心,J18.9,肺炎,,,保守治疗,50\n"
    "K35-Z1,阑尾炎综合保守,综合,K35,急性阑尾炎,,,保守治疗,30\n"
)


def _scheme(tmp_path: Path) -> Path:
    path = tmp_path / "national.csv"
    path.write_text(SCHEME, encoding="utf-8")
    return path


def test_scheme_reads_as_a_frame(tmp_path: Path) -> None:
    frame = load_national_scheme(_scheme(tmp_path), demo_code_tables())
    rows = {r["group_code"]: r for r in frame.to_pylist()}
    assert rows["K35.8-02"]["procedure_key"] == "47.0100/47.0900"
    assert rows["K35.8-02"]["procedure_match"] == "any"
    assert rows["K35-Z1"]["group_type"] == "comprehensive"
    assert rows["K35-Z1"]["procedure_key"] == "conservative"
    assert rows["J18.9-01"]["score"] == Decimal("50")


def _localise(tmp_path: Path):
    con = connect()
    codes = demo_code_tables()
    history = table_from_arrow(con, CASES.conform(pa.Table.from_pylist(HISTORY)), "history")
    hospitals = table_from_arrow(
        con, pa.table({"hospital_id": ["H1", "H2"], "level": ["tertiary", "secondary"]}), "h"
    )
    pt, dc = procedure_types(con, codes), diagnosis_codes(con, codes)
    frame = load_national_scheme(_scheme(tmp_path), codes)
    return con, pt, dc, localise(frame, history, hospitals, pt, POLICY, dc)


def test_localised_with_hand_computed_figures(tmp_path: Path) -> None:
    _, _, _, result = _localise(tmp_path)
    rows = {r["group_code"]: r for r in result.table.to_pylist()}
    # J18.9-01 has 1 local case (< 2): merged into the comprehensive J18 conservative group,
    # which the frame lacks and is added; K35-Z1 gets no local case and is left out.
    assert set(rows) == {"K35.8-01", "K35.8-02", "综合:J18:保守治疗"}
    assert result.dropped == ["K35-Z1"]
    (merged,) = result.merged.to_pylist()
    assert merged == {
        "group_code": "J18.9-01", "group_name": "肺炎保守", "cases": 1, "threshold": 2,
        "merged_into": "综合:J18:保守治疗",
        "reason": "本地历史病例数 1 低于临界值 2，病例并入综合病种",
    }  # fmt: skip
    # all-case mean (weights 2024:1, 2025:3): 2024 (1000+3000+500)/3 = 1500,
    # 2025 (2000+4000+700+900+600)/5 = 1640 → (1500 + 3×1640)/4 = 1605
    assert result.metrics["all_case_mean_fen"] == 1605
    surgery = rows["K35.8-02"]  # 2024 mean 2000, 2025 mean 3000 → 2750; 2750/1605×100
    assert surgery["mean_cost_fen"] == 2750 and surgery["score"] == Decimal("171.3396")
    assert surgery["group_name"] == "急性阑尾炎手术" and surgery["case_count"] == 4
    conservative = rows["K35.8-01"]  # 2024: 500; 2025: 800 → (500 + 2400)/4 = 725
    assert conservative["mean_cost_fen"] == 725 and conservative["score"] == Decimal("45.1713")
    comprehensive = rows["综合:J18:保守治疗"]  # one case of 600 → 600/1605×100
    assert comprehensive["score"] == Decimal("37.3832")
    assert result.metrics["merged_core_groups"] == 1
    assert result.metrics["added_comprehensive_groups"] == 1


def test_entry_rate_of_the_current_year(tmp_path: Path) -> None:
    con, pt, dc, result = _localise(tmp_path)
    current = [
        case("c1", "H1", 2026, "K35.800", ["47.0100"], 1000),
        case("c2", "H1", 2026, "J18.900", [], 700),
        case("c3", "H1", 2026, "K35.800", [], 700),
        case("c4", "H1", 2026, "Q99.900", [], 700),  # no group for it
    ]
    cases = table_from_arrow(con, CASES.conform(pa.Table.from_pylist(current)), "current")
    assert entry_rate(cases, result.table, pt, POLICY, dc) == (3, 4)


def test_cli_national_format(tmp_path: Path) -> None:
    history = tmp_path / "history.parquet"
    pq.write_table(CASES.conform(pa.Table.from_pylist(HISTORY)), history)
    hospitals = tmp_path / "hospitals.parquet"
    pq.write_table(pa.table({"hospital_id": ["H1", "H2"], "level": ["tertiary", "secondary"]}),
                   hospitals)  # fmt: skip
    policy = tmp_path / "policy.yaml"
    import yaml

    from opendip.policy import demo_policy_path

    data = yaml.safe_load(demo_policy_path().read_text(encoding="utf-8"))
    data["directory"].update(
        {"year_weights": {2024: 1, 2025: 3}, "trim": {"method": "none"},
         "core_threshold": {"method": "fixed", "min_cases": 2}, "basic_groups": [],
         "special_groups": []}
    )  # fmt: skip
    policy.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "out" / "local.parquet"
    run = CliRunner().invoke(
        app,
        ["directory", "load", str(_scheme(tmp_path)), "--format", "national", "--out", str(out),
         "--history", str(history), "--hospitals", str(hospitals), "--policy", str(policy),
         "--cases", str(history)],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    assert "低于临界值并入综合的核心病种" in run.output and "当年入组率" in run.output
    metrics = json.loads(out.with_name("local.metrics.json").read_text(encoding="utf-8"))
    assert metrics["merged_core_groups"] == 1 and metrics["entry_rate"] == 1.0
    assert "J18.9-01" in out.with_name("local.merged.csv").read_text(encoding="utf-8-sig")
    diff = CliRunner().invoke(
        app, ["directory", "diff", str(out.with_name("local.national.parquet")), str(out)]
    )
    assert diff.exit_code == 0, diff.output
    run = CliRunner().invoke(
        app,
        ["directory", "load", str(_scheme(tmp_path)), "--format", "national", "--out", str(out)],
    )
    assert run.exit_code != 0 and "--history" in run.output


def test_the_shipped_demo_scheme_loads() -> None:
    from opendip.directory.national import DEMO_SCHEME

    frame = load_national_scheme(DEMO_SCHEME, demo_code_tables())
    types = frame["group_type"].to_pylist()
    assert frame.num_rows == 3415 and types.count("core") == 2721
    assert types.count("comprehensive") == 694
    names = frame["group_name"].to_pylist()
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in n) for n in names)  # Chinese names


def test_exclusions_are_ignored_when_matching(tmp_path: Path) -> None:
    from opendip.directory.national import load_exclusions

    path = tmp_path / "除外.csv"
    path.write_text("手术操作代码,类型\n47.0100,非必选\n", encoding="utf-8")
    exclusions = load_exclusions(path)
    assert exclusions.to_pylist() == [{"code": "47.0100", "kind": "optional"}]
    con = connect()
    codes = demo_code_tables()
    history = table_from_arrow(con, CASES.conform(pa.Table.from_pylist(HISTORY)), "history")
    hospitals = table_from_arrow(
        con, pa.table({"hospital_id": ["H1", "H2"], "level": ["tertiary", "secondary"]}), "h"
    )
    pt, dc = procedure_types(con, codes), diagnosis_codes(con, codes)
    frame = load_national_scheme(_scheme(tmp_path), codes)
    result = localise(frame, history, hospitals, pt, POLICY, dc, exclusions)
    rows = {r["group_code"]: r for r in result.table.to_pylist()}
    # 47.0100 ignored: the four surgical cases are conservative now. K35.8 conservative:
    # 2024 (1000+3000+500)/3 = 1500, 2025 (2000+4000+700+900)/4 = 1900 → (1500+3×1900)/4 = 1800
    assert rows["K35.8-01"]["mean_cost_fen"] == 1800 and rows["K35.8-01"]["case_count"] == 7
    assert rows["K35.8-01"]["score"] == Decimal("112.1495")  # 1800 / 1605 × 100
    merged = {r["group_code"]: r["reason"] for r in result.merged.to_pylist()}
    assert merged["K35.8-02"] == "本地历史病例数 0 低于临界值 2，本地无病例"
    assert result.metrics["excluded_procedures"] == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("手术操作代码,类型\n47.0100,也许\n", encoding="utf-8")
    from opendip.directory.io import DirectoryFileError

    with pytest.raises(DirectoryFileError, match="类型 '也许' 无效"):
        load_exclusions(bad)
