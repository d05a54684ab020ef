"""Database triggers that freeze a closed roster: once a group session is closed AND archived
(``status = 'closed'`` with a ``document_id``), its session row and its attendance rows
(statuses, times, signatures) refuse UPDATE, DELETE and new rows, on SQLite and PostgreSQL.

Why here and not only in the services: billing must never bill a row the archive does not hold,
and an UPDATE through a database console skips every service. The archive's own tables are
append-only the same way (``audit_archive.schema``). Someone with DDL rights can still drop the
triggers, which is why ``portal.services.roster_binding`` also checks each closed roster's rows
against the line commitments in its chain entry before billing them.

A session closed without a document (only test fixtures and benches do that) stays editable.
"""
from __future__ import annotations

FROZEN_SESSION = "status = 'closed' AND document_id IS NOT NULL"
_SQLITE_MSG = "roster is closed and archived: {op} on {table} refused (corrections are archived addenda)"


def freeze_ddl(dialect_name: str) -> list[str]:
    """DDL statements (one per string) installing the closed-roster triggers."""
    if dialect_name == "sqlite":
        frozen = lambda ref: (  # noqa: E731 - one expression, read as SQL
            f"EXISTS (SELECT 1 FROM group_sessions g WHERE g.id = {ref}.session_id "
            f"AND g.status = 'closed' AND g.document_id IS NOT NULL)")
        stmts = []
        for op in ("UPDATE", "DELETE"):
            stmts.append(
                f"CREATE TRIGGER group_sessions_frozen_no_{op.lower()} BEFORE {op} ON group_sessions "
                f"WHEN OLD.status = 'closed' AND OLD.document_id IS NOT NULL "
                f"BEGIN SELECT RAISE(ABORT, '{_SQLITE_MSG.format(op=op, table='group_sessions')}'); END")
        conditions = {"UPDATE": f"{frozen('OLD')} OR {frozen('NEW')}", "DELETE": frozen("OLD"),
                      "INSERT": frozen("NEW")}
        for op, cond in conditions.items():
            stmts.append(
                f"CREATE TRIGGER attendance_entries_frozen_no_{op.lower()} BEFORE {op} "
                f"ON attendance_entries WHEN {cond} "
                f"BEGIN SELECT RAISE(ABORT, '{_SQLITE_MSG.format(op=op, table='attendance_entries')}'); END")
        return stmts
    if dialect_name == "postgresql":
        return [
            """CREATE OR REPLACE FUNCTION roster_refuse_frozen_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_TABLE_NAME = 'group_sessions' THEN
                IF OLD.status = 'closed' AND OLD.document_id IS NOT NULL THEN
                  RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', MESSAGE =
                    'roster is closed and archived: ' || TG_OP || ' on group_sessions refused '
                    '(corrections are archived addenda)';
                END IF;
              ELSE
                IF (TG_OP <> 'INSERT' AND EXISTS (SELECT 1 FROM group_sessions g
                      WHERE g.id = OLD.session_id AND g.status = 'closed' AND g.document_id IS NOT NULL))
                   OR (TG_OP <> 'DELETE' AND EXISTS (SELECT 1 FROM group_sessions g
                      WHERE g.id = NEW.session_id AND g.status = 'closed' AND g.document_id IS NOT NULL)) THEN
                  RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', MESSAGE =
                    'roster is closed and archived: ' || TG_OP || ' on attendance_entries refused '
                    '(corrections are archived addenda)';
                END IF;
              END IF;
              IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
              RETURN NEW;
            END $$""",
            """CREATE OR REPLACE FUNCTION roster_refuse_truncate() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              IF EXISTS (SELECT 1 FROM group_sessions WHERE status = 'closed'
                         AND document_id IS NOT NULL) THEN
                RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', MESSAGE =
                  'closed, archived rosters exist: TRUNCATE ' || TG_TABLE_NAME || ' refused';
              END IF;
              RETURN NULL;
            END $$""",
            "CREATE TRIGGER group_sessions_frozen BEFORE UPDATE OR DELETE ON group_sessions "
            "FOR EACH ROW EXECUTE FUNCTION roster_refuse_frozen_change()",
            "CREATE TRIGGER attendance_entries_frozen BEFORE INSERT OR UPDATE OR DELETE "
            "ON attendance_entries FOR EACH ROW EXECUTE FUNCTION roster_refuse_frozen_change()",
            "CREATE TRIGGER group_sessions_frozen_truncate BEFORE TRUNCATE ON group_sessions "
            "FOR EACH STATEMENT EXECUTE FUNCTION roster_refuse_truncate()",
            "CREATE TRIGGER attendance_entries_frozen_truncate BEFORE TRUNCATE ON attendance_entries "
            "FOR EACH STATEMENT EXECUTE FUNCTION roster_refuse_truncate()",
        ]
    raise ValueError(f"closed-roster triggers not implemented for dialect {dialect_name!r}")


def unfreeze_ddl(dialect_name: str) -> list[str]:
    """Inverse of ``freeze_ddl`` (downgrade, and the tests that play an insider with DDL rights)."""
    if dialect_name == "sqlite":
        return ([f"DROP TRIGGER IF EXISTS group_sessions_frozen_no_{op}" for op in ("update", "delete")]
                + [f"DROP TRIGGER IF EXISTS attendance_entries_frozen_no_{op}"
                   for op in ("update", "delete", "insert")])
    if dialect_name == "postgresql":
        return ["DROP TRIGGER IF EXISTS group_sessions_frozen ON group_sessions",
                "DROP TRIGGER IF EXISTS attendance_entries_frozen ON attendance_entries",
                "DROP TRIGGER IF EXISTS group_sessions_frozen_truncate ON group_sessions",
                "DROP TRIGGER IF EXISTS attendance_entries_frozen_truncate ON attendance_entries",
                "DROP FUNCTION IF EXISTS roster_refuse_frozen_change()",
                "DROP FUNCTION IF EXISTS roster_refuse_truncate()"]
    raise ValueError(f"closed-roster triggers not implemented for dialect {dialect_name!r}")
