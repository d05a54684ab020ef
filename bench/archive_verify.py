"""Full verification of an N-entry log vs plain hashlib over the same bytes (issue target <= 3x).

    .venv/bin/python bench/archive_verify.py [N]

Builds N entries in the current format with ``canonical.build_entry`` (a signed checkpoint every
1,000 entries, each later entry naming the latest one, as the portal's daily checkpoints do),
stores them in a SQLite ledger with ~2 KB documents (written without fsync to keep setup
short), then times, in the same run:

- entries only, bytes in memory: ``verify_entries`` (every hash, seq, header, chain link, named
  checkpoint, the Merkle root at every checkpoint and their signatures) vs one SHA-256 per entry
  over the same bytes;
- entries only, from the database: ``verify_ledger(check_documents=False)`` (the same checks
  plus the stored columns) vs reading the same bytes from the database + one SHA-256 each;
- with documents: ``verify_ledger`` vs reading every document file + SHA-256 of files and entries.
"""

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from audit_archive import canonical, entry, merkle  # noqa: E402
from audit_archive.filestore import FileStore  # noqa: E402
from audit_archive.ledger import sqlite_begin_immediate  # noqa: E402
from audit_archive.note import Checkpoint, Signer, sign_checkpoint  # noqa: E402
from audit_archive.schema import audit_checkpoints, audit_entries, create_tables  # noqa: E402
from audit_archive.verify import verify_entries, verify_ledger  # noqa: E402

ORIGIN = "bench.example.org/audit"
CHECKPOINT_EVERY = 1000


def build(n: int, store: FileStore, signer: Signer):
    rows, docs, notes = [], [], []
    prev, ck = None, None
    frontier = merkle.Frontier()
    for seq in range(1, n + 1):
        doc = b"%PDF-1.7\n" + os.urandom(16).hex().encode() * 64
        d = hashlib.sha256(doc).hexdigest()
        p = store.path_for(d)
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(doc)
        e = canonical.build_entry(seq=seq, kind="roster", subject={"roster_id": str(seq), "program_id": "7"},
                                  actor="user:1", occurred_at="2026-11-30T15:04:05Z",
                                  record_hash=hashlib.sha256(doc).hexdigest(),
                                  line_commitments=[hashlib.sha256(bytes([i])).hexdigest() for i in range(4)],
                                  doc_sha256=d, doc_size=len(doc), prev_hash=prev, checkpoint=ck, origin=ORIGIN)
        leaf = entry.leaf_hash(e)
        frontier.append(leaf)
        h = leaf.hex()
        rows.append(dict(seq=seq, v=entry.version_of(e), kind="roster", entry_bytes=e, entry_hash=h, leaf_hash=h,
                         prev_hash=prev, doc_sha256=d, doc_size=len(doc)))
        docs.append(d)
        prev = h
        if seq % CHECKPOINT_EVERY == 0:
            root = frontier.root()
            notes.append((seq, root.hex(), sign_checkpoint(Checkpoint(ORIGIN, seq, root), signer)))
            ck = canonical.CheckpointRef(ORIGIN, seq, root.hex())
    return rows, docs, notes


def best(fn, runs=3):
    return min(fn() for _ in range(runs))


def main(n: int = 100_000) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="archive-verify-"))
    store = FileStore(tmp / "files")
    engine = sqlite_begin_immediate(create_engine(f"sqlite:///{tmp / 'ledger.db'}"))
    signer = Signer(ORIGIN, Ed25519PrivateKey.generate())
    t0 = time.perf_counter()
    rows, docs, notes = build(n, store, signer)
    with engine.begin() as conn:
        create_tables(conn)
        for i in range(0, n, 10_000):
            conn.execute(audit_entries.insert(), rows[i:i + 10_000])
        conn.execute(audit_checkpoints.insert(), [
            dict(origin=ORIGIN, tree_size=size, root_hash=root, key_id=signer.verifier.key_id.hex(), note=note)
            for size, root, note in notes])
    notes = [note for _size, _root, note in notes]
    entry_bytes = [r["entry_bytes"] for r in rows]
    del rows
    key = signer.verifier
    print(f"setup: {n} entries, {len(notes)} checkpoints in {time.perf_counter() - t0:.1f}s "
          f"(avg entry {sum(map(len, entry_bytes)) / n:.0f} B)")

    def timed(fn):
        def run():
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t
        return run

    @timed
    def hash_memory():
        for e in entry_bytes:
            hashlib.sha256(e).digest()

    @timed
    def verify_memory():
        rep = verify_entries(entry_bytes, notes, key)
        assert rep.ok and rep.entries == n and rep.checkpoints_checked == len(notes), rep.summary()

    @timed
    def hash_db():
        with engine.connect() as conn:
            cur = conn.connection.driver_connection.execute(
                f"SELECT entry_bytes FROM {audit_entries.name} ORDER BY seq")
            for (e,) in cur:
                hashlib.sha256(e).digest()

    @timed
    def verify_db():
        with engine.connect() as conn:
            rep = verify_ledger(conn, store, key, check_documents=False)
        assert rep.ok and rep.entries == n, rep.summary()

    @timed
    def hash_files():
        for e, d in zip(entry_bytes, docs):
            hashlib.sha256(e).digest()
            with open(store.path_for(d), "rb") as f:
                hashlib.sha256(f.read()).digest()

    @timed
    def verify_full():
        with engine.connect() as conn:
            rep = verify_ledger(conn, store, key)
        assert rep.ok and rep.entries == n and rep.documents_checked == n, rep.summary()

    bm, vm = best(hash_memory), best(verify_memory)
    bd, vd = best(hash_db), best(verify_db)
    bf, vf = best(hash_files), best(verify_full)
    print(f"entries only, bytes in memory : verify_entries {vm:.3f}s / hashlib {bm:.3f}s = {vm / bm:.2f}x (target <= 3x)")
    print(f"entries only, from the DB     : verify_ledger  {vd:.3f}s / DB read + hashlib {bd:.3f}s = {vd / bd:.2f}x (target <= 3x)")
    print(f"entries + documents           : verify_ledger  {vf:.3f}s / file reads + hashlib {bf:.3f}s = {vf / bf:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
