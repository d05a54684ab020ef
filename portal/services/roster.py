"""Roster actions on a tablet: a patient signs, the facilitator marks attendance and times,
the facilitator closes the roster (rendered, stamped and chained in the same transaction).

Each function either completes its change and commits, or raises a ``ServiceError`` having
written nothing.
"""
from __future__ import annotations

import json
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.clock import fmt_when, local_to_utc, now_utc, parse_clock, TimeInputError
from portal.documents.roster import render_roster_pdf, roster_record
from portal.extensions import db
from portal.wording import count_noun
from portal.models import AttendanceEntry, GroupSession, User
from portal.models.attendance import ATTENDED
from portal.rules.attendance_time import minutes_attended
from portal.models.program import MODALITIES
from portal.passwords import check_password
from portal.rules.time_plausibility import (TimeMargins, close_before_end, signature_too_early,
                                            times_in_future)
from portal.services.archiving import PatientLine, archive_document
from portal.services.checkpoints import checkpoint_if_due
from portal.services.errors import Conflict, Invalid, NotFound
from portal.signatures import SignatureRejected, check_signature_png

MAX_STROKES_BYTES = 256 * 1024
# signature_pad's point data is [ {..., "points": [ {x, y, time, pressure} ] } ]: depth 4.
# 200 KB of "[[[[..." would otherwise exhaust the parser's recursion (a 500).
MAX_STROKES_DEPTH = 8


def json_depth(text: str) -> int:
    """Deepest nesting of arrays/objects in JSON ``text`` (brackets inside strings ignored),
    found without parsing, so any depth is measured safely."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest
MAX_SESSION_MINUTES = 12 * 60
MARKABLE = ("present", "late", "left_early", "absent", "cancelled")


def get_session(session_id: int, *, for_update: bool = False,
                with_signatures: bool = False) -> GroupSession:
    """The session (roster rows and patients loaded in one more query) or ``NotFound``.
    ``for_update`` row-locks it on PostgreSQL (SQLite transactions already hold the database
    write lock from BEGIN IMMEDIATE); ``with_signatures`` also loads the signature images."""
    rows = selectinload(GroupSession.entries)
    if with_signatures:
        rows = rows.undefer(AttendanceEntry.signature_png)
    stmt = (select(GroupSession).where(GroupSession.id == session_id)
            .options(rows.selectinload(AttendanceEntry.patient)))
    if for_update:
        stmt = stmt.with_for_update()
    session = db.session.scalar(stmt)
    if session is None:
        raise NotFound(f"There is no group session {session_id}.")
    return session


def margins() -> TimeMargins:
    """The time-plausibility margins from the app's configuration (``PORTAL_*_MINUTES``)."""
    return TimeMargins.from_config(current_app.config)


class RosterClosed(Conflict):
    """The roster was closed (on this or another device): the page must switch to the closed,
    read-only view. ``session_id`` lets the view send the tablet there."""

    def __init__(self, message: str, session_id: int):
        super().__init__(message)
        self.session_id = session_id


def _open_session(session_id: int, *, for_update: bool = False,
                  with_signatures: bool = False) -> GroupSession:
    session = get_session(session_id, for_update=for_update, with_signatures=with_signatures)
    if session.is_closed:
        closed = fmt_when(session.closed_at, session.cohort.program.tz)
        raise RosterClosed(f"This roster was closed at {closed} by "
                           f"{session.facilitator.name} and can no longer change; it is archived "
                           "as signed. Nothing you entered just now was saved.", session.id)
    if session.is_cancelled:
        raise Conflict("This session was cancelled by the program"
                       + (f" ({session.cancel_reason})" if session.cancel_reason else "")
                       + "; there is no roster to change.")
    return session


def _entry(session: GroupSession, entry_id: int) -> AttendanceEntry:
    entry = db.session.get(AttendanceEntry, entry_id)
    if entry is None or entry.session_id != session.id:
        raise NotFound("That patient is not on this session's roster.")
    return entry


