"""A closed roster is bound to its archived roster (finding 4 of issue 9).

The database refuses changes to a closed, archived roster's rows (triggers, SQLite and
PostgreSQL). Where an insider forces a change past the triggers (absent -> present, 190
minutes), the line is blocked on the billing board and the readiness page with "record differs
from archive entry #N" (who: admin), it is never billed, and ``audit verify`` names the roster.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from portal.clock import local_today
from portal.extensions import db
from portal.fact_loader import load_facts
from portal.models import ArchivedDocument, Authorization, GroupSession, Patient
from portal.rules.claim_lines import derive_claim_lines
from portal.services.schedule import ensure_sessions

NGUYEN = "100234"  # absent on the closed AM roster (the ``closed`` fixture)


def _sql(statement: str, **params) -> None:
    db.session.rollback()
    db.session.execute(text(statement), params)
    db.session.commit()


def _am(closed):
    return db.session.get(GroupSession, closed[0].id)


def _nguyen():
    return db.session.scalar(db.select(Patient).where(Patient.mrn == NGUYEN))


@pytest.mark.parametrize("statement", [
    "UPDATE attendance_entries SET status = 'present' WHERE session_id = :s",
    "UPDATE attendance_entries SET signature_sha256 = NULL WHERE session_id = :s",
    "DELETE FROM attendance_entries WHERE session_id = :s",
    "UPDATE group_sessions SET actual_end = actual_start WHERE id = :s",
    "UPDATE group_sessions SET status = 'open', document_id = NULL WHERE id = :s",
    "DELETE FROM group_sessions WHERE id = :s",
])
def test_database_refuses_changes_to_a_closed_roster(app, world, closed, statement):
    sid = closed[0].id
    with pytest.raises(DBAPIError, match="roster is closed and archived"):
        _sql(statement, s=sid)
    db.session.rollback()
    assert db.session.get(GroupSession, sid).status == "closed"


def test_database_refuses_a_new_row_on_a_closed_roster(app, world, closed):
    sid = closed[0].id
    other = world.pm_patients[1]
    with pytest.raises(DBAPIError, match="roster is closed and archived"):
        _sql("INSERT INTO attendance_entries (session_id, patient_id, status) VALUES (:s, :p, 'present')",
             s=sid, p=other.id)
    db.session.rollback()
    # ... nor can a row be moved onto it from another session.
    tomorrow = local_today(world.program.tz) + timedelta(days=1)
    later = next(s for s in ensure_sessions(world.program, tomorrow) if s.cohort_id == world.am.id)
    db.session.commit()
    with pytest.raises(DBAPIError, match="roster is closed and archived"):
        _sql("UPDATE attendance_entries SET session_id = :s WHERE session_id = :o", s=sid, o=later.id)


def test_open_rosters_stay_editable(app, world, closed):
    tomorrow = local_today(world.program.tz) + timedelta(days=1)
    later = next(s for s in ensure_sessions(world.program, tomorrow) if s.cohort_id == world.am.id)
    db.session.commit()
    _sql("UPDATE attendance_entries SET status = 'absent' WHERE session_id = :s", s=later.id)
    _sql("UPDATE group_sessions SET topic = 'Relapse prevention' WHERE id = :s", s=later.id)


def _force_nguyen_present(am) -> None:
    """Absent -> present for the whole 190 minutes, signed, written past the dropped triggers."""
    start = am.actual_start - timedelta(minutes=5)
    _sql("UPDATE attendance_entries SET status = 'present', arrival = :a, departure = :d, "
         "minutes_attended = 190, signed_at = :a, signature_sha256 = :h "
         "WHERE session_id = :s AND patient_id = :p",
         a=start.replace(tzinfo=None), d=(start + timedelta(minutes=190)).replace(tzinfo=None),
         h="ab" * 32, s=am.id, p=_nguyen().id)


def _lines(world, day):
    facts = load_facts(world.program, day, day)
    from flask import current_app
    return {ln.patient_id: ln for ln in derive_claim_lines(*facts.args(), current_app.extensions["rulebook"])
            if ln.dos == day}


def test_forced_change_blocks_the_line_everywhere_and_verify_names_the_roster(
        app, client, login, runner, world, closed, thawed_rosters):
    am = _am(closed)
    day, seq = am.dos, db.session.get(ArchivedDocument, am.document_id).entry_seq
    nguyen = _nguyen()
    alvarez = world.patients[0]
    db.session.add(Authorization(patient=alvarez, payer=alvarez.payer, number="SMC-A-1", hcpcs_code="H0015",
                                 start_date=day - timedelta(days=30), end_date=day + timedelta(days=30),
                                 units=40))
    db.session.commit()
    before = _lines(world, day)
    assert before[nguyen.id].status == "no_service"
    assert not any(r.code == "record_differs_from_archive" for ln in before.values() for r in ln.reasons)
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0

    _force_nguyen_present(am)

    after = _lines(world, day)
    line = after[nguyen.id]
    assert line.status == "blocked"
    reason = next(r for r in line.blocking_reasons if r.code == "record_differs_from_archive")
    assert f"record differs from archive entry #{seq}" in reason.message and reason.who_must_act == "admin"
    # The other patients' rows still match the archived roster: only the changed row is blocked.
    assert after[alvarez.id].status == before[alvarez.id].status
    assert not any(r.code == "record_differs_from_archive" for r in after[alvarez.id].reasons)

    login.as_(world.billing)
    board = client.get(f"/billing/?date={day.isoformat()}").get_data(as_text=True)
    assert f"record differs from archive entry #{seq}" in board
    assert "who-admin" in board or "(admin)" in board
    csv = client.get(f"/billing/?date={day.isoformat()}")
    assert csv.status_code == 200
    page = client.get(f"/readiness/patients/{nguyen.id}?from={day.isoformat()}&to={day.isoformat()}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert f"record differs from archive entry #{seq}" in body and "(admin)" in body

    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"closed roster Roster AM IOP {day.isoformat()} (session {am.id}): record differs from archive entry #{seq}" in result.output
    assert "status 'present', archived 'absent'" in result.output
    assert "Roster PM IOP" not in result.output  # the untouched roster is not listed


def test_changed_session_times_block_every_line_of_the_session(app, world, closed, thawed_rosters):
    am = _am(closed)
    _sql("UPDATE group_sessions SET actual_end = :e WHERE id = :s",
         e=(am.actual_end + timedelta(minutes=60)).replace(tzinfo=None), s=am.id)
    lines = _lines(world, am.dos)
    attended = [ln for ln in lines.values() if ln.session_ids == (am.id,) and ln.status != "no_service"]
    assert attended and all(any(r.code == "record_differs_from_archive" for r in ln.blocking_reasons)
                            for ln in attended)


def test_a_row_deleted_or_added_past_the_triggers_is_caught(app, runner, world, closed, thawed_rosters):
    am = _am(closed)
    _sql("DELETE FROM attendance_entries WHERE session_id = :s AND patient_id = :p", s=am.id, p=_nguyen().id)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and "entry commits 4 lines" in result.output
    lines = _lines(world, am.dos)
    assert all(any(r.code == "record_differs_from_archive" for r in ln.reasons)
               for ln in lines.values() if am.id in ln.session_ids and ln.status != "no_service")


def test_index_line_moved_to_another_row_does_not_vouch_for_it(app, world, closed, thawed_rosters):
    """The check proves the index line against the entry's commitment: an edited index line (here,
    Nguyen's archived line rewritten to say present) proves nothing, so the row is blocked."""
    am = _am(closed)
    _force_nguyen_present(am)
    _sql("UPDATE archived_document_patients SET line_json = replace(line_json, '\"absent\"', '\"present\"') "
         "WHERE patient_id = :p", p=_nguyen().id)
    line = _lines(world, am.dos)[_nguyen().id]
    assert any(r.code == "record_differs_from_archive" for r in line.blocking_reasons)
