"""The web platform's policy cache: parsed once per file version, re-read when changed."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from opendip.policy import PolicyError, PolicyFile, demo_policy_path
from opendip.policy.cache import PolicyCache, file_identity


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    target = tmp_path / "policy.yaml"
    shutil.copy(demo_policy_path(), target)
    return target


def test_same_version_is_parsed_once(policy_path: Path, monkeypatch) -> None:
    reads = []
    real = PolicyFile.read.__func__

    def counting(cls, path):
        reads.append(path)
        return real(cls, path)

    monkeypatch.setattr(PolicyFile, "read", classmethod(counting))
    cache = PolicyCache()
    day = dt.date(2026, 6, 1)
    first = cache.at(policy_path, day)
    assert cache.at(policy_path, day) is first
    assert cache.for_date(policy_path, day) is first
    assert len(reads) == 1
    # the cached answer is the file's own answer
    assert first == PolicyFile.read(policy_path).at(day)


def test_an_edited_file_is_read_again(policy_path: Path) -> None:
    cache = PolicyCache()
    day = dt.date(2026, 6, 1)
    before = cache.at(policy_path, day)
    text = policy_path.read_text(encoding="utf-8")
    assert "  name: 示范市\n" in text
    edited = text.replace("  name: 示范市\n", "  name: 改名区\n", 1)
    policy_path.write_text(edited, encoding="utf-8")
    st = policy_path.stat()
    os.utime(policy_path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    after = cache.at(policy_path, day)
    assert after is not before
    assert (before.region.name, after.region.name) == ("示范市", "改名区")


def test_a_broken_file_raises_every_time(policy_path: Path) -> None:
    cache = PolicyCache()
    policy_path.write_text("scoring: [unclosed", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(PolicyError):
            cache.at(policy_path, dt.date(2026, 6, 1))


def test_identity_changes_with_content(policy_path: Path) -> None:
    before = file_identity(policy_path)
    policy_path.write_text(policy_path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert file_identity(policy_path) != before
