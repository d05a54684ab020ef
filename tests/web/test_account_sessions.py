"""Password changes, resets and deactivation end the user's other sessions (issue 8 calls the
security issue's ``invalidate_sessions``)."""
from __future__ import annotations

from portal.extensions import db
from portal.models import User
from portal.services import accounts
from tests import factories

NEW = "maple kettle orbit lantern"


def _signed_in(app, user, password=factories.PASSWORD):
    from tests.conftest import Login

    client = app.test_client()
    Login(client).as_(user, password)
    assert client.get("/today").status_code == 200
    return client


def test_password_change_ends_other_sessions(app, world):
    tablet = _signed_in(app, world.facilitator)
    app.config["WTF_CSRF_ENABLED"] = False
    desk = _signed_in(app, world.facilitator)
    resp = desk.post("/account/password", data={"current": factories.PASSWORD, "password": NEW,
                                                "password_again": NEW})
    assert resp.status_code == 302
    assert tablet.get("/today").status_code == 302  # sent to sign in


def test_reset_link_and_deactivation_end_sessions(app, world):
    tablet = _signed_in(app, world.facilitator)
    token = accounts.create_link(world.facilitator, purpose="reset", by=world.admin)
    accounts.use_link(token, NEW, NEW)
    assert tablet.get("/today").status_code == 302
    other = _signed_in(app, world.facilitator2)
    accounts.set_active(db.session.get(User, world.facilitator2.id), False, by=world.admin)
    assert other.get("/today").status_code == 302
