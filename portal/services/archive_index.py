"""The portal's index of the archive (``archived_documents``, ``archived_document_patients``)
checked against the chain entries it names.

Those two tables are ordinary, editable tables; the chain entry is what the signed log covers.
So nothing the portal hands out is taken from the index alone: a download takes the document
hash from the entry, and refuses when the index row disagrees with it (document hash, kind,
date of service, number of patients); a patient's extract is rendered from a line whose salted
commitment is in the entry's ``line_commitments``. ``check_index`` runs the same checks over every row for
``flask audit verify``.

Reads only; the functions taking a connection run one SELECT each and never commit.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Iterator

from sqlalchemy import select
from sqlalchemy.engine import Connection

from audit_archive.canonical import line_bytes
from audit_archive.commitments import SALT_SIZE, commit_line_bytes
from audit_archive.entry import EntryFormatError, parse_entry
from audit_archive.ledger import as_bytes, entry_bytes
from audit_archive.schema import audit_entries
from portal.models import ArchivedDocument, ArchivedDocumentPatient

VERIFY_HINT = "Run `flask --app portal audit verify`."


class IndexMismatch(Exception):
    """The portal's index disagrees with the chain entry it names, or the entry is missing or
    damaged. ``str()`` is a sentence for the person who asked (no server paths)."""


@dataclass(frozen=True)
class VerifiedLine:
    """A patient line whose commitment is in its entry: the parsed line, its exact canonical
    (RFC 8785) bytes, the salt and the commitment."""
    line: dict
    canonical: bytes
    salt: bytes
    commitment: str


def _parsed(seq: int, raw: bytes | None) -> tuple[bytes, dict]:
    if raw is None:
        raise IndexMismatch(f"The chain entry #{seq} for this document is missing. {VERIFY_HINT}")
    try:
        return raw, parse_entry(raw)
    except EntryFormatError:
        raise IndexMismatch(f"The chain entry #{seq} for this document is damaged. {VERIFY_HINT}") from None


def read_entry(conn: Connection, seq: int) -> tuple[bytes, dict]:
    """``(stored bytes, parsed fields)`` of entry ``seq``; ``IndexMismatch`` when there is no
    such entry or its bytes are not a well-formed entry."""
    return _parsed(seq, entry_bytes(conn, seq))


def read_entries(conn: Connection, seqs: list[int]) -> dict[int, dict]:
    """``{seq: parsed fields}`` for ``seqs`` in one query; ``IndexMismatch`` for the first
    missing or damaged entry (in ``seqs`` order)."""
    found = {s: as_bytes(b) for s, b in conn.execute(
        select(audit_entries.c.seq, audit_entries.c.entry_bytes).where(audit_entries.c.seq.in_(seqs)))}
    return {s: _parsed(s, found.get(s))[1] for s in seqs}


def document_problems(*, kind: str, doc_sha256: str, dos: date | None, entry: dict,
                      patients: int | None = None) -> list[str]:
    """How an ``archived_documents`` row (its kind, document hash, date of service and, when
    ``patients`` is given, how many patient rows it has) disagrees with its parsed chain
    ``entry``; empty when it agrees. The date is compared only when the entry's subject names
    one (rosters and reconciliations do). Every patient row holds one committed line, so a
    deleted or added row (which would change who may download the whole document, or what an
    export withholds) shows as a count that differs from the entry's line commitments."""
    problems = []
    if doc_sha256 != entry["doc"]["sha256"]:
        problems.append(f"its document hash {doc_sha256} is not the entry's {entry['doc']['sha256']}")
    if kind != entry["kind"]:
        problems.append(f"its kind {kind!r} is not the entry's {entry['kind']!r}")
    subject_dos = entry["subject"].get("dos")
    if subject_dos is not None and (dos.isoformat() if dos else None) != subject_dos:
        problems.append(f"its date of service {dos} is not the entry's {subject_dos}")
    lines = len(entry["line_commitments"])
    if patients is not None and patients != lines:
        problems.append(f"it lists {patients} patient{'s' if patients != 1 else ''} but the entry "
                        f"commits to {lines} patient line{'s' if lines != 1 else ''}")
    return problems


