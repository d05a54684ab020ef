"""Full verification of the ledger in the database against the file store and checkpoints."""

from __future__ import annotations

import gc
import os
import re
from datetime import datetime, timedelta
from binascii import hexlify
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.engine import Connection

from . import merkle
from .entry import (HEADER_LEN, MAX_SEQ, PREFIX_LEN, TAIL_CKPT, TAIL_DOC_SHA, TAIL_DOC_SIZE, TAIL_LEN, V2_MAGIC, ZERO_HASH,
                    EntryFormatError, chain_fields, chain_hash, kind_of, parse_entry)
from .checkpoint import checkpoint_files, open_row
from .entry import backfill_of, times_of
from .filestore import _HEX64, FileStore
from .ledger import as_bytes
from .note import NoteError, Verifier, open_checkpoint, parse_verifier
from .schema import audit_checkpoints, audit_entries


@dataclass
class Report:
    """Outcome of ``verify_ledger``.  ``ok`` is False iff ``failures`` is non-empty.

    ``warnings`` hold non-fatal findings (unreferenced files, signatures not checked).
    ``first_bad_seq`` is the smallest entry seq named by a failure (None if none is).
    """
    entries: int = 0
    documents_checked: int = 0
    checkpoints_checked: int = 0
    root_hash: str | None = None
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unreferenced_files: list[str] = field(default_factory=list)
    first_bad_seq: int | None = None
    # (seq, occurred_at, archived_at) of entries archived later than the limit after their event
    late_archived: list[tuple[int, str, str]] = field(default_factory=list)
    # (seq, days between event and archiving) of entries marked as backfilled history, and the
    # reasons they give: reported in one summary line, not one warning each
    backfilled: list[tuple[int, float]] = field(default_factory=list)
    backfill_reasons: dict[str, int] = field(default_factory=dict)
    newest_checkpoint_size: int | None = None  # the largest signed size among rows and files
    since_size: int | None = None               # the size ``--since`` started from
    # Set by callers that know more (the portal: witnesses, checkpoint time); printed on the OK line.
    extra_summary: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def backfill_line(self) -> str:
        """One line for every entry marked as backfilled history (docs/audit-format.md §1)."""
        n = len(self.backfilled)
        oldest = max((days for _seq, days in self.backfilled), default=0.0)
        why = "; ".join(f"{reason!r}" + (f" ({k})" if len(self.backfill_reasons) > 1 else "")
                        for reason, k in sorted(self.backfill_reasons.items()))
        return (f"{n} entr{'y' if n == 1 else 'ies'} marked as backfilled history "
                f"(seq {self.backfilled[0][0]}-{self.backfilled[-1][0]}; events up to {oldest:.1f} days "
                f"before archiving; reason {why})")

    def fail(self, msg: str, seq: int | None = None) -> None:
        self.failures.append(msg)
        if seq is not None and (self.first_bad_seq is None or seq < self.first_bad_seq):
            self.first_bad_seq = seq

    def summary(self) -> str:
        n = len(self.failures)
        head = "OK" if self.ok else f"FAILED ({n} problem{'s' if n != 1 else ''}" + (
            f", first bad entry {self.first_bad_seq})" if self.first_bad_seq is not None else ")")
        reach = ("no signed checkpoint" if self.newest_checkpoint_size is None else
                 f"newest checkpoint covers {self.newest_checkpoint_size}")
        uncovered = self.entries - (self.newest_checkpoint_size or 0)
        parts = [f"{self.entries} entries", f"{self.documents_checked} documents",
                 f"{self.checkpoints_checked} checkpoints", reach, *self.extra_summary,
                 f"{uncovered} not yet covered by a checkpoint"]
        if self.since_size is not None:
            parts.append(f"--since started from size {self.since_size}")
        if self.late_archived:
            parts.append(f"{len(self.late_archived)} late-archived")
        if self.backfilled:
            parts.append(self.backfill_line())
        lines = [f"{head}: " + ", ".join(parts) + f", root {self.root_hash}"]
        lines += [f"FAIL {m}" for m in self.failures] + [f"WARN {m}" for m in self.warnings]
        return "\n".join(lines)


def _file_sha256(path) -> tuple[str, int]:
    with open(path, "rb") as f:
        data = f.read()
    return sha256(data).hexdigest(), len(data)


# Rows fetched per round trip.  A power of two: each full batch starts at a multiple of it, so
# its leaves form whole perfect Merkle subtrees that are hashed level by level (see _Heads).
_BATCH = 1024

# leaf_hash comes back NULL when it equals entry_hash (every v2 row): fetching a NULL is cheaper
# than a 64-character string, and the comparison is the same.
_ENTRY_SQL = (f"SELECT seq, entry_bytes, entry_hash, NULLIF(leaf_hash, entry_hash), prev_hash, doc_sha256, "
              f"doc_size, kind, v FROM {audit_entries.name} ORDER BY seq")

