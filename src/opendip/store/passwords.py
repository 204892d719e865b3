"""Argon2 password hashes."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()

#: Minimum password length for new passwords.
MIN_PASSWORD_LENGTH = 8


class WeakPasswordError(ValueError):
    """A new password does not meet the minimum rules."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(f"密码至少 {MIN_PASSWORD_LENGTH} 个字符")
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_DUMMY: dict[int, str] = {}


def dummy_verify(password: str) -> None:
    """Check `password` against a hash of a random password made with the current hasher:
    the same work as a real check, for logins that are refused anyway (unknown user,
    locked account), so that the answer time does not tell them apart."""
    key = id(_HASHER)
    if key not in _DUMMY:
        _DUMMY[key] = _HASHER.hash(secrets.token_urlsafe(24))
    verify_password(_DUMMY[key], password)


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)
