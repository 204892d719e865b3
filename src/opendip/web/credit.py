"""Credit ratings (信用评价) in the platform.

The demo (and `opendip demo`'s credit stages) writes DATA/credit/<year>/ratings.parquet and
breakdown.parquet; on start the platform stores each year it does not have yet. The agency
re-rates a year from the platform's own data: the year's latest published annual run (its
cases and QC status), the supervision leads in the store (a lead counts in the year its cases
were settled in), the confirmed leads (violations) and, where the policy counts them
(`credit.count_lost_disputes`), the disputes decided against the hospital, the substantiated
complaints it recorded, the upload log (imported uploads' times, and the demo's log when
present) and the 病案首页质控 status of the uploaded front pages.
The engine (`opendip.credit.engine.rate`) makes the same rating the demo does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from opendip.store import Store, SupervisionLead, Upload
from opendip.store import credit as store_credit
from opendip.web.uploads import front_page_statuses


def policy_for(settings: Any, region: Any):  # type: ignore[no-untyped-def]
    from opendip.policy import PolicyFile, demo_policy_path

    path = settings.policy_path or region.policy_path() or demo_policy_path()
    return PolicyFile.read(path)


def load_demo_ratings(store: Store, data_dir: Path) -> int:
    """Store the ratings of DATA/credit/<year>/ for years the store has none of."""
    root = Path(data_dir) / "credit"
    if not root.is_dir():
        return 0
    added = 0
    with store.session() as s:
        known = set(store_credit.periods(s))
        for d in sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit()):
            r, b = d / "ratings.parquet", d / "breakdown.parquet"
            if d.name in known or not r.is_file() or not b.is_file():
                continue
            store_credit.save_ratings(
                s,
                d.name,
                pq.read_table(r).to_pylist(),
                pq.read_table(b).to_pylist(),
                {"origin": "示范区域信用评价（一键示范运行）"},
            )
            added += 1
        s.commit()
    return added


def _lead_rows(leads: list[SupervisionLead]) -> pa.Table:
    return pa.table(
        {
            "hospital_id": pa.array([x.hospital_id for x in leads], pa.string()),
            "case_ids": pa.array([[str(c) for c in (x.case_ids or [])] for x in leads],
                                 pa.list_(pa.string())),
        }
    )  # fmt: skip


def lost_disputes(s) -> pa.Table:  # type: ignore[no-untyped-def]
    """Disputes (争议处理) archived as 不予支持 (decided against the hospital): hospital_id,
    case_ids, one row per dispute (counted like a confirmed lead, in the year of its
    cases)."""
    from opendip.store.models import Application

    stmt = select(Application).where(
        Application.kind == "dispute",
        Application.state == "archived",
        Application.outcome == "rejected",
    )
    rows = list(s.scalars(stmt.order_by(Application.id)))
    return pa.table(
        {
            "hospital_id": pa.array([a.hospital_id for a in rows], pa.string()),
            "case_ids": pa.array(
                [[str(c) for c in (a.case_ids or [])] for a in rows], pa.list_(pa.string())
            ),
        }
    )


def _submissions(s, data_dir: Path) -> pa.Table | None:  # type: ignore[no-untyped-def]
    """The upload log: each accepted upload's time for the months of its cases, and the
    demo's log (DATA/credit/submissions.parquet) when present."""
    parts = []
    demo = Path(data_dir) / "credit" / "submissions.parquet"
    if demo.is_file():
        parts.append(pq.read_table(demo, columns=["hospital_id", "settle_month", "submitted_at"]))
    for u in s.scalars(select(Upload).where(Upload.status == "imported")):
        path = (u.outputs or {}).get("accepted")
        if not path or not Path(path).is_file():
            continue
        t = pq.read_table(path, columns=["hospital_id", "settle_month"])
        t = t.group_by(["hospital_id", "settle_month"]).aggregate([])
        parts.append(
            t.append_column(
                "submitted_at", pa.array([u.created_at] * t.num_rows, pa.timestamp("us"))
            )
        )
    if not parts:
        return None
    return pa.concat_tables([p.cast(parts[0].schema) for p in parts])


