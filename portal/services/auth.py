"""Who may sign in, and ending a user's sessions everywhere.

Sessions live in signed cookies, which the server cannot delete; instead each session carries
the user's ``session_version`` from the moment of sign-in, and a request whose version no
longer matches is treated as signed out (``portal.auth``'s user loader). Bumping the version
(``invalidate_sessions``) therefore ends every copy of every session of that user at once:
at sign-out, on a password change and on deactivation.
"""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import func, select, update

from portal.extensions import db
from portal.models.people import User
from portal.passwords import check_password, hash_password


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Same algorithm and cost as real hashes, so an unknown email costs the same argon2 run
    # as a wrong password and the answer's timing does not tell which emails exist.
    return hash_password("not a password: timing equaliser for unknown accounts")


def find_user(email: str) -> User | None:
    """The user with this email (case-insensitive), active or not."""
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def authenticate(email: str, password: str) -> User | None:
    """The active user with this email and password, else None.

    Always runs exactly one argon2 verification (against a dummy hash when there is no such
    active user), so known and unknown emails answer in the same time."""
    user = find_user(email)
    stored = user.password_hash if user is not None and user.is_active else None
    # End the read before the deliberately slow hash: on SQLite every transaction holds the
    # write lock (BEGIN IMMEDIATE), and 50 tablets signing in at once queued behind each
    # other's argon2 until "database is locked" (bench/tablets.py). Nothing is pending here.
    db.session.commit()
    if stored is None:
        check_password(_dummy_hash(), password)
        return None
    return user if check_password(stored, password) else None


def invalidate_sessions(user: User | int) -> int:
    """End every session of ``user`` (a ``User`` or its id) on every device; returns the new
    session version. Commits. Call at sign-out, password change and deactivation."""
    user_id = user if isinstance(user, int) else user.id
    db.session.execute(update(User).where(User.id == user_id)
                       .values(session_version=User.session_version + 1))
    db.session.commit()
    return db.session.scalar(select(User.session_version).where(User.id == user_id)) or 0


__all__ = ["authenticate", "find_user", "invalidate_sessions"]
