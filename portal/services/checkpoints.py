"""Signed checkpoints of the audit log: on demand, on every export, and at least daily.

A checkpoint (C2SP tlog-checkpoint, Ed25519) lets anyone holding it detect a truncated tail or
a rewritten history later, without trusting the database (docs/audit-format.md).

The signing key is created on first use only, i.e. while nothing has been signed yet. Once a
checkpoint exists (a row in ``audit_checkpoints`` or a file in ``PORTAL_CHECKPOINT_DIR``), a
missing key file is an operational fault: a new key would make every earlier checkpoint look
forged and would hand auditors a key that proves nothing. ``SigningKeyMissing`` says so.
A key file that exists but cannot be used (unreadable, not UTF-8, not a signing key, a key for
another log, a directory) is the same kind of fault, ``SigningKeyDamaged``: it is never
replaced or overwritten, and callers treat it exactly like a missing key.
"""
from __future__ import annotations

import os
from datetime import timedelta, timezone
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select

from audit_archive.checkpoint import CheckpointError, SignedCheckpoint, make_checkpoint
from audit_archive.note import Signer, load_or_create_signer, parse_signer
from audit_archive.schema import audit_checkpoints, audit_entries
from portal.clock import now_utc
from portal.extensions import db

CHECKPOINT_EVERY = timedelta(hours=24)


class SigningKeyMissing(RuntimeError):
    """No usable signing key: the file is missing although signed checkpoints exist (restore
    it), or it is damaged (``SigningKeyDamaged``). Catching this catches both."""


class SigningKeyDamaged(SigningKeyMissing):
    """The signing key file exists but cannot be used; the message names the file and what is
    wrong. The file is left as it is (restore it from backup)."""


def signing_key_path() -> str:
    return current_app.config["PORTAL_SIGNING_KEY"]


def origin() -> str:
    return current_app.config["PORTAL_ARCHIVE_ORIGIN"]


def signed_checkpoint_count() -> int:
    """How many signed checkpoints exist: rows in ``audit_checkpoints`` or files
    ``checkpoint-*.txt`` in ``PORTAL_CHECKPOINT_DIR``, whichever is more (the files survive an
    emptied table)."""
    rows = db.session.scalar(select(func.count()).select_from(audit_checkpoints)) or 0
    folder = Path(current_app.config["PORTAL_CHECKPOINT_DIR"])
    files = sum(1 for _ in folder.glob("checkpoint-*.txt")) if folder.is_dir() else 0
    return max(rows, files)


def require_signing_key() -> None:
    """Raise ``SigningKeyMissing`` when the key file is missing but checkpoints exist.

    A missing key with nothing signed yet is fine: it is created on first use."""
    path = Path(signing_key_path())
    if os.path.lexists(path):  # present, if perhaps unusable: ``read_signer`` says what is wrong
        return
    n = signed_checkpoint_count()
    if n:
        raise SigningKeyMissing(
            f"signing key file {path} is missing but {n} signed checkpoint{'s' if n != 1 else ''} "
            f"exist{'s' if n == 1 else ''}; restore it from backup (a new key would make every "
            f"earlier checkpoint fail to verify)")


def _damaged(path: Path, what: str) -> SigningKeyDamaged:
    return SigningKeyDamaged(
        f"signing key file {path} is unusable: {what}; restore it from backup (it was left as "
        f"it is: a new key would make every earlier checkpoint fail to verify)")


