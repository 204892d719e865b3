"""Every Spark session OpenDIP uses gets its SQL settings, also one it did not start (Spark
Connect, an active session): UTC, no ANSI mode, plan text capped (docs/scale.md)."""

from __future__ import annotations

from typing import Any

from opendip import engine


class _Conf:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


class _Session:
    def __init__(self) -> None:
        self.conf = _Conf()


def test_a_session_not_started_by_opendip_gets_the_sql_settings() -> None:
    session = _Session()
    assert engine._configured(session) is session
    assert session.conf.values == {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.ansi.enabled": "false",
        "spark.sql.maxPlanStringLength": "100000",
    }
