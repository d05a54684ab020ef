"""Bind closed rosters' database rows to the lines committed in their chain entries.

Two reads per batch of sessions, never one per row: the index's lines (with their salts) for
the batch's archived rosters, and the chain entries those rosters point to. Each index line is
proven by recomputing its salted commitment and finding it among the entry's
``line_commitments`` (and the entry's subject must name the session); the proven lines are
then compared with the rows by ``portal.rules.archive_binding``.

Used by the fact loader (``bind_facts``: billing and readiness block what differs) and by
``audit verify`` (``closed_roster_differences``: lists every closed roster that differs).
Addenda are bound too: ``addenda_differing`` (a row unlike its own entry) and
``addenda_missing_rows`` (an archived addendum whose row was deleted or moved away).
"""
from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import Hashable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import aliased

from audit_archive.commitments import commit_line_bytes
from audit_archive.entry import EntryFormatError, described_fields, jcs_bytes
from audit_archive.schema import audit_entries
from portal.extensions import db
from portal.models import (Addendum, ArchivedDocument, ArchivedDocumentPatient,
                           AttendanceEntry, GroupSession)
from portal.rules.archive_binding import (AddendumEntry, Difference, RowRecord, SessionRecord,
                                          addenda_without_rows, addendum_differences,
                                          addendum_entry, roster_differences)
from portal.rules.facts import frozen_new

_first = itemgetter(0)
# SQLite allows 32,766 bound parameters; stay far below it per IN list.
_CHUNK = 5000


@dataclass(frozen=True)
class ProvenLines:
    """What one archived roster's entry commits to, as far as the index can prove it."""

    seq: int
    lines: dict  # patient id -> line dict (commitment found in the entry)
    committed: int  # how many lines the entry commits to
    entry_problem: str | None = None  # e.g. the entry names another session, or is missing


def _canonical(line: dict) -> bytes:
    """RFC 8785 bytes of a roster line. The portal's lines are flat objects with ASCII keys and
    string/int/null values, for which JCS is exactly Python's sorted, compact, non-ASCII-escaping
    JSON (the C encoder: ~10x faster than the general ``jcs_bytes``, which handles the rest)."""
    if all(k.isascii() and (v is None or type(v) in (str, int)) for k, v in line.items()):
        return json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return jcs_bytes(line)


def _proven_line(r, commitments: set) -> dict | None:
    """The index row's line (``r``: patient_id, line_json, line_salt) if its salted commitment
    is among the entry's ``commitments`` and it names the row's patient, else None."""
    try:
        line = json.loads(r.line_json)
        salt = bytes.fromhex(r.line_salt)
        # Lines archived since issue 9 are stored in their canonical bytes: hash them as
        # stored; older ones (Python's default separators) are re-encoded first.
        ok = (isinstance(line, dict) and line.get("patient_id") == str(r.patient_id)
              and (commit_line_bytes(r.line_json.encode(), salt) in commitments
                   or commit_line_bytes(_canonical(line), salt) in commitments))
    except (TypeError, ValueError, AttributeError):
        return None
    return line if ok else None


def _chunks(ids: list) -> Iterable[list]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i:i + _CHUNK]


def _parsed_batch(texts: list[str]) -> list | None:
    """``json.loads`` of each text, in one parse of their concatenation: each text is one
    object the portal committed to (its salted hash is in the entry), so the array has exactly
    one element per text. None if that does not hold (the caller parses them one by one)."""
    try:
        parsed = json.loads("[" + ",".join(texts) + "]")
    except ValueError:
        return None
    return parsed if len(parsed) == len(texts) else None


