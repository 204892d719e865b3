"""`opendip directory build|load|export|diff` and `opendip group` end to end on a tiny region."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from opendip.cli.main import app
from opendip.contract import CASES, GROUPED
from tests.conftest import POLICIES
from tests.directory.test_build import case

POLICY = str(POLICIES / "demo-region.yaml")


def _region(tmp_path: Path) -> tuple[Path, Path, Path]:
    history = [case(f"h{i}", "H1", 2025, "K35.800", ["47.0100"], 2000 + i) for i in range(20)]
    history += [case(f"c{i}", "H2", 2025, "J18.900", [], 500 + i) for i in range(20)]
    hist = tmp_path / "cases_2025.parquet"
    pq.write_table(CASES.conform(pa.Table.from_pylist(history)), hist)
    current = [
        case("n1", "H1", 2026, "K35.800", ["47.0100"], 2100),
        case("n2", "H2", 2026, "J18.900", [], 600),
        case("n3", "H2", 2026, "Q99.999x999", [], 600),  # unknown code
    ]
    cur = tmp_path / "cases_2026.parquet"
    pq.write_table(CASES.conform(pa.Table.from_pylist(current)), cur)
    hosp = tmp_path / "hospitals.parquet"
    pq.write_table(pa.table({"hospital_id": ["H1", "H2"], "level": ["tertiary", "primary"]}), hosp)
    return hist, cur, hosp


def test_build_group_explain_and_diff(tmp_path: Path) -> None:
    hist, cur, hosp = _region(tmp_path)
    runner = CliRunner()
    d = tmp_path / "directory.parquet"
    r = runner.invoke(
        app,
        ["directory", "build", "--policy", POLICY, "--history", str(hist),
         "--hospitals", str(hosp), "--out", str(d), "--excel", str(tmp_path / "d.xlsx")],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "核心病种病例占比" in r.output
    metrics = json.loads(d.with_suffix(".metrics.json").read_text(encoding="utf-8"))
    assert metrics["history_cases"] == 40 and (tmp_path / "d.xlsx").exists()

    out = tmp_path / "grouped.parquet"
    r = runner.invoke(
        app,
        ["group", "--policy", POLICY, "--directory", str(d), "--cases", str(cur),
         "--out", str(out), "--explain", "n1"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    grouped = pq.read_table(out)
    assert grouped.schema == GROUPED.schema
    rows = {x["case_id"]: x for x in grouped.to_pylist()}
    assert rows["n1"]["group_code"] == "K35.8:47.0100"
    assert rows["n2"]["group_code"] == "基层:J18.9"
    assert rows["n3"]["match_step"] == "unknown_code"
    summary = json.loads(out.with_suffix(".summary.json").read_text(encoding="utf-8"))
    assert summary["grouping_rate"] == round(2 / 3, 6)
    assert summary["grouping_rate_by_hospital"] == {"H1": 1.0, "H2": 0.5}
    assert "结论：主要诊断与手术操作匹配核心病种（K35.8:47.0100）" in r.output

    r = runner.invoke(app, ["directory", "diff", str(d), str(d), "--out", str(tmp_path / "diff")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "diff" / "目录对比.xlsx").exists()


def test_missing_directory_and_bad_official_file_fail_in_chinese(tmp_path: Path) -> None:
    _, cur, _ = _region(tmp_path)
    runner = CliRunner()
    r = runner.invoke(
        app,
        ["group", "--policy", POLICY, "--directory", str(tmp_path / "nope.parquet"),
         "--cases", str(cur), "--out", str(tmp_path / "g.parquet")],
    )  # fmt: skip
    assert r.exit_code == 1 and "病种目录不存在" in r.output
    bad = tmp_path / "official.csv"
    bad.write_text("病种编码,主要诊断编码,病种分值\nG1,K35.800,\n", encoding="utf-8")
    r = runner.invoke(app, ["directory", "load", str(bad), "--out", str(tmp_path / "o.parquet")])
    assert r.exit_code == 1 and "第 2 行：病种 G1 病种分值缺失或无效" in r.output


def test_group_writes_cases_in_case_id_order_whatever_the_input_order(tmp_path: Path) -> None:
    """The batch plan keeps no row order; the written file is ordered by case id, so a rerun
    (or the same cases in another order) gives the same bytes."""
    hist, cur, hosp = _region(tmp_path)
    runner = CliRunner()
    d = tmp_path / "directory.parquet"
    r = runner.invoke(
        app,
        ["directory", "build", "--policy", POLICY, "--history", str(hist),
         "--hospitals", str(hosp), "--out", str(d)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    reversed_cases = tmp_path / "reversed.parquet"
    t = pq.read_table(cur)
    pq.write_table(t.take(list(range(t.num_rows - 1, -1, -1))), reversed_cases)
    outs = []
    for name, cases in (("a", cur), ("b", reversed_cases)):
        out = tmp_path / f"grouped_{name}.parquet"
        r = runner.invoke(
            app,
            ["group", "--policy", POLICY, "--directory", str(d), "--cases", str(cases),
             "--out", str(out)],
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        outs.append(out)
    assert pq.read_table(outs[1])["case_id"].to_pylist() == ["n1", "n2", "n3"]
    assert outs[0].read_bytes() == outs[1].read_bytes()
