"""The group attendance roster as plain data (what the archive commits to) and as a PDF."""
from __future__ import annotations

from datetime import datetime

from portal.clock import fmt_local, minutes_between
from portal.documents.render import render_pdf
from portal.models import GroupSession, User
from portal.models.attendance import ATTENDED
from portal.signatures import print_copy

STATUS_LABEL = {
    "expected": "Not marked", "present": "Present", "late": "Late arrival",
    "left_early": "Left early", "absent": "No-show", "cancelled": "Cancelled",
}
MODALITY_LABEL = {"in_person": "In person", "video": "Telehealth (video)",
                  "audio_only": "Telehealth (audio-only)"}

ATTESTATION_TEXT = (
    "I attest that I facilitated this group session, that the attendance, arrival and departure "
    "times and minutes recorded above are accurate, and that each signature was made by the "
    "patient named beside it in my presence."
)


def attended_window(entry, session: GroupSession) -> tuple[datetime, datetime] | None:
    """The instants (UTC) a patient was in the group: their arrival/departure clipped to the
    session's actual start/end. None when they did not attend or times are missing."""
    if entry.status not in ATTENDED or not (session.actual_start and session.actual_end):
        return None
    start = max(entry.arrival or session.actual_start, session.actual_start)
    end = min(entry.departure or session.actual_end, session.actual_end)
    return (start, end) if end > start else (start, start)


def minutes_attended(entry, session: GroupSession) -> int:
    """Whole minutes of real elapsed time attended (0 for absences)."""
    window = attended_window(entry, session)
    return minutes_between(*window) if window else 0


METHOD_LABEL = {
    "drawn": "Signature drawn on the tablet",
    "typed_name_password": ("Signed electronically by typed name and re-entry of the "
                            "facilitator's own portal password (no drawn signature)"),
}


def roster_record(session: GroupSession, facilitator: User, *, attestation_name: str,
                  facilitator_signature_sha256: str | None, closed_at: datetime,
                  method: str = "drawn") -> dict:
    """The roster's structured record: JSON-ready, ids/times as strings, times in UTC (ISO 8601,
    "Z") plus local display strings. This dict is what the archive entry's record hash covers."""
    program = session.cohort.program
    tz = program.tz

    def iso(dt):
        return dt.astimezone(tz).isoformat() if dt else None

    # What a one-patient extract must state about the session travels in every line too, so
    # that the line's salted commitment in the chain entry covers it (portal/documents/views.py
    # renders an extract from the verified line alone).
    session_facts = {
        "dos": session.dos.isoformat(), "cohort": session.cohort.name,
        "modality": session.modality, "modality_label": MODALITY_LABEL[session.modality],
        "place_of_service": session.place_of_service,
        "facilitator_name": facilitator.name, "facilitator_credential": facilitator.credential or "",
        "facilitator_npi": facilitator.npi or "",
    }
    lines = []
    for e in sorted(session.entries, key=lambda e: (e.patient.legal_last.casefold(),
                                                    e.patient.legal_first.casefold(),
                                                    e.patient.mrn)):
        p = e.patient
        window = attended_window(e, session) or (None, None)
        lines.append({
            "patient_id": str(p.id), "mrn": p.mrn, "name": p.full_name,
            "status": e.status, "status_label": STATUS_LABEL[e.status],
            "arrival": iso(window[0]), "departure": iso(window[1]),
            "arrival_local": fmt_local(window[0], tz), "departure_local": fmt_local(window[1], tz),
            "minutes_attended": str(minutes_attended(e, session)),
            "signed_at": iso(e.signed_at), "signed_at_local": fmt_local(e.signed_at, tz),
            "signature_sha256": e.signature_sha256,
            **session_facts,
        })
    return {
        "kind": "roster",
        "program": {"name": program.name, "billing_npi": program.billing_npi,
                    "time_zone": program.time_zone},
        "session_id": str(session.id),
        "cohort": session.cohort.name,
        "dos": session.dos.isoformat(),
        "dos_label": session.dos.strftime("%A, %B %-d, %Y"),
        "scheduled": [iso(session.scheduled_start), iso(session.scheduled_end)],
        "scheduled_local": [fmt_local(session.scheduled_start, tz), fmt_local(session.scheduled_end, tz)],
        "actual": [iso(session.actual_start), iso(session.actual_end)],
        "actual_local": [fmt_local(session.actual_start, tz), fmt_local(session.actual_end, tz)],
        "actual_minutes": str(minutes_between(session.actual_start, session.actual_end))
        if session.actual_start and session.actual_end else None,
        "break_minutes": str(session.break_minutes or 0),
        "modality": session.modality, "modality_label": MODALITY_LABEL[session.modality],
        "place_of_service": session.place_of_service,
        "topic": session.topic or "",
        "facilitator": {"id": str(facilitator.id), "name": facilitator.name,
                        "credential": facilitator.credential or "", "npi": facilitator.npi or ""},
        "attestation": {"text": ATTESTATION_TEXT, "typed_name": attestation_name,
                        "signature_sha256": facilitator_signature_sha256,
                        "method": method, "method_label": METHOD_LABEL[method]},
        "closed_at": closed_at.isoformat().replace("+00:00", "Z"),
        "closed_at_local": fmt_local(closed_at, tz, "%b %-d, %Y %-I:%M %p %Z"),
        "lines": lines,
    }


def render_roster_pdf(record: dict, signatures: dict[str, bytes]) -> bytes:
    """PDF bytes of the roster from its ``record`` and the signature PNGs keyed by SHA-256
    (embedded as cropped print copies; the record keeps the originals' hashes)."""
    printable = {sha: print_copy(png) for sha, png in signatures.items()}
    return render_pdf("documents/roster.html", {"r": record, "signatures": printable})
