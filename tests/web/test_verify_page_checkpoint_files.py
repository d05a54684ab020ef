"""QA: /verify/<seq> said "Intact, awaiting checkpoint" for a tampered entry once the
checkpoint row covering it was deleted, although the signed checkpoint file was still there.
The page passes PORTAL_CHECKPOINT_DIR to verify_entry, so the file still covers the entry."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from audit_archive import entry as entry_format
from portal.extensions import db
from portal.services.archiving import archive_store
from portal.services.checkpoints import checkpoint_now
from tests.audit.helpers import ORIGIN, do_append


def test_tampered_last_entry_with_its_checkpoint_row_deleted(app, client, login, world, tamperable):
    app.config["PORTAL_ARCHIVE_ORIGIN"] = ORIGIN  # the helpers' entries use it
    do_append(db.engine, archive_store(), 20)
    assert checkpoint_now().size == 20  # row + file checkpoint-20.txt
    login.as_(world.clinician)
    page = client.get("/verify/20").get_data(as_text=True)
    assert "Verified" in page

    db.session.rollback()
    with db.engine.begin() as conn:
        data = bytes(conn.execute(text("SELECT entry_bytes FROM audit_entries WHERE seq = 20")).scalar())
        forged = data.replace(b'"user:7"', b'"user:9"')
        assert forged != data
        h = entry_format.leaf_hash(forged).hex()
        conn.execute(text("UPDATE audit_entries SET entry_bytes = :b, entry_hash = :h, leaf_hash = :h "
                          "WHERE seq = 20"), {"b": forged, "h": h})
        conn.execute(text("DELETE FROM audit_checkpoints WHERE tree_size >= 20"))
    assert Path(app.config["PORTAL_CHECKPOINT_DIR"], "checkpoint-20.txt").exists()  # the file stays

    page = client.get("/verify/20")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Does not verify" in html
    assert "awaiting checkpoint" not in html and "Verified" not in html