def _scan_store(store: FileStore, referenced: set[str]) -> tuple[list[str], list] | None:
    """``(sorted(set(store.list_all()) - referenced), store.stale_temp_files())`` in one pass of
    ``os.listdir`` over the store, for a plain ``FileStore`` (None for anything else, or on an
    OS error, so that the caller asks the store itself).  Only names not referenced by an entry
    are checked against the digest pattern, instead of every stored file.
    """
    if type(store) is not FileStore or not store.root.is_dir():
        return None
    root, suffix = store.root, store.suffix
    cut = -len(suffix)
    on_disk: set[str] = set()
    stale = []
    try:
        for sub in os.scandir(root):
            if not (sub.is_dir() and len(sub.name) == 2):
                continue
            p = sub.name
            names = os.listdir(sub.path)
            on_disk.update([p + n[:cut] for n in names if n.endswith(suffix) and n[:1] != "."])
            stale += [root / p / n for n in names if n.startswith(".tmp-")]
    except OSError:
        return None
    return sorted(d for d in on_disk - referenced if _HEX64.match(d)), sorted(stale)


_STORE_DIR = re.compile(r"[0-9a-f]{2}")


def _foreign_files(store: FileStore) -> list[str]:
    """Paths (relative to the store root) of everything in a plain ``FileStore`` that the portal
    does not write there: other names, other folders, symbolic links.  None of them is evidence
    (the chain names files by hash), but someone put them there."""
    if type(store) is not FileStore or not store.root.is_dir():
        return []
    name = re.compile(r"[0-9a-f]{62}" + re.escape(store.suffix))
    out = []
    try:
        for top in os.scandir(store.root):
            if not (top.is_dir(follow_symlinks=False) and _STORE_DIR.fullmatch(top.name)):
                out.append(top.name + ("/" if top.is_dir() else ""))
                continue
            for f in os.scandir(top.path):
                if f.name.startswith(".tmp-"):
                    continue  # reported as stale temp files
                if not (f.is_file(follow_symlinks=False) and name.fullmatch(f.name)):
                    out.append(f"{top.name}/{f.name}" + ("/" if f.is_dir() else ""))
    except OSError as exc:
        out.append(f"(listing failed: {exc})")
    return sorted(out)


def _fold(peaks: list[bytes]) -> bytes:
    """Root of a compact range (perfect-subtree peaks, largest first), as merkle.Frontier.root."""
    if not peaks:
        return merkle.EMPTY_ROOT
    h = peaks[-1]
    for p in reversed(peaks[:-1]):
        h = sha256(b"\x01" + p + h).digest()
    return h


def _push(peaks: list[bytes], size: int, h: bytes, height: int) -> None:
    """Append the perfect subtree ``h`` of 2**height leaves to the compact range of ``size`` leaves
    (``size`` must be a multiple of 2**height)."""
    n = size >> height
    while n & 1:
        h = sha256(b"\x01" + peaks.pop() + h).digest()
        n >>= 1
    peaks.append(h)


class _Heads:
    """Streaming RFC 9162 tree head fed a batch of leaf hashes at a time (same results as
    ``merkle.Frontier``); records the root at every size in ``want`` into ``roots``.

    A batch appended at a size that is a multiple of its largest power of two is hashed level
    by level in list comprehensions; its whole perfect subtrees are then merged into the peaks,
    and a root inside the batch is the peaks plus the subtrees of that prefix.  Otherwise the
    leaves are appended one at a time.
    """

    __slots__ = ("size", "peaks", "roots", "_want", "_wi")

    def __init__(self, want: set[int], roots: dict[int, bytes]) -> None:
        self.size = 0
        self.peaks: list[bytes] = []
        self.roots = roots
        self._want = sorted(s for s in want if isinstance(s, int) and s > 0)
        self._wi = 0

    def root(self) -> bytes:
        return _fold(self.peaks)

    def extend(self, leaves: list[bytes]) -> None:
        m = len(leaves)
        if not m:
            return
        s = self.size
        want, wi = self._want, self._wi
        if s & ((1 << (m.bit_length() - 1)) - 1):
            for leaf in leaves:
                _push(self.peaks, s, leaf, 0)
                s += 1
                if wi < len(want) and want[wi] == s:
                    self.roots[s] = _fold(self.peaks)
                    wi += 1
            self.size, self._wi = s, wi
            return
        levels = [leaves]
        cur = leaves
        while len(cur) > 1:
            cur = [sha256(b"\x01" + a + b).digest() for a, b in zip(cur[::2], cur[1::2])]
            levels.append(cur)
        end = s + m
        while wi < len(want) and want[wi] < end:
            self.roots[want[wi]] = _fold(self._add_prefix(self.peaks[:], s, levels, want[wi] - s))
            wi += 1
        self._add_prefix(self.peaks, s, levels, m)
        self.size = end
        if wi < len(want) and want[wi] == end:
            self.roots[end] = _fold(self.peaks)
            wi += 1
        self._wi = wi

    @staticmethod
    def _add_prefix(peaks: list[bytes], s: int, levels: list[list[bytes]], j: int) -> list[bytes]:
        # The first j leaves of the batch are whole subtrees of 2**h leaves, one per set bit h of j,
        # largest first; the subtree at batch offset `off` is node off >> h of level h.
        off = 0
        for h in range(j.bit_length() - 1, -1, -1):
            if j >> h & 1:
                _push(peaks, s + off, levels[h][off >> h], h)
                off += 1 << h
        return peaks


