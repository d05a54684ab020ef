"""The batch checks of verify (``_Pass._fast`` over runs of v2 entries, ``_Heads``, ``_scan_store``)
judge exactly like the row-by-row pass (``_Pass._slow``): the fast path never accepts what the
slow path rejects, and the reports are identical, on clean logs and on entries crafted to slip
through one of the C-level batch checks (stride slices, ``bytes.translate``, joined columns).

Every comparison runs the same input twice: as is, and with ``_Pass._fast`` forced to return None
(every batch walked row by row).  ``_BATCH`` is made small so that batches, batch edges and the
leaf-by-leaf / level-by-level Merkle paths are all crossed by 13 entries.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from dataclasses import asdict, dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text
from sqlalchemy.pool import StaticPool

from audit_archive import canonical, merkle
from audit_archive import verify as verify_mod
from audit_archive.checkpoint import make_checkpoint, public_key_text
from audit_archive.entry import (HEADER_FORMAT, HEADER_LEN, PREFIX_LEN, TAIL_DOC_SHA, TAIL_DOC_SIZE, V2_MAGIC,
                                 ZERO_HASH, EntryFormatError, chain_hash, leaf_hash)
from audit_archive.filestore import FileStore
from audit_archive.note import Checkpoint, Signer, sign_checkpoint
from audit_archive.schema import audit_entries, create_tables, drop_append_only_ddl
from audit_archive.verify import _Heads, _Pass, _scan_store, verify_entries, verify_ledger

from .helpers import ORIGIN, do_append

WHEN = "2026-11-30T15:04:05Z"
SIGNER = Signer(ORIGIN, Ed25519PrivateKey.generate())
PUB = SIGNER.verifier

# Fields of the v2 header, as byte slices of the entry.
SEQ = slice(len(V2_MAGIC) + 4, len(V2_MAGIC) + 4 + 12)
PREV = slice(SEQ.stop + len(b" prev="), SEQ.stop + len(b" prev=") + 64)
CK = slice(PREFIX_LEN, PREFIX_LEN + 12 + 1 + 64)          # "CCCCCCCCCCCC:<root>"
CK_SIZE = slice(PREFIX_LEN, PREFIX_LEN + 12)
DOC = slice(PREFIX_LEN + TAIL_DOC_SHA.start, PREFIX_LEN + TAIL_DOC_SHA.stop)
SIZE = slice(PREFIX_LEN + TAIL_DOC_SIZE.start, PREFIX_LEN + TAIL_DOC_SIZE.stop)
NL = HEADER_LEN - 1

MALFORMED = ("entry {k}: stored bytes are not a valid entry: v2 header line malformed (expected "
             "'iop-audit-entry/v2 seq=<12 digits> prev=<64 hex> ckpt=<12 digits>:<64 hex> doc=<64 hex>:<12 digits>')")
INVALID = "entry {k}: stored bytes are not a valid entry: "
NOT_AN_ENTRY = INVALID + "not an entry (neither a v2 header nor a v1 JSON object)"


# ---- builders -------------------------------------------------------------------------------

def _doc(seq: int) -> str:
    return hashlib.sha256(b"document %d" % seq).hexdigest()


def _entry(seq, prev, *, v1=False, ck=None, doc=None, size=None) -> bytes:
    build = canonical.build_entry_v1 if v1 else canonical.build_entry
    return build(seq=seq, kind="roster", subject={"roster_id": str(seq)}, actor="user:7", occurred_at=WHEN,
                 record_hash=hashlib.sha256(b"record %d" % seq).hexdigest(), line_commitments=[],
                 doc_sha256=doc or _doc(seq), doc_size=1000 + seq if size is None else size, prev_hash=prev,
                 checkpoint=None if ck is None else canonical.CheckpointRef(ORIGIN, *ck), origin=ORIGIN)


def _link(data: bytes) -> str:
    """What the next entry names as prev: ``entry.chain_hash``, or SHA-256 for bytes of no known version."""
    try:
        return chain_hash(data)
    except EntryFormatError:
        return hashlib.sha256(data).hexdigest()


def _put(data: bytes, sl: slice, value: bytes) -> bytes:
    assert len(value) == sl.stop - sl.start
    out = data[:sl.start] + value + data[sl.stop:]
    assert out != data
    return out


def _bump(hexstr):
    """The same hex string with its last digit changed (str or bytes)."""
    digits = "0123456789abcdef"
    last = hexstr[-1] if isinstance(hexstr, str) else chr(hexstr[-1])
    nxt = digits[(digits.index(last) + 1) % 16]
    return hexstr[:-1] + (nxt if isinstance(hexstr, str) else nxt.encode())


def _upper(data: bytes, sl: slice) -> bytes:
    return _put(data, sl, data[sl].upper())  # _put asserts the field had a letter


def _swap_bytes(data: bytes, i: int) -> bytes:
    """``data`` with bytes i and i+1 exchanged (a separator moved by one place)."""
    return data[:i] + data[i + 1:i + 2] + data[i:i + 1] + data[i + 2:]


def _up(hexstr: str) -> str:
    assert hexstr.upper() != hexstr
    return hexstr.upper()


@dataclass
class Ctx:
    """What a mutation knows: the seq being built and the entries before it."""
    seq: int
    prior: list

    def link(self, back: int = 1) -> str:
        return _link(self.prior[-back])

    def root(self, size: int) -> str:
        return merkle.root_hash([leaf_hash(d) for d in self.prior[:size]]).hex()


N = 13
NAMES = {3: 1, 6: 4, 10: 5, 12: 8, 13: 11}  # entry seq -> size of the checkpoint it names
# sizes 4 and 8 end a batch of 4, 5 starts one, 1 and 11 are inside (with batches of 3: 1, 4 start
# one, 5, 8, 11 are inside); the entries naming them sit in the same or a later batch.


def make_log(n=N, *, names=NAMES, v1=(), mutate=None) -> list[bytes]:
    """``n`` entries chained by ``entry.chain_hash``; entry ``s`` in ``names`` names the RFC 9162 root
    of the first ``names[s]`` entries; seqs in ``v1`` are v1 entries.  ``mutate[s](data, ctx)``
    replaces entry ``s`` and later entries link to the replacement, so it is the only anomaly."""
    mutate = mutate or {}
    out: list[bytes] = []
    for seq in range(1, n + 1):
        ck = None
        if seq in names:
            ck = (names[seq], Ctx(seq, out).root(names[seq]))
        data = _entry(seq, _link(out[-1]) if out else None, v1=seq in v1, ck=ck)
        if seq in mutate:
            data = mutate[seq](data, Ctx(seq, list(out)))
        out.append(data)
    return out


def notes_for(entries, sizes) -> list[str]:
    leaves = [leaf_hash(d) for d in entries]
    return [sign_checkpoint(Checkpoint(ORIGIN, s, merkle.root_hash(leaves[:s])), SIGNER) for s in sorted(sizes)]


def _verify_log(entries, names=NAMES):
    notes = notes_for(entries, set(names.values()))
    return lambda: verify_entries(entries, notes, PUB)


# ---- running both ways ----------------------------------------------------------------------

def _both(monkeypatch, run, *, same=True):
    """``(report, report with the batch checks off, seqs the first run walked row by row)``;
    asserts the two reports are identical unless ``same`` is False."""
    walked: list = []
    real_slow = _Pass._slow

    def spy(self, seqs, datas, cols):
        walked.extend(seqs)
        return real_slow(self, seqs, datas, cols)

    with monkeypatch.context() as m:
        m.setattr(_Pass, "_slow", spy)
        fast = run()
    with monkeypatch.context() as m:
        m.setattr(_Pass, "_fast", lambda self, seqs, datas, cols: None)
        slow = run()
    if same:
        assert asdict(fast) == asdict(slow), f"fast:\n{fast.summary()}\nrow by row:\n{slow.summary()}"
    return fast, slow, walked


def _matches(pattern: str, msg: str) -> bool:
    """Whole-message match where ``*`` stands for any text."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), msg, re.S) is not None


