"""Full verification of the ledger in the database against the file store and checkpoints."""

from __future__ import annotations

import gc
import json
import os
import re
from dataclasses import dataclass, field
from hashlib import sha256

from sqlalchemy import select
from sqlalchemy.engine import Connection

from . import merkle
from .filestore import _HEX64, FileStore
from .note import NoteError, Verifier, open_checkpoint, parse_verifier
from .schema import audit_checkpoints, audit_entries


# Entries are UTF-8 by construction (RFC 8785); decoding directly skips json.loads's per-call
# encoding sniffing, a measurable share of a 100,000-entry verification.
_DECODE = json.JSONDecoder().decode


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

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, msg: str, seq: int | None = None) -> None:
        self.failures.append(msg)
        if seq is not None and (self.first_bad_seq is None or seq < self.first_bad_seq):
            self.first_bad_seq = seq

    def summary(self) -> str:
        head = "OK" if self.ok else f"FAILED ({len(self.failures)} problems, first bad seq {self.first_bad_seq})"
        lines = [f"{head}: {self.entries} entries, {self.documents_checked} documents, "
                 f"{self.checkpoints_checked} checkpoints, root {self.root_hash}"]
        lines += [f"FAIL {m}" for m in self.failures] + [f"WARN {m}" for m in self.warnings]
        return "\n".join(lines)


def _file_sha256(path) -> tuple[str, int]:
    with open(path, "rb") as f:
        data = f.read()
    return sha256(data).hexdigest(), len(data)


# Rows fetched per round trip.  A power of two: each full batch starts at a multiple of it, so
# its leaves form whole perfect Merkle subtrees that are hashed level by level (see _Heads).
_BATCH = 1024

_ENTRY_SQL = (f"SELECT seq, entry_bytes, entry_hash, leaf_hash, prev_hash, doc_sha256, doc_size "
              f"FROM {audit_entries.name} ORDER BY seq")

# Fast path for canonical v1 entries.  ``_ENTRY`` is the exact JCS layout of a v1 entry (keys
# in sorted order, no whitespace, ``v`` = 1, ints in canonical spelling) and is only applied to
# entries free of ``_UNSAFE`` bytes: control characters, backslash, DEL and non-ASCII.  In such
# a text no string contains '"' (it would need an escape), so every '"' is a string delimiter,
# ``"[^"]*"`` is exactly one JSON string whose value is its raw content, and the structure
# cannot be faked from inside a string.  A text that matches is therefore valid JSON that
# ``json`` parses to the captured values; anything else (escapes, non-ASCII, other shapes,
# versions, invalid JSON) goes to the json parser, which words the failure precisely.
_UNSAFE = bytes(range(0x20)) + b"\\" + bytes(range(0x7F, 0x100))
_S = r'"[^"]*"'
_V = r'"([^"]*)"'
_I = r'(0|[1-9][0-9]{0,15})'
_ENTRY = re.compile(
    r'\{"actor":' + _S +
    r',"checkpoint":(?:null|\{"origin":' + _S + r',"root":' + _V + r',"size":' + _I + r'\})'
    r',"doc":\{"media_type":' + _S + r',"sha256":' + _V + r',"size":' + _I + r'\}'
    r',"kind":' + _S +
    r',"line_commitments":\[(?:' + _S + r'(?:,' + _S + r')*)?\]'
    r',"log":' + _S + r',"occurred_at":' + _S +
    r',"prev_hash":(?:null|' + _V + r')'
    r',"record_sha256":' + _S + r',"seq":' + _I +
    r',"subject":\{(?:' + _S + r':' + _S + r'(?:,' + _S + r':' + _S + r')*)?\}'
    r',"v":1\}')


def _fast_parse(datas) -> list:
    """For each entry: the ``_ENTRY`` match (groups: checkpoint root, checkpoint size, doc sha256,
    doc size, prev_hash, seq — all str, or None for a null checkpoint/prev_hash), or None when the
    entry has an ``_UNSAFE`` byte or another layout and must be read with ``json``."""
    match = _ENTRY.fullmatch
    return [match(d.decode("ascii")) if len(d.translate(None, _UNSAFE)) == len(d) else None for d in datas]


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