def _entry_batches(conn: Connection, batch: int):
    """Yield lists of ``(seq, entry_bytes, entry_hash, leaf_hash, prev_hash, doc_sha256, doc_size)``
    tuples in seq order, streamed in batches of ``batch`` rows (the last may be shorter).

    Uses the DBAPI cursor of the caller's connection (same transaction) for the stdlib sqlite3
    and psycopg/psycopg2 drivers — a server-side cursor on PostgreSQL — and SQLAlchemy's
    streamed result otherwise.  entry_bytes may be bytes or a buffer (memoryview).
    """
    dialect = conn.dialect
    if dialect.name == "sqlite" and dialect.driver == "pysqlite":
        cur = conn.connection.driver_connection.cursor()
    elif dialect.name == "postgresql" and dialect.driver in ("psycopg", "psycopg2"):
        cur = conn.connection.driver_connection.cursor(name=f"audit_verify_{id(conn):x}")
    else:
        result = conn.execution_options(stream_results=True, yield_per=batch).exec_driver_sql(_ENTRY_SQL)
        try:
            for part in result.partitions(batch):
                yield [tuple(r) for r in part]
        finally:
            result.close()
        return
    try:
        cur.execute(_ENTRY_SQL)
        fetch = cur.fetchmany
        while True:
            rows = fetch(batch)
            if not rows:
                break
            yield rows
    finally:
        cur.close()


def _check_document(rep: "Report", path_for, seq: int, e_doc: str, e_size) -> None:
    try:
        got, got_size = _file_sha256(path_for(e_doc))
    except FileNotFoundError:
        rep.fail(f"entry {seq}: stored PDF {e_doc} is missing", seq)
    except Exception as exc:  # unreadable or a malformed name in the entry
        rep.fail(f"entry {seq}: stored PDF {e_doc!r} unreadable: {exc}", seq)
    else:
        rep.documents_checked += 1
        if got != e_doc:
            rep.fail(f"entry {seq}: stored PDF sha256 mismatch (expected {e_doc}, got {got})", seq)
        elif got_size != e_size:
            rep.fail(f"entry {seq}: stored PDF size mismatch (expected {e_size}, got {got_size})", seq)


# Batch checks for v2 entries.  The header is fixed-width (entry.py), so a batch is checked with
# a few C-level operations per entry instead of a parse: the expected "magic seq=… prev=… ckpt="
# prefix of every entry is known before reading it (seq from the position, prev from the
# previous entry's recomputed hash); the rest of the header (named checkpoint and document) is
# joined into one buffer per batch, where separators are checked by stride slices and the
# hex/decimal fields by ``bytes.translate``.  Anything that differs sends the batch to the
# row-by-row pass, which words each failure.
_PREFIX_FMT = V2_MAGIC + b"seq=%012d prev=%s ckpt="
_ZERO = ZERO_HASH.encode()
_TAIL_TEMPLATE = b"0" * 12 + b":" + b"0" * 64 + b" doc=" + b"0" * 64 + b":" + b"0" * 12 + b"\n"
assert len(_TAIL_TEMPLATE) == TAIL_LEN
_TAIL_SEPS = [(i, _TAIL_TEMPLATE[i:i + 1]) for i in range(TAIL_LEN) if _TAIL_TEMPLATE[i:i + 1] != b"0"]
_TAIL_LEFT = _TAIL_TEMPLATE.translate(None, b"0123456789abcdef")  # separators that are not hex digits
_TAIL_DIGITS = [*range(0, 12), *range(TAIL_DOC_SIZE.start, TAIL_DOC_SIZE.stop)]
_NO_CKPT = b"0" * 12 + b":" + _ZERO


