from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def con():
    from opendip.engine import connect

    return connect()
