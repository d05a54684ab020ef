"""An addendum is used only as its own chain entry archived it (issues 9 and 11).

Readiness and billing apply an addendum's corrected fields (the latest wins). Where an insider
changes an addendum row in the database (its corrected fields, its position, its patient), or
also rewrites its index line, the fact loader finds that the row is not what the addendum's
entry commits to: the day is blocked with "record differs from archive entry #N" (N = the
addendum's entry, who: admin) on the billing board and the readiness page, and the tampered
correction is not applied.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import text

from portal.extensions import db
from portal.models import Addendum
from portal.services import addenda as add_svc
from portal.services import notes as svc

from .test_notes import GOOD, _reasons, day, write_group  # noqa: F401  (fixture)

REASON = "Arrived an hour late; verified with the front desk log"


def _sql(statement: str, **params) -> None:
    db.session.rollback()
    db.session.execute(text(statement), params)
    db.session.commit()


def _late_addendum(world, am, patient):
    late = (am.actual_start + timedelta(minutes=60)).astimezone(world.program.tz).strftime("%H:%M")
    return add_svc.add_addendum(am.document_id, patient.id, based_on=None, author=world.facilitator,
                                reason=REASON, fields={"status": "late", "arrival": late})


def _blocked_by(line, seq) -> bool:
    return any(r.code == "record_differs_from_archive" and f"record differs from archive entry #{seq}" in r.message
               and r.who_must_act == "admin" for r in line.blocking_reasons)


@pytest.mark.parametrize("statement", [
    # The correction rewritten: "late at 10:00" becomes "present" (full minutes again).
    "UPDATE addenda SET fields_json = '{\"status\": \"present\"}' WHERE id = :a",
    # The arrival time rewritten: the row no longer holds the archived correction.
    "UPDATE addenda SET fields_json = replace(fields_json, '\"arrival\": \"', '\"arrival\": \"0') WHERE id = :a",
    "UPDATE addenda SET position = 7 WHERE id = :a",
    "UPDATE addenda SET fields_json = 'not json' WHERE id = :a",
])
def test_tampered_roster_addendum_blocks_the_day(world, day, statement):  # noqa: F811
    am, _plans = day
    alvarez = world.patients[0]
    write_group(world, am)
    n = svc.save_note(am.id, alvarez.id, author=world.facilitator, form=dict(GOOD, individual_text="Own words."))
    svc.sign_note(n.id, signer=world.facilitator, attested=True)
    addendum = _late_addendum(world, am, alvarez)
    seq = addendum.document.entry_seq
    line, codes = _reasons(world, alvarez)
    assert "under_daily_minimum" in codes and "record_differs_from_archive" not in codes

    _sql(statement, a=addendum.id)
    line, codes = _reasons(world, alvarez)
    assert line.status == "blocked" and _blocked_by(line, seq), [r.message for r in line.reasons]


def test_tampered_addendum_row_and_index_line_block_on_board_and_readiness(
        world, day, client, login):  # noqa: F811
    """The insider rewrites both the addendum row and its index line to 'present': the index line
    no longer hashes to the commitment in the entry, so it proves nothing, and the day is blocked
    on the real pages, naming the addendum's entry, for the admin."""
    am, _plans = day
    alvarez = world.patients[0]
    write_group(world, am)
    n = svc.save_note(am.id, alvarez.id, author=world.facilitator, form=dict(GOOD, individual_text="Own words."))
    svc.sign_note(n.id, signer=world.facilitator, attested=True)
    addendum = _late_addendum(world, am, alvarez)
    seq, doc_id = addendum.document.entry_seq, addendum.document_id
    _sql("UPDATE addenda SET fields_json = '{\"status\": \"present\"}' WHERE id = :a", a=addendum.id)
    line_json = db.session.scalar(text("SELECT line_json FROM archived_document_patients WHERE document_id = :d"),
                                  {"d": doc_id})
    forged = json.loads(line_json)
    forged["corrected"] = json.dumps({"status": "present"}, sort_keys=True)
    _sql("UPDATE archived_document_patients SET line_json = :j WHERE document_id = :d",
         j=json.dumps(forged, sort_keys=True, separators=(",", ":"), ensure_ascii=False), d=doc_id)
    line, _codes = _reasons(world, alvarez)
    assert line.status == "blocked" and _blocked_by(line, seq)

    _pages_block(client, login, world, alvarez, am.dos, seq)


def test_tampered_note_addendum_blocks_the_day_and_is_not_applied(world, day):  # noqa: F811
    """A signed note's addendum (a participation correction) rewritten in the database to point
    the note at another objective: blocked, naming the addendum's entry."""
    am, _plans = day
    alvarez = world.patients[0]
    write_group(world, am)
    n = svc.save_note(am.id, alvarez.id, author=world.facilitator, form=dict(GOOD, individual_text="Own words."))
    note = svc.sign_note(n.id, signer=world.facilitator, attested=True)
    addendum = add_svc.add_addendum(note.document_id, alvarez.id, based_on=None, author=world.facilitator,
                                    reason="Participation was minimal, not active",
                                    fields={"participation": "minimal"})
    seq = addendum.document.entry_seq
    line, codes = _reasons(world, alvarez)
    assert "record_differs_from_archive" not in codes
    _sql("UPDATE addenda SET fields_json = :f WHERE id = :a",
         f=json.dumps({"participation": "minimal", "objective_key": "O9"}, sort_keys=True), a=addendum.id)
    line, codes = _reasons(world, alvarez)
    assert line.status == "blocked" and _blocked_by(line, seq)


