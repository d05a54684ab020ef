import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from audit_archive import merkle
from audit_archive.canonical import commit_line, new_salt
from audit_archive.checkpoint import make_checkpoint
from audit_archive.ledger import append, leaf_hashes
from audit_archive.schema import audit_entries
from audit_archive.stamp import StampError
from audit_archive.verify import verify_ledger

from audit_archive.entry import chain_hash, parse_entry, version_of

from .helpers import BASE_URL, ORIGIN, WHEN, do_append, make_pdf


def test_append_chain_and_verify(engine, store, key_path):
    res = do_append(engine, store, 5)
    assert [r.seq for r in res] == [1, 2, 3, 4, 5]
    assert res[0].prev_hash is None
    for a, b in zip(res, res[1:]):
        assert b.prev_hash == a.entry_hash
    for r in res:
        assert r.path.read_bytes()[:5] == b"%PDF-"
        e = parse_entry(r.entry_bytes)
        assert e["doc"] == {"media_type": "application/pdf", "sha256": r.doc_sha256, "size": r.doc_size}
        assert e["occurred_at"] == "2026-11-30T15:04:05Z"
        # current format: v2, chain hash = RFC 9162 leaf hash = both hash columns
        assert version_of(r.entry_bytes) == 2 and e["seq"] == r.seq and e["prev_hash"] == r.prev_hash
        assert r.entry_hash == r.leaf_hash == chain_hash(r.entry_bytes) == merkle.leaf_hash(r.entry_bytes).hex()
    with engine.connect() as c:
        rep = verify_ledger(c, store)
    assert rep.ok, rep.summary()
    assert rep.entries == 5 and rep.documents_checked == 5


def test_entry_names_latest_checkpoint_and_stamp_shows_it(engine, store, key_path):
    do_append(engine, store, 3)
    with engine.begin() as conn:
        ck = make_checkpoint(conn, key_path, ORIGIN)
    (r,) = do_append(engine, store, 1)
    e = parse_entry(r.entry_bytes)
    assert e["checkpoint"] == {"origin": ORIGIN, "size": 3, "root": ck.root_hash}
    from pypdf import PdfReader
    txt = PdfReader(str(r.path)).pages[0].extract_text()
    assert "audit #4" in txt and f"ckpt 3:{ck.root_hash[:8]}" in txt and "page 1 of 1" in txt
    assert f"prev {r.prev_hash[:12]}" in txt and f"rec {r.record_sha256[:12]}" in txt


def test_rollback_leaves_no_row_and_reports_orphan(engine, store):
    do_append(engine, store, 2)
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            append(conn, store, kind="roster", subject={"roster_id": "x"}, actor="u", record={"a": "b"},
                   pdf_bytes=make_pdf("rolled back"), occurred_at=WHEN, verify_base_url=BASE_URL, origin=ORIGIN)
            raise RuntimeError("caller failed after append")
    (r,) = do_append(engine, store, 1)
    assert r.seq == 3
    with engine.connect() as c:
        rep = verify_ledger(c, store)
    assert rep.ok and len(rep.unreferenced_files) == 1


def test_non_pdf_refused(engine, store):
    with engine.begin() as conn, pytest.raises(StampError):
        append(conn, store, kind="roster", subject={}, actor="u", record={}, pdf_bytes=b"<html>not a pdf",
               occurred_at=WHEN, verify_base_url=BASE_URL, origin=ORIGIN)
    with engine.begin() as conn, pytest.raises(StampError):
        append(conn, store, kind="roster", subject={}, actor="u", record={}, pdf_bytes=b"%PDF-1.7\ngarbage",
               occurred_at=WHEN, verify_base_url=BASE_URL, origin=ORIGIN)
    assert list(store.list_all()) == []