class _Pass:
    """One streaming pass over the entries in seq order: chain, seq, header form, the named
    checkpoints, the stored columns (when given) and, when ``path_for`` is given, the documents
    (collecting the referenced digests in ``referenced``); feeds the leaf hashes to ``_Heads``.
    Failures go to ``rep``."""

    def __init__(self, rep: "Report", heads: "_Heads", path_for=None) -> None:
        self.rep, self.heads, self.path_for = rep, heads, path_for
        self.expected = 1
        self.prev: str | None = None       # chain hash of the last entry seen
        self.prev_seq: int | None = None   # its seq (differs from expected - 1 after a gap)
        self.named: dict[tuple[int, str], int] = {}  # (size, root) named by entries -> first seq naming it
        self.referenced: set[str] = set()

    def feed(self, seqs: tuple, datas, cols: tuple | None = None) -> None:
        """Check one batch.  ``seqs``: the seq column (or positions); ``datas``: entry bytes;
        ``cols``: ``(entry_hash, leaf_hash or None where equal to entry_hash, prev_hash, doc_sha256,
        doc_size, kind, v)`` column tuples from the database (``_ENTRY_SQL``), or None when
        verifying bare entry bytes."""
        leaves = self._fast(seqs, datas, cols)
        if leaves is None:
            leaves = self._slow(seqs, datas, cols)
        self.heads.extend(leaves)
        self.rep.entries += len(datas)

    def _fast(self, seqs, datas, cols) -> list[bytes] | None:
        m, s = len(datas), self.expected
        if seqs != tuple(range(s, s + m)):
            return None
        if s != 1 and self.prev is None:
            return None
        prev = None if s == 1 else self.prev  # seq 1 names no predecessor, whatever came before
        leaves = [sha256(b"\x00" + d).digest() for d in datas]
        hx = [hexlify(leaf) for leaf in leaves]
        prevs = [prev.encode() if prev else _ZERO, *hx[:-1]]
        if not all(map(bytes.startswith, datas, [_PREFIX_FMT % p for p in zip(seqs, prevs)])):
            return None
        tails = [d[PREFIX_LEN:HEADER_LEN] for d in datas]
        j = b"".join(tails)
        if (len(j) != TAIL_LEN * m
                or any(j[i::TAIL_LEN] != c * m for i, c in _TAIL_SEPS)
                or j.translate(None, b"0123456789abcdef") != _TAIL_LEFT * m
                or b"".join([j[i::TAIL_LEN] for i in _TAIL_DIGITS]).translate(None, b"0123456789")):
            return None
        # first seq naming each checkpoint (earlier seqs overwrite later ones in the dict)
        named = []
        for ck, seq in dict(zip(reversed([t[TAIL_CKPT] for t in tails]), reversed(seqs))).items():
            if ck == _NO_CKPT:
                continue
            size = int(ck[:12])
            if size == 0 or ck[13:] == _ZERO or size >= seq:
                return None
            named.append(((size, ck[13:].decode()), seq))
        docs = sizes = None
        if cols is not None:
            col_hashes, col_leaves, col_prevs, col_docs, col_sizes, col_kinds, col_vs = cols
            # types and lengths first: joined strings could hide a shifted boundary, and SQLite
            # can hold a BLOB in a text column
            if (set(col_leaves) != {None} or set(map(type, col_hashes)) != {str} or set(map(len, col_hashes)) != {64}
                    or set(map(type, col_docs)) != {str} or set(map(len, col_docs)) != {64}
                    or "".join(col_hashes).encode() != b"".join(hx)
                    or col_prevs[0] != prev or col_prevs[1:] != col_hashes[:-1]
                    or "".join(col_docs).encode() != b"".join([t[TAIL_DOC_SHA] for t in tails])):
                return None
            sizes = [int(t[TAIL_DOC_SIZE]) for t in tails]
            # kinds as entry.kind_of reads them, joined ('\0' never occurs raw in an entry)
            kinds = [d[(i := d.find(b'"kind":"', HEADER_LEN) + 8):d.find(b'"', i)] for d in datas]
            if (list(col_sizes) != sizes or set(col_vs) != {2} or set(map(type, col_kinds)) != {str}
                    or "\0".join(col_kinds).encode() != b"\0".join(kinds)):
                return None
            if self.path_for is not None:
                docs = col_docs
        elif self.path_for is not None:
            docs = [t[TAIL_DOC_SHA].decode() for t in tails]
            sizes = [int(t[TAIL_DOC_SIZE]) for t in tails]
        for key, seq in named:
            self.named.setdefault(key, seq)
        self.expected = s + m
        self.prev, self.prev_seq = hx[-1].decode(), s + m - 1
        if docs is not None:
            self.referenced.update(docs)
            for seq, d, z in zip(seqs, docs, sizes):
                _check_document(self.rep, self.path_for, seq, d, z)
        return leaves

    def _slow(self, seqs, datas, cols) -> list[bytes]:
        rep = self.rep
        leaves = []
        for i, (seq, data) in enumerate(zip(seqs, datas)):
            expected = self.expected
            if type(seq) is not int:  # only a table rebuilt without its constraints holds this
                rep.fail(f"row {i + 1} of a batch has seq {seq!r}, not an integer (the table was rebuilt?)")
                leaves.append(sha256(b"\x00" + data).digest())
                continue
            if seq != expected:
                if seq > expected:
                    missing = f"entries {expected}..{seq - 1} are" if seq - 1 > expected else f"entry {expected} is"
                    where = f"the ledger starts at seq {seq}" if expected == 1 else f"seq jumps from {expected - 1} to {seq}"
                    rep.fail(f"{missing} missing ({where})", expected)
                else:
                    rep.fail(f"entry {seq}: out of order after {expected - 1}", seq)
            leaf = sha256(b"\x00" + data).digest()
            leaves.append(leaf)
            try:
                e_v, e_seq, e_prev, e_ck, e_doc, e_size = chain_fields(data)
            except EntryFormatError as exc:
                rep.fail(f"entry {seq}: stored bytes are not a valid entry: {exc}", seq)
                e_v = e_seq = e_prev = e_ck = e_doc = e_size = None
            # the hash the next entry must name, even when this one is malformed (entry.chain_hash)
            h = leaf.hex() if data.startswith(V2_MAGIC) else sha256(data).hexdigest()
            if e_seq is not None:
                if e_seq != seq:
                    rep.fail(f"entry {seq}: bytes say seq {e_seq} (row moved or swapped)", seq)
                want = None if seq == 1 else self.prev  # as in _fast: seq 1 names no predecessor
                if e_prev != want:
                    rep.fail(f"entry {seq}: prev_hash {e_prev} does not match hash of entry {self.prev_seq} ({want})"
                             if want is not None else f"entry {seq}: prev_hash {e_prev} but no entry precedes it", seq)
                if e_ck is not None:
                    self.named.setdefault(e_ck, seq)
            if cols is not None:
                col_hash, col_leaf, col_prev, col_doc, col_size, col_kind, col_v = (c[i] for c in cols)
                if col_leaf is None:  # NULLIF(leaf_hash, entry_hash): equal to entry_hash
                    col_leaf = col_hash
                if e_v is not None and col_v != e_v:
                    rep.fail(f"entry {seq}: v column {col_v!r} differs from the entry's format version {e_v}", seq)
                if e_seq is not None and col_kind != kind_of(data):
                    rep.fail(f"entry {seq}: kind column {col_kind!r} differs from the entry bytes ({kind_of(data)!r})", seq)
                if col_hash != h:
                    rep.fail(f"entry {seq}: entry_hash column {col_hash} != hash of the stored bytes {h}", seq)
                if col_leaf != leaf.hex():
                    rep.fail(f"entry {seq}: leaf_hash column does not match the stored bytes", seq)
                if e_seq is not None and col_prev != e_prev:
                    rep.fail(f"entry {seq}: prev_hash column {col_prev} differs from the entry bytes ({e_prev})", seq)
                if e_seq is not None and (col_doc, col_size) != (e_doc, e_size):
                    rep.fail(f"entry {seq}: doc columns ({col_doc}, {col_size}) differ from the entry bytes ({e_doc}, {e_size})", seq)
                if e_doc is None:
                    e_doc, e_size = col_doc, col_size
            if isinstance(e_doc, str) and self.path_for is not None:
                self.referenced.add(e_doc)
                _check_document(rep, self.path_for, seq, e_doc, e_size)
            self.prev, self.prev_seq = h, seq
            self.expected = seq + 1
        return leaves


