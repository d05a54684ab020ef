"""The grants interface other features code against (portal/auditors/service.py):
active_grants, grant_covering, and the grant's fields; and the migration of the old permanent
payer scope to a grant."""
from __future__ import annotations

import importlib.util
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import create_engine, inspect, text

from portal.auditors.service import active_grants, grant_covering
from portal.extensions import db
from tests import factories

NOW = datetime.now(timezone.utc)


def test_active_grants_and_the_fields_the_binder_reads(world):
    (g,) = active_grants(world.auditor)
    assert g.auditor is world.auditor and g.payer.rule_key == "sunrise_medicaid_mco"
    assert g.legal_basis == "audit_2_53" and "§2.53" in g.legal_basis_text
    for name in ("purpose", "consent_scope", "recipient", "dos_from", "dos_to", "expires_at"):
        assert hasattr(g, name)
    assert active_grants(world.billing) == []  # not an auditor: no grants, whatever the table says
    assert active_grants(world.auditor, at=g.expires_at) == []  # ends by itself at expiry
    assert active_grants(world.auditor, at=g.expires_at - timedelta(seconds=1)) == [g]


def test_grant_covering_a_range(world):
    alvarez, garcia = world.patients[0], world.patients[2]
    world.auditor_grant.revoked_at = NOW - timedelta(minutes=1)
    narrow = factories.grant(world.auditor, payer=None, patients=[alvarez, garcia],
                             dos_from=date(2026, 11, 1), dos_to=date(2026, 11, 30),
                             legal_basis="consent_2_31", consent_scope="Attendance, Nov 2026")
    db.session.commit()
    assert grant_covering(world.auditor, alvarez, date(2026, 11, 1), date(2026, 11, 30)) == narrow
    assert grant_covering(world.auditor, garcia, date(2026, 11, 3), date(2026, 11, 3)) == narrow
    assert grant_covering(world.auditor, alvarez, date(2026, 10, 31), date(2026, 11, 30)) is None
    assert grant_covering(world.auditor, world.patients[1], date(2026, 11, 2),
                          date(2026, 11, 2)) is None  # O'Brien: only the revoked payer grant
    assert grant_covering(world.auditor, alvarez, date(2026, 11, 1), date(2026, 11, 2),
                          at=narrow.expires_at) is None


MIGRATION = Path(__file__).resolve().parents[2] / "migrations/versions/20261202_g_auditor_grants.py"


def test_migration_turns_a_payer_scope_into_an_expiring_grant(tmp_path):
    """On a database at the previous head with a payer-scoped auditor: the upgrade writes one
    §2.53 grant for that payer expiring in 90 days and drops the column; downgrade restores it."""
    url, mod = _before_migration(tmp_path, MIGRATION, "20261202_g")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO payers (id, rule_key, name, kind, census_aliases) "
                          "VALUES (1, 'sunrise_medicaid_mco', 'Sunrise Medicaid MCO', 'medicaid', '')"))
        for uid, role, scope in ((1, "auditor", 1), (2, "auditor", None), (3, "billing", None)):
            conn.execute(text(
                "INSERT INTO users (id, name, email, password_hash, role, payer_scope_id, "
                "is_active_user, created_at) VALUES (:i, 'U', :e, 'x', :r, :s, 1, '2026-01-01')"),
                {"i": uid, "e": f"u{uid}@x.test", "r": role, "s": scope})
        with Operations.context(MigrationContext.configure(conn)):
            mod.upgrade()
        rows = conn.execute(text("SELECT auditor_id, payer_id, legal_basis, recipient, expires_at "
                                 "FROM auditor_grants")).all()
        assert [(r[0], r[1], r[2], r[3]) for r in rows] == [(1, 1, "audit_2_53", "Sunrise Medicaid MCO")]
        expires = datetime.fromisoformat(str(rows[0][4]))
        assert timedelta(days=89) < expires - datetime.utcnow() <= timedelta(days=90)
        assert "payer_scope_id" not in {c["name"] for c in inspect(conn).get_columns("users")}
        with Operations.context(MigrationContext.configure(conn)):
            mod.downgrade()
        assert conn.execute(text("SELECT payer_scope_id FROM users WHERE id = 1")).scalar() == 1
        assert "auditor_grants" not in inspect(conn).get_table_names()
    engine.dispose()


START_MIGRATION = (Path(__file__).resolve().parents[2]
                   / "migrations/versions/20261203_b_grant_starts.py")


def test_migration_adds_an_empty_start_and_keeps_the_grants(tmp_path):
    """Existing grants get no start (access keeps beginning when granted); downgrade drops the
    column and keeps the grants."""
    url, mod = _before_migration(tmp_path, START_MIGRATION, "20261203_b")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, name, email, password_hash, role, "
                          "is_active_user, created_at) VALUES (1, 'U', 'u@x.test', 'x', 'auditor', "
                          "1, '2026-01-01')"))
        conn.execute(text(
            "INSERT INTO auditor_grants (id, auditor_id, purpose, legal_basis, consent_scope, "
            "recipient, expires_at, granted_at) VALUES (7, 1, 'Review', 'audit_2_53', '', 'SIU', "
            "'2027-01-01 00:00:00', '2026-12-01 00:00:00')"))
        with Operations.context(MigrationContext.configure(conn)):
            mod.upgrade()
        assert conn.execute(text("SELECT id, starts_at FROM auditor_grants")).all() == [(7, None)]
        with Operations.context(MigrationContext.configure(conn)):
            mod.downgrade()
        assert "starts_at" not in {c["name"] for c in inspect(conn).get_columns("auditor_grants")}
        assert conn.execute(text("SELECT id FROM auditor_grants")).scalars().all() == [7]
    engine.dispose()


def _before_migration(tmp_path, path: Path, revision: str):
    """A new SQLite database upgraded to just before the migration at ``path`` (wherever the
    chain puts it), and that migration's module, for a test to run its upgrade and downgrade."""
    import logging

    from flask_migrate import upgrade

    from portal import create_app

    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url,
                      "PORTAL_ARCHIVE_DIR": str(tmp_path / "a"),
                      "PORTAL_SIGNING_KEY": str(tmp_path / "k" / "key"),
                      "PORTAL_CHECKPOINT_DIR": str(tmp_path / "c")})
    spec = importlib.util.spec_from_file_location(f"migration_{revision}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.revision == revision
    # Alembic's env.py runs logging.fileConfig, which disables every logger that exists; later
    # tests read the portal's log (caplog), so put the loggers back as they were.
    loggers = [lg for lg in logging.Logger.manager.loggerDict.values()
               if isinstance(lg, logging.Logger)]
    disabled = {lg: lg.disabled for lg in loggers}
    root_level, root_handlers = logging.root.level, list(logging.root.handlers)
    try:
        with app.app_context():
            upgrade(revision=mod.down_revision)
            db.engine.dispose()
    finally:
        for lg, was in disabled.items():
            lg.disabled = was
        logging.root.setLevel(root_level)
        logging.root.handlers[:] = root_handlers
    return url, mod