def _assert_reported(rep, patterns) -> None:
    left = list(rep.failures)
    for p in patterns:
        hit = next((f for f in left if _matches(p, f)), None)
        assert hit is not None, f"no failure matches {p!r}:\n{rep.summary()}"
        left.remove(hit)


def _entries_named(rep) -> set[int]:
    return {int(m.group(1)) for f in rep.failures for m in [re.match(r"entries? (-?\d+)", f)] if m}


def _batch_rows(seqs, batch, n=N) -> list[int]:
    """Seqs of every batch (of ``batch`` rows, from seq 1) containing one of ``seqs``, in order."""
    firsts = sorted({(s - 1) // batch * batch + 1 for s in seqs})
    return [s for f in firsts for s in range(f, min(f + batch, n + 1))]


@pytest.fixture(params=[3, 4], ids=lambda b: f"batch{b}")
def batch(request, monkeypatch):
    monkeypatch.setattr(verify_mod, "_BATCH", request.param)
    return request.param


# ---- the header offsets used below are those build_entry writes -------------------------------

def test_field_slices_match_the_header():
    data = _entry(7, "3f" * 32, ck=(5, "4a" * 32), doc="1d" * 32, size=1234)
    assert len(data[:HEADER_LEN]) == HEADER_LEN and data[NL:NL + 1] == b"\n"
    assert (data[SEQ], data[PREV], data[CK], data[CK_SIZE], data[DOC], data[SIZE]) == (
        b"000000000007", b"3f" * 32, b"000000000005:" + b"4a" * 32, b"000000000005", b"1d" * 32, b"000000001234")


# ---- valid logs: pass both ways, and the fast path takes every v2 batch ------------------------

PASSING = [
    ("v2", {}),
    ("no_checkpoint_named", {"names": {}}),
    ("v1_in_the_middle_chained_correctly", {"v1": {7}}),
    ("v1_naming_a_checkpoint", {"v1": {6}}),
    ("v1_on_both_sides_of_a_batch_edge", {"v1": {4, 5}}),
    ("v1_prefix_then_v2", {"v1": set(range(1, 7))}),  # a log that was migrated from v1 to v2
    ("v1_suffix", {"v1": {12, 13}}),
    ("all_v1", {"v1": set(range(1, N + 1))}),
    # verify reads only the header of a v2 entry (its docstring: the body is covered by the hashes
    # and judged by entry.parse_entry wherever it is read): so do both paths.
    ("v2_header_with_empty_body", {"mutate": {7: lambda d, c: d[:HEADER_LEN]}}),
    ("v2_body_not_json", {"mutate": {8: lambda d, c: d[:HEADER_LEN] + b"\xff not json"}}),
]


@pytest.mark.parametrize("kw", [kw for _, kw in PASSING], ids=[i for i, _ in PASSING])
def test_valid_logs_pass_both_ways(monkeypatch, batch, kw):
    entries = make_log(**kw)
    names = kw.get("names", NAMES)
    rep, _, walked = _both(monkeypatch, _verify_log(entries, names))
    assert rep.ok and rep.failures == [] and rep.warnings == [], rep.summary()
    assert rep.first_bad_seq is None
    assert (rep.entries, rep.checkpoints_checked) == (N, len(set(names.values())))
    assert rep.root_hash == merkle.root_hash([leaf_hash(d) for d in entries]).hex()
    # only the batches holding a v1 entry are walked row by row; the v2 batches after them are
    # taken by the fast path again (the chain hash of a v1 entry carries over)
    assert walked == _batch_rows(kw.get("v1", ()), batch)


def test_empty_log(monkeypatch, batch):
    rep, _, walked = _both(monkeypatch, lambda: verify_entries([]))
    assert rep.ok and rep.entries == 0 and walked == []
    assert rep.root_hash == merkle.EMPTY_ROOT.hex()


# ---- one tampered or malformed entry inside a batch -------------------------------------------

def _ck(size: int, root) -> bytes:
    return b"%012d:" % size + (root.encode() if isinstance(root, str) else root)


def _v1_with_prev(prev_of):
    return lambda d, c: _entry(c.seq, prev_of(c), v1=True)


TAMPERED = [
    # (id, mutation of entry k (later entries link to the result), expected failures, seqs k+i made v1)
    # -- the prefix "magic seq=... prev=... ckpt=" (compared whole with the expected one) --
    ("seq_digits_next", lambda d, c: _put(d, SEQ, b"%012d" % (c.seq + 1)), ["entry {k}: bytes say seq {k1} (row moved or swapped)"]),
    ("seq_digits_previous", lambda d, c: _put(d, SEQ, b"%012d" % (c.seq - 1)), ["entry {k}: bytes say seq {p} (row moved or swapped)"]),
    ("seq_zero", lambda d, c: _put(d, SEQ, b"0" * 12), [INVALID + "seq must be at least 1"]),
    ("seq_with_a_space", lambda d, c: _put(d, slice(SEQ.start, SEQ.start + 1), b" "), [MALFORMED]),
    ("seq_with_a_hex_letter", lambda d, c: _put(d, slice(SEQ.stop - 1, SEQ.stop), b"a"), [MALFORMED]),
    ("prev_off_by_one_hex_digit", lambda d, c: _put(d, PREV, _bump(d[PREV])),
     ["entry {k}: prev_hash * does not match hash of entry {p} ({prev})"]),
    ("prev_of_the_wrong_entry", lambda d, c: _put(d, PREV, c.link(2).encode()),
     ["entry {k}: prev_hash {prev2} does not match hash of entry {p} ({prev})"]),
    ("prev_zero_after_seq_1", lambda d, c: _put(d, PREV, ZERO_HASH.encode()), [INVALID + "prev must be all zeros exactly for seq 1"]),
    ("prev_uppercase", lambda d, c: _upper(d, PREV), [MALFORMED]),
    ("prev_non_hex", lambda d, c: _put(d, slice(PREV.stop - 1, PREV.stop), b"g"), [MALFORMED]),
    ("sep_prev_colon", lambda d, c: _put(d, slice(PREV.start - 1, PREV.start), b":"), [MALFORMED]),
    ("magic_v3", lambda d, c: d.replace(b"iop-audit-entry/v2 ", b"iop-audit-entry/v3 ", 1),
     [INVALID + "unknown entry format b'iop-audit-entry/v3 seq=0'"]),
    ("magic_v20", lambda d, c: d.replace(b"iop-audit-entry/v2 ", b"iop-audit-entry/v20", 1),
     [INVALID + "unknown entry format b'iop-audit-entry/v20seq=0'"]),
    ("magic_uppercase", lambda d, c: d.replace(b"iop-audit-entry", b"IOP-AUDIT-ENTRY", 1), [NOT_AN_ENTRY]),
    ("space_before_the_header", lambda d, c: b" " + d, [NOT_AN_ENTRY]),
    ("bom_before_the_header", lambda d, c: b"\xef\xbb\xbf" + d, [NOT_AN_ENTRY]),
    ("newline_before_the_header", lambda d, c: b"\n" + d, [NOT_AN_ENTRY]),
    ("empty_entry", lambda d, c: b"", [NOT_AN_ENTRY]),
    ("shorter_than_the_prefix", lambda d, c: d[:PREFIX_LEN - 1], [MALFORMED]),
    ("magic_only", lambda d, c: V2_MAGIC, [MALFORMED]),
    # -- the tail "ckpt=... doc=...:size\n" (stride slices, translate) --
    ("header_truncated_in_the_tail", lambda d, c: d[:PREFIX_LEN + 20], [MALFORMED]),
    ("header_truncated_before_newline", lambda d, c: d[:NL], [MALFORMED]),
    ("newline_missing", lambda d, c: d[:NL] + d[NL + 1:], [MALFORMED]),
    ("newline_is_cr", lambda d, c: _put(d, slice(NL, NL + 1), b"\r"), [MALFORMED]),
    ("newline_is_a_digit", lambda d, c: _put(d, slice(NL, NL + 1), b"0"), [MALFORMED]),
    ("doc_size_13_digits", lambda d, c: d[:SIZE.start] + b"0" + d[SIZE.start:], [MALFORMED]),
    ("sep_doc_to_dox", lambda d, c: d.replace(b" doc=", b" dox=", 1), [MALFORMED]),
    ("sep_doc_to_dac", lambda d, c: d.replace(b" doc=", b" dac=", 1), [MALFORMED]),  # hex letters only
    ("sep_doc_space_to_zero", lambda d, c: d.replace(b" doc=", b"0doc=", 1), [MALFORMED]),
    ("sep_ckpt_colon_to_semicolon", lambda d, c: _put(d, slice(CK_SIZE.stop, CK_SIZE.stop + 1), b";"), [MALFORMED]),
    ("sep_ckpt_colon_to_digit", lambda d, c: _put(d, slice(CK_SIZE.stop, CK_SIZE.stop + 1), b"0"), [MALFORMED]),
    ("sep_doc_colon_to_semicolon", lambda d, c: _put(d, slice(DOC.stop, DOC.stop + 1), b";"), [MALFORMED]),
    ("sep_doc_colon_to_hex_letter", lambda d, c: _put(d, slice(DOC.stop, DOC.stop + 1), b"f"), [MALFORMED]),
    # a separator moved by one place: same characters, same count, only the positions differ
    ("sep_doc_shifted_left", lambda d, c: d[:DOC.start - 6] + b" doc=" + d[DOC.start - 6:DOC.start - 5] + d[DOC.start:],
     [MALFORMED]),
    ("sep_ckpt_colon_shifted_right", lambda d, c: _swap_bytes(_put(d, CK, _ck(4, c.root(4))), CK_SIZE.stop), [MALFORMED]),
    ("sep_doc_colon_shifted_left", lambda d, c: _swap_bytes(_put(d, slice(DOC.stop - 1, DOC.stop), b"7"), DOC.stop - 1),
     [MALFORMED]),
    ("doc_uppercase", lambda d, c: _upper(d, DOC), [MALFORMED]),
    ("doc_with_nul", lambda d, c: _put(d, slice(DOC.start, DOC.start + 1), b"\x00"), [MALFORMED]),
    ("doc_size_with_hex_letter", lambda d, c: _put(d, slice(SIZE.stop - 1, SIZE.stop), b"a"), [MALFORMED]),
    ("doc_size_with_plus_sign", lambda d, c: _put(d, slice(SIZE.start, SIZE.start + 1), b"+"), [MALFORMED]),
    ("ckpt_size_with_hex_letter", lambda d, c: _put(d, slice(CK_SIZE.start, CK_SIZE.start + 1), b"b"), [MALFORMED]),
    ("ckpt_root_uppercase", lambda d, c: _put(d, CK, _ck(4, _up(c.root(4)))), [MALFORMED]),
    ("ckpt_root_non_hex", lambda d, c: _put(d, CK, _ck(4, "x" * 64)), [MALFORMED]),
    # -- the named checkpoint: form, then against the recomputed roots --
    ("ckpt_size_0_with_a_root", lambda d, c: _put(d, CK, _ck(0, "ab" * 32)),
     [INVALID + "ckpt must be size 0 with a zero root, or a real checkpoint"]),
    ("ckpt_size_0_with_the_empty_root", lambda d, c: _put(d, CK, _ck(0, merkle.EMPTY_ROOT.hex())),
     [INVALID + "ckpt must be size 0 with a zero root, or a real checkpoint"]),
    ("ckpt_size_with_zero_root", lambda d, c: _put(d, CK, _ck(4, ZERO_HASH)),
     [INVALID + "ckpt must be size 0 with a zero root, or a real checkpoint"]),
    ("ckpt_size_equal_to_seq", lambda d, c: _put(d, CK, _ck(c.seq, "ab" * 32)),
     [INVALID + "ckpt names size {k}, not earlier than the entry itself"]),
    ("ckpt_size_beyond_seq", lambda d, c: _put(d, CK, _ck(10 ** 12 - 1, "ab" * 32)),
     [INVALID + "ckpt names size 999999999999, not earlier than the entry itself"]),
    ("ckpt_size_not_stored", lambda d, c: _put(d, CK, _ck(3, c.root(3))),
     ["entry {k}: names checkpoint size 3 which is not a stored checkpoint"]),
    ("ckpt_wrong_root", lambda d, c: _put(d, CK, _ck(4, "ab" * 32)),
     ["entry {k}: names checkpoint 4:" + "ab" * 32 + " but the recomputed root at that size is {root4}"]),
    ("ckpt_root_of_another_size", lambda d, c: _put(d, CK, _ck(4, c.root(3))),
     ["entry {k}: names checkpoint 4:{root3} but the recomputed root at that size is {root4}"]),
    # -- versions mixed in the chain --
    ("v2_after_v1_names_its_leaf_hash", lambda d, c: _put(d, PREV, leaf_hash(c.prior[-1]).hex().encode()),
     ["entry {k}: prev_hash * does not match hash of entry {p} ({prev})"], (-1,)),
    ("v1_after_v2_names_its_sha256", _v1_with_prev(lambda c: hashlib.sha256(c.prior[-1]).hexdigest()),
     ["entry {k}: prev_hash * does not match hash of entry {p} ({prev})"]),
    ("v1_with_a_v2_seq", lambda d, c: _entry(c.seq + 1, c.link(), v1=True),
     ["entry {k}: bytes say seq {k1} (row moved or swapped)"]),
    ("v1_not_json", lambda d, c: _entry(c.seq, c.link(), v1=True)[:-1], [INVALID + "v1 entry is not UTF-8 JSON (*)"]),
]


@pytest.mark.parametrize("k", [5, 7, 8])
@pytest.mark.parametrize("case", TAMPERED, ids=[c[0] for c in TAMPERED])
def test_tampered_entry_reported_alike(monkeypatch, batch, case, k):
    _, mutate, expected, *v1_rel = case
    v1 = {k + i for i in (v1_rel[0] if v1_rel else ())}
    entries = make_log(v1=v1, mutate={k: mutate})
    clean = make_log(v1=v1)
    rep, _, walked = _both(monkeypatch, _verify_log(entries))
    ctx = Ctx(k, entries[:k - 1])
    values = dict(k=k, k1=k + 1, p=k - 1, prev=ctx.link(1), prev2=ctx.link(2), root3=ctx.root(3), root4=ctx.root(4))
    _assert_reported(rep, [e.format(**values) for e in expected])
    assert rep.first_bad_seq == k
    assert _entries_named(rep) <= {k, k + 1}, rep.summary()
    assert rep.entries == N and rep.root_hash == merkle.root_hash([leaf_hash(d) for d in entries]).hex()
    if all("names checkpoint" in e for e in expected):
        assert walked == []  # well-formed: the fast path takes it, the named roots are checked after the pass
    else:  # the batch of entry k was walked row by row (its failure is worded); batches before it were not
        assert k in walked and min(walked) == _batch_rows([min([k, *v1])], batch)[0]
    assert entries[:k - 1] == clean[:k - 1]


def test_several_bad_entries_across_batches(monkeypatch, batch):
    mutate = {2: TAMPERED[0][1], 5: lambda d, c: d.replace(b" doc=", b" dox=", 1), 6: lambda d, c: b" " + d,
              11: lambda d, c: _put(d, CK, _ck(3, "ab" * 32))}
    entries = make_log(mutate=mutate)
    rep, _, walked = _both(monkeypatch, _verify_log(entries))
    _assert_reported(rep, ["entry 2: bytes say seq 3 (row moved or swapped)", MALFORMED.format(k=5),
                           NOT_AN_ENTRY.format(k=6), "entry 11: names checkpoint size 3 which is not a stored checkpoint"])
    assert rep.first_bad_seq == 2


def test_same_checkpoint_named_twice_in_a_batch(monkeypatch, batch):
    """The size < seq check of a checkpoint named twice holds for the first entry naming it."""
    same = lambda d, c: _put(d, CK, _ck(7, "ab" * 32))  # noqa: E731  (too late for 7, fine for 8 and 9)
    entries = make_log(mutate={7: same, 8: same, 9: same})
    rep, _, walked = _both(monkeypatch, _verify_log(entries))
    _assert_reported(rep, [INVALID.format(k=7) + "ckpt names size 7, not earlier than the entry itself",
                           "entry 8: names checkpoint size 7 which is not a stored checkpoint"])
    assert rep.first_bad_seq == 7 and 7 in walked


def test_entry_bytes_edited_in_place(monkeypatch, batch):
    """An insider edits one entry's body and leaves the rest: the next link breaks, and a later
    checkpoint no longer matches."""
    entries = make_log()
    notes = notes_for(entries, set(NAMES.values()))
    entries[5] = entries[5].replace(b'"roster_id":"6"', b'"roster_id":"9"')  # entry 6: body only
    rep, _, walked = _both(monkeypatch, lambda: verify_entries(entries, notes, PUB))
    _assert_reported(rep, ["entry 7: prev_hash * does not match hash of entry 6 (*)",
                           "checkpoint size 8: root * != recomputed root * of the first 8 entries (history rewritten)",
                           "checkpoint size 11: root * != recomputed root * of the first 11 entries (history rewritten)",
                           "entry 12: names checkpoint 8:* but the recomputed root at that size is *",
                           "entry 13: names checkpoint 11:* but the recomputed root at that size is *"])
    assert len(rep.failures) == 5 and rep.first_bad_seq == 7


def test_checkpoint_beyond_the_log(monkeypatch, batch):
    entries = make_log()
    notes = notes_for(entries, set(NAMES.values()))
    rep, _, walked = _both(monkeypatch, lambda: verify_entries(entries[:10], notes, PUB))
    assert rep.failures == ["checkpoint size 11: covers 11 entries but the ledger has only 10 (tail truncated?)"]
    assert rep.first_bad_seq == 11 and walked == [] and rep.checkpoints_checked == 5


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


@pytest.mark.parametrize("batches", [[4, 4, 4, 4], [8, 8], [3, 3, 3, 3, 3, 1], [4, 4, 4, 3, 1], [16], [1] * 16, [2, 6, 8]])
def test_heads_roots_at_batch_edges(batches):
    leaves = [hashlib.sha256(b"\0%d" % i).digest() for i in range(sum(batches))]
    edges = {sum(batches[:j]) for j in range(1, len(batches) + 1)}
    want = edges | {e + 1 for e in edges} | {e - 1 for e in edges} | {0, 1}
    roots: dict[int, bytes] = {}
    heads = _Heads(want, roots)
    i = 0
    for m in batches:
        heads.extend(leaves[i:i + m])
        heads.extend([])  # an empty batch changes nothing
        i += m
    assert heads.root() == merkle.root_hash(leaves)
    assert roots == {s: merkle.root_hash(leaves[:s]) for s in want if 0 < s <= len(leaves)}


# ---- the same through verify_ledger: DB columns against the bytes ------------------------------

DB_N = 10  # batches of 4: 1-4, 5-8, 9-10


@pytest.fixture(scope="module")
def doc_store(tmp_path_factory):
    store = FileStore(tmp_path_factory.mktemp("verify-fast") / "files")
    for seq in range(1, DB_N + 1):
        store.put(_pdf(seq))
    return store


def _pdf(seq: int) -> bytes:
    return b"%%PDF-1.7 document %d\n%%%%EOF\n" % seq


def ledger_rows(n=DB_N, sizes=None, skip=()) -> list[dict]:
    """Rows of a clean v2 ledger of ``n`` entries whose documents are ``_pdf(seq)``; ``sizes``
    overrides the document size an entry (and its column) claims; seqs in ``skip`` are left out
    and the chain goes over them (the next entry names the one before as prev)."""
    rows, prev = [], None
    for seq in range(1, n + 1):
        if seq in skip:
            continue
        pdf = _pdf(seq)
        doc, size = hashlib.sha256(pdf).hexdigest(), (sizes or {}).get(seq, len(pdf))
        data = _entry(seq, prev, doc=doc, size=size)
        h = leaf_hash(data).hex()
        rows.append(dict(seq=seq, v=2, kind="roster", entry_bytes=data, entry_hash=h, leaf_hash=h, prev_hash=prev,
                         doc_sha256=doc, doc_size=size))
        prev = h
    return rows


@pytest.fixture
def db(monkeypatch):
    monkeypatch.setattr(verify_mod, "_BATCH", 4)
    eng = create_engine("sqlite://", poolclass=StaticPool)
    with eng.begin() as conn:
        create_tables(conn)
    yield eng
    eng.dispose()


def _insert(eng, rows) -> None:
    with eng.begin() as conn:
        for r in rows:
            conn.execute(audit_entries.insert().values(**r))


def _ledger_run(eng, store, check_documents=True):
    def run():
        with eng.connect() as conn:
            return verify_ledger(conn, store, check_documents=check_documents)
    return run


def _set(k, **cols):
    def f(rows):
        rows[k - 1].update({c: (v(rows) if callable(v) else v) for c, v in cols.items()})
    return f


def _split(col, k, also_prev=False):
    """Columns ``col`` of rows k and k+1 as 63 + 65 characters: concatenated, as before."""
    def f(rows):
        a, b = rows[k - 1], rows[k]
        joined = a[col] + b[col]
        cols = (col, "leaf_hash") if col == "entry_hash" else (col,)
        for c in cols:
            a[c], b[c] = joined[:63], joined[63:]
        if also_prev:  # keep the prev_hash column equal to the previous entry_hash column
            b["prev_hash"], rows[k + 1]["prev_hash"] = a["entry_hash"], b["entry_hash"]
    return f


def _swap_docs(k):
    def f(rows):
        a, b = rows[k - 1], rows[k]
        a["doc_sha256"], b["doc_sha256"] = b["doc_sha256"], a["doc_sha256"]
    return f


def _swap(k):
    def f(rows):
        a, b = rows[k - 1], rows[k]
        for c in a:
            if c != "seq":
                a[c], b[c] = b[c], a[c]
    return f


def _delete(k):
    return lambda rows: rows.pop(k - 1)


def _edit_body(k):
    def f(rows):
        rows[k - 1]["entry_bytes"] = rows[k - 1]["entry_bytes"].replace(b'"user:7"', b'"user:8"')
    return f


ENTRY_HASH_COL = "entry {k}: entry_hash column * != hash of the stored bytes *"
LEAF_HASH_COL = "entry {k}: leaf_hash column does not match the stored bytes"
DOC_COLS = "entry {k}: doc columns (*, *) differ from the entry bytes (*, *)"

COLUMN_CASES = [
    # (id, change to the rows (k = the row changed), expected failures)
    ("entry_hash", lambda k: _set(k, entry_hash=lambda r: _bump(r[k - 1]["entry_hash"])), [ENTRY_HASH_COL]),
    ("leaf_hash", lambda k: _set(k, leaf_hash=lambda r: _bump(r[k - 1]["leaf_hash"])), [LEAF_HASH_COL]),
    ("entry_and_leaf_hash_equal_but_wrong",
     lambda k: _set(k, entry_hash=lambda r: _bump(r[k - 1]["entry_hash"]), leaf_hash=lambda r: _bump(r[k - 1]["leaf_hash"])),
     [ENTRY_HASH_COL, LEAF_HASH_COL]),
    ("entry_and_leaf_hash_uppercase",
     lambda k: _set(k, entry_hash=lambda r: r[k - 1]["entry_hash"].upper(), leaf_hash=lambda r: r[k - 1]["leaf_hash"].upper()),
     [ENTRY_HASH_COL, LEAF_HASH_COL]),
    ("entry_hash_is_sha256_of_the_bytes",  # the v1 chain hash for a v2 entry
     lambda k: _set(k, entry_hash=lambda r: hashlib.sha256(r[k - 1]["entry_bytes"]).hexdigest()), [ENTRY_HASH_COL]),
    ("prev_hash", lambda k: _set(k, prev_hash=lambda r: _bump(r[k - 1]["prev_hash"])),
     ["entry {k}: prev_hash column * differs from the entry bytes (*)"]),
    ("prev_hash_null", lambda k: _set(k, prev_hash=None), ["entry {k}: prev_hash column None differs from the entry bytes (*)"]),
    ("prev_hash_of_the_wrong_row", lambda k: _set(k, prev_hash=lambda r: r[k - 1]["entry_hash"]),
     ["entry {k}: prev_hash column * differs from the entry bytes (*)"]),
    ("prev_hash_64_chars_plus_newline", lambda k: _set(k, prev_hash=lambda r: r[k - 1]["prev_hash"] + "\n"),
     ["entry {k}: prev_hash column * differs from the entry bytes (*)"]),
    ("kind", lambda k: _set(k, kind="letter"), ["entry {k}: kind column 'letter' differs from the entry bytes ('roster')"]),
    ("v", lambda k: _set(k, v=1), ["entry {k}: v column 1 differs from the entry's format version 2"]),
    ("doc_sha256", lambda k: _set(k, doc_sha256=lambda r: _bump(r[k - 1]["doc_sha256"])), [DOC_COLS]),
    ("doc_sha256_uppercase", lambda k: _set(k, doc_sha256=lambda r: r[k - 1]["doc_sha256"].upper()), [DOC_COLS]),
    ("doc_size_plus_one", lambda k: _set(k, doc_size=lambda r: r[k - 1]["doc_size"] + 1), [DOC_COLS]),
    ("doc_size_zero", lambda k: _set(k, doc_size=0), [DOC_COLS]),
    ("doc_size_text", lambda k: _set(k, doc_size="12a"), [DOC_COLS]),
    ("doc_columns_of_the_next_row", lambda k: _set(k, doc_sha256=lambda r: r[k]["doc_sha256"], doc_size=lambda r: r[k]["doc_size"]),
     [DOC_COLS]),
    ("doc_sha256_of_two_rows_swapped", _swap_docs, [DOC_COLS, DOC_COLS.replace("{k}", "{k1}")]),
    # 63 + 65 characters: the joined column equals the joined hashes, the lengths do not
    ("entry_and_leaf_hash_split_63_65", lambda k: _split("entry_hash", k, also_prev=True),
     [ENTRY_HASH_COL, LEAF_HASH_COL, ENTRY_HASH_COL.replace("{k}", "{k1}"), LEAF_HASH_COL.replace("{k}", "{k1}"),
      "entry {k1}: prev_hash column * differs from the entry bytes (*)",
      "entry {k2}: prev_hash column * differs from the entry bytes (*)"]),
    ("doc_sha256_split_63_65", lambda k: _split("doc_sha256", k), [DOC_COLS, DOC_COLS.replace("{k}", "{k1}")]),
    # rows
    ("entry_bytes_edited_columns_stale", _edit_body,
     [ENTRY_HASH_COL, LEAF_HASH_COL, "entry {k1}: prev_hash * does not match hash of entry {k} (*)"]),
    ("row_deleted", _delete, ["entry {k} is missing (seq jumps from {p} to {k1})",
                              "entry {k1}: prev_hash * does not match hash of entry {p} (*)"]),
    ("rows_swapped", _swap, ["entry {k}: bytes say seq {k1} (row moved or swapped)",
                             "entry {k1}: bytes say seq {k} (row moved or swapped)",
                             "entry {k}: prev_hash * does not match hash of entry {p} (*)"]),
    ("row_renumbered_to_the_end", lambda k: _set(k, seq=DB_N + 5),
     ["entry {k} is missing (seq jumps from {p} to {k1})", "entries 11..14 are missing (seq jumps from 10 to 15)",
      "entry 15: bytes say seq {k} (row moved or swapped)"]),
]


@pytest.mark.parametrize("check_documents", [True, False], ids=["docs", "entries_only"])
@pytest.mark.parametrize("k", [2, 4, 5])
@pytest.mark.parametrize("case", COLUMN_CASES, ids=[c[0] for c in COLUMN_CASES])
def test_db_columns_reported_alike(monkeypatch, db, doc_store, case, k, check_documents):
    _, change, expected = case
    rows = ledger_rows()
    change(k)(rows)
    _insert(db, rows)
    rep, _, walked = _both(monkeypatch, _ledger_run(db, doc_store, check_documents))
    _assert_reported(rep, [e.format(k=k, k1=k + 1, k2=k + 2, p=k - 1) for e in expected])
    assert rep.first_bad_seq == k
    assert walked and min(walked) >= (k - 1) // 4 * 4 + 1  # batches before the one of row k: fast
    assert rep.documents_checked == (len(rows) if check_documents else 0)


def test_db_clean_ledger_takes_the_fast_path(monkeypatch, db, doc_store):
    _insert(db, ledger_rows())
    rep, _, walked = _both(monkeypatch, _ledger_run(db, doc_store))
    assert rep.ok and walked == [], rep.summary()
    assert (rep.entries, rep.documents_checked, rep.unreferenced_files) == (DB_N, DB_N, [])
    assert rep.warnings == ["no stored checkpoint: tail truncation cannot be detected from the database alone"]


@pytest.mark.parametrize("k", [2, 4, 5, 8, 10])
def test_db_gap_with_the_chain_rebuilt_over_it(monkeypatch, db, doc_store, k):
    """Row k deleted and every later entry rebuilt on k-1: only the seq numbers show it."""
    _insert(db, ledger_rows(skip={k}))
    rep, _, walked = _both(monkeypatch, _ledger_run(db, doc_store))
    assert rep.failures == [f"entry {k} is missing (seq jumps from {k - 1} to {k + 1})"] if k < DB_N else rep.ok
    assert rep.first_bad_seq == (k if k < DB_N else None)
    assert rep.unreferenced_files == [hashlib.sha256(_pdf(k)).hexdigest()]


def test_db_first_row_prev_hash_column_not_null(monkeypatch, db, doc_store):
    rows = ledger_rows()
    rows[0]["prev_hash"] = ZERO_HASH
    _insert(db, rows)
    rep, _, walked = _both(monkeypatch, _ledger_run(db, doc_store))
    assert rep.failures == [f"entry 1: prev_hash column {ZERO_HASH} differs from the entry bytes (None)"]
    assert rep.first_bad_seq == 1 and walked == [1, 2, 3, 4]


def test_db_v1_rows_among_v2_rows(monkeypatch, db, doc_store):
    rows, prev = [], None
    for seq in range(1, DB_N + 1):
        pdf = _pdf(seq)
        data = _entry(seq, prev, v1=seq in (3, 6), doc=hashlib.sha256(pdf).hexdigest(), size=len(pdf))
        rows.append(dict(seq=seq, v=1 if seq in (3, 6) else 2, kind="roster", entry_bytes=data, entry_hash=_link(data),
                         leaf_hash=leaf_hash(data).hex(), prev_hash=prev, doc_sha256=hashlib.sha256(pdf).hexdigest(),
                         doc_size=len(pdf)))
        prev = _link(data)
    _insert(db, rows)
    rep, _, walked = _both(monkeypatch, _ledger_run(db, doc_store))
    assert rep.ok and rep.documents_checked == DB_N, rep.summary()
    assert walked == [1, 2, 3, 4, 5, 6, 7, 8]  # the batches holding a v1 row; 9-10 fast again


@pytest.mark.parametrize("k", [3, 4, 5])
def test_db_stored_documents_checked_alike(monkeypatch, db, tmp_path, k):
    """Document failures are found by the fast path itself (no batch walked row by row)."""
    store = FileStore(tmp_path / "files")
    for seq in range(1, DB_N + 1):
        store.put(_pdf(seq))
    real = len(_pdf(k + 1))
    rows = ledger_rows(sizes={k + 1: real + 1})  # entry k+1 (bytes and column) claims one byte more
    store.path_for(rows[k - 1]["doc_sha256"]).unlink()                # entry k: file missing
    p = store.path_for(rows[k + 1]["doc_sha256"])                     # entry k+2: file replaced
    p.chmod(0o644)
    p.write_bytes(b"%PDF-1.7 something else\n")
    stray, _ = store.put(b"%PDF stray")                               # named by no entry
    _insert(db, rows)
    rep, _, walked = _both(monkeypatch, _ledger_run(db, store))
    _assert_reported(rep, [f"entry {k}: stored PDF {rows[k - 1]['doc_sha256']} is missing",
                           f"entry {k + 1}: stored PDF size mismatch (expected {real + 1}, got {real})",
                           f"entry {k + 2}: stored PDF sha256 mismatch (expected {rows[k + 1]['doc_sha256']}, got *)"])
    assert len(rep.failures) == 3 and rep.first_bad_seq == k
    assert walked == []
    assert rep.unreferenced_files == [stray] and rep.documents_checked == DB_N - 1
    assert f"unreferenced file {stray} (no entry names it; left by an interrupted append?)" in rep.warnings


# ---- a real ledger (append, stamped PDFs, signed checkpoints) with other batch sizes --------------

@pytest.mark.parametrize("batch_size", [1, 3, 4, 8])
def test_real_ledger_with_other_batch_sizes(monkeypatch, engine, store, key_path, batch_size):
    """Batches of 1, 3 (unaligned, leaf-by-leaf Merkle), 4 and 8 (checkpoint roots inside a batch)."""
    monkeypatch.setattr(verify_mod, "_BATCH", batch_size)
    do_append(engine, store, 4)
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN)
    do_append(engine, store, 3)
    with engine.begin() as conn:
        saved = make_checkpoint(conn, key_path, ORIGIN).note
    do_append(engine, store, 2)
    pub = public_key_text(key_path, ORIGIN)

    def run():
        with engine.connect() as conn:
            return verify_ledger(conn, store, pub, since_checkpoint=saved)

    rep, _, walked = _both(monkeypatch, run)
    assert rep.ok and rep.checkpoints_checked == 3 and rep.entries == 9, rep.summary()
    assert walked == []
    with engine.begin() as conn:
        for s in drop_append_only_ddl(conn.dialect.name):
            conn.exec_driver_sql(s)
        conn.execute(text("UPDATE audit_entries SET doc_size = doc_size + 1 WHERE seq = 5"))
    rep, _, walked = _both(monkeypatch, run)
    _assert_reported(rep, ["entry 5: doc columns (*, *) differ from the entry bytes (*, *)"])
    assert rep.first_bad_seq == 5 and 5 in walked


# ---- regressions found by review -------------------------------------------------------------

def test_fast_path_requires_zero_prev_at_seq_1_even_after_a_seq_0_row(monkeypatch, db, doc_store):
    monkeypatch.setattr(verify_mod, "_BATCH", 1)
    rows = ledger_rows(3)
    r0 = dict(rows[1], seq=0)                 # any entry, stored at seq 0 (ends the first batch)
    h0 = r0["entry_hash"]
    one = rows[0]
    data1 = HEADER_FORMAT % (1, h0.encode(), 0, ZERO_HASH.encode(), one["doc_sha256"].encode(), one["doc_size"]) \
        + one["entry_bytes"][HEADER_LEN:]
    one.update(entry_bytes=data1, entry_hash=leaf_hash(data1).hex(), leaf_hash=leaf_hash(data1).hex(), prev_hash=h0)
    data2 = _entry(2, one["entry_hash"], doc=rows[1]["doc_sha256"], size=rows[1]["doc_size"])
    rows[1].update(entry_bytes=data2, entry_hash=leaf_hash(data2).hex(), leaf_hash=leaf_hash(data2).hex(),
                   prev_hash=one["entry_hash"])
    rows[2]["entry_bytes"] = data3 = _entry(3, rows[1]["entry_hash"], doc=rows[2]["doc_sha256"], size=rows[2]["doc_size"])
    rows[2].update(entry_hash=leaf_hash(data3).hex(), leaf_hash=leaf_hash(data3).hex(), prev_hash=rows[1]["entry_hash"])
    _insert(db, [r0, *rows])
    fast, slow, _ = _both(monkeypatch, _ledger_run(db, doc_store), same=False)
    bad = INVALID.format(k=1) + "prev must be all zeros exactly for seq 1"
    assert bad in slow.failures
    assert bad in fast.failures, fast.summary()
    assert asdict(fast) == asdict(slow)


def test_a_stray_seq_0_row_is_the_only_failure_before_a_good_genesis(monkeypatch, db, doc_store):
    """Seq 1 names no predecessor, whatever row came before it: only row 0 is reported."""
    monkeypatch.setattr(verify_mod, "_BATCH", 1)
    rows = ledger_rows(4)
    _insert(db, [dict(rows[3], seq=0), *rows[:3]])  # entry 4's row, stored at seq 0
    fast, slow, _ = _both(monkeypatch, _ledger_run(db, doc_store))
    assert fast.failures and all(f.startswith("entry 0: ") for f in fast.failures), fast.summary()
    assert fast.first_bad_seq == 0


def test_verify_entries_takes_bytearray_and_memoryview(monkeypatch):
    entries = make_log()
    for conv in (bytearray, memoryview):
        rep, _, _ = _both(monkeypatch, _verify_log([conv(e) for e in entries]))
        assert rep.ok and rep.entries == N, rep.summary()


@pytest.mark.parametrize("cols", [("doc_sha256",), ("entry_hash", "leaf_hash")], ids=["doc_sha256", "entry_and_leaf_hash"])
def test_blob_in_a_hash_column_is_reported_not_raised(monkeypatch, db, doc_store, cols):
    rows = ledger_rows()
    for c in cols:
        rows[1][c] = rows[1][c].encode()
    _insert(db, rows)
    with monkeypatch.context() as m:
        m.setattr(_Pass, "_fast", lambda self, seqs, datas, cols: None)
        slow = _ledger_run(db, doc_store)()
    assert slow.first_bad_seq == 2 and slow.failures
    assert any(f.startswith(("entry 2: doc columns (b'", "entry 2: entry_hash column b'")) for f in slow.failures)
    _both(monkeypatch, _ledger_run(db, doc_store))


@pytest.mark.parametrize("where", ["entries", "ledger"])
def test_malformed_v2_entry_does_not_break_the_next_link(monkeypatch, db, doc_store, where):
    bad = lambda d, c: d.replace(b" doc=", b" dox=", 1)  # noqa: E731
    if where == "entries":
        entries = make_log(mutate={5: bad})
        rep, _, _ = _both(monkeypatch, _verify_log(entries))
    else:
        rows = ledger_rows()
        for i in range(4, DB_N):
            r = rows[i]
            data = _entry(i + 1, rows[i - 1]["entry_hash"], doc=r["doc_sha256"], size=r["doc_size"])
            if i == 4:
                data = bad(data, None)
            r.update(entry_bytes=data, entry_hash=chain_hash(data), leaf_hash=leaf_hash(data).hex(),
                     prev_hash=rows[i - 1]["entry_hash"])
        _insert(db, rows)
        rep, _, _ = _both(monkeypatch, _ledger_run(db, doc_store))
    assert rep.failures == [MALFORMED.format(k=5)], rep.summary()


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