DEFAULT_LATE_AFTER = timedelta(days=7)


def _instant(text: str) -> datetime:
    """Entry timestamp -> naive UTC datetime, fast (fixed width for ``fromisoformat``);
    ValueError when malformed."""
    if len(text) < 20 or text[-1] != "Z" or (len(text) > 20 and text[19] != "."):
        raise ValueError(text)
    return datetime.fromisoformat(text[:19] + "." + text[20:-1].ljust(6, "0"))


class _Times:
    """Archived times along the chain: never decreasing; once an entry carries one, every later
    entry does; an event older than its archiving by more than ``late_after`` is late-archived."""

    def __init__(self, rep: "Report", late_after: timedelta) -> None:
        self.rep, self.late_after = rep, late_after
        self.last: datetime | None = None
        self.last_text = self.last_seq = None

    def feed(self, seqs, datas) -> None:
        rep = self.rep
        for seq, data in zip(seqs, datas):
            occurred, archived = times_of(data)
            if archived is None:
                if self.last is not None:
                    rep.fail(f"entry {seq}: has no archived time, but entry {self.last_seq} before it has", seq)
                continue
            try:
                a = _instant(archived)
            except ValueError:
                rep.fail(f"entry {seq}: archived time {archived!r} is not a UTC timestamp", seq)
                continue
            if self.last is not None and a < self.last:
                rep.fail(f"entry {seq}: archived at {archived}, before entry {self.last_seq} "
                         f"({self.last_text}): archived times must never decrease", seq)
            else:
                self.last, self.last_text, self.last_seq = a, archived, seq
            try:
                gap = a - _instant(occurred) if occurred is not None else None
            except ValueError:
                continue  # a malformed event time is reported where the body is parsed
            late = gap is not None and gap > self.late_after
            backfill = backfill_of(data)
            if backfill is not None:
                # Marked as imported/backfilled history by the archiving server itself: counted
                # in the summary line, not warned about one by one.
                rep.backfilled.append((seq, max(gap.total_seconds(), 0) / 86400 if gap is not None else 0.0))
                rep.backfill_reasons[backfill] = rep.backfill_reasons.get(backfill, 0) + 1
                continue
            if late:
                rep.late_archived.append((seq, occurred, archived))
                days = (a - _instant(occurred)).total_seconds() / 86400
                rep.warnings.append(f"entry {seq}: late-archived: event at {occurred}, archived at "
                                    f"{archived} ({days:.1f} days later; limit "
                                    f"{self.late_after.total_seconds() / 86400:g} days)")


