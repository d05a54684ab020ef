"""Archived time (issue 9, "Time"): every new entry says when it was archived; verify checks the
times never decrease along the chain and reports entries archived long after their event; and
checkpoint files are strict (finding 2: an overwritten newest file is a failure)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from audit_archive import canonical
from audit_archive import ledger as ledger_module
from audit_archive.checkpoint import make_checkpoint, public_key_text
from audit_archive.entry import leaf_hash, parse_entry, times_of
from audit_archive.ledger import tail
from audit_archive.note import Checkpoint, load_or_create_signer, sign_checkpoint
from audit_archive.schema import audit_entries
from audit_archive.verify import verify_ledger

from .helpers import BASE_URL, ORIGIN, do_append, make_pdf


def _verify(engine, store, **kw):
    with engine.connect() as conn:
        return verify_ledger(conn, store, **kw)


def _raw_append(engine, *, archived_at):
    """An entry written straight into the table (an insider without the portal), chained
    correctly but with the archived time given."""
    with engine.begin() as conn:
        seq, prev = tail(conn)
        doc = hashlib.sha256(b"x").hexdigest()
        data = canonical.build_entry(
            seq=seq + 1, kind="roster", subject={"roster_id": "x"}, actor="user:1",
            occurred_at=datetime(2026, 11, 30, tzinfo=timezone.utc), record_hash=doc, line_commitments=[],
            doc_sha256=doc, doc_size=1, prev_hash=prev, checkpoint=None, origin=ORIGIN, archived_at=archived_at)
        h = leaf_hash(data).hex()
        conn.execute(audit_entries.insert().values(seq=seq + 1, v=2, kind="roster", entry_bytes=data, entry_hash=h,
                                                   leaf_hash=h, prev_hash=prev, doc_sha256=doc, doc_size=1))


def test_new_entries_record_when_they_were_archived(engine, store):
    before = datetime.now(timezone.utc)
    res = do_append(engine, store, 2)
    parsed = [parse_entry(r.entry_bytes) for r in res]
    for e in parsed:
        archived = datetime.fromisoformat(e["archived_at"].replace("Z", "+00:00"))
        assert before - timedelta(seconds=1) <= archived <= datetime.now(timezone.utc)
    assert parsed[0]["archived_at"] <= parsed[1]["archived_at"]
    rep = _verify(engine, store)
    assert rep.ok and not rep.late_archived, rep.summary()


def test_entry_archived_weeks_after_its_event_is_reported(engine, store):
    do_append(engine, store, 1)
    with engine.begin() as conn:
        ledger_module.append(conn, store, kind="roster", subject={"roster_id": "late"}, actor="user:7",
                             record={"r": "late"}, pdf_bytes=make_pdf("late"),
                             occurred_at=datetime.now(timezone.utc) - timedelta(days=20),
                             verify_base_url=BASE_URL, origin=ORIGIN)
    rep = _verify(engine, store)
    assert rep.ok, rep.summary()  # a report, not a failure: the entry itself is intact
    assert [seq for seq, _o, _a in rep.late_archived] == [2]
    assert any(w.startswith("entry 2: late-archived: event at ") and "limit 7 days" in w for w in rep.warnings)
    assert "1 late-archived" in rep.summary().splitlines()[0]
    # The limit is configurable.
    assert not _verify(engine, store, late_after=timedelta(days=30)).late_archived


def test_archived_time_going_backwards_fails(engine, store):
    do_append(engine, store, 2)
    _raw_append(engine, archived_at=datetime(2020, 1, 1, tzinfo=timezone.utc))
    rep = _verify(engine, store, check_documents=False)
    assert not rep.ok
    assert any(f.startswith("entry 3: archived at 2020-01-01T00:00:00Z, before entry 2") for f in rep.failures), rep.failures
    assert rep.first_bad_seq == 3


def test_archived_time_dropped_after_it_began_fails(engine, store):
    do_append(engine, store, 1)
    _raw_append(engine, archived_at=None)
    rep = _verify(engine, store, check_documents=False)
    assert "entry 2: has no archived time, but entry 1 before it has" in rep.failures


def test_append_never_records_an_earlier_time_than_the_previous_entry(engine, store, monkeypatch):
    do_append(engine, store, 1)

    class Behind(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 1, 1, tzinfo=timezone.utc)  # the server clock jumped back

    monkeypatch.setattr(ledger_module, "datetime", Behind)
    res = do_append(engine, store, 1)
    monkeypatch.undo()
    with engine.connect() as conn:
        first = times_of(ledger_module.entry_bytes(conn, 1))[1]
    assert times_of(res[0].entry_bytes)[1] == first
    assert _verify(engine, store).ok


def test_fractional_seconds_compare_as_times_not_strings(engine, store):
    """"...:00.5Z" sorts before "...:00Z" as text; as times it is later: no false failure."""
    _raw_append(engine, archived_at="2026-12-01T10:00:00Z")
    _raw_append(engine, archived_at="2026-12-01T10:00:00.5Z")
    rep = _verify(engine, store, check_documents=False)
    assert not [f for f in rep.failures if "archived" in f], rep.failures


def test_overwritten_newest_checkpoint_file_fails(engine, store, key_path, tmp_path):
    d = tmp_path / "checkpoints"
    do_append(engine, store, 3)
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN, checkpoint_dir=d)
    do_append(engine, store, 2)
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN, checkpoint_dir=d)
    pub = public_key_text(key_path, ORIGIN)
    assert _verify(engine, store, public_key=pub, checkpoint_dir=d).ok
    (d / "checkpoint-5.txt").write_text((d / "checkpoint-3.txt").read_text())
    rep = _verify(engine, store, public_key=pub, checkpoint_dir=d)
    assert not rep.ok
    assert ("checkpoint file checkpoint-5.txt: signs size 3, not the size its name says "
            "(overwritten with another checkpoint?)") in rep.failures


def test_checkpoint_file_with_other_signed_text_fails(engine, store, key_path, tmp_path):
    d = tmp_path / "checkpoints"
    do_append(engine, store, 3)
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN, checkpoint_dir=d)
    signer = load_or_create_signer(key_path, ORIGIN)
    (d / "checkpoint-3.txt").write_text(sign_checkpoint(Checkpoint(ORIGIN, 3, b"\x01" * 32), signer))
    rep = _verify(engine, store, public_key=public_key_text(key_path, ORIGIN), checkpoint_dir=d)
    assert ("checkpoint file checkpoint-3.txt: differs from the stored checkpoint row of size 3 "
            "(other signed text for the same size)") in rep.failures


def test_ok_line_says_how_far_the_newest_checkpoint_reaches(engine, store, key_path, tmp_path):
    d = tmp_path / "checkpoints"
    do_append(engine, store, 3)
    with engine.begin() as conn:
        old = make_checkpoint(conn, key_path, ORIGIN, checkpoint_dir=d).note
    do_append(engine, store, 2)
    rep = _verify(engine, store, public_key=public_key_text(key_path, ORIGIN), checkpoint_dir=d,
                  since_checkpoint=old)
    first = rep.summary().splitlines()[0]
    assert first.startswith("OK: 5 entries, 5 documents, ")
    assert "newest checkpoint covers 3" in first and "2 not yet covered by a checkpoint" in first
    assert "--since started from size 3" in first


# -- Backfilled history: entries archived late on purpose say so (docs/audit-format.md §1) ------

BACKFILL = "demo history: simulated past days, archived when the demo was loaded"


def _append_at(engine, store, days_ago: float, *, backfill=None):
    with engine.begin() as conn:
        return ledger_module.append(
            conn, store, kind="roster", subject={"roster_id": f"r{days_ago}"}, actor="user:7",
            record={"r": days_ago}, pdf_bytes=make_pdf(f"r{days_ago}"),
            occurred_at=datetime.now(timezone.utc) - timedelta(days=days_ago),
            verify_base_url=BASE_URL, origin=ORIGIN, backfill=backfill)


def test_backfilled_entries_are_one_summary_line_not_a_warning_each(engine, store):
    for days in (27, 20, 13, 6):
        _append_at(engine, store, days, backfill=BACKFILL)
    late = _append_at(engine, store, 15)  # not marked: still a late-archived warning
    rep = _verify(engine, store)
    assert rep.ok, rep.summary()
    assert [seq for seq, _o, _a in rep.late_archived] == [late.seq]
    assert sum("late-archived" in w for w in rep.warnings) == 1
    assert f"entry {late.seq}: late-archived" in rep.warnings[0]
    ok_line = rep.summary().splitlines()[0]
    assert ok_line.startswith("OK: ")
    assert (f"4 entries marked as backfilled history (seq 1-4; events up to 27.0 days before archiving; "
            f"reason {BACKFILL!r})") in ok_line
    assert "1 late-archived" in ok_line


def test_backfill_marker_is_in_the_signed_entry_and_parsed(engine, store):
    res = _append_at(engine, store, 10, backfill=BACKFILL)
    e = parse_entry(res.entry_bytes)
    assert e["backfill"] == BACKFILL and e["archived_at"]
    assert b'"archived_at":"' in res.entry_bytes and b'"backfill":"demo history' in res.entry_bytes
    # Changing the marker changes the entry hash: the chain and every checkpoint cover it.
    forged = res.entry_bytes.replace(b'"backfill":"demo', b'"backfill":"DEMO')
    assert leaf_hash(forged) != leaf_hash(res.entry_bytes)


def test_marker_stripped_by_an_insider_breaks_the_chain(engine, store):
    """Removing the marker from a stored entry (triggers bypassed) to hide that history was
    backfilled is a rewrite: verify fails on the entry's hash."""
    from sqlalchemy import update
    res = _append_at(engine, store, 10, backfill=BACKFILL)
    body = parse_entry(res.entry_bytes)
    stripped = canonical.build_entry(
        seq=res.seq, kind="roster", subject=body["subject"], actor=body["actor"],
        occurred_at=body["occurred_at"], record_hash=body["record_sha256"],
        line_commitments=body["line_commitments"], doc_sha256=body["doc"]["sha256"],
        doc_size=body["doc"]["size"], prev_hash=None, checkpoint=None, origin=ORIGIN,
        archived_at=body["archived_at"])
    from audit_archive.schema import drop_append_only_ddl
    with engine.begin() as conn:
        for ddl in drop_append_only_ddl(conn.dialect.name):
            conn.exec_driver_sql(ddl)
        conn.execute(update(audit_entries).where(audit_entries.c.seq == res.seq).values(entry_bytes=stripped))
    rep = _verify(engine, store)
    assert not rep.ok and any(f"entry {res.seq}" in f for f in rep.failures), rep.summary()


