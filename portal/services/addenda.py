"""Addenda: the only way to correct a signed note, a signed plan or a closed roster.

An addendum is a new archived document that references the original's chain entry, with its
author, reason and corrected fields. Per (original, patient) addenda form one linear chain:
a new one must be based on the current head (else ``Conflict``: someone corrected it since),
and the unique ``position`` makes two concurrent corrections from one head impossible.
Readiness and billing use the latest addendum's facts (``portal.fact_loader``).

A roster addendum may correct a patient's status or arrival/departure time, never a
signature: a missing signature stays missing.
"""
from __future__ import annotations

import json
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.clock import fmt_local, now_utc, parse_clock, local_to_utc, TimeInputError
from portal.documents.clinical import ADDENDUM_ATTESTATION, render_addendum_pdf
from portal.documents.render import RenderTimeout
from portal.documents.roster import STATUS_LABEL
from portal.extensions import db
from portal.models import (Addendum, ArchivedDocument, AttendanceEntry, EncounterNote,
                           GroupSession, Patient, TreatmentPlan, User)
from portal.rules import notes as rules
from portal.rules.attendance_time import minutes_attended
from portal.services.archiving import PatientLine, archive_document
from portal.services.checkpoints import checkpoint_if_due
from portal.services.errors import Conflict, Invalid, NotFound
from portal.services.notes import clean_text

TARGET_OF_KIND = {"roster": "roster", "encounter_note": "note", "treatment_plan": "plan"}
TARGET_LABEL = {"roster": "the group attendance roster", "note": "the encounter note",
                "plan": "the treatment plan"}
ROSTER_STATUSES = ("present", "late", "left_early", "absent", "cancelled")
NOTE_CHOICES = {"participation": rules.PARTICIPATION, "affect": rules.AFFECT,
                "mental_status": rules.MENTAL_STATUS, "risk": rules.RISK,
                "progress": rules.PROGRESS}
NOTE_TEXTS = ("individual_text", "plan_changes", "safety_plan", "clone_review")
FIELD_LABELS = {
    "status": "Attendance status", "arrival": "Arrival time", "departure": "Departure time",
    "objective_key": "Objective", "participation": "Participation", "affect": "Affect",
    "mental_status": "Mental status", "risk": "Risk", "progress": "Progress",
    "individual_text": "Individual section", "plan_changes": "Plan changes",
    "safety_plan": "Safety plan", "clone_review": "Similarity review (resolves the flag)",
}
SIGNATURE_WORDS = ("signature", "signed", "sign")


def chain(original_document_id: int, patient_id: int) -> list[Addendum]:
    return list(db.session.scalars(select(Addendum).where(
        Addendum.original_document_id == original_document_id,
        Addendum.patient_id == patient_id).order_by(Addendum.position)))


def _original(document_id: int, patient_id: int) -> tuple[ArchivedDocument, str]:
    doc = db.session.get(ArchivedDocument, document_id)
    if doc is None:
        raise NotFound("There is no archived document with that number.")
    if doc.kind == "addendum":
        raise Invalid("An addendum corrects the original document, not another addendum: "
                      "open the original and add to its chain.")
    target = TARGET_OF_KIND.get(doc.kind)
    if target is None:
        raise Invalid(f"A {doc.kind.replace('_', ' ')} cannot take addenda.")
    if not any(link.patient_id == patient_id for link in doc.patients):
        raise NotFound("That patient is not on this document.")
    return doc, target


def current_values(doc: ArchivedDocument, target: str, patient_id: int) -> dict:
    """The facts as they stand: the original's, with every addendum in the chain applied."""
    values: dict = {}
    if target == "roster":
        session = db.session.scalar(select(GroupSession).where(GroupSession.document_id == doc.id))
        entry = db.session.scalar(select(AttendanceEntry).where(
            AttendanceEntry.session_id == session.id, AttendanceEntry.patient_id == patient_id))
        tz = session.cohort.program.tz
        values = {"status": entry.status, "arrival": fmt_local(entry.arrival, tz, "%H:%M"),
                  "departure": fmt_local(entry.departure, tz, "%H:%M")}
    elif target == "note":
        note = db.session.scalar(select(EncounterNote).where(EncounterNote.document_id == doc.id))
        values = {k: getattr(note, k) or "" for k in ("objective_key", *NOTE_CHOICES, *NOTE_TEXTS)}
    else:
        plan = db.session.scalar(select(TreatmentPlan).where(TreatmentPlan.document_id == doc.id))
        for o in plan.objectives:
            values[f"objective:{o['key']}"] = o["text"]
            values[f"target_date:{o['key']}"] = o["target_date"]
    for a in chain(doc.id, patient_id):
        values.update(a.fields)
    return values