def verify_ledger(conn: Connection, store: FileStore, public_key: str | Verifier | None = None,
                  since_checkpoint: str | None = None, *, check_documents: bool = True,
                  checkpoint_dir: str | os.PathLike | None = None,
                  late_after: timedelta = DEFAULT_LATE_AFTER,
                  extra_heads: Sequence[tuple[str, int, bytes]] = ()) -> Report:
    """Recompute and cross-check everything the ledger claims.  Read-only.

    Checks, in one streaming pass over ``audit_entries`` in seq order:
      seq contiguity from 1; SHA-256 of the stored entry bytes vs the ``entry_hash`` and
      ``leaf_hash`` columns; the entry's own seq/v; its prev_hash vs the previous entry's
      recomputed hash (the chain); the doc columns vs the entry; each stored file's SHA-256 and
      size; the checkpoint each entry names.  Then every stored checkpoint: signature (when
      ``public_key`` — verifier key text or Verifier — is given), size not beyond the ledger,
      root equal to the recomputed root at that size.  ``since_checkpoint`` is an older signed
      checkpoint text held outside the database; it must verify and match the recomputed
      prefix root (this catches truncation and rewrites even if the checkpoints table was
      rewritten too).  ``checkpoint_dir``: where ``make_checkpoint`` writes the signed
      checkpoint files; each ``checkpoint-*.txt`` there is checked like a stored checkpoint (so
      deleting rows *and* checkpoint rows is still caught while a file remains), and a file
      missing for a stored checkpoint, or a file with no row, is a warning.  Files in the store
      that no entry references are warnings.  ``extra_heads``: ``(label, size, root)`` heads
      vouched for elsewhere (witness cosignatures); each must match the recomputed root at its
      size, else a failure naming the label.  Entries' archived times must never decrease;
      entries archived more than ``late_after`` after their event are ``late_archived``.

    For v2 entries the header is checked (the body is covered by the hashes and checked for
    form by ``entry.parse_entry`` wherever it is read: verification page, exports, standalone
    verifier); v1 entries are parsed whole.  Rows are checked a batch at a time (see ``_Pass``):
    only a batch where something differs is walked row by row to word each failure, so the
    checks and messages are those of a row-by-row pass.
    """
    rep = Report()
    verifier = parse_verifier(public_key) if isinstance(public_key, str) else public_key
    cps = [dict(r) for r in conn.execute(select(audit_checkpoints).order_by(
        audit_checkpoints.c.tree_size, audit_checkpoints.c.id)).mappings()]
    external = None
    if since_checkpoint is not None:
        try:
            external = open_checkpoint(since_checkpoint, verifier)
        except NoteError as exc:
            rep.fail(f"given checkpoint does not verify: {exc}")
    stored = _open_rows(rep, cps, verifier)
    files = _checkpoint_files(rep, checkpoint_dir, verifier, {ck.size for _label, ck in stored},
                              {c["tree_size"]: c["note"] for c in cps if isinstance(c.get("note"), str)})
    want_sizes = {ck.size for _label, ck in stored} | {ck.size for _name, ck in files}
    if external is not None:
        want_sizes.add(external.size)
    want_sizes |= {size for _label, size, _root in extra_heads}
    roots: dict[int, bytes] = {}
    if 0 in want_sizes:
        roots[0] = merkle.EMPTY_ROOT
    heads = _Heads(want_sizes, roots)
    run = _Pass(rep, heads, store.path_for if check_documents else None)
    times = _Times(rep, late_after)
    # The pass allocates a few tuples per row (the DBAPI rows among them) and no reference
    # cycles; cyclic GC runs would only re-traverse them (~25% of the pass), so they are paused
    # for the loop and the previous state is restored afterwards.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for rows in _entry_batches(conn, _BATCH):
            seqs, datas, *cols = zip(*rows)
            if set(map(type, datas)) != {bytes}:
                converted = []
                for seq, value in zip(seqs, datas):
                    data, problem = stored_bytes(value)
                    if problem:
                        rep.fail(f"entry {seq}: {problem}", seq)
                    converted.append(data)
                datas = tuple(converted)
            run.feed(seqs, datas, tuple(cols))
            times.feed(seqs, datas)
    finally:
        if gc_was_enabled:
            gc.enable()
    size = heads.size
    rep.root_hash = heads.root().hex()
    _check_named(rep, run.named, roots)
    if verifier is None and (cps or external):
        rep.warnings.append("checkpoint signatures not checked (no public key given)")
    for label, ck in stored:
        rep.checkpoints_checked += 1
        _check_head(rep, label, ck.size, ck.root, size, roots)
    if external is not None:
        _check_head(rep, "given checkpoint", external.size, external.root, size, roots)
        rep.checkpoints_checked += 1
        rep.since_size = external.size
    signed_sizes = [ck.size for _label, ck in stored] + [ck.size for _name, ck in files]
    rep.newest_checkpoint_size = max(signed_sizes) if signed_sizes else None
    for name, ck in files:
        _check_head(rep, f"checkpoint file {name}", ck.size, ck.root, size, roots)
        rep.checkpoints_checked += 1
    for label, head_size, head_root in extra_heads:
        _check_head(rep, label, head_size, head_root, size, roots)
    if not cps:
        rep.warnings.append("no stored checkpoint: tail truncation cannot be detected from the database alone")

    if not check_documents:
        # entries only: the store is neither read nor listed
        rep.warnings.append("documents not checked (entries only): stored PDFs and unreferenced files were not examined")
        return rep
    scanned = _scan_store(store, run.referenced)
    if scanned is None:
        rep.unreferenced_files = sorted(set(store.list_all()) - run.referenced)
        stale = store.stale_temp_files()
    else:
        rep.unreferenced_files, stale = scanned
    for d in rep.unreferenced_files:
        rep.warnings.append(f"unreferenced file {d} (no entry names it; left by an interrupted append?)")
    for p in stale:
        rep.warnings.append(f"stale temp file {p}")
    for p in _foreign_files(store):
        rep.warnings.append(f"unexpected file {p} in the archive folder (the portal never writes such a name)")
    return rep


