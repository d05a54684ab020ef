"""``load_facts`` + derivation issue a constant number of SQL statements: the same for 5 patients
as for 50 over the same days (no per-patient or per-session query). The board adds a fixed few."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import date, time, timedelta

from sqlalchemy import event, insert

from portal.clock import local_to_utc
from portal.extensions import db
from portal.fact_loader import load_facts
from portal.models import AttendanceEntry, Authorization, Cohort, Enrollment, GroupSession
from portal.rules.claim_lines import derive_claim_lines
from portal.services.reconciliation import build_day
from portal.services.schedule import ensure_sessions
from tests import factories

FIRST = date(2026, 11, 9)
DAYS = 5


@contextmanager
def count_statements():
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            seen.append(statement)  # transaction control is not a query

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def _add_patients(program, cohort, payer, start: int, n: int):
    patients = [factories.make_patient(f"9{start + i:05d}", f"Pat{start + i}", "Synthetic", payer,
                                       member_id=f"SMC{start + i:08d}") for i in range(n)]
    db.session.flush()
    for p in patients:
        db.session.add(Enrollment(patient=p, cohort=cohort, start_date=date(2026, 10, 1)))
        db.session.add(Authorization(patient=p, payer=payer, number=f"AUTH-{p.mrn}",
                                     start_date=date(2026, 11, 1), end_date=date(2026, 12, 31),
                                     units=40))
    db.session.commit()
    return patients


def _attend(program, patients):
    """Every patient present and signed at every session of the DAYS days (Core insert)."""
    sessions = db.session.scalars(db.select(GroupSession)).all()
    rows = []
    existing = {(e.session_id, e.patient_id) for e in db.session.scalars(db.select(AttendanceEntry))}
    for s in sessions:
        s.actual_start, s.actual_end, s.status = s.scheduled_start, s.scheduled_end, "closed"
        for p in patients:
            if (s.id, p.id) not in existing:
                rows.append({"session_id": s.id, "patient_id": p.id, "status": "present",
                             "signed_at": s.scheduled_start})
    if rows:
        db.session.execute(insert(AttendanceEntry), rows)
    db.session.execute(db.update(AttendanceEntry).values(status="present"))
    db.session.execute(db.update(AttendanceEntry).where(AttendanceEntry.signed_at.is_(None))
                       .values(signed_at=local_to_utc(FIRST, time(9, 0), program.tz)))
    db.session.commit()


def _document(author):
    """Signed plans and notes for every attended row (issue 11)."""
    factories.document_sessions(db.session.scalars(db.select(GroupSession)).all(), author)


def _measure(app, program):
    db.session.expire_all()
    program.time_zone  # reload the expired program outside the count
    with count_statements() as seen:
        facts = load_facts(program, FIRST, FIRST + timedelta(days=DAYS - 1))
        lines = derive_claim_lines(*facts.args(), app.extensions["rulebook"],
                                   documentation=facts.documentation)
    return len(seen), lines


def test_query_count_is_constant_in_patients(app):
    program = factories.make_program()
    payers = factories.make_payers()
    clinician = factories.make_user("facilitator", "Dana Whitfield", "d@x.test", "LCSW", "1487654323")
    cohort = Cohort(program=program, name="AM IOP", weekdays="1,2,3,4,5,6,7", start_local=time(9, 0),
                    duration_minutes=180, facilitator=clinician, capacity=60)
    db.session.add(cohort)
    db.session.commit()
    payer = payers["sunrise_medicaid_mco"]
    small = _add_patients(program, cohort, payer, 0, 5)
    for i in range(DAYS):
        ensure_sessions(program, FIRST + timedelta(days=i))
    _attend(program, small)
    _document(clinician)
    n_small, lines_small = _measure(app, program)

    large = small + _add_patients(program, cohort, payer, 5, 45)
    _attend(program, large)
    _document(clinician)
    n_large, lines_large = _measure(app, program)

    assert len(lines_small) == 5 * DAYS and len(lines_large) == 50 * DAYS
    # 4 for rosters (with their notes) and authorizations + level-of-care episodes + addenda,
    # plans and closures (the archive binding adds 2 more only when rosters are archived)
    assert n_small == n_large == 8, (n_small, n_large)
    doc_codes = {"note_missing", "note_not_signed", "plan_missing", "plan_not_signed"}
    assert not doc_codes & {r.code for ln in lines_large for r in ln.reasons}

    # the board: the loader's 8 + roster document ids + reconciliations (constant too)
    with count_statements() as small_board:
        build_day(program, FIRST + timedelta(days=DAYS - 1), app.extensions["rulebook"])
    assert len(small_board) <= 11
