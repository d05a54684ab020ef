"""audit_archive.entry: which version stored bytes are, their chain hash, the v2 header (built by
``build_header``, read by ``chain_fields``/``parse_entry``) and the fields of v1 and v2 entries."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from audit_archive import canonical, merkle
from audit_archive import entry as E
from audit_archive.canonical import CheckpointRef
from audit_archive.entry import EntryFormatError

ORIGIN = "portal.example.org/audit"
WHEN = "2026-11-30T15:04:05Z"
DOC, REC, PREV, ROOT, LC = "1d" * 32, "2e" * 32, "3f" * 32, "4a" * 32, "5b" * 32

ARGS = dict(seq=7, kind="roster", subject={"roster_id": "42", "program_id": "7"}, actor="user:3", occurred_at=WHEN,
            record_hash=REC, line_commitments=[LC], doc_sha256=DOC, doc_size=1234, prev_hash=PREV,
            checkpoint=CheckpointRef(ORIGIN, 5, ROOT), origin=ORIGIN)
FIRST = dict(ARGS, seq=1, prev_hash=None, checkpoint=None, line_commitments=[], subject={})
V2 = canonical.build_entry(**ARGS)
V1 = canonical.build_entry_v1(**ARGS)
V2_FIRST = canonical.build_entry(**FIRST)
V1_FIRST = canonical.build_entry_v1(**FIRST)
HEADER = V2[:E.HEADER_LEN]
BODY = V2[E.HEADER_LEN:]

MALFORMED = "v2 header line malformed"
NOT_AN_ENTRY = "not an entry (neither a v2 header nor a v1 JSON object)"


def _raw_header(seq=7, prev=PREV, ck=(5, ROOT), doc=DOC, size=1234) -> bytes:
    """A v2 header with any values, bypassing build_header's checks."""
    return E.HEADER_FORMAT % (seq, prev.encode(), ck[0], ck[1].encode(), doc.encode(), size)


def _v2_body(**changes) -> bytes:
    """V2's header with its body changed (a value None drops the key)."""
    body = {**json.loads(BODY), **changes}
    return HEADER + json.dumps({k: v for k, v in body.items() if v is not None}, sort_keys=True,
                               separators=(",", ":"), ensure_ascii=False).encode()


_DROP = object()


