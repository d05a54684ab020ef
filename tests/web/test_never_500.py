"""No input gets a 500, and a refused request writes nothing.

The findings one by one (ids beyond 64 bits, year 0001, "²", 200 KB of nested JSON), then
Hypothesis over every route in the URL map (so new routes are covered without a change here):
random ids, random query strings, random form fields."""
from __future__ import annotations

import base64
import hashlib
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from portal.clock import local_today
from portal.extensions import db
from portal.services.schedule import ensure_sessions
from tests import factories

ODD = ["0001-01-01", "9999-12-31", "1999-12-31", "2101-01-01", "²", "٣", "-1", "9" * 40,
       "\x00", "\u202e", "%00", "1e9", "2026-02-30", " ", "", "x" * 3000, "2026-11-3٠", "../..",
       "null", "[]", "{}", "true", "0", "2147483648", "99999999999999999999"]
odd_text = st.one_of(st.sampled_from(ODD), st.text(max_size=40))
FIELDS = ["date", "from", "to", "payer", "cohort", "blocked", "all", "next", "switch", "status",
          "arrival", "departure", "start", "end", "modality", "patient_location", "typed_name",
          "attest", "ack_unsigned", "signature_png", "strokes", "supersedes", "token", "email",
          "password"]
# Routes a fuzzer must not drive: signing out (ends the fuzzing session), the lock screen's
# sign-in (its own tests), and the keep-alive (nothing to parse).
SKIP_POST = {"auth.logout", "auth.unlock", "auth.login"}


def snapshot() -> str:
    """A digest of every table except the access log (which records every request)."""
    db.session.rollback()
    h = hashlib.sha256()
    for table in db.metadata.sorted_tables:
        if table.name == "access_log":
            continue
        for row in db.session.execute(select(table).order_by(*table.primary_key.columns)):
            h.update(repr(tuple(row)).encode())
    db.session.rollback()
    return h.hexdigest()


@pytest.fixture
def staff(world, client, login):
    day = local_today(world.program.tz)
    sessions = ensure_sessions(world.program, day)
    login.as_(world.admin)
    token = factories.csrf_from(client.get("/readiness/").get_data(as_text=True))
    return {"token": token, "sessions": sessions}


# --- the findings ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/sessions/99999999999999999999", "/sessions/18446744073709551616", "/sessions/2147483648",
    "/sessions/%C2%B2", "/readiness/patients/99999999999999999999",
    "/documents/99999999999999999999.pdf", "/documents/1/patients/99999999999999999999/extract.pdf",
    "/readiness/?from=0001-01-01", "/readiness/?to=0001-01-01", "/readiness/?from=9999-12-31&to=9999-12-31",
    "/readiness/patients/1?from=0001-01-01&to=0001-01-05", "/billing/?date=0001-01-01",
    "/billing/?date=9999-12-31", "/billing/?date=2026-11-3%D9%A0", "/verify/" + "9" * 5000,
    "/jobs/" + "9" * 5000, "/jobs/%C2%B2/download", "/jobs/%00",
])
def test_odd_ids_and_dates_are_4xx_with_a_message(client, staff, path):
    resp = client.get(path)
    assert 400 <= resp.status_code < 500, (path, resp.status_code)
    assert "Something went wrong" not in resp.get_data(as_text=True)


def test_year_one_in_reconcile_and_exports_is_400(client, staff):
    before = snapshot()
    h = {"X-CSRFToken": staff["token"]}
    assert client.post("/billing/days/0001-01-01/reconcile", headers=h).status_code == 400
    for path in ("/billing/exports", "/billing/837p"):
        resp = client.post(path, data={"from": "0001-01-01", "to": "0001-01-31",
                                       "payer": "sunrise_medicaid_mco"}, headers=h)
        assert resp.status_code == 400 and "2000" in resp.get_data(as_text=True)
    assert snapshot() == before


