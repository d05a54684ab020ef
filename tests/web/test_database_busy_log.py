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