def read_signer(path: Path) -> Signer:
    """The signer in the existing key file ``path``; ``SigningKeyDamaged`` naming the file and
    the problem when it cannot be read or is not a signing key for this log. Never writes."""
    if path.is_dir():
        raise _damaged(path, "it is a directory, not a key file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise _damaged(path, "it is not UTF-8 text") from None
    except OSError as exc:
        raise _damaged(path, f"cannot read it ({exc.strerror or exc})") from None
    try:
        loaded = parse_signer(text)
    except ValueError as exc:  # NoteError, binascii.Error (bad base64), a bad Ed25519 seed
        raise _damaged(path, f"not a checkpoint signing key ({exc})") from None
    if loaded.name != origin():
        raise _damaged(path, f"it is the key of the log {loaded.name!r}, not of this log "
                             f"{origin()!r} (PORTAL_ARCHIVE_ORIGIN)")
    return loaded


def signer() -> Signer:
    """The checkpoint signer: created when the key file is missing and nothing has been signed
    yet; ``SigningKeyMissing`` when it is missing but signed checkpoints exist;
    ``SigningKeyDamaged`` when the file exists but cannot be used (never overwritten)."""
    require_signing_key()
    path = Path(signing_key_path())
    if os.path.lexists(path):
        return read_signer(path)
    try:
        return load_or_create_signer(path, origin())
    except OSError as exc:
        raise _damaged(path, f"cannot create it ({exc.strerror or exc})") from None
    except ValueError as exc:  # created meanwhile by another process, and unusable
        raise _damaged(path, str(exc)) from None


def public_key() -> str:
    """The verifier key text (``name+keyid+base64``) auditors use.

    Creates the key when it is missing and nothing has been signed yet; raises
    ``SigningKeyMissing`` when it is missing but signed checkpoints exist, and
    ``SigningKeyDamaged`` when the file cannot be used."""
    return signer().verifier.text()


def existing_public_key() -> str | None:
    """The verifier key text, never creating a key: None when the key file is missing and
    nothing has been signed yet; ``SigningKeyMissing`` when it is missing but checkpoints exist,
    ``SigningKeyDamaged`` when it cannot be used. For read-only callers (verification), which
    must not create a key as a side effect."""
    require_signing_key()
    path = Path(signing_key_path())
    if not os.path.lexists(path):
        return None
    return read_signer(path).verifier.text()


def checkpoint_now() -> SignedCheckpoint:
    """Sign the current tree head in its own transaction and commit.

    Raises ``audit_archive.checkpoint.CheckpointError`` when the log is not an append-only
    extension of the last signed checkpoint (nothing is signed then), and
    ``SigningKeyMissing`` when the key file is gone but checkpoints exist (no key is created),
    ``SigningKeyDamaged`` when it cannot be used (it is left as it is)."""
    from portal.services import witnesses as wit

    db.session.rollback()  # start clean: the checkpoint must be its own transaction
    try:
        configured, _quorum = wit.configured()
    except wit.WitnessConfigError as exc:
        raise CheckpointError(str(exc)) from None
    outcomes: list = []

    def submit_to_witnesses(note, ck, tree):
        # Before anything is stored: a head a witness refuses is never kept.
        outcomes[:] = wit.submit_all(configured, note, ck, tree, db.session.connection())
        refused = wit.refusal_error(outcomes)
        if refused:
            raise refused

    try:
        signer()  # a missing or damaged key is reported as such, before anything is signed
        signed = make_checkpoint(db.session.connection(), signing_key_path(), origin(),
                                 checkpoint_dir=current_app.config["PORTAL_CHECKPOINT_DIR"],
                                 before_store=submit_to_witnesses if configured else None)
        if signed.created and outcomes:
            from audit_archive.note import open_checkpoint

            wit.store_outcomes(db.session.connection(), signed.id, signed.note,
                               open_checkpoint(signed.note, None), outcomes)
        db.session.commit()
    except wit.WitnessRefused:
        db.session.rollback()
        wit.record_refusals(None, outcomes)
        raise
    except Exception:
        db.session.rollback()
        raise
    if configured and not signed.created:
        # The head did not move: send it again to the witnesses that have not cosigned it yet
        # (one was down), and raise if one now refuses.
        refused = wit.refusal_error(wit.resend_pending(configured))
        if refused:
            raise refused
    return signed


def _resend_to_witnesses() -> None:
    """Cosignatures catch up: the newest checkpoint goes again to witnesses that were down.
    Failures are logged, never raised (the caller's document is already committed)."""
    from portal.services import witnesses as wit

    try:
        configured, _q = wit.configured()
        if configured:
            wit.resend_pending(configured)
    except Exception as exc:  # noqa: BLE001 - never fail the roster close for a witness
        db.session.rollback()
        current_app.logger.error("resending the checkpoint to witnesses failed: %s", exc)


def checkpoint_if_due() -> SignedCheckpoint | None:
    """Checkpoint when the log grew and the last checkpoint is older than 24 h (or none).
    Services call this after committing an archived document.

    A missing or damaged signing key, or a head that cannot be signed (a damaged checkpoints
    table, a ledger behind its last checkpoint), is logged, not raised: the document is already
    committed, and ``flask audit checkpoint`` / ``flask audit verify`` report the fault loudly."""
    _resend_to_witnesses()
    last = db.session.execute(select(audit_checkpoints.c.tree_size, audit_checkpoints.c.created_at)
                              .order_by(audit_checkpoints.c.tree_size.desc()).limit(1)).first()
    size = db.session.scalar(select(func.count()).select_from(audit_entries)) or 0
    db.session.rollback()
    if size == 0:
        return None
    if last is not None and type(last.tree_size) is int:  # a damaged row is left to checkpoint_now
        if last.tree_size >= size:
            return None
        created = last.created_at
        if created.tzinfo is None:  # SQLite hands back naive UTC
            created = created.replace(tzinfo=timezone.utc)
        if now_utc() - created < CHECKPOINT_EVERY:
            return None
    try:
        return checkpoint_now()
    except (SigningKeyMissing, CheckpointError) as exc:
        current_app.logger.error("daily checkpoint not signed: %s", exc)
        return None


def late_archive_limit() -> timedelta:
    """``PORTAL_LATE_ARCHIVE_DAYS`` (default 7) as a timedelta; ValueError naming the setting
    when it is not a positive number."""
    raw = str(current_app.config.get("PORTAL_LATE_ARCHIVE_DAYS", "7")).strip()
    try:
        days = float(raw)
    except ValueError:
        days = -1.0
    if not days > 0 or days != days or days > 36500:
        raise ValueError(f"PORTAL_LATE_ARCHIVE_DAYS must be a positive number of days, got {raw!r}")
    return timedelta(days=days)


def newest_checkpoint_time(conn, size: int | None) -> str | None:
    """When the checkpoint of ``size`` was stored ("2026-12-02 14:05 UTC"), None if no row."""
    if size is None:
        return None
    at = conn.execute(select(func.min(audit_checkpoints.c.created_at))
                      .where(audit_checkpoints.c.tree_size == size)).scalar()
    if at is None:
        return None
    if isinstance(at, str):  # SQLite without type affinity returns text for a server default
        return at[:16] + " UTC"
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
