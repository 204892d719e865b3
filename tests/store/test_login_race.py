"""Issue 20 item 4: the login failure counter is atomic (parallel guesses cannot bypass the
lock-out), and unknown users get the same answer with the same work as known ones."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from opendip.store import Store, passwords
from opendip.store import repositories as repo


def _make(store: Store) -> None:
    with store.session() as s:
        repo.create_user(s, "agency", "password-1", "agency", "经办")


def _counting_verify(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the hash of every password check (real or dummy)."""
    calls: list[str] = []
    real = passwords.verify_password

    def counted(stored_hash: str, password: str) -> bool:
        calls.append(stored_hash)
        return real(stored_hash, password)

    monkeypatch.setattr("opendip.store.repositories.verify_password", counted)
    monkeypatch.setattr("opendip.store.passwords.verify_password", counted)
    return calls


def test_parallel_guesses_are_counted_and_lock(store: Store, monkeypatch) -> None:
    _make(store)
    with store.session() as s:
        real_hash = repo.user_by_name(s, "agency").password_hash
    calls = _counting_verify(monkeypatch)
    n, limit = 40, 5
    barrier = threading.Barrier(n)
    outcomes: list[str] = []

    def guess(i: int) -> None:
        barrier.wait()
        try:
            with store.session() as s:
                repo.check_login(s, "agency", f"guess-{i}", limit, dt.timedelta(minutes=15))
            outcomes.append("in")
        except repo.LoginRefused:
            outcomes.append("refused")
        except Exception as exc:  # e.g. SQLite busy: still must not get in
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert "in" not in outcomes and len(outcomes) == n
    # at most `limit` guesses were checked against the real hash, and the account is locked
    assert 1 <= sum(h == real_hash for h in calls) <= limit
    with store.session() as s:
        assert repo.user_by_name(s, "agency").locked_until is not None
    with store.session() as s, pytest.raises(repo.LoginRefused):
        repo.check_login(s, "agency", "password-1", limit, dt.timedelta(minutes=15))


def test_unknown_user_same_answer_same_work(store: Store, monkeypatch) -> None:
    _make(store)
    calls = _counting_verify(monkeypatch)
    answers = []
    for name in ("agency", "nobody"):
        with store.session() as s, pytest.raises(repo.LoginRefused) as exc:
            repo.check_login(s, name, "wrong-password", 5, dt.timedelta(minutes=15))
        answers.append(str(exc.value))
    assert answers[0] == answers[1]
    assert len(calls) == 2  # one password hash check each: same work, same time
    # a locked account answers the same as a wrong password, after one check as well
    with store.session() as s:
        user = repo.user_by_name(s, "agency")
        user.locked_until = repo.utcnow() + dt.timedelta(minutes=5)
        s.commit()
    with store.session() as s, pytest.raises(repo.LoginRefused) as exc:
        repo.check_login(s, "agency", "password-1", 5, dt.timedelta(minutes=15))
    assert str(exc.value) == answers[0] and len(calls) == 3
