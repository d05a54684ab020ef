"""Encounter notes: the shared group section, each patient's individual section, signing
(rendered to PDF outside any transaction, stamped and archived), and the notes queues.

Each writing function either completes and commits, or raises a ``ServiceError`` having
written nothing. Note text and signatures are never logged.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.clock import fmt_local, local_today, now_utc
from portal.documents.clinical import NOTE_ATTESTATION, NOTE_ATTESTATION_OTHER, render_note_pdf
from portal.documents.render import RenderTimeout
from portal.documents.roster import MODALITY_LABEL
from portal.extensions import db
from portal.models import (AttendanceEntry, Closure, Cohort, EncounterNote, GroupNote,
                           GroupSession, Patient, TreatmentPlan, User)
from portal.rules import notes as rules
from portal.rules.deadlines import is_late
from portal.rules.attendance_time import attended_window, minutes_attended
from portal.rules.facts import ATTENDED_STATUSES
from portal.rules.invisible_text import describe, first_invisible
from portal.rules.payer_rules import NoRulesInForceError, UnknownPayerError
from portal.services.archiving import PatientLine, archive_document
from portal.services.checkpoints import checkpoint_if_due
from portal.services.errors import Conflict, Invalid, NotFound

#: Generous: a 9,000-word section (~60,000 characters) must fit; a megabyte paste must not.
MAX_TEXT_CHARS = 100_000
MAX_TOPIC_CHARS = 200
WRITERS = ("facilitator", "clinician", "admin")


def clean_text(value: str | None, label: str, *, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Text as typed, with Windows line ends normalised. HTML is kept (every page and PDF
    escapes it); invisible characters (portal.rules.invisible_text: controls other than tab and
    newline, bidirectional overrides) are refused, naming the field. The web's form guard
    refuses them first; this covers the service's other callers (demo, CLI)."""
    text = (value or "").replace("\r\n", "\n").replace("\r", "\n")
    bad = first_invisible(text)
    if bad is not None:
        raise Invalid(f"{label}: remove the invisible character {describe(bad)}; "
                      "paste the text as plain text.", field=label)
    if len(text) > max_chars:
        raise Invalid(f"{label}: {len(text):,} characters is more than the {max_chars:,} "
                      "allowed.", field=label)
    return text.strip()


def _choice(value: str | None, options: dict, label: str, *, required: bool) -> str | None:
    value = (value or "").strip() or None
    if value is None:
        if required:
            raise Invalid(f"{label}: choose one.", field=label)
        return None
    if value not in options:
        raise Invalid(f"{label}: \u201c{value[:40]}\u201d is not one of the choices.", field=label)
    return value


# --- Reading ---------------------------------------------------------------------------------

def closed_session(session_id: int) -> GroupSession:
    session = db.session.scalar(
        select(GroupSession).where(GroupSession.id == session_id)
        .options(selectinload(GroupSession.entries).selectinload(AttendanceEntry.patient)))
    if session is None:
        raise NotFound(f"There is no group session {session_id}.")
    if not session.is_closed:
        raise Conflict("Notes are written once the roster is closed (its times are final). "
                       "Close the roster first.")
    return session


def attended_entries(session: GroupSession) -> list[AttendanceEntry]:
    return sorted((e for e in session.entries if e.status in ATTENDED_STATUSES),
                  key=lambda e: (e.patient.legal_last, e.patient.legal_first, e.patient.id))


def _attended_entry(session: GroupSession, patient_id: int) -> AttendanceEntry:
    entry = next((e for e in session.entries if e.patient_id == patient_id), None)
    if entry is None or entry.status not in ATTENDED_STATUSES:
        raise Invalid("This patient did not attend this group on "
                      f"{session.dos:%B %-d, %Y} (roster: "
                      f"{'not on the roster' if entry is None else entry.status.replace('_', ' ')}); "
                      "a note documents a service that happened.", field="patient")
    return entry


def group_note(session_id: int) -> GroupNote | None:
    return db.session.scalar(select(GroupNote).where(GroupNote.session_id == session_id))


