"""Late-archived entries shown where people look: `audit verify` and the entry's verification page."""
from __future__ import annotations

from datetime import timedelta

from portal.clock import now_utc
from portal.extensions import db
from portal.services.archiving import archive_document
from tests.audit.helpers import make_pdf


def _archive(occurred_at):
    doc = archive_document(kind="reconciliation", title="Late upload", dos=None, subject={"day": "x"},
                           actor="user:1", record={"r": 1}, pdf=make_pdf("late"), occurred_at=occurred_at,
                           patient_lines=[])
    db.session.commit()
    return doc


def test_late_archived_entry_on_verify_and_its_page(app, client, login, runner, world):
    _archive(now_utc() - timedelta(days=20))
    _archive(now_utc())
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 0, res.output
    first = res.output.splitlines()[0]
    assert first.startswith("OK: 2 entries") and "1 late-archived" in first
    assert "WARN entry 1: late-archived: event at " in res.output
    login.as_(world.admin)
    page = client.get("/verify/1").get_data(as_text=True)
    assert "late-archived" in page and "days after the event" in page
    assert "late-archived" not in client.get("/verify/2").get_data(as_text=True)


def test_late_archive_limit_is_configurable(app, runner, world):
    _archive(now_utc() - timedelta(days=20))
    app.config["PORTAL_LATE_ARCHIVE_DAYS"] = "30"
    assert "late-archived" not in runner.invoke(args=["audit", "verify"]).output
    app.config["PORTAL_LATE_ARCHIVE_DAYS"] = "soon"
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 1 and "PORTAL_LATE_ARCHIVE_DAYS must be a positive number of days, got 'soon'" in res.output


def test_verify_ok_line_names_checkpoint_reach(app, runner, world, closed):
    res = runner.invoke(args=["audit", "verify"])
    first = res.output.splitlines()[0]
    assert res.exit_code == 0, res.output
    assert "newest checkpoint covers 1" in first and " signed 20" in first and "1 not yet covered" in first, first
