"""年终点值预测 on the agency's home page after monthly runs (history years in the region)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opendip.store import repositories as repo


def _last_year(region_dir: Path) -> None:
    t = pq.read_table(region_dir / "cases_2026.parquet")
    last = t.set_column(
        t.schema.get_field_index("settle_month"),
        "settle_month",
        pc.replace_substring(t.column("settle_month"), "2026-", "2025-"),
    )
    last = last.set_column(
        last.schema.get_field_index("case_id"),
        "case_id",
        pc.binary_join_element_wise(pa.scalar("P"), last.column("case_id"), ""),
    )
    pq.write_table(last, region_dir / "cases_2025.parquet")


def test_home_shows_the_forecast(make_app, clients, region_dir: Path) -> None:
    _last_year(region_dir)
    app = make_app()
    agency = clients("agency")
    assert "年终结算点值预测" not in agency.get("/").text  # no monthly run yet
    with app.state.store.session() as s:
        me = next(u for u in repo.list_users(s) if u.username == "agency")
        for month in ("2026-01", "2026-02"):
            app.state.runs.start(s, me, "monthly", month)
    page = agency.get("/").text
    assert "年终结算点值预测（据 1—2 月）" in page
    assert "职工：据 1—2 月预测年终结算点值" in page and "居民：" in page
    assert "年终结算点值预测" not in clients("h1").get("/").text  # agency only
    # The monthly run wrote the forecast beside it; its monthly report carries it.
    from opendip.reports.region import build_report
    from opendip.store import Run

    with app.state.store.session() as s:
        run = s.query(Run).filter(Run.period == "2026-02").one()
        settlement = app.state.runs.settlement_dir(run)
    report = build_report(settlement, search_dirs=(region_dir,))
    section = next(x for x in report.sections if x.key == "forecast")
    assert {f.key for f in section.figures} == {
        "forecast.point_value.employee",
        "forecast.point_value.resident",
    }
    assert "据 1—2 月预测" in " ".join(section.paragraphs)


def test_after_the_clearing_home_shows_the_settled_value_beside_the_forecast(
    make_app, clients, region_dir: Path
) -> None:
    from decimal import Decimal

    from opendip.store import Run

    _last_year(region_dir)
    app = make_app()
    with app.state.store.session() as s:
        me = next(u for u in repo.list_users(s) if u.username == "agency")
        app.state.runs.start(s, me, "monthly", "2026-01")
        app.state.runs.start(s, me, "annual", "2026")
    with app.state.store.session() as s:
        run = s.query(Run).filter(Run.kind == "annual").one()
        recon = pq.read_table(app.state.runs.settlement_dir(run) / "reconciliation.parquet")
    settled = {r["pool"]: Decimal(str(r["point_value"])) for r in recon.to_pylist()}
    page = clients("agency").get("/").text
    assert "年终结算点值：清算结果与预测对比" in page
    assert f"职工：2026 年年终清算已完成，结算点值 {settled['employee']} 元/分" in page
    assert f"居民：2026 年年终清算已完成，结算点值 {settled['resident']} 元/分" in page
    assert "据 1—1 月的预测为" in page and "预警" not in page
