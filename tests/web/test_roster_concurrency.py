"""Two taps on "Close roster" at the same moment (two threads, two DB connections) make exactly
one closed roster and one archive entry; the other tap gets a clear 409."""
from __future__ import annotations

import threading

from sqlalchemy import func, select

from audit_archive.schema import audit_entries
from portal.clock import local_today
from portal.demo.signature_art import squiggle_png
from portal.extensions import db
from portal.models import ArchivedDocument, User
from portal.services import roster as svc
from portal.services.errors import Conflict
from portal.services.schedule import ensure_sessions


def test_concurrent_closes_make_one_entry(app, world):
    session = next(s for s in ensure_sessions(world.program, local_today(world.program.tz))
                   if s.cohort.name == "AM IOP")
    for i, entry in enumerate(session.entries):
        svc.sign_attendance(session.id, entry.id, png=squiggle_png(seed=i), strokes=None,
                            user_agent="t", max_png_bytes=512 * 1024)
    svc.set_session_times(session.id, start="09:00", end="12:00")
    session_id, facilitator_id = session.id, world.facilitator.id
    db.session.rollback()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def close():
        with app.app_context():
            facilitator = db.session.get(User, facilitator_id)
            db.session.rollback()
            barrier.wait()
            try:
                svc.close_roster(session_id, facilitator=facilitator, typed_name=facilitator.name,
                                 attested=True, signature_png=squiggle_png(seed=5),
                                 max_png_bytes=512 * 1024)
                outcomes.append("closed")
            except Conflict as exc:
                outcomes.append("conflict: " + exc.message)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=close) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(o.split(":")[0] for o in outcomes) == ["closed", "conflict"], outcomes
    assert "closed at" in next(o for o in outcomes if o.startswith("conflict"))
    assert db.session.scalar(select(func.count()).select_from(audit_entries)) == 1
    assert db.session.scalar(select(func.count()).select_from(ArchivedDocument)) == 1