def test_superscript_digit_entry_number_is_400(client, staff):
    day = local_today(staff["sessions"][0].cohort.program.tz).isoformat()
    resp = client.post(f"/billing/days/{day}/reconcile", data={"supersedes": "²"},
                       headers={"X-CSRFToken": staff["token"]})
    assert resp.status_code == 400 and "must be a number" in resp.get_data(as_text=True)


def test_deeply_nested_strokes_are_refused_and_nothing_is_written(client, staff):
    from portal.demo.signature_art import squiggle_png

    session = staff["sessions"][0]
    entry = session.entries[0]
    png = "data:image/png;base64," + base64.b64encode(squiggle_png(seed=3)).decode()
    before = snapshot()
    resp = client.post(f"/sessions/{session.id}/entries/{entry.id}/signature",
                       data={"signature_png": png, "strokes": "[" * 100_000 + "]" * 100_000},
                       headers={"X-CSRFToken": staff["token"], "HX-Request": "true"})
    assert resp.status_code == 422 and "damaged" in resp.get_data(as_text=True)
    assert snapshot() == before


def test_non_ascii_clock_times_are_422(client, staff):
    session = staff["sessions"][0]
    resp = client.post(f"/sessions/{session.id}/times", data={"start": "٩:٠٥", "end": "12:00"},
                       headers={"X-CSRFToken": staff["token"], "HX-Request": "true"})
    assert resp.status_code == 422


# --- every route, any input -------------------------------------------------------------------

def _routes(app, method):
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or method not in (rule.methods or ()):
            continue
        if method == "POST" and rule.endpoint in SKIP_POST:
            continue
        out.append(rule)
    return out


def _url(rule, draw_id, draw_text):
    url = rule.rule
    for name, conv in rule._converters.items():
        kind = type(conv).__name__
        value = str(draw_id()) if "Int" in kind else quote(draw_text(), safe="")
        url = _replace_arg(url, name, value)
    return url


def _replace_arg(url: str, name: str, value: str) -> str:
    import re
    return re.sub(r"<(?:[a-z_]+(?:\([^)]*\))?:)?" + re.escape(name) + ">", lambda _m: value, url)


ids = st.one_of(st.integers(0, 8), st.integers(0, 2**70), st.sampled_from([2**31 - 1, 2**31, 2**63]))


FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_any_get_anywhere_is_never_a_500(app, client, staff, data):
    rule = data.draw(st.sampled_from(_routes(app, "GET")), label="route")
    url = _url(rule, lambda: data.draw(ids), lambda: data.draw(odd_text))
    query = data.draw(st.dictionaries(st.sampled_from(FIELDS), odd_text, max_size=4), label="query")
    htmx = data.draw(st.booleans(), label="htmx")
    resp = client.get(url, query_string=query, headers={"HX-Request": "true"} if htmx else {})
    assert resp.status_code < 500, (url, query, resp.status_code)
    resp.close()


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_any_post_anywhere_is_never_a_500_nor_a_partial_write(app, client, staff, data):
    rule = data.draw(st.sampled_from(_routes(app, "POST")), label="route")
    # Mostly real ids (so the form is actually read), sometimes any id.
    real = [s.id for s in staff["sessions"]] + [e.id for s in staff["sessions"] for e in s.entries]
    url = _url(rule, lambda: data.draw(st.one_of(st.sampled_from(real), ids)),
               lambda: data.draw(st.one_of(st.sampled_from(["2026-11-18", "0001-01-01"]), odd_text)))
    form = data.draw(st.dictionaries(st.sampled_from(FIELDS), odd_text, max_size=6), label="form")
    htmx = data.draw(st.booleans(), label="htmx")
    headers = {"X-CSRFToken": staff["token"]}
    if htmx:
        headers["HX-Request"] = "true"
    before = snapshot()
    resp = client.post(url, data=form, headers=headers)
    assert resp.status_code < 500, (url, form, resp.status_code)
    if resp.status_code >= 400:
        assert snapshot() == before, (url, form, resp.status_code)
    resp.close()