def verify_ledger(conn: Connection, store: FileStore, public_key: str | Verifier | None = None,
                  since_checkpoint: str | None = None, *, check_documents: bool = True) -> Report:
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
      rewritten too).  Files in the store that no entry references are warnings.

    Rows are checked a batch at a time: hashes, fields (read by ``_ENTRY`` when an entry has the
    plain canonical layout) and columns are compared as whole lists, and only a batch where
    something differs, or an entry needs the json parser, is walked row by row to word each
    failure — so the checks and messages are those of a row-by-row pass.
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
    want_sizes = {int(c["tree_size"]) for c in cps}
    if external is not None:
        want_sizes.add(external.size)
    roots: dict[int, bytes] = {}
    if 0 in want_sizes:
        roots[0] = merkle.EMPTY_ROOT
    heads = _Heads(want_sizes, roots)
    referenced: set[str] = set()
    prev_hash: str | None = None
    expected = 1
    named: dict[tuple[int, str], int] = {}  # (size, root) named by entries -> first seq naming it
    path_for = store.path_for
    # The pass allocates a few tuples per row (the DBAPI rows among them) and no reference
    # cycles; cyclic GC runs would only re-traverse them (~25% of the pass), so they are paused
    # for the loop and the previous state is restored afterwards.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for rows in _entry_batches(conn, _BATCH):
            m = len(rows)
            seqs, datas, col_hashes, col_leaves, col_prevs, col_docs, col_sizes = zip(*rows)
            if set(map(type, datas)) != {bytes}:
                datas = tuple(map(bytes, datas))
            hashes = [sha256(d).hexdigest() for d in datas]
            leaves = [sha256(b"\x00" + d).digest() for d in datas]
            found = _fast_parse(datas)
            clean = False
            if None not in found:
                ck_roots, ck_sizes, e_docs, e_sizes, e_prevs, e_seqs = zip(*[f.groups() for f in found])
                e_sizes = tuple(map(int, e_sizes))
                clean = (seqs == tuple(range(expected, expected + m))
                         and tuple(map(int, e_seqs)) == seqs
                         and list(col_hashes) == hashes
                         and e_prevs[0] == prev_hash and list(e_prevs[1:]) == hashes[:-1]
                         and col_prevs == e_prevs
                         and col_docs == e_docs and col_sizes == e_sizes
                         and list(col_leaves) == [leaf.hex() for leaf in leaves])
            if clean:
                expected += m
                prev_hash = hashes[-1]
                referenced.update(e_docs)
                if ck_roots.count(None) != m:
                    # first seq naming each (size, root): later rows are overwritten by earlier ones
                    first = dict(zip(reversed(tuple(zip(ck_sizes, ck_roots))), reversed(seqs)))
                    first.pop((None, None), None)
                    for (ck_size, ck_root), seq in first.items():
                        named.setdefault((int(ck_size), ck_root), seq)
                if check_documents:
                    for seq, e_doc, e_size in zip(seqs, e_docs, e_sizes):
                        _check_document(rep, path_for, seq, e_doc, e_size)
            else:
                for i, (seq, _, col_hash, col_leaf, col_prev, col_doc, col_size) in enumerate(rows):
                    if seq != expected:
                        if seq > expected:
                            missing = f"entries {expected}..{seq - 1} are" if seq - 1 > expected else f"entry {expected} is"
                            rep.fail(f"{missing} missing (seq jumps from {expected - 1} to {seq})", expected)
                        else:
                            rep.fail(f"entry {seq}: out of order after {expected - 1}", seq)
                        expected = seq
                    h = hashes[i]
                    if h != col_hash:
                        rep.fail(f"entry {seq}: entry_hash column {col_hash} != SHA-256 of stored bytes {h}", seq)
                    if leaves[i].hex() != col_leaf:
                        rep.fail(f"entry {seq}: leaf_hash column does not match the stored bytes", seq)
                    e_ck = None
                    if found[i] is not None:
                        ck_root, ck_size, e_doc, e_size, e_prev, e_seq = found[i].groups()
                        e_seq, e_size = int(e_seq), int(e_size)
                        if ck_root is not None:
                            e_ck = {"size": int(ck_size), "root": ck_root}
                    else:
                        try:
                            e = _DECODE(datas[i].decode("utf-8"))
                            e_seq, e_prev, doc = e["seq"], e["prev_hash"], e["doc"]
                            e_doc, e_size, e_ck = doc["sha256"], doc["size"], e.get("checkpoint")
                        except (ValueError, KeyError, TypeError) as exc:
                            rep.fail(f"entry {seq}: stored bytes are not a v1 entry ({type(exc).__name__}: {exc})", seq)
                            e_seq, e_prev, e_doc, e_size, e_ck = None, None, col_doc, col_size, None
                        else:
                            if e.get("v") != 1:
                                rep.fail(f"entry {seq}: unknown format version {e.get('v')!r}", seq)
                    if e_seq is not None and e_seq != seq:
                        rep.fail(f"entry {seq}: bytes say seq {e_seq} (row moved or swapped)", seq)
                    if e_prev != prev_hash and e_seq is not None:
                        rep.fail(f"entry {seq}: prev_hash {e_prev} does not match hash of entry {seq - 1} ({prev_hash})", seq)
                    if col_prev != e_prev and e_seq is not None:
                        rep.fail(f"entry {seq}: prev_hash column {col_prev} differs from the entry bytes ({e_prev})", seq)
                    if (col_doc, int(col_size)) != (e_doc, e_size):
                        rep.fail(f"entry {seq}: doc columns ({col_doc}, {col_size}) differ from the entry bytes ({e_doc}, {e_size})", seq)
                    if isinstance(e_ck, dict):
                        named.setdefault((e_ck.get("size"), e_ck.get("root")), seq)
                    prev_hash = h
                    if isinstance(e_doc, str):
                        referenced.add(e_doc)
                        if check_documents:
                            _check_document(rep, path_for, seq, e_doc, e_size)
                    expected = seq + 1
            heads.extend(leaves)
            rep.entries += m
    finally:
        if gc_was_enabled:
            gc.enable()
    size = heads.size
    rep.root_hash = heads.root().hex()

    for (ck_size, ck_root), seq in sorted(named.items(), key=lambda kv: kv[1]):
        r = roots.get(ck_size) if isinstance(ck_size, int) else None
        if r is None:
            rep.fail(f"entry {seq}: names checkpoint size {ck_size} which is not a stored checkpoint", seq)
        elif r.hex() != ck_root:
            rep.fail(f"entry {seq}: names checkpoint {ck_size}:{ck_root} but the recomputed root at that size is {r.hex()}", seq)

    if verifier is None and (cps or external):
        rep.warnings.append("checkpoint signatures not checked (no public key given)")
    for c in cps:
        label = f"checkpoint size {c['tree_size']}"
        try:
            ck = open_checkpoint(c["note"], verifier)
        except NoteError as exc:
            rep.fail(f"{label}: signature/format invalid: {exc}")
            continue
        rep.checkpoints_checked += 1
        if (ck.size, ck.root.hex()) != (int(c["tree_size"]), c["root_hash"]):
            rep.fail(f"{label}: columns differ from the signed text (size {ck.size}, root {ck.root.hex()})")
        _check_head(rep, label, ck.size, ck.root, size, roots)
    if external is not None:
        _check_head(rep, "given checkpoint", external.size, external.root, size, roots)
        rep.checkpoints_checked += 1
    if not cps:
        rep.warnings.append("no stored checkpoint: tail truncation cannot be detected from the database alone")

    scanned = _scan_store(store, referenced)
    if scanned is None:
        rep.unreferenced_files = sorted(set(store.list_all()) - referenced)
        stale = store.stale_temp_files()
    else:
        rep.unreferenced_files, stale = scanned
    for d in rep.unreferenced_files:
        rep.warnings.append(f"unreferenced file {d} (no entry names it; left by an interrupted append?)")
    for p in stale:
        rep.warnings.append(f"stale temp file {p}")
    return rep


