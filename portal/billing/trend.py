"""Geometry for the board's server-rendered SVG trend (stacked ready/blocked bars per day).

Pure: takes ``TrendDay``-like objects (``day``, ``ready``, ``blocked``) and returns numbers in
SVG user units, so the template only places rectangles. No JavaScript, no chart library.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

WIDTH = 560
HEIGHT = 180
TOP = 16        # room for the largest bar's total
BOTTOM = 28     # room for day labels
LEFT = 8
GAP = 6


@dataclass(frozen=True)
class Bar:
    day: date
    ready: int
    blocked: int
    x: float
    width: float
    ready_y: float
    ready_h: float
    blocked_y: float
    blocked_h: float
    label: str          # "M 24" style short label under the bar
    total_y: float      # where the total is written


def bars(days, width: int = WIDTH, height: int = HEIGHT) -> list[Bar]:
    """One bar per day; heights scale to the busiest day (a day with no lines has no bar)."""
    days = list(days)
    if not days:
        return []
    peak = max((d.ready + d.blocked for d in days), default=0) or 1
    plot_h = height - TOP - BOTTOM
    slot = (width - LEFT) / len(days)
    bar_w = max(slot - GAP, 2)
    out = []
    base = height - BOTTOM
    for i, d in enumerate(days):
        rh = plot_h * d.ready / peak
        bh = plot_h * d.blocked / peak
        x = LEFT + i * slot + GAP / 2
        out.append(Bar(d.day, d.ready, d.blocked, round(x, 1), round(bar_w, 1),
                       round(base - rh, 1), round(rh, 1), round(base - rh - bh, 1), round(bh, 1),
                       f"{d.day:%a}"[:1] + f" {d.day.day}", round(base - rh - bh - 4, 1)))
    return out
