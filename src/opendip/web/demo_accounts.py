"""Demo accounts for each role, created once per region directory."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from opendip.store import Store
from opendip.store import repositories as repo


def ensure_demo_accounts(
    store: Store, platform_dir: Path, hospital_ids: list[str]
) -> list[dict[str, str]]:
    """Create admin/agency/hospital/expert demo users if the store has no users yet;
    passwords are random, kept in platform/demo-accounts.json (mode 600) and returned."""
    path = platform_dir / "demo-accounts.json"
    with store.session() as s:
        has_users = bool(repo.list_users(s))
    if has_users:
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        return []
    h1 = hospital_ids[0] if hospital_ids else "H001"
    h2 = hospital_ids[1] if len(hospital_ids) > 1 else "H002"
    specs = [
        ("admin", "admin", "医保局管理员", None),
        ("agency", "agency", "医保局经办", None),
        ("hospital", f"hosp-{h1.lower()}", f"医院用户 {h1}", h1),
        ("hospital", f"hosp-{h2.lower()}", f"医院用户 {h2}", h2),
        ("expert", "expert", "评审专家", None),
    ]
    accounts = []
    with store.session() as s:
        for role, name, label, hid in specs:
            password = secrets.token_urlsafe(9)
            repo.create_user(s, name, password, role, label, hid)
            accounts.append(
                {"username": name, "password": password, "role": role, "hospital_id": hid or ""}
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
