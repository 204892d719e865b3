"""The browser tests' shared parts: a platform on a copy of the small test region served on
a free loopback port, Debian's headless chromium, and a logged-in page per user."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import PASSWORD, REGION, USERS

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = (
    Path(
        os.environ.get(
            "OPENDIP_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"
        )
    )
    / "playwright"
)

#: Screenshots of the second journey (kept apart: the first test counts its own).
JOURNEY = ARTIFACTS.parent / "playwright-journey"

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server_settings() -> dict[str, Any]:
    """Settings overrides of the platform under test (a test module may override this
    fixture, e.g. to pin `today`)."""
    return {}


@pytest.fixture
def server(tmp_path: Path, server_settings: dict[str, Any]):
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true 但没有 /usr/bin/chromium：先运行 scripts/test-services.sh")
        pytest.skip("没有 /usr/bin/chromium")
    import uvicorn
    from argon2 import PasswordHasher

    import opendip.store.passwords as pw
    from opendip.store import repositories as repo
    from opendip.web import Settings, create_app

    pw_hasher = pw._HASHER
    pw._HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    data = tmp_path / "region"
    shutil.copytree(REGION, data)
    app = create_app(Settings(data_dir=data, **server_settings))
    with app.state.store.session() as s:
        for name, (role, hid) in USERS.items():
            repo.create_user(s, name, PASSWORD, role, f"{name}", hid)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", tmp_path
    srv.should_exit = True
    thread.join(10)
    pw._HASHER = pw_hasher


def browser_login(p: Any, base: str, width: int = 1400, **context: Any) -> Callable[[str], Any]:
    """Launch Debian's headless chromium on Playwright `p`; the returned function logs a
    demo user in (in a context of its own) and returns the page, on the home page."""
    from playwright.sync_api import expect

    browser = p.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu"],
    )

    def login(name: str) -> Any:
        ctx = browser.new_context(
            locale="zh-CN", viewport={"width": width, "height": 1000}, **context
        )
        page = ctx.new_page()
        page.goto(f"{base}/login")
        page.fill("input[name=username]", name)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("nav.side")).to_be_visible()
        return page

    login.browser = browser  # type: ignore[attr-defined]
    return login
