"""A platform on a copy of the small test region, with one user per role."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from opendip.store import repositories as repo
from opendip.web import Settings, create_app

REGION = Path(__file__).resolve().parent / "region"
PASSWORD = "password-123"
USERS = {
    "admin": ("admin", None),
    "agency": ("agency", None),
    "h1": ("hospital", "H001"),
    "h2": ("hospital", "H002"),
    "expert": ("expert", None),
    "expert2": ("expert", None),
}


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        "opendip.store.passwords._HASHER",
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
    )


@pytest.fixture
def region_dir(tmp_path: Path) -> Path:
    target = tmp_path / "region"
    shutil.copytree(REGION, target)
    return target


@pytest.fixture
def make_app(region_dir: Path, _fast_argon2: None):
    def _make(**overrides):
        settings = Settings(data_dir=region_dir, **{"background_runs": False, **overrides})
        app = create_app(settings)
        with app.state.store.session() as s:
            if not repo.list_users(s):
                for name, (role, hid) in USERS.items():
                    repo.create_user(s, name, PASSWORD, role, name, hid)
        return app

    return _make


@pytest.fixture
def app(make_app):
    return make_app()


#: `@pytest.fixture(params=BOTH_STORES)` + `app_on_both_stores`: a module's app on SQLite and
#: on PostgreSQL (OPENDIP_TEST_PG_URL; required when CI=true).
BOTH_STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def app_on_both_stores(request: pytest.FixtureRequest, make_app) -> Iterator[object]:
    import os

    from tests.store.conftest import _reset_postgres, postgres_url

    if request.param == "sqlite":
        yield make_app()
        return
    url = postgres_url()
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true 但没有 PostgreSQL 测试库：先运行 scripts/test-services.sh")
        pytest.skip("没有 PostgreSQL 测试库（OPENDIP_TEST_PG_URL）")
    _reset_postgres(url)
    application = make_app(db_url=url)
    yield application
    application.state.store.dispose()


def login(app, username: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    r = client.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


@pytest.fixture
def clients(app) -> Callable[[str], TestClient]:
    cache: dict[str, TestClient] = {}

    def get(name: str) -> TestClient:
        if name not in cache:
            cache[name] = login(app, name)
        return cache[name]

    return get


@pytest.fixture
def case_ids() -> dict[str, list[str]]:
    import pyarrow.parquet as pq

    t = pq.read_table(REGION / "cases_2026.parquet", columns=["case_id", "hospital_id"])
    out: dict[str, list[str]] = {}
    for r in t.to_pylist():
        out.setdefault(r["hospital_id"], []).append(r["case_id"])
    return out


@pytest.fixture
def no_raise(app) -> Iterator[None]:
    yield


def settlement_csv(tmp_path: Path, hospital_rows: dict[str, int], prefix: str = "U") -> bytes:
    """A GBK settlement-list CSV (Chinese headers, yuan) with new case ids: n rows per hospital."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from opendip.ingest.export import write_settlement_csv

    cases = pq.read_table(REGION / "cases_2026.parquet")
    parts = []
    for hid, n in hospital_rows.items():
        parts.append(cases.filter(pc.equal(cases["hospital_id"], hid)).slice(0, n))
    t = pa.concat_tables(parts)
    ids = pa.array([f"{prefix}{i:05d}" for i in range(t.num_rows)])
    t = t.set_column(t.schema.get_field_index("case_id"), "case_id", ids)
    path = write_settlement_csv(t, tmp_path / f"{prefix}.csv")
    return path.read_bytes()
