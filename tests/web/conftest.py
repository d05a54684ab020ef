"""Fixtures shared by the web tests (the app, world and login fixtures live in tests/conftest.py)."""
from __future__ import annotations

import pytest

from audit_archive.schema import append_only_ddl, drop_append_only_ddl
from portal.extensions import db


@pytest.fixture
def tamperable(app):
    """Drop the append-only triggers (an insider with DDL rights); put them back afterwards,
    since on PostgreSQL the schema outlives the test."""
    dialect = db.engine.dialect.name

    def run(stmts):
        with db.engine.begin() as conn:
            for s in stmts:
                conn.exec_driver_sql(s)

    db.session.rollback()
    run(drop_append_only_ddl(dialect))
    yield dialect
    db.session.rollback()
    run(drop_append_only_ddl(dialect) + append_only_ddl(dialect))