def proven_lines(doc_of_session: dict[Hashable, tuple[int, int]]) -> dict[Hashable, ProvenLines]:
    """``doc_of_session``: session id -> (document id, entry seq). Two queries per chunk."""
    out: dict[Hashable, ProvenLines] = {}
    if not doc_of_session:
        return out
    conn = db.session.connection()
    entries: dict[int, bytes] = {}
    index_rows = []
    for part in _chunks(list(doc_of_session.values())):
        seqs = [seq for _doc, seq in part]
        entries.update(conn.execute(
            select(audit_entries.c.seq, audit_entries.c.entry_bytes).where(audit_entries.c.seq.in_(seqs))).all())
        index_rows += conn.execute(
            select(ArchivedDocumentPatient.document_id, ArchivedDocumentPatient.patient_id,
                   ArchivedDocumentPatient.line_json, ArchivedDocumentPatient.line_salt)
            .where(ArchivedDocumentPatient.document_id.in_([doc for doc, _seq in part]))).all()
    by_doc: dict[int, list] = {}
    for r in index_rows:
        by_doc.setdefault(r[0], []).append(r)
    # Lines archived since issue 9 are stored in their canonical bytes: their stored text is
    # hashed first, and the texts found in their entries are parsed together at the end.
    hashed: list[tuple] = []  # (lines dict to fill, patient id, stored text)
    for sid, (doc, seq) in doc_of_session.items():
        data = entries.get(seq)
        if data is None:
            out[sid] = ProvenLines(seq, {}, 0, f"chain entry #{seq} is missing")
            continue
        try:
            body = described_fields(bytes(data))
            commitments = set(body["line_commitments"])
            subject = body.get("subject") or {}
        except (EntryFormatError, KeyError, TypeError):
            out[sid] = ProvenLines(seq, {}, 0, f"chain entry #{seq} is unreadable")
            continue
        problem = None
        if subject.get("session_id") != str(sid):
            problem = f"chain entry #{seq} is not this session's roster"
        lines: dict = {}
        for r in by_doc.get(doc, ()):
            _doc, pid, text, salt = r
            try:
                stored = commit_line_bytes(text.encode(), bytes.fromhex(salt)) in commitments
            except (TypeError, ValueError, AttributeError):
                continue
            if stored:
                hashed.append((lines, pid, text))
            else:
                line = _proven_line(r, commitments)
                if line is not None:
                    lines[r.patient_id] = line
        out[sid] = ProvenLines(seq, lines, len(body["line_commitments"]), problem)
    parsed = _parsed_batch([text for _lines, _pid, text in hashed]) if hashed else []
    if parsed is None:
        parsed = []
        for _lines, _pid, text in hashed:
            try:
                parsed.append(json.loads(text))
            except ValueError:
                parsed.append(None)
    for (lines, pid, _text), line in zip(hashed, parsed):
        if isinstance(line, dict) and line.get("patient_id") == str(pid):
            lines[pid] = line
    return out


def _differences(session: SessionRecord, rows: list[RowRecord], proof: ProvenLines) -> list[Difference]:
    diffs = roster_differences(session, rows, proof.lines, proof.committed)
    if proof.entry_problem:
        diffs.insert(0, Difference(None, proof.entry_problem))
    return diffs


# Rosters already found to match their entry, per process: (session id, document id, entry
# hash) -> digest of the facts that matched. A closed roster's entry never changes (the ledger is
# append-only and ``entry_hash`` is the hash of its bytes), so when the facts read now have the
# same digest, the comparison would give the same answer: only rosters whose facts or entry
# differ from what was checked are proven again. Bounded: cleared when it grows past the limit.
_MATCHED: dict[tuple, bytes] = {}
_MATCHED_LIMIT = 400_000


def _digest(s, rows) -> bytes:
    """BLAKE2b of every fact the comparison reads, for one session and its rows: pickled (a
    lossless encoding: equal bytes are equal facts), instants as POSIX timestamps (the
    comparison is of instants), rows in patient order."""
    start, end = s.actual_start, s.actual_end
    facts = [(s.dos.toordinal(), s.modality, s.pos_override if s.modality == "in_person" else None,
              start.timestamp() if start is not None else None,
              end.timestamp() if end is not None else None)]
    facts += sorted([(a.patient_id, a.status,
                      a.arrival.timestamp() if a.arrival is not None else None,
                      a.departure.timestamp() if a.departure is not None else None, a.signed)
                     for a in rows], key=_first)
    return hashlib.blake2b(pickle.dumps(facts, 5), digest_size=16).digest()


def forget_matched() -> None:
    """Empty the per-process memory of matching rosters (tests, benchmarks)."""
    _MATCHED.clear()


