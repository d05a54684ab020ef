"""Does a closed roster's database record still say what its archived roster says?

Pure comparison (no Flask, no database): ``portal.archive_binding`` reads the rows and the
lines committed in the roster's chain entry, and this module says which rows differ and how.
Billing and readiness block what differs ("record differs from archive entry #N"), and
``audit verify`` lists it, because the archive decides: a payer auditor is shown the archived
roster, so a claim must rest on exactly what it says.

What is compared is what billing reads: per patient the status, the attended window (arrival
and departure clipped to the session's actual times, as the roster printed them), whole
minutes, whether and when they signed and the signature's hash; per session the date of
service, modality and place of service, and that every committed line has its row and every
row its committed line.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Hashable, Iterable, Mapping

ATTENDED = frozenset({"present", "late", "left_early"})


@dataclass(frozen=True)
class RowRecord:
    """One attendance row as the database holds it now. ``signed_at``/``signature_sha256``
    may be ``...`` (Ellipsis) when the caller did not read them (billing needs only whether the
    patient signed); they are then compared as signed / not signed only."""

    patient_id: Hashable
    status: str
    arrival: datetime | None
    departure: datetime | None
    signed: bool
    signed_at: object = ...
    signature_sha256: object = ...


@dataclass(frozen=True)
class SessionRecord:
    session_id: Hashable
    dos: date
    modality: str
    place_of_service: str | None  # None: not read (telehealth rows derive POS from the payer)
    actual_start: datetime | None
    actual_end: datetime | None


@dataclass(frozen=True)
class Difference:
    """``patient_id`` None = the whole session differs; ``what`` names the field, for people."""

    patient_id: Hashable | None
    what: str


def attended_window(status: str, arrival, departure, actual_start, actual_end):
    """The roster's clipped window (same rule as the roster document): None if not attended."""
    if status not in ATTENDED or not (actual_start and actual_end):
        return None
    start = max(arrival or actual_start, actual_start)
    end = min(departure or actual_end, actual_end)
    return (start, end) if end > start else (start, start)


def _instant(text):
    return datetime.fromisoformat(text) if text else None


