"""Encounter notes, treatment plans and addenda as PDFs, rendered from the plain records the
services build (what the archive entry's record hash covers). Renderers only: no database,
no Flask; layout runs in a child process with a time limit (``render_pdf_limited``)."""
from __future__ import annotations

from portal.documents.render import render_pdf_limited
from portal.signatures import print_copy

NOTE_ATTESTATION = (
    "I attest that I provided this service, that this note describes this patient's own "
    "participation, and that the times shown are those recorded on the closed roster."
)
#: A clinician other than the group's facilitator, signing with a documented reason.
NOTE_ATTESTATION_OTHER = (
    "I attest that I took part in this service as stated in the reason for signing, that this "
    "note describes this patient's own participation, and that the times shown are those "
    "recorded on the closed roster."
)
PLAN_ATTESTATION = (
    "This plan was developed with the patient. The signatures below were made on the dates "
    "shown, none before the plan was written."
)
ADDENDUM_ATTESTATION = (
    "This addendum corrects the original named above, which remains archived and unchanged. "
    "Readiness and billing use the latest addendum's facts."
)


def render_note_pdf(record: dict, *, seconds: float) -> bytes:
    return render_pdf_limited("documents/encounter_note.html", {"r": record}, seconds=seconds)


def render_plan_pdf(record: dict, signatures: dict[str, bytes], *, seconds: float) -> bytes:
    printable = {sha: print_copy(png) for sha, png in signatures.items()}
    return render_pdf_limited("documents/treatment_plan.html",
                              {"r": record, "signatures": printable}, seconds=seconds)


def render_addendum_pdf(record: dict, *, seconds: float) -> bytes:
    return render_pdf_limited("documents/addendum.html", {"r": record}, seconds=seconds)
