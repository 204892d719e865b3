"""Store tests run against SQLite and a real PostgreSQL server.

PostgreSQL comes from OPENDIP_TEST_PG_URL, or the `.test-services.env` file written by
scripts/test-services.sh. Without a server the PostgreSQL variants are skipped locally and
FAIL when CI=true (a CI run must never silently lose them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from opendip.store import Base, Store

ROOT = Path(__file__).resolve().parents[2]


def postgres_url() -> str | None:
    url = os.environ.get("OPENDIP_TEST_PG_URL")
    if url:
        return url
    env = ROOT / ".test-services.env"
    if env.exists():
        for line in env.read_text().splitlines():
            if line.startswith("export OPENDIP_TEST_PG_URL="):
                return line.split("=", 1)[1].strip()
    return None


def _reset_postgres(url: str) -> None:
    store = Store(url, run_migrations=False)
    with store.engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    store.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        url = postgres_url()
        if not url:
            if os.environ.get("CI") == "true":
                pytest.fail("CI=true 但没有 PostgreSQL 测试库：先运行 scripts/test-services.sh")
            pytest.skip("没有 PostgreSQL 测试库（OPENDIP_TEST_PG_URL）")
        try:
            _reset_postgres(url)
        except Exception as exc:
            pytest.fail(f"PostgreSQL 测试库不可用 {url}：{exc}")
        s = Store(url)
    yield s
    s.dispose()


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap Argon2 parameters in tests (production keeps the library defaults)."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        "opendip.store.passwords._HASHER",
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
    )
