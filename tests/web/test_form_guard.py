"""Every form refuses a value carrying an invisible character (control, bidirectional override,
byte-order mark) with one clear message naming the field and the character, and writes nothing.
QA found U+202E stored in a signed note's group section, a grant's purpose and a closure reason,
and NUL silently dropped from some fields."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.clock import local_today
from portal.extensions import db
from portal.models import Closure
from tests import factories


@pytest.mark.parametrize("bad", ["\u202e", "\x00", "\x07", "\ufeff"])
def test_a_closure_reason_with_an_invisible_character_is_refused_and_unwritten(app, client, login,
                                                                              world, bad):
    login.as_(world.admin)
    page = client.get("/admin/closures").get_data(as_text=True)
    day = local_today(world.program.tz) + timedelta(days=3)
    resp = client.post("/admin/closures", data={"csrf_token": factories.csrf_from(page),
                                                "date": day.isoformat(),
                                                "reason": f"Staff{bad} training"})
    assert resp.status_code == 422
    text = resp.get_data(as_text=True)
    assert "The field “reason” contains the invisible character U+" in text
    assert "Nothing was saved" in text
    assert db.session.scalar(select(func.count(Closure.id))) == 0
    # the same form with plain text goes through
    resp = client.post("/admin/closures", data={"csrf_token": factories.csrf_from(page),
                                                "date": day.isoformat(), "reason": "Staff training"})
    assert resp.status_code == 302
    assert db.session.scalar(select(func.count(Closure.id))) == 1


def test_htmx_forms_get_the_message_in_the_flash_region(app, client, login, world):
    login.as_(world.admin)
    page = client.get("/admin/closures").get_data(as_text=True)
    resp = client.post("/admin/closures", headers={"HX-Request": "true"},
                       data={"csrf_token": factories.csrf_from(page),
                             "date": (local_today(world.program.tz) + timedelta(days=5)).isoformat(),
                             "reason": "ecaf\u202eface"})
    assert resp.status_code == 422 and resp.headers["HX-Retarget"] == "#flash"
    assert "RIGHT-TO-LEFT OVERRIDE" in resp.get_data(as_text=True)


def test_a_text_area_keeps_its_line_breaks_and_tabs(app, client, login, world):
    login.as_(world.admin)
    page = client.get("/admin/closures").get_data(as_text=True)
    day = local_today(world.program.tz) + timedelta(days=5)
    resp = client.post("/admin/closures", data={"csrf_token": factories.csrf_from(page),
                                                "date": day.isoformat(),
                                                "reason": "Holiday\r\n\tclinic closed"})
    assert resp.status_code == 302