def session_notes(session_id: int) -> dict[int, EncounterNote]:
    return {n.patient_id: n for n in db.session.scalars(
        select(EncounterNote).where(EncounterNote.session_id == session_id))}


def get_note(note_id: int) -> EncounterNote:
    note = db.session.get(EncounterNote, note_id)
    if note is None:
        raise NotFound(f"There is no encounter note {note_id}.")
    return note


def plan_for_dos(patient_id: int, dos: date) -> TreatmentPlan | None:
    """The signed plan version in effect on ``dos``; else the latest signed version (a note
    may name its objective; readiness then says the plan took effect after the DOS)."""
    signed = list(db.session.scalars(
        select(TreatmentPlan).where(TreatmentPlan.patient_id == patient_id,
                                    TreatmentPlan.status == "signed")
        .order_by(TreatmentPlan.effective_date, TreatmentPlan.version)))
    in_effect = [p for p in signed if p.effective_date <= dos]
    return (in_effect or signed or [None])[-1]


def program_closures(program_id: int) -> frozenset[date]:
    return frozenset(db.session.scalars(select(Closure.date).where(Closure.program_id == program_id)))


def note_deadline_for(session: GroupSession, patient: Patient) -> date:
    """The note's signing deadline from the patient's payer rules in force on the DOS (3
    business days when the payer is unknown), skipping the program's closures."""
    days, kind = 3, "business"
    try:
        version = current_app.extensions["rulebook"].rules_for(patient.payer.rule_key, session.dos)
        days, kind = version.note_signing.days, version.note_signing.day_kind
    except (UnknownPayerError, NoRulesInForceError):
        pass
    return rules.note_deadline(session.dos, days, kind,
                               program_closures(session.cohort.program_id))


@dataclass(frozen=True)
class QueueRow:
    entry: AttendanceEntry
    note: EncounterNote | None
    deadline: date
    minutes: int


def notes_queue(session_id: int) -> tuple[GroupSession, GroupNote | None, list[QueueRow]]:
    session = closed_session(session_id)
    notes = session_notes(session.id)
    rows = [QueueRow(e, notes.get(e.patient_id), note_deadline_for(session, e.patient),
                     minutes_attended(e, session)) for e in attended_entries(session)]
    return session, group_note(session.id), rows


@dataclass(frozen=True)
class DueNote:
    session: GroupSession
    entry: AttendanceEntry
    note: EncounterNote | None
    deadline: date
    overdue: bool


def unsigned_notes_for(user: User, program, *, today: date | None = None) -> list[DueNote]:
    """"My unsigned notes": attended patients of closed sessions this user facilitated, or
    notes this user drafted, with no signed note yet; soonest deadline first."""
    today = today or local_today(program.tz)
    drafted = select(EncounterNote.session_id).where(EncounterNote.author_id == user.id,
                                                     EncounterNote.status == "draft")
    sessions = db.session.scalars(
        select(GroupSession).join(Cohort).where(
            Cohort.program_id == program.id, GroupSession.status == "closed",
            (GroupSession.facilitator_id == user.id) | GroupSession.id.in_(drafted))
        .options(selectinload(GroupSession.entries).selectinload(AttendanceEntry.patient))
        .order_by(GroupSession.dos))
    sessions = list(sessions)
    notes = {(n.session_id, n.patient_id): n for n in db.session.scalars(
        select(EncounterNote).where(EncounterNote.session_id.in_([s.id for s in sessions] or [-1])))}
    closures = program_closures(program.id)
    book = current_app.extensions["rulebook"]
    out = []
    for s in sessions:
        for e in attended_entries(s):
            note = notes.get((s.id, e.patient_id))
            if note is not None and note.is_signed:
                continue
            if note is not None and note.author_id != user.id and s.facilitator_id != user.id:
                continue
            days, kind = 3, "business"
            try:
                v = book.rules_for(e.patient.payer.rule_key, s.dos)
                days, kind = v.note_signing.days, v.note_signing.day_kind
            except (UnknownPayerError, NoRulesInForceError):
                pass
            deadline = rules.note_deadline(s.dos, days, kind, closures)
            out.append(DueNote(s, e, note, deadline, today > deadline))
    return sorted(out, key=lambda d: (d.deadline, d.session.dos, d.entry.patient.legal_last))


