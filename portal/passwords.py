"""Password hashing with Argon2id (argon2-cffi defaults follow RFC 9106's recommendations)."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """Return an encoded Argon2id hash of ``password``."""
    return _hasher.hash(password)


def check_password(encoded: str, password: str) -> bool:
    """True when ``password`` matches ``encoded``; False for a mismatch or a malformed hash."""
    try:
        return _hasher.verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False
