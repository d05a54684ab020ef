"""The patient timeline's drawing data: levels, windows, attended marks, uncovered days."""
from __future__ import annotations

from datetime import date

from portal.authorizations.timeline import build


def test_uncovered_days_and_colors():
    first, last = date(2026, 11, 1), date(2026, 11, 30)
    t = build(first, last, [("3.5", None, date(2026, 11, 9)), ("2.1", date(2026, 11, 10), None)],
              [("RS-1", date(2026, 10, 1), date(2026, 11, 9), "approved"),
               ("IOP-1", date(2026, 11, 12), date(2026, 11, 30), "approved"),
               ("R-3", date(2026, 11, 10), date(2026, 11, 11), "pending")],
              {date(2026, 11, 10): "held", date(2026, 11, 11): "held",
               date(2026, 11, 12): "ready", date(2026, 12, 5): "ready"})
    assert t.uncovered == 2  # the two pending days; Dec 5 is outside the picture
    assert [m.fill for m in t.marks] == ["#d49a1f", "#d49a1f", "#2f8f6b"]
    levels = [b for b in t.bars if b.label.startswith("ASAM")]
    assert [b.fill for b in levels] == ["#6b4fa0", "#2f8f6b"]
    assert levels[0].x == t.left  # an episode "before records" starts at the picture's edge
    red = [b for b in t.bars if not b.label]
    assert len(red) == 2 and all(b.fill.startswith("#b3261e") for b in red)
    assert t.ticks[0].label == "Nov 1"


def test_empty_timeline():
    t = build(date(2026, 11, 1), date(2026, 11, 1), [], [], {})
    assert t.bars == () and t.marks == () and t.uncovered == 0
