"""An authorization transition as plain data (what the archive commits to) and as a PDF: the
request packet when a request is submitted, the payer's decision (or the peer-to-peer / appeal
record) for later moves."""
from __future__ import annotations

from datetime import datetime

from portal.clock import fmt_local
from portal.documents.render import render_pdf
from portal.rules.authorizations import LEVELS, STATE_LABELS, document_title

WHEN = "%b %-d, %Y %-I:%M %p %Z"


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


def transition_record(auth, *, program, from_state: str, to_state: str, at: datetime,
                      actor, note: str, changes: dict) -> dict:
    """JSON-ready record of one transition. ``changes`` are the fields this move sets
    (number, dates, units, deadlines), already as strings."""
    tz = program.tz
    patient = auth.patient
    request = auth.request
    letters = [{"filename": lt.filename, "sha256": lt.original_sha256,
                "decrypted_sha256": lt.decrypted_sha256 or ""} for lt in auth.letters]
    return {
        "kind": "authorization",
        "title": document_title(to_state),
        "program": {"name": program.name, "billing_npi": program.billing_npi,
                    "time_zone": program.time_zone},
        "authorization_id": str(auth.id),
        "patient": {"id": str(patient.id), "mrn": patient.mrn, "name": patient.full_name,
                    "dob": patient.dob.isoformat(), "member_id": patient.member_id or ""},
        "payer": {"name": auth.payer.name, "key": auth.payer.rule_key},
        "from_state": from_state, "from_label": STATE_LABELS[from_state],
        "to_state": to_state, "to_label": STATE_LABELS[to_state],
        "at": _iso(at), "at_local": fmt_local(at, tz, WHEN),
        "actor": {"id": str(actor.id), "name": actor.name, "credential": actor.credential or ""},
        "note": note,
        "authorization": {
            "number": changes.get("number", auth.number or ""),
            "code": auth.hcpcs_code, "level": auth.level_of_care,
            "level_label": LEVELS.get(auth.level_of_care, ("", auth.level_of_care))[1],
            "asam_edition": auth.asam_edition,
            "start": changes.get("start", auth.start_date.isoformat()),
            "end": changes.get("end", auth.end_date.isoformat()),
            "units": changes.get("units", str(auth.units)),
            "units_per_week": changes.get("units_per_week",
                                          "" if auth.units_per_week is None else str(auth.units_per_week)),
            "request_kind": auth.request_kind,
            "prior": (f"{auth.prior.label} ({auth.prior.level_of_care}, "
                      f"{auth.prior.start_date.isoformat()}\u2013{auth.prior.end_date.isoformat()})"
                      if auth.prior else ""),
            "extends": auth.extends.label if auth.extends else "",
            "extension_reason": auth.extension_reason or "",
        },
        "deadlines": {k: v for k, v in changes.items() if k.endswith("_due")},
        "request": request,
        "letters": letters,
    }


def patient_line(record: dict) -> dict:
    """The one patient's line (the whole document concerns one patient)."""
    a = record["authorization"]
    return {"patient_id": record["patient"]["id"], "mrn": record["patient"]["mrn"],
            "authorization_id": record["authorization_id"], "to_state": record["to_state"],
            "at": record["at"], "number": a["number"], "code": a["code"], "level": a["level"],
            "start": a["start"], "end": a["end"], "units": a["units"]}


def render_authorization_pdf(record: dict) -> bytes:
    return render_pdf("documents/authorization.html", {"r": record})
