"""The dates of service an audit file may be asked for (portal.audit_files.rules.check_range)."""
from __future__ import annotations

from datetime import date

import pytest

from portal.audit_files.rules import check_range, check_request

TODAY = date(2026, 12, 3)


@pytest.mark.parametrize("first, last, words", [
    (date(2026, 1, 1), TODAY, None),
    (TODAY, TODAY, None),
    (date(2019, 12, 4), TODAY, None),                        # 7 years
    (date(2019, 11, 25), TODAY, "spans more than 7 years"),  # 7 x 366 days + 1
    (date(2026, 12, 2), date(2026, 12, 1), "ends (2026-12-01) before it starts"),
    (date(2026, 12, 4), date(2026, 12, 31), "starts in the future"),
    (date(2026, 1, 1), date(2027, 6, 1), "ends in the future (2027-06-01)"),
])
def test_check_range(first, last, words):
    problems = check_range(first, last, today=TODAY)
    if words is None:
        assert problems == []
    else:
        assert any(words in p for p in problems), problems


@pytest.mark.parametrize("field, value, words", [
    ("recipient", " ", "Say the recipient"),
    ("purpose", "x" * 301, "purpose is longer than 300"),
    ("legal_basis", "", "Say the legal basis"),
])
def test_check_request_fields(field, value, words):
    kw = {"recipient": "Sunrise Medicaid MCO", "purpose": "Payer audit",
          "legal_basis": "Audit and evaluation (42 CFR 2.53)", field: value}
    problems = check_request(date(2026, 11, 1), date(2026, 11, 30), today=TODAY, **kw)
    assert any(words in p for p in problems), problems