def row_differences(session: SessionRecord, row: RowRecord, line: Mapping) -> list[str]:
    """Fields of ``row`` (and its session) that differ from the committed ``line``."""
    out = []
    if line.get("status") != row.status:
        out.append(f"status {row.status!r}, archived {line.get('status')!r}")
    window = attended_window(row.status, row.arrival, row.departure,
                             session.actual_start, session.actual_end) or (None, None)
    try:
        archived = (_instant(line.get("arrival")), _instant(line.get("departure")))
    except (TypeError, ValueError):
        archived = ("unreadable", "unreadable")
    if window != archived:
        out.append("attended times differ from the archived arrival/departure")
    minutes = int((window[1] - window[0]).total_seconds() // 60) if window[0] else 0
    if str(minutes) != str(line.get("minutes_attended")):
        out.append(f"{minutes} minutes attended, archived {line.get('minutes_attended')}")
    if row.signed != (line.get("signed_at") is not None):
        out.append(f"{'signed' if row.signed else 'not signed'}, unlike the archived roster")
    if row.signed_at is not ... and (_instant(line.get("signed_at")) if line.get("signed_at") else None) != row.signed_at:
        out.append("signature time differs")
    if row.signature_sha256 is not ... and line.get("signature_sha256") != row.signature_sha256:
        out.append("signature image differs")
    return out


def session_differences(session: SessionRecord, any_line: Mapping | None) -> list[str]:
    """Session-level fields that differ from what every committed line repeats."""
    if any_line is None:
        return []
    out = []
    if any_line.get("dos") != session.dos.isoformat():
        out.append(f"date of service {session.dos.isoformat()}, archived {any_line.get('dos')}")
    if any_line.get("modality") != session.modality:
        out.append(f"modality {session.modality}, archived {any_line.get('modality')}")
    if session.place_of_service is not None and any_line.get("place_of_service") != session.place_of_service:
        out.append(f"place of service {session.place_of_service}, archived {any_line.get('place_of_service')}")
    return out


def roster_differences(session: SessionRecord, rows: list[RowRecord],
                       lines: Mapping[Hashable, Mapping], committed: int) -> list[Difference]:
    """Every difference between a closed roster's rows and its archived lines.

    ``lines``: patient id -> the line dict, only for lines whose salted commitment is in the
    entry (the caller verified that); ``committed``: how many lines the entry commits to.
    """
    out = [Difference(None, w) for w in session_differences(session, next(iter(lines.values()), None))]
    seen = set()
    for row in rows:
        seen.add(row.patient_id)
        line = lines.get(row.patient_id)
        if line is None:
            out.append(Difference(row.patient_id, "row has no line committed in the entry"))
            continue
        out += [Difference(row.patient_id, w) for w in row_differences(session, row, line)]
    missing = [pid for pid in lines if pid not in seen]
    if missing or committed != len(lines):
        out.append(Difference(None, f"entry commits {committed} lines; {len(lines)} are proven by the "
                                    f"index and {len(seen & set(lines))} have their row"))
    return out


def addendum_differences(*, patient_id: Hashable, position: int, original_seq: int | None,
                         fields: Mapping, line: Mapping | None, subject: Mapping | None) -> list[str]:
    """How an addendum's database row differs from what its own chain entry commits to.

    ``line``: the addendum's index line, only if its salted commitment is in the entry (None:
    the index cannot prove one); ``subject``: the entry's subject (None: no readable entry).
    The corrected fields are what billing and readiness apply, so they must be exactly the
    archived ones; the patient, the original and the position place them in the right chain."""
    if subject is None:
        return ["the addendum's chain entry is missing or unreadable"]
    if line is None:
        return ["no line committed in the addendum's entry is proven by the index"]
    out = []
    if (subject.get("patient_id") != str(patient_id) or line.get("patient_id") != str(patient_id)):
        out.append("patient differs from the archived addendum")
    if (subject.get("position") != str(position) or line.get("position") != str(position)):
        out.append(f"position {position}, archived {line.get('position')}")
    if (subject.get("original_entry_seq") != str(original_seq)
            or line.get("original_entry_seq") != str(original_seq)):
        out.append(f"corrects entry #{original_seq}, archived #{line.get('original_entry_seq')}")
    archived = line.get("corrected")
    try:
        archived = json.loads(archived) if isinstance(archived, str) else None
    except ValueError:
        archived = None
    if archived != dict(fields):
        out.append("corrected fields differ from the archived addendum")
    return out


@dataclass(frozen=True)
class AddendumEntry:
    """An addendum as its own chain entry names it (``subject``): the entry's seq, the
    original's entry seq, the patient and the position in the original's chain of addenda."""

    seq: int
    original_seq: int | None
    patient_id: str | None
    position: str | None


def addendum_entry(seq: int, subject: Mapping | None) -> AddendumEntry:
    """The addendum an entry's subject names (missing or unreadable values become None)."""
    subject = subject if isinstance(subject, Mapping) else {}
    original = subject.get("original_entry_seq")
    try:
        original_seq = int(original) if isinstance(original, str) else None
    except ValueError:
        original_seq = None
    patient = subject.get("patient_id")
    position = subject.get("position")
    return AddendumEntry(seq, original_seq, patient if isinstance(patient, str) else None,
                         position if isinstance(position, str) else None)


def addenda_without_rows(entries: Iterable[AddendumEntry],
                         rows: Iterable[tuple[int | None, Hashable, int | None]]) -> list[AddendumEntry]:
    """The archived addenda no database row stands for. ``rows``: (the row's own entry seq,
    patient id, original's entry seq) per addendum row. An addendum whose row was deleted, or
    moved to another patient or original, is missing for the day it corrects: billing would
    otherwise fall back to the facts it corrected."""
    have = {(seq, str(patient), original) for seq, patient, original in rows}
    return [e for e in entries if (e.seq, e.patient_id, e.original_seq) not in have]