def _check_fields(target: str, fields: dict, doc: ArchivedDocument, patient_id: int,
                  before: dict) -> dict:
    if not fields:
        raise Invalid("Say what to correct: at least one field.")
    for key in fields:
        if any(w in key.lower() for w in SIGNATURE_WORDS) and key != "clone_review":
            raise Invalid("An addendum cannot add or change a signature: a missing signature "
                          "stays missing (the day stays unbillable).", field=key)
    out = {}
    if target == "roster":
        unknown = set(fields) - {"status", "arrival", "departure"}
        if unknown:
            raise Invalid(f"A roster addendum corrects status, arrival or departure only, not "
                          f"{', '.join(sorted(unknown))}.")
        session = db.session.scalar(select(GroupSession).where(GroupSession.document_id == doc.id))
        entry = db.session.scalar(select(AttendanceEntry).where(
            AttendanceEntry.session_id == session.id, AttendanceEntry.patient_id == patient_id))
        status = fields.get("status", before["status"])
        if status not in ROSTER_STATUSES:
            raise Invalid(f"Unknown attendance status \u201c{str(status)[:30]}\u201d.", field="status")
        if status in ("absent", "cancelled") and entry.is_signed:
            raise Conflict("This patient signed the roster; an addendum cannot mark them absent.")
        tz = session.cohort.program.tz
        for key in ("arrival", "departure"):
            if key in fields and fields[key]:
                try:
                    at = local_to_utc(session.dos, parse_clock(fields[key], FIELD_LABELS[key]), tz)
                except TimeInputError as exc:
                    raise Invalid(str(exc), field=key) from exc
                if not session.actual_start <= at <= session.actual_end:
                    raise Invalid(f"{FIELD_LABELS[key]} must fall within the session "
                                  f"({fmt_local(session.actual_start, tz)}\u2013"
                                  f"{fmt_local(session.actual_end, tz)}).", field=key)
                out[key] = fmt_local(at, tz, "%H:%M")
            elif key in fields:
                out[key] = ""
        if "status" in fields:
            out["status"] = status
        if status == "late" and not (out.get("arrival") or before.get("arrival")):
            raise Invalid("A late arrival needs the arrival time.", field="arrival")
        if status == "left_early" and not (out.get("departure") or before.get("departure")):
            raise Invalid("An early departure needs the departure time.", field="departure")
    elif target == "note":
        allowed = {"objective_key", *NOTE_CHOICES, *NOTE_TEXTS}
        unknown = set(fields) - allowed
        if unknown:
            raise Invalid(f"A note addendum cannot correct {', '.join(sorted(unknown))}.")
        note = db.session.scalar(select(EncounterNote).where(EncounterNote.document_id == doc.id))
        for key, value in fields.items():
            if key in NOTE_CHOICES:
                if value not in NOTE_CHOICES[key]:
                    raise Invalid(f"{FIELD_LABELS[key]}: not one of the choices.", field=key)
                out[key] = value
            elif key == "objective_key":
                if value not in {o["key"] for o in note.plan.objectives}:
                    raise Invalid("Objective: choose an objective of the treatment plan.",
                                  field=key)
                out[key] = value
            else:
                out[key] = clean_text(value, FIELD_LABELS[key])
        risk = out.get("risk", before.get("risk"))
        if risk and rules.risk_needs_safety_plan(risk) and not out.get(
                "safety_plan", before.get("safety_plan")):
            raise Invalid("Safety plan: a risk level of ideation or above needs a safety-plan "
                          "entry.", field="safety_plan")
        if "clone_review" in out and len(out["clone_review"]) < 15:
            raise Invalid("Similarity review: say in a sentence why the section is this "
                          "patient's own (at least 15 characters).", field="clone_review")
        text = "\n".join(str(v) for k, v in out.items() if k in NOTE_TEXTS)
        session = note.session
        others = {e.patient_id: [e.patient.legal_first, e.patient.legal_last,
                                 e.patient.preferred_first or ""]
                  for e in session.entries if e.patient_id != patient_id}
        if text and rules.names_mentioned(text, others):
            raise Invalid("The correction names another attendee of the group; one patient's "
                          "note never names another.", field="individual_text")
    else:
        for key, value in fields.items():
            kind, _, okey = key.partition(":")
            if kind not in ("objective", "target_date") or key not in before:
                raise Invalid(f"A plan addendum corrects an objective's text or target date "
                              f"(not \u201c{key[:40]}\u201d). Change goals or objectives "
                              "themselves with a plan review.")
            if kind == "target_date":
                from datetime import date as _date
                try:
                    out[key] = _date.fromisoformat(str(value).strip()).isoformat()
                except ValueError:
                    raise Invalid("Target date: use YYYY-MM-DD.", field=key) from None
            else:
                out[key] = clean_text(value, f"Objective {okey}", max_chars=4000)
                if not out[key]:
                    raise Invalid(f"Objective {okey}: the corrected text is empty.", field=key)
    changed = {k: v for k, v in out.items() if str(before.get(k, "")) != str(v)}
    if not changed:
        raise Invalid("Nothing differs from the record as it stands; nothing to correct.")
    return changed