def verified_line(*, line_json: str | None, line_salt: str | None, patient_id: int,
                  entry: dict) -> VerifiedLine:
    """The stored line of ``patient_id`` once its commitment (recomputed from the stored line
    and salt, docs/audit-format.md §4) is found in the entry's ``line_commitments`` and the line
    names that patient. ``IndexMismatch`` saying what is wrong otherwise."""
    try:
        if not line_json:
            raise ValueError("no line is stored")
        line = json.loads(line_json)
        if not isinstance(line, dict):
            raise ValueError("the stored line is not a JSON object")
        salt = bytes.fromhex(line_salt or "")
        if len(salt) != SALT_SIZE:
            raise ValueError(f"the stored salt is not {SALT_SIZE} bytes")
        canonical = line_bytes(line)  # CanonicalError (a ValueError) for floats and the like
    except (ValueError, RecursionError) as exc:
        raise IndexMismatch(f"The stored line of this patient cannot be checked against chain "
                            f"entry #{entry['seq']} ({exc}). {VERIFY_HINT}") from None
    commitment = commit_line_bytes(canonical, salt)
    if commitment not in entry["line_commitments"]:
        raise IndexMismatch(f"The stored line of this patient is not one of the lines chain entry "
                            f"#{entry['seq']} commits to: the archive index disagrees with the "
                            f"chain. {VERIFY_HINT}")
    if "patient_id" in line and line["patient_id"] != str(patient_id):
        raise IndexMismatch(f"The stored line filed under this patient is another patient's line "
                            f"of chain entry #{entry['seq']}: the archive index disagrees with "
                            f"the chain. {VERIFY_HINT}")
    return VerifiedLine(line=line, canonical=canonical, salt=salt, commitment=commitment)


@dataclass(frozen=True)
class IndexProblem:
    """One disagreement between the index and the chain, for ``audit verify``."""
    document_id: int
    entry_seq: int | None
    message: str
    patient_id: int | None = None

    def __str__(self) -> str:
        who = f"archived document {self.document_id}"
        if self.patient_id is not None:
            who += f", patient {self.patient_id}"
        return f"{who} (entry {self.entry_seq}): {self.message}"


_BATCH = 500


def _documents(conn: Connection) -> Iterator[list]:
    last = 0
    while True:
        rows = conn.execute(
            select(ArchivedDocument.id, ArchivedDocument.entry_seq, ArchivedDocument.kind,
                   ArchivedDocument.doc_sha256, ArchivedDocument.dos, audit_entries.c.entry_bytes)
            .outerjoin(audit_entries, audit_entries.c.seq == ArchivedDocument.entry_seq)
            .where(ArchivedDocument.id > last).order_by(ArchivedDocument.id).limit(_BATCH)).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def check_index(conn: Connection) -> list[IndexProblem]:
    """Every ``archived_documents`` row names an existing, readable entry and agrees with it
    (``document_problems``), and every ``archived_document_patients`` line is committed in its
    document's entry (``verified_line``). Returns the problems, in document order."""
    problems: list[IndexProblem] = []
    for rows in _documents(conn):
        entries: dict[int, dict] = {}
        links = conn.execute(
            select(ArchivedDocumentPatient.document_id, ArchivedDocumentPatient.patient_id,
                   ArchivedDocumentPatient.line_json, ArchivedDocumentPatient.line_salt)
            .where(ArchivedDocumentPatient.document_id.in_([r.id for r in rows]))
            .order_by(ArchivedDocumentPatient.document_id, ArchivedDocumentPatient.patient_id)).all()
        counts = Counter(link.document_id for link in links)
        for row in rows:
            if row.entry_bytes is None:
                problems.append(IndexProblem(row.id, row.entry_seq, "names a chain entry that does not exist"))
                continue
            try:
                entry = parse_entry(as_bytes(row.entry_bytes))
            except EntryFormatError as exc:
                problems.append(IndexProblem(row.id, row.entry_seq, f"its chain entry is damaged ({exc})"))
                continue
            entries[row.id] = entry
            for p in document_problems(kind=row.kind, doc_sha256=row.doc_sha256, dos=row.dos,
                                       entry=entry, patients=counts[row.id]):
                problems.append(IndexProblem(row.id, row.entry_seq, p))
        seq_of = {r.id: r.entry_seq for r in rows}
        for link in links:
            entry = entries.get(link.document_id)
            if entry is None:
                continue  # the document's own problem is reported above
            try:
                verified_line(line_json=link.line_json, line_salt=link.line_salt,
                              patient_id=link.patient_id, entry=entry)
            except IndexMismatch as exc:
                message = str(exc).replace(f" {VERIFY_HINT}", "")
                problems.append(IndexProblem(link.document_id, seq_of[link.document_id],
                                             message, patient_id=link.patient_id))
    return problems
