"""病案首页 uploads for the demo region, through the platform's own upload path.

Without them 病案首页质控 is invisible after `make demo`: no hospital has uploaded a front
page, so the uploads list has none and the credit rating has no 病案首页质控通过率 line.
At the first start of a demo platform a few demo hospitals upload their front pages the way
a hospital's DIP office does (`receive_upload` + `UploadService`, the code a browser upload
runs): an HQMS export built from their latest discharges of the current year (病案号 = the
settlement-list number, same diagnoses, procedures, dates and costs as the lists), one file
per `qc.front_page_submit_days`-day window, dated at the window's end so the pages are on
time. A few pages per hospital carry the usual coding errors (another main diagnosis, the
main procedure left out, 出院科别 left empty), so the findings and a pass rate below 100 %
show. The current year is then re-rated (信用评价) when its annual run is published, so the
rating shows the 病案首页质控通过率 line. Seeded, and done once per data directory.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select

from opendip.store import Store
from opendip.store import repositories as repo
from opendip.store.models import AuditEntry, Upload, User

#: Front pages per demo hospital (its latest discharges, at most this many).
PAGES_PER_HOSPITAL = 40
#: Upload windows per hospital: the pages of the last WINDOWS × submit-days days.
WINDOWS = 4
#: Of each hospital's pages about this share carries a coding error (at least one page).
ERROR_SHARE = 0.06
AUDIT_ACTION = "demo.front_pages"
COLUMNS = [
    "BAH", "ZYCS", "XB", "CSRQ", "NL", "RYTJ", "RYSJ", "RYSJS", "CYSJ", "CYSJS", "SJZYTS",
    "YLFKFS", "CYKB", "JBDM", "JBDM1", "JBDM2", "JBDM3", "SSJCZBM1", "SSJCZRQ1", "SSJCZBM2",
    "LYFS", "ZFY",
]  # fmt: skip
#: Demo insurance types → 医疗付费方式 (YLFKFS): 1 城镇职工, 2 城镇居民.
PAYMENT = {"employee": "1", "resident": "2"}
#: The coding errors the demo's front pages carry, in turn.
ERRORS = ("main_diagnosis", "main_procedure", "department")


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def demo_front_pages(
    cases_file: Any, hospital_id: str, today: dt.date, submit_days: int, seed: int = 7
) -> list[tuple[dt.date, list[dict[str, Any]], list[str]]]:
    """The demo front pages of `hospital_id`: (upload date, rows, case ids with a coding
    error) per upload window, oldest first; the pages on time (discharged at most
    `submit_days` days before their upload date)."""
    table = pq.read_table(cases_file)
    table = table.filter(pc.equal(table["hospital_id"], hospital_id))
    if table.num_rows == 0:
        return []
    last = pc.max(table["discharge_date"]).as_py()
    before = table.filter(pc.less_equal(table["discharge_date"], today))
    end = min(today, last) if before.num_rows else last
    window = max(submit_days, 1)
    start = end - dt.timedelta(days=WINDOWS * window - 1)
    table = table.filter(
        pc.and_(
            pc.greater_equal(table["discharge_date"], start),
            pc.less_equal(table["discharge_date"], end),
        )
    )
    rows = sorted(table.to_pylist(), key=lambda r: r["case_id"])
    rng = random.Random(f"{seed}-{hospital_id}")
    if len(rows) > PAGES_PER_HOSPITAL:
        rows = sorted(rng.sample(rows, PAGES_PER_HOSPITAL), key=lambda r: r["case_id"])
    n_bad = max(1, round(len(rows) * ERROR_SHARE)) if rows else 0
    bad = dict(zip(sorted(rng.sample(range(len(rows)), n_bad)), ERRORS * n_bad, strict=False))
    batches: dict[int, tuple[list[dict[str, Any]], list[str]]] = {}
    for i, row in enumerate(rows):
        w = (end - row["discharge_date"]).days // window
        page = _page(row)
        kind = bad.get(i)
        if kind == "main_procedure" and not row["main_procedure"]:
            kind = "main_diagnosis"
        if kind == "main_diagnosis":
            others = [d for d in row["other_diagnoses"] if d != row["main_diagnosis"]]
            page["JBDM"] = others[0] if others else "R69.x00"
        elif kind == "main_procedure":
            page["SSJCZBM1"], page["SSJCZRQ1"] = page["SSJCZBM2"], ""
            page["SSJCZBM2"] = ""
        elif kind == "department":
            page["CYKB"] = ""
        pages, errors = batches.setdefault(w, ([], []))
        pages.append(page)
        if kind:
            errors.append(row["case_id"])
    return [
        (end - dt.timedelta(days=w * window), *batches[w]) for w in sorted(batches, reverse=True)
    ]


def _page(row: dict[str, Any]) -> dict[str, Any]:
    other = list(row["other_diagnoses"] or [])[:3]
    procs = list(row["other_procedures"] or [])
    return {
        "BAH": row["case_id"],
        "ZYCS": "1",
        "XB": row["sex"],
        "CSRQ": row["birth_date"].isoformat() if row["birth_date"] else "",
        "NL": str(row["age"]),
        "RYTJ": row["admission_route"] or "",
        "RYSJ": row["admit_date"].isoformat(),
        "RYSJS": "9",
        "CYSJ": row["discharge_date"].isoformat(),
        "CYSJS": "10",
        "SJZYTS": str(row["los_days"] or ""),
        "YLFKFS": PAYMENT.get(row["insurance_type"], "9"),
        "CYKB": row["department"] or "",
        "JBDM": row["main_diagnosis"],
        **{f"JBDM{k + 1}": other[k] if k < len(other) else "" for k in range(3)},
        "SSJCZBM1": row["main_procedure"] or "",
        "SSJCZRQ1": row["main_procedure_date"].isoformat() if row["main_procedure_date"] else "",
        "SSJCZBM2": procs[0] if procs else "",
        "LYFS": row["discharge_method"] or "",
        "ZFY": _yuan(row["total_cost"]),
    }


def export_bytes(rows: list[dict[str, Any]]) -> bytes:
    """An HQMS front-page CSV (GB18030, as hospital systems export it)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("gb18030")


