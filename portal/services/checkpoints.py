"""Signed checkpoints of the audit log: on demand, on every export, and at least daily.

A checkpoint (C2SP tlog-checkpoint, Ed25519) lets anyone holding it detect a truncated tail or
a rewritten history later, without trusting the database (docs/audit-format.md).
"""
from __future__ import annotations

from datetime import timedelta, timezone

from flask import current_app
from sqlalchemy import func, select

from audit_archive.checkpoint import SignedCheckpoint, make_checkpoint, public_key_text
from audit_archive.schema import audit_checkpoints, audit_entries
from portal.clock import now_utc
from portal.extensions import db

CHECKPOINT_EVERY = timedelta(hours=24)


def signing_key_path() -> str:
    return current_app.config["PORTAL_SIGNING_KEY"]


def origin() -> str:
    return current_app.config["PORTAL_ARCHIVE_ORIGIN"]


def public_key() -> str:
    """The verifier key text (``name+keyid+base64``) auditors use; creates the key if missing."""
    return public_key_text(signing_key_path(), origin())


def checkpoint_now() -> SignedCheckpoint:
    """Sign the current tree head in its own transaction and commit.

    Raises ``audit_archive.checkpoint.CheckpointError`` when the log is not an append-only
    extension of the last signed checkpoint (nothing is signed then)."""
    db.session.rollback()  # start clean: the checkpoint must be its own transaction
    try:
        signed = make_checkpoint(db.session.connection(), signing_key_path(), origin(),
                                 checkpoint_dir=current_app.config["PORTAL_CHECKPOINT_DIR"])
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return signed


def checkpoint_if_due() -> SignedCheckpoint | None:
    """Checkpoint when the log grew and the last checkpoint is older than 24 h (or none).
    Services call this after committing an archived document."""
    last = db.session.execute(select(audit_checkpoints.c.tree_size, audit_checkpoints.c.created_at)
                              .order_by(audit_checkpoints.c.tree_size.desc()).limit(1)).first()
    size = db.session.scalar(select(func.count()).select_from(audit_entries)) or 0
    db.session.rollback()
    if size == 0 or (last and last.tree_size >= size):
        return None
    if last is not None:
        created = last.created_at
        if created.tzinfo is None:  # SQLite hands back naive UTC
            created = created.replace(tzinfo=timezone.utc)
        if now_utc() - created < CHECKPOINT_EVERY:
            return None
    return checkpoint_now()
