"""Staff accounts: one-time set-password links, password changes, role changes, deactivation.

Passwords follow NIST SP 800-63B (``portal.rules.password_policy``). A set-password link is a
random token shown once to the admin; the database keeps only its SHA-256, so a database
reader cannot sign in with a pending link. Links are valid 24 hours and work once.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select

from portal.clock import now_utc
from portal.extensions import db
from portal.models import SetPasswordLink, User
from portal.models.people import ROLES
from portal.passwords import check_password, hash_password
from portal.rules.npi import npi_problem
from portal.rules.password_policy import password_problems
from portal.services import admin_log
from portal.services.admin_settings import too_long
from portal.services.auth import invalidate_sessions
from portal.services.errors import Conflict, Invalid, NotFound

LINK_VALID = timedelta(hours=24)
# A hash no password can match: accounts created by the clinic file or an invite have no
# password until their owner sets one through a link.
NO_PASSWORD = "!unset"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def end_user_sessions(user: User) -> None:
    """Sign ``user`` out everywhere (password set, changed or reset, role change,
    deactivation): bumps the session version (issue 15), so every copy of every session cookie
    of that user stops working. Call it AFTER the change is committed: it commits on its own."""
    invalidate_sessions(user)


def create_link(user: User, *, purpose: str, by, now: datetime | None = None) -> str:
    """A new one-time link token for ``user`` (``purpose``: invite | reset). Earlier unused
    links of the user stop working: only the newest link is valid. Commits."""
    if not user.is_active_user:
        raise Conflict(f"{user.name} is deactivated; reactivate the account first.")
    now = now or now_utc()
    for old in db.session.scalars(select(SetPasswordLink).where(
            SetPasswordLink.user_id == user.id, SetPasswordLink.used_at.is_(None))):
        old.used_at = now  # superseded
    token = secrets.token_urlsafe(32)
    db.session.add(SetPasswordLink(user_id=user.id, token_sha256=_digest(token), purpose=purpose,
                                   created_at=now, expires_at=now + LINK_VALID,
                                   created_by_id=getattr(by, "id", None)))
    admin_log.record(by, "staff", user.id, user.email, f"{purpose} link",
                     after=f"set-password link valid until {(now + LINK_VALID).isoformat()}")
    db.session.commit()
    return token


def link_for(token: str, *, now: datetime | None = None) -> SetPasswordLink:
    """The pending link for ``token``; ``Conflict`` (410-like) when used, expired or unknown."""
    link = db.session.scalar(select(SetPasswordLink).where(
        SetPasswordLink.token_sha256 == _digest(token or "")))
    now = now or now_utc()
    if link is None:
        raise NotFound("This set-password link is not valid. Ask your administrator for a new one.")
    if link.used_at is not None:
        raise Conflict("This set-password link was already used (or replaced by a newer one). "
                       "Ask your administrator for a new link.")
    if link.expires_at <= now:
        raise Conflict("This set-password link has expired (links are valid 24 hours). Ask your "
                       "administrator for a new link.")
    if not link.user.is_active_user:
        raise Conflict("This account is deactivated.")
    return link


def _check_new_password(user: User, password: str, again: str) -> None:
    if password != again:
        raise Invalid("The two passwords are not the same.", field="password")
    problems = password_problems(password, context=(user.email, user.name))
    if problems:
        raise Invalid(problems[0], field="password", details=problems)


def use_link(token: str, password: str, again: str, *, now: datetime | None = None) -> User:
    """Set the password through a one-time link. Writes nothing on any error. Commits."""
    now = now or now_utc()
    link = link_for(token, now=now)
    user = link.user
    _check_new_password(user, password, again)
    link.used_at = now
    user.password_hash = hash_password(password)
    admin_log.record(user, "staff", user.id, user.email, "password set",
                     after=f"password set through {link.purpose} link")
    db.session.commit()
    end_user_sessions(user)
    return user


def change_own_password(user: User, current: str, password: str, again: str) -> None:
    if not check_password(user.password_hash, current or ""):
        raise Invalid("Your current password is not right.", field="current")
    _check_new_password(user, password, again)
    user.password_hash = hash_password(password)
    admin_log.record(user, "staff", user.id, user.email, "password changed",
                     after="own password changed")
    db.session.commit()
    end_user_sessions(user)


def set_password_directly(user: User, password: str, again: str, *, by) -> None:
    """``setup init``: the first admin types their password (twice) on the terminal."""
    _check_new_password(user, password, again)
    user.password_hash = hash_password(password)


def active_admins(excluding: int | None = None) -> int:
    q = select(func.count()).select_from(User).where(User.role == "admin",
                                                     User.is_active_user.is_(True))
    if excluding is not None:
        q = q.where(User.id != excluding)
    return db.session.scalar(q)


def find_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"There is no staff member {user_id}.")
    return user


def email_taken(email: str, *, excluding: int | None = None) -> User | None:
    q = select(User).where(func.lower(User.email) == email.strip().lower())
    if excluding is not None:
        q = q.where(User.id != excluding)
    return db.session.scalar(q)


def create_staff(*, name: str, email: str, role: str, credential: str | None, npi: str | None,
                 by) -> User:
    """A new staff member without a password (send them an invite link). Commits."""
    name, email = " ".join((name or "").split()), (email or "").strip().lower()
    credential = " ".join((credential or "").split()) or None
    npi = (npi or "").strip() or None
    problems = []
    if not name:
        problems.append("Name: missing (required).")
    if "@" not in email or "." not in email.split("@")[-1] or " " in email:
        problems.append(f'Email: "{email}" is not an email address.')
    elif email_taken(email):
        problems.append(f"Email: {email} already belongs to a staff member (duplicate email).")
    if role not in ROLES:
        problems.append(f'Role: "{role}" is not a role.')
    if npi and (p := npi_problem(npi)):
        problems.append(f"NPI: {p}.")
    problems += too_long(User, {"name": name, "email": email, "credential": credential})
    if problems:
        raise Invalid(problems[0], details=problems)
    user = User(name=name, email=email, role=role, credential=credential, npi=npi,
                password_hash=NO_PASSWORD)
    db.session.add(user)
    db.session.flush()
    admin_log.record(by, "staff", user.id, email, "created",
                     after=f"{name}, {role}" + (f", {credential}" if credential else ""))
    db.session.commit()
    return user


def change_role(user: User, role: str, *, by) -> None:
    if role not in ROLES:
        raise Invalid(f'"{role}" is not a role.')
    if user.role == role:
        return
    if user.role == "admin" and active_admins(excluding=user.id) == 0:
        raise Conflict("This is the only active admin; make someone else admin first.")
    admin_log.record(by, "staff", user.id, user.email, "role changed",
                     before=f"role: {user.role}", after=f"role: {role}")
    user.role = role
    db.session.commit()
    end_user_sessions(user)


def set_active(user: User, active: bool, *, by) -> None:
    if user.is_active_user == active:
        return
    if not active and user.role == "admin" and active_admins(excluding=user.id) == 0:
        raise Conflict("This is the only active admin; the portal would have no one to run it.")
    if not active and getattr(by, "id", None) == user.id:
        raise Conflict("You cannot deactivate your own account.")
    admin_log.record(by, "staff", user.id, user.email, "activated" if active else "deactivated",
                     before=f"active: {user.is_active_user}", after=f"active: {active}")
    user.is_active_user = active
    if not active:
        for link in db.session.scalars(select(SetPasswordLink).where(
                SetPasswordLink.user_id == user.id, SetPasswordLink.used_at.is_(None))):
            link.used_at = now_utc()
    db.session.commit()
    if not active:
        end_user_sessions(user)


def set_supervisor(user: User, supervisor_id: int | None, *, by) -> None:
    """Name who supervises ``user``'s credential (or nobody). Commits."""
    boss = db.session.get(User, supervisor_id) if supervisor_id else None
    if supervisor_id and (boss is None or not boss.is_active_user):
        raise Invalid("Choose an active staff member as supervisor.", field="supervisor")
    if boss is not None and boss.id == user.id:
        raise Invalid(f"{user.name} cannot supervise themselves.", field="supervisor")
    if user.supervisor_id == (boss.id if boss else None):
        return
    old = db.session.get(User, user.supervisor_id) if user.supervisor_id else None
    admin_log.record(by, "staff", user.id, user.email, "supervisor changed",
                     before=f"supervisor: {old.email if old else '(none)'}",
                     after=f"supervisor: {boss.email if boss else '(none)'}")
    user.supervisor_id = boss.id if boss else None
    db.session.commit()