def test_backfill_needs_archived_at_and_a_clean_reason(engine, store):
    import pytest

    from audit_archive.entry import EntryFormatError
    doc = hashlib.sha256(b"x").hexdigest()
    kw = dict(seq=1, kind="roster", subject={"roster_id": "x"}, actor="user:1",
              occurred_at=datetime(2026, 11, 1, tzinfo=timezone.utc), record_hash=doc, line_commitments=[],
              doc_sha256=doc, doc_size=1, prev_hash=None, checkpoint=None, origin=ORIGIN)
    with pytest.raises(canonical.CanonicalError, match="backfill needs archived_at"):
        canonical.build_entry(**kw, backfill=BACKFILL)
    for bad in ("", " padded", "x" * 201):
        with pytest.raises(canonical.CanonicalError, match="backfill must be"):
            canonical.build_entry(**kw, archived_at=datetime(2026, 12, 1, tzinfo=timezone.utc), backfill=bad)
    good = canonical.build_entry(**kw, archived_at=datetime(2026, 12, 1, tzinfo=timezone.utc), backfill=BACKFILL)
    # A reader refuses a body whose marker is malformed or that has it without archived_at.
    for old, new in ((b'"backfill":"demo history', b'"backfill":" demo history'),
                     (b'"archived_at":"2026-12-01T00:00:00Z",', b'')):
        with pytest.raises(EntryFormatError):
            parse_entry(good.replace(old, new))