def ensure_demo_front_pages(
    app: Any, hospital_ids: list[str], today: dt.date | None = None
) -> list[dict[str, Any]]:
    """Upload the demo front pages of `hospital_ids` once per data directory (nothing when
    done before); returns one entry per upload (id, hospital, pages, passed)."""
    from opendip.web.credit import policy_for
    from opendip.web.uploads import receive_upload

    store: Store = app.state.store
    settings, region = app.state.settings, app.state.region
    cases_file = region.base_case_file()
    if cases_file is None or not cases_file.exists():
        return []
    with store.session() as s:
        if s.scalar(select(AuditEntry.id).where(AuditEntry.action == AUDIT_ACTION).limit(1)):
            return []
    policy = policy_for(settings, region).periods()[-1][2]
    submit_days = policy.qc.front_page_submit_days
    today = today or dt.date.today()
    done: list[dict[str, Any]] = []
    for hid in hospital_ids:
        with store.session() as s:
            user = s.scalar(
                select(User)
                .where(
                    User.role == "hospital",
                    User.hospital_id == hid,
                    User.department.is_(None),
                    User.doctor_id.is_(None),
                )
                .order_by(User.id)
            )
            user_id = user.id if user is not None else None
        if user_id is None:
            continue
        for day, pages, errors in demo_front_pages(cases_file, hid, today, submit_days):
            with store.session() as s:
                user = s.get(User, user_id)
                name = f"病案首页_{hid}_{day:%Y%m%d}.csv"
                upload, _dup = receive_upload(s, settings, user, name, export_bytes(pages))
                # uploaded at the end of its window's last day (today's: now)
                stamp = dt.datetime.combine(day, dt.time(17, 30))
                if stamp < dt.datetime.now(dt.UTC).replace(tzinfo=None):
                    upload.created_at = stamp
                upload_id = upload.id
            app.state.uploads.start(upload_id, background=False)
            with store.session() as s:
                done_upload = s.get(Upload, upload_id)
                passed = int((done_upload.outputs or {}).get("front_page_passed") or 0)
                status = done_upload.status
            done.append(
                {
                    "id": upload_id,
                    "hospital_id": hid,
                    "status": status,
                    "pages": len(pages),
                    "passed": passed,
                    "errors": errors,
                }
            )
    with store.session() as s:
        repo.audit(
            s,
            None,
            AUDIT_ACTION,
            "upload",
            ",".join(str(d["id"]) for d in done),
            {"hospitals": hospital_ids, "uploads": len(done)},
        )
    if done and _rerate(app, today):
        done[-1]["rerated"] = True
    return done


def _rerate(app: Any, today: dt.date) -> bool:
    """Re-rate the latest year with a published annual run, so its rating counts the
    uploaded front pages (nothing when the credit policy, the run or a rating input is
    missing); true when re-rated."""
    from opendip.credit.engine import CreditError
    from opendip.web.credit import policy_for, rate_year

    settings, region, store = app.state.settings, app.state.region, app.state.store
    if policy_for(settings, region).periods()[-1][2].credit is None:
        return False
    with store.session() as s:
        years = sorted(
            int(r.period)
            for r in repo.published_runs(s)
            if r.kind == "annual" and r.period.isdigit() and int(r.period) <= today.year
        )
    if not years:
        return False
    try:
        rate_year(app.state, years[-1], None)
    except CreditError:
        return False
    return True