# --- Writing ---------------------------------------------------------------------------------

def save_group_note(session_id: int, *, author: User, topic: str | None,
                    group_modality: str | None, shared_text: str | None,
                    now: datetime | None = None) -> GroupNote:
    """Write or update the session's shared section. The shared section may name no attendee
    (group-note privacy: it is copied into every attendee's note). Raises Conflict (roster
    open), Invalid (empty, unknown modality, an attendee named, control characters)."""
    session = closed_session(session_id)
    topic = clean_text(topic, "Topic", max_chars=MAX_TOPIC_CHARS) or (session.topic or "")
    modality = _choice(group_modality, rules.MODALITY_GROUP, "Group modality", required=True)
    text = clean_text(shared_text, "Group section")
    if not topic:
        raise Invalid("Topic: say what the group worked on.", field="Topic")
    if not text:
        raise Invalid("Group section: describe what the group did (written once, shared by "
                      "every attendee's note).", field="Group section")
    named = _names_in(f"{topic}\n{text}", session, exclude=None)
    if named:
        raise Invalid("Group section: it names an attendee. The shared section goes into every "
                      "attendee's note, so it may name nobody; describe the group instead.",
                      field="Group section")
    note = group_note(session.id)
    if note is None:
        note = GroupNote(session_id=session.id, author_id=author.id)
        db.session.add(note)
    elif any(n.is_signed for n in session_notes(session.id).values()) and (
            note.shared_text != text or note.topic != topic or note.group_modality != modality):
        raise Conflict("Notes with this group section are already signed; it can no longer "
                       "change. Correct a signed note with an addendum.")
    note.topic, note.group_modality, note.shared_text = topic, modality, text
    note.author_id = author.id
    note.updated_at = now or now_utc()
    db.session.commit()
    return note


def _patient_names(p: Patient) -> list[str]:
    return [p.legal_first, p.legal_last, p.preferred_first or ""]


def _names_in(text: str, session: GroupSession, *, exclude: int | None) -> list[int]:
    others = {e.patient_id: _patient_names(e.patient) for e in session.entries
              if e.patient_id != exclude}
    return rules.names_mentioned(text, others)


NOTE_FIELDS = ("objective_key", "participation", "affect", "mental_status", "risk",
               "safety_plan", "progress", "individual_text", "plan_changes")


def _validated_fields(form: dict, session: GroupSession, patient: Patient, *,
                      for_signing: bool) -> dict:
    """The individual section's fields, checked. Drafts may be incomplete; signing needs all
    of them. Raises Invalid naming the first field to fix."""
    out = {
        "participation": _choice(form.get("participation"), rules.PARTICIPATION, "Participation",
                                 required=for_signing),
        "affect": _choice(form.get("affect"), rules.AFFECT, "Affect", required=for_signing),
        "mental_status": _choice(form.get("mental_status"), rules.MENTAL_STATUS, "Mental status",
                                 required=for_signing),
        "risk": _choice(form.get("risk"), rules.RISK, "Risk", required=for_signing),
        "progress": _choice(form.get("progress"), rules.PROGRESS, "Progress",
                            required=for_signing),
        "safety_plan": clean_text(form.get("safety_plan"), "Safety plan"),
        "individual_text": clean_text(form.get("individual_text"), "Individual section"),
        "plan_changes": clean_text(form.get("plan_changes"), "Plan changes"),
        "objective_key": (form.get("objective_key") or "").strip() or None,
    }
    plan = plan_for_dos(patient.id, session.dos)
    if out["objective_key"] is not None:
        keys = {o["key"] for o in (plan.objectives if plan else [])}
        if out["objective_key"] not in keys:
            raise Invalid("Objective: choose an objective of the patient's signed treatment "
                          "plan.", field="Objective")
    if out["risk"] and rules.risk_needs_safety_plan(out["risk"]) and not out["safety_plan"]:
        raise Invalid("Safety plan: a risk level of ideation or above needs a safety-plan entry "
                      "before the note is saved.", field="Safety plan")
    if for_signing:
        if plan is None:
            raise Invalid("This patient has no signed treatment plan. Write and sign the plan "
                          "first; every note names one of its objectives.", field="Objective")
        if not out["objective_key"]:
            raise Invalid("Objective: name the plan objective this session worked toward "
                          "(required to sign).", field="Objective")
        if not out["individual_text"]:
            raise Invalid("Individual section: describe this patient's participation and "
                          "progress.", field="Individual section")
    if out["individual_text"] or out["plan_changes"] or out["safety_plan"]:
        text = "\n".join((out["individual_text"], out["plan_changes"], out["safety_plan"]))
        if _names_in(text, session, exclude=patient.id):
            raise Invalid("Individual section: it names another attendee of this group. One "
                          "patient's note never names another; refer to \u201ca peer\u201d.",
                          field="Individual section")
    out["plan_id"] = plan.id if plan else None
    return out