def bind_facts(facts):
    """The fact loader's archive step: mark every session and attendance fact of a closed,
    archived roster whose rows differ from its chain entry (``archive_differs`` = the entry's
    seq), so the rules block those lines. One query for the rosters' documents and entry hashes,
    and two more (entries and index lines) only for rosters not already found to match with
    exactly these facts, whatever the number of rows."""
    closed = {s.session_id: s for s in facts.sessions if s.roster_closed and s.archive_seq}
    if not closed:
        return facts
    docs: dict = {}
    conn = db.session.connection()
    for part in _chunks(list(closed)):
        for r in conn.execute(
                select(GroupSession.id, GroupSession.document_id, audit_entries.c.entry_hash)
                .join(ArchivedDocument, ArchivedDocument.id == GroupSession.document_id)
                .outerjoin(audit_entries, audit_entries.c.seq == ArchivedDocument.entry_seq)
                .where(GroupSession.id.in_(part))):
            docs[r.id] = (r.document_id, r.entry_hash)
    rows_of: dict = {}
    for a in facts.attendance:
        if a.session_id in closed:
            rows_of.setdefault(a.session_id, []).append(a)
    to_prove: dict = {}
    digests: dict = {}
    for sid, s in closed.items():
        doc = docs.get(sid)
        if doc is None:
            continue
        key = (sid, doc[0], doc[1])
        digests[key] = digest = _digest(s, rows_of.get(sid, ()))
        if doc[1] is None or _MATCHED.get(key) != digest:
            to_prove[sid] = (doc[0], s.archive_seq)
    proofs = proven_lines(to_prove)
    bad_sessions: dict = {}
    bad_rows: set = set()
    for sid, proof in proofs.items():
        s = closed[sid]
        session = SessionRecord(sid, s.dos, s.modality,
                                s.pos_override if s.modality == "in_person" else None,
                                s.actual_start, s.actual_end)
        # billing reads only whether a patient signed: signature time and image not compared
        rows = [frozen_new(RowRecord, {"patient_id": a.patient_id, "status": a.status,
                                       "arrival": a.arrival, "departure": a.departure,
                                       "signed": a.signed, "signed_at": ...,
                                       "signature_sha256": ...})
                for a in rows_of.get(sid, ())]
        diffs = _differences(session, rows, proof)
        for d in diffs:
            if d.patient_id is None:
                bad_sessions[sid] = proof.seq
            else:
                bad_rows.add((sid, d.patient_id))
        doc = docs[sid]
        if not diffs and doc[1] is not None:
            if len(_MATCHED) >= _MATCHED_LIMIT:
                _MATCHED.clear()
            _MATCHED[(sid, doc[0], doc[1])] = digests[(sid, doc[0], doc[1])]
    if not bad_sessions and not bad_rows:
        return facts
    sessions = tuple(replace(s, archive_differs=bad_sessions[s.session_id])
                     if s.session_id in bad_sessions else s for s in facts.sessions)
    attendance = tuple(replace(a, archive_differs=closed[a.session_id].archive_seq)
                       if (a.session_id, a.patient_id) in bad_rows else a for a in facts.attendance)
    return replace(facts, sessions=sessions, attendance=attendance)


@dataclass(frozen=True)
class AddendumRecord:
    """An addendum row as the loader read it; ``key`` is the caller's handle."""

    key: Hashable
    document_id: int | None  # the addendum's own archived document
    seq: int | None  # that document's chain entry
    patient_id: int
    position: int
    original_seq: int | None
    fields: dict


def addenda_differing(records: list[AddendumRecord]) -> dict[Hashable, tuple[int | None, list[str]]]:
    """key -> (entry seq to name, what differs) for every addendum whose row is not what its own
    chain entry commits to (its corrected fields, patient, original, position). Two queries per
    chunk of addenda (their entries and index lines), none when there are no addenda."""
    out: dict = {}
    with_doc = [a for a in records if a.document_id is not None and a.seq is not None]
    for a in records:
        if a.document_id is None or a.seq is None:
            out[a.key] = (a.seq or a.original_seq, ["the addendum has no archived document"])
    entries: dict[int, bytes] = {}
    index: dict[tuple, object] = {}
    for part in _chunks(with_doc):
        entries.update(db.session.execute(
            select(audit_entries.c.seq, audit_entries.c.entry_bytes)
            .where(audit_entries.c.seq.in_({a.seq for a in part}))).all())
        for r in db.session.execute(
                select(ArchivedDocumentPatient.document_id, ArchivedDocumentPatient.patient_id,
                       ArchivedDocumentPatient.line_json, ArchivedDocumentPatient.line_salt)
                .where(ArchivedDocumentPatient.document_id.in_({a.document_id for a in part}))):
            index[(r.document_id, r.patient_id)] = r
    bodies: dict[int, dict | None] = {}
    for a in with_doc:
        if a.seq not in bodies:
            try:
                bodies[a.seq] = described_fields(bytes(entries[a.seq])) if a.seq in entries else None
            except EntryFormatError:
                bodies[a.seq] = None
        body = bodies[a.seq]
        subject, line = None, None
        if body is not None and isinstance(body.get("subject"), dict):
            subject = body["subject"]
            r = index.get((a.document_id, a.patient_id))
            commitments = body.get("line_commitments")
            if r is not None and isinstance(commitments, list):
                line = _proven_line(r, set(commitments))
        what = addendum_differences(patient_id=a.patient_id, position=a.position,
                                    original_seq=a.original_seq, fields=a.fields, line=line,
                                    subject=subject)
        if what:
            out[a.key] = (a.seq, what)
    return out


