"""PHI on disk: the SQLite database (and its WAL), archived PDFs and census previews are
readable by the portal's user only, whatever the umask; previews go at sign-out and on a timer."""
from __future__ import annotations

import io
import os
import stat
import time
from pathlib import Path

import pytest
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from portal.database import restrict_sqlite_files
from tests import factories
from tests.web.test_census_cli import clean_fixture


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def wide_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_sqlite_database_and_its_wal_are_0600(tmp_path, wide_umask):
    from sqlalchemy import create_engine, text

    from portal.database import configure_engine

    path = tmp_path / "db" / "portal.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    configure_engine(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        wal = Path(f"{path}-wal")
        assert wal.exists() and mode(wal) == 0o600
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    engine.dispose()


def test_an_existing_world_readable_database_is_tightened(tmp_path):
    path = tmp_path / "old.sqlite3"
    path.write_bytes(b"")
    path.chmod(0o644)
    restrict_sqlite_files(str(path))
    assert mode(path) == 0o600


def test_archived_pdfs_are_owner_read_only(app, world, closed, wide_umask):
    root = Path(app.config["PORTAL_ARCHIVE_DIR"])
    pdfs = list(root.rglob("*.pdf"))
    assert pdfs
    for pdf in pdfs:
        assert mode(pdf) == 0o400, pdf
        assert mode(pdf.parent) == 0o700
    assert mode(root) == 0o700


def test_the_instance_folder_is_0700(app):
    assert mode(app.instance_path) == 0o700


def _upload(client, data: bytes):
    token = factories.csrf_from(client.get("/admin/census/").get_data(as_text=True))
    boundary, body = encode_multipart(MultiDict({
        "csrf_token": token, "file": FileStorage(io.BytesIO(data), "census.csv")}))
    return client.post("/admin/census/", data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def _previews(app):
    folder = Path(app.instance_path) / "census_uploads"
    return list(folder.glob("*.csv")) if folder.exists() else []


def test_a_preview_is_0600_and_is_deleted_at_sign_out(app, client, login, world):
    for old in _previews(app):
        old.unlink()
    login.as_(world.billing)
    resp = _upload(client, clean_fixture())
    assert resp.status_code == 200
    [preview] = _previews(app)
    assert mode(preview) == 0o600 and mode(preview.parent) == 0o700
    home = client.get("/", follow_redirects=True).get_data(as_text=True)
    client.post("/logout", data={"csrf_token": factories.csrf_from(home)})
    assert _previews(app) == []


def test_a_preview_is_deleted_when_the_tablet_locks(app, client, login, world):
    for old in _previews(app):
        old.unlink()
    login.as_(world.billing)
    assert _upload(client, clean_fixture()).status_code == 200
    assert len(_previews(app)) == 1
    with client.session_transaction() as s:
        s["seen_at"] = int(time.time()) - 3600
    client.get("/readiness/")
    assert _previews(app) == []


def test_stale_previews_are_purged_on_a_timer_and_by_cron(app, runner):
    from portal.census import views

    folder = Path(app.instance_path) / "census_uploads"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    stale, fresh = folder / ("a" * 64 + ".csv"), folder / ("b" * 64 + ".csv")
    for f in (stale, fresh):
        f.write_bytes(b"MRN\n")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    views._last_purge = 0.0
    app.test_client().get("/login")  # any request runs the timer
    assert not stale.exists() and fresh.exists()
    os.utime(fresh, (two_hours_ago, two_hours_ago))
    res = runner.invoke(args=["census", "purge-uploads"])
    assert res.exit_code == 0 and "Deleted 1" in res.output and not fresh.exists()


def test_a_huge_near_empty_file_is_refused_quickly_with_a_short_report(client, login, world):
    from portal.census.parse import COLUMNS

    login.as_(world.billing)
    data = (",".join(COLUMNS) + "\r\n" + "x,,,,,,,,,,,,,,,,\r\n" * 110_000).encode()
    assert len(data) < 2 * 1024 * 1024
    t0 = time.perf_counter()
    resp = _upload(client, data)
    elapsed = time.perf_counter() - t0
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "more than 5,000 rows" in body
    assert len(body) < 50_000, len(body)
    assert elapsed < 5, elapsed


def test_a_report_lists_at_most_200_problems(client, login, world):
    from portal.census.parse import COLUMNS

    login.as_(world.billing)
    data = (",".join(COLUMNS) + "\r\n" + "x,,,,,,,,,,,,,,,,\r\n" * 4000).encode()
    resp = _upload(client, data)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert body.count("<tr><td>") == 200
    assert "The first 200 problems are listed" in body and "more are not" in body
