"""Fixtures: a fresh ledger on SQLite (always) and PostgreSQL (when PORTAL_TEST_PG_URL is set)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine

from audit_archive.filestore import FileStore
from audit_archive.ledger import sqlite_begin_immediate
from audit_archive.schema import create_tables, drop_tables

PG_URL = os.environ.get("PORTAL_TEST_PG_URL")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason="PORTAL_TEST_PG_URL not set"))]


def make_engine(backend: str, tmp_path):
    if backend == "sqlite":
        engine = sqlite_begin_immediate(create_engine(f"sqlite:///{tmp_path / 'ledger.db'}"))
    else:
        engine = create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            drop_tables(conn)
            create_tables(conn)
    except Exception:
        engine.dispose()
        raise
    return engine


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def engine(backend, tmp_path):
    eng = make_engine(backend, tmp_path)
    yield eng
    eng.dispose()


@pytest.fixture
def store(tmp_path):
    return FileStore(tmp_path / "files")


@pytest.fixture
def key_path(tmp_path):
    return tmp_path / "keys" / "checkpoint.key"
