"""Parsed, resolved policies kept in memory for long-running services (the web platform).

Reading a policy file means parsing its YAML and validating every dated version; the
pre-grouping API would otherwise do that on every request (issue 16 §4). A `PolicyCache`
keeps, per file *version* — its path, size, modification time and inode, so an agency
editing or replacing the file is seen on the next call — the parsed file, the policy in
force on each date asked for, and values derived from them. Policies handed out are shared:
callers must treat them as read-only (as every rule step already does).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opendip.policy.load import PolicyFile
from opendip.policy.model import Policy

#: How many dates (and derived values) are kept per file version.
MAX_ENTRIES_PER_FILE = 256

FileIdentity = tuple[str, int, int, int]


def file_identity(path: str | Path) -> FileIdentity:
    """(path, size, mtime in ns, inode): changes whenever the file is edited or replaced."""
    st = os.stat(path)
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass
class _Entry:
    identity: FileIdentity
    file: PolicyFile
    values: dict[Hashable, Any] = field(default_factory=dict)


class PolicyCache:
    """Thread-safe cache of policy files by identity, with per-date resolutions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def _entry(self, path: str | Path, identity: FileIdentity | None = None) -> _Entry:
        identity = identity or file_identity(path)
        entry = self._entries.get(str(path))
        if entry is not None and entry.identity == identity:
            return entry
        with self._lock:
            entry = self._entries.get(str(path))
            if entry is None or entry.identity != identity:
                entry = _Entry(identity, PolicyFile.read(path))
                self._entries[str(path)] = entry
            return entry

    def file(self, path: str | Path, identity: FileIdentity | None = None) -> PolicyFile:
        """The parsed file (re-read when it changed on disk); `identity`: the file's
        `file_identity`, when the caller has just taken it."""
        return self._entry(path, identity).file

    def derived(self, path: str | Path, key: Hashable, compute: Callable[[], Any]) -> Any:
        """A value computed from this file version, computed once per key."""
        entry = self._entry(path)
        try:
            return entry.values[key]
        except KeyError:
            pass
        value = compute()
        with self._lock:
            if len(entry.values) >= MAX_ENTRIES_PER_FILE:
                entry.values.clear()
            entry.values[key] = value
        return value

    def periods(self, path: str | Path) -> list[tuple[dt.date, dt.date, Policy]]:
        """`PolicyFile.periods()` of the current file version (raises PolicyError)."""
        entry = self._entry(path)
        return self.derived(path, ("periods",), entry.file.periods)

    def _in_force(self, path: str | Path, when: dt.date) -> Policy | None:
        for start, end, policy in self.periods(path):
            if start <= when <= end:
                return policy
        return None

    def at(self, path: str | Path, when: dt.date) -> Policy:
        """`PolicyFile.at(when)` of the current file version (raises PolicyError)."""
        found = self._in_force(path, when)
        if found is not None:
            return found
        entry = self._entry(path)
        return self.derived(path, ("at", when), lambda: entry.file.at(when))

    def for_date(self, path: str | Path, when: dt.date) -> Policy:
        """The version in force on `when`, as scoring's `policy_for` picks it (raises its
        InputDataError for a date outside the policy's effective period)."""
        found = self._in_force(path, when)
        if found is not None:
            return found
        from opendip.scoring.single import policy_for

        return policy_for(self._entry(path).file, when)
