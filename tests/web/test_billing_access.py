"""Only billing and admin reach billing routes; every other role gets 403 on every one of them
(the auditor never reaches a write route). The rules page lists each payer's versions."""
from __future__ import annotations

import re

import pytest

from tests import factories
from tests.web.test_billing_board import DAY

FILL = {"day": DAY.isoformat(), "job_id": "no-such-job", "export_id": "999999"}


def billing_routes(app):
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("billing."):
            url = rule.rule
            url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: FILL[m.group(1)], url)
            for method in sorted((rule.methods or set()) & {"GET", "POST"}):
                out.append((method, url))
    return out


def test_every_billing_route_is_listed(app):
    routes = billing_routes(app)
    assert ("GET", "/billing/") in routes and ("POST", "/billing/837p") in routes
    # + 837P export page, its download, its 999 import; a job's progress and file are the jobs
    # blueprint's (the requester only, 404 for anyone else: tests/web/test_jobs.py)
    assert len(routes) == 9


@pytest.mark.parametrize("role", ["auditor", "facilitator", "clinician"])
def test_other_roles_get_403_everywhere(client, login, world, app, role):
    login.as_(world.users[role])
    csrf = factories.csrf_from(client.get("/", follow_redirects=True).get_data(as_text=True))
    for method, url in billing_routes(app):
        if method == "GET":
            resp = client.get(url)
        else:
            resp = client.post(url, data={"csrf_token": csrf, "payer": "sunrise_medicaid_mco",
                                          "from": "2026-11-01", "to": "2026-11-18"})
        assert resp.status_code == 403, (role, method, url, resp.status_code)


def test_anonymous_is_sent_to_login(client, world):
    resp = client.get("/billing/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


@pytest.mark.parametrize("role", ["billing", "admin"])
def test_billing_and_admin_reach_the_pages(client, login, world, role):
    login.as_(world.users[role])
    for url in ("/billing/", "/billing/rules", "/billing/exports"):
        assert client.get(url).status_code == 200, url
    nav = client.get("/billing/").get_data(as_text=True)
    assert re.search(r'<a href="/billing/"[^>]*>Reconciliation</a>', nav)


def test_rules_page_lists_versions_and_anchors(client, login, world):
    login.as_(world.billing)
    html = client.get("/billing/rules").get_data(as_text=True)
    for key in ("sunrise_medicaid_mco", "blueriver_ppo", "keystone_commercial_hmo", "self_pay"):
        assert f'id="payer-{key}"' in html and f'href="#payer-{key}"' in html
    assert "In effect from Jan 1, 2026 to Nov 15, 2026" in html
    assert "In effect from Nov 16, 2026" in html and "in force today" in html
    assert "$165.00 per 1 unit/day" in html and "180 min (adolescent 120 min)" in html
    assert "H0015 then H2019" in html  # Keystone falls back to 15-minute units
    assert html.count("<caption>") >= 5 and 'scope="row"' in html
