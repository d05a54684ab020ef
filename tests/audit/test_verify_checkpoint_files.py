"""verify_ledger cross-checks the signed checkpoint files and reports a rewritten entry_bytes type."""

import pytest
from sqlalchemy import text

from audit_archive.checkpoint import make_checkpoint, public_key_text
from audit_archive.entry import parse_entry
from audit_archive.schema import audit_checkpoints, drop_append_only_ddl
from audit_archive.verify import verify_entry, verify_ledger

from .helpers import ORIGIN, do_append


def _no_triggers(conn):
    for s in drop_append_only_ddl(conn.dialect.name):
        conn.exec_driver_sql(s)


@pytest.fixture
def ledger(engine, store, key_path, tmp_path):
    do_append(engine, store, 5)
    d = tmp_path / "checkpoints"
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN, checkpoint_dir=d)
    return dict(engine=engine, store=store, dir=d, pub=public_key_text(key_path, ORIGIN))


def _verify(lg, **kw):
    with lg["engine"].connect() as conn:
        return verify_ledger(conn, lg["store"], lg["pub"], checkpoint_dir=lg["dir"], **kw)


def test_intact_ledger_with_its_files(ledger):
    rep = _verify(ledger)
    assert rep.ok and rep.checkpoints_checked == 2, rep.summary()  # the row and its file
    assert not [w for w in rep.warnings if "checkpoint" in w]


def test_truncation_with_checkpoint_rows_deleted_is_caught_by_the_file(ledger):
    with ledger["engine"].begin() as conn:
        _no_triggers(conn)
        conn.execute(text("DELETE FROM audit_entries WHERE seq > 3"))
        conn.execute(audit_checkpoints.delete())
    with ledger["engine"].connect() as conn:
        blind = verify_ledger(conn, ledger["store"], ledger["pub"])
    assert blind.ok  # the database alone cannot tell
    rep = _verify(ledger)
    assert not rep.ok
    assert "checkpoint file checkpoint-5.txt: covers 5 entries but the ledger has only 3 (tail truncated?)" in rep.failures
    assert "checkpoint file for size 5 has no row in the checkpoints table (rows deleted?)" in rep.warnings


def test_forged_checkpoint_file_fails(ledger):
    f = ledger["dir"] / "checkpoint-5.txt"
    f.write_text(f.read_text().replace("\n5\n", "\n4\n", 1))
    rep = _verify(ledger)
    assert any(m.startswith("checkpoint file checkpoint-5.txt: unreadable or signature/format invalid") for m in rep.failures), rep.summary()


def test_missing_checkpoint_file_is_a_warning(ledger):
    (ledger["dir"] / "checkpoint-5.txt").unlink()
    rep = _verify(ledger)
    assert rep.ok and f"checkpoint size 5 has no file in {ledger['dir']}" in rep.warnings


def test_entry_bytes_rewritten_as_text_is_reported(ledger, backend):
    if backend != "sqlite":
        pytest.skip("only SQLite lets a BLOB column hold TEXT")
    with ledger["engine"].begin() as conn:
        _no_triggers(conn)
        conn.execute(text("UPDATE audit_entries SET entry_bytes = CAST(entry_bytes AS TEXT) WHERE seq = 2"))
    rep = _verify(ledger)
    assert rep.failures == ["entry 2: entry_bytes is stored as TEXT, not as bytes (rewritten outside the portal?)"]
    assert rep.first_bad_seq == 2
    with ledger["engine"].connect() as conn:
        one = verify_entry(conn, ledger["store"], 2, ledger["pub"])
    assert one.found and not one.ok
    assert ("Entry bytes stored as written", False,
            "entry_bytes is stored as TEXT, not as bytes (rewritten outside the portal?)") in one.checks


def test_checkpointing_refuses_a_head_behind_its_own_checkpoint_file(ledger, key_path):
    """`audit checkpoint` must not sign a truncated log even when the checkpoint rows are gone."""
    from audit_archive.checkpoint import CheckpointError

    with ledger["engine"].begin() as conn:
        _no_triggers(conn)
        conn.execute(text("DELETE FROM audit_entries WHERE seq > 3"))
        conn.execute(audit_checkpoints.delete())
    with ledger["engine"].begin() as conn, pytest.raises(CheckpointError) as exc:
        make_checkpoint(conn, key_path, ORIGIN, checkpoint_dir=ledger["dir"])
    assert str(exc.value) == "ledger has 3 entries but checkpoint file checkpoint-5.txt signed 5: truncated"
    assert sorted(p.name for p in ledger["dir"].iterdir()) == ["checkpoint-5.txt"]


def test_checkpointing_continues_from_its_file(ledger, key_path):
    do_append(ledger["engine"], ledger["store"], 2)
    with ledger["engine"].begin() as conn:
        signed = make_checkpoint(conn, key_path, ORIGIN, checkpoint_dir=ledger["dir"])
    assert signed.created and signed.size == 7
    assert _verify(ledger).ok


def test_export_of_a_damaged_entry_is_refused(ledger, tmp_path):
    from audit_archive.export import ExportError, export

    with ledger["engine"].begin() as conn:
        _no_triggers(conn)
        conn.execute(text("UPDATE audit_entries SET entry_bytes = substr(entry_bytes, 1, 100) WHERE seq = 2"))
    with ledger["engine"].connect() as conn, pytest.raises(ExportError) as exc:
        export(conn, ledger["store"], tmp_path / "out.zip", [2], public_key_text=ledger["pub"])
    # the damaged bytes change the tree, so the checkpoint check refuses before anything is read
    assert str(exc.value) == "checkpoint root does not match the ledger; run verify_ledger"
    assert not (tmp_path / "out.zip").exists()


