"""Engine settings that must hold on every connection.

SQLite: WAL (readers never block the writer), a busy timeout (wait, don't fail, when another
process holds the write lock) and ``BEGIN IMMEDIATE`` so a transaction takes the write lock at its
start; otherwise a transaction that read first and writes later can fail with "database is locked"
when another writer committed in between, and the archive's appends could not be serialized.
"""
from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine

SQLITE_BUSY_TIMEOUT_MS = 30_000


def configure_engine(engine: Engine) -> None:
    """Install the per-connection settings above on ``engine`` (no-op for PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Hand transaction control to SQLAlchemy's "begin" event below (pysqlite recipe).
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
