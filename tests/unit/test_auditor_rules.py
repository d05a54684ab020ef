"""Auditor grant rules, table-driven: who a set of grants covers, on which date of service, at
which instant (portal/auditors/rules.py; sources in its docstring)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from portal.auditors import rules
from portal.auditors.rules import GrantScope

NOW = datetime(2026, 12, 2, 18, 0, tzinfo=timezone.utc)
SUNRISE, BLUERIVER = 1, 2
ALVAREZ, OBRIEN, GARCIA = 10, 11, 12  # Alvarez, O'Brien: Sunrise; García: BlueRiver


def grant(id=1, *, payer=SUNRISE, patients=(), dos_from=None, dos_to=None,
          expires=NOW + timedelta(days=30), granted=NOW - timedelta(days=1), revoked=None,
          starts=None):
    return GrantScope(id=id, granted_at=granted, expires_at=expires, revoked_at=revoked,
                      payer_id=payer, patient_ids=frozenset(patients), dos_from=dos_from,
                      dos_to=dos_to, starts_at=starts)


NOV = date(2026, 11, 15)

COVERS = [
    # (case, grants, patient, payer, dos, now, expected)
    ("payer grant covers its member", [grant()], ALVAREZ, SUNRISE, NOV, NOW, True),
    ("payer grant: another payer's member", [grant()], GARCIA, BLUERIVER, NOV, NOW, False),
    ("expires exactly now: ended", [grant(expires=NOW)], ALVAREZ, SUNRISE, NOV, NOW, False),
    ("one microsecond before expiry", [grant(expires=NOW + timedelta(microseconds=1))],
     ALVAREZ, SUNRISE, NOV, NOW, True),
    ("revoked before now", [grant(revoked=NOW - timedelta(minutes=1))], ALVAREZ, SUNRISE, NOV,
     NOW, False),
    ("revoked exactly now", [grant(revoked=NOW)], ALVAREZ, SUNRISE, NOV, NOW, False),
    ("revoked later (asked about the past)", [grant(revoked=NOW + timedelta(hours=1))],
     ALVAREZ, SUNRISE, NOV, NOW, True),
    ("not begun yet", [grant(granted=NOW + timedelta(hours=1))], ALVAREZ, SUNRISE, NOV, NOW,
     False),
    ("DOS inside the range", [grant(dos_from=date(2026, 11, 1), dos_to=date(2026, 11, 30))],
     ALVAREZ, SUNRISE, NOV, NOW, True),
    ("DOS on the first day", [grant(dos_from=NOV, dos_to=date(2026, 11, 30))],
     ALVAREZ, SUNRISE, NOV, NOW, True),
    ("DOS on the last day", [grant(dos_from=date(2026, 11, 1), dos_to=NOV)],
     ALVAREZ, SUNRISE, NOV, NOW, True),
    ("DOS a day before the range", [grant(dos_from=NOV + timedelta(days=1))],
     ALVAREZ, SUNRISE, NOV, NOW, False),
    ("DOS a day after the range", [grant(dos_to=NOV - timedelta(days=1))],
     ALVAREZ, SUNRISE, NOV, NOW, False),
    ("no DOS asked: in scope on some date", [grant(dos_to=date(2026, 1, 31))],
     ALVAREZ, SUNRISE, None, NOW, True),
    ("patient list only", [grant(payer=None, patients=[GARCIA])], GARCIA, BLUERIVER, NOV, NOW,
     True),
    ("patient list only: someone else", [grant(payer=None, patients=[GARCIA])],
     ALVAREZ, SUNRISE, NOV, NOW, False),
    ("payer and patients: a listed member", [grant(patients=[ALVAREZ])], ALVAREZ, SUNRISE, NOV,
     NOW, True),
    ("payer and patients: an unlisted member", [grant(patients=[ALVAREZ])], OBRIEN, SUNRISE,
     NOV, NOW, False),
    ("a grant with no scope covers no one", [grant(payer=None)], ALVAREZ, SUNRISE, NOV, NOW,
     False),
    ("several grants: the union", [grant(1, payer=None, patients=[GARCIA]), grant(2)],
     ALVAREZ, SUNRISE, NOV, NOW, True),
    ("several grants: the active one counts",
     [grant(1, expires=NOW - timedelta(days=1)), grant(2, revoked=NOW), grant(3)],
     OBRIEN, SUNRISE, NOV, NOW, True),
    ("several grants: none active",
     [grant(1, expires=NOW - timedelta(days=1)), grant(2, revoked=NOW)],
     OBRIEN, SUNRISE, NOV, NOW, False),
    ("no grants", [], ALVAREZ, SUNRISE, NOV, NOW, False),
]


@pytest.mark.parametrize("case, grants, patient, payer, dos, now, expected", COVERS,
                         ids=[c[0] for c in COVERS])
def test_covers(case, grants, patient, payer, dos, now, expected):
    assert rules.covers(grants, patient, payer, dos, now) is expected


OCT1, OCT31, NOV30 = date(2026, 10, 1), date(2026, 10, 31), date(2026, 11, 30)
RANGES = [
    ("one grant covers the whole range", [grant(dos_from=OCT1, dos_to=NOV30)], OCT1, NOV30, 1),
    ("range runs past the grant", [grant(dos_from=OCT1, dos_to=OCT31)], OCT1, NOV30, None),
    ("two grants together, but no single one", [grant(1, dos_from=OCT1, dos_to=OCT31),
                                                 grant(2, dos_from=OCT31 + timedelta(days=1))],
     OCT1, NOV30, None),
    ("the later-expiring of two covering grants",
     [grant(1), grant(2, expires=NOW + timedelta(days=60))], OCT1, NOV30, 2),
    ("expired grant covers nothing", [grant(expires=NOW)], OCT1, NOV30, None),
    ("reversed range", [grant()], NOV30, OCT1, None),
]


@pytest.mark.parametrize("case, grants, first, last, expected", RANGES, ids=[c[0] for c in RANGES])
def test_grant_covering_range(case, grants, first, last, expected):
    found = rules.grant_covering_range(grants, ALVAREZ, SUNRISE, first, last, NOW)
    assert (found.id if found else None) == expected


def test_clamp_range_keeps_pages_inside_the_grant():
    g = [grant(dos_from=date(2026, 11, 10), dos_to=date(2026, 11, 20))]
    assert rules.clamp_range(g, ALVAREZ, SUNRISE, date(2026, 11, 1), date(2026, 11, 30), NOW) == \
        (date(2026, 11, 10), date(2026, 11, 20))
    assert rules.clamp_range(g, ALVAREZ, SUNRISE, date(2026, 12, 1), date(2026, 12, 5), NOW) is None
    assert rules.clamp_range(g, GARCIA, BLUERIVER, date(2026, 11, 1), date(2026, 11, 30), NOW) is None


HOUR = timedelta(hours=1)
STARTS = [
    # (case, grant, now, begins at, active, status)
    ("no start: from when granted", grant(), NOW, NOW - timedelta(days=1), True, "active"),
    ("start later: not yet", grant(starts=NOW + HOUR), NOW, NOW + HOUR, False, "pending"),
    ("start exactly now: begun", grant(starts=NOW), NOW, NOW, True, "active"),
    ("one microsecond before the start", grant(starts=NOW + timedelta(microseconds=1)), NOW,
     NOW + timedelta(microseconds=1), False, "pending"),
    ("start passed", grant(starts=NOW - HOUR), NOW, NOW - HOUR, True, "active"),
    ("start before it was granted: from when granted",
     grant(granted=NOW + HOUR, starts=NOW - HOUR), NOW, NOW + HOUR, False, "pending"),
    ("started, then expired", grant(starts=NOW - 12 * HOUR, expires=NOW), NOW,
     NOW - 12 * HOUR, False, "expired"),
    ("revoked before its start", grant(starts=NOW + HOUR, revoked=NOW - HOUR), NOW, NOW + HOUR,
     False, "revoked"),
]


@pytest.mark.parametrize("case, g, now, begins, active, state", STARTS,
                         ids=[c[0] for c in STARTS])
def test_start(case, g, now, begins, active, state):
    assert rules.begins_at(g) == begins
    assert rules.is_active(g, now) is active
    assert rules.status(g, now) == state
    assert rules.covers([g], ALVAREZ, SUNRISE, NOV, now) is active


@pytest.mark.parametrize("g, state", [
    (grant(), "active"), (grant(expires=NOW), "expired"), (grant(revoked=NOW), "revoked"),
    (grant(granted=NOW + timedelta(seconds=1)), "pending"),
    (grant(expires=NOW - timedelta(days=1), revoked=NOW - timedelta(days=2)), "revoked"),
])
def test_status(g, state):
    assert rules.status(g, NOW) == state


def test_whole_history_needs_a_grant_without_dates():
    assert rules.without_date_limit([grant()], ALVAREZ, SUNRISE, NOW)
    assert not rules.without_date_limit([grant(dos_to=NOV)], ALVAREZ, SUNRISE, NOW)


OK = dict(payer_id=SUNRISE, patient_ids=[], dos_from=None, dos_to=None,
          expires_at=NOW + timedelta(days=1), now=NOW, legal_basis="audit_2_53",
          consent_scope="", purpose="Payer review", recipient="Sunrise SIU")
PROBLEMS = [
    ("valid", {}, None),
    ("no scope", {"payer_id": None}, "Scope"),
    ("reversed DOS", {"dos_from": NOV30, "dos_to": OCT1}, "first date is after"),
    ("expiry in the past", {"expires_at": NOW - timedelta(minutes=1)}, "future"),
    ("expiry exactly now", {"expires_at": NOW}, "future"),
    ("no expiry", {"expires_at": None}, "Expiry"),
    ("consent without its scope", {"legal_basis": "consent_2_31"}, "Consent scope"),
    ("consent with its scope", {"legal_basis": "consent_2_31",
                                "consent_scope": "Attendance and notes, Nov 2026"}, None),
    ("unknown basis", {"legal_basis": "because"}, "Legal basis"),
    ("no purpose", {"purpose": "  "}, "Purpose"),
    ("no recipient", {"recipient": ""}, "Recipient"),
    ("start before expiry", {"starts_at": NOW + timedelta(hours=1)}, None),
    ("start in the past (begins when granted)", {"starts_at": NOW - timedelta(days=3)}, None),
    ("start exactly at expiry", {"starts_at": NOW + timedelta(days=1)}, "start before it expires"),
    ("start after expiry", {"starts_at": NOW + timedelta(days=2)}, "start before it expires"),
]


@pytest.mark.parametrize("case, change, expected", PROBLEMS, ids=[c[0] for c in PROBLEMS])
def test_scope_problems(case, change, expected):
    problems = rules.scope_problems(**{**OK, **change})
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and expected in problems[0], problems


def test_legal_basis_words_cite_the_section():
    assert "§2.31" in rules.LEGAL_BASES["consent_2_31"]
    assert "§2.53" in rules.LEGAL_BASES["audit_2_53"]
