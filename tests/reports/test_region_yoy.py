"""Year on year by group: groups cheaper/dearer per case and basic-group cases by level,
hand-computed on a few cases."""

from __future__ import annotations

from decimal import Decimal

import ibis

from opendip.reports.region.yoy import basic_by_level, group_cost_changes


def _cases(ids: list[str], hospitals: list[str], costs: list[int]) -> ibis.Table:
    return ibis.memtable({"case_id": ids, "hospital_id": hospitals, "total_cost_fen": costs})


def _grouped(ids: list[str], codes: list[str], types: list[str]) -> ibis.Table:
    return ibis.memtable({"case_id": ids, "group_code": codes, "group_type": types})


NOW = _cases(["A1", "A2", "B1", "C1", "U1"], ["H1", "H1", "H2", "H3", "H1"],
             [1000, 3000, 500, 800, 99])  # fmt: skip
NOW_G = _grouped(["A1", "A2", "B1", "C1", "U1"], ["G1", "G1", "G2", "G3", None],
                 ["core", "core", "basic", "basic", "unmatched"])  # fmt: skip
BEFORE = _cases(["P1", "P2", "Q1", "Q2", "R1"], ["H1", "H1", "H2", "H2", "H3"],
                [1500, 1500, 500, 700, 900])  # fmt: skip
BEFORE_G = _grouped(["P1", "P2", "Q1", "Q2", "R1"], ["G1", "G1", "G2", "G2", "G4"],
                    ["core", "core", "basic", "basic", "basic"])  # fmt: skip


def test_group_cost_changes() -> None:
    # G1: 4000/2 = 2000 against 3000/2 = 1500 → dearer, (8000 − 6000) ÷ 6000 = 0.3333
    # G2: 500/1 against 1200/2 = 600 → cheaper, (1000 − 1200) ÷ 1200 = −0.1667
    # G3 (only now), G4 (only last year) and the unmatched case are not compared
    rows = group_cost_changes(NOW, NOW_G, BEFORE, BEFORE_G)
    assert [
        (r["group_code"], r["cases"], r["previous_cases"], r["cost_per_case_fen"],
         r["previous_cost_per_case_fen"], r["cost_change"], r["change"])
        for r in rows
    ] == [
        ("G1", 2, 2, 2000, 1500, Decimal("0.3333"), "dearer"),
        ("G2", 1, 2, 500, 600, Decimal("-0.1667"), "cheaper"),
    ]  # fmt: skip


def test_basic_by_level() -> None:
    hospitals = ibis.memtable(
        {"h_id": ["H1", "H2", "H3"], "level": ["tertiary", "primary", "secondary"]}
    )
    rows = basic_by_level(NOW, NOW_G, BEFORE, BEFORE_G, hospitals)
    # basic now: B1 (H2 一级), C1 (H3 二级); last year Q1, Q2 (H2), R1 (H3)
    assert [(r["level_label"], r["cases"], r["previous_cases"], r["growth"]) for r in rows] == [
        ("二级", 1, 1, Decimal("0.0000")),
        ("一级", 1, 2, Decimal("-0.5000")),
    ]


def test_front_page_pass_rate_in_the_overview(region, tmp_path) -> None:
    """Three of the year's cases with front pages (2 pass) and one page of no case of the
    period: 3 checked, 2 passed, 2 ÷ 3 = 0.6667."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from opendip.reports.region.build import build_report
    from opendip.reports.region.facts import Extras

    ids = pq.read_table(region / "cases_2026.parquet", columns=["case_id"])["case_id"]
    path = tmp_path / "front_page_status.parquet"
    pq.write_table(
        pa.table({"case_id": [*ids.to_pylist()[:3], "不在本期"], "hospital_id": ["H"] * 4,
                  "passed": [True, False, True, True], "error_count": [0, 2, 0, 0]}),
        path,
    )  # fmt: skip
    report = build_report(region / "settlement", Extras(front_page_status=path))
    figures = {f.key: f.value for s in report.sections for f in s.figures}
    assert figures["overview.front_page_checked"] == 3
    assert figures["overview.front_page_passed"] == 2
    assert figures["overview.front_page_pass_rate"] == Decimal("0.6667")
    assert "overview.front_page_checked" not in {
        f.key for s in build_report(region / "settlement").sections for f in s.figures
    }