def _check_head(rep: Report, label: str, ck_size: int, ck_root: bytes, size: int, roots: dict[int, bytes]) -> None:
    if ck_size > size:
        rep.fail(f"{label}: covers {ck_size} entries but the ledger has only {size} (tail truncated?)", size + 1)
        return
    r = roots.get(ck_size)
    if r != ck_root:
        rep.fail(f"{label}: root {ck_root.hex()} != recomputed root {r.hex() if r else None} of the first {ck_size} entries "
                 f"(history rewritten)")


@dataclass
class EntryCheck:
    """Outcome of ``verify_entry``: each check as (label, passed, detail), plus the parsed entry."""
    seq: int
    entry: dict | None = None
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    checkpoint_size: int | None = None
    # True when every check passed but no signed checkpoint covers the entry yet (it is newer
    # than the last checkpoint): intact so far, not yet provable against a signed head.
    pending_checkpoint: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(passed for _label, passed, _d in self.checks)


def verify_entry(conn: Connection, store: FileStore, seq: int, public_key: str | Verifier | None) -> EntryCheck:
    """Check ONE entry the way a printed page's QR code asks: its stored bytes hash to its
    recorded hash, it links to the previous entry, its PDF matches, and an RFC 9162 inclusion
    proof ties it to the latest signed checkpoint (signature checked with ``public_key``).

    Costs one pass over the leaf hashes (to build the proof), not a full verification; returns
    an ``EntryCheck`` whose ``entry`` is None when no entry ``seq`` exists.
    """
    out = EntryCheck(seq=seq)
    row = conn.execute(select(audit_entries).where(audit_entries.c.seq == seq)).mappings().first()
    if row is None:
        return out
    data = bytes(row["entry_bytes"])
    out.entry = json.loads(data)
    h = sha256(data).hexdigest()
    out.checks.append(("Entry bytes match the recorded entry hash", h == row["entry_hash"], h))
    prev = None
    if seq > 1:
        prev_row = conn.execute(select(audit_entries.c.entry_bytes).where(audit_entries.c.seq == seq - 1)).first()
        prev = sha256(bytes(prev_row[0])).hexdigest() if prev_row else "(missing)"
    out.checks.append(("Links to the previous entry", out.entry.get("prev_hash") == prev, prev or "genesis"))
    doc = out.entry.get("doc", {})
    try:
        got, size = _file_sha256(store.path_for(doc.get("sha256", "")))
        out.checks.append(("Stored PDF matches the entry", (got, size) == (doc.get("sha256"), doc.get("size")), got))
    except (FileNotFoundError, ValueError):
        out.checks.append(("Stored PDF matches the entry", False, "file missing"))
    verifier = parse_verifier(public_key) if isinstance(public_key, str) else public_key
    cps = [dict(r) for r in conn.execute(select(audit_checkpoints).order_by(
        audit_checkpoints.c.tree_size.desc(), audit_checkpoints.c.id.desc())).mappings()]
    covering = [c for c in cps if int(c["tree_size"]) >= seq]
    if not covering:
        out.pending_checkpoint = True
        return out
    try:
        ck = open_checkpoint(covering[0]["note"], verifier)
    except NoteError as exc:
        out.checks.append(("Checkpoint signature", False, str(exc)))
        return out
    out.checkpoint_size = ck.size
    leaves = [sha256(b"\x00" + bytes(r[0])).digest() for r in conn.execute(
        select(audit_entries.c.entry_bytes).where(audit_entries.c.seq <= ck.size).order_by(audit_entries.c.seq))]
    if len(leaves) < ck.size:
        out.checks.append(("Included in a signed checkpoint", False, "ledger shorter than the checkpoint"))
        return out
    proof = merkle.Tree(leaves).inclusion_proof(seq - 1)
    included = merkle.verify_inclusion(sha256(b"\x00" + data).digest(), seq - 1, ck.size, proof, ck.root)
    out.checks.append(("Included in signed checkpoint (inclusion proof)", included,
                       f"tree size {ck.size}, root {ck.root.hex()}"))
    return out