def save_note(session_id: int, patient_id: int, *, author: User, form: dict,
              now: datetime | None = None) -> EncounterNote:
    """Create or update a draft note. Raises Conflict (roster open, note already signed),
    Invalid (patient did not attend, bad field)."""
    session = closed_session(session_id)
    entry = _attended_entry(session, patient_id)
    fields = _validated_fields(form, session, entry.patient, for_signing=False)
    note = db.session.scalar(select(EncounterNote).where(EncounterNote.session_id == session.id,
                                                         EncounterNote.patient_id == patient_id))
    if note is not None and note.is_signed:
        raise Conflict("This note is signed and can no longer change. Correct it with an "
                       "addendum.")
    if note is None:
        note = EncounterNote(session_id=session.id, patient_id=patient_id, author_id=author.id)
        db.session.add(note)
    for key, value in fields.items():
        setattr(note, key, value)
    note.author_id = author.id
    note.updated_at = now or now_utc()
    db.session.commit()
    return note


class CloneSuspected(Conflict):
    """Signing stopped: the individual section is at or above the similarity threshold with
    another patient's in the same group. ``pairs`` = [(other EncounterNote, score)]."""

    def __init__(self, message: str, pairs):
        super().__init__(message)
        self.pairs = pairs


CLONE_DECISIONS = ("individualized", "flag")


def clone_candidates(note: EncounterNote, threshold: float) -> list[tuple[EncounterNote, float]]:
    others = [n for n in session_notes(note.session_id).values() if n.id != note.id]
    sections = {n.id: n.individual_text for n in others}
    sections[note.id] = note.individual_text
    by_id = {n.id: n for n in others}
    out = []
    for pair in rules.clone_pairs(sections, threshold, only=note.id):
        other = pair.b if pair.a == note.id else pair.a
        out.append((by_id[other], pair.score))
    return out


