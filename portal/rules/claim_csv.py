"""CSV of claim lines: one row per patient per date of service, every field.

``claim_csv_rows`` returns (headers, rows) of strings; ``write_claim_csv`` writes them to an
open text file. Money is given both as integer cents and as dollars ("165.00"). Cells that a
spreadsheet would run as a formula (leading ``= + - @``, tab, CR) are prefixed with ``'``
(OWASP "CSV injection") because patient names and free text come from census imports.
"""
from __future__ import annotations

import csv
from typing import Iterable, TextIO

from portal.rules.facts import ClaimLine, PatientFact

HEADERS = (
    "dos", "patient_id", "mrn", "patient_name", "payer_key", "member_id", "code", "units",
    "modifiers", "pos", "rendering_npi", "rendering_name", "rendering_credential",
    "supervising_npi", "authorization_number", "charge_cents", "charge_dollars",
    "minutes_attended", "modality", "status", "blocking_reasons", "warnings", "who_must_act",
    "session_ids",
)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def dollars(cents: int) -> str:
    """12345 -> "123.45" (exact: integer arithmetic, no float)."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def claim_csv_rows(lines: Iterable[ClaimLine], patients: Iterable[PatientFact]
                   ) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Headers and one row per line, in the lines' order. Reasons are joined with " | " as
    ``code: message``; ``who_must_act`` lists the distinct roles for blocking reasons."""
    by_id = {p.patient_id: p for p in patients}
    rows = []
    for ln in lines:
        p = by_id.get(ln.patient_id)
        blocking = [r for r in ln.reasons if r.severity == "block"]
        warnings = [r for r in ln.reasons if r.severity != "block"]
        row = (
            ln.dos.isoformat(), str(ln.patient_id), p.mrn if p else "", p.display_name if p else "",
            ln.payer_key or "", (p.member_id or "") if p else "", ln.code, str(ln.units),
            ":".join(ln.modifiers), ln.pos, ln.rendering_npi or "", ln.rendering_name,
            ln.rendering_credential, ln.supervising_npi or "", ln.authorization_number or "",
            str(ln.charge_cents), dollars(ln.charge_cents), str(ln.minutes_attended), ln.modality,
            ln.status,
            " | ".join(f"{r.code}: {r.message}" for r in blocking),
            " | ".join(f"{r.code}: {r.message}" for r in warnings),
            ",".join(dict.fromkeys(r.who_must_act for r in blocking)),
            ",".join(str(s) for s in ln.session_ids),
        )
        rows.append(tuple(_safe(c) for c in row))
    return HEADERS, rows


def write_claim_csv(out: TextIO, lines: Iterable[ClaimLine], patients: Iterable[PatientFact]) -> int:
    """Write header + rows to ``out`` (open with ``newline=""``); returns rows written."""
    headers, rows = claim_csv_rows(lines, patients)
    w = csv.writer(out)
    w.writerow(headers)
    w.writerows(rows)
    return len(rows)