@pytest.mark.parametrize("stmt", [
    "UPDATE audit_entries SET kind = 'x' WHERE seq = 1",
    "DELETE FROM audit_entries WHERE seq = 1",
    "UPDATE audit_checkpoints SET tree_size = 0",
    "DELETE FROM audit_checkpoints",
])
def test_triggers_refuse_update_delete(engine, store, key_path, stmt):
    do_append(engine, store, 1)
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN)
    with pytest.raises(DBAPIError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(text(stmt))


def test_truncate_refused_on_postgres(engine, store, backend):
    if backend != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL-only")
    do_append(engine, store, 1)
    with pytest.raises(DBAPIError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_entries"))


def test_line_commitments_in_entry(engine, store):
    salt = new_salt()
    line = {"patient_id": "p-17", "status": "present", "minutes": 180}
    c = commit_line(line, salt)
    (r,) = do_append(engine, store, 1, lines=[c, commit_line({"patient_id": "p-18"}, new_salt())])
    e = parse_entry(r.entry_bytes)
    assert c in e["line_commitments"]
    assert b"p-17" not in r.entry_bytes


def test_leaf_hashes_match_tree(engine, store):
    res = do_append(engine, store, 4)
    with engine.connect() as conn:
        leaves = leaf_hashes(conn)
        stored = [bytes.fromhex(x) for x in conn.execute(select(audit_entries.c.leaf_hash).order_by(audit_entries.c.seq)).scalars()]
    assert leaves == stored == [merkle.leaf_hash(r.entry_bytes) for r in res]


def test_stored_documents_are_read_only(engine, store):
    """The store is write-once: every archived PDF is 0400 under its final name, no temp file is
    left, and storing the same bytes again (or an older 0644 copy) ends read-only too."""
    [res] = do_append(engine, store)
    assert res.path.stat().st_mode & 0o777 == 0o400
    assert store.stale_temp_files() == []
    res.path.chmod(0o644)  # as a store written before files were made read-only
    assert store.put(res.path.read_bytes()) == (res.path.parent.name + res.path.stem, res.path)
    assert res.path.stat().st_mode & 0o777 == 0o400


def test_v1_log_continues_in_v2_and_verifies(engine, store, key_path, tmp_path):
    """A ledger written in the first format (v1) keeps verifying after the portal starts writing
    v2: the first v2 entry names the last v1 entry's chain hash (SHA-256 of its bytes), the tree
    spans both, and an export across the boundary verifies standalone."""
    import hashlib

    from audit_archive import canonical
    from audit_archive.checkpoint import public_key_text
    from audit_archive.export import export
    from audit_archive.offline import verify_export

    prev = None
    with engine.begin() as conn:
        for seq in (1, 2, 3):
            pdf = make_pdf(f"v1 doc {seq}")
            d, _ = store.put(pdf)
            data = canonical.build_entry_v1(
                seq=seq, kind="roster", subject={"roster_id": str(seq)}, actor="user:7", occurred_at=WHEN,
                record_hash=hashlib.sha256(b"r%d" % seq).hexdigest(), line_commitments=[], doc_sha256=d,
                doc_size=len(pdf), prev_hash=prev, checkpoint=None, origin=ORIGIN)
            h = hashlib.sha256(data).hexdigest()
            conn.execute(audit_entries.insert().values(
                seq=seq, v=1, kind="roster", entry_bytes=data, entry_hash=h, leaf_hash=merkle.leaf_hash(data).hex(),
                prev_hash=prev, doc_sha256=d, doc_size=len(pdf)))
            prev = h
        make_checkpoint(conn, key_path, ORIGIN)
    res = do_append(engine, store, 2)
    assert [version_of(r.entry_bytes) for r in res] == [2, 2]
    assert res[0].prev_hash == prev == chain_hash(parse_entry_bytes(engine, 3))
    assert parse_entry(res[0].entry_bytes)["checkpoint"]["size"] == 3
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN)
    pub = public_key_text(key_path, ORIGIN)
    with engine.connect() as conn:
        rep = verify_ledger(conn, store, pub)
        assert rep.ok and rep.entries == 5 and rep.documents_checked == 5, rep.summary()
        out = export(conn, store, tmp_path / "export", [3, 4, 5], include_documents={4}, public_key_text=pub)
    erep = verify_export(out, key=pub)
    assert erep.ok, erep.text()
    assert "entry 4: included in the log at index 3" in erep.text()


def parse_entry_bytes(engine, seq):
    with engine.connect() as conn:
        return bytes(conn.execute(select(audit_entries.c.entry_bytes).where(audit_entries.c.seq == seq)).scalar())
