"""The fast paths of verify_ledger (batched rows, regex field reading, batched Merkle tree, one-pass
store scan) judge exactly like a row-by-row json pass, including on entries crafted to fool them."""

import hashlib
import json
import os
import random

import pytest

from audit_archive import canonical, merkle
from audit_archive import verify as verify_mod
from audit_archive.checkpoint import make_checkpoint, public_key_text
from audit_archive.filestore import FileStore
from audit_archive.schema import audit_entries
from audit_archive.verify import _fast_parse, _Heads, _scan_store, verify_ledger

from .helpers import ORIGIN, do_append
from .test_tamper import CASES


# ---- Merkle heads fed in batches ------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_heads_match_rfc9162_roots_for_any_batching(seed):
    rnd = random.Random(seed)
    n = rnd.randrange(1, 300)
    leaves = [hashlib.sha256(b"\0" + os.urandom(8)).digest() for _ in range(n)]
    want = set(rnd.sample(range(0, n + 5), 25)) | {1, n}
    roots: dict[int, bytes] = {}
    heads = _Heads(want, roots)
    i = 0
    while i < n:
        # powers of two (aligned batches), odd sizes (leaf-by-leaf) and everything in between
        m = rnd.choice([1, 2, 3, 4, 7, 8, 16, 32, 64, rnd.randrange(1, 70)])
        heads.extend(leaves[i:i + m])
        i += m
        assert heads.size == min(i, n)
    assert heads.root() == merkle.root_hash(leaves)
    for s in want:
        if 0 < s <= n:
            assert roots[s] == merkle.root_hash(leaves[:s]), s
        else:
            assert s not in roots


# ---- regex reading of entries ---------------------------------------------------------------

def _entry(**over):
    kw = dict(seq=7, kind="roster", subject={"roster_id": "42", "program_id": "7"}, actor="user:3",
              occurred_at="2026-11-30T15:04:05Z", record_hash="ab" * 32, line_commitments=["cd" * 32, "ef" * 32],
              doc_sha256="12" * 32, doc_size=1234, prev_hash="34" * 32,
              checkpoint=canonical.CheckpointRef(ORIGIN, 5, "56" * 32), origin=ORIGIN)
    kw.update(over)
    return canonical.build_entry(**kw)


def _json_view(data: bytes):
    """What the json path reads from an entry, or None if it is not a readable v1 entry."""
    try:
        e = json.loads(data.decode("utf-8"))
        doc = e["doc"]
        fields = (e["seq"], e["prev_hash"], doc["sha256"], doc["size"])
    except (ValueError, KeyError, TypeError):
        return None
    ck = e.get("checkpoint")
    return fields + ((ck.get("size"), ck.get("root")) if isinstance(ck, dict) else None, e.get("v"))


def _fast_view(data: bytes):
    (m,) = _fast_parse([data])
    if m is None:
        return None
    ck_root, ck_size, doc, size, prev, seq = m.groups()
    return (int(seq), prev, doc, int(size), (int(ck_size), ck_root) if ck_root is not None else None, 1)


PLAIN = [
    _entry(),
    _entry(seq=1, prev_hash=None, checkpoint=None, line_commitments=[], subject={}),
    _entry(line_commitments=["cd" * 32], subject={"a": "b"}, kind="a,b:{c}[d]", actor="null,true"),
    _entry(actor='odd ,[]{}: but ascii ~', subject={"k": ""}),
]
UNUSUAL = [  # valid entries the fast path leaves to json (escapes, non-ASCII)
    _entry(actor='x","prev_hash":"' + "00" * 32),
    _entry(subject={"name": "Zoë"}),
    _entry(kind="tab\there"),
    _entry(actor="back\\slash"),
]


@pytest.mark.parametrize("data", PLAIN)
def test_plain_canonical_entries_take_the_fast_path(data):
    assert _fast_view(data) is not None
    assert _fast_view(data) == _json_view(data)


@pytest.mark.parametrize("data", UNUSUAL)
def test_escaped_or_non_ascii_entries_fall_back_to_json(data):
    assert _json_view(data) is not None
    assert _fast_view(data) is None


CRAFTED = [
    # a marker inside a nested object ahead of the real field (no escape needed)
    _entry().replace(b'"checkpoint":{"origin"', b'"checkpoint":{"prev_hash":"' + b"34" * 32 + b'","origin"'),
    # duplicate keys: json keeps the last one
    _entry()[:-1] + b',"seq":8}',
    _entry().replace(b'"kind":', b'"doc":{"media_type":"x","sha256":"' + b"99" * 32 + b'","size":1},"kind":'),
    # raw control character / lone backslash inside a string: not JSON
    _entry().replace(b"user:3", b"user:\x013"),
    _entry().replace(b"user:3", b"user:\\3"),
    _entry().replace(b"user:3", b'user:\\"3'),
    # other versions, numbers, whitespace, types
    _entry()[:-2] + b"2}",
    _entry()[:-2] + b"1.0}",
    _entry().replace(b'"seq":7', b'"seq":07'),
    _entry().replace(b'"seq":7', b'"seq":-7'),
    _entry().replace(b'"seq":7', b'"seq":"7"'),
    _entry().replace(b'"size":1234', b'"size":true'),
    _entry().replace(b'"seq":7,', b'"seq": 7,'),
    _entry().replace(b'"prev_hash":"' + b"34" * 32 + b'"', b'"prev_hash":false'),
    _entry().replace(b'"line_commitments":["', b'"line_commitments":[1,"'),
    _entry().replace(b'"subject":{"program_id":"7"', b'"subject":{"program_id":7'),
    _entry() + b" ",
    b"",
    b"{}",
]


