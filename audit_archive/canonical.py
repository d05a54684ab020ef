"""Canonical bytes of archive entries, records and patient line commitments.

Canonical form is RFC 8785 (JSON Canonicalization Scheme) produced by the ``rfc8785``
package.  We additionally refuse floats anywhere (money, ids and timestamps travel as
strings) and integers outside the IEEE-754 exact range, so that every value has exactly one
spelling that any JSON library reads back identically.  Verifiers never re-serialize:
they hash the stored bytes and only *parse* them (stdlib ``json``) to read fields.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import rfc8785

from . import entry as entry_format
from .commitments import SALT_SIZE, commit_line_bytes

FORMAT_VERSION = 2  # what build_entry writes; entry.py reads every version
_MAX_SAFE_INT = 2 ** 53 - 1
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class CanonicalError(ValueError):
    """A value cannot be put in canonical form (float, bad type, naive datetime ...)."""


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise CanonicalError(f"{path}: integer {value} outside the exact JSON range; pass it as a string")
        return
    if isinstance(value, float):
        raise CanonicalError(f"{path}: floats are not allowed (money and measurements travel as strings)")
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise CanonicalError(f"{path}: object key {k!r} is not a string")
            _check(v, f"{path}.{k}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]")
        return
    raise CanonicalError(f"{path}: {type(value).__name__} is not JSON; convert it to a string first")


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes (UTF-8) of ``value``.

    Accepts dict/list/tuple/str/int/bool/None.  Raises CanonicalError for floats, ints
    beyond 2**53-1, non-string keys and other types.
    """
    _check(value, "$")
    return rfc8785.dumps(value)


