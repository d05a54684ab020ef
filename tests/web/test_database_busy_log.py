"""A database fault answers 503 and logs the driver's one-line reason (what the load bench counts
as "database is locked"), never the SQL or its parameters."""
from __future__ import annotations

import logging
import sqlite3

from sqlalchemy.exc import OperationalError


def test_database_locked_is_logged_by_name_without_sql_or_parameters(app, world, client, caplog):
    def busy():
        raise OperationalError("UPDATE patients SET legal_last = ? WHERE id = ?",
                               ("Alvarez", 1), sqlite3.OperationalError("database is locked"))

    from portal.access_control import public

    app.add_url_rule("/_test/busy", "test_busy", public(busy))
    with caplog.at_level(logging.ERROR):
        resp = client.get("/_test/busy")
    assert resp.status_code == 503 and "Nothing was saved" in resp.get_data(as_text=True)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "database unavailable on GET /_test/busy: OperationalError: database is locked" in logged
    assert "Alvarez" not in logged and "UPDATE" not in logged


def test_a_page_whose_access_log_row_cannot_be_written_is_not_shown(app, world, client, login,
                                                                     monkeypatch, caplog):
    """The access-log commit hitting "database is locked" answers 503 (not a 500, and not the
    patient's page without its log row)."""
    from portal.extensions import db

    login.as_(world.billing)
    real_commit = db.session.commit

    def busy_commit():
        from flask import has_request_context, request
        if has_request_context() and request.path.startswith("/readiness/patients/"):
            raise OperationalError("INSERT INTO access_log ...", {}, sqlite3.OperationalError("database is locked"))
        return real_commit()

    monkeypatch.setattr(db.session, "commit", busy_commit)
    with caplog.at_level(logging.ERROR):
        resp = client.get(f"/readiness/patients/{world.patients[0].id}")
    assert resp.status_code == 503
    body = resp.get_data(as_text=True)
    assert "Alvarez" not in body and "database is busy" in body
    assert "(access log): database is locked" in " ".join(r.getMessage() for r in caplog.records)