@pytest.mark.parametrize("data", CRAFTED)
def test_crafted_entries_are_never_misread(data):
    assert _fast_view(data) is None  # none of these is a plain v1 entry: json judges them


def test_random_mutations_are_read_as_json_reads_them():
    rnd = random.Random(1)
    base = PLAIN + UNUSUAL
    alphabet = b'"\\{}[],:0123456789abcdefnulrtv \x01\x7f\xc3\xa9'
    fast_hits = 0
    for _ in range(20000):
        b = bytearray(rnd.choice(base))
        for _ in range(rnd.randrange(1, 4)):
            op, i = rnd.randrange(3), rnd.randrange(len(b) + 1)
            if op == 0 and i < len(b):
                b[i] = rnd.choice(alphabet)
            elif op == 1:
                b[i:i] = bytes([rnd.choice(alphabet)])
            elif i < len(b):
                del b[i]
        data = bytes(b)
        fast = _fast_view(data)
        if fast is not None:
            fast_hits += 1
            assert fast == _json_view(data), data
    assert fast_hits > 100  # the property was exercised on accepted mutants too


# ---- the same through verify_ledger ---------------------------------------------------------

def _insert_raw(engine, data: bytes, *, seq=None, prev=None, doc=None, size=None):
    """Insert ``data`` as the next row with every derived column consistent with the hashes;
    the doc/prev columns default to what json reads from the bytes."""
    e = json.loads(data)
    with engine.begin() as conn:
        conn.execute(audit_entries.insert().values(
            seq=seq if seq is not None else e["seq"], v=1, kind="roster", entry_bytes=data,
            entry_hash=hashlib.sha256(data).hexdigest(), leaf_hash=hashlib.sha256(b"\0" + data).hexdigest(),
            prev_hash=prev if prev is not None else e["prev_hash"],
            doc_sha256=doc or e["doc"]["sha256"], doc_size=size if size is not None else e["doc"]["size"]))


def _next_entry(res, **over):
    last = res[-1]
    e = json.loads(last.entry_bytes)
    kw = dict(seq=last.seq + 1, kind="roster", subject={"roster_id": "x"}, actor="user:7",
              occurred_at="2026-11-30T15:04:05Z", record_hash="ab" * 32, line_commitments=[],
              doc_sha256=last.doc_sha256, doc_size=last.doc_size, prev_hash=last.entry_hash,
              checkpoint=None, origin=ORIGIN)
    assert e["log"] == ORIGIN
    kw.update(over)
    return canonical.build_entry(**kw)


def test_unusual_but_valid_entries_verify(engine, store):
    res = do_append(engine, store, 2)
    data = _next_entry(res, actor='x","prev_hash":"' + "00" * 32, subject={"name": "Zoë"})
    _insert_raw(engine, data)
    with engine.connect() as conn:
        rep = verify_ledger(conn, store)
    assert rep.ok, rep.summary()
    assert rep.entries == 3


def test_marker_in_nested_object_does_not_hide_the_real_prev_hash(engine, store):
    res = do_append(engine, store, 2)
    good_prev = res[-1].entry_hash
    data = _next_entry(res, prev_hash="00" * 32).replace(
        b'"checkpoint":null', b'"checkpoint":{"prev_hash":"' + good_prev.encode() + b'"}')
    _insert_raw(engine, data, prev=good_prev)  # the column agrees with the decoy
    with engine.connect() as conn:
        rep = verify_ledger(conn, store)
    assert not rep.ok
    assert any(f.startswith("entry 3: prev_hash " + "00" * 32 + " does not match hash of entry 2") for f in rep.failures)
    assert any("entry 3: prev_hash column" in f for f in rep.failures)
    assert rep.first_bad_seq == 3


def test_duplicate_key_is_read_as_json_reads_it(engine, store):
    res = do_append(engine, store, 2)
    data = _next_entry(res)[:-1] + b',"seq":9}'
    _insert_raw(engine, data, seq=3)
    with engine.connect() as conn:
        rep = verify_ledger(conn, store)
    assert any("entry 3: bytes say seq 9 (row moved or swapped)" in f for f in rep.failures), rep.summary()