def rate_year(app_state: Any, year: int, user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Re-rate `year` from the platform's data (see the module docstring); stores it."""
    from opendip.credit.engine import CreditError, CreditInputs, rate
    from opendip.engine import connect, table_from_arrow
    from opendip.store import repositories as repo

    settings, region, store = app_state.settings, app_state.region, app_state.store
    pf = policy_for(settings, region)
    policy = pf.periods()[-1][2]
    runs = app_state.runs
    with store.session() as s:
        run = next(
            (r for r in repo.published_runs(s) if r.kind == "annual" and r.period == str(year)),
            None,
        )
        if run is None:
            raise CreditError(f"{year} 年没有已公示的年终清算运行，无法进行信用评价")
        outputs = (run.manifest or {}).get("outputs", {})
        runs.settlement_dir(run)  # outputs verified against the run's manifest
        leads = list(s.scalars(select(SupervisionLead)))
        violations = _lead_rows([x for x in leads if x.status == "confirmed"])
        disputes = lost_disputes(s)
        front_pages = front_page_statuses(s)
        complaints = store_credit.substantiated_complaints(s, year)
        submissions = _submissions(s, settings.data_dir)
    con = connect()
    cases = con.read_parquet(outputs["cases"])
    cases = cases.filter(cases.settle_month.startswith(f"{year}-"))
    status_path = Path(outputs.get("qc", "")) / "case_status.parquet"
    if not status_path.is_file():
        raise CreditError(f"第 {run.id} 号运行没有质控结果（case_status），无法计算质控通过率")
    period_cases = cases.select("case_id")
    lead_t = table_from_arrow(con, _lead_rows(leads), "cr_p_leads")
    viol_t = table_from_arrow(con, violations, "cr_p_viol")

    def in_period(t):  # type: ignore[no-untyped-def]
        return _leads_in(t, period_cases)

    inputs = CreditInputs(
        cases=cases.select("case_id", "hospital_id", "doctor_id", "settle_month"),
        case_status=con.read_parquet(str(status_path)).select("case_id", "passed"),
        leads=in_period(lead_t),
        violations=in_period(viol_t),
        complaints=table_from_arrow(
            con,
            pa.table(
                {"hospital_id": pa.array([c["hospital_id"] for c in complaints], pa.string())}
            ),
            "cr_p_complaints",
        ),
        submissions=table_from_arrow(con, submissions, "cr_p_sub") if submissions else None,
        front_page_status=table_from_arrow(con, front_pages, "cr_p_front_pages"),
        lost_disputes=in_period(table_from_arrow(con, disputes, "cr_p_disputes")),
    )
    result = rate(inputs, policy, str(year))
    with store.session() as s:
        n = store_credit.save_ratings(
            s,
            str(year),
            result.ratings.to_pylist(),
            result.breakdown.to_pylist(),
            {"origin": f"平台重新评价（第 {run.id} 号运行）", "policy_version": policy.version},
            s.merge(user) if user is not None else None,
        )
        s.commit()
    return {"period": str(year), "rows": n}


def _leads_in(t, period_cases):  # type: ignore[no-untyped-def]
    """Leads with at least one case settled in the period (a lead counts in the year its
    cases were settled in); one row per lead."""
    import ibis

    t = t.mutate(_lead=ibis.row_number())
    u = t.select("_lead", case_id=t.case_ids.unnest())
    hit = u.join(period_cases, "case_id").select("_lead").distinct()
    return t.semi_join(hit, "_lead").drop("_lead")


def grades_for_supervision(s, policy) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """hospital_id → its latest credit grade in force (repaired when repaired) and that
    grade's supervision effects (`credit.grades[].inspections_per_year`,
    `supervision_priority`): what orders the 监管线索 list. Empty without a credit policy."""
    from opendip.policy.sections.credit import PRIORITY_LABELS

    if policy.credit is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for r in store_credit.ratings(s, None):  # newest period first
        if r.hospital_id in out:
            continue
        g = policy.credit.grade_for(r.grade_in_force)
        out[r.hospital_id] = {
            "grade": r.grade_in_force,
            "period": r.period,
            "inspections": g.inspections_per_year if g is not None else 0,
            "priority": PRIORITY_LABELS[g.supervision_priority] if g is not None else "",
        }
    return out
