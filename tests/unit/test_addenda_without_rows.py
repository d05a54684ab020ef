"""Archived addenda no database row stands for (issue 11 "Addenda"; issue 9 "Records bound to
their documents"): pure part of portal/archive_binding.addenda_missing_rows."""
from __future__ import annotations

import pytest

from portal.rules.archive_binding import (
    AddendumEntry,
    addenda_without_rows,
    addendum_entry,
)

ENTRY = addendum_entry(40, {"original_entry_seq": "12", "patient_id": "7", "position": "1"})


def test_addendum_entry_reads_the_subject():
    assert ENTRY == AddendumEntry(40, 12, "7", "1")
    assert addendum_entry(41, {"original_entry_seq": "x"}) == AddendumEntry(41, None, None, None)
    assert addendum_entry(42, None) == AddendumEntry(42, None, None, None)


@pytest.mark.parametrize("rows, missing", [
    ([(40, 7, 12)], False),                  # the row stands for the entry
    ([], True),                              # deleted
    ([(40, 8, 12)], True),                   # moved to another patient
    ([(40, 7, 13)], True),                   # moved to another original
    ([(None, 7, 12)], True),                 # its own archived document is gone
    ([(39, 7, 12), (41, 7, 12)], True),      # other addenda of the same chain do not count
])
def test_a_missing_row_is_found(rows, missing):
    assert addenda_without_rows([ENTRY], rows) == ([ENTRY] if missing else [])