def verify_entries(entries: Sequence[bytes], checkpoints: Sequence[str] = (),
                   public_key: str | Verifier | None = None) -> Report:
    """Verify a log given only as its entry bytes, in seq order (``entries[0]`` is seq 1).

    The entries-only part of ``verify_ledger`` without a database: every entry's hashes, seq,
    header and chain link, the checkpoint each entry names, and each given signed checkpoint
    (note text): signature with ``public_key`` (Verifier or key text; None = signatures not
    checked, with a warning), size not beyond the log, root equal to the recomputed root at its
    size.  Same messages as ``verify_ledger``; never raises for bad content.
    """
    rep = Report()
    verifier = parse_verifier(public_key) if isinstance(public_key, str) else public_key
    if verifier is None and checkpoints:
        rep.warnings.append("checkpoint signatures not checked (no public key given)")
    opened = []
    for text in checkpoints:
        try:
            opened.append(open_checkpoint(text, verifier))
        except NoteError as exc:
            rep.fail(f"checkpoint: signature/format invalid: {exc}")
    roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
    heads = _Heads({c.size for c in opened}, roots)
    run = _Pass(rep, heads)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as in verify_ledger
    try:
        for i in range(0, len(entries), _BATCH):
            batch = entries[i:i + _BATCH]
            if set(map(type, batch)) != {bytes}:
                batch = [bytes(e) for e in batch]  # bytearray / memoryview
            run.feed(tuple(range(i + 1, i + 1 + len(batch))), batch)
    finally:
        if gc_was_enabled:
            gc.enable()
    rep.root_hash = heads.root().hex()
    _check_named(rep, run.named, roots)
    for ck in opened:
        rep.checkpoints_checked += 1
        _check_head(rep, f"checkpoint size {ck.size}", ck.size, ck.root, heads.size, roots)
    return rep


def _open_rows(rep: Report, cps: list[dict], verifier: Verifier | None) -> list:
    """``[(label, Checkpoint)]`` for the stored checkpoint rows whose signed text opens; a row
    that does not (bad signature, a note that is not text) or whose columns differ from its
    signed text is a failure.  The signed text, not the columns, is what later checks use."""
    out = []
    for c in cps:
        label = f"checkpoint size {c['tree_size']}"
        ck, problem = open_row(c, verifier)
        if problem:
            rep.fail(f"{label}: {problem}")
        if ck is not None:
            out.append((label, ck))
    return out


def _checkpoint_files(rep: Report, checkpoint_dir, verifier: Verifier | None, stored: set[int],
                      notes: dict | None = None) -> list:
    """``[(file name, Checkpoint)]`` for the signed checkpoint files in ``checkpoint_dir``
    (none when it is None or absent).  Failures: an unreadable or badly signed file; a file
    ``checkpoint-N.txt`` that does not sign size N (e.g. the newest overwritten with an older
    one); a file whose text differs from its table row's signed text (``notes``: size -> note).
    Only a row without its file, or a file without its row (a crash between writing the file
    and committing the row), is a warning; every file is also checked against the ledger."""
    out, refused = checkpoint_files(checkpoint_dir, verifier)
    for name, why in refused:
        rep.fail(f"checkpoint file {name}: unreadable or signature/format invalid: {why}")
    for name, ck in out:
        if name != f"checkpoint-{ck.size}.txt":
            rep.fail(f"checkpoint file {name}: signs size {ck.size}, not the size its name says "
                     f"(overwritten with another checkpoint?)")
        elif notes and ck.size in notes:
            try:
                with open(os.path.join(checkpoint_dir, name), encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError):
                continue  # refused above
            if text != notes[ck.size]:
                rep.fail(f"checkpoint file {name}: differs from the stored checkpoint row of size "
                         f"{ck.size} (other signed text for the same size)")
    sizes = {ck.size for _name, ck in out}
    for s in sorted(sizes - stored):
        rep.warnings.append(f"checkpoint file for size {s} has no row in the checkpoints table (rows deleted?)")
    for s in sorted(stored - sizes):
        rep.warnings.append(f"checkpoint size {s} has no file in {checkpoint_dir}")
    return out


def _check_named(rep: Report, named: dict[tuple[int, str], int], roots: dict[int, bytes]) -> None:
    for (ck_size, ck_root), seq in sorted(named.items(), key=lambda kv: kv[1]):
        r = roots.get(ck_size) if isinstance(ck_size, int) else None
        if r is None:
            rep.fail(f"entry {seq}: names checkpoint size {ck_size} which is not a stored checkpoint", seq)
        elif r.hex() != ck_root:
            rep.fail(f"entry {seq}: names checkpoint {ck_size}:{ck_root} but the recomputed root at that size is {r.hex()}", seq)


def _check_head(rep: Report, label: str, ck_size: int, ck_root: bytes, size: int, roots: dict[int, bytes]) -> None:
    if ck_size > size:
        rep.fail(f"{label}: covers {ck_size} entries but the ledger has only {size} (tail truncated?)", size + 1)
        return
    r = roots.get(ck_size)
    if r != ck_root:
        rep.fail(f"{label}: root {ck_root.hex()} != recomputed root {r.hex() if r else None} of the first {ck_size} entries "
                 f"(history rewritten)")


