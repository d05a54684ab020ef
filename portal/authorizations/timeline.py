"""A patient's timeline as drawing instructions for a server-rendered SVG: levels of care and
authorization windows over time, sessions attended as marks, uncovered days in red. Pure."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from portal.rules.authorizations import APPROVED_STATES, HOLDING_STATES, level_kind

WIDTH = 880
LEFT = 150
ROW = 26
LEVEL_COLORS = {"residential": "#6b4fa0", "php": "#3a6ea5", "inpatient": "#4a2f7a",
                "iop": "#2f8f6b", "op": "#7a8f2f"}


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    fill: str
    label: str
    title: str


@dataclass(frozen=True)
class Mark:
    x: float
    y: float
    fill: str
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    left: int
    rows: tuple[tuple[float, str], ...]  # (y, row label)
    bars: tuple[Bar, ...]
    marks: tuple[Mark, ...]
    ticks: tuple[Tick, ...]
    uncovered: int
    first: date
    last: date


def build(first: date, last: date, episodes, authorizations, attended: dict[date, str]
          ) -> Timeline:
    """``episodes``: (level, start|None, end|None); ``authorizations``: (label, start, end,
    status); ``attended``: date -> line status ("ready", "blocked", "held")."""
    days = (last - first).days + 1
    scale = (WIDTH - LEFT - 10) / max(days, 1)

    def x(d: date) -> float:
        return LEFT + (min(max(d, first), last + timedelta(days=1)) - first).days * scale

    bars, rows = [], []
    y = 24.0
    rows.append((y, "Level of care"))
    for level, start, end in episodes:
        s, e = start or first, end or last
        if e < first or s > last:
            continue
        bars.append(Bar(x(s), y - 8, max(x(e + timedelta(days=1)) - x(s), 2), 16,
                        LEVEL_COLORS.get(level_kind(level) or "", "#888"), f"ASAM {level}",
                        f"ASAM {level}: {start or 'before records'} to {end or 'ongoing'}"))
    y += ROW
    rows.append((y, "Authorizations"))
    for i, (label, start, end, status) in enumerate(authorizations):
        if end < first or start > last:
            continue
        fill = ("#2f8f6b" if status in APPROVED_STATES else
                "#d49a1f" if status in HOLDING_STATES else "#b8b8b8" if status == "draft"
                else "#b3261e")
        yy = y - 8 + (i % 2) * 6
        bars.append(Bar(x(start), yy, max(x(end + timedelta(days=1)) - x(start), 2), 10, fill,
                        label, f"{label} ({status.replace('_', ' ')}): {start} to {end}"))
    y += ROW
    rows.append((y, "Sessions attended"))
    marks, uncovered = [], 0
    colors = {"ready": "#2f8f6b", "held": "#d49a1f", "blocked": "#b3261e"}
    for d, status in sorted(attended.items()):
        if not first <= d <= last:
            continue
        mx = x(d) + scale / 2
        marks.append(Mark(mx, y, colors.get(status, "#666"), f"{d}: {status}"))
    covered, pending = set(), set()
    for label, start, end, status in authorizations:
        into = covered if status in APPROVED_STATES else pending if status in HOLDING_STATES else None
        d = max(start, first)
        while into is not None and d <= min(end, last):
            into.add(d)
            d += timedelta(days=1)
    for d in attended:
        if first <= d <= last and d not in covered:
            if d in pending:  # held, not uncovered: amber
                bars.append(Bar(x(d), y - 11, max(scale, 2), 22, "#d49a1f33", "",
                                f"{d}: attended, held while the request is pending"))
                continue
            uncovered += 1
            bars.append(Bar(x(d), y - 11, max(scale, 2), 22, "#b3261e33", "",
                            f"{d}: attended, no authorization covers it"))
    ticks = []
    step = 7 if days <= 70 else 14 if days <= 140 else 30
    d = first
    while d <= last:
        ticks.append(Tick(x(d), d.strftime("%b %-d")))
        d += timedelta(days=step)
    return Timeline(WIDTH, int(y + 34), LEFT, tuple(rows), tuple(bars), tuple(marks),
                    tuple(ticks), uncovered, first, last)
