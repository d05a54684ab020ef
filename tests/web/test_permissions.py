"""Every route in the URL map against every role: a route without a declared policy fails here,
an auditor can reach no write route, and a role outside a policy gets 403."""
from __future__ import annotations

import re

import pytest

from portal.access_control import PUBLIC, policy_of
from portal.models.people import ROLES

WRITE = {"POST", "PUT", "PATCH", "DELETE"}


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            url = re.sub(r"<(?:[^:<>]+:)?[^<>]+>", "1", rule.rule)
            yield rule.endpoint, method, url


def test_every_route_declares_a_policy(app):
    missing = [ep for ep, _m, _u in _routes(app) if policy_of(app, ep) is None]
    assert not missing, f"routes without an access policy: {missing}"


def test_auditor_is_admitted_to_no_write_route(app):
    """... but the named exceptions of ``AUDITOR_WRITES`` (the auditor's audit-file request,
    tests/web/test_auditor_grants.py proves what it writes)."""
    from portal.access_control import AUDITOR_WRITES, admits_auditor_write

    admitted = set()
    for endpoint, method, _url in _routes(app):
        view = app.view_functions[endpoint]
        if method in WRITE and not getattr(view, "session_only", False):
            if admits_auditor_write(app, endpoint):
                admitted.add(endpoint)
                continue
            assert "auditor" not in policy_of(app, endpoint), endpoint
    assert admitted == set(AUDITOR_WRITES) == {"audit_files.auditor_request"}


def test_an_auditor_write_must_be_listed_and_marked(app):
    """A view marked ``@auditor_write`` but not listed in ``AUDITOR_WRITES`` (or an auditor
    write route not marked) stops the portal at start-up."""
    from flask import Flask

    from portal.access_control import allow, auditor_write, check_policies

    for mark in (True, False):
        probe = Flask("probe")

        def view():
            return ""
        view = allow("auditor")(view)
        if mark:
            view = auditor_write(view)
        probe.add_url_rule("/x", "probe.write", view, methods=["POST"])
        with pytest.raises(RuntimeError, match="AUDITOR_WRITES" if mark else "admits auditors"):
            check_policies(probe)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_403_outside_its_policy(app, client, login, world, role):
    app.config["WTF_CSRF_ENABLED"] = False  # this test is about roles, not CSRF
    login.as_(world.users[role])
    checked = 0
    for endpoint, method, url in _routes(app):
        policy = policy_of(app, endpoint)
        if policy is PUBLIC or endpoint == "auth.logout":
            continue
        resp = client.open(url, method=method)
        if role in policy:
            text = resp.get_data().decode("utf-8", "replace")  # some routes answer a PDF
            assert resp.status_code != 403 or "another facilitator" in text \
                or "only their own" in text \
                or "does not let billing staff grant auditor access" in text, (role, method, url)
        else:
            assert resp.status_code == 403, (role, method, url, resp.status_code)
        checked += 1
    assert checked > 5


def test_anonymous_is_sent_to_login(app, client):
    for endpoint, method, url in _routes(app):
        if policy_of(app, endpoint) is PUBLIC:
            continue
        app.config["WTF_CSRF_ENABLED"] = False
        resp = client.open(url, method=method)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], (method, url)
        htmx = client.open(url, method=method, headers={"HX-Request": "true"})
        assert htmx.status_code == 401 and "/login" in htmx.headers["HX-Redirect"], (method, url)


def test_admin_pages_admit_only_admins(app):
    """Setup pages change who may sign in and what is billed: admins only (issue 8)."""
    admin_routes = [ep for ep, _m, _u in _routes(app) if ep.startswith("admin.")]
    assert len(admin_routes) >= 10
    for endpoint in admin_routes:
        assert policy_of(app, endpoint) == frozenset({"admin"}), endpoint
