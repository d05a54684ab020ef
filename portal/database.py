"""Engine settings that must hold on every connection.

SQLite: WAL (readers never block the writer), a busy timeout (wait, don't fail, when another
process holds the write lock) and ``BEGIN IMMEDIATE`` so a transaction takes the write lock at its
start; otherwise a transaction that read first and writes later can fail with "database is locked"
when another writer committed in between, and the archive's appends could not be serialized.
The archive library owns that recipe (``audit_archive.ledger.sqlite_begin_immediate``); the
portal adds foreign-key enforcement, which SQLite leaves off by default.
"""
from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine

from audit_archive.ledger import sqlite_begin_immediate

SQLITE_BUSY_TIMEOUT_MS = 30_000


def configure_engine(engine: Engine) -> None:
    """Install the per-connection settings above on ``engine`` (no-op for PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        return
    sqlite_begin_immediate(engine, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS, wal=True)

    @event.listens_for(engine, "connect")
    def _foreign_keys(dbapi_connection, _record):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()
