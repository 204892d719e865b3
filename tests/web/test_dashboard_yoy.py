"""首页 year on year (issue 22 item 7): per-group cost per case against last year and
basic-group cases by hospital level, hand-computed on five cases a year; shown only when last
year's lists and grouping are in the region directory."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from opendip.store.access import CaseScope
from opendip.web.region import RegionData
from tests.web.conftest import login


def _write(region: Path, year: int, rows: list[tuple[str, str, int, str, str]]) -> None:
    """Five settlement lists (taken from the test region, ids/hospital/cost replaced) and
    their grouping: (case_id, hospital_id, total_cost fen, group_code, group_type)."""
    base = pq.read_table(region / "cases_2026.parquet").slice(0, len(rows))
    cases = base.set_column(
        base.schema.get_field_index("case_id"), "case_id", pa.array([r[0] for r in rows])
    )
    cases = cases.set_column(
        cases.schema.get_field_index("hospital_id"), "hospital_id", pa.array([r[1] for r in rows])
    )
    i = cases.schema.get_field_index("total_cost")
    cases = cases.set_column(i, "total_cost", pa.array([r[2] for r in rows], cases.schema[i].type))
    months = pa.array([f"{year}-03"] * len(rows))
    cases = cases.set_column(cases.schema.get_field_index("settle_month"), "settle_month", months)
    g = pq.read_table(region / "grouped.parquet").slice(0, len(rows))
    for name, k in (("case_id", 0), ("group_code", 3), ("group_type", 4)):
        g = g.set_column(g.schema.get_field_index(name), name, pa.array([r[k] for r in rows]))
    pq.write_table(cases, region / f"cases_{year}.parquet")
    suffix = "" if year == 2026 else f"_{year}"
    pq.write_table(g, region / f"grouped{suffix}.parquet")


NOW = [
    ("A1", "H001", 100_000, "G1", "core"),  # G1: (100 000 + 300 000) ÷ 2 = 200 000
    ("A2", "H001", 300_000, "G1", "core"),
    ("B1", "H021", 50_000, "G2", "basic"),  # G2: 50 000 ÷ 1
    ("C1", "H007", 80_000, "G3", "basic"),  # G3: only this year
    ("C2", "H021", 90_000, "G2", "basic"),  # G2: (50 000 + 90 000) ÷ 2 = 70 000
]
BEFORE = [
    ("P1", "H001", 150_000, "G1", "core"),  # G1 last year: 150 000 ÷ 1
    ("Q1", "H021", 60_000, "G2", "basic"),  # G2 last year: (60 000 + 80 000) ÷ 2 = 70 000
    ("Q2", "H022", 80_000, "G2", "basic"),
    ("R1", "H007", 70_000, "G4", "basic"),  # G4: only last year
    ("R2", "H007", 10_000, "G4", "basic"),
]


def _region(region_dir: Path) -> RegionData:
    _write(region_dir, 2026, NOW)
    _write(region_dir, 2025, BEFORE)
    return RegionData(region_dir)


def test_year_on_year_whole_region(region_dir: Path) -> None:
    y = _region(region_dir).year_on_year(CaseScope())
    assert y is not None
    # G1 200 000 vs 150 000 → dearer (+0.3333); G2 70 000 vs 70 000 → same; G3/G4 one year only
    assert (y["groups_compared"], y["cheaper"], y["dearer"], y["same"]) == (2, 0, 1, 1)
    assert [
        (g["group_code"], g["cost_per_case_fen"], g["previous_cost_per_case_fen"],
         g["cost_change"], g["change_label"])
        for g in y["top_groups"]
    ] == [
        ("G1", 200_000, 150_000, Decimal("0.3333"), "上升"),
        ("G2", 70_000, 70_000, Decimal("0.0000"), "持平"),
    ]  # fmt: skip
    # basic: 二级 H007 C1 (1) vs R1, R2 (2); 一级 H021 B1, C2 (2) vs H021 Q1 + H022 Q2 (2)
    assert [(b["level_label"], b["cases"], b["previous_cases"], b["growth"])
            for b in y["basic_by_level"]] == [
        ("二级", 1, 2, Decimal("-0.5000")),
        ("一级", 2, 2, Decimal("0.0000")),
    ]  # fmt: skip
    assert (y["basic_cases"], y["basic_previous_cases"]) == (3, 4)


def test_year_on_year_of_one_hospital(region_dir: Path) -> None:
    """H021 alone: G2 50 000 + 90 000 → 70 000 vs its own Q1 60 000 → dearer."""
    y = _region(region_dir).year_on_year(CaseScope(hospital_id="H021"))
    assert y is not None
    assert [(g["group_code"], g["cost_per_case_fen"], g["previous_cost_per_case_fen"])
            for g in y["top_groups"]] == [("G2", 70_000, 60_000)]  # fmt: skip
    assert (y["cheaper"], y["dearer"], y["same"]) == (0, 1, 0)
    assert [(b["level_label"], b["cases"], b["previous_cases"]) for b in y["basic_by_level"]] == [
        ("一级", 2, 1)
    ]


def test_no_year_on_year_without_last_years_grouping(region_dir: Path) -> None:
    region = _region(region_dir)
    (region_dir / "grouped_2025.parquet").unlink()
    assert region.year_on_year(CaseScope()) is None


def test_home_page_shows_year_on_year(region_dir: Path, make_app) -> None:
    _region(region_dir)
    app = make_app()
    html = login(app, "agency").get("/").text
    assert "病种费用与基层病种同比（2026 年与 2025 年）" in html
    assert "次均费用上升的病种数</span><b>1</b>" in html
    assert "次均费用持平的病种数</span><b>1</b>" in html
    assert '<td>二级</td><td class="num">1</td><td class="num">2</td>' in html
    # H001's own: G1 only, dearer; no basic-group cases either year → no level table
    own = login(app, "h1").get("/").text
    assert "次均费用上升的病种数</span><b>1</b>" in own
    assert "基层病种病例数按医院等级" not in own
