"""Counted words read right at 1 (QA #16: "(in 1 days)")."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from portal.rules.authorizations import AlertFact, Alerts, alerts_for
from portal.wording import count_noun


@pytest.mark.parametrize("n, word, words, text", [
    (0, "day", None, "0 days"), (1, "day", None, "1 day"), (2, "day", None, "2 days"),
    (1, "entry", "entries", "1 entry"), (3, "entry", "entries", "3 entries"),
])
def test_count_noun(n, word, words, text):
    assert count_noun(n, word, words) == text


@pytest.mark.parametrize("days, words", [(0, "(today)"), (1, "(in 1 day)"), (2, "(in 2 days)")])
def test_expiring_authorization_alert_counts_days_right(days, words):
    today = date(2026, 12, 2)
    fact = AlertFact(number="IOP-1", start=today - timedelta(days=30), end=today + timedelta(days=days),
                     units_authorized=20,
                     units_used=0)
    (alert,) = [a for a in alerts_for(fact, today, Alerts(units_left=0, days_to_expiry=7,
                                                          review_before_end_days=0))
                if a.code == "expiring"]
    assert alert.message.endswith(words) and "1 days" not in alert.message
