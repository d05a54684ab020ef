"""The daily reconciliation board: sessions, every reason a line is blocked, who must act,
dollars at risk, htmx filters (partial vs full page), the trend chart, bad input.

``prepare_day`` (also used by the other billing tests) builds one past date of service:

AM IOP (Dana Whitfield, LCSW), roster closed, 9:00-12:05:
  Marisol Alvarez   Sunrise Medicaid, authorized, present, signed      -> ready   $165.00
  Keegan O'Brien    Sunrise Medicaid, authorized, present, NOT signed  -> blocked (facilitator)
  José García-López BlueRiver PPO, no authorization, present, signed   -> blocked (billing)
  Thi Lan Nguyen    Self-pay, present, signed                          -> ready   $150.00
PM IOP (Marcus Greene, LPC), roster open, no times recorded:
  Ravi Patel        Sunrise Medicaid, authorized, present, signed      -> blocked (facilitator, billing)
  Sofia Lindqvist   Keystone, not marked yet                           -> no service
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

import pytest

from portal.clock import local_to_utc
from portal.extensions import db
from portal.fact_loader import load_facts
from portal.models import Authorization
from portal.rules.claim_lines import derive_claim_lines
from portal.rules.readiness import patient_readiness
from portal.services.reconciliation import build_day, usd
from portal.services.schedule import ensure_sessions

DAY = date(2026, 11, 18)  # a Wednesday, after Sunrise's 2026-11-16 rule version (HQ modifier)
AT_RISK_CENTS = 16500 + 35000 + 16500


def authorize(world, patient, number: str, start=date(2026, 11, 1), end=date(2026, 12, 31), units=40):
    db.session.add(Authorization(patient=patient, payer=patient.payer, number=number,
                                 hcpcs_code="H0015", start_date=start, end_date=end, units=units))


def prepare_day(world, day: date = DAY, *, close_pm: bool = False):
    """Sessions of ``day`` in the states described in the module docstring; returns (am, pm)."""
    tz = world.program.tz
    alvarez, obrien, garcia, nguyen = world.patients
    patel, lindqvist = world.pm_patients
    if not db.session.scalar(db.select(Authorization.id).limit(1)):
        authorize(world, alvarez, "SMC-A-1001")
        authorize(world, obrien, "SMC-A-1002")
        authorize(world, patel, "SMC-A-1050")
        db.session.commit()
    sessions = ensure_sessions(world.program, day)
    am = next(s for s in sessions if s.cohort_id == world.am.id)
    pm = next(s for s in sessions if s.cohort_id == world.pm.id)
    signed_at = local_to_utc(day, time(9, 1), tz)
    for e in am.entries:
        e.status = "present"
        e.signed_at = None if e.patient_id == obrien.id else signed_at
    am.actual_start = local_to_utc(day, time(9, 0), tz)
    am.actual_end = local_to_utc(day, time(12, 5), tz)
    am.status = "closed"
    am.closed_at = local_to_utc(day, time(12, 10), tz)
    for e in pm.entries:
        if e.patient_id == patel.id:
            e.status, e.signed_at = "present", local_to_utc(day, time(17, 31), tz)
    if close_pm:
        pm.actual_start = local_to_utc(day, time(17, 30), tz)
        pm.actual_end = local_to_utc(day, time(20, 35), tz)
        pm.status = "closed"
        for e in pm.entries:
            if e.patient_id == lindqvist.id:
                e.status = "absent"
    db.session.commit()
    return am, pm


def htmx_get(client, url, **headers):
    return client.get(url, headers={"HX-Request": "true", **headers})


@pytest.fixture
def day(world):
    prepare_day(world)
    return DAY


def test_board_shows_sessions_blocked_reasons_and_who_must_act(client, login, world, day):
    login.as_(world.billing)
    resp = client.get(f"/billing/?date={day}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    # full names and MRNs (billing staff, not the shared tablet)
    for text in ("Marisol Alvarez", "100231", "Keegan O&#39;Brien", "100232", "José García-López",
                 "Ravi Patel", "100250"):
        assert text in html, text
    assert "patient attended but did not sign the roster" in html
    assert "no H0015 authorization on file for this payer" in html
    assert "roster is not closed and archived" in html
    assert "actual start and end times are not recorded" in html
    assert 'who-facilitator' in html and 'who-billing' in html
    # deadline in program-local time, an hour after the PM group (ends 8:30 PM), overdue (the
    # DOS is in the past)
    assert "9:30 PM CST" in html and "overdue" in html
    assert "Not reconciled yet" in html and "Mark day reconciled" in html
    # sessions table: AM closed, PM open, with counts
    assert re.search(r"AM IOP.*?<td>4</td>\s*<td>4</td>\s*<td>3 <span", html, re.S)
    assert "<caption>" in html and 'scope="col"' in html and 'scope="row"' in html


def test_dollars_at_risk_is_the_sum_of_blocked_charges(client, login, world, day, app):
    login.as_(world.admin)
    facts = load_facts(world.program, day, day)
    lines = [ln for ln in derive_claim_lines(*facts.args(), app.extensions["rulebook"]) if ln.dos == day]
    blocked = sum(ln.charge_cents for ln in lines if ln.status == "blocked")
    assert blocked == AT_RISK_CENTS
    html = client.get(f"/billing/?date={day}").get_data(as_text=True)
    assert f'<dd id="at-risk">{usd(blocked)}</dd>' in html
    assert usd(blocked) == "$680.00"
    assert usd(123456) == "$1,234.56" and usd(5) == "$0.05"
    # with a payer filter, only that payer's blocked charges count
    html = client.get(f"/billing/?date={day}&payer=blueriver_ppo").get_data(as_text=True)
    assert '<dd id="at-risk">$350.00</dd>' in html


def test_filters_send_partial_to_htmx_and_full_page_otherwise(client, login, world, day):
    login.as_(world.billing)
    url = f"/billing/?date={day}&blocked=1&cohort=AM+IOP"
    partial = htmx_get(client, url)
    assert partial.status_code == 200
    body = partial.get_data(as_text=True)
    assert "<section id=\"board\"" in body
    assert "<html" not in body and "board-filters" not in body
    assert "Keegan O&#39;Brien" in body and "José García-López" in body
    assert "Marisol Alvarez" not in body  # ready: filtered out
    assert "Ravi Patel" not in body  # PM cohort: filtered out
    assert "HX-Request" in partial.headers.get("Vary", "")
    full = client.get(url)
    html = full.get_data(as_text=True)
    assert "<html" in html and "board-filters" in html and '<section id="board"' in html
    restore = htmx_get(client, url, **{"HX-History-Restore-Request": "true"})
    assert "<html" in restore.get_data(as_text=True)


def test_payer_filter(client, login, world, day):
    login.as_(world.billing)
    body = htmx_get(client, f"/billing/?date={day}&payer=self_pay").get_data(as_text=True)
    assert "Thi Lan Nguyen" in body and "Marisol Alvarez" not in body


def test_empty_day(client, login, world):
    login.as_(world.billing)
    html = client.get("/billing/?date=2026-10-01").get_data(as_text=True)
    assert "No group sessions on Thursday, October 1" in html
    assert "Mark day reconciled" not in html


@pytest.mark.parametrize("query, message", [
    ("date=2026-13-01", "is not a date"),
    ("date=yesterday", "is not a date"),
    ("date=2026-11-18&payer=acme", "no payer"),
    ("date=2026-11-18&cohort=Night", "no cohort"),
])
def test_bad_board_input_is_400(client, login, world, query, message):
    login.as_(world.billing)
    resp = client.get(f"/billing/?{query}")
    assert resp.status_code == 400
    assert message in resp.get_data(as_text=True)


def test_trend_svg_has_title_and_text_alternative(client, login, world, day, app):
    prepare_day(world, day - timedelta(days=1), close_pm=True)
    login.as_(world.billing)
    html = client.get(f"/billing/?date={day}").get_data(as_text=True)
    svg = html[html.index("<svg"):html.index("</svg>")]
    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
    assert svg.count('class="bar-ready"') == 2 and svg.count('class="bar-blocked"') == 2
    assert "Nov 17: 3 ready, 2 blocked." in svg  # PM closed that day: Patel is ready
    assert "Nov 18: 2 ready, 3 blocked." in svg
    assert "Show these numbers as a table" in html
    assert html.count('<th scope="row">') >= 14


def test_board_and_readiness_agree(client, login, world, day, app):
    """One source of truth: the readiness page's verdict and the board's for every patient."""
    board = build_day(world.program, day, app.extensions["rulebook"])
    verdicts = {r.patient.patient_id: r.line.status for r in board.lines}
    assert set(verdicts.values()) == {"ready", "blocked", "no_service"}
    for pid, verdict in verdicts.items():
        facts = load_facts(world.program, day, day, patient_ids=[pid])
        (dr,) = patient_readiness(pid, day, day, *facts.args(), app.extensions["rulebook"])
        assert dr.verdict == verdict, pid
    # and through the pages themselves
    login.as_(world.billing)
    obrien = world.patients[1]
    page = client.get(f"/readiness/patients/{obrien.id}?from={day}&to={day}").get_data(as_text=True)
    assert "Blocked" in page and "Not ready" not in page and "did not sign the roster" in page
    board_html = client.get(f"/billing/?date={day}").get_data(as_text=True)
    row = board_html[board_html.index("Keegan O&#39;Brien"):]
    row = row[:row.index("</tr>")]
    assert "Blocked" in row and "did not sign the roster" in row


def test_board_shows_roster_archive_link(client, login, world):
    """A roster closed through the service shows its archive entry with a download link."""
    from portal.services.roster import close_roster
    from tests.signature_images import squiggle_png

    am, _ = prepare_day(world)
    for e in am.entries:
        e.signed_at = e.signed_at or local_to_utc(DAY, time(9, 2), world.program.tz)
        e.signature_sha256, e.signature_png = "0" * 64, squiggle_png()
    am.status = "open"
    db.session.commit()
    close_roster(am.id, facilitator=world.facilitator, typed_name="Dana Whitfield", attested=True,
                 signature_png=squiggle_png(), max_png_bytes=512 * 1024,
                 now=datetime(2026, 11, 18, 19, 0, tzinfo=timezone.utc))
    login.as_(world.billing)
    html = client.get(f"/billing/?date={DAY}").get_data(as_text=True)
    assert re.search(r'href="/documents/\d+\.pdf">entry #1</a>', html)