def signing_not_open(session: GroupSession, now: datetime | None = None) -> str | None:
    """Why patients cannot sign this roster yet (signing opens a set time before the scheduled
    start), or None. Read-only: the tablet asks before it opens the pad, so a patient is not
    asked to draw a signature the portal will then refuse."""
    tz = session.cohort.program.tz
    return signature_too_early(now or now_utc(), session.scheduled_start, margins(), tz)


def sign_attendance(session_id: int, entry_id: int, *, png: bytes, strokes: str | None,
                    user_agent: str | None, max_png_bytes: int, now: datetime | None = None
                    ) -> AttendanceEntry:
    """Record a patient's roster signature. ``png`` is the pad's export, judged here (non-blank,
    size); ``strokes`` the pad's point data as JSON (kept as evidence, not trusted).

    Raises NotFound (unknown session/patient), Conflict (roster closed, already signed, patient
    marked absent), Invalid (blank/near-blank/oversized/non-PNG signature, bad strokes JSON).
    """
    session = _open_session(session_id, for_update=True)
    entry = _entry(session, entry_id)
    now = now or now_utc()
    tz = session.cohort.program.tz
    if now.astimezone(tz).date() != session.dos:
        # A roster signature attests presence that day; one collected on another day would be
        # a backdated record, which an auditor treats as no record at all.
        raise Conflict(f"Roster signatures are taken on the date of service "
                       f"({session.dos:%A, %B %-d}); today is {now.astimezone(tz):%A, %B %-d}.")
    early = signing_not_open(session, now)
    if early:
        raise Conflict(early)
    if entry.is_signed:
        local = entry.signed_at.astimezone(session.cohort.program.tz).strftime("%-I:%M %p")
        raise Conflict(f"{entry.patient.roster_name} already signed at {local}; nothing changed.")
    if entry.status in ("absent", "cancelled"):
        raise Conflict(f"{entry.patient.roster_name} is marked {entry.status}. Mark them present "
                       "or late first, then sign.")
    try:
        image = check_signature_png(png, max_png_bytes)
    except SignatureRejected as exc:
        raise Invalid(str(exc), field="signature") from exc
    if strokes:
        if len(strokes) > MAX_STROKES_BYTES:
            raise Invalid("The signature has too many points; please sign again.", field="signature")
        try:
            if json_depth(strokes) > MAX_STROKES_DEPTH:
                raise ValueError("nested too deeply")
            json.loads(strokes)
        except (ValueError, RecursionError) as exc:
            raise Invalid("The signature data was damaged in transit; please sign again.",
                          field="signature") from exc
    entry.signature_png = image.png
    entry.signature_sha256 = image.sha256
    entry.signature_strokes = strokes
    entry.signed_at = now
    entry.user_agent = (user_agent or "")[:400]
    if entry.status == "expected":
        entry.status = "present"
    db.session.commit()
    return entry


FIELD_LABELS = {"arrival": "Arrival time", "departure": "Departure time",
                "start": "Actual start", "end": "Actual end"}
# An actual start this far from the scheduled one is a typo (3:00 for 13:00), not a late group.
MAX_START_DRIFT_MINUTES = 180


def _clock_on_dos(session: GroupSession, text: str | None, field: str) -> datetime:
    try:
        clock = parse_clock(text, FIELD_LABELS.get(field, field))
    except TimeInputError as exc:
        raise Invalid(str(exc), field=field) from exc
    return local_to_utc(session.dos, clock, session.cohort.program.tz)


def _local(session: GroupSession, instant: datetime) -> str:
    return f"{instant.astimezone(session.cohort.program.tz):%-I:%M %p}"


def session_window(session: GroupSession) -> tuple[datetime, datetime]:
    """(start, end) in UTC: the actual times when recorded, else the scheduled ones."""
    if session.actual_start and session.actual_end:
        return session.actual_start, session.actual_end
    return session.scheduled_start, session.scheduled_end


