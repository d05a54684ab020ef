"""Insider tampering is detected, with a precise message naming the first bad entry."""

import hashlib


import pytest
from sqlalchemy import text

from audit_archive import canonical
from audit_archive.checkpoint import make_checkpoint, public_key_text
from audit_archive.entry import chain_hash, parse_entry
from audit_archive.schema import audit_checkpoints, audit_entries, drop_append_only_ddl
from audit_archive.verify import verify_ledger

from .helpers import ORIGIN, do_append, make_pdf


def _no_triggers(conn):
    for s in drop_append_only_ddl(conn.dialect.name):
        conn.exec_driver_sql(s)


def flip_byte(ctx):
    p = ctx["res"][2].path
    b = bytearray(p.read_bytes())
    b[len(b) // 2] ^= 0x01
    p.chmod(0o644)  # stored files are read-only; an insider with shell access can still do this
    p.write_bytes(bytes(b))


def replace_pdf(ctx):
    p = ctx["res"][2].path
    p.chmod(0o644)
    p.write_bytes(make_pdf("a different but valid PDF"))


def delete_row(ctx):
    with ctx["engine"].begin() as conn:
        _no_triggers(conn)
        conn.execute(audit_entries.delete().where(audit_entries.c.seq == 4))


def swap_rows(ctx):
    with ctx["engine"].begin() as conn:
        _no_triggers(conn)
        rows = {r.seq: dict(r._mapping) for r in conn.execute(audit_entries.select().where(audit_entries.c.seq.in_([3, 4])))}
        for a, b in ((3, 4), (4, 3)):
            vals = {k: v for k, v in rows[b].items() if k != "seq"}
            conn.execute(audit_entries.update().where(audit_entries.c.seq == a).values(
                **{**vals, "entry_hash": "0" * 63 + str(a)}))
        for a, b in ((3, 4), (4, 3)):
            conn.execute(audit_entries.update().where(audit_entries.c.seq == a).values(entry_hash=rows[b]["entry_hash"]))


def truncate_tail(ctx):
    with ctx["engine"].begin() as conn:
        _no_triggers(conn)
        conn.execute(audit_entries.delete().where(audit_entries.c.seq >= 6))


def truncate_tail_and_checkpoints(ctx):
    truncate_tail(ctx)
    with ctx["engine"].begin() as conn:
        conn.execute(audit_checkpoints.delete())


def missing_file(ctx):
    ctx["res"][1].path.unlink()


def edit_entry_column(ctx):
    with ctx["engine"].begin() as conn:
        _no_triggers(conn)
        conn.execute(text("UPDATE audit_entries SET doc_size = doc_size + 1 WHERE seq = 5"))


def _rebuild_from(ctx, start_seq):
    """Rewrite entry `start_seq` (new document) and recompute every later entry, as an insider
    with database and file-store access would; checkpoints are left alone."""
    store, engine = ctx["store"], ctx["engine"]
    with engine.begin() as conn:
        _no_triggers(conn)
        rows = [dict(r._mapping) for r in conn.execute(audit_entries.select().order_by(audit_entries.c.seq))]
        prev = rows[start_seq - 2]["entry_hash"] if start_seq > 1 else None
        for row in rows[start_seq - 1:]:
            e = parse_entry(row["entry_bytes"])
            if row["seq"] == start_seq:
                d, _ = store.put(make_pdf("forged"))
                e["doc"]["sha256"], e["doc"]["size"] = d, len(store.get(d))
            ck = e["checkpoint"]
            data = canonical.build_entry(
                seq=e["seq"], kind=e["kind"], subject=e["subject"], actor=e["actor"], occurred_at=e["occurred_at"],
                record_hash=e["record_sha256"], line_commitments=e["line_commitments"], doc_sha256=e["doc"]["sha256"],
                doc_size=e["doc"]["size"], prev_hash=prev, origin=e["log"],
                checkpoint=canonical.CheckpointRef(ck["origin"], ck["size"], ck["root"]) if ck else None)
            h = chain_hash(data)
            conn.execute(audit_entries.update().where(audit_entries.c.seq == row["seq"]).values(
                entry_bytes=data, entry_hash=h, leaf_hash=hashlib.sha256(b"\0" + data).hexdigest(), prev_hash=prev,
                doc_sha256=e["doc"]["sha256"], doc_size=e["doc"]["size"]))
            prev = h


def rewrite_chain(ctx):
    _rebuild_from(ctx, 3)


def rewrite_chain_and_resign(ctx):
    """Rewrite, drop the checkpoints, and sign a fresh head with the real key."""
    _rebuild_from(ctx, 3)
    with ctx["engine"].begin() as conn:
        conn.execute(audit_checkpoints.delete())
        make_checkpoint(conn, ctx["key_path"], ORIGIN)


def rewrite_chain_and_resign_other_key(ctx):
    _rebuild_from(ctx, 3)
    with ctx["engine"].begin() as conn:
        conn.execute(audit_checkpoints.delete())
        make_checkpoint(conn, ctx["key_path"].with_name("forger.key"), ORIGIN)


CASES = [
    # (tamper, use_saved_checkpoint, expected message fragment, first_bad_seq)
    (flip_byte, False, "entry 3: stored PDF sha256 mismatch", 3),
    (replace_pdf, False, "entry 3: stored PDF sha256 mismatch", 3),
    (delete_row, False, "entry 4 is missing", 4),
    (swap_rows, False, "entry 3: bytes say seq 4", 3),
    (truncate_tail, False, "covers 7 entries but the ledger has only 5", 6),
    (truncate_tail_and_checkpoints, True, "covers 7 entries but the ledger has only 5", 5),
    (missing_file, False, "entry 2: stored PDF", 2),
    (edit_entry_column, False, "entry 5: doc columns", 5),
    (rewrite_chain, False, "history rewritten", None),
    (rewrite_chain_and_resign, True, "history rewritten", None),
    (rewrite_chain_and_resign_other_key, False, "signature/format invalid", None),
]


@pytest.mark.parametrize("tamper,use_saved,expected,first_bad", CASES, ids=[c[0].__name__ for c in CASES])
def test_tamper_detected(engine, store, key_path, tamper, use_saved, expected, first_bad):
    res = do_append(engine, store, 4)
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN)       # size 4: named by later entries
    res += do_append(engine, store, 3)
    with engine.begin() as conn:
        saved = make_checkpoint(conn, key_path, ORIGIN).note  # size 7, kept by an auditor
    pub = public_key_text(key_path, ORIGIN)
    with engine.connect() as conn:
        assert verify_ledger(conn, store, pub, since_checkpoint=saved).ok
    tamper({"engine": engine, "store": store, "res": res, "key_path": key_path})
    with engine.connect() as conn:
        rep = verify_ledger(conn, store, pub, since_checkpoint=saved if use_saved else None)
    assert not rep.ok
    assert any(expected in f for f in rep.failures), rep.summary()
    if first_bad is not None:
        assert rep.first_bad_seq == first_bad, rep.summary()


def test_unreferenced_file_is_only_a_warning(engine, store):
    do_append(engine, store, 2)
    store.put(make_pdf("stray"))
    with engine.connect() as conn:
        rep = verify_ledger(conn, store)
    assert rep.ok and len(rep.unreferenced_files) == 1
    assert any("unreferenced file" in w for w in rep.warnings)


def test_make_checkpoint_refuses_inconsistent_head(engine, store, key_path):
    from audit_archive.checkpoint import CheckpointError
    res = do_append(engine, store, 4)
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN)
    _rebuild_from({"engine": engine, "store": store, "res": res}, 2)
    with pytest.raises(CheckpointError, match="not an append-only extension"):
        with engine.begin() as conn:
            make_checkpoint(conn, key_path, ORIGIN)