def stored_bytes(value) -> tuple[bytes, str | None]:
    """``(bytes, problem)`` for an ``entry_bytes`` value as the driver returns it: bytes or a
    buffer (memoryview) -> no problem; a str means the column was rewritten as TEXT outside the
    portal (SQLite keeps the type an UPDATE gives it): its UTF-8 bytes, and the problem worded."""
    problem = "entry_bytes is stored as TEXT, not as bytes (rewritten outside the portal?)" if isinstance(value, str) else None
    return as_bytes(value), problem


@dataclass
class EntryCheck:
    """Outcome of ``verify_entry``: each check as (label, passed, detail), plus the parsed entry.

    ``found`` is False when no row has that seq.  ``entry`` holds the parsed fields
    (``entry.parse_entry`` shape) or None when there is no row or its bytes are not a
    well-formed entry (a failed check says why).
    """
    seq: int
    found: bool = False
    entry: dict | None = None
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    checkpoint_size: int | None = None
    # True when every check passed but no signed checkpoint covers the entry yet (it is newer
    # than the last checkpoint): intact so far, not yet provable against a signed head.
    pending_checkpoint: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(passed for _label, passed, _d in self.checks)


def verify_entry(conn: Connection, store: FileStore, seq: int, public_key: str | Verifier | None, *,
                 checkpoint_dir: str | os.PathLike | None = None) -> EntryCheck:
    """Check ONE entry the way a printed page's QR code asks: its stored bytes are a well-formed
    entry for this seq and hash to its recorded hash, it links to the previous entry, its PDF
    matches, the next entry links back to it, and an RFC 9162 inclusion proof ties it to the
    largest signed checkpoint covering it, among the stored rows and the files in
    ``checkpoint_dir`` (signatures checked with ``public_key``; None = not checked).

    Costs one pass over the leaf hashes (to build the proof), not a full verification.  Never
    raises for bad content: each problem is a failed check.
    """
    out = EntryCheck(seq=seq)
    if not 1 <= seq <= MAX_SEQ:
        return out
    row = conn.execute(select(audit_entries).where(audit_entries.c.seq == seq)).mappings().first()
    if row is None:
        return out
    out.found = True
    data, problem = stored_bytes(row["entry_bytes"])
    if problem:
        out.checks.append(("Entry bytes stored as written", False, problem))
    try:
        out.entry = parse_entry(data)
    except EntryFormatError as exc:
        out.checks.append(("Entry bytes are a well-formed entry", False, str(exc)))
        return out
    out.checks.append(("Entry is the one at this position", out.entry["seq"] == seq,
                       f"its bytes say seq {out.entry['seq']}"))
    h = chain_hash(data)
    out.checks.append(("Entry bytes match the recorded entry hash", h == row["entry_hash"], h))
    prev = None
    if seq > 1:
        prev_row = conn.execute(select(audit_entries.c.entry_bytes).where(audit_entries.c.seq == seq - 1)).first()
        try:
            prev = chain_hash(stored_bytes(prev_row[0])[0]) if prev_row else "(missing)"
        except EntryFormatError:
            prev = "(previous entry malformed)"
    out.checks.append(("Links to the previous entry", out.entry["prev_hash"] == prev, prev or "genesis"))
    doc = out.entry["doc"]
    try:
        got, size = _file_sha256(store.path_for(doc["sha256"]))
        out.checks.append(("Stored PDF matches the entry", (got, size) == (doc["sha256"], doc["size"]), got))
    except (OSError, ValueError):
        out.checks.append(("Stored PDF matches the entry", False, "file missing or unreadable"))
    nxt = conn.execute(select(audit_entries.c.entry_bytes).where(audit_entries.c.seq == seq + 1)).scalar()
    if nxt is not None:
        try:
            linked = chain_fields(stored_bytes(nxt)[0])[2] == h
        except EntryFormatError:
            linked = False
        out.checks.append(("The next entry links back to this one", linked, f"entry {seq + 1}"))
    verifier = parse_verifier(public_key) if isinstance(public_key, str) else public_key
    probe = Report()
    cps = [dict(r) for r in conn.execute(select(audit_checkpoints)).mappings()]
    signed = [ck for _label, ck in _open_rows(probe, cps, verifier)]
    signed += [ck for _name, ck in _checkpoint_files(probe, checkpoint_dir, verifier, {c.size for c in signed})]
    if probe.failures:
        out.checks.append(("Stored checkpoints are intact", False, probe.failures[0]))
    covering = [ck for ck in signed if ck.size >= seq]
    if not covering:
        out.pending_checkpoint = True
        return out
    ck = max(covering, key=lambda c: c.size)
    out.checkpoint_size = ck.size
    leaves = [sha256(b"\x00" + stored_bytes(r[0])[0]).digest() for r in conn.execute(
        select(audit_entries.c.entry_bytes).where(audit_entries.c.seq <= ck.size).order_by(audit_entries.c.seq))]
    if len(leaves) < ck.size:
        out.checks.append(("Included in signed checkpoint (inclusion proof)", False,
                           f"the ledger is shorter than checkpoint size {ck.size} (truncated)"))
        return out
    proof = merkle.Tree(leaves).inclusion_proof(seq - 1)
    included = merkle.verify_inclusion(sha256(b"\x00" + data).digest(), seq - 1, ck.size, proof, ck.root)
    out.checks.append(("Included in signed checkpoint (inclusion proof)", included,
                       f"tree size {ck.size}, root {ck.root.hex()}"))
    return out