def _row_times(session: GroupSession, entry: AttendanceEntry) -> str:
    parts = []
    if entry.arrival:
        parts.append(f"arrived {_local(session, entry.arrival)}")
    if entry.departure:
        parts.append(f"left {_local(session, entry.departure)}")
    return ", ".join(parts)


def mark_attendance(session_id: int, entry_id: int, *, status: str, arrival: str | None = None,
                    departure: str | None = None) -> AttendanceEntry:
    """Set a roster row's status, with the arrival time (late; a departure may be added if they
    also left early) or the departure time (left early; an arrival may be added), typed as
    program-local clock times on the date of service.

    Times must fall inside the scheduled session: a late arrival after the start and before the
    end, an early departure after the start and before the end, departure after arrival.
    Raises NotFound, Conflict (roster closed; absent/cancelled for a patient who already
    signed), Invalid (unknown status, missing, unreadable or out-of-session time).
    """
    if status not in MARKABLE:
        raise Invalid(f"Unknown attendance status \u201c{status}\u201d.", field="status")
    session = _open_session(session_id, for_update=True)
    entry = _entry(session, entry_id)
    if status in ("absent", "cancelled") and entry.is_signed:
        raise Conflict(f"{entry.patient.roster_name} signed in; a signed patient cannot be "
                       "marked absent.")
    # Judge against the actual times once they are entered, else the scheduled ones.
    start, end = session_window(session)
    window = f"{_local(session, start)}\u2013{_local(session, end)}"
    arrival_at = departure_at = None
    # An unreadable time is named first, whatever the status ("99:99 is not a time", not a
    # lesson about which status carries a time).
    for field, text in (("arrival", arrival), ("departure", departure)):
        if text and text.strip():
            _clock_on_dos(session, text, field)
    if status == "present" and (arrival or departure):
        raise Invalid("A patient marked Present attended the whole session; choose Late arrival "
                      "or Left early to record a time, or clear the time.", field="status")
    if status == "late":
        arrival_at = _clock_on_dos(session, arrival, "arrival")
        if not start < arrival_at < end:
            raise Invalid(f"A late arrival must be after the start and before the end of the "
                          f"session ({window}).", field="arrival")
        if departure:
            departure_at = _clock_on_dos(session, departure, "departure")
    if status == "left_early":
        departure_at = _clock_on_dos(session, departure, "departure")
        if not start < departure_at < end:
            raise Invalid(f"An early departure must be after the start and before the end of "
                          f"the session ({window}).", field="departure")
        if arrival:
            arrival_at = _clock_on_dos(session, arrival, "arrival")
    if arrival_at and not start <= arrival_at < end:
        raise Invalid(f"The arrival time must fall within the session ({window}).", field="arrival")
    if departure_at and not start < departure_at <= end:
        raise Invalid(f"The departure time must fall within the session ({window}).",
                      field="departure")
    if arrival_at and departure_at and departure_at <= arrival_at:
        raise Invalid("The departure time must be after the arrival time.", field="departure")
    entry.status = status
    entry.arrival = arrival_at
    entry.departure = departure_at
    db.session.commit()
    return entry


TELEHEALTH_POS = {"home": "10", "other": "02"}  # CMS CR 12427 (Transmittal 11045) [S28]


