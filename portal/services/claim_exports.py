"""837P exports: build, refuse duplicates, keep the history, archive each file in the chain.

``export_837p`` is what the billing page and ``flask billing 837p`` both call, so the web and
the command line produce the same file. In one transaction it

1. derives the payer's ready lines for the DOS range (the same rules as the board);
2. refuses lines already sent in an earlier export that is neither voided nor rejected by its
   999, naming that export, unless this is an explicit replacement (claim frequency 7) or void
   (8) of it, which then carries each original claim's reference (REF*F8);
3. takes the next interchange control number (ISA13 = GS06 = ST02; serialized, gap-free);
4. builds the 837P, stores its exact bytes and SHA-256 with one row per patient/DOS line;
5. archives a PDF summary in the audit chain whose record holds the file's SHA-256, control
   numbers and totals (an auditor sees what was billed and when), with one salted line per
   patient; and writes the disclosure to the access log.

``import_999`` reads a 999 acknowledgment and marks the export accepted, partially accepted
or rejected, with the errors mapped to the claims they concern.
"""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import func, select, text as sql_text

from portal.clock import fmt_local, now_utc
from portal.documents.render import render_pdf
from portal.extensions import db
from portal.fact_loader import load_facts
from portal.models import AccessLogEntry, ClaimExport, ClaimExportLine, Payer as PayerRow, Program, User
from portal.rules.claim_lines import derive_claim_lines
from portal.rules.facts import STATUS_READY
from portal.rules.payer_rules import RuleBook
from portal.rules.x12_837p import (FREQUENCY_ORIGINAL, FREQUENCY_VOID, ControlNumbers, Receiver,
                                   Submitter, build_837p, claim_ids)
from portal.rules.x12_999 import Ack999, claim_errors, parse_999
from portal.services.archiving import PatientLine, archive_document
from portal.services.checkpoints import checkpoint_if_due
from portal.services.errors import Conflict, Invalid, NotFound

KIND = "claim_837p"
X12_ENDPOINT = "billing.x12_837p"
X12_CONTROL_LOCK = 0x837  # pg_advisory_xact_lock key serializing 837P control numbers


