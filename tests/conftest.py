"""Fixtures in the Flask tutorial's shape: ``app``, ``client``, ``runner``, ``login``.

The database is built by running the Alembic migrations (never ``create_all``), once per test
session; each test gets a copy (SQLite) or a truncated schema (PostgreSQL, when
``PORTAL_TEST_DATABASE_URL`` is set), so tests cannot leak rows into each other.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.x12_check import install_validating_builder

install_validating_builder()  # every 837P the suite builds passes pyx12 (before any import of it)

from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402

from tests import factories  # noqa: E402

PG_URL = os.environ.get("PORTAL_TEST_DATABASE_URL")
FIXTURES = Path(__file__).parent / "fixtures"


def _config(tmp: Path, url: str) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-not-for-production",
        "SQLALCHEMY_DATABASE_URI": url,
        "PORTAL_ARCHIVE_DIR": str(tmp / "archive"),
        "PORTAL_SIGNING_KEY": str(tmp / "keys" / "checkpoint.key"),
        "PORTAL_CHECKPOINT_DIR": str(tmp / "checkpoints"),
        "PORTAL_BASE_URL": "http://portal.test",
        # Background jobs: the test's own SQLite queue and result folder; tests run the queued
        # jobs in-process (the ``run_jobs`` fixture) or in a real worker (tests/web/test_jobs_live.py).
        "PORTAL_QUEUE_URL": "",
        "PORTAL_QUEUE_FILE": str(tmp / "job-queue.sqlite3"),
        "PORTAL_JOB_DIR": str(tmp / "job-results"),
        # The suite signs in hundreds of times a minute from one address; the limit has its
        # own test.
        "RATELIMIT_ENABLED": False,
        # The suite runs at any hour against sessions scheduled for fixed clock times "today";
        # the time-plausibility margins are opened wide here, and the tests of those rules
        # (tests/unit/test_time_plausibility.py, tests/web/test_time_plausibility.py) set the
        # production defaults back.
        "PORTAL_SIGN_EARLY_MINUTES": 24 * 60,
        "PORTAL_FUTURE_TIME_MINUTES": 24 * 60,
        "PORTAL_CLOSE_EARLY_MINUTES": 24 * 60,
    }


def _migrate(url: str, tmp: Path) -> None:
    from flask_migrate import upgrade

    app = create_app(_config(tmp, url))
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory):
    """A migrated database: a template SQLite file, or the PostgreSQL test database."""
    tmp = tmp_path_factory.mktemp("schema")
    if PG_URL:
        engine = create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        _migrate(PG_URL, tmp)
        return PG_URL
    template = tmp / "template.sqlite3"
    _migrate(f"sqlite:///{template}", tmp)
    return template


def _truncate_pg(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' "
            "AND tablename <> 'alembic_version'")).scalars().all()
        if tables:
            # The archive tables refuse TRUNCATE by trigger (as they should in production);
            # replica mode skips triggers for this cleanup connection only.
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                              + " RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def app(migrated_db, tmp_path):
    if PG_URL:
        url = PG_URL
    else:
        path = tmp_path / "portal.sqlite3"
        shutil.copyfile(migrated_db, path)
        url = f"sqlite:///{path}"
    app = create_app(_config(tmp_path, url))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()
    if PG_URL:
        _truncate_pg(PG_URL)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def run_jobs(app):
    """Run the jobs waiting in the test's queue, in this process (as a worker would)."""
    from portal.jobs.queue import run_pending

    def run() -> int:
        db.session.rollback()  # no open SQLite transaction while the job writes
        return run_pending(app)

    return run


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def world(app):
    """A small program: payers, staff of every role, two cohorts, six patients, today's sessions."""
    return factories.build_world()


class Login:
    def __init__(self, client):
        self.client = client

    def as_(self, user, password: str = factories.PASSWORD):
        page = self.client.get("/login")
        if page.status_code == 302:  # someone is signed in: sign out first, as a person would
            home = self.client.get("/", follow_redirects=True).get_data(as_text=True)
            self.client.post("/logout", data={"csrf_token": factories.csrf_from(home)})
            page = self.client.get("/login")
        token = factories.csrf_from(page.get_data(as_text=True))
        resp = self.client.post("/login", data={"email": user.email, "password": password,
                                                "csrf_token": token})
        assert resp.status_code == 302, resp.get_data(as_text=True)
        return resp


@pytest.fixture
def login(client):
    return Login(client)
