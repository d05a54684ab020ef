"""SQLAlchemy Core tables for the audit ledger, and the append-only trigger DDL.

The tables live in their own ``MetaData`` so this package does not depend on the portal's
ORM; the Alembic revision ``0002_audit_log`` creates them with ``create_tables``.
"""

from __future__ import annotations

from sqlalchemy import (BigInteger, Column, DateTime, Index, Integer, LargeBinary, MetaData,
                        SmallInteger, String, Table, Text, func)

metadata = MetaData()

audit_entries = Table(
    "audit_entries", metadata,
    # seq is assigned under the append lock, contiguous from 1; never autoincrement.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("v", SmallInteger, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("entry_bytes", LargeBinary, nullable=False),
    Column("entry_hash", String(64), nullable=False, unique=True),
    Column("leaf_hash", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=True),
    Column("doc_sha256", String(64), nullable=False),
    Column("doc_size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_audit_entries_doc_sha256", audit_entries.c.doc_sha256)
Index("ix_audit_entries_kind", audit_entries.c.kind)

audit_checkpoints = Table(
    "audit_checkpoints", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("origin", String(255), nullable=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", String(64), nullable=False),
    Column("key_id", String(8), nullable=False),
    Column("note", Text, nullable=False),          # the full signed checkpoint text
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_audit_checkpoints_tree_size", audit_checkpoints.c.tree_size)

# Witness cosignatures (C2SP tlog-cosignature) of the checkpoints above: one row per witness
# per checkpoint; ``line`` is the whole signature line as the witness sent it.
audit_cosignatures = Table(
    "audit_cosignatures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("checkpoint_id", Integer, nullable=False),   # audit_checkpoints.id
    Column("origin", String(255), nullable=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", String(64), nullable=False),
    Column("witness", String(255), nullable=False),     # the witness key name
    Column("key_id", String(8), nullable=False),        # hex of the 4-byte key hash
    Column("timestamp", BigInteger, nullable=False),    # the cosignature's own time (POSIX s)
    Column("line", Text, nullable=False),               # "— <name> <base64>" as received
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_audit_cosignatures_checkpoint", audit_cosignatures.c.checkpoint_id)

# What a witness answered when it did NOT cosign (refusal or unreachable): the alarm admins see.
# Not append-only; rows are facts about deliveries, not evidence.
audit_witness_events = Table(
    "audit_witness_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("checkpoint_id", Integer, nullable=False),
    Column("witness", String(255), nullable=False),
    Column("outcome", String(20), nullable=False),      # refused | unreachable
    Column("status_code", Integer, nullable=True),
    Column("message", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

APPEND_ONLY_TABLES = ("audit_entries", "audit_checkpoints")
COSIGNATURE_TABLES = (audit_cosignatures, audit_witness_events)


def append_only_ddl(dialect_name: str) -> list[str]:
    """DDL statements (one per string) installing triggers that refuse UPDATE and DELETE.

    Supported dialects: ``sqlite``, ``postgresql``; ValueError otherwise.  The triggers stop
    mistakes and casual edits through the application's DB account; an insider with DDL rights
    can drop them, which is why verification and signed checkpoints exist.
    """
    stmts: list[str] = []
    if dialect_name == "sqlite":
        for t in APPEND_ONLY_TABLES:
            for op in ("UPDATE", "DELETE"):
                stmts.append(
                    f"CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON {t} "
                    f"BEGIN SELECT RAISE(ABORT, '{t} is append-only: {op} refused'); END")
        return stmts
    if dialect_name == "postgresql":
        stmts.append(
            "CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused', "
            "ERRCODE = 'insufficient_privilege'; END $$")
        for t in APPEND_ONLY_TABLES:
            stmts.append(
                f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                f"FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()")
            # TRUNCATE bypasses row triggers, so refuse it with a statement trigger.
            stmts.append(
                f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()")
        return stmts
    raise ValueError(f"append-only triggers not implemented for dialect {dialect_name!r}")


def drop_append_only_ddl(dialect_name: str) -> list[str]:
    """Inverse of ``append_only_ddl`` (for downgrades and the tamper tests)."""
    if dialect_name == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {t}_no_{op}" for t in APPEND_ONLY_TABLES for op in ("update", "delete")]
    if dialect_name == "postgresql":
        out = []
        for t in APPEND_ONLY_TABLES:
            out += [f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}",
                    f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}"]
        return out + ["DROP FUNCTION IF EXISTS audit_refuse_change()"]
    raise ValueError(f"append-only triggers not implemented for dialect {dialect_name!r}")


def create_tables(bind) -> None:
    """Create the ledger and checkpoint tables and install the triggers on a Connection (e.g.
    ``op.get_bind()``).  The cosignature tables came later (``create_cosignature_table``)."""
    metadata.create_all(bind, tables=[audit_entries, audit_checkpoints])
    for stmt in append_only_ddl(bind.dialect.name):
        bind.exec_driver_sql(stmt)


def _cosignature_trigger_ddl(dialect_name: str) -> list[str]:
    if dialect_name == "sqlite":
        return [f"CREATE TRIGGER audit_cosignatures_no_{op.lower()} BEFORE {op} ON audit_cosignatures "
                f"BEGIN SELECT RAISE(ABORT, 'audit_cosignatures is append-only: {op} refused'); END"
                for op in ("UPDATE", "DELETE")]
    if dialect_name == "postgresql":
        # Its own function: dropping the ledger's triggers (drop_append_only_ddl) must not need
        # these dropped first.
        return ["CREATE OR REPLACE FUNCTION audit_cosignatures_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused', "
                "ERRCODE = 'insufficient_privilege'; END $$",
                "CREATE TRIGGER audit_cosignatures_append_only BEFORE UPDATE OR DELETE ON audit_cosignatures "
                "FOR EACH ROW EXECUTE FUNCTION audit_cosignatures_refuse_change()",
                "CREATE TRIGGER audit_cosignatures_no_truncate BEFORE TRUNCATE ON audit_cosignatures "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_cosignatures_refuse_change()"]
    raise ValueError(f"append-only triggers not implemented for dialect {dialect_name!r}")


def create_cosignature_table(bind) -> None:
    """Create the cosignature and witness-event tables (cosignatures append-only)."""
    metadata.create_all(bind, tables=list(COSIGNATURE_TABLES))
    for stmt in _cosignature_trigger_ddl(bind.dialect.name):
        bind.exec_driver_sql(stmt)


def drop_cosignature_table(bind) -> None:
    if bind.dialect.name == "sqlite":
        for op in ("update", "delete"):
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS audit_cosignatures_no_{op}")
    metadata.drop_all(bind, tables=list(COSIGNATURE_TABLES))
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS audit_cosignatures_refuse_change()")


def drop_tables(bind) -> None:
    """Drop triggers and tables (downgrade)."""
    for stmt in drop_append_only_ddl(bind.dialect.name):
        bind.exec_driver_sql(stmt)
    metadata.drop_all(bind, tables=[audit_entries, audit_checkpoints])
