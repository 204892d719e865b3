"""Demo accounts for each role, created once per region directory."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from pathlib import Path
from typing import Any

from opendip.store import Store
from opendip.store import repositories as repo
from opendip.web.demo_instay import doctor_name


def demo_scopes(region: Any, hospital_id: str) -> dict[str, str | None]:
    """The scopes of the demo's scoped accounts, from the region's data: the first
    hospital's county (县区经办); the department most represented among the discharges the
    demo's in-stay patients are modelled on (`opendip.web.demo_instay`), so that 科主任 has
    in-stay patients as well as settled cases; that department's most represented
    attending doctor (医师)."""
    from collections import Counter

    from opendip.web.demo_instay import instay_demo_cases

    hospital = region.hospital(hospital_id) or {}
    out: dict[str, str | None] = {
        "county": hospital.get("county"),
        "department": None,
        "doctor_id": None,
    }
    cases_file = region.base_case_file()
    if cases_file is None or not cases_file.exists():
        return out
    rows = [
        r
        for r in instay_demo_cases(cases_file, hospital_id, dt.date.today())
        if r["department"] and r["doctor_id"]
    ]
    if rows:
        departments = Counter(r["department"] for r in rows)
        department = min(departments, key=lambda d: (-departments[d], d))
        doctors = Counter(r["doctor_id"] for r in rows if r["department"] == department)
        out["department"] = department
        out["doctor_id"] = min(doctors, key=lambda d: (-doctors[d], d))
    return out


def ensure_demo_accounts(
    store: Store,
    platform_dir: Path,
    hospital_ids: list[str],
    scopes: dict[str, str | None] | None = None,
) -> list[dict[str, str]]:
    """Create demo users for every role and scope if the store has no users yet (admin,
    agency, a county agency user, two hospitals' DIP offices, a department head and a
    doctor of the first, an expert, the read-only 卫健 and 财政 viewers); passwords are
    random, kept in platform/demo-accounts.json (mode 600) and returned. `scopes` (county,
    department, doctor_id: `demo_scopes`) names the scoped accounts' scopes; without it
    they are not created."""
    path = platform_dir / "demo-accounts.json"
    with store.session() as s:
        has_users = bool(repo.list_users(s))
    if has_users:
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        return []
    h1 = hospital_ids[0] if hospital_ids else "H001"
    h2 = hospital_ids[1] if len(hospital_ids) > 1 else "H002"
    scopes = scopes or {}
    county, department = scopes.get("county"), scopes.get("department")
    doctor = scopes.get("doctor_id")
    specs: list[tuple[str, str, str, str | None, dict[str, str | None]]] = [
        ("admin", "admin", "医保局管理员", None, {}),
        ("agency", "agency", "医保局经办", None, {}),
    ]
    if county:
        specs.append(("agency", "county", f"{county}医保分局", None, {"county": county}))
    specs += [
        ("hospital", f"hosp-{h1.lower()}", f"医院医保办 {h1}", h1, {}),
        ("hospital", f"hosp-{h2.lower()}", f"医院医保办 {h2}", h2, {}),
    ]
    if department:
        specs.append(("hospital", "dept-head", f"{department}主任", h1, {"department": department}))
    if doctor:
        specs.append(("hospital", "doctor", doctor_name(doctor), h1, {"doctor_id": doctor}))
    specs += [
        ("expert", "expert", "评审专家", None, {}),
        ("health", "health", "市卫生健康委员会", None, {}),
        ("finance", "finance", "市财政局", None, {}),
    ]
    accounts = []
    with store.session() as s:
        for role, name, label, hid, scope in specs:
            password = secrets.token_urlsafe(9)
            user = repo.create_user(s, name, password, role, label, hid, **scope)
            accounts.append(
                {
                    "username": name,
                    "password": password,
                    "role": role,
                    "hospital_id": hid or "",
                    "scope": user.scope_label,
                }
            )
        repo.audit(
            s, None, "demo.accounts", "user", "", {"users": [a["username"] for a in accounts]}
        )
    path.write_text(json.dumps(accounts, ensure_ascii=False, indent=2), encoding="utf-8")
    os.chmod(path, 0o600)
    return accounts


def is_demo_region(data_dir: Path) -> bool:
    """A region written by `opendip demo` (it leaves demo-summary.json)."""
    return (Path(data_dir) / "demo-summary.json").is_file()
