"""Demo accounts for each role, created once per region directory."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import ibis

from opendip.store import Store
from opendip.store import repositories as repo


def demo_scopes(region: Any, hospital_id: str) -> dict[str, str | None]:
    """The scopes of the demo's scoped accounts, from the region's data: the first
    hospital's county (县区经办), its busiest discharge department (科主任) and that
    department's busiest attending doctor (医师)."""
    hospital = region.hospital(hospital_id) or {}
    out: dict[str, str | None] = {
        "county": hospital.get("county"),
        "department": None,
        "doctor_id": None,
    }
    with region._lock:
        cases = region.cases_expr()
        if cases is None:
            return out
        t = cases.filter(cases.hospital_id == hospital_id)
        t = t.filter(t.department.notnull() & t.doctor_id.notnull())
        top = (
            t.group_by(["department", "doctor_id"])
            .aggregate(n=t.count())
            .order_by([ibis.desc("n"), "department", "doctor_id"])
            .limit(1)
            .to_pyarrow()
            .to_pylist()
        )
        if top:
            out["department"] = top[0]["department"]
            dept = t.filter(t.department == top[0]["department"])
            busiest = (
                dept.group_by("doctor_id")
                .aggregate(n=dept.count())
                .order_by([ibis.desc("n"), "doctor_id"])
                .limit(1)
                .to_pyarrow()
                .to_pylist()
            )
            out["doctor_id"] = busiest[0]["doctor_id"] if busiest else None
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
        specs.append(("agency", "county", f"县区经办（{county}）", None, {"county": county}))
    specs += [
        ("hospital", f"hosp-{h1.lower()}", f"医院医保办 {h1}", h1, {}),
        ("hospital", f"hosp-{h2.lower()}", f"医院医保办 {h2}", h2, {}),
    ]
    if department:
        specs.append(
            ("hospital", "dept-head", f"科主任 {h1} {department}", h1, {"department": department})
        )
    if doctor:
        specs.append(("hospital", "doctor", f"医师 {doctor}", h1, {"doctor_id": doctor}))
    specs += [
        ("expert", "expert", "评审专家", None, {}),
        ("health", "health", "卫健委（只读）", None, {}),
        ("finance", "finance", "财政局（只读）", None, {}),
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
