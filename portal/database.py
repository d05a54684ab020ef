"""Engine settings that must hold on every connection.

SQLite: WAL (readers never block the writer), a busy timeout (wait, don't fail, when another
process holds the write lock) and ``BEGIN IMMEDIATE`` so a transaction takes the write lock at its
start; otherwise a transaction that read first and writes later can fail with "database is locked"
when another writer committed in between, and the archive's appends could not be serialized.
The archive library owns that recipe (``audit_archive.ledger.sqlite_begin_immediate``); the
portal adds foreign-key enforcement, which SQLite leaves off by default.
"""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

from audit_archive.ledger import sqlite_begin_immediate

SQLITE_BUSY_TIMEOUT_MS = 30_000


def restrict_sqlite_files(database: str | None) -> None:
    """The database holds PHI: create it 0600 (SQLite gives its -wal and -shm files the
    database file's mode) and tighten an existing one, whatever the umask."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if p.stat().st_mode & 0o077:
                p.chmod(0o600)
        except (FileNotFoundError, PermissionError):
            pass  # absent, or not ours to change (then the operator set it up)


def configure_engine(engine: Engine) -> None:
    """Install the per-connection settings above on ``engine`` (no-op for PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        return
    restrict_sqlite_files(engine.url.database)
    sqlite_begin_immediate(engine, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS, wal=True)

    @event.listens_for(engine, "connect")
    def _foreign_keys(dbapi_connection, _record):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()
