"""The Alembic revision creates the tables and triggers, and downgrades cleanly."""

import importlib.util
from pathlib import Path

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from audit_archive.schema import drop_tables

MIGRATION = Path(__file__).resolve().parents[2] / "migrations/versions/20261130_0002_audit_log.py"


def test_upgrade_downgrade(engine):
    spec = importlib.util.spec_from_file_location("m0002", MIGRATION)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (mod.revision, mod.down_revision) == ("0002_audit_log", "0001_initial")
    with engine.begin() as conn:
        drop_tables(conn)
        ctx = MigrationContext.configure(conn)
        with Operations.context(ctx):
            mod.upgrade()
        assert {"audit_entries", "audit_checkpoints"} <= set(inspect(conn).get_table_names())
    with pytest.raises(DBAPIError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO audit_checkpoints (origin, tree_size, root_hash, key_id, note) "
                              "VALUES ('o', 0, 'r', 'k', 'n')"))
            conn.execute(text("DELETE FROM audit_checkpoints"))
    with engine.begin() as conn:
        with Operations.context(MigrationContext.configure(conn)):
            mod.downgrade()
        assert "audit_entries" not in inspect(conn).get_table_names()
