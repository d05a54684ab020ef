"""The patient timeline's drawing data: levels, windows, attended marks, uncovered days."""
from __future__ import annotations

from datetime import date

from portal.authorizations.timeline import build

FIRST, LAST = date(2026, 11, 1), date(2026, 11, 30)


def test_levels_windows_marks_and_bands():
    t = build(FIRST, LAST, [("3.5", None, date(2026, 11, 9)), ("2.1", date(2026, 11, 10), None)],
              [("RS-1", date(2026, 10, 1), date(2026, 11, 9), "approved"),
               ("IOP-1", date(2026, 11, 12), date(2026, 11, 30), "approved"),
               ("R-3", date(2026, 11, 10), date(2026, 11, 11), "pending")],
              {date(2026, 11, 10): "held", date(2026, 11, 11): "held",
               date(2026, 11, 12): "ready", date(2026, 11, 9): "blocked",
               date(2026, 10, 30): "blocked", date(2026, 12, 5): "ready"})
    # Nov 9 is in RS-1's window; the pending days are held (amber band), not uncovered;
    # Oct 30 and Dec 5 are outside the picture
    assert t.uncovered == 0
    assert [m.fill for m in t.marks] == ["#b3261e", "#d49a1f", "#d49a1f", "#2f8f6b"]
    bands = [b for b in t.bars if not b.label]
    assert len(bands) == 2 and all(b.fill.startswith("#d49a1f") for b in bands)
    levels = [b for b in t.bars if b.label.startswith("ASAM")]
    assert [b.fill for b in levels] == ["#6b4fa0", "#2f8f6b"]
    assert levels[0].x == t.left  # an episode "before records" starts at the picture's edge
    assert t.ticks[0].label == "Nov 1"


def test_uncovered_day_is_red():
    t = build(FIRST, LAST, [], [("IOP-1", date(2026, 11, 10), date(2026, 11, 20), "denied")],
              {date(2026, 11, 3): "blocked", date(2026, 11, 12): "blocked"})
    assert t.uncovered == 2
    assert all(b.fill.startswith("#b3261e") for b in t.bars if not b.label)


def test_empty_timeline():
    t = build(FIRST, FIRST, [], [], {})
    assert t.bars == () and t.marks == () and t.uncovered == 0