def test_addendum_moved_to_another_patient_blocks_that_patient(world, day):  # noqa: F811
    am, _plans = day
    alvarez, obrien = world.patients[0], world.patients[1]
    addendum = _late_addendum(world, am, alvarez)
    seq = addendum.document.entry_seq
    _sql("UPDATE addenda SET patient_id = :p WHERE id = :a", p=obrien.id, a=addendum.id)
    line, _codes = _reasons(world, obrien)
    assert _blocked_by(line, seq)
    # For Alvarez the archived correction now has no row: her day is not billed on the facts it
    # corrected (full minutes), it is blocked, naming the addendum's entry.
    line, _codes = _reasons(world, alvarez)
    assert line.status == "blocked" and _blocked_by(line, seq)
    assert db.session.get(Addendum, addendum.id).patient_id == obrien.id


# --- A deleted addendum row ---------------------------------------------------------------
# The insider deletes the row of an archived addendum (its entry stays in the chain, which
# the insider cannot change without a witness noticing). Without the check, readiness and
# billing would fall back to the facts the addendum corrected.

def _pages_block(client, login, world, patient, dos, seq, *, readiness=True) -> None:
    """The billing board (and the patient's readiness page) show the day blocked, naming the
    addendum's entry, for the admin."""
    day_ = dos.isoformat()
    login.as_(world.billing)
    board = client.get(f"/billing/?date={day_}")
    assert board.status_code == 200
    assert f"record differs from archive entry #{seq}" in board.get_data(as_text=True)
    if readiness:
        page = client.get(f"/readiness/patients/{patient.id}?from={day_}&to={day_}")
        assert page.status_code == 200
        body = page.get_data(as_text=True)
        assert f"record differs from archive entry #{seq}" in body and "(admin)" in body


def _corrected_minimum_day(world, am, alvarez):
    """Alvarez's note signed and a roster addendum saying she came an hour late (under the
    daily minimum): the corrected day is blocked for minutes, not for the archive."""
    write_group(world, am)
    n = svc.save_note(am.id, alvarez.id, author=world.facilitator, form=dict(GOOD, individual_text="Own words."))
    note = svc.sign_note(n.id, signer=world.facilitator, attested=True)
    addendum = _late_addendum(world, am, alvarez)
    _line, codes = _reasons(world, alvarez)
    assert "under_daily_minimum" in codes and "record_differs_from_archive" not in codes
    return note, addendum


def test_deleted_roster_addendum_row_blocks_the_day_on_board_and_readiness_and_verify_names_it(
        world, day, client, login, runner):  # noqa: F811
    am, _plans = day
    alvarez = world.patients[0]
    _note, addendum = _corrected_minimum_day(world, am, alvarez)
    seq, position = addendum.document.entry_seq, addendum.position
    original_seq = addendum.original.entry_seq
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0

    _sql("DELETE FROM addenda WHERE id = :a", a=addendum.id)
    line, codes = _reasons(world, alvarez)
    # Not the original's full minutes billed: blocked, naming the addendum's entry, for the admin.
    assert line.status == "blocked" and _blocked_by(line, seq), [r.message for r in line.reasons]

    _pages_block(client, login, world, alvarez, am.dos, seq)
    # O'Brien's day on the same roster has no addendum: not blocked by Alvarez's.
    line, codes = _reasons(world, world.patients[1])
    assert "record_differs_from_archive" not in codes

    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert (f"addendum {position} to entry #{original_seq} (patient id {alvarez.id}): record "
            f"differs from archive entry #{seq}: no addendum row") in result.output


def test_deleted_note_addendum_row_blocks_the_day_on_the_board_and_verify_names_it(
        world, day, client, login, runner):  # noqa: F811
    """A signed note's addendum has its row deleted: the note billing reads would no longer be
    the latest archived one, so the day is blocked for the admin."""
    am, _plans = day
    alvarez = world.patients[0]
    write_group(world, am)
    n = svc.save_note(am.id, alvarez.id, author=world.facilitator, form=dict(GOOD, individual_text="Own words."))
    note = svc.sign_note(n.id, signer=world.facilitator, attested=True)
    addendum = add_svc.add_addendum(note.document_id, alvarez.id, based_on=None, author=world.facilitator,
                                    reason="Participation was minimal, not active",
                                    fields={"participation": "minimal"})
    seq, original_seq = addendum.document.entry_seq, note.document.entry_seq
    line, codes = _reasons(world, alvarez)
    assert "record_differs_from_archive" not in codes

    _sql("DELETE FROM addenda WHERE id = :a", a=addendum.id)
    line, codes = _reasons(world, alvarez)
    assert line.status == "blocked" and _blocked_by(line, seq), [r.message for r in line.reasons]

    _pages_block(client, login, world, alvarez, am.dos, seq, readiness=False)

    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"to entry #{original_seq} (patient id {alvarez.id}): record differs from archive entry #{seq}" \
        in result.output


def test_deleted_plan_addendum_row_is_named_by_verify(world, day, runner):  # noqa: F811
    """A plan addendum corrects objective wording and target dates, which billing does not read;
    its deleted row is still a record that differs from the archive, and verify names it."""
    _am, plans = day
    alvarez = world.patients[0]
    plan = plans[0]
    key = plan.objectives[0]["key"]
    addendum = add_svc.add_addendum(plan.document_id, alvarez.id, based_on=None, author=world.facilitator,
                                    reason="Objective reworded to be measurable",
                                    fields={f"objective:{key}": "Attend 3 groups a week for 4 weeks"})
    seq = addendum.document.entry_seq
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    _sql("DELETE FROM addenda WHERE id = :a", a=addendum.id)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"record differs from archive entry #{seq}: no addendum row" in result.output
