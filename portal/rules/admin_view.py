"""Payer rule versions as rows for the read-only rules page (pure: takes a ``RuleBook``).

Each version becomes (label, value) pairs of its key parameters so the template holds no rule
logic. Money is shown in dollars from integer cents; minutes stay minutes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from portal.rules.payer_rules import Payer, RuleBook, RuleVersion


@dataclass(frozen=True)
class VersionView:
    """One rule version: ``effective_from`` (a DOS), ``until`` (the day before the next
    version, or None), ``in_force`` on the page's reference date, and labelled parameters."""

    effective_from: date
    until: date | None
    in_force: bool
    params: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PayerView:
    key: str
    name: str
    kind: str
    payer_id: str
    claim_filing_indicator: str
    source_file: str
    aliases: tuple[str, ...]
    versions: tuple[VersionView, ...]


def _usd(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


def _creds(creds) -> str:
    return ", ".join(sorted(creds)) or "none"


def version_params(v: RuleVersion) -> tuple[tuple[str, str], ...]:
    """Key parameters of one version, in reading order."""
    out = [
        ("Bill codes", " then ".join(v.bill_codes)),
        ("Program modifiers", ", ".join(v.program_modifiers) or "none"),
        ("Group modifier", v.group_modifier or "none"),
        ("In-person place of service", v.in_person_pos),
        ("Group size", f"at least {v.group_size_min} (under it: "
                       f"{'blocked' if v.group_under_min == 'block' else 'billed as individual, no group modifier'})"
                       f", at most {v.group_size_limit if v.group_size_limit else 'no limit'}"),
        ("Rendering provider (837P)", {"facilitator": "the session's facilitator",
                                       "supervisor": "the facilitator's supervisor",
                                       "none": "none (agency-only billing)"}[v.rendering_provider]),
        ("Taxonomy (PRV*BI)", "required" if v.send_taxonomy else "not sent"),
        ("Prior authorization", "required" if v.authorization_required else "not required"),
        ("Exclusive levels same day", ", ".join(sorted(v.exclusive_levels)) or "none"),
    ]
    if v.h0015:
        h = v.h0015
        out += [("H0015 rate", f"{_usd(h.rate_cents)} per {h.units_per_day} unit/day"),
                ("H0015 daily minimum", f"{h.min_daily_minutes} min (adolescent "
                                        f"{h.adolescent_min_daily_minutes} min)"),
                ("H0015 rendering credentials", _creds(h.rendering_credentials))]
    if v.h2019:
        h = v.h2019
        out += [(f"{h.code} rate", f"{_usd(h.rate_cents)} per {h.unit_minutes}-min unit"),
                (f"{h.code} rounding", h.rounding.replace("_", " ")
                 + (f", cap {h.daily_unit_cap} units/day" if h.daily_unit_cap else "")),
                (f"{h.code} rendering credentials", _creds(h.rendering_credentials))]
    t, w, s = v.telehealth, v.weekly, v.supervision
    out += [
        ("Telehealth", f"video {'allowed' if t.video_allowed else 'not allowed'}"
                       f" (modifier {t.video_modifier or 'none'}), audio-only "
                       f"{'allowed' if t.audio_only_allowed else 'not allowed'}"
                       f" (modifier {t.audio_only_modifier or 'none'}); POS home {t.pos_home}, "
                       f"elsewhere {t.pos_other}"),
        ("Weekly intensity", f"adult floor {w.adult_floor_minutes} min, adolescent "
                             f"{w.adolescent_floor_minutes} min, cap "
                             f"{w.cap_minutes if w.cap_minutes is not None else 'none'} min, "
                             f"at least {w.min_service_days} days; "
                             + ((f"blocks the claim after {w.allowed_under_floor_weeks} "
                                 "consecutive under-floor (step-down) weeks"
                                 if w.allowed_under_floor_weeks else "blocks the claim")
                                if w.blocking else "warning only")),
        ("Supervised credentials", _creds(s.supervised_credentials)),
        ("Supervisor credentials", _creds(s.supervisor_credentials)),
        ("Note signing deadline", f"{v.note_signing.days} {v.note_signing.day_kind} days"),
    ]
    return tuple(out)


def payer_view(payer: Payer, on: date) -> PayerView:
    versions = []
    for i, v in enumerate(payer.versions):
        nxt = payer.versions[i + 1].effective_from if i + 1 < len(payer.versions) else None
        until = date.fromordinal(nxt.toordinal() - 1) if nxt else None
        in_force = v.effective_from <= on and (nxt is None or on < nxt)
        versions.append(VersionView(v.effective_from, until, in_force, version_params(v)))
    return PayerView(payer.key, payer.name, payer.kind, payer.payer_id,
                     payer.claim_filing_indicator, payer.source_file, payer.aliases,
                     tuple(versions))


def rulebook_view(rulebook: RuleBook, on: date) -> list[PayerView]:
    """Every payer, by name, with its versions oldest first; ``on`` marks the one in force."""
    return [payer_view(p, on) for p in sorted(rulebook.payers.values(),
                                              key=lambda p: p.name.casefold())]
