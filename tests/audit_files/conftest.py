"""Fixtures for the audit-file tests: three days of closed rosters, an encounter note archived
for one patient, so an audit file holds whole documents and group extracts."""
from __future__ import annotations

from datetime import time, timedelta

import pytest

from portal.clock import local_to_utc, local_today
from portal.extensions import db
from portal.services.schedule import ensure_sessions
from tests import factories


@pytest.fixture
def rosters(world):
    """Closed AM and PM rosters on the last three days (the AM group holds 100231..100234;
    100234 absent on the first day)."""
    today = local_today(world.program.tz)
    closed = []
    for back in (2, 1, 0):
        day = today - timedelta(days=back)
        sessions = {s.cohort.name: s for s in ensure_sessions(world.program, day)}
        closed.append(factories.sign_and_close(sessions["AM IOP"], world.facilitator,
                                               absent={"100234"} if back == 2 else set(),
                                               now=local_to_utc(day, time(11, 30), world.program.tz)))
        closed.append(factories.sign_and_close(sessions["PM IOP"], world.facilitator2,
                                               now=local_to_utc(day, time(20, 0), world.program.tz)))
    db.session.commit()
    return {"first": today - timedelta(days=2), "last": today, "sessions": closed}
