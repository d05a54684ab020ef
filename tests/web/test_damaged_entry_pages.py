"""Pages that read an archive entry stay up when an insider damaged it: the extract says the
entry is damaged, the reconciliation board shows it as unknown, nothing returns a traceback."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from portal.clock import local_today
from portal.extensions import db
from portal.models import ArchivedDocument
from portal.services.schedule import ensure_sessions
from tests import factories


@pytest.fixture
def closed_am(world):
    session = next(s for s in ensure_sessions(world.program, local_today(world.program.tz))
                   if s.cohort.name == "AM IOP")
    return factories.sign_and_close(session, world.facilitator)


def _damage(seq: int, sql_value: str) -> None:
    conn = db.session.connection()
    conn.execute(text(f"UPDATE audit_entries SET entry_bytes = {sql_value} WHERE seq = :seq"), {"seq": seq})
    db.session.commit()


@pytest.mark.parametrize("how", ["truncated", "as_text"])
def test_extract_of_a_damaged_entry_says_so(client, login, world, closed_am, tamperable, how):
    doc = db.session.get(ArchivedDocument, closed_am.document_id)
    if how == "as_text" and tamperable != "sqlite":
        pytest.skip("only SQLite lets a BLOB column hold TEXT")
    _damage(doc.entry_seq, "substr(entry_bytes, 1, 100)" if how == "truncated" else "CAST(entry_bytes AS TEXT)")
    login.as_(world.auditor)
    resp = client.get(f"/documents/{doc.id}/patients/{world.patients[0].id}/extract.pdf")
    if how == "truncated":
        assert resp.status_code == 500
        assert "damaged" in resp.get_data(as_text=True) and "audit verify" in resp.get_data(as_text=True)
    else:  # same bytes, stored as TEXT: the extract still renders; `audit verify` reports the type
        assert resp.status_code == 200 and resp.data[:5] == b"%PDF-"
