"""Canonical encoding, line commitments, signed notes, file store and stamping (no database)."""

import hashlib
import io
import os
import stat
from datetime import datetime, timedelta, timezone

import pytest

from audit_archive import canonical, note
from audit_archive.canonical import CanonicalError
from audit_archive.filestore import FileStore, FileStoreError


@pytest.mark.parametrize("value,expected", [
    ({"b": "2", "a": "1"}, b'{"a":"1","b":"2"}'),
    ({"n": 10, "t": True, "z": None, "l": ["x", 1]}, b'{"l":["x",1],"n":10,"t":true,"z":null}'),
    ({"\u00e9": "\u20ac", "e": "a\nb"}, '{"e":"a\\nb","\u00e9":"\u20ac"}'.encode()),
])
def test_canonical_bytes(value, expected):
    assert canonical.canonical_bytes(value) == expected


@pytest.mark.parametrize("bad", [{"m": 1.5}, {"n": 2 ** 60}, {1: "x"}, {"d": datetime.now()}, {"s": {"x"}}])
def test_canonical_refuses(bad):
    with pytest.raises(CanonicalError):
        canonical.canonical_bytes(bad)


@pytest.mark.parametrize("when,expected", [
    (datetime(2026, 11, 30, 10, 0, tzinfo=timezone(timedelta(hours=-5))), "2026-11-30T15:00:00Z"),
    (datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=timezone.utc), "2026-01-02T03:04:05.000600Z"),
    ("2026-11-30T15:00:00Z", "2026-11-30T15:00:00Z"),
])
def test_utc_timestamp(when, expected):
    assert canonical.utc_timestamp(when) == expected


@pytest.mark.parametrize("bad", [datetime(2026, 1, 1), "2026-11-30 15:00:00", "2026-11-30T15:00:00+00:00"])
def test_utc_timestamp_refuses(bad):
    with pytest.raises(CanonicalError):
        canonical.utc_timestamp(bad)


def test_line_commitment_domain_and_salt():
    salt = bytes(range(32))
    line = {"patient_id": "A", "status": "present"}
    c = canonical.commit_line(line, salt)
    assert c == hashlib.sha256(b"iop-audit/line-commitment/v1\x00" + salt + b'{"patient_id":"A","status":"present"}').hexdigest()
    assert c != canonical.commit_line(line, bytes(32))
    with pytest.raises(CanonicalError):
        canonical.commit_line(line, b"short")


def test_build_entry_validation():
    ok = dict(seq=1, kind="roster", subject={"roster_id": "1"}, actor="u", occurred_at="2026-11-30T15:00:00Z",
              record_hash="a" * 64, line_commitments=[], doc_sha256="b" * 64, doc_size=10, prev_hash=None,
              checkpoint=None, origin="o")
    canonical.build_entry(**ok)
    for change in ({"seq": 2}, {"subject": {"id": 1}}, {"record_hash": "A" * 64}, {"line_commitments": ["x"]}, {"seq": 0}):
        with pytest.raises(CanonicalError):
            canonical.build_entry(**{**ok, **change})


# The C2SP / Go sumdb/note example: text, verifier key and signature as published.
GO_NOTE = "This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
GO_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"


def test_published_signed_note_vector():
    v = note.parse_verifier(GO_VKEY)
    assert v.text() == GO_VKEY
    assert note.open_note(GO_NOTE, v) == "This is an example message.\n"
    with pytest.raises(note.NoteError):
        note.open_note(GO_NOTE.replace("example message", "example massage"), v)


def test_key_file_and_checkpoint_roundtrip(tmp_path):
    p = tmp_path / "k" / "log.key"
    s = note.load_or_create_signer(p, "log.example/a")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert note.load_or_create_signer(p, "log.example/a").text() == s.text()
    with pytest.raises(note.NoteError):
        note.load_or_create_signer(p, "other.example")
    ck = note.Checkpoint("log.example/a", 12, bytes(range(32)))
    signed = note.sign_checkpoint(ck, s)
    assert signed.startswith("log.example/a\n12\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n\u2014 log.example/a ")
    assert note.open_checkpoint(signed, s.verifier) == ck
    other = note.load_or_create_signer(tmp_path / "o.key", "log.example/a")
    with pytest.raises(note.NoteError, match="not signed by"):
        note.open_checkpoint(signed, other.verifier)


def test_filestore_write_once(tmp_path):
    fs = FileStore(tmp_path)
    d, p = fs.put(b"%PDF-1 hello")
    assert p == tmp_path / d[:2] / (d[2:] + ".pdf") and fs.get(d) == b"%PDF-1 hello"
    assert fs.put(b"%PDF-1 hello") == (d, p)            # identical: fine
    assert p.stat().st_mode & 0o777 == 0o400            # write-once: stored read-only
    p.chmod(0o644)
    p.write_bytes(b"tampered")
    with pytest.raises(FileStoreError, match="refusing to overwrite"):
        fs.put(b"%PDF-1 hello")
    assert list(fs.list_all()) == [d] and fs.stale_temp_files() == []
    (p.parent / ".tmp-1-abc").write_bytes(b"x")
    assert list(fs.list_all()) == [d] and len(fs.stale_temp_files()) == 1
    with pytest.raises(FileStoreError):
        fs.path_for("../etc/passwd")


def test_stamp_every_page_and_refuse_non_pdf():
    from pypdf import PdfReader
    from audit_archive.stamp import StampError, StampInfo, stamp_pdf
    from tests.audit.helpers import make_pdf
    info = StampInfo("IOP (Main) \u00e9", 9, "ab" * 32, "cd" * 32, None, "https://x.example/verify/9")
    out = stamp_pdf(make_pdf("hello", pages=3), info)
    pages = PdfReader(io.BytesIO(out)).pages
    assert len(pages) == 3
    for i, pg in enumerate(pages, 1):
        t = pg.extract_text()
        assert "hello" in t and f"page {i} of 3" in t and "audit #9" in t and "ckpt none" in t and "IOP (Main) ?" in t
    for bad in (b"", b"hello", b"%PDF-1.4\n%%EOF", b"\x89PNG\r\n"):
        with pytest.raises(StampError):
            stamp_pdf(bad, info)


def test_stamp_page_without_contents_uses_merge_path():
    from pypdf import PdfReader, PdfWriter
    from audit_archive.stamp import StampInfo, stamp_pdf
    w = PdfWriter()
    w.add_blank_page(width=300, height=400)
    buf = io.BytesIO()
    w.write(buf)
    out = stamp_pdf(buf.getvalue(), StampInfo("L", 1, None, "cd" * 32, (3, "ef" * 32), "https://x/verify/1"))
    t = PdfReader(io.BytesIO(out)).pages[0].extract_text()
    assert "prev genesis" in t and "ckpt 3:efefefef" in t and "page 1 of 1" in t
