"""QA (#16): a plan form whose save fails stays at the form's URL (it was left at /versions)."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import TreatmentPlan
from tests.factories import csrf_from


def test_the_plan_form_posts_to_its_own_url_and_a_failed_save_stays_there(world, client, login):
    patient = world.patients[0]
    url = f"/plans/patients/{patient.id}"
    login.as_(world.clinician)
    page = client.get(url).get_data(as_text=True)
    actions = re.findall(r'<form method="post" action="([^"]+)"', page)
    assert url in actions and f"{url}/versions" not in actions
    token = csrf_from(page)
    failed = client.post(url, data={"csrf_token": token, "asam_edition": "3", "text_0": "Relapse risk"})
    body = failed.get_data(as_text=True)
    assert failed.status_code == 422 and ('role="alert"' in body or "field-error" in body)
    assert f'action="{url}"' in body  # the form is shown again, still posting to its page
    assert db.session.scalar(select(func.count()).select_from(TreatmentPlan)) == 0
    # The old address keeps working for anything that still posts there; others may not write.
    assert client.post(url + "/versions", data={"csrf_token": token, "asam_edition": "3"}).status_code == 422
    login.as_(world.facilitator)
    token = csrf_from(client.get(url).get_data(as_text=True))
    assert client.post(url, data={"csrf_token": token, "asam_edition": "3"}).status_code == 403
