"""Fixtures shared by the web tests (the app, world and login fixtures live in tests/conftest.py)."""
from __future__ import annotations

import pytest

from audit_archive.schema import append_only_ddl, drop_append_only_ddl
from portal.clock import local_today
from portal.extensions import db
from portal.services.schedule import ensure_sessions
from tests import factories


def _without_triggers(drop, restore):
    """Run ``drop`` DDL (as an insider with DDL rights could), yield the dialect, then put the
    triggers back with ``drop + restore``, since on PostgreSQL the schema outlives the test."""
    dialect = db.engine.dialect.name

    def run(stmts):
        with db.engine.begin() as conn:
            for s in stmts:
                conn.exec_driver_sql(s)

    db.session.rollback()
    run(drop(dialect))
    yield dialect
    db.session.rollback()
    run(drop(dialect) + restore(dialect))


@pytest.fixture
def tamperable(app):
    """Drop the ledger's append-only triggers."""
    yield from _without_triggers(drop_append_only_ddl, append_only_ddl)


@pytest.fixture
def thawed_rosters(app):
    """Drop the closed-roster triggers (portal.models.roster_freeze), to show what the archive
    checks catch past them."""
    from portal.models.roster_freeze import freeze_ddl, unfreeze_ddl

    yield from _without_triggers(unfreeze_ddl, freeze_ddl)


@pytest.fixture
def closed(world):
    """Two closed rosters: entry 1 (AM, patient 100231), entry 2 (PM, patient 100250)."""
    day = local_today(world.program.tz)
    sessions = {s.cohort.name: s for s in ensure_sessions(world.program, day)}
    am = factories.sign_and_close(sessions["AM IOP"], world.facilitator, absent={"100234"})
    pm = factories.sign_and_close(sessions["PM IOP"], world.facilitator2)
    return am, pm
