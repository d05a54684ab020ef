"""Merkle hashing and proofs against the RFC 6962 reference vectors (as published in
transparency-dev/merkle testdata and the Certificate Transparency reference tests)."""

from hashlib import sha256

import pytest

from audit_archive import merkle as M

LEAF_DATA = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
LEAVES = [M.leaf_hash(d) for d in LEAF_DATA]
ROOTS = [  # size 0..8
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (index, size, proof)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
CONSISTENCY = [  # (first, second, proof)
    (2, 8, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]


def h(x):
    return bytes.fromhex(x)


@pytest.mark.parametrize("size", range(9))
def test_reference_roots(size):
    assert M.root_hash(LEAVES[:size]).hex() == ROOTS[size]
    f = M.Frontier()
    for leaf in LEAVES[:size]:
        f.append(leaf)
    assert f.root().hex() == ROOTS[size]


@pytest.mark.parametrize("index,size,proof", INCLUSION)
def test_reference_inclusion(index, size, proof):
    assert [p.hex() for p in M.inclusion_proof(LEAVES, index, size)] == proof
    assert M.verify_inclusion(LEAVES[index], index, size, [h(p) for p in proof], h(ROOTS[size]))


@pytest.mark.parametrize("first,second,proof", CONSISTENCY)
def test_reference_consistency(first, second, proof):
    assert [p.hex() for p in M.consistency_proof(LEAVES, first, second)] == proof
    assert M.verify_consistency(first, second, h(ROOTS[first]), h(ROOTS[second]), [h(p) for p in proof])


def _mth(leaves):  # the RFC's recursive definition, as an oracle
    n = len(leaves)
    if n == 0:
        return sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return M.node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


BIG = [M.leaf_hash(i.to_bytes(4, "big")) for i in range(40)]


def test_all_sizes_roots_and_proofs():
    for n in range(0, 41):
        root = _mth(BIG[:n])
        assert M.root_hash(BIG[:n]) == root
        assert M.roots_of_prefixes(BIG, [n])[n] == root
        t = M.Tree(BIG[:n])
        for i in range(n):
            p = t.inclusion_proof(i)
            assert M.verify_inclusion(BIG[i], i, n, p, root)
            if p:
                assert not M.verify_inclusion(BIG[i], i, n, p[:-1], root)
            assert not M.verify_inclusion(BIG[i], i, n, p + [b"\xab" * 32], root)
            assert not M.verify_inclusion(M.leaf_hash(b"not in tree"), i, n, p, root)
            if p:
                bad = list(p)
                bad[-1] = bytes([bad[-1][0] ^ 1]) + bad[-1][1:]
                assert not M.verify_inclusion(BIG[i], i, n, bad, root)
        for m in range(0, n + 1):
            p = M.consistency_proof(BIG, m, n)
            assert M.verify_consistency(m, n, _mth(BIG[:m]), root, p), (m, n)
            if p:
                assert not M.verify_consistency(m, n, _mth(BIG[:m]), root, p[:-1])
                assert not M.verify_consistency(m, n, _mth(BIG[:m]), root, p + [b"\xcd" * 32])
                if 0 < m < n:
                    other = M.root_hash(BIG[1:m + 1])
                    assert not M.verify_consistency(m, n, other, root, p)


@pytest.mark.parametrize("args", [
    (LEAVES[5], 8, 8), (LEAVES[5], -1, 8), (b"\0" * 31, 5, 8),
])
def test_inclusion_rejects_malformed(args):
    leaf, index, size = args
    proof = M.inclusion_proof(LEAVES, 5, 8)
    assert not M.verify_inclusion(leaf, index, size, proof, h(ROOTS[8]))


def test_consistency_degenerate_cases():
    r4, r5, r8 = h(ROOTS[4]), h(ROOTS[5]), h(ROOTS[8])
    assert M.verify_consistency(4, 4, r4, r4, [])
    assert not M.verify_consistency(4, 4, r4, r5, [])
    assert not M.verify_consistency(4, 4, r4, r4, [b"\0" * 32])
    assert M.verify_consistency(0, 8, M.EMPTY_ROOT, r8, [])
    assert not M.verify_consistency(8, 6, r8, r4, [])
    assert not M.verify_consistency(6, 8, h(ROOTS[6]), r8, [])
    with pytest.raises(ValueError):
        M.consistency_proof(LEAVES, 5, 3)
    with pytest.raises(ValueError):
        M.inclusion_proof(LEAVES, 8, 8)
