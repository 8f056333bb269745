"""Passwords: argon2id through argon2-cffi (its defaults follow RFC 9106's recommended second choice:
t=3, m=64 MiB, p=4), and the rules a new password must meet."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MAX_LENGTH = 1024  # hashing is deliberately slow; a megabyte "password" must not cost more


@lru_cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the stored hash. A missing hash still costs one hash, so that an
    account without a password answers as slowly as a wrong password (no timing tells which it is)."""
    if len(password) > MAX_LENGTH:
        return False
    if not stored:
        _hasher().hash(password)
        return False
    try:
        return _hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher().check_needs_rehash(stored)


def password_problems(password: str, *, min_length: int, username: str = "") -> list[str]:
    """What is wrong with a new password, in words (empty when it is acceptable)."""
    problems = []
    if len(password) < min_length:
        problems.append(f"must be at least {min_length} characters long")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters long")
    if username and password.strip().lower() == username.lower():
        problems.append("must not be the username")
    if password and len(set(password)) < 4:
        problems.append("must not repeat one or two characters")
    return problems
