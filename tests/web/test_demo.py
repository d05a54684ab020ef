"""`flask demo load`: a fictional program with history, realistic gaps, and an intact archive."""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from audit_archive.schema import audit_checkpoints, audit_entries
from portal.demo import load_demo
from portal.extensions import db
from portal.models import GroupSession, Patient, User


def test_demo_load_is_idempotent_and_has_gaps(app, runner):
    summary = load_demo(today=date(2026, 11, 30), history_days=10)  # a Monday
    assert summary.created and summary.closed >= 8
    assert db.session.scalar(select(func.count()).select_from(Patient)) == 24  # 21 + 3 auth stories
    open_past = db.session.scalars(select(GroupSession).where(
        GroupSession.status == "open", GroupSession.dos < date(2026, 11, 30))).all()
    assert open_past, "the demo must leave a documentation gap to find"
    entries = db.session.scalar(select(func.count()).select_from(audit_entries))
    assert entries == summary.closed + 11  # + the authorization stories' archived transitions
    assert db.session.scalar(select(func.max(audit_checkpoints.c.tree_size))) == entries
    auditor = db.session.scalar(select(User).where(User.role == "auditor"))
    assert auditor.payer_scope_id is not None
    again = runner.invoke(args=["demo", "load"])
    assert "already exists" in again.output and "demo-dana" in again.output
    verify = runner.invoke(args=["audit", "verify"])
    assert verify.exit_code == 0, verify.output
