"""A facilitator sees the plans and no-show records of patients in the groups they run, not of
the whole program (QA found the PM facilitator reading and writing an AM patient's records)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Cohort, Enrollment, User
from tests import factories


@pytest.fixture
def other_facilitator(world):
    user = factories.make_user("facilitator", "Marcus Greene", "marcus@example.test")
    db.session.commit()
    return user


def _patient_and_own_facilitator(world):
    enrollment = db.session.scalar(select(Enrollment))
    cohort = db.session.get(Cohort, enrollment.cohort_id)
    return enrollment.patient_id, db.session.get(User, cohort.facilitator_id)


@pytest.mark.parametrize("path", ["/plans/patients/{pid}", "/no-shows/patients/{pid}"])
def test_facilitator_outside_the_group_gets_403(client, login, world, other_facilitator, path):
    pid, own = _patient_and_own_facilitator(world)
    login.as_(other_facilitator)
    resp = client.get(path.format(pid=pid))
    assert resp.status_code == 403 and "not in a group you run" in resp.get_data(as_text=True)
    login.as_(own)
    assert client.get(path.format(pid=pid)).status_code == 200


def test_facilitator_outside_the_group_cannot_log_outreach(client, login, world, other_facilitator):
    from portal.models import OutreachAttempt

    pid, _ = _patient_and_own_facilitator(world)
    login.as_(other_facilitator)
    csrf = factories.csrf_from(client.get("/", follow_redirects=True).get_data(as_text=True))
    before = db.session.scalar(select(db.func.count()).select_from(OutreachAttempt))
    resp = client.post(f"/no-shows/patients/{pid}/outreach",
                       data={"dos": "2026-11-24", "method": "phone", "outcome": "reached"},
                       headers={"X-CSRFToken": csrf})
    assert resp.status_code == 403
    assert db.session.scalar(select(db.func.count()).select_from(OutreachAttempt)) == before
