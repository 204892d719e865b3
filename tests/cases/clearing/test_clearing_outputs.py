"""The ratio used and the band applied reach every output a hospital reads: the per-hospital
clearing table (hospitals.parquet, Excel), the publication (结算公示表), the annual report's
clearing section; the basis is the policy's; the reconciliation states the reserve."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from opendip.settlement.run import InputFiles, run_year
from tests.cases.clearing.test_clearing_examples import HERE, load, tables


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Decimal, lambda d, v: d.represent_scalar("tag:yaml.org,2002:float", str(v)))


def _write_run(tmp: Path, example: str) -> Path:
    doc = load(HERE / example)
    files = {}
    for name, table in tables(doc).items():
        if table is not None and name != "assessment":
            files[name] = tmp / f"{name}.parquet"
            pq.write_table(table, files[name])
    policy = tmp / "policy.yaml"
    policy.write_text(yaml.dump(doc["pf"].tree, Dumper=_Dumper, allow_unicode=True), "utf-8")
    out = tmp / "settlement"
    run_year(
        InputFiles(
            policy=policy,
            cases=files["cases"],
            grouped=files["grouped"],
            directory=files["directory"],
            hospitals=files["hospitals"],
            reviews=files.get("reviews"),
        ),
        2026,
        out,
        case_excel=False,
    )
    return out


@pytest.fixture(scope="module")
def total_run(tmp_path_factory) -> Path:
    return _write_run(tmp_path_factory.mktemp("total"), "11-比较基数-DIP总额对医疗总费用.yaml")


@pytest.fixture(scope="module")
def fund_run(tmp_path_factory) -> Path:
    return _write_run(tmp_path_factory.mktemp("fund"), "10-结余留用比例与封顶.yaml")


def _by_hospital(rows):
    return {r["hospital_id"]: r for r in rows if r.get("hospital_id")}


def test_publication_carries_ratio_band_and_basis(total_run: Path) -> None:
    from opendip.reports.region import build_publication

    pub = build_publication(total_run)
    table = pub.sections[0].tables[0]
    labels = [c.label for c in table.columns]
    # on the total basis the publication compares with total cost by item
    assert "按项目医疗总费用" in labels and "按项目统筹支付" not in labels
    assert {"DIP/按项目比值", "适用分段"} <= set(labels)
    rows = _by_hospital(table.rows)
    assert rows["H11"]["dip_ffs_ratio"] == Decimal("1.3636")
    assert rows["H11"]["dip_minus_ffs_fen"] == 800_000
    assert rows["H14"]["ffs_band_label"] == "按DIP支付（比值≥0.82且<1.00）"
    assert "DIP 总金额 ÷ 按项目医疗总费用" in pub.sections[0].paragraphs[0]


def test_annual_report_clearing_lists_each_hospitals_band(total_run: Path) -> None:
    from opendip.reports.region import build_report

    report = build_report(total_run)
    clearing = next(s for s in report.sections if s.key == "clearing")
    lines = _by_hospital(next(t for t in clearing.tables if t.key == "clearing.hospitals").rows)
    assert lines["H11"]["ffs_band_label"] == "结余留用（比值≥1.00；留用50%，封顶按项目10%）"
    assert (lines["H11"]["compare_dip_fen"], lines["H11"]["compare_ffs_fen"]) == (
        3_000_000,
        2_200_000,
    )
    assert lines["H11"]["adjustment_fen"] == -580_000
    assert report.figure("clearing.reserve_closing_fen").value == 1_000_000
    # the fund section compares on the same basis: H14 25,000 vs 30,000
    fund = next(s for s in report.sections if s.key == "fund")
    by_h = _by_hospital(next(t for t in fund.tables if t.key == "fund.by_hospital").rows)
    assert by_h["H14"]["dip_minus_ffs_fen"] == -500_000
    assert by_h["H14"]["dip_ffs_ratio"] == Decimal("0.8333")


def test_reconciliation_states_the_reserve(fund_run: Path) -> None:
    text = (fund_run / "reconciliation.md").read_text("utf-8")
    assert (
        "区域调剂金：期初 10,000.00 元 − 使用（超支分担）3,000.00 元 + 收回 6,500.00 元 = 期末 13,500.00 元"
        in text
    )
    hospitals = _by_hospital(pq.read_table(fund_run / "hospitals.parquet").to_pylist())
    assert hospitals["H12"]["dip_ffs_ratio"] == Decimal("1.0556")
    assert hospitals["H12"]["ffs_band_label"].startswith("结余留用")