def add_addendum(original_document_id: int, patient_id: int, *, based_on: int | None,
                 author: User, reason: str | None, fields: dict,
                 now: datetime | None = None) -> Addendum:
    """Archive an addendum to the original document for one patient.

    ``based_on`` is the id of the chain head the author saw (None for the first addendum).
    Raises NotFound; Invalid (addendum to an addendum, bad field, a signature, no reason,
    nothing changed); Conflict (the chain moved on: the original already has a newer
    addendum than ``based_on``)."""
    doc, target = _original(original_document_id, patient_id)
    reason = clean_text(reason, "Reason", max_chars=4000)
    if len(reason) < 10:
        raise Invalid("Reason: say why the record is corrected (at least 10 characters).",
                      field="reason")
    existing = chain(doc.id, patient_id)
    head = existing[-1] if existing else None
    if (head.id if head else None) != based_on:
        which = f"addendum {head.position}" if head else "the original"
        raise Conflict(f"This record was corrected since you opened it: the chain now ends "
                       f"with {which}. Addenda form one line; reopen it and correct the latest.")
    before = current_values(doc, target, patient_id)
    changed = _check_fields(target, dict(fields), doc, patient_id, before)
    author = db.session.get(User, author.id)
    patient = db.session.get(Patient, patient_id)
    from portal.program import current_program
    program = current_program()
    tz = program.tz
    created = now or now_utc()
    position = (head.position + 1) if head else 1
    record = {
        "kind": "addendum", "target_kind": target, "target_label": TARGET_LABEL[target],
        "program": {"name": program.name, "billing_npi": program.billing_npi,
                    "time_zone": program.time_zone},
        "position": position,
        "original": {"document_id": str(doc.id), "entry_seq": doc.entry_seq,
                     "doc_sha256": doc.doc_sha256, "title": doc.title, "kind": doc.kind},
        "supersedes": ({"addendum_id": str(head.id), "position": head.position,
                        "entry_seq": head.document.entry_seq} if head else None),
        "dos": doc.dos.isoformat() if doc.dos else None,
        "patient": {"id": str(patient.id), "mrn": patient.mrn, "name": patient.full_name},
        "author": {"user_id": str(author.id), "name": author.name,
                   "credential": author.credential or "", "npi": author.npi or ""},
        "reason": reason,
        "fields": [{"field": k, "label": _label(k), "before": _shown(k, before.get(k, "")),
                    "after": _shown(k, v)} for k, v in sorted(changed.items())],
        "corrected": changed,
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "created_at_local": fmt_local(created, tz, "%b %-d, %Y %-I:%M %p %Z"),
        "attestation": ADDENDUM_ATTESTATION,
    }
    db.session.rollback()
    try:
        pdf = render_addendum_pdf(record, seconds=current_app.config["PORTAL_RENDER_SECONDS"])
    except RenderTimeout as exc:
        raise Invalid(f"{exc} Shorten the correction.") from exc
    try:
        again = chain(original_document_id, patient_id)
        if (again[-1].id if again else None) != based_on:
            raise Conflict("This record was corrected while you were writing; reopen it and "
                           "correct the latest addendum.")
        line = {"patient_id": str(patient_id), "mrn": patient.mrn, "name": patient.full_name,
                "original_entry_seq": str(doc.entry_seq), "position": str(position),
                "corrected": json.dumps(changed, sort_keys=True, ensure_ascii=False),
                "reason": reason}
        new_doc = archive_document(
            kind="addendum", title=f"Addendum {position} to {doc.title}", dos=doc.dos,
            subject={"original_entry_seq": str(doc.entry_seq), "patient_id": str(patient_id),
                     "position": str(position)},
            actor=f"user:{author.id}", record=record, pdf=pdf, occurred_at=created,
            patient_lines=[PatientLine(patient_id, line)])
        addendum = Addendum(target_kind=target, original_document_id=doc.id,
                            patient_id=patient_id, position=position,
                            supersedes_id=based_on, author_id=author.id, reason=reason,
                            fields_json=json.dumps(changed, sort_keys=True, ensure_ascii=False),
                            created_at=created, document_id=new_doc.id)
        db.session.add(addendum)
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict("Another addendum to this record was saved at the same moment; reopen "
                       "it and correct the latest.") from exc
    except Exception:
        db.session.rollback()
        raise
    checkpoint_if_due()
    return addendum


def _label(key: str) -> str:
    kind, _, okey = key.partition(":")
    if okey:
        return f"{'Objective' if kind == 'objective' else 'Target date'} {okey}"
    return FIELD_LABELS.get(key, key)


def _shown(key: str, value) -> str:
    if key == "status" and value in STATUS_LABEL:
        return STATUS_LABEL[value]
    if key in NOTE_CHOICES and value in NOTE_CHOICES[key]:
        return NOTE_CHOICES[key][value]
    return str(value) if value not in (None, "") else "—"


def roster_minutes_after(entry: AttendanceEntry, session: GroupSession, values: dict) -> int:
    """Minutes attended once the roster addenda's ``values`` apply (for pages)."""
    class _Row:
        pass
    row = _Row()
    tz = session.cohort.program.tz
    row.status = values.get("status", entry.status)
    row.arrival = (local_to_utc(session.dos, parse_clock(values["arrival"], "arrival"), tz)
                   if values.get("arrival") else None)
    row.departure = (local_to_utc(session.dos, parse_clock(values["departure"], "departure"), tz)
                     if values.get("departure") else None)
    return minutes_attended(row, session)
