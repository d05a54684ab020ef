"""Build a patient's audit file and record it as a disclosure (issue 14).

The audit file is one zip: the standalone-verifiable export (``audit_archive.export``: entries,
inclusion proofs, checkpoint with the witnesses' cosignatures, public key, whole single-patient
documents, this patient's committed lines of group documents, the bundled verifier), plus a
one-patient extract PDF of every group document (the line attached, checked by the verifier)
and the binder ``audit-file.pdf`` to read: cover, 42 CFR 2.32 notice, consent or its scope,
index, every document in chain order, verification page.

What goes in is chosen from the chain (``_chosen_from_chain``), never from the index tables.
Documents are rendered and merged one at a time through files in a scratch folder, so memory
holds one document's layout at a time. Bad input writes nothing and records nothing.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

from flask import current_app
from pypdf import PdfWriter
from sqlalchemy import select

from audit_archive.canonical import line_bytes
from audit_archive.commitments import commit_line_bytes
from audit_archive.entry import chain_hash
from audit_archive.export import ExportError as ArchiveExportError
from audit_archive.export import export
from audit_archive.note import open_checkpoint, parse_verifier
from audit_archive.schema import audit_entries
from audit_archive.ledger import as_bytes
from portal.audit_files import rules
from portal.clock import fmt_local, local_today, now_utc
from portal.documents import audit_file as pages
from portal.documents.extract import NOT_COVERED, extract_facts
from portal.documents.roster import MODALITY_LABEL
from portal.extensions import db
from portal.models import (AccessLogEntry, ArchivedDocument, AttendanceEntry, Disclosure,
                           GroupSession, Patient, User)
from portal.part2 import REDISCLOSURE_NOTICE
from portal.program import current_program
from portal.services.archive_index import VERIFY_HINT
from portal.services.archiving import archive_store
from portal.services.checkpoints import checkpoint_now, public_key
from portal.services.exports import ExportError, _checkpoint_id, _chosen_from_chain
from portal.services.witnesses import cosigned_note
from portal.signatures import print_copy

Report = Callable[[int, str], None]


class AuditFileError(ExportError):
    """The audit file cannot be made as asked; nothing was written or recorded."""


@dataclass(frozen=True)
class AuditFileResult:
    path: Path
    filename: str
    entries: int
    whole: int
    extracts: int
    pages: int
    disclosure_id: int
    public_key: str
    witness_keys: tuple[str, ...]


def _no_report(_pct: int, _stage: str) -> None:
    pass


def _patient(patient) -> Patient:
    if isinstance(patient, Patient):
        return patient
    mrn = (patient or "").strip() if isinstance(patient, str) else patient
    found = db.session.scalar(select(Patient).where(Patient.mrn == mrn)) if mrn else None
    if found is None:
        raise AuditFileError(f"No patient has MRN {patient!r}.")
    return found


def _entries(seqs: list[int]) -> dict[int, tuple[bytes, dict]]:
    from audit_archive.entry import parse_entry

    rows = db.session.execute(select(audit_entries.c.seq, audit_entries.c.entry_bytes)
                              .where(audit_entries.c.seq.in_(seqs))).all()
    return {r.seq: (as_bytes(r.entry_bytes), parse_entry(as_bytes(r.entry_bytes))) for r in rows}


def _witness_keys() -> tuple[str, ...]:
    from portal.services.witnesses import WitnessConfigError, configured

    try:
        return tuple(w.key.text() for w in configured()[0])
    except WitnessConfigError:
        return ()


def _cosignatures(note: str) -> list[dict]:
    """Witness cosignature lines of a cosigned checkpoint note (every signature line after the
    log's own): name and key id, for the verification page."""
    sig_lines = [ln for ln in note.splitlines() if ln.startswith("\u2014 ")]
    out = []
    for ln in sig_lines[1:]:
        parts = ln[2:].split(" ")
        if len(parts) == 2:
            import base64

            try:
                key_id = base64.b64decode(parts[1])[:4].hex()
            except ValueError:
                key_id = "?"
            out.append({"name": parts[0], "key_id": key_id})
    return out


def _signature_png(line: dict, png: bytes | None, seq: int) -> tuple[bytes | None, str | None]:
    """The patient's signature image for the extract, checked against the hash in the
    committed line; a stored image that differs refuses the whole audit file."""
    if "signature_sha256" not in line:
        return (png, f"signature image {NOT_COVERED}") if png else (None, None)
    want = line["signature_sha256"]
    if not want:
        return None, None
    if png is None:
        return None, "The signature image is not in the portal's records; the committed line records its SHA-256."
    if hashlib.sha256(png).hexdigest() != want:
        raise AuditFileError(f"The signature image on record does not match the signature hash in the "
                             f"archived line of chain entry #{seq}: the portal's records disagree with "
                             f"the chain. {VERIFY_HINT}")
    return print_copy(png), None


def _extract_context(*, seq: int, raw: bytes, entry: dict, line: dict, salt: bytes, patient: Patient,
                     program, k: int) -> tuple[dict, bytes, str]:
    canonical = line_bytes(line)
    commitment = commit_line_bytes(canonical, salt)
    doc = db.session.scalar(select(ArchivedDocument).where(ArchivedDocument.entry_seq == seq))
    session = (db.session.scalar(select(GroupSession).where(GroupSession.document_id == doc.id))
               if doc is not None else None)
    records = {"patient": patient.full_name, "mrn": patient.mrn, "dos": doc.dos if doc else None}
    session_rows: list[tuple[str, str]] = []
    attestation = None
    png = None
    if session is not None:
        tz = program.tz
        records.update(cohort=session.cohort.name, modality=MODALITY_LABEL[session.modality],
                       place_of_service=session.place_of_service,
                       facilitator=session.facilitator.name_with_credential,
                       facilitator_npi=session.facilitator.npi)
        if session.actual_start and session.actual_end:
            session_rows.append(("Session time", f"{fmt_local(session.actual_start, tz)} – "
                                                 f"{fmt_local(session.actual_end, tz)}"))
        if session.topic:
            session_rows.append(("Topic", session.topic))
        png = db.session.scalar(select(AttendanceEntry.signature_png).where(
            AttendanceEntry.session_id == session.id, AttendanceEntry.patient_id == patient.id))
        fac_png = db.session.scalar(select(GroupSession.facilitator_signature_png)
                                    .where(GroupSession.id == session.id))
        if fac_png is not None and session.facilitator_signature_sha256 and \
                hashlib.sha256(fac_png).hexdigest() != session.facilitator_signature_sha256:
            raise AuditFileError(f"The facilitator signature of the roster of chain entry #{seq} does not "
                                 f"match its recorded hash. {VERIFY_HINT}")
        attestation = {
            "text": session.attestation or "—",
            "who": session.facilitator.name_with_credential
            + (f" · NPI {session.facilitator.npi}" if session.facilitator.npi else ""),
            "closed_at": fmt_local(session.closed_at, tz, "%b %-d, %Y %-I:%M %p %Z") if session.closed_at else "—",
            "signature": print_copy(fac_png) if fac_png else None,
        }
    signature, signature_note = _signature_png(line, png, seq)
    line_name = f"line-{seq:08d}-{k}.json"
    context = {
        "seq": seq, "mrn": line.get("mrn") or patient.mrn, "kind_label": pages.kind_label(entry["kind"]),
        "program_name": program.name, "entry": entry, "entry_hash": chain_hash(raw),
        "facts": extract_facts(line, entry, records=records), "session": session_rows,
        "not_covered": NOT_COVERED, "signature": signature, "signature_note": signature_note,
        "attestation": attestation, "line_canonical": canonical.decode("utf-8"), "salt": salt.hex(),
        "commitment": commitment, "line_name": line_name, "notice": REDISCLOSURE_NOTICE,
    }
    return context, canonical, line_name


def build_audit_file(*, patient, first: date, last: date, requester: User | None, recipient: str,
                     purpose: str, legal_basis: str, consent_scope: str | None, out_dir: Path,
                     report: Report | None = None) -> AuditFileResult:
    """Write ``patient``'s audit file for DOS ``first``..``last`` into ``out_dir`` and record
    the disclosure. ``patient``: a Patient or an MRN. ``report(percent, stage)`` is called as
    the work goes. Raises ``AuditFileError`` (bad input, nothing archived in range, the index
    disagreeing with the chain), and what signing a checkpoint raises; in every case nothing is
    written and no disclosure is recorded."""
    report = report or _no_report
    program = current_program()
    recipient, purpose = (recipient or "").strip(), (purpose or "").strip()
    basis = rules.legal_basis_text(legal_basis or "")
    problems = rules.check_request(first, last, today=local_today(program.tz), recipient=recipient,
                                   purpose=purpose, legal_basis=basis)
    if problems:
        raise AuditFileError(" ".join(problems))
    patient = _patient(patient)
    report(2, "Choosing the documents from the archive chain")
    try:
        seqs, whole, chosen = _chosen_from_chain(patient, patient.mrn, first, last)
    except ArchiveExportError as exc:
        raise AuditFileError(str(exc)) from None
    entries = _entries(seqs)
    facts = {"id": patient.id, "mrn": patient.mrn, "name": patient.full_name,
             "dob": patient.dob.isoformat()}
    requester_name = (f"{requester.name} ({requester.role})" if requester is not None
                      else "command line (flask audit file)")
    requester_id = requester.id if requester is not None else None
    db.session.rollback()
    report(4, "Signing a checkpoint over the archive")
    signed = checkpoint_now()
    key = public_key()
    note = cosigned_note(_checkpoint_id(signed), signed.note)
    ck = open_checkpoint(signed.note, parse_verifier(key))
    db.session.rollback()

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp_at = now_utc()
    filename = f"audit-file-MRN{facts['mrn']}-{first}-to-{last}-{stamp_at:%Y%m%dT%H%M%SZ}.zip"
    scratch = Path(tempfile.mkdtemp(prefix=".audit-file-", dir=out_dir))
    try:
        rows, extracts = [], {}
        base_url = current_app.config["PORTAL_BASE_URL"]
        store = archive_store()
        for i, seq in enumerate(seqs):
            raw, entry = entries[seq]
            dos = (entry.get("subject") or {}).get("dos")
            if seq in whole:
                path = store.path_for(entry["doc"]["sha256"])
                if not path.is_file():
                    raise AuditFileError(f"The archived file of chain entry #{seq} is missing. {VERIFY_HINT}")
                rows.append({"seq": seq, "dos": dos, "label": pages.kind_label(entry["kind"]),
                             "extract": False, "path": path, "pages": pages.page_count(path)})
            else:
                original = store.get(entry["doc"]["sha256"])
                label = pages.stamp_label(original, seq) or program.name
                original_pages = pages.page_count(_bytes_io(original))
                del original
                stamp = pages.original_stamp(entry, label=label, verify_base_url=base_url)
                for k, (line, salt) in enumerate(chosen[seq]):
                    context, canonical, line_name = _extract_context(
                        seq=seq, raw=raw, entry=entry, line=line, salt=salt, patient=patient,
                        program=program, k=k)
                    context["original_pages"] = original_pages
                    db.session.rollback()  # plain data in hand: no read transaction over layout
                    pdf = pages.finish_extract(pages.render_extract(context), stamp, canonical, line_name)
                    path = scratch / f"extract-{seq:08d}-{k}.pdf"
                    path.write_bytes(pdf)
                    extracts.setdefault(seq, []).append((k, path))
                    rows.append({"seq": seq, "dos": line.get("dos") or dos,
                                 "label": pages.kind_label(entry["kind"]), "extract": True,
                                 "path": path, "pages": pages.page_count(path)})
                    del pdf
            report(5 + int(80 * (i + 1) / len(seqs)), f"Document {i + 1} of {len(seqs)}")

        report(86, "Writing the cover, notice, consent and index")
        front_ctx = {
            "program": {"name": program.name, "billing_npi": program.billing_npi, "address": program.address},
            "patient": facts, "first": first, "last": last, "requester": requester_name,
            "recipient": recipient, "purpose": purpose, "legal_basis": basis,
            "consent_scope": (consent_scope or "").strip(),
            "scope_explanation": rules.scope_explanation(legal_basis or "", consent_scope),
            "prepared_at": fmt_local(stamp_at, program.tz, "%b %-d, %Y %-I:%M %p %Z"),
            "notice": REDISCLOSURE_NOTICE, "rows": rows,
            "n_whole": sum(1 for r in rows if not r["extract"]),
            "n_extracts": sum(1 for r in rows if r["extract"]),
        }
        front, front_pages = _front_matter(front_ctx)
        front_path = scratch / "front.pdf"
        front_path.write_bytes(front)
        del front
        report(90, "Writing the verification page")
        verify_ctx = {
            "mrn": facts["mrn"], "origin": ck.origin, "size": ck.size, "root": ck.root.hex(),
            "public_key": key, "n_entries": len(seqs), "seqs": ", ".join(f"#{s}" for s in seqs),
            "cosignatures": _cosignatures(note), "notice": REDISCLOSURE_NOTICE,
            "command": ("PYTHONPATH=AUDITFILE.zip/verifier python3 -P -m audit_archive verify "
                        "AUDITFILE.zip --key 'KEY'"
                        + "".join(f" --witness-key '{w}'" for w in _witness_keys())),
        }
        verification_path = scratch / "verification.pdf"
        verification_path.write_bytes(pages.render_verification(verify_ctx))

        report(93, "Binding the documents")
        binder = scratch / "audit-file.pdf"
        total_pages = _bind(binder, [front_path] + [r["path"] for r in rows] + [verification_path])

        report(96, "Writing the audit file with its proofs and verifier")
        notice = (f"{REDISCLOSURE_NOTICE}\n\nDisclosed: archived records of patient MRN {facts['mrn']}, "
                  f"dates of service {first} to {last}, to {recipient}, for {purpose} "
                  f"(legal basis: {basis}); requested by {requester_name}.\n")
        out = out_dir / filename
        try:
            export(db.session.connection(), store, out, seqs, include_documents=whole,
                   line_disclosures=chosen, public_key_text=key, checkpoint=note, notice=notice,
                   extracts=extracts, binder=binder)
        except ArchiveExportError as exc:
            raise AuditFileError(str(exc)) from None
        finally:
            db.session.rollback()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    try:
        digest = hashlib.sha256()
        with open(out, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        n_extracts = sum(len(v) for v in extracts.values())
        description = rules.describe(len(whole), n_extracts, first, last,
                                     [pages.kind_label(entries[s][1]["kind"]) for s in seqs])
        disclosure = Disclosure(
            patient_id=facts["id"], disclosed_at=stamp_at, recipient=recipient[:200],
            purpose=purpose[:300], legal_basis=basis[:300], consent_scope=(consent_scope or "").strip() or None,
            dos_from=first, dos_to=last, description=description, documents=len(seqs),
            requester_id=requester_id, requester_name=requester_name[:200],
            file_sha256=digest.hexdigest())
        db.session.add(disclosure)
        db.session.add(AccessLogEntry(
            user_id=requester_id, role=requester.role if requester is not None else None,
            method="EXPORT", endpoint="audit_files.build",
            path=f"audit file MRN {facts['mrn']} DOS {first}..{last} to {recipient}"[:500],
            patient_id=facts["id"], status_code=200, remote_addr=None))
        db.session.commit()
    except Exception:
        db.session.rollback()
        out.unlink(missing_ok=True)  # an audit file that is not recorded is not handed out
        raise
    report(100, "Done")
    return AuditFileResult(path=out, filename=filename, entries=len(seqs), whole=len(whole),
                           extracts=n_extracts, pages=total_pages, disclosure_id=disclosure.id,
                           public_key=key, witness_keys=_witness_keys())


def _bytes_io(data: bytes):
    import io

    return io.BytesIO(data)


def _front_matter(ctx: dict) -> tuple[bytes, int]:
    """Cover, notice, consent and index, with the index's binder page numbers right: they
    depend on how many pages the front matter itself takes, so lay out until it is stable."""
    front_pages = 3
    for _ in range(4):
        start = front_pages + 1
        for r in ctx["rows"]:
            r["start"] = start
            start += r["pages"]
        ctx["verification_page"] = start
        ctx["total_pages"] = start
        pdf = pages.render_front(ctx)
        n = pages.page_count(_bytes_io(pdf))
        if n == front_pages:
            return pdf, n
        front_pages = n
    return pdf, n


def _bind(out: Path, parts: list[Path]) -> int:
    """Merge ``parts`` into ``out`` in order; returns the page count."""
    writer = PdfWriter()
    for p in parts:
        writer.append(str(p), import_outline=False)
    with open(out, "wb") as f:
        writer.write(f)
    n = len(writer.pages)
    writer.close()
    return n


def disclosures_for(patient: Patient, since: date) -> list[Disclosure]:
    """The patient's disclosures recorded on or after ``since`` (UTC day), newest first."""
    from datetime import datetime, time, timezone

    start = datetime.combine(since, time(0), tzinfo=timezone.utc)
    return list(db.session.scalars(select(Disclosure).where(
        Disclosure.patient_id == patient.id, Disclosure.disclosed_at >= start)
        .order_by(Disclosure.disclosed_at.desc(), Disclosure.id.desc())))
