"""The demo's authorization stories: a step-down denied then overturned at peer-to-peer, a
pending request holding days, an expiring authorization raising its alert."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from portal.demo import load_demo
from portal.extensions import db
from portal.models import Authorization, CareEpisode, Patient


def test_demo_authorization_stories(app, client, login):
    today = date(2026, 11, 30)
    load_demo(today=today, history_days=10)
    renata = db.session.scalar(select(Patient).where(Patient.mrn == "100290"))
    iop = db.session.scalar(select(Authorization).where(Authorization.number == "IOP-66120"))
    assert iop.status == "overturned" and iop.prior.number == "RS-78002"
    assert [t.to_state for t in iop.transitions] == [
        "submitted", "pending", "denied", "p2p_requested", "p2p_held", "overturned"]
    eps = db.session.scalars(select(CareEpisode).where(CareEpisode.patient_id == renata.id)
                             .order_by(CareEpisode.id)).all()
    assert eps[0].level == "3.5" and eps[0].end_date == iop.start_date - timedelta(days=1)
    assert eps[-1].level == "2.1" and eps[-1].prior_episode_id == eps[0].id

    from portal.models import User
    billing = db.session.scalar(select(User).where(User.role == "billing"))
    login.as_(billing, "demo-billing")
    queue = client.get("/authorizations/").get_data(as_text=True)
    assert "Wierzbicki" in queue and "Payer decision due" in queue
    assert "KC-45601 ends" in queue
    tomasz = db.session.scalar(select(Patient).where(Patient.mrn == "100291"))
    page = client.get(f"/readiness/patients/{tomasz.id}?from=2026-11-24&to=2026-11-29")
    assert "Held, authorization pending" in page.get_data(as_text=True)
    renata_page = client.get(f"/authorizations/patients/{renata.id}").get_data(as_text=True)
    assert "Overturned at peer-to-peer" in renata_page and "<svg" in renata_page
