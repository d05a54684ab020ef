"""Appending to the ledger inside the caller's transaction.

Order inside ``append`` (all under the chain lock):
  lock -> read tail (seq, entry hash) and latest checkpoint -> stamp the PDF -> hash it ->
  build the entry bytes -> write the file durably -> INSERT the row.
The caller commits.  If anything fails or the process dies before commit, the row vanishes
with the transaction and at most an unreferenced file remains (reported by verify, never
fatal).  A row can never exist without its file because the file is fsynced first.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from sqlalchemy import event, select
from sqlalchemy.engine import Connection, Engine

from . import canonical
from . import entry as entry_format
from .canonical import CheckpointRef
from .filestore import FileStore
from .schema import audit_checkpoints, audit_entries
from .stamp import StampInfo, stamp_pdf

# Arbitrary constant naming "the audit chain" among PostgreSQL advisory locks.
PG_LOCK_KEY = 0x10A0D17


class LedgerError(RuntimeError):
    """Append refused (bad input, or the ledger's tail is inconsistent)."""


@dataclass(frozen=True)
class AppendResult:
    seq: int
    entry_hash: str
    leaf_hash: str
    prev_hash: str | None
    record_sha256: str
    doc_sha256: str
    doc_size: int
    path: Path
    entry_bytes: bytes


def sqlite_begin_immediate(engine: Engine, *, busy_timeout_ms: int = 60_000, wal: bool = True) -> Engine:
    """Make every transaction on this pysqlite engine start with ``BEGIN IMMEDIATE``.

    This is the recipe from the SQLAlchemy SQLite dialect docs ("Serializable isolation /
    Savepoints / Transactional DDL"): disable pysqlite's own transaction handling on connect
    and emit BEGIN ourselves.  IMMEDIATE takes the write lock at BEGIN, so two appenders queue
    on ``busy_timeout`` instead of failing with "database is locked" when a read lock would
    have to be upgraded.  WAL lets readers proceed during an append.  Returns the engine.
    """
    if engine.dialect.name != "sqlite":
        raise ValueError("sqlite_begin_immediate is for sqlite engines")

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if wal:
            cur.execute("PRAGMA journal_mode = WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def lock_chain(conn: Connection) -> None:
    """Serialize appenders for the rest of the caller's transaction.

    PostgreSQL: transaction-scoped advisory lock.  SQLite: nothing to do here, the
    transaction must already hold the write lock (see ``sqlite_begin_immediate``).
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_LOCK_KEY})")


def tail(conn: Connection) -> tuple[int, str | None]:
    """(last seq, its entry hash) or (0, None) for an empty ledger."""
    row = conn.execute(select(audit_entries.c.seq, audit_entries.c.entry_hash)
                       .order_by(audit_entries.c.seq.desc()).limit(1)).first()
    return (0, None) if row is None else (int(row.seq), row.entry_hash)


def latest_checkpoint_ref(conn: Connection, below: int | None = None,
                          origin: str | None = None) -> CheckpointRef | None:
    """The most recent stored checkpoint (largest tree size, smaller than ``below`` and of log
    ``origin`` when given) as (origin, size, root).  Rows whose columns cannot be such a
    checkpoint (a size that is not an int in 1..below-1, a root that is not hex, another log)
    are skipped, so that a damaged row cannot stop appends; ``verify`` reports such rows."""
    rows = conn.execute(select(audit_checkpoints.c.origin, audit_checkpoints.c.tree_size,
                               audit_checkpoints.c.root_hash)
                        .order_by(audit_checkpoints.c.tree_size.desc(), audit_checkpoints.c.id.desc()))
    for row in rows:
        size, root = row.tree_size, row.root_hash
        if (type(size) is int and size >= 1 and (below is None or size < below)
                and isinstance(root, str) and re.fullmatch(r"[0-9a-f]{64}", root) and isinstance(row.origin, str)
                and (origin is None or row.origin == origin)):
            return CheckpointRef(row.origin, size, root)
    return None


def append(conn: Connection, store: FileStore, *, kind: str, subject: Mapping[str, str], actor: str,
           record: Mapping[str, Any], pdf_bytes: bytes, occurred_at: datetime | str,
           line_commitments: Sequence[str] = (), verify_base_url: str, origin: str,
           label: str | None = None, backfill: str | None = None) -> AppendResult:
    """Stamp ``pdf_bytes``, store it, and append its entry, inside the caller's open transaction.

    - ``conn``: a Connection with a transaction begun (SQLite: via ``sqlite_begin_immediate``).
      The caller commits (together with its own changes, e.g. marking the roster closed) or
      rolls back.  Appends are serialized for the duration of that transaction.
    - ``subject``: string ids naming what the document is about (never patient ids for a
      multi-patient document; use ``line_commitments`` for those).
    - ``record``: the plain-data snapshot the PDF was rendered from; only its hash is stored.
    - ``occurred_at``: timezone-aware datetime (converted to UTC) or a UTC "...Z" string.
    - ``line_commitments``: hex values from ``canonical.commit_line``.
    - ``verify_base_url``: e.g. "https://portal.example.org"; the QR encodes ``{base}/verify/{seq}``.
    - ``origin``: the log name (also the checkpoint origin / signing key name).
    - ``label``: program label printed on the stamp (defaults to origin).
    - ``backfill``: for history archived long after its events on purpose (an import, the
      demo's past weeks), a short reason; the entry carries it, and ``verify`` reports such
      entries in one summary line instead of one late-archived warning each.

    Raises StampError for a non-PDF, CanonicalError for malformed fields, FileStoreError,
    and database errors from the INSERT.
    """
    record_hash = canonical.record_sha256(record)
    lock_chain(conn)
    last_seq, prev_hash = tail(conn)
    seq = last_seq + 1
    ck = latest_checkpoint_ref(conn, below=seq, origin=origin)
    # When it was archived, server UTC; never earlier than the previous entry's archived time
    # (verify checks the chain's archived times never decrease, whatever the clock did).
    archived_at = datetime.now(timezone.utc)
    if last_seq:
        _occ, prev_archived = entry_format.times_of(entry_bytes(conn, last_seq) or b"")
        try:
            if prev_archived and archived_at < entry_format.utc_instant(prev_archived):
                archived_at = entry_format.utc_instant(prev_archived)
        except entry_format.EntryFormatError:
            pass  # a damaged previous entry is verify's to report; this one gets the clock's time
    info = StampInfo(label=label or origin, seq=seq, prev_hash=prev_hash, record_sha256=record_hash,
                     checkpoint=(ck.size, ck.root) if ck else None,
                     verify_url=f"{verify_base_url.rstrip('/')}/verify/{seq}")
    stamped = stamp_pdf(pdf_bytes, info)
    doc_sha = hashlib.sha256(stamped).hexdigest()
    entry = canonical.build_entry(
        seq=seq, kind=kind, subject=subject, actor=actor, occurred_at=occurred_at,
        record_hash=record_hash, line_commitments=list(line_commitments), doc_sha256=doc_sha,
        doc_size=len(stamped), prev_hash=prev_hash, checkpoint=ck, origin=origin,
        archived_at=archived_at, backfill=backfill)
    # v2: the chain hash is the leaf hash (one SHA-256 serves the chain and the tree).
    l_hash = entry_format.leaf_hash(entry).hex()
    e_hash = l_hash
    _, path = store.put(stamped)
    conn.execute(audit_entries.insert().values(
        seq=seq, v=canonical.FORMAT_VERSION, kind=kind, entry_bytes=entry, entry_hash=e_hash,
        leaf_hash=l_hash, prev_hash=prev_hash, doc_sha256=doc_sha, doc_size=len(stamped),
        created_at=archived_at))
    return AppendResult(seq=seq, entry_hash=e_hash, leaf_hash=l_hash, prev_hash=prev_hash,
                        record_sha256=record_hash, doc_sha256=doc_sha, doc_size=len(stamped),
                        path=path, entry_bytes=entry)


def as_bytes(value) -> bytes:
    """An ``entry_bytes`` value as the driver returns it (bytes, a memoryview, or a str when the
    column was rewritten as TEXT outside the portal) as bytes; ``verify`` reports the TEXT case."""
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)


def entry_bytes(conn: Connection, seq: int) -> bytes | None:
    """The stored bytes of entry ``seq`` as ``bytes`` (None if absent).  A value rewritten as
    TEXT outside the portal comes back as its UTF-8 bytes; ``verify`` reports it."""
    value = conn.execute(select(audit_entries.c.entry_bytes).where(audit_entries.c.seq == seq)).scalar()
    return None if value is None else as_bytes(value)


def leaf_hashes(conn: Connection, upto: int | None = None) -> list[bytes]:
    """Leaf hashes recomputed from stored entry bytes, seq order, first ``upto`` entries.

    Raises LedgerError if the seqs are not contiguous from 1 (no tree can be formed).
    """
    q = select(audit_entries.c.seq, audit_entries.c.entry_bytes).order_by(audit_entries.c.seq)
    if upto is not None:
        q = q.where(audit_entries.c.seq <= upto)
    out = []
    for i, (seq, data) in enumerate(conn.execute(q), start=1):
        if seq != i:
            raise LedgerError(f"ledger seqs not contiguous: expected {i}, found {seq}")
        out.append(entry_format.leaf_hash(as_bytes(data)))
    return out
