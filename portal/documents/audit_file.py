"""Pages of a patient's audit file: front matter (cover, 42 CFR 2.32 notice, consent, index),
one patient's extract of a multi-patient document, and the verification page; and the pypdf
steps that finish an extract (the original entry's stamp and QR, the committed line attached).

Pure rendering from plain data: the service (``portal.audit_files.service``) decides what is
disclosed. Layout runs in the forkserver render worker (``render_pdf_limited``), so a long
audit file never grows the job's own process with WeasyPrint's caches."""
from __future__ import annotations

import io
import re

from pypdf import PdfReader, PdfWriter

from audit_archive.stamp import StampInfo, stamp_pdf
from portal.documents.render import render_pdf_limited

# A page of an audit file lays out in well under a second; a minute means something is wrong.
LAYOUT_SECONDS = 120.0

KIND_LABEL = {
    "roster": "Group attendance roster", "encounter_note": "Encounter note",
    "treatment_plan": "Treatment plan", "addendum": "Addendum", "authorization": "Authorization",
    "reconciliation": "Billing reconciliation", "claim_export": "Claim export (837P)",
    "no_show_policy": "No-show policy", "no_show_acknowledgment": "No-show policy acknowledgment",
    "no_show_letter": "Attendance letter", "audit_file": "Audit file",
}

# The stamp line as ``audit_archive.stamp`` prints it on every page of an archived document.
_STAMP_LINE = re.compile(r"(?P<label>[^\n]*?) \| audit #(?P<seq>\d+) \| prev ")


def kind_label(kind: str) -> str:
    return KIND_LABEL.get(kind, kind.replace("_", " ").capitalize())


def stamp_label(original_pdf: bytes, seq: int) -> str | None:
    """The program label printed in the original document's stamp (so that an extract carries
    the same stamp information as the original's pages); None when it cannot be read."""
    try:
        text = PdfReader(io.BytesIO(original_pdf)).pages[0].extract_text() or ""
    except Exception:  # noqa: BLE001 - a PDF pypdf cannot read: the caller falls back
        return None
    for m in _STAMP_LINE.finditer(text):
        if int(m.group("seq")) == seq:
            return m.group("label").strip().splitlines()[-1].strip()
    return None


def original_stamp(entry: dict, *, label: str, verify_base_url: str) -> StampInfo:
    """The stamp the archive put on entry ``entry``'s pages (``audit_archive.ledger.append``)."""
    ck = entry.get("checkpoint")
    return StampInfo(label=label, seq=entry["seq"], prev_hash=entry.get("prev_hash"),
                     record_sha256=entry["record_sha256"],
                     checkpoint=(ck["size"], ck["root"]) if ck else None,
                     verify_url=f"{verify_base_url.rstrip('/')}/verify/{entry['seq']}")


def finish_extract(pdf: bytes, stamp: StampInfo, line_canonical: bytes, line_name: str) -> bytes:
    """Stamp the extract's pages with the original entry's stamp and QR, and attach the
    committed line's exact canonical bytes, uncompressed, as an embedded file: the standalone
    verifier finds it there without a PDF library and checks it against the commitment."""
    stamped = stamp_pdf(pdf, stamp)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(stamped)))
    writer.add_attachment(line_name, line_canonical)  # pypdf writes it unfiltered
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def render_extract(context: dict) -> bytes:
    return render_pdf_limited("documents/audit_extract.html", context, seconds=LAYOUT_SECONDS)


def render_front(context: dict) -> bytes:
    return render_pdf_limited("documents/audit_front.html", context, seconds=LAYOUT_SECONDS)


def render_verification(context: dict) -> bytes:
    return render_pdf_limited("documents/audit_verification.html", context, seconds=LAYOUT_SECONDS)


def render_accounting(context: dict) -> bytes:
    return render_pdf_limited("documents/accounting.html", context, seconds=LAYOUT_SECONDS)


def page_count(pdf_or_path) -> int:
    return len(PdfReader(pdf_or_path).pages)