def _v1(**changes) -> bytes:
    """V1 with fields changed (the value _DROP removes the key)."""
    e = {**json.loads(V1), **changes}
    return json.dumps({k: v for k, v in e.items() if v is not _DROP}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def _replace(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) >= 1
    out = data.replace(old, new, 1)
    assert out != data
    return out


# ---- version_of ----------------------------------------------------------------------------

@pytest.mark.parametrize("data,version", [
    (V2, 2), (V2_FIRST, 2), (V1, 1), (V1_FIRST, 1),
    (HEADER, 2),                      # the version is told by the magic alone
    (E.V2_MAGIC, 2),
    (b"{}", 1), (b"{not json", 1),    # the version is told by the first byte; parsing judges the rest
])
def test_version_of(data, version):
    assert E.version_of(data) == version


@pytest.mark.parametrize("data,message", [
    (b"", NOT_AN_ENTRY),
    (b" " + V2, NOT_AN_ENTRY),
    (b" " + V1, NOT_AN_ENTRY),
    (b"\xef\xbb\xbf" + V1, NOT_AN_ENTRY),
    (b"\n" + V2, NOT_AN_ENTRY),
    (b"[]", NOT_AN_ENTRY),
    (b"IOP-AUDIT-ENTRY/v2 seq=", NOT_AN_ENTRY),
    (b"iop-audit-entry", NOT_AN_ENTRY),
    (_replace(V2, b"/v2 ", b"/v3 "), "unknown entry format b'iop-audit-entry/v3 seq=0'"),
    (_replace(V2, b"/v2 ", b"/v20"), "unknown entry format b'iop-audit-entry/v20seq=0'"),
    (b"iop-audit-entry/v2", "unknown entry format b'iop-audit-entry/v2'"),      # no space after the version
    (b"iop-audit-entry/v2\n", "unknown entry format b'iop-audit-entry/v2\\n'"),
    (b"iop-audit-entry/", "unknown entry format b'iop-audit-entry/'"),
])
def test_version_of_refuses(data, message):
    with pytest.raises(EntryFormatError) as exc:
        E.version_of(data)
    assert str(exc.value) == message


# ---- chain_hash / leaf_hash ----------------------------------------------------------------

@pytest.mark.parametrize("data,expected", [
    (V2, hashlib.sha256(b"\x00" + V2).hexdigest()),
    (V2_FIRST, hashlib.sha256(b"\x00" + V2_FIRST).hexdigest()),
    (V1, hashlib.sha256(V1).hexdigest()),
    (V1_FIRST, hashlib.sha256(V1_FIRST).hexdigest()),
    (b"{}", hashlib.sha256(b"{}").hexdigest()),
    # the version is told by the magic, so a v2 entry with a malformed header still has the leaf hash
    (_replace(V2, b" doc=", b" dox="), hashlib.sha256(b"\x00" + _replace(V2, b" doc=", b" dox=")).hexdigest()),
])
def test_chain_hash(data, expected):
    assert E.chain_hash(data) == expected
    assert canonical.entry_hash(data) == expected


@pytest.mark.parametrize("data", [V2, V1, b"", b"x"])
def test_leaf_hash_is_the_rfc9162_leaf_for_every_version(data):
    assert E.leaf_hash(data) == merkle.leaf_hash(data) == hashlib.sha256(b"\x00" + data).digest()


def test_v2_chain_hash_is_the_leaf_hash_and_v1_is_not():
    assert E.chain_hash(V2) == E.leaf_hash(V2).hex()
    assert E.chain_hash(V1) != E.leaf_hash(V1).hex()


@pytest.mark.parametrize("data,message", [(b"", NOT_AN_ENTRY), (b" {}", NOT_AN_ENTRY),
                                          (_replace(V2, b"/v2 ", b"/v9 "), "unknown entry format")])
def test_chain_hash_refuses_unknown_versions(data, message):
    with pytest.raises(EntryFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        E.chain_hash(data)


# ---- build_header --------------------------------------------------------------------------

def test_header_layout():
    assert HEADER == (b"iop-audit-entry/v2 seq=000000000007 prev=" + PREV.encode() + b" ckpt=000000000005:"
                      + ROOT.encode() + b" doc=" + DOC.encode() + b":000000001234\n")
    assert len(HEADER) == E.HEADER_LEN == E.PREFIX_LEN + E.TAIL_LEN
    assert HEADER[:E.PREFIX_LEN].endswith(b" ckpt=")
    tail = HEADER[E.PREFIX_LEN:]
    assert (tail[E.TAIL_CKPT], tail[E.TAIL_DOC_SHA], tail[E.TAIL_DOC_SIZE]) == (
        b"000000000005:" + ROOT.encode(), DOC.encode(), b"000000001234")
    assert V2 == HEADER + canonical.canonical_bytes(json.loads(BODY))
    assert V2_FIRST.startswith(b"iop-audit-entry/v2 seq=000000000001 prev=" + E.ZERO_HASH.encode()
                               + b" ckpt=000000000000:" + E.ZERO_HASH.encode() + b" doc=")


@pytest.mark.parametrize("kw,fields", [
    (dict(seq=7, prev_hash=PREV, checkpoint=(5, ROOT), doc_sha256=DOC, doc_size=1234), (7, PREV, (5, ROOT), DOC, 1234)),
    (dict(seq=1, prev_hash=None, checkpoint=None, doc_sha256=DOC, doc_size=0), (1, None, None, DOC, 0)),
    (dict(seq=2, prev_hash=PREV, checkpoint=(1, ROOT), doc_sha256=DOC, doc_size=1), (2, PREV, (1, ROOT), DOC, 1)),
    (dict(seq=E.MAX_SEQ, prev_hash=PREV, checkpoint=(E.MAX_SEQ - 1, ROOT), doc_sha256=DOC, doc_size=E.MAX_DOC_SIZE),
     (E.MAX_SEQ, PREV, (E.MAX_SEQ - 1, ROOT), DOC, E.MAX_DOC_SIZE)),
])
def test_build_header_round_trips(kw, fields):
    header = E.build_header(**kw)
    assert len(header) == E.HEADER_LEN and header.endswith(b"\n")
    assert E.chain_fields(header) == (2, *fields)


@pytest.mark.parametrize("change,message", [
    (dict(seq=0), "seq must be an int in 1..999999999999, got 0"),
    (dict(seq=-7), "seq must be an int in 1..999999999999, got -7"),
    (dict(seq=E.MAX_SEQ + 1), "seq must be an int in 1..999999999999, got 1000000000000"),
    (dict(seq="7"), "seq must be an int in 1..999999999999, got '7'"),
    (dict(seq=7.0), "seq must be an int in 1..999999999999, got 7.0"),
    (dict(seq=1), "prev_hash must be None exactly for seq 1"),
    (dict(prev_hash=None), "prev_hash must be None exactly for seq 1"),
    (dict(prev_hash=PREV.upper()), f"prev_hash must be 64 lowercase hex digits, got '{PREV.upper()}'"),
    (dict(prev_hash=PREV[:-1]), "prev_hash must be 64 lowercase hex digits, got"),
    (dict(prev_hash=PREV + "0"), "prev_hash must be 64 lowercase hex digits, got"),
    (dict(prev_hash=PREV[:-1] + "\n"), "prev_hash must be 64 lowercase hex digits, got"),
    (dict(prev_hash=PREV.encode()), "prev_hash must be 64 lowercase hex digits, got b'"),
    (dict(checkpoint=(5, ROOT.upper())), "checkpoint root must be 64 lowercase hex digits, got"),
    (dict(checkpoint=(5, ROOT[:-2])), "checkpoint root must be 64 lowercase hex digits, got"),
    (dict(checkpoint=(5, None)), "checkpoint root must be 64 lowercase hex digits, got None"),
    (dict(doc_sha256=DOC.upper()), "doc sha256 must be 64 lowercase hex digits, got"),
    (dict(doc_sha256="g" * 64), "doc sha256 must be 64 lowercase hex digits, got"),
    (dict(doc_sha256=None), "doc sha256 must be 64 lowercase hex digits, got None"),
    (dict(checkpoint=(0, ROOT)), "checkpoint size must be in 1..6, got 0"),
    (dict(checkpoint=(7, ROOT)), "checkpoint size must be in 1..6, got 7"),
    (dict(checkpoint=(8, ROOT)), "checkpoint size must be in 1..6, got 8"),
    (dict(checkpoint=(-1, ROOT)), "checkpoint size must be in 1..6, got -1"),
    (dict(checkpoint=("5", ROOT)), "checkpoint size must be in 1..6, got '5'"),
    (dict(doc_size=-1), "document size must be an int in 0..999999999999, got -1"),
    (dict(doc_size=E.MAX_DOC_SIZE + 1), "document size must be an int in 0..999999999999, got 1000000000000"),
    (dict(doc_size=12.0), "document size must be an int in 0..999999999999, got 12.0"),
    (dict(doc_size="12"), "document size must be an int in 0..999999999999, got '12'"),
])
def test_build_header_refuses(change, message):
    kw = dict(seq=7, prev_hash=PREV, checkpoint=(5, ROOT), doc_sha256=DOC, doc_size=1234)
    with pytest.raises(EntryFormatError) as exc:
        E.build_header(**{**kw, **change})
    assert str(exc.value).startswith(message)


@pytest.mark.parametrize("kw, message", [
    (dict(seq=7, prev_hash=E.ZERO_HASH, checkpoint=None), "prev_hash must be None exactly for seq 1 (and never all zeros)"),
    (dict(seq=7, prev_hash=PREV, checkpoint=(5, E.ZERO_HASH)), "a checkpoint root of all zeros means 'no checkpoint'"),
])
def test_build_header_never_writes_what_parse_refuses(kw, message):
    """The zero hash is reserved (no predecessor / no checkpoint): build_header refuses it
    elsewhere, so that whatever it writes reads back."""
    with pytest.raises(EntryFormatError, match=re.escape(message)):
        E.build_header(doc_sha256=DOC, doc_size=1, **kw)


# ---- parse_entry / chain_fields on good entries ----------------------------------------------

PARSED_V2 = {
    "v": 2, "log": ORIGIN, "seq": 7, "kind": "roster", "subject": {"program_id": "7", "roster_id": "42"},
    "actor": "user:3", "occurred_at": WHEN, "record_sha256": REC, "line_commitments": [LC],
    "doc": {"media_type": "application/pdf", "sha256": DOC, "size": 1234},
    "prev_hash": PREV, "checkpoint": {"origin": ORIGIN, "size": 5, "root": ROOT},
}
PARSED_V2_FIRST = dict(PARSED_V2, seq=1, subject={}, line_commitments=[], prev_hash=None, checkpoint=None)


@pytest.mark.parametrize("data,parsed", [
    (V2, PARSED_V2),
    (V2_FIRST, PARSED_V2_FIRST),
    (V1, dict(PARSED_V2, v=1)),              # both versions read to the same shape
    (V1_FIRST, dict(PARSED_V2_FIRST, v=1)),
])
def test_parse_entry(data, parsed):
    assert E.parse_entry(data) == parsed


@pytest.mark.parametrize("data,fields", [
    (V2, (2, 7, PREV, (5, ROOT), DOC, 1234)),
    (V2_FIRST, (2, 1, None, None, DOC, 1234)),
    (V1, (1, 7, PREV, (5, ROOT), DOC, 1234)),
    (V1_FIRST, (1, 1, None, None, DOC, 1234)),
    (HEADER, (2, 7, PREV, (5, ROOT), DOC, 1234)),                 # v2: the header alone is read
    (HEADER + b"\xff not json", (2, 7, PREV, (5, ROOT), DOC, 1234)),
])
def test_chain_fields(data, fields):
    assert E.chain_fields(data) == fields


def test_chain_fields_agrees_with_parse_entry():
    for data in (V2, V2_FIRST, V1, V1_FIRST):
        e = E.parse_entry(data)
        ck = e["checkpoint"]
        assert E.chain_fields(data) == (e["v"], e["seq"], e["prev_hash"], ck and (ck["size"], ck["root"]),
                                        e["doc"]["sha256"], e["doc"]["size"])


# ---- malformed entries ----------------------------------------------------------------------

HEADER_CASES = [
    # v2 header: read by both parse_entry and chain_fields
    ("seq_zero", _raw_header(seq=0) + BODY, "seq must be at least 1"),
    ("zero_prev_after_seq_1", _raw_header(prev=E.ZERO_HASH) + BODY, "prev must be all zeros exactly for seq 1"),
    ("non_zero_prev_at_seq_1", _raw_header(seq=1, ck=(0, E.ZERO_HASH)) + BODY, "prev must be all zeros exactly for seq 1"),
    ("ckpt_size_0_with_a_root", _raw_header(ck=(0, ROOT)) + BODY, "ckpt must be size 0 with a zero root, or a real checkpoint"),
    ("ckpt_size_with_zero_root", _raw_header(ck=(5, E.ZERO_HASH)) + BODY, "ckpt must be size 0 with a zero root, or a real checkpoint"),
    ("ckpt_size_equal_to_seq", _raw_header(ck=(7, ROOT)) + BODY, "ckpt names size 7, not earlier than the entry itself"),
    ("ckpt_size_beyond_seq", _raw_header(ck=(E.MAX_SEQ, ROOT)) + BODY,
     "ckpt names size 999999999999, not earlier than the entry itself"),
    ("prev_uppercase", _raw_header(prev=PREV.upper()) + BODY, MALFORMED),
    ("ckpt_root_uppercase", _raw_header(ck=(5, ROOT.upper())) + BODY, MALFORMED),
    ("doc_uppercase", _raw_header(doc=DOC.upper()) + BODY, MALFORMED),
    ("prev_non_hex", _replace(V2, PREV.encode(), PREV[:-1].encode() + b"g"), MALFORMED),
    ("letter_in_seq", _replace(V2, b"seq=000000000007", b"seq=00000000000a"), MALFORMED),
    ("space_in_seq", _replace(V2, b"seq=000000000007", b"seq= 00000000007"), MALFORMED),
    ("seq_13_digits", _replace(V2, b"seq=000000000007", b"seq=0000000000007"), MALFORMED),
    ("seq_11_digits", _replace(V2, b"seq=000000000007", b"seq=00000000007"), MALFORMED),
    ("letter_in_doc_size", _replace(V2, b":000000001234\n", b":00000000123a\n"), MALFORMED),
    ("sign_in_doc_size", _replace(V2, b":000000001234\n", b":+00000001234\n"), MALFORMED),
    ("letter_in_ckpt_size", _replace(V2, b"ckpt=000000000005", b"ckpt=00000000000b"), MALFORMED),
    ("sep_doc_to_dox", _replace(V2, b" doc=", b" dox="), MALFORMED),
    ("sep_prev_to_colon", _replace(V2, b" prev=", b" prev:"), MALFORMED),
    ("sep_double_space", _replace(V2, b" prev=", b"  prev="), MALFORMED),
    ("sep_ckpt_colon_to_semicolon", _replace(V2, b"000000000005:", b"000000000005;"), MALFORMED),
    ("sep_doc_colon_to_semicolon", _replace(V2, b":000000001234", b";000000001234"), MALFORMED),
    ("newline_missing", _replace(V2, b"\n", b""), MALFORMED),
    ("newline_is_crlf", _replace(V2, b"\n", b"\r\n"), MALFORMED),
    ("header_truncated", HEADER[:-1], MALFORMED),
    ("header_cut_in_the_middle", HEADER[:E.PREFIX_LEN + 10], MALFORMED),
    ("magic_only", E.V2_MAGIC, MALFORMED),
    ("unknown_version", _replace(V2, b"/v2 ", b"/v3 "), "unknown entry format b'iop-audit-entry/v3 seq=0'"),
    ("bytes_before_the_header", b" " + V2, NOT_AN_ENTRY),
    ("empty", b"", NOT_AN_ENTRY),
]

BODY_CASES = [
    # v2 body: read by parse_entry only
    ("body_empty", HEADER, "v2 body is not UTF-8 JSON"),
    ("body_not_utf8", HEADER + b"\xff", "v2 body is not UTF-8 JSON"),
    ("body_truncated", V2[:-1], "v2 body is not UTF-8 JSON"),
    ("body_trailing_garbage", V2 + b"x", "v2 body is not UTF-8 JSON"),
    ("body_not_an_object", HEADER + b"[]", "v2 body is not a JSON object"),
    ("body_missing_media_type", _v2_body(media_type=None), "v2 body has fields ['actor', 'kind', 'line_commitments', 'log', "
     "'occurred_at', 'record_sha256', 'subject'], expected ['actor', 'kind', 'line_commitments', 'log', 'media_type', "
     "'occurred_at', 'record_sha256', 'subject']"),
    ("body_with_a_seq", _v2_body(seq=7), "v2 body has fields ['actor', 'kind', 'line_commitments', 'log', 'media_type', "
     "'occurred_at', 'record_sha256', 'seq', 'subject']"),
    ("body_actor_empty", _v2_body(actor=""), "actor must be a non-empty string"),
    ("body_kind_not_a_string", _v2_body(kind=5), "kind must be a non-empty string"),
    ("body_log_empty", _v2_body(log=""), "log must be a non-empty string"),
    ("body_occurred_at_with_offset", _v2_body(occurred_at="2026-11-30T15:04:05+00:00"),
     "occurred_at '2026-11-30T15:04:05+00:00' is not UTC ISO-8601 ending in Z"),
    ("body_occurred_at_7_fraction_digits", _v2_body(occurred_at="2026-11-30T15:04:05.1234567Z"),
     "occurred_at '2026-11-30T15:04:05.1234567Z' is not UTC ISO-8601 ending in Z"),
    ("body_record_uppercase", _v2_body(record_sha256=REC.upper()), "record_sha256 must be 64 lowercase hex digits"),
    ("body_line_commitments_not_a_list", _v2_body(line_commitments=LC), "line_commitments must be a list of 64-hex-digit strings"),
    ("body_line_commitment_short", _v2_body(line_commitments=[LC[:-1]]), "line_commitments must be a list of 64-hex-digit strings"),
    ("body_subject_int_id", _v2_body(subject={"roster_id": 42}), "subject must be an object of string ids"),
    ("body_subject_a_list", _v2_body(subject=["42"]), "subject must be an object of string ids"),
    ("body_media_type_not_a_string", _v2_body(media_type=5), "media_type must be application/pdf, got 5"),
    ("body_media_type_not_pdf", _v2_body(media_type="text/html"), "media_type must be application/pdf, got 'text/html'"),
]

V1_FIELDS = "['actor', 'checkpoint', 'doc', 'kind', 'line_commitments', 'log', 'occurred_at', 'prev_hash', " \
            "'record_sha256', 'seq', 'subject', 'v']"
V1_CASES = [
    # v1: parsed whole by both parse_entry and chain_fields
    ("v1_truncated", V1[:-1], "v1 entry is not UTF-8 JSON"),
    ("v1_brace_only", b"{", "v1 entry is not UTF-8 JSON"),
    ("v1_not_utf8", _replace(V1, b"user:3", b"user:\xff"), "v1 entry is not UTF-8 JSON"),
    ("v1_raw_control_character", _replace(V1, b"user:3", b"user:\x013"), "v1 entry is not UTF-8 JSON"),
    ("v1_empty_object", b"{}", f"v1 entry has fields [], expected {V1_FIELDS}"),
    ("v1_missing_checkpoint", _v1(checkpoint=_DROP), "v1 entry has fields ['actor', 'doc', "),
    ("v1_extra_field", _v1(extra=1), "v1 entry has fields ['actor', 'checkpoint', 'doc', 'extra', "),
    ("v1_says_v2", _v1(v=2), "v1 entry says v 2"),
    ("v1_seq_string", _v1(seq="7"), "seq must be a positive int"),
    ("v1_seq_zero", _v1(seq=0), "seq must be a positive int"),
    ("v1_seq_true", _v1(seq=True), "seq must be a positive int"),
    ("v1_seq_float", _v1(seq=7.0), "v1 entry: number 7.0 is not an integer (floats are not allowed)"),
    ("v1_actor_empty", _v1(actor=""), "actor must be a non-empty string"),
    ("v1_occurred_at_naive", _v1(occurred_at="2026-11-30T15:04:05"), "occurred_at '2026-11-30T15:04:05' is not UTC ISO-8601 ending in Z"),
    ("v1_record_short", _v1(record_sha256=REC[:-2]), "record_sha256 must be 64 lowercase hex digits"),
    ("v1_subject_null", _v1(subject=None), "subject must be an object of string ids"),
    ("v1_doc_not_an_object", _v1(doc=DOC), "doc must be {media_type, sha256"),
    ("v1_doc_size_string", _v1(doc={"media_type": "application/pdf", "sha256": DOC, "size": "1234"}),
     "doc must be {media_type, sha256"),
    ("v1_doc_size_true", _v1(doc={"media_type": "application/pdf", "sha256": DOC, "size": True}),
     "doc must be {media_type, sha256"),
    ("v1_doc_sha256_missing", _v1(doc={"media_type": "application/pdf", "size": 1234}), "doc must be {media_type, sha256"),
    ("v1_prev_null_after_seq_1", _v1(prev_hash=None), "prev_hash must be null exactly for seq 1"),
    ("v1_prev_at_seq_1", _v1(seq=1, checkpoint=None), "prev_hash must be null exactly for seq 1"),
    ("v1_prev_not_a_string", _v1(prev_hash=5), "prev_hash must be null exactly for seq 1"),
    ("v1_checkpoint_not_an_object", _v1(checkpoint=5), "checkpoint must be null or {origin, root"),
    ("v1_checkpoint_size_string", _v1(checkpoint={"origin": ORIGIN, "root": ROOT, "size": "5"}),
     "checkpoint must be null or {origin, root"),
    ("v1_checkpoint_root_missing", _v1(checkpoint={"origin": ORIGIN, "size": 5}), "checkpoint must be null or {origin, root"),
    ("v1_array", b"[" + V1 + b"]", NOT_AN_ENTRY),
]


def _cases(cases):
    return pytest.mark.parametrize("data,message", [c[1:] for c in cases], ids=[c[0] for c in cases])


def _refused(fn, data) -> str:
    with pytest.raises(EntryFormatError) as exc:
        fn(data)
    return str(exc.value)


@_cases(HEADER_CASES + V1_CASES)
def test_parse_entry_and_chain_fields_refuse(data, message):
    assert message in _refused(E.parse_entry, data)
    assert message in _refused(E.chain_fields, data)


@_cases(BODY_CASES)
def test_parse_entry_refuses_a_bad_v2_body_that_chain_fields_does_not_read(data, message):
    assert message in _refused(E.parse_entry, data)
    assert E.chain_fields(data) == (2, 7, PREV, (5, ROOT), DOC, 1234)


def test_malformed_header_message_names_the_layout():
    assert _refused(E.parse_entry, _replace(V2, b" doc=", b" dox=")) == (
        "v2 header line malformed (expected 'iop-audit-entry/v2 seq=<12 digits> prev=<64 hex> "
        "ckpt=<12 digits>:<64 hex> doc=<64 hex>:<12 digits>')")


def test_every_single_byte_change_in_the_header_is_refused_or_read_as_written():
    """No one-byte change of a v2 header is read as something other than what its bytes say:
    either it is refused, or the fields read are exactly those of the changed bytes."""
    alphabet = b"0123456789abcdefABCDEF :=;\n\x00g"
    for i in range(E.HEADER_LEN):
        for c in alphabet:
            if HEADER[i] == c:
                continue
            data = HEADER[:i] + bytes([c]) + HEADER[i + 1:] + BODY
            try:
                fields = E.chain_fields(data)
            except EntryFormatError:
                continue
            # accepted: only a digit of a number or a lowercase hex digit of a hash changed
            assert chr(c) in "0123456789abcdef" and chr(HEADER[i]) in "0123456789abcdef", (i, chr(c))
            v, seq, prev, ck, doc, size = fields
            assert _raw_header(seq, prev or E.ZERO_HASH, ck or (0, E.ZERO_HASH), doc, size) == data[:E.HEADER_LEN]


# ---- v1 entries the spec forbids, and non-ASCII digits ----------------------------------------

def _ck1(**ck):
    return _v1(checkpoint={"origin": ORIGIN, "root": ROOT, "size": 5, **ck})


def _doc1(**doc):
    return _v1(doc={"media_type": "application/pdf", "sha256": DOC, "size": 1234, **doc})


@pytest.mark.parametrize("data", [
    pytest.param(d, id=i) for i, d in [
        ("v_true", _v1(v=True)),
        ("v_float", _v1(v=1.0)),
        ("prev_hash_not_hex", _v1(prev_hash="not a hash")),
        ("prev_hash_uppercase", _v1(prev_hash=PREV.upper())),
        ("checkpoint_root_not_hex", _ck1(root="x")),
        ("checkpoint_size_0", _ck1(size=0)),
        ("checkpoint_size_equal_to_seq", _ck1(size=7)),
        ("checkpoint_without_origin", _v1(checkpoint={"root": ROOT, "size": 5})),
        ("doc_sha256_not_hex", _doc1(sha256="x")),
        ("doc_size_negative", _doc1(size=-1)),
        ("doc_without_media_type", _v1(doc={"sha256": DOC, "size": 1234})),
    ]])
def test_v1_entry_the_spec_forbids_is_refused(data):
    """docs/audit-format.md §1: v is the int 1, hashes are lowercase hex, 1 <= checkpoint size < seq,
    doc and checkpoint have exactly their keys."""
    try:
        E.parse_entry(data)
    except EntryFormatError:
        return
    raise AssertionError(f"parse_entry accepted {data!r}")


@pytest.mark.parametrize("make", [_v1, _v2_body], ids=["v1", "v2"])
def test_occurred_at_with_non_ascii_digits_is_refused(make):
    """YYYY-MM-DD... means ASCII digits; a Unicode-digit pattern would accept Arabic-Indic digits."""
    data = make(occurred_at="\u0662\u0660\u0662\u0666-11-30T15:04:05Z")
    try:
        E.parse_entry(data)
    except EntryFormatError as exc:
        assert "is not UTC ISO-8601 ending in Z" in str(exc)
        return
    raise AssertionError("parse_entry accepted occurred_at with non-ASCII digits")


# ---- canonical form of the JSON parts ---------------------------------------------------------

def _v2_raw_body(body: bytes) -> bytes:
    good = _v2_body()
    return good[:E.HEADER_LEN] + body


_GOOD_BODY = _v2_body()[E.HEADER_LEN:]


@pytest.mark.parametrize("name, body, message", [
    ("whitespace", _GOOD_BODY.replace(b'","', b'", "', 1), "v2 body is not in canonical form"),
    ("trailing_newline", _GOOD_BODY + b"\n", "v2 body is not in canonical form"),
    ("keys_reordered", b'{"kind"' + _GOOD_BODY[len(b'{"actor"'):].replace(b',"kind"', b',"actor"', 1),
     "v2 body is not in canonical form"),
    ("escaped_ascii", _GOOD_BODY.replace(b'"roster"', b'"\\u0072oster"', 1), "v2 body is not in canonical form"),
    ("duplicate_key", _GOOD_BODY.replace(b'"kind":"roster"', b'"kind":"roster","kind":"note"', 1),
     "v2 body: duplicate key 'kind'"),
    ("float", _GOOD_BODY.replace(b'{"actor"', b'{"a":1.5,"actor"', 1), "v2 body: number 1.5 is not an integer"),
    ("nan", _GOOD_BODY.replace(b'{"actor"', b'{"a":NaN,"actor"', 1), "v2 body: number NaN is not an integer"),
])
def test_non_canonical_body_is_refused(name, body, message):
    with pytest.raises(EntryFormatError) as exc:
        E.parse_entry(_v2_raw_body(body))
    assert message in str(exc.value)


def test_non_canonical_v1_entry_is_refused():
    good = _v1()
    E.parse_entry(good)
    with pytest.raises(EntryFormatError, match="v1 entry is not in canonical form"):
        E.parse_entry(good.replace(b'","', b'", "', 1))


def test_jcs_bytes_equals_rfc8785_on_hard_strings():
    """The stdlib encoder the standalone verifier uses agrees with the rfc8785 package that writes
    entries: control characters, DEL, U+2028, non-BMP keys sorted by UTF-16 code units."""
    import random

    import rfc8785
    rnd = random.Random(8785)
    chars = ["\x00", "\x1f", "\x7f", "\u2028", "\ud7ff", "\ue000", "\U0001F600", '"', "\\", "/", "é", "\t", "\n", "a"]
    for _ in range(500):
        word = lambda n: "".join(rnd.choice(chars) for _ in range(rnd.randint(0, n)))  # noqa: E731
        d = {word(4): word(6) for _ in range(rnd.randint(0, 5))}
        d["n"] = rnd.randint(-2 ** 53 + 1, 2 ** 53 - 1)
        d["l"] = [True, None, False, {"\U0001F600": 1, "\ue000": 2}]
        assert E.jcs_bytes(d) == rfc8785.dumps(d), d


def test_archive_binding_fast_canonical_form_equals_jcs():
    """portal.archive_binding._canonical takes a shortcut for flat lines; it must be JCS."""
    from audit_archive.entry import jcs_bytes
    from portal.archive_binding import _canonical

    for line in ({"patient_id": "7", "name": "José García-López", "status": "present", "n": 3, "x": None},
                 {"b": "tab\there \"quoted\" \\ back", "a": "\u2028 line sep, emoji \U0001F600, ctrl \x01"},
                 {"nested": {"z": 1, "a": [2]}, "k": "v"}):
        assert _canonical(line) == jcs_bytes(line)