def next_interchange_number() -> int:
    """ISA13/GS06/ST02 for the next 837P: prior 837P disclosures in the access log + 1.

    Counting the log gives the strictly increasing, gap-free numbers clearinghouses use to
    spot duplicate interchanges. The count and the new log row are one transaction,
    serialized so two exports cannot get the same number: ``BEGIN IMMEDIATE`` on SQLite, a
    transaction-scoped advisory lock on PostgreSQL (READ COMMITTED: the count after the lock
    sees the other export's committed row)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sql_text("SELECT pg_advisory_xact_lock(:k)"), {"k": X12_CONTROL_LOCK})
    prior = db.session.scalar(select(func.count()).select_from(AccessLogEntry).where(
        AccessLogEntry.endpoint == X12_ENDPOINT, AccessLogEntry.method == "EXPORT")) or 0
    return prior % 999_999_999 + 1


@dataclass(frozen=True)
class X12Settings:
    submitter_id: str | None = None
    receiver_id: str | None = None
    usage: str = "T"


def _billed(program_id: int, payer_key: str, keys: set[tuple[int, date]]) -> dict:
    """(patient_id, dos) -> (export, line) of the latest export that still bills it: not a
    void, and not rejected by its 999."""
    if not keys:
        return {}
    pids = {k[0] for k in keys}
    days = [k[1] for k in keys]
    rows = db.session.execute(
        select(ClaimExportLine, ClaimExport).join(ClaimExport)
        .where(ClaimExport.program_id == program_id, ClaimExport.payer_key == payer_key,
               ClaimExportLine.patient_id.in_(pids), ClaimExportLine.dos >= min(days),
               ClaimExportLine.dos <= max(days),
               func.coalesce(ClaimExport.ack_status, "") != "rejected")
        .order_by(ClaimExport.id)).all()
    latest: dict = {}
    for line, export in rows:
        key = (line.patient_id, line.dos)
        if key in keys:
            latest[key] = (export, line)
    return {k: v for k, v in latest.items() if v[0].frequency != FREQUENCY_VOID}


def _ready_lines(program: Program, payer_key: str, first: date, last: date, rulebook: RuleBook):
    facts = load_facts(program, first, last)
    lines = derive_claim_lines(*facts.args(), rulebook)
    return facts, [ln for ln in lines if first <= ln.dos <= last and ln.payer_key == payer_key]


def export_837p(program: Program, payer_key: str, first: date, last: date, *, user: User | None,
                actor_name: str, rulebook: RuleBook, settings: X12Settings,
                frequency: str = FREQUENCY_ORIGINAL, replaces_id: int | None = None,
                now: datetime | None = None) -> ClaimExport:
    """Build, record and archive one 837P. Raises Invalid (self-pay, nothing ready, setup
    missing, a replacement whose lines are not ready), Conflict (lines already sent) or
    NotFound (the export to replace)."""
    now = now or now_utc()
    payer = rulebook.payer(payer_key)
    if payer.kind == "self_pay":
        raise Invalid("Self-pay days are not billed to a payer, so there is no 837P for them. "
                      "Use the CSV export instead.", field="payer")
    original = None
    if frequency != FREQUENCY_ORIGINAL:
        if replaces_id is None:
            raise Invalid("A replacement or void names the export it corrects.", field="replaces")
        original = db.session.get(ClaimExport, replaces_id)
        if original is None or original.program_id != program.id or original.payer_key != payer_key:
            raise NotFound(f"There is no {payer.name} export #{replaces_id} to correct.")
        first, last = original.first_dos, original.last_dos
    facts, lines = _ready_lines(program, payer_key, first, last, rulebook)
    number = next_interchange_number()  # takes the lock before the duplicate check
    if original is None:
        lines = [ln for ln in lines if ln.status == STATUS_READY]
        if not lines:
            raise Invalid(f"No ready lines for {payer.name} from {first:%b %-d} to "
                          f"{last:%b %-d, %Y}; there is nothing to send.")
        sent = _billed(program.id, payer_key, {(ln.patient_id, ln.dos) for ln in lines})
        if sent:
            exports = sorted({e.id: e for e, _ in sent.values()}.values(), key=lambda e: e.id)
            raise Conflict(
                f"{len(sent)} of these {len(lines)} lines were already sent in "
                + "; ".join(e.label for e in exports)
                + ". Nothing was sent. To correct a claim, send a replacement (frequency 7) or "
                "a void (8) of that export from its page.",
                details=[f"{_mrn(facts, pid)} {dos:%b %-d}" for pid, dos in sorted(sent, key=lambda k: (k[1], str(k[0])))][:20])
        refs = {}
    else:
        mine = {(ln.patient_id, ln.dos): ln for ln in original.export_lines}
        still = _billed(program.id, payer_key, set(mine))
        keys = {k for k, (e, _) in still.items() if e.id == original.id}
        if not keys:
            raise Conflict(f"Nothing in {original.label} is still billed by it (it was voided, "
                           "replaced or rejected); there is nothing to correct.")
        by_key = {(ln.patient_id, ln.dos): ln for ln in lines}
        if frequency == FREQUENCY_VOID:
            missing = [k for k in keys if k not in by_key]
            if missing:
                raise Invalid("The records of some voided lines are gone; void them with the payer "
                              "directly.", details=[f"{_mrn(facts, p)} {d:%b %-d}" for p, d in missing])
            # a void repeats the claim as billed; its lines may be blocked now (that is why)
            lines = [replace(by_key[k], status=STATUS_READY, code=mine[k].code,
                             units=mine[k].units, charge_cents=mine[k].charge_cents)
                     for k in sorted(keys, key=lambda k: (k[1], str(k[0])))]
        else:
            not_ready = [k for k in keys if k not in by_key or by_key[k].status != STATUS_READY]
            if not_ready:
                raise Invalid("A replacement re-sends every line of the original claims, and "
                              "these are not ready now; fix them or void the claims instead.",
                              details=[f"{_mrn(facts, p)} {d:%b %-d}" for p, d in sorted(not_ready, key=lambda k: (k[1], str(k[0])))])
            lines = [by_key[k] for k in sorted(keys, key=lambda k: (k[1], str(k[0])))]
        refs = {k: mine[k].claim_ref for k in keys}

    # the payer id the clearinghouse assigned (setup) wins over the rule file's default
    x12_id = db.session.scalar(select(PayerRow.x12_payer_id).where(PayerRow.rule_key == payer_key))
    if x12_id and x12_id.strip():
        payer = replace(payer, payer_id=x12_id.strip())
    tz = program.tz
    local_now = now.astimezone(tz)
    try:
        text = build_837p(
            lines, facts.patients, facts.program, payer,
            Submitter(id=settings.submitter_id or program.billing_npi, name=program.name,
                      contact_name=program.contact_name or "", contact_phone=program.contact_phone or ""),
            Receiver(id=settings.receiver_id or payer.payer_id, name=payer.name),
            ControlNumbers(interchange=number, group=number, transaction=number, usage=settings.usage),
            now=local_now, frequency=frequency, original_claims=refs)
    except ValueError as exc:
        raise Invalid(f"The 837P could not be built: {exc}.") from None
    data = text.encode("ascii")
    digest = hashlib.sha256(data).hexdigest()
    ids = claim_ids(lines, facts.patients)
    total = sum(ln.charge_cents for ln in lines)
    filename = f"837p-{payer_key}-{first.isoformat()}-{last.isoformat()}-{number:09d}.x12"
    export = ClaimExport(
        program_id=program.id, payer_key=payer_key, first_dos=first, last_dos=last, created_at=now,
        user_id=user.id if user else None, user_name=actor_name, interchange=number,
        group_number=number, transaction_number=number, usage=settings.usage, frequency=frequency,
        replaces_export_id=original.id if original else None, claims=len(set(ids.values())),
        lines=len(lines), total_cents=total, sha256=digest, filename=filename, content=data)
    db.session.add(export)
    for ln in lines:
        export.export_lines.append(ClaimExportLine(
            patient_id=ln.patient_id, dos=ln.dos, code=ln.code, units=ln.units,
            charge_cents=ln.charge_cents, claim_ref=ids[(ln.patient_id, ln.dos)]))
    db.session.flush()
    record = _record(export, payer.name, facts, lines, ids, program, now)
    try:
        pdf = render_pdf("documents/claim_export.html", {"r": record})
        doc = archive_document(
            kind=KIND, title=f"837P {payer.name} {first.isoformat()}..{last.isoformat()} ISA13 {number:09d}",
            dos=None, subject={"payer": payer_key, "isa13": f"{number:09d}", "sha256": digest},
            actor=f"user:{user.id}" if user else f"cli:{actor_name}", record=record, pdf=pdf,
            occurred_at=now,
            patient_lines=[PatientLine(int(p["patient_id"]), p) for p in record["patients"]])
        export.document_id = doc.id
        db.session.add(AccessLogEntry(
            user_id=user.id if user else None, role=user.role if user else None, method="EXPORT",
            path=(f"EXPORT 837P payer={payer_key} dos={first}..{last} ISA13={number:09d} "
                  f"frequency={frequency} lines={len(lines)} "
                  f"patients={len({ln.patient_id for ln in lines})} sha256={digest[:16]}")[:500],
            endpoint=X12_ENDPOINT, patient_id=None, status_code=200, remote_addr=None))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    checkpoint_if_due()
    return export


def _mrn(facts, pid) -> str:
    return next((p.mrn for p in facts.patients if p.patient_id == pid), str(pid))


def _record(export: ClaimExport, payer_name: str, facts, lines, ids, program: Program,
            now: datetime) -> dict:
    """What the chain entry commits to (strings only): the file's SHA-256 and control numbers,
    and per patient their claims (one salted line each, for that patient's own export)."""
    names = {p.patient_id: p for p in facts.patients}
    per_patient: dict = defaultdict(list)
    for ln in lines:
        per_patient[ln.patient_id].append(ln)
    return {
        "kind": KIND,
        "program": {"name": program.name, "billing_npi": program.billing_npi,
                    "time_zone": program.time_zone},
        "payer": {"key": export.payer_key, "name": payer_name},
        "dos_from": export.first_dos.isoformat(), "dos_to": export.last_dos.isoformat(),
        "exported_by": export.user_name,
        "exported_at_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "exported_at_local": fmt_local(now, program.tz, "%B %-d, %Y %-I:%M %p %Z"),
        "isa13": f"{export.interchange:09d}", "gs06": str(export.group_number),
        "st02": f"{export.transaction_number:04d}", "usage": export.usage,
        "frequency": export.frequency, "frequency_label": export.frequency_label,
        "replaces_export": str(export.replaces_export_id or ""),
        "file_sha256": export.sha256, "file_name": export.filename,
        "file_bytes": str(len(export.content)),
        "claims": str(export.claims), "lines": str(export.lines),
        "total_cents": str(export.total_cents), "total_label": f"${export.total_cents / 100:,.2f}",
        "patients": [{
            "patient_id": str(pid), "mrn": names[pid].mrn, "name": names[pid].display_name,
            "lines": [{"dos": ln.dos.isoformat(), "code": ln.code, "modifiers": ":".join(ln.modifiers),
                       "units": str(ln.units), "pos": ln.pos,
                       "charge_cents": str(ln.charge_cents),
                       "claim": ids[(ln.patient_id, ln.dos)],
                       "authorization": ln.authorization_number or ""} for ln in items],
        } for pid, items in sorted(per_patient.items(), key=lambda kv: names[kv[0]].mrn)],
    }


# ----------------------------------------------------------------------------------------
# 999 acknowledgments
# ----------------------------------------------------------------------------------------

ACK_LABELS = {"accepted": "accepted", "partial": "partially accepted", "rejected": "rejected"}


def import_999(export_id: int, text: str, *, now: datetime | None = None) -> ClaimExport:
    """Record a 999 for ``export_id``. Raises Invalid when the text is not a 999 or answers
    another interchange (its AK1 group / AK2 set control numbers must be this export's)."""
    export = db.session.get(ClaimExport, export_id)
    if export is None:
        raise NotFound(f"There is no 837P export #{export_id}.")
    try:
        ack: Ack999 = parse_999(text)
    except ValueError as exc:
        raise Invalid(f"This is not a 999 acknowledgment we can read: {exc}.", field="file") from None
    if ack.group_control != str(export.group_number):
        raise Invalid(f"This 999 answers functional group {ack.group_control}, not this export's "
                      f"{export.group_number} (ISA13 {export.interchange:09d}). Nothing was recorded.",
                      field="file")
    sets = [s for s in ack.sets if s.control.lstrip("0") == str(export.transaction_number)]
    if not sets:
        raise Invalid(f"This 999 does not acknowledge transaction set "
                      f"{export.transaction_number:04d}. Nothing was recorded.", field="file")
    content = db.session.scalar(select(ClaimExport.content).where(ClaimExport.id == export.id))
    errors = claim_errors(content.decode("ascii"), sets[0])
    export.ack_status = {"A": "accepted", "E": "accepted", "P": "partial", "R": "rejected",
                         "M": "rejected", "W": "rejected", "X": "rejected"}.get(ack.status, "rejected")
    export.ack_at = now or now_utc()
    export.ack_detail = json.dumps({"code": ack.status, "set_code": sets[0].status,
                                    "errors": errors}, sort_keys=True)
    db.session.commit()
    return export


def exports_of(program: Program) -> list[ClaimExport]:
    return list(db.session.scalars(select(ClaimExport).where(ClaimExport.program_id == program.id)
                                   .order_by(ClaimExport.id.desc())))