def note_record(note: EncounterNote, session: GroupSession, gnote: GroupNote, signer: User, *,
                signed_at: datetime, deadline: date, clone: dict,
                author_reason: str = "") -> dict:
    program = session.cohort.program
    tz = program.tz
    entry = next(e for e in session.entries if e.patient_id == note.patient_id)
    window = attended_window(entry, session) or (None, None)
    plan = note.plan
    objective = next((o for o in plan.objectives if o["key"] == note.objective_key), {})
    late = is_late(signed_at, deadline, program.time_zone)
    p = note.patient
    return {
        "kind": "encounter_note",
        "program": {"name": program.name, "billing_npi": program.billing_npi,
                    "time_zone": program.time_zone},
        "note_id": str(note.id), "session_id": str(session.id),
        "dos": session.dos.isoformat(), "dos_label": session.dos.strftime("%A, %B %-d, %Y"),
        "cohort": session.cohort.name,
        "modality_label": MODALITY_LABEL[session.modality],
        "place_of_service": session.place_of_service,
        "patient": {"id": str(p.id), "mrn": p.mrn, "name": p.full_name},
        "group": {"topic": gnote.topic, "modality": gnote.group_modality,
                  "modality_label": rules.MODALITY_GROUP[gnote.group_modality],
                  "shared_text": gnote.shared_text,
                  "start_local": fmt_local(session.actual_start, tz),
                  "stop_local": fmt_local(session.actual_end, tz)},
        "time_in_local": fmt_local(window[0], tz), "time_out_local": fmt_local(window[1], tz),
        "minutes_attended": str(minutes_attended(entry, session)),
        "individual": {
            "participation": rules.PARTICIPATION[note.participation],
            "affect": rules.AFFECT[note.affect],
            "mental_status": rules.MENTAL_STATUS[note.mental_status],
            "risk": rules.RISK[note.risk], "risk_key": note.risk,
            "safety_plan": note.safety_plan or "",
            "progress": rules.PROGRESS[note.progress],
            "objective_key": note.objective_key, "objective_text": objective.get("text", ""),
            "text": note.individual_text, "plan_changes": note.plan_changes or "",
        },
        "plan": {"id": str(plan.id), "version": plan.version,
                 "entry_seq": plan.document.entry_seq if plan.document else None},
        "clone": clone,
        "deadline": deadline.isoformat(), "late": "yes" if late else "no",
        "signed": {"user_id": str(signer.id), "name": signer.name,
                   "credential": signer.credential or "", "npi": signer.npi or "",
                   "at": signed_at.isoformat().replace("+00:00", "Z"),
                   "at_local": fmt_local(signed_at, tz, "%b %-d, %Y %-I:%M %p %Z")},
        "facilitator": {"name": session.facilitator.name if session.facilitator else "",
                        "credential": (session.facilitator.credential or "")
                        if session.facilitator else ""},
        "author_reason": author_reason,
        "attestation": NOTE_ATTESTATION_OTHER if author_reason else NOTE_ATTESTATION,
    }


#: Who may sign a group's encounter notes. The note attests that its author provided the service
#: (NH He-W 513.10: the primary therapist signs every note; DOMAIN.md rule 20), and the claim
#: names the session's facilitator as rendering clinician: so the facilitator signs. A session
#: handed to a covering facilitator before the group (portal.services.session_changes) has the
#: covering clinician as its facilitator. Anyone else (a co-leader, a clinician covering after
#: the fact) signs only with a written reason, archived with the note and printed on it.
MIN_AUTHOR_REASON_CHARS = 15


