"""Inclusion-proof verification cost at 10^6 entries (target < 50 microseconds per proof).

    .venv/bin/python bench/archive_proofs.py [N]
"""

import hashlib
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit_archive import merkle  # noqa: E402


def main(n: int = 1_000_000, k: int = 20_000) -> None:
    t = time.perf_counter()
    leaves = [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(n)]
    tree = merkle.Tree(leaves)
    root = tree.root()
    print(f"built tree of {n} leaves in {time.perf_counter() - t:.2f}s")
    rng = random.Random(7)
    idx = [rng.randrange(n) for _ in range(k)]
    proofs = [(leaves[i], i, tree.inclusion_proof(i)) for i in idx]
    t = time.perf_counter()
    for leaf, i, p in proofs:
        if not merkle.verify_inclusion(leaf, i, n, p, root):
            raise SystemExit(f"proof {i} failed")
    per = (time.perf_counter() - t) / k * 1e6
    hashes = sum(len(p) for _, _, p in proofs)
    t = time.perf_counter()
    for _ in range(hashes):
        hashlib.sha256(b"\x01" + root + root).digest()
    base = (time.perf_counter() - t) / k * 1e6
    print(f"verify_inclusion: {per:.1f} us/proof (target < 50), path length ~{hashes / k:.1f}; "
          f"bare hashlib for the same hash count: {base:.1f} us/proof, ratio {per / base:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
