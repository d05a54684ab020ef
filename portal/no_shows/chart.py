"""Geometry for the server-rendered no-show pattern chart: stacked bars per ISO week (no-shows,
late cancellations, timely cancellations, excused). Pure numbers; the template draws them."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from portal.rules.no_shows import (EXCUSED, LATE_CANCELLATION, NO_SHOW, TIMELY_CANCELLATION,
                                   UNCLASSIFIED, WeekCount)

WIDTH, HEIGHT, TOP, BOTTOM, LEFT, GAP = 560, 160, 14, 26, 6, 8
ORDER = (NO_SHOW, LATE_CANCELLATION, UNCLASSIFIED, TIMELY_CANCELLATION, EXCUSED)


@dataclass(frozen=True)
class Segment:
    code: str
    n: int
    y: float
    h: float


@dataclass(frozen=True)
class WeekBar:
    week_start: date
    x: float
    width: float
    segments: tuple[Segment, ...]
    total: int
    total_y: float
    label: str


def week_bars(weeks: list[WeekCount], width: int = WIDTH, height: int = HEIGHT) -> list[WeekBar]:
    if not weeks:
        return []
    peak = max((sum(w.counts.values()) for w in weeks), default=0) or 1
    plot_h = height - TOP - BOTTOM
    slot = (width - LEFT) / len(weeks)
    base = height - BOTTOM
    out = []
    for i, w in enumerate(weeks):
        y = base
        segs = []
        for code in ORDER:
            n = w.counts.get(code, 0)
            if n:
                h = plot_h * n / peak
                y -= h
                segs.append(Segment(code, n, round(y, 1), round(h, 1)))
        out.append(WeekBar(w.week_start, round(LEFT + i * slot + GAP / 2, 1), round(max(slot - GAP, 2), 1),
                           tuple(segs), sum(w.counts.values()), round(y - 4, 1),
                           f"{w.week_start:%b %-d}"))
    return out
