"""The demo's in-stay cases: pushed through the hospital API path once, so 在院病例 is not
empty after `make demo`, with over-threshold warnings; each hospital sees only its own."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from opendip.store.models import ApiKey, PushedCase
from opendip.web.demo_instay import CASES_PER_HOSPITAL, OVER_HIGH, ensure_demo_instay

TODAY = dt.date(2026, 12, 6)


def test_demo_instay_cases_are_pushed_once_and_flagged(app, clients) -> None:
    assert ensure_demo_instay(app, ["H001", "H002"], TODAY) == 2 * CASES_PER_HOSPITAL
    # a second start of the platform pushes nothing more
    assert ensure_demo_instay(app, ["H001", "H002"], TODAY) == 0
    with app.state.store.session() as s:
        assert s.scalar(select(func.count()).select_from(PushedCase)) == 2 * CASES_PER_HOSPITAL
        keys = s.scalars(select(ApiKey)).all()
        assert sorted(k.hospital_id for k in keys) == ["H001", "H002"]
        rows = s.scalars(select(PushedCase).where(PushedCase.hospital_id == "H001")).all()
        assert all(r.status == "in_stay" for r in rows)
        over = [r.case_id for r in rows if "over_high" in r.result["flags"]]
        assert len(over) >= OVER_HIGH
        assert {"ZY20261206H001001", "ZY20261206H001002"} <= set(over)
    page = clients("h1").get("/instay").text
    assert "ZY20261206H001001" in page and "ZY20261206H002001" not in page
    assert "医生" in page