@pytest.mark.parametrize("mutate,expected", [
    (lambda d: d.replace(b'"user:7"', b'"user:\x017"'), "entry 3: stored bytes are not a v1 entry (JSONDecodeError: Invalid control character"),
    (lambda d: d.replace(b'"user:7"', b'"user:\\7"'), "entry 3: stored bytes are not a v1 entry (JSONDecodeError: Invalid \\escape"),
    (lambda d: d[:-2] + b"2}", "entry 3: unknown format version 2"),
    (lambda d: d.replace(b'"kind":', b'"kind" :'), None),  # valid JSON, not canonical: json judges it, fine
])
def test_invalid_entries_keep_their_messages(engine, store, mutate, expected):
    res = do_append(engine, store, 2)
    good = _next_entry(res)
    data = mutate(good)
    e = json.loads(good)
    with engine.begin() as conn:
        conn.execute(audit_entries.insert().values(
            seq=3, v=1, kind="roster", entry_bytes=data, entry_hash=hashlib.sha256(data).hexdigest(),
            leaf_hash=hashlib.sha256(b"\0" + data).hexdigest(), prev_hash=e["prev_hash"],
            doc_sha256=e["doc"]["sha256"], doc_size=e["doc"]["size"]))
    with engine.connect() as conn:
        rep = verify_ledger(conn, store)
    if expected is None:
        assert rep.ok, rep.summary()
    else:
        assert any(f.startswith(expected) for f in rep.failures), rep.summary()
        assert rep.first_bad_seq == 3


@pytest.mark.parametrize("batch", [3, 8])
@pytest.mark.parametrize("tamper,use_saved,expected,first_bad", CASES[:6] + CASES[8:10], ids=lambda v: getattr(v, "__name__", None))
def test_tamper_detected_with_other_batch_sizes(monkeypatch, engine, store, key_path, batch, tamper, use_saved,
                                                expected, first_bad):
    """Batches of 1, 3 (unaligned, leaf-by-leaf Merkle) and 8 (checkpoint roots inside a batch)."""
    monkeypatch.setattr(verify_mod, "_BATCH", batch)
    res = do_append(engine, store, 4)
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN)
    res += do_append(engine, store, 3)
    with engine.begin() as conn:
        saved = make_checkpoint(conn, key_path, ORIGIN).note
    pub = public_key_text(key_path, ORIGIN)
    with engine.connect() as conn:
        rep = verify_ledger(conn, store, pub, since_checkpoint=saved)
        assert rep.ok and rep.checkpoints_checked == 3, rep.summary()
    tamper({"engine": engine, "store": store, "res": res, "key_path": key_path})
    with engine.connect() as conn:
        rep = verify_ledger(conn, store, pub, since_checkpoint=saved if use_saved else None)
    assert any(expected in f for f in rep.failures), rep.summary()
    if first_bad is not None:
        assert rep.first_bad_seq == first_bad, rep.summary()


# ---- store scan -----------------------------------------------------------------------------

def test_scan_store_equals_the_store_listing(tmp_path):
    store = FileStore(tmp_path / "files")
    digests = [store.put(b"%PDF-" + bytes([i]))[0] for i in range(6)]
    root = store.root
    sub = root / digests[0][:2]
    (sub / ".tmp-123-abc").write_bytes(b"x")                       # stale temp file
    (sub / ("AB" * 31 + ".pdf")).write_bytes(b"x")                 # not lowercase hex
    (sub / ("ab" * 30 + ".pdf")).write_bytes(b"x")                 # too short
    (sub / ("ab" * 31 + ".txt")).write_bytes(b"x")                 # other suffix
    (sub / ("." + "ab" * 31 + ".pdf")).write_bytes(b"x")           # hidden
    (sub / ("cd" * 31 + ".pdf")).mkdir()                           # a directory named like a file
    (root / "zz").mkdir()
    (root / "zz" / ".tmp-9").write_bytes(b"x")                     # temp file in a non-hex dir
    (root / "zz" / ("ef" * 31 + ".pdf")).write_bytes(b"x")
    (root / "abc").mkdir()
    (root / "abc" / ("ab" * 31 + ".pdf")).write_bytes(b"x")        # dir name not 2 chars
    (root / ("ab" * 32 + ".pdf")).write_bytes(b"x")                # file at the root
    (root / "x1").write_bytes(b"x")                                # file with a 2-char name
    for referenced in (set(), set(digests[:3]), set(digests) | {"nothing", ""}):
        scanned = _scan_store(store, referenced)
        assert scanned is not None
        assert scanned == (sorted(set(store.list_all()) - referenced), store.stale_temp_files())
    assert scanned[1] and scanned[0] == sorted(d for d in store.list_all() if d not in digests)


def test_scan_store_leaves_other_stores_to_themselves(tmp_path):
    class Listing(FileStore):
        pass
    assert _scan_store(Listing(tmp_path / "f"), set()) is None
