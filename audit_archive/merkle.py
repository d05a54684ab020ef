"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification.

Stdlib only (the standalone verifier imports this module).

Hashes are 32-byte ``bytes`` everywhere in this module; hex is for the edges
(database, JSON).  Leaf hash = SHA-256(0x00 || entry bytes), interior node =
SHA-256(0x01 || left || right) (RFC 9162 §2.1.1).  The tree over n leaves splits
at the largest power of two smaller than n, which is the same tree as building
level by level and carrying an unpaired last node up unchanged; the iterative
functions below rely on that equivalence so no per-node objects are created.
"""

from __future__ import annotations

from hashlib import sha256
from typing import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """Return SHA-256(0x00 || data), the RFC 9162 §2.1.1 leaf hash."""
    return sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right), the RFC 9162 §2.1.1 node hash."""
    return sha256(b"\x01" + left + right).digest()


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """Merkle Tree Hash (RFC 9162 §2.1.1) of a list of *leaf hashes*.

    Returns SHA-256("") for the empty tree.  O(n) hashes, O(n) memory for one level.
    """
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        nxt = [sha256(b"\x01" + level[i] + level[i + 1]).digest()
               for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class Frontier:
    """Streaming tree head: feed leaf hashes in order, ask for the root at any size.

    Keeps only the O(log n) perfect-subtree peaks ("compact range"), so verifying a
    long ledger does not hold every leaf.  ``root()`` folds the peaks right to left,
    which equals the RFC 9162 Merkle Tree Hash of all leaves appended so far.
    """

    __slots__ = ("size", "_peaks")

    def __init__(self) -> None:
        self.size = 0
        self._peaks: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        peaks = self._peaks
        h = leaf
        n = self.size
        # Each trailing 1 bit of the old size is a peak of equal height to merge with.
        while n & 1:
            h = sha256(b"\x01" + peaks.pop() + h).digest()
            n >>= 1
        peaks.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self._peaks:
            return EMPTY_ROOT
        h = self._peaks[-1]
        for p in reversed(self._peaks[:-1]):
            h = sha256(b"\x01" + p + h).digest()
        return h


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [sha256(b"\x01" + cur[i] + cur[i + 1]).digest() for i in range(0, len(cur) - 1, 2)]
        if len(cur) & 1:
            nxt.append(cur[-1])
        levels.append(nxt)
    return levels


class Tree:
    """All levels of a tree over a fixed list of leaf hashes, for producing many proofs.

    Memory: about 2n 32-byte hashes.  Use for exports; verification uses ``Frontier``.
    """

    def __init__(self, leaves: Sequence[bytes]):
        self.size = len(leaves)
        self._leaves = list(leaves)
        self._levels = _levels(leaves) if leaves else [[]]

    def root(self) -> bytes:
        return self._levels[-1][0] if self.size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Audit path (RFC 9162 §2.1.3.1) for leaf ``index`` in the tree of the first ``size`` leaves."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ValueError(f"no inclusion proof for index {index} in tree size {size} (have {self.size})")
        if size != self.size:
            return Tree(self._leaves[:size]).inclusion_proof(index)
        proof = []
        i = index
        for level in self._levels[:-1]:
            sib = i ^ 1
            if sib < len(level):
                proof.append(level[sib])
            i >>= 1
        return proof

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """Consistency proof (RFC 9162 §2.1.4.1) between sizes ``first`` and ``second``."""
        second = self.size if second is None else second
        if not 0 <= first <= second <= self.size:
            raise ValueError(f"no consistency proof from {first} to {second} (have {self.size})")
        if first == 0 or first == second:
            return []
        return _subproof(self._leaves, first, 0, second, True)


def _subproof(leaves: Sequence[bytes], m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
    # RFC 9162 §2.1.4.1 SUBPROOF(m, D[lo:hi], b), written with index ranges.
    n = hi - lo
    if m == n:
        return [] if complete else [root_hash(leaves[lo:hi])]
    k = 1
    while k << 1 < n:
        k <<= 1
    if m <= k:
        return _subproof(leaves, m, lo, lo + k, complete) + [root_hash(leaves[lo + k:hi])]
    return _subproof(leaves, m - k, lo + k, hi, False) + [root_hash(leaves[lo:lo + k])]


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """Convenience: ``Tree(leaves).inclusion_proof(index, size)``."""
    return Tree(leaves if size is None else leaves[:size]).inclusion_proof(index)


def consistency_proof(leaves: Sequence[bytes], first: int, second: int | None = None) -> list[bytes]:
    """Convenience: ``Tree(leaves).consistency_proof(first, second)``."""
    second = len(leaves) if second is None else second
    if not 0 <= first <= second <= len(leaves):
        raise ValueError(f"no consistency proof from {first} to {second} (have {len(leaves)})")
    if first == 0 or first == second:
        return []
    return _subproof(leaves, first, 0, second, True)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show leaf hash ``leaf`` at ``index`` in the tree ``root`` of ``size``?

    Returns False (never raises) on any malformed input.
    """
    if not (isinstance(index, int) and isinstance(size, int)) or index < 0 or index >= size:
        return False
    if len(leaf) != HASH_SIZE or len(root) != HASH_SIZE:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (``second``, ``second_root``) an append-only extension of (``first``, ``first_root``)?

    Size 0 is consistent with everything (empty proof).  Equal sizes need an empty proof
    and equal roots.  Returns False (never raises) on malformed input.
    """
    if not (isinstance(first, int) and isinstance(second, int)) or first < 0 or first > second:
        return False
    if len(first_root) != HASH_SIZE or len(second_root) != HASH_SIZE:
        return False
    if any(len(p) != HASH_SIZE for p in proof):
        return False
    if first == 0:
        return len(proof) == 0 and first_root == EMPTY_ROOT
    if first == second:
        return len(proof) == 0 and first_root == second_root
    if not proof:
        return False
    proof = list(proof)
    if first & (first - 1) == 0:
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = sha256(b"\x01" + c + fr).digest()
            sr = sha256(b"\x01" + c + sr).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def roots_of_prefixes(leaves: Iterable[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    """Root hash at each requested prefix size, in one streaming pass."""
    want = sorted(set(sizes))
    out: dict[int, bytes] = {}
    f = Frontier()
    wi = 0
    while wi < len(want) and want[wi] == 0:
        out[0] = EMPTY_ROOT
        wi += 1
    for leaf in leaves:
        if wi >= len(want):
            break
        f.append(leaf)
        while wi < len(want) and want[wi] == f.size:
            out[f.size] = f.root()
            wi += 1
    return out