def test_files_the_portal_never_writes_are_reported(ledger):
    root = ledger["store"].root
    (root / "evil.pdf").write_bytes(b"%PDF-forged")
    (root / "zz").mkdir()
    (root / "zz" / "forged.pdf").write_bytes(b"%PDF-forged")
    sub = next(p for p in root.iterdir() if p.is_dir() and p.name != "zz")
    (sub / "notes.txt").write_text("x")
    (sub / "link.pdf").symlink_to(root / "evil.pdf")
    rep = _verify(ledger)
    assert rep.ok, rep.summary()
    unexpected = sorted(w.split()[2] for w in rep.warnings if w.startswith("unexpected file"))
    assert unexpected == sorted(["evil.pdf", "zz/", f"{sub.name}/link.pdf", f"{sub.name}/notes.txt"])


def test_verify_entry_uses_checkpoint_files_and_the_next_link(ledger, key_path):
    """The QR page's check: a body rewritten (hash columns fixed) with the covering checkpoint
    row deleted is not 'awaiting a checkpoint': the file still covers it, and entry 4 no longer
    links back to it."""
    from audit_archive import entry as E

    with ledger["engine"].begin() as conn:
        _no_triggers(conn)
        data = bytes(conn.execute(text("SELECT entry_bytes FROM audit_entries WHERE seq = 3")).scalar())
        forged = data.replace(b'"user:7"', b'"user:9"')
        h = E.leaf_hash(forged).hex()
        conn.execute(text("UPDATE audit_entries SET entry_bytes = :b, entry_hash = :h, leaf_hash = :h WHERE seq = 3"),
                     {"b": forged, "h": h})
        conn.execute(audit_checkpoints.delete())
    with ledger["engine"].connect() as conn:
        blind = verify_entry(conn, ledger["store"], 3, ledger["pub"])
        one = verify_entry(conn, ledger["store"], 3, ledger["pub"], checkpoint_dir=ledger["dir"])
    assert not blind.ok and ("The next entry links back to this one", False, "entry 4") in blind.checks
    assert not one.pending_checkpoint and one.checkpoint_size == 5
    assert ("Included in signed checkpoint (inclusion proof)", False,
            f"tree size 5, root {_file_root(ledger)}") in one.checks


def _file_root(lg):
    from audit_archive.note import open_checkpoint
    return open_checkpoint((lg["dir"] / "checkpoint-5.txt").read_text(), None).root.hex()


def test_odd_checkpoint_rows_are_failures_not_crashes(ledger, backend):
    with ledger["engine"].begin() as conn:
        _no_triggers(conn)
        note = conn.execute(text("SELECT note FROM audit_checkpoints")).scalar()
        conn.execute(audit_checkpoints.insert().values(origin=ORIGIN, tree_size=1000, root_hash="00" * 32,
                                                       key_id="00000000", note=note))
    rep = _verify(ledger)
    assert any(f.startswith("checkpoint size 1000: columns (size 1000, root ") and
               ") differ from the signed text (size 5, root " in f for f in rep.failures), rep.summary()
    with ledger["engine"].connect() as conn:
        one = verify_entry(conn, ledger["store"], 2, ledger["pub"], checkpoint_dir=ledger["dir"])
    assert ("Stored checkpoints are intact", False) == one.checks[-2][:2] and one.checkpoint_size == 5
    if backend == "sqlite":  # only SQLite stores text in an integer column, or bytes in a text one
        with ledger["engine"].begin() as conn:
            conn.execute(text("UPDATE audit_checkpoints SET tree_size = '37x' WHERE tree_size = 1000"))
            conn.execute(text("UPDATE audit_checkpoints SET note = CAST(note AS BLOB) WHERE tree_size = 5"))
        rep = _verify(ledger)
        assert any(f.startswith("checkpoint size 37x: columns (size '37x', root ") for f in rep.failures)
        assert "checkpoint size 5: the note column holds bytes, not the signed text" in rep.failures


@pytest.mark.parametrize("damage", ["blob_note", "size_mismatch", "text_size"])
def test_checkpointing_refuses_a_damaged_checkpoints_table(ledger, key_path, backend, damage):
    from audit_archive.checkpoint import CheckpointError

    if damage in ("blob_note", "text_size") and backend != "sqlite":
        pytest.skip("only SQLite stores bytes in a text column or text in an integer one")
    value = {"blob_note": "CAST(note AS BLOB)", "size_mismatch": "note", "text_size": "note"}[damage]
    size = {"blob_note": "tree_size", "size_mismatch": "1000", "text_size": "'37x'"}[damage]
    with ledger["engine"].begin() as conn:
        _no_triggers(conn)
        conn.execute(text(f"INSERT INTO audit_checkpoints (origin, tree_size, root_hash, key_id, note) "
                          f"SELECT origin, {size}, root_hash, key_id, {value} FROM audit_checkpoints"))
    (r,) = do_append(ledger["engine"], ledger["store"], 1)  # a damaged row does not stop appends
    assert parse_entry(r.entry_bytes)["checkpoint"]["size"] == 5
    with ledger["engine"].begin() as conn, pytest.raises(CheckpointError) as exc:
        make_checkpoint(conn, key_path, ORIGIN, checkpoint_dir=ledger["dir"])
    msg = str(exc.value)
    assert msg.startswith("stored checkpoint row ") and "run `audit verify`" in msg, msg
