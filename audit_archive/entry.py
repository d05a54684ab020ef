"""Entry formats: which version a stored entry is, its chain hash, and its fields.

Stdlib only: the standalone verifier bundled in every export imports this module.  Building
entries (which needs the RFC 8785 encoder) lives in ``canonical``; reading them lives here.

Two formats exist (docs/audit-format.md §1–2); every entry stays verifiable forever:

- **v1** (first appends): the whole entry is one JCS JSON object; chain hash =
  SHA-256(entry bytes).
- **v2** (current): a fixed-width ASCII header line holding everything the chain and tree
  checks need (seq, prev, named checkpoint, document hash and size), then the JCS object of
  the descriptive fields.  Chain hash = the RFC 9162 leaf hash SHA-256(0x00 || entry bytes), so
  one SHA-256 per entry serves both the chain and the tree, and a verifier reads the header by
  offset instead of parsing JSON (see ``verify`` for the batch checks this allows).
"""

from __future__ import annotations

import json
import re
from hashlib import sha256

V2_MAGIC = b"iop-audit-entry/v2 "
ZERO_HASH = "0" * 64  # v2 "prev" of the first entry and the root of "no checkpoint named"

# Header layout, v2 (all fixed width; byte offsets below are derived from it):
#   iop-audit-entry/v2 seq=SSSSSSSSSSSS prev=<64 hex> ckpt=CCCCCCCCCCCC:<64 hex> doc=<64 hex>:ZZZZZZZZZZZZ\n
_SEQ_W = _SIZE_W = 12
HEADER_FORMAT = (V2_MAGIC + b"seq=%012d prev=%s ckpt=%012d:%s doc=%s:%012d\n")
PREFIX_LEN = len(V2_MAGIC) + len(b"seq=") + _SEQ_W + len(b" prev=") + 64 + len(b" ckpt=")  # up to the ckpt value
TAIL_LEN = _SIZE_W + 1 + 64 + len(b" doc=") + 64 + 1 + _SIZE_W + 1  # "ckpt value doc=... \n"
HEADER_LEN = PREFIX_LEN + TAIL_LEN
MAX_SEQ = 10 ** _SEQ_W - 1
MAX_DOC_SIZE = 10 ** _SIZE_W - 1
# Offsets inside the tail (the header from PREFIX_LEN on).
TAIL_CKPT = slice(0, _SIZE_W + 1 + 64)                        # "CCCCCCCCCCCC:<root>"
TAIL_DOC_SHA = slice(_SIZE_W + 1 + 64 + 5, _SIZE_W + 1 + 64 + 5 + 64)
TAIL_DOC_SIZE = slice(TAIL_DOC_SHA.stop + 1, TAIL_DOC_SHA.stop + 1 + _SIZE_W)

_HEADER = re.compile(
    rb"iop-audit-entry/v2 seq=([0-9]{12}) prev=([0-9a-f]{64}) ckpt=([0-9]{12}):([0-9a-f]{64}) "
    rb"doc=([0-9a-f]{64}):([0-9]{12})\n")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")  # ASCII digits only
V2_BODY_KEYS = ("actor", "kind", "line_commitments", "log", "media_type", "occurred_at", "record_sha256", "subject")
# Entries appended since 2026-12 also say when they were archived (server UTC), docs/audit-format.md §1.
V2_BODY_KEYS_ARCHIVED = tuple(sorted(V2_BODY_KEYS + ("archived_at",)))
# An entry recording an event from before it was archived on purpose (imported or backfilled
# history, e.g. the demo's past weeks) says so, with a short reason: docs/audit-format.md §1.
V2_BODY_KEYS_BACKFILL = tuple(sorted(V2_BODY_KEYS_ARCHIVED + ("backfill",)))
BACKFILL_MAX_CHARS = 200
V1_KEYS = ("actor", "checkpoint", "doc", "kind", "line_commitments", "log", "occurred_at", "prev_hash",
           "record_sha256", "seq", "subject", "v")


class EntryFormatError(ValueError):
    """Stored entry bytes are not a well-formed entry of a known version; the message says what is wrong."""


