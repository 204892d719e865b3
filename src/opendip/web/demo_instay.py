"""In-stay cases for the demo region, pushed through the hospital API's own path.

Without them 在院病例 is empty after `make demo`: the demo region holds discharged cases
only. Each demo hospital's HIS gets an API key (listed on the admin's API-key page like any
other) and pushes a few patients currently in hospital, modelled on its latest discharges:
same diagnoses, procedures, department and doctor, admitted a few days ago, with costs so far
in proportion to the stay — two of them far over their group's high-multiple threshold, so
the monitor's flags show.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import func, select

from opendip.store import Store
from opendip.store import repositories as repo
from opendip.store.models import PushedCase

CASES_PER_HOSPITAL = 12
# Of each hospital's in-stay demo cases, this many are pushed with costs far over the
# high-multiple threshold, so that 在院病例 shows its warnings.
OVER_HIGH = 2
_SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何林罗高"


def doctor_name(doctor_id: str) -> str:
    """A stable demo name for a doctor code (the settlement list carries codes only)."""
    return f"{_SURNAMES[sum(map(ord, doctor_id)) % len(_SURNAMES)]}医生"


def instay_demo_cases(
    cases_file: Any, hospital_id: str, today: dt.date, n: int = CASES_PER_HOSPITAL
) -> list[dict[str, Any]]:
    """`n` in-stay API cases for `hospital_id`, modelled on its latest discharges."""
    table = pq.read_table(cases_file)
    table = table.filter(pc.equal(table["hospital_id"], hospital_id))
    table = table.filter(pc.greater(table["los_days"], 2))
    if table.num_rows == 0:
        return []
    order = pc.sort_indices(
        table, sort_keys=[("discharge_date", "descending"), ("case_id", "ascending")]
    )
    rows = table.take(order[:n]).to_pylist()
    out = []
    for i, row in enumerate(rows):
        # most patients are well into their stay (60%-100% of it), with costs so far in
        # proportion
        days_in = max(1, round(row["los_days"] * (0.6 + 0.1 * (i % 5))))
        share = min(days_in / row["los_days"], 1.0)
        cost_fen = int(row["total_cost"] * share)
        if i < OVER_HIGH:
            cost_fen = row["total_cost"] * 6
        out.append(
            {
                "case_id": f"ZY{today:%Y%m%d}{hospital_id}{i + 1:03d}",
                "status": "in_stay",
                "admit_date": (today - dt.timedelta(days=days_in)).isoformat(),
                "insurance_type": row["insurance_type"],
                "sex": row["sex"],
                "age": row["age"],
                "birth_date": row["birth_date"].isoformat() if row["birth_date"] else None,
                "department": row["department"] or "",
                "doctor": doctor_name(row["doctor_id"] or ""),
                "doctor_id": row["doctor_id"],
                "patient_id": row["patient_id"],
                "admission_route": row["admission_route"],
                "main_diagnosis": row["main_diagnosis"],
                "other_diagnoses": list(row["other_diagnoses"] or []),
                "main_procedure": row["main_procedure"],
                "other_procedures": list(row["other_procedures"] or []),
                "total_cost_yuan": f"{cost_fen // 100}.{cost_fen % 100:02d}",
            }
        )
    return out


def ensure_demo_instay(app: Any, hospital_ids: list[str], today: dt.date | None = None) -> int:
    """Push the demo in-stay cases of `hospital_ids` once (nothing if any case was pushed
    before); returns how many were accepted."""
    from opendip.web.hospital_api import issue_key, push_cases

    store: Store = app.state.store
    cases_file = app.state.region.base_case_file()
    if cases_file is None or not cases_file.exists():
        return 0
    with store.session() as s:
        if s.scalar(select(func.count()).select_from(PushedCase)):
            return 0
    today = today or dt.date.today()
    request = SimpleNamespace(app=app)
    accepted = 0
    for hid in hospital_ids:
        cases = instay_demo_cases(cases_file, hid, today)
        if not cases:
            continue
        with store.session() as s:
            key, _secret = issue_key(s, hid, "示范：院内系统在院病例推送", None)
            answers = push_cases(request, s, key, cases)
            accepted += sum(a["accepted"] for a in answers)
            repo.audit(
                s,
                None,
                "demo.instay",
                "api_key",
                key.id,
                {"hospital_id": hid, "cases": len(cases)},
            )
    return accepted