def record_sha256(record: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical bytes of a structured record (the caller's plain-data snapshot)."""
    return hashlib.sha256(canonical_bytes(dict(record))).hexdigest()


def new_salt() -> bytes:
    """32 random bytes for one line commitment (os.urandom)."""
    return os.urandom(SALT_SIZE)


def line_bytes(line: Mapping[str, Any]) -> bytes:
    """Canonical bytes of one patient line; exported verbatim so verifiers need no JCS library."""
    return canonical_bytes(dict(line))


def commit_line(line: Mapping[str, Any], salt: bytes) -> str:
    """Commitment to one patient's line of a multi-patient document (see docs/audit-format.md §Line commitments).

    ``line`` is a plain dict (strings/ints), ``salt`` 32 random bytes kept by the caller
    (e.g. stored with the attendance row) so the line can be disclosed later.  Returns hex.
    """
    if len(salt) != SALT_SIZE:
        raise CanonicalError(f"line salt must be {SALT_SIZE} bytes, got {len(salt)}")
    return commit_line_bytes(line_bytes(line), salt)


def utc_timestamp(when: datetime | str) -> str:
    """Format a timezone-aware datetime as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` in UTC.

    Naive datetimes are refused (CanonicalError) because their zone is a guess.  A string is
    accepted only if it already has that exact form.
    """
    if isinstance(when, str):
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z", when):
            raise CanonicalError(f"timestamp {when!r} is not UTC ISO-8601 ending in Z")
        return when
    if when.tzinfo is None or when.utcoffset() is None:
        raise CanonicalError("naive datetime: pass a timezone-aware UTC time")
    u = when.astimezone(timezone.utc)
    s = u.strftime("%Y-%m-%dT%H:%M:%S")
    if u.microsecond:
        s += f".{u.microsecond:06d}"
    return s + "Z"


@dataclass(frozen=True)
class CheckpointRef:
    """The checkpoint a stamp names: origin, tree size and hex root hash."""
    origin: str
    size: int
    root: str

    def as_json(self) -> dict:
        return {"origin": self.origin, "root": self.root, "size": self.size}


def _check_entry_fields(*, seq, kind, subject, actor, record_hash, line_commitments, doc_sha256, prev_hash) -> None:
    if not isinstance(seq, int) or seq < 1:
        raise CanonicalError(f"seq must be a positive int, got {seq!r}")
    if not isinstance(kind, str) or not re.fullmatch(r"[a-z][a-z0-9_-]{0,63}", kind):
        raise CanonicalError(f"kind must be a lowercase identifier (a-z, 0-9, _ or -, up to 64), got {kind!r}")
    if not isinstance(actor, str) or not actor:
        raise CanonicalError("actor must be a non-empty string")
    for k, v in subject.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise CanonicalError(f"subject ids must be strings: {k!r}={v!r}")
    hexes = {"record_sha256": record_hash, "doc.sha256": doc_sha256}
    if prev_hash is not None:
        hexes["prev_hash"] = prev_hash
    for i, c in enumerate(line_commitments):
        hexes[f"line_commitments[{i}]"] = c
    for name, value in hexes.items():
        if not isinstance(value, str) or not _HEX64.match(value):
            raise CanonicalError(f"{name} must be 64 lowercase hex digits, got {value!r}")
    if (seq == 1) != (prev_hash is None):
        raise CanonicalError("prev_hash must be null exactly for seq 1")


def _described(origin, kind, subject, actor, occurred_at, record_hash, line_commitments) -> dict:
    """The descriptive fields every entry version carries (docs/audit-format.md §1)."""
    return {"log": origin, "kind": kind, "subject": dict(subject), "actor": actor,
            "occurred_at": utc_timestamp(occurred_at), "record_sha256": record_hash,
            "line_commitments": list(line_commitments)}


def build_entry(*, seq: int, kind: str, subject: Mapping[str, str], actor: str, occurred_at: datetime | str,
                record_hash: str, line_commitments: Sequence[str], doc_sha256: str, doc_size: int,
                prev_hash: str | None, checkpoint: CheckpointRef | None, origin: str,
                archived_at: datetime | str | None = None, backfill: str | None = None) -> bytes:
    """Entry bytes in the current format (v2): the fixed-width header line, then the JCS object
    of the descriptive fields.  Field meanings: docs/audit-format.md §1.

    ``prev_hash`` is the previous entry's chain hash (``entry.chain_hash``), None for seq 1.
    Raises CanonicalError for malformed fields (non-string subject ids, bad hex, seq < 1,
    a checkpoint from another log or not earlier than the entry ...).
    """
    _check_entry_fields(seq=seq, kind=kind, subject=subject, actor=actor, record_hash=record_hash,
                        line_commitments=line_commitments, doc_sha256=doc_sha256, prev_hash=prev_hash)
    if checkpoint is not None and checkpoint.origin != origin:
        raise CanonicalError(f"checkpoint origin {checkpoint.origin!r} is not this log ({origin!r})")
    try:
        header = entry_format.build_header(seq=seq, prev_hash=prev_hash, doc_sha256=doc_sha256, doc_size=doc_size,
                                           checkpoint=(checkpoint.size, checkpoint.root) if checkpoint else None)
    except entry_format.EntryFormatError as exc:
        raise CanonicalError(str(exc)) from None
    body = _described(origin, kind, subject, actor, occurred_at, record_hash, line_commitments)
    if archived_at is not None:  # when the server archived it (``ledger.append`` always sets it)
        body["archived_at"] = utc_timestamp(archived_at)
    if backfill is not None:  # an event archived late on purpose (imported history): say why
        if archived_at is None:
            raise CanonicalError("backfill needs archived_at")
        if not (0 < len(backfill) <= entry_format.BACKFILL_MAX_CHARS) or backfill.strip() != backfill:
            raise CanonicalError(f"backfill must be a non-empty reason of at most "
                                 f"{entry_format.BACKFILL_MAX_CHARS} characters, without outer spaces")
        body["backfill"] = backfill
    return header + canonical_bytes({**body, "media_type": "application/pdf"})


def build_entry_v1(*, seq: int, kind: str, subject: Mapping[str, str], actor: str, occurred_at: datetime | str,
                   record_hash: str, line_commitments: Sequence[str], doc_sha256: str, doc_size: int,
                   prev_hash: str | None, checkpoint: CheckpointRef | None, origin: str) -> bytes:
    """Entry bytes in the first format (v1: one JCS object).  No longer written by ``ledger.append``;
    kept so the tests and the documented vectors can build v1 logs, which stay verifiable.

    Raises CanonicalError as ``build_entry``.
    """
    _check_entry_fields(seq=seq, kind=kind, subject=subject, actor=actor, record_hash=record_hash,
                        line_commitments=line_commitments, doc_sha256=doc_sha256, prev_hash=prev_hash)
    entry = {
        **_described(origin, kind, subject, actor, occurred_at, record_hash, line_commitments),
        "v": 1,
        "seq": seq,
        "doc": {"media_type": "application/pdf", "sha256": doc_sha256, "size": int(doc_size)},
        "prev_hash": prev_hash,
        "checkpoint": checkpoint.as_json() if checkpoint else None,
    }
    return canonical_bytes(entry)


def entry_hash(entry: bytes) -> str:
    """Hex chain hash of stored entry bytes (the next entry's prev_hash): per version, see
    ``entry.chain_hash``.  Raises EntryFormatError for bytes of no known version."""
    return entry_format.chain_hash(entry)
