"""Benchmark: witness cosignature round trip on loopback, and `verify` with witness checks.

1. A real witness (``audit_archive.witness``, stdlib HTTP server in a thread) cosigns a growing
   log: each round POSTs ``add-checkpoint`` with a consistency proof and verifies the returned
   cosignature (what the portal does per witness per checkpoint). Prints the median and p90 ms.
2. ``verify_ledger`` over N entries without witness heads, then with one cosigned head per
   checkpoint (the portal passes every stored cosignature as ``extra_heads``); prints the ratio.

Run: ``.venv/bin/python bench/witness.py [rounds] [entries]``.
"""
from __future__ import annotations

import base64
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit_archive import merkle  # noqa: E402
from audit_archive.cosignature import load_or_create_cosigner  # noqa: E402
from audit_archive.note import Checkpoint, load_or_create_signer, sign_checkpoint, split_note  # noqa: E402
from audit_archive.witness import Witness, WitnessState, make_server  # noqa: E402

ORIGIN = "bench.example/log"


def round_trips(rounds: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-witness-"))
    log = load_or_create_signer(tmp / "log.key", ORIGIN)
    cosigner = load_or_create_cosigner(tmp / "w.key", "bench.example/w1")
    server = make_server(Witness(cosigner, [log.verifier], WitnessState(tmp / "state")), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/add-checkpoint"
    leaves = [merkle.leaf_hash(str(i).encode()) for i in range(rounds * 10 + 1)]
    old, times = 0, []
    try:
        for r in range(1, rounds + 1):
            size = r * 10
            tree = merkle.Tree(leaves[:size])
            note = sign_checkpoint(Checkpoint(ORIGIN, size, tree.root()), log)
            proof = tree.consistency_proof(old, size) if old else []
            body = (f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
                    + "\n" + note).encode()
            t0 = time.perf_counter()
            with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=10) as resp:
                line = resp.read().decode()
            cosigner.key.verify(split_note(note)[0], line)
            times.append((time.perf_counter() - t0) * 1000)
            old = size
    finally:
        server.shutdown()
        server.server_close()
    times.sort()
    print(f"witness round trip on loopback ({rounds} checkpoints, proof + cosign + verify): "
          f"median {statistics.median(times):.1f} ms, p90 {times[int(len(times) * 0.9) - 1]:.1f} ms")


def verify_ratio(n: int) -> None:
    from sqlalchemy import create_engine

    from audit_archive.checkpoint import make_checkpoint
    from audit_archive.filestore import FileStore
    from audit_archive.ledger import sqlite_begin_immediate
    from audit_archive.schema import create_tables
    from audit_archive.verify import verify_ledger
    from tests.audit.helpers import do_append

    tmp = Path(tempfile.mkdtemp(prefix="bench-witness-verify-"))
    engine = sqlite_begin_immediate(create_engine(f"sqlite:///{tmp / 'ledger.db'}"))
    with engine.begin() as conn:
        create_tables(conn)
    store = FileStore(tmp / "files")
    heads = []
    for i in range(10):
        do_append(engine, store, n // 10)
        with engine.begin() as conn:
            ck = make_checkpoint(conn, tmp / "log.key", "portal.example.org/audit")
        heads.append((f"cosignature of size {ck.size}", ck.size, bytes.fromhex(ck.root_hash)))

    def best(fn):
        out = []
        for _ in range(3):
            t0 = time.perf_counter()
            with engine.connect() as conn:
                rep = fn(conn)
            out.append((time.perf_counter() - t0) * 1000)
            assert rep.ok, rep.summary()
        return min(out)

    plain = best(lambda c: verify_ledger(c, store, check_documents=False))
    witnessed = best(lambda c: verify_ledger(c, store, check_documents=False, extra_heads=heads * 2))
    print(f"verify {n} entries: {plain:.0f} ms without witness heads, {witnessed:.0f} ms with "
          f"{len(heads) * 2} cosigned heads (2 witnesses x 10 checkpoints): ratio {witnessed / plain:.2f}x")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    round_trips(args[0] if args else 50)
    verify_ratio(args[1] if len(args) > 1 else 2000)