def set_session_times(session_id: int, *, start: str | None, end: str | None,
                      modality: str | None = None, patient_location: str | None = None,
                      break_minutes: str | None = None,
                      now: datetime | None = None) -> GroupSession:
    """Record the session's actual start and end (program-local clock times on the DOS), and
    its modality: in person (the cohort's place of service) or telehealth by video or audio
    only, with where the patients were (home -> POS 10, elsewhere -> POS 02).

    Raises NotFound, Conflict (closed), Invalid (unreadable, end not after start, > 12 h, a
    start more than 3 hours from the scheduled start, which is a typo rather than a late group,
    an unknown modality, telehealth without the patients' location, or a time that has not
    happened yet: see ``portal.rules.time_plausibility``).
    """
    session = _open_session(session_id, for_update=True)
    modality = modality or session.modality
    if modality not in MODALITIES:
        raise Invalid(f"Unknown modality \u201c{modality}\u201d.", field="modality")
    if modality != "in_person" and patient_location not in TELEHEALTH_POS:
        raise Invalid("For a telehealth session, say where the patients were: home or "
                      "another place.", field="patient_location")
    start_at = _clock_on_dos(session, start, "start")
    end_at = _clock_on_dos(session, end, "end")
    if end_at <= start_at:
        raise Invalid("The session must end after it starts.", field="end")
    breaks = session.break_minutes or 0
    if break_minutes is not None and break_minutes.strip():
        raw = break_minutes.strip()
        length = int((end_at - start_at).total_seconds() // 60)
        if not raw.isdigit() or int(raw) >= length:
            raise Invalid(f"Breaks must be a whole number of minutes under the session's "
                          f"{count_noun(length, 'minute')}, not \u201c{raw[:10]}\u201d.", field="break_minutes")
        breaks = int(raw)
    elif break_minutes is not None:
        breaks = 0
    if (end_at - start_at).total_seconds() > MAX_SESSION_MINUTES * 60:
        raise Invalid("A group session cannot last more than 12 hours.", field="end")
    drift = abs((start_at - session.scheduled_start).total_seconds()) / 60
    if drift > MAX_START_DRIFT_MINUTES:
        raise Invalid(f"The actual start {_local(session, start_at)} is more than 3 hours from the "
                      f"scheduled start {_local(session, session.scheduled_start)}; check AM/PM.",
                      field="start")
    future = times_in_future(now or now_utc(), start_at, end_at, margins(),
                             session.cohort.program.tz)
    if future:
        raise Invalid(future[1], field=future[0])
    outside = [e for e in session.entries
               if (e.arrival and not start_at <= e.arrival < end_at)
               or (e.departure and not start_at < e.departure <= end_at)]
    if outside:
        rows = "; ".join(
            f"{e.patient.roster_name} ({_row_times(session, e)})" for e in outside)
        raise Invalid(f"These arrival or departure times fall outside {_local(session, start_at)}"
                      f"\u2013{_local(session, end_at)}: {rows}. Correct those rows first, or "
                      "check the session times.", field="start")
    session.actual_start, session.actual_end = start_at, end_at
    session.break_minutes = breaks  # not direct service time (12VAC30-130-5090)
    session.modality = modality
    if modality == "in_person":
        session.patient_location = None
        session.place_of_service = session.cohort.place_of_service
    else:
        session.patient_location = patient_location
        session.place_of_service = TELEHEALTH_POS[patient_location]
    db.session.commit()
    return session


def open_rosters_before(program, day) -> list[GroupSession]:
    """Rosters of ``program`` with a date of service before ``day`` that are still open, oldest
    first: each one is a documentation gap until it is closed."""
    from portal.models import Cohort

    return list(db.session.scalars(
        select(GroupSession).join(Cohort).where(Cohort.program_id == program.id,
                                                GroupSession.dos < day,
                                                GroupSession.status == "open")
        .order_by(GroupSession.dos, GroupSession.scheduled_start)))


def roster_order(entries) -> list[AttendanceEntry]:
    """The roster's one order, on the tablet, in its checklists and on the archived PDF:
    legal last name, then first name, then MRN."""
    return sorted(entries, key=lambda e: (e.patient.legal_last.casefold(),
                                          e.patient.legal_first.casefold(), e.patient.mrn))


def _names(entries) -> str:
    return ", ".join(e.patient.roster_name for e in roster_order(entries))


def _sentence(text: str) -> str:
    """End ``text`` with exactly one period ("Marisol A." stays as it is)."""
    return text if text.endswith(".") else text + "."


def unsigned_attendees(session: GroupSession) -> list[AttendanceEntry]:
    """Rows marked as attending that carry no signature."""
    return [e for e in session.entries if e.status in ATTENDED and not e.is_signed]


def closing_problems(session: GroupSession, *, acknowledge_unsigned: bool = False) -> list[str]:
    """Why this roster cannot be closed yet ([] when it can). Each item tells what to fix.

    Attendees without a signature block closing unless the facilitator acknowledges them: on a
    past date they can no longer sign, and the honest record is "attended, not signed" (their
    date of service then stays unbillable) rather than a false no-show.
    """
    problems = []
    if not (session.actual_start and session.actual_end):
        problems.append("Save the session's actual start and end times: the times shown are "
                        "the schedule until you press Save times.")
    unmarked = [e for e in session.entries if e.status == "expected"]
    if unmarked:
        problems.append(_sentence(f"Not signed and not marked absent: {_names(unmarked)}"))
    unsigned = unsigned_attendees(session)
    if unsigned and not acknowledge_unsigned:
        problems.append(_sentence(f"Marked as attending but not signed: {_names(unsigned)}")
                        + " Tick the box to close with them recorded as attended, not signed.")
    if session.actual_start and session.actual_end:
        empty = [e for e in session.entries
                 if e.status in ATTENDED and minutes_attended(e, session) == 0]
        if empty:
            problems.append(_sentence("Arrival or departure time falls outside the actual "
                                      f"session times (0 minutes attended): {_names(empty)}"))
    if not session.entries:
        problems.append("No patients are on this roster.")
    return problems


SIGNED_BY_DRAWING = "drawn"
SIGNED_BY_PASSWORD = "typed_name_password"


def close_roster(session_id: int, *, facilitator: User, typed_name: str, attested: bool,
                 signature_png: bytes, max_png_bytes: int, acknowledge_unsigned: bool = False,
                 now: datetime | None = None, password: str | None = None) -> GroupSession:
    """Close the roster: validate, render its PDF (outside any transaction), then in ONE
    transaction re-check the roster under the lock, append the stamped PDF to the audit chain,
    fill in minutes attended and mark the session closed.

    Raises NotFound; Conflict (already closed, e.g. a double tap: exactly one entry is made; or
    the roster changed while the PDF rendered); Invalid (open problems, no attestation, typed
    name not the facilitator's, blank signature, a wrong password, closing before the recorded
    end).

    The facilitator signs by drawing on the pad, or, when ``password`` is given (keyboard and
    switch users, who cannot draw), by the typed name plus re-entering their own password: the
    archived record and PDF say which (``attestation.method``), and no image is stored.
    """
    session = _open_session(session_id, with_signatures=True)
    problems = closing_problems(session, acknowledge_unsigned=acknowledge_unsigned)
    if not attested:
        problems.append("Tick the attestation box.")
    if " ".join(typed_name.split()).casefold() != " ".join(facilitator.name.split()).casefold():
        problems.append(f"Type your full name exactly as \u201c{facilitator.name}\u201d.")
    image = None
    method = SIGNED_BY_PASSWORD if password is not None else SIGNED_BY_DRAWING
    if method == SIGNED_BY_PASSWORD:
        if not password or not check_password(facilitator.password_hash, password):
            problems.append("The password is not right: enter the one you sign in with.")
    else:
        try:
            image = check_signature_png(signature_png, max_png_bytes)
        except SignatureRejected as exc:
            problems.append(str(exc))
    closed_at = now or now_utc()
    if session.actual_end is not None:
        early = close_before_end(closed_at, session.actual_end, margins(),
                                 session.cohort.program.tz)
        if early:
            problems.append(early)
    if problems:
        raise Invalid(" ".join(p.rstrip(".") + "." for p in problems), details=problems)
    if closed_at.astimezone(session.cohort.program.tz).date() < session.dos:
        raise Invalid("A roster cannot be closed before its date of service.")
    signature_sha256 = image.sha256 if image else None
    # The typed name matched (ignoring case and spacing); archive the account's spelling.
    typed_name = facilitator.name
    record = roster_record(session, facilitator, attestation_name=typed_name,
                           facilitator_signature_sha256=signature_sha256, closed_at=closed_at,
                           method=method)
    signatures = {e.signature_sha256: e.signature_png for e in session.entries if e.is_signed}
    if image:
        signatures[image.sha256] = image.png
    # End the read transaction before the slow render so no lock is held while laying out pages.
    db.session.rollback()
    pdf = render_roster_pdf(record, signatures)

    session = _open_session(session_id, for_update=True)
    facilitator = db.session.get(User, facilitator.id)
    again = roster_record(session, facilitator, attestation_name=typed_name,
                          facilitator_signature_sha256=signature_sha256, closed_at=closed_at,
                          method=method)
    if again != record:
        db.session.rollback()
        raise Conflict("The roster changed while it was being closed. Review it and close again.")
    lines = [PatientLine(int(line["patient_id"]), line) for line in record["lines"]]
    try:
        doc = archive_document(
            kind="roster", title=f"Roster {session.cohort.name} {session.dos.isoformat()}",
            dos=session.dos, subject={"session_id": str(session.id), "dos": session.dos.isoformat(),
                                      "cohort": session.cohort.name},
            actor=f"user:{facilitator.id}", record=record, pdf=pdf, occurred_at=closed_at,
            patient_lines=lines)
        for e in session.entries:
            e.minutes_attended = minutes_attended(e, session)
        # Rows first: once the session row says closed with a document, the database's
        # closed-roster triggers (portal.models.roster_freeze) refuse any change to them.
        db.session.flush()
        session.status = "closed"
        session.closed_at = closed_at
        session.attestation = record["attestation"]["text"] + " — " + typed_name.strip()
        session.facilitator_signature_png = image.png if image else None
        session.facilitator_signature_sha256 = signature_sha256
        session.document_id = doc.id
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    checkpoint_if_due()
    return session


def preclose_warnings(session: GroupSession):
    """What the claim rules will say about this roster once closed (``portal.rules.preclose``),
    from the facts as stored now: one ``load_facts`` for the date of service (same-day groups
    count towards a patient's minutes). Read-only."""
    from portal.fact_loader import load_facts
    from portal.rules.preclose import preview

    if session.is_closed or not session.entries:
        return []
    program = session.cohort.program
    ordered = roster_order(session.entries)
    facts = load_facts(program, session.dos, session.dos,
                       patient_ids=[e.patient_id for e in ordered], lookback_days=0)
    return preview(*facts.args(), current_app.extensions["rulebook"], session_id=session.id,
                   dos=session.dos, names={e.patient_id: e.patient.roster_name for e in ordered})


RECENT_DAYS = 14


def recent_rosters(program, day, *, facilitator_id: int | None = None,
                   days: int = RECENT_DAYS) -> list[GroupSession]:
    """Rosters of the ``days`` before ``day`` (newest first), of one facilitator when given:
    the facilitator's own record of what they closed, and what is still open."""
    from datetime import timedelta

    from portal.models import Cohort

    stmt = (select(GroupSession).join(Cohort)
            .where(Cohort.program_id == program.id, GroupSession.dos < day,
                   GroupSession.dos >= day - timedelta(days=days))
            .options(selectinload(GroupSession.entries))
            .order_by(GroupSession.dos.desc(), GroupSession.scheduled_start.desc()))
    if facilitator_id is not None:
        stmt = stmt.where(GroupSession.facilitator_id == facilitator_id)
    return list(db.session.scalars(stmt))
