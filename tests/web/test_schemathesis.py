"""schemathesis against the OpenAPI schema: generated requests never get a 500.

Bounded on purpose (a few examples per operation): every operation is exercised as an
agency user and as a hospital user, with a valid CSRF token so requests reach the handlers.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.web.conftest import login

EXAMPLES = 3
SKIP = {"POST /api/auth/logout"}  # would end the session the other operations use


@pytest.mark.parametrize("user", ["agency", "h1"])
def test_no_server_errors(app, user: str) -> None:
    app.state.runs.execute = lambda run_id: (
        None
    )  # runs stay queued: the pipeline is tested elsewhere
    client = login(app, user)
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    headers = {"X-CSRF-Token": client.headers["X-CSRF-Token"], "Cookie": cookie}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 25
    failures: list[str] = []
    for op in operations:
        label = f"{op.method.upper()} {op.path}"
        if label not in SKIP:
            _exercise(op, label, headers, failures)
    assert failures == []


def _exercise(op, label: str, headers: dict[str, str], failures: list[str]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(), _=st.none())
    def check(case, _) -> None:
        response = case.call(headers=headers)
        if response.status_code >= 500:
            failures.append(f"{label} → {response.status_code}: {response.text[:200]}")

    check()