@dataclass(frozen=True)
class RosterDifference:
    session_id: int
    seq: int
    title: str
    differences: tuple[Difference, ...]


def closed_roster_differences() -> list[RosterDifference]:
    """Every closed, archived roster whose rows (all columns the roster printed, signature
    times and hashes included) differ from its chain entry. Reads in batches of sessions."""
    out = []
    sessions = db.session.execute(
        select(GroupSession.id, GroupSession.dos, GroupSession.modality, GroupSession.place_of_service,
               GroupSession.actual_start, GroupSession.actual_end, GroupSession.document_id,
               ArchivedDocument.entry_seq, ArchivedDocument.title)
        .join(ArchivedDocument, ArchivedDocument.id == GroupSession.document_id)
        .where(GroupSession.status == "closed").order_by(ArchivedDocument.entry_seq)).all()
    for part in _chunks(sessions):
        proofs = proven_lines({s.id: (s.document_id, s.entry_seq) for s in part})
        rows_of: dict = {}
        for r in db.session.execute(
                select(AttendanceEntry.session_id, AttendanceEntry.patient_id, AttendanceEntry.status,
                       AttendanceEntry.arrival, AttendanceEntry.departure, AttendanceEntry.signed_at,
                       AttendanceEntry.signature_sha256)
                .where(AttendanceEntry.session_id.in_([s.id for s in part]))):
            rows_of.setdefault(r.session_id, []).append(RowRecord(
                r.patient_id, r.status, r.arrival, r.departure, r.signed_at is not None,
                r.signed_at, r.signature_sha256))
        for s in part:
            session = SessionRecord(s.id, s.dos, s.modality, s.place_of_service, s.actual_start, s.actual_end)
            diffs = _differences(session, rows_of.get(s.id, []), proofs[s.id])
            if diffs:
                out.append(RosterDifference(s.id, s.entry_seq, s.title, tuple(diffs)))
    return out


def addendum_entries(after_seq: int = 0) -> list[AddendumEntry]:
    """Every addendum the chain holds after entry ``after_seq``, as its entry names it. One
    query, whatever the number of addenda (an addendum's entry always follows its original's,
    so a caller correcting entries from seq N on passes N - 1). Unreadable entries are left to
    ``audit verify``, which checks every entry's form."""
    out = []
    for seq, data in db.session.execute(
            select(audit_entries.c.seq, audit_entries.c.entry_bytes)
            .where(audit_entries.c.kind == "addendum", audit_entries.c.seq > after_seq)
            .order_by(audit_entries.c.seq)):
        try:
            subject = described_fields(bytes(data)).get("subject")
        except EntryFormatError:
            continue
        out.append(addendum_entry(seq, subject))
    return out


def addenda_missing_rows(entries: list[AddendumEntry], rows=None) -> list[AddendumEntry]:
    """The addenda among ``entries`` that no ``addenda`` row stands for (deleted, or moved to
    another patient or original). ``rows``: (own entry seq, patient id, original's entry seq)
    of the addendum rows the caller already read; None reads them (one query)."""
    if not entries:
        return []
    if rows is None:
        own = aliased(ArchivedDocument)
        original = aliased(ArchivedDocument)
        rows = db.session.execute(
            select(own.entry_seq, Addendum.patient_id, original.entry_seq)
            .join(original, original.id == Addendum.original_document_id)
            .outerjoin(own, own.id == Addendum.document_id)).all()
    return addenda_without_rows(entries, rows)