def sign_note(note_id: int, *, signer: User, attested: bool, clone_decision: str | None = None,
              clone_review: str | None = None, author_reason: str | None = None,
              now: datetime | None = None) -> EncounterNote:
    """Sign a draft note: validate it whole, check the shared and individual sections for
    attendees' names and the individual section for near-copies (``CloneSuspected`` until the
    author decides: ``individualized`` with a written review, or ``flag`` to sign with the flag
    open), render the PDF outside any transaction, then archive it and mark the note signed
    in one transaction. Late notes are signed and flagged, not refused.

    A signer other than the session's facilitator must give ``author_reason`` (see
    ``MIN_AUTHOR_REASON_CHARS``). Raises NotFound, Conflict (already signed, changed while
    rendering), Invalid.
    """
    note = get_note(note_id)
    if note.is_signed:
        raise Conflict("This note is already signed; correct it with an addendum.")
    session = closed_session(note.session_id)
    entry = _attended_entry(session, note.patient_id)
    if not attested:
        raise Invalid("Tick the attestation box to sign.", field="attest")
    if not signer.credential:
        raise Invalid("Your account has no credential on file; a signed note must carry the "
                      "author's credential. Ask an administrator to add it.")
    author_reason = clean_text(author_reason, "Reason for signing", max_chars=1000)
    if signer.id == session.facilitator_id:
        author_reason = ""  # the facilitator provided the service: nothing to explain
    elif len(author_reason) < MIN_AUTHOR_REASON_CHARS:
        who = session.facilitator.name_with_credential if session.facilitator else "its facilitator"
        raise Invalid(f"This group was run by {who}, who signs its notes: a note attests that its "
                      "author provided the service. If you co-led the group or sign for the "
                      "facilitator, say so under “Reason for signing” (at least "
                      f"{MIN_AUTHOR_REASON_CHARS} characters); it is archived and printed with "
                      "the note.", field="author_reason")
    form = {k: getattr(note, k) for k in NOTE_FIELDS}
    _validated_fields(form, session, entry.patient, for_signing=True)
    gnote = group_note(session.id)
    if gnote is None or not gnote.shared_text:
        raise Invalid("Write the group section (topic and what the group did) first; every "
                      "attendee's note shares it.", field="Group section")
    if _names_in(f"{gnote.topic}\n{gnote.shared_text}", session, exclude=None):
        raise Invalid("The group section names an attendee; edit it before signing.",
                      field="Group section")
    threshold = current_app.config["PORTAL_CLONE_THRESHOLD"]
    pairs = clone_candidates(note, threshold)
    clone = {"flag": "none", "percent": 0, "review": ""}
    if pairs:
        if clone_decision not in CLONE_DECISIONS:
            raise CloneSuspected(
                f"This individual section is {round(pairs[0][1] * 100)}% similar to another "
                "patient's in this group. Compare them, then make it this patient's own, or "
                "confirm it is individualized, or sign with the flag open.", pairs)
        if clone_decision == "individualized":
            review = clean_text(clone_review, "Similarity review", max_chars=2000)
            if len(review) < 15:
                raise Invalid("Similarity review: say in a sentence why this section is this "
                              "patient's own (at least 15 characters).", field="clone_review")
            clone = {"flag": "resolved", "percent": round(pairs[0][1] * 100), "review": review}
        else:
            clone = {"flag": "open", "percent": round(pairs[0][1] * 100), "review": ""}
    signed_at = now or now_utc()
    if signed_at.astimezone(session.cohort.program.tz).date() < session.dos:
        raise Invalid("A note cannot be signed before its date of service.")
    deadline = note_deadline_for(session, entry.patient)
    signer = db.session.get(User, signer.id)
    record = note_record(note, session, gnote, signer, signed_at=signed_at, deadline=deadline,
                         clone=clone, author_reason=author_reason)
    stamp = note.updated_at
    db.session.rollback()  # no transaction or lock while laying out pages
    try:
        pdf = render_note_pdf(record, seconds=current_app.config["PORTAL_RENDER_SECONDS"])
    except RenderTimeout as exc:
        raise Invalid(f"{exc} Shorten the note or split it with an addendum; nothing was "
                      "signed.") from exc

    note = db.session.scalar(select(EncounterNote).where(EncounterNote.id == note_id)
                             .with_for_update())
    if note is None or note.is_signed or note.updated_at != stamp:
        db.session.rollback()
        raise Conflict("The note changed while it was being signed. Review it and sign again.")
    line = {"patient_id": str(note.patient_id), "mrn": record["patient"]["mrn"],
            "name": record["patient"]["name"], "dos": record["dos"],
            "objective": note.objective_key, "signed_by": signer.name,
            "signed_credential": signer.credential or "", "signed_npi": signer.npi or "",
            "signed_at": record["signed"]["at"], "deadline": record["deadline"],
            "late": record["late"], "minutes_attended": record["minutes_attended"],
            "clone_flag": clone["flag"],
            **({"author_reason": author_reason} if author_reason else {})}
    try:
        doc = archive_document(
            kind="encounter_note",
            title=f"Encounter note {record['patient']['mrn']} {session.cohort.name} {record['dos']}",
            dos=session.dos, subject={"note_id": str(note.id), "session_id": str(session.id),
                                      "patient_id": str(note.patient_id), "dos": record["dos"]},
            actor=f"user:{signer.id}", record=record, pdf=pdf, occurred_at=signed_at,
            patient_lines=[PatientLine(note.patient_id, line)])
        note.status = "signed"
        note.signed_at = signed_at
        note.deadline = deadline
        note.clone_flag = clone["flag"]
        note.clone_review = clone["review"]
        note.document_id = doc.id
        note.author_id = signer.id
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    checkpoint_if_due()
    return note