def version_of(data: bytes) -> int:
    """Format version of stored entry bytes: 2 (header line), 1 (bare JSON object).

    Raises EntryFormatError for anything else (unknown versions are refused, never guessed)."""
    if data.startswith(V2_MAGIC):
        return 2
    if data.startswith(b"{"):
        return 1
    if data.startswith(b"iop-audit-entry/"):
        raise EntryFormatError(f"unknown entry format {data[:24]!r}")
    raise EntryFormatError("not an entry (neither a v2 header nor a v1 JSON object)")


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1 leaf hash SHA-256(0x00 || entry bytes), 32 raw bytes; every version."""
    return sha256(b"\x00" + data).digest()


def chain_hash(data: bytes) -> str:
    """Hex hash that the next entry names as its prev: v2 = the leaf hash, v1 = SHA-256(bytes).

    Raises EntryFormatError when the version cannot be told."""
    if version_of(data) == 2:
        return leaf_hash(data).hex()
    return sha256(data).hexdigest()


def build_header(*, seq: int, prev_hash: str | None, checkpoint: tuple[int, str] | None,
                 doc_sha256: str, doc_size: int) -> bytes:
    """The v2 header line for these values.  ``prev_hash`` None only for seq 1; ``checkpoint``
    is ``(size, hex root)`` or None.  Raises EntryFormatError for out-of-range or malformed values."""
    if not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
        raise EntryFormatError(f"seq must be an int in 1..{MAX_SEQ}, got {seq!r}")
    if (seq == 1) != (prev_hash is None) or prev_hash == ZERO_HASH:
        raise EntryFormatError("prev_hash must be None exactly for seq 1 (and never all zeros)")
    ck_size, ck_root = checkpoint if checkpoint else (0, ZERO_HASH)
    if checkpoint and ck_root == ZERO_HASH:
        raise EntryFormatError("a checkpoint root of all zeros means 'no checkpoint'; pass None")
    for name, value in (("prev_hash", prev_hash or ZERO_HASH), ("checkpoint root", ck_root), ("doc sha256", doc_sha256)):
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise EntryFormatError(f"{name} must be 64 lowercase hex digits, got {value!r}")
    if checkpoint and not (isinstance(ck_size, int) and 1 <= ck_size < seq):
        raise EntryFormatError(f"checkpoint size must be in 1..{seq - 1}, got {ck_size!r}")
    if not isinstance(doc_size, int) or not 0 <= doc_size <= MAX_DOC_SIZE:
        raise EntryFormatError(f"document size must be an int in 0..{MAX_DOC_SIZE}, got {doc_size!r}")
    return HEADER_FORMAT % (seq, (prev_hash or ZERO_HASH).encode(), ck_size, ck_root.encode(),
                            doc_sha256.encode(), doc_size)


def _is_hex64(value) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise EntryFormatError(msg)


def _check_common(e: dict) -> None:
    for k in ("actor", "kind", "log", "occurred_at"):
        _need(isinstance(e.get(k), str) and e[k] != "", f"{k} must be a non-empty string")
    _need(bool(_UTC.fullmatch(e["occurred_at"])), f"occurred_at {e['occurred_at']!r} is not UTC ISO-8601 ending in Z")
    _need(isinstance(e.get("record_sha256"), str) and bool(_HEX64.fullmatch(e["record_sha256"])),
          "record_sha256 must be 64 lowercase hex digits")
    lc = e.get("line_commitments")
    _need(isinstance(lc, list) and all(isinstance(c, str) and _HEX64.fullmatch(c) for c in lc),
          "line_commitments must be a list of 64-hex-digit strings")
    sub = e.get("subject")
    _need(isinstance(sub, dict) and all(isinstance(v, str) for v in sub.values()),
          "subject must be an object of string ids")


def _no_duplicates(pairs: list) -> dict:
    keys = [k for k, _v in pairs]
    if len(set(keys)) != len(keys):
        # two verifiers could read different values from {"kind":"a","kind":"b"}
        raise EntryFormatError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return dict(pairs)


def _no_float(text: str):
    raise EntryFormatError(f"number {text} is not an integer (floats are not allowed)")


def _jcs_sorted(value):
    # RFC 8785 orders keys by their UTF-16 code units
    if isinstance(value, dict):
        return {k: _jcs_sorted(value[k]) for k in sorted(value, key=lambda k: k.encode("utf-16-be"))}
    if isinstance(value, list):
        return [_jcs_sorted(v) for v in value]
    return value


def jcs_bytes(value) -> bytes:
    """RFC 8785 bytes of a value made of dicts, lists, str, int, bool and None (the only values
    entries hold): for these, JCS equals sorted keys, no whitespace, UTF-8, and the escapes
    Python's json writes (\\b \\t \\n \\f \\r, other controls as lowercase \\u00xx).
    Stdlib-only, so the standalone verifier can check that stored bytes are canonical."""
    return json.dumps(_jcs_sorted(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _load_object(text: bytes, what: str) -> dict:
    try:
        obj = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_float=_no_float,
                         parse_constant=_no_float)
    except EntryFormatError as exc:
        raise EntryFormatError(f"{what}: {exc}") from None
    except RecursionError:
        raise EntryFormatError(f"{what} is nested too deeply to be an entry") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise EntryFormatError(f"{what} is not UTF-8 JSON ({exc})") from None
    _need(isinstance(obj, dict), f"{what} is not a JSON object")
    try:
        canonical = jcs_bytes(obj)
    except (UnicodeEncodeError, RecursionError):  # e.g. an escaped lone surrogate "\ud800"
        raise EntryFormatError(f"{what} holds a string that is not valid Unicode") from None
    _need(canonical == text, f"{what} is not in canonical form (RFC 8785: sorted keys, no whitespace, "
                             "minimal escapes)")
    return obj


def _parse_header(data: bytes) -> tuple:
    m = _HEADER.match(data)
    _need(m is not None, "v2 header line malformed (expected "
          "'iop-audit-entry/v2 seq=<12 digits> prev=<64 hex> ckpt=<12 digits>:<64 hex> doc=<64 hex>:<12 digits>')")
    seq_s, prev, ck_size_s, ck_root, doc_sha, doc_size_s = m.groups()
    seq, ck_size = int(seq_s), int(ck_size_s)
    _need(seq >= 1, "seq must be at least 1")
    _need((seq == 1) == (prev == ZERO_HASH.encode()), "prev must be all zeros exactly for seq 1")
    _need((ck_size == 0) == (ck_root == ZERO_HASH.encode()), "ckpt must be size 0 with a zero root, or a real checkpoint")
    _need(ck_size < seq, f"ckpt names size {ck_size}, not earlier than the entry itself")
    return (seq, None if seq == 1 else prev.decode(), (ck_size, ck_root.decode()) if ck_size else None,
            doc_sha.decode(), int(doc_size_s))


def chain_fields(data: bytes) -> tuple[int, int, str | None, tuple[int, str] | None, str, int]:
    """What the chain and tree checks read from an entry: ``(v, seq, prev_hash or None,
    (checkpoint size, hex root) or None, doc sha256 hex, doc size in bytes)``.

    For v2 only the header is read (the body is covered by the hashes; ``parse_entry`` checks
    it); v1 entries are parsed whole.  Raises EntryFormatError naming the problem.
    """
    if version_of(data) == 2:
        return (2, *_parse_header(data))
    e = parse_entry(data)
    ck = e["checkpoint"]
    return (1, e["seq"], e["prev_hash"], (ck["size"], ck["root"]) if ck else None, e["doc"]["sha256"], e["doc"]["size"])


_KIND_KEY = b'"kind":"'


def kind_of(data: bytes) -> str | None:
    """The entry's ``kind`` read without parsing the JSON (None if absent).  Sound for both
    versions: inside a JSON string every '"' is escaped, and no object before the top-level
    ``kind`` key (v1: ``checkpoint``, ``doc``; v2: none) has such a key, so the first
    ``"kind":"`` is the top-level one.  Kinds are plain identifiers (``canonical`` enforces it),
    so the value runs to the next '"'."""
    i = data.find(_KIND_KEY, HEADER_LEN if data.startswith(V2_MAGIC) else 0)
    if i < 0:
        return None
    i += len(_KIND_KEY)
    j = data.find(b'"', i)
    return data[i:j].decode("utf-8", "replace") if j > 0 else None


def parse_entry(data: bytes) -> dict:
    """Fields of stored entry bytes of any version, in one shape:

    ``{"v", "log", "seq", "kind", "subject", "actor", "occurred_at", "record_sha256",
    "line_commitments", "archived_at" (only v2 entries appended since 2026-12 have it), "doc": {"media_type", "sha256", "size"}, "prev_hash" (hex or None for
    the first entry), "checkpoint": {"origin", "size", "root"} or None}``.

    Parses, never re-serializes.  Raises EntryFormatError naming the first problem.
    """
    v = version_of(data)
    if v == 1:
        e = _load_object(data, "v1 entry")
        _need(sorted(e) == list(V1_KEYS), f"v1 entry has fields {sorted(e)}, expected {list(V1_KEYS)}")
        _need(type(e["v"]) is int and e["v"] == 1, f"v1 entry says v {e['v']!r}")
        _need(type(e["seq"]) is int and e["seq"] >= 1, "seq must be a positive int")
        _check_common(e)
        doc = e["doc"]
        _need(isinstance(doc, dict) and sorted(doc) == ["media_type", "sha256", "size"]
              and isinstance(doc["media_type"], str) and _is_hex64(doc["sha256"])
              and type(doc["size"]) is int and doc["size"] >= 0,
              "doc must be {media_type, sha256 (64 lowercase hex), size (int >= 0)}")
        _need(e["prev_hash"] is None if e["seq"] == 1 else _is_hex64(e["prev_hash"]),
              "prev_hash must be null exactly for seq 1, else 64 lowercase hex digits")
        ck = e["checkpoint"]
        _need(ck is None or (isinstance(ck, dict) and sorted(ck) == ["origin", "root", "size"]
                             and isinstance(ck["origin"], str) and _is_hex64(ck["root"])
                             and type(ck["size"]) is int and 1 <= ck["size"] < e["seq"]),
              "checkpoint must be null or {origin, root (64 lowercase hex), size (1..seq-1)}")
        return e
    seq, prev, ck, doc_sha, doc_size = _parse_header(data)
    body = _load_object(data[HEADER_LEN:], "v2 body")
    _need(sorted(body) in (list(V2_BODY_KEYS), list(V2_BODY_KEYS_ARCHIVED), list(V2_BODY_KEYS_BACKFILL)),
          f"v2 body has fields {sorted(body)}, expected {list(V2_BODY_KEYS)} (and archived_at, in newer "
          f"entries; and backfill, only with archived_at)")
    _check_common(body)
    if "archived_at" in body:
        _need(isinstance(body["archived_at"], str) and bool(_UTC.fullmatch(body["archived_at"])),
              f"archived_at {body['archived_at']!r} is not UTC ISO-8601 ending in Z")
    if "backfill" in body:
        _need(isinstance(body["backfill"], str) and 0 < len(body["backfill"]) <= BACKFILL_MAX_CHARS
              and body["backfill"].strip() == body["backfill"],
              f"backfill must be a non-empty reason of at most {BACKFILL_MAX_CHARS} characters, "
              f"without leading or trailing spaces")
    _need(body["media_type"] == "application/pdf", f"media_type must be application/pdf, got {body['media_type']!r}")
    return {
        "v": 2, "log": body["log"], "seq": seq, "kind": body["kind"], "subject": body["subject"],
        "actor": body["actor"], "occurred_at": body["occurred_at"], "record_sha256": body["record_sha256"],
        "line_commitments": body["line_commitments"],
        **({"archived_at": body["archived_at"]} if "archived_at" in body else {}),
        **({"backfill": body["backfill"]} if "backfill" in body else {}),
        "doc": {"media_type": body["media_type"], "sha256": doc_sha, "size": doc_size},
        "prev_hash": prev,
        "checkpoint": None if ck is None else {"origin": body["log"], "size": ck[0], "root": ck[1]},
    }


def described_fields(data: bytes) -> dict:
    """The descriptive JSON object of stored entry bytes (v2 body, or the whole v1 object),
    parsed WITHOUT the canonical-form and field checks ``parse_entry`` makes: for readers that
    only need ``subject`` or ``line_commitments`` of entries ``verify`` already checks (the
    portal's fact loader reads hundreds per page).  Raises EntryFormatError when unreadable."""
    body = data[HEADER_LEN:] if version_of(data) == 2 else data
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise EntryFormatError(f"entry body is not JSON ({exc})") from None
    _need(isinstance(obj, dict), "entry body is not a JSON object")
    return obj


def _top_level_string(data: bytes, key: bytes) -> str | None:
    """The value of a top-level string ``key`` of a v2 body, read without parsing the JSON.
    Sound for ``archived_at`` and ``occurred_at``: JCS sorts keys, and every key before them
    (actor, kind, line_commitments, log, media_type) holds a string or a list of strings, in
    which every '"' is escaped, so the first ``"key":"`` is the top-level one."""
    i = data.find(b'"' + key + b'":"', HEADER_LEN)
    if i < 0:
        return None
    i += len(key) + 4
    j = data.find(b'"', i)
    return data[i:j].decode("ascii", "replace") if j > 0 else None


def backfill_of(data: bytes) -> str | None:
    """The ``backfill`` reason of stored v2 entry bytes, or None, without parsing the JSON.
    Sound as ``_top_level_string`` is: the keys before it (actor, archived_at) hold strings.
    The value is returned as stored (JSON escapes undone only by ``parse_entry``)."""
    if not data.startswith(V2_MAGIC):
        return None
    return _top_level_string(data, b"backfill")


def times_of(data: bytes) -> tuple[str | None, str | None]:
    """``(occurred_at, archived_at)`` strings of stored entry bytes (archived_at None for v1 and
    for v2 entries from before it existed), fast for v2 (no JSON parse)."""
    if data.startswith(V2_MAGIC):
        return _top_level_string(data, b"occurred_at"), _top_level_string(data, b"archived_at")
    try:
        e = json.loads(data)
    except ValueError:
        return None, None
    return (e.get("occurred_at") if isinstance(e, dict) else None), None


def utc_instant(text: str):
    """The aware UTC datetime of an entry timestamp ``YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z`` (strings
    do not compare as times: ``...00.5Z`` sorts before ``...00Z``).  EntryFormatError if malformed."""
    from datetime import datetime, timezone

    _need(isinstance(text, str) and bool(_UTC.fullmatch(text)), f"timestamp {text!r} is not UTC ISO-8601 ending in Z")
    base = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    frac = text[20:-1] if len(text) > 20 else ""
    return base.replace(microsecond=int(frac.ljust(6, "0")) if frac else 0)
