"""Rules of an audit-file request and of the accounting of disclosures, as pure functions.

Sources: 42 CFR 2.24 (accounting of disclosures, as amended by the 2024 final rule, 89 FR
12472: disclosures made with consent, for the 3 years before the request) and 2.25/45 CFR
164.528 (content of an accounting: date, recipient, description, purpose); 42 CFR 2.32
(notice and copy of consent, or a clear explanation of its scope, with each disclosure);
42 CFR 2.31 (written consent) and 2.53 (audit and evaluation).
"""
from __future__ import annotations

from datetime import date

ACCOUNTING_YEARS = 3  # 42 CFR 2.24(a): the 3 years before the request
MAX_RANGE_DAYS = 366 * 7  # a request over more than 7 years of care is a typo, not an audit
FIELD_LIMITS = {"recipient": 200, "purpose": 300, "legal_basis": 300}

LEGAL_BASES = {
    "consent_2_31": "Written patient consent (42 CFR 2.31)",
    "audit_2_53": "Audit and evaluation (42 CFR 2.53)",
}

SCOPE_BY_BASIS = {
    "consent_2_31": ("This disclosure is made under the patient's written consent (42 CFR 2.31). It is limited to "
                     "the records named in the consent, for the purpose and recipient it names, and to the dates of "
                     "service above; the consent text recorded with the request is reproduced above."),
    "audit_2_53": ("This disclosure is made without patient consent for a payer audit or evaluation under 42 CFR "
                   "2.53. The recipient may use the records only to carry out the audit or evaluation, must not "
                   "redisclose them except as 2.53 allows, and must protect them as 42 CFR part 2 requires. It "
                   "covers only the archived records of the dates of service above."),
}


class RequestProblem(ValueError):
    """An audit-file request that cannot be made as asked; the message says why."""


def check_request(first: date, last: date, *, today: date, recipient: str, purpose: str,
                  legal_basis: str) -> list[str]:
    """Problems with a request, in the words shown to the requester (empty: fine)."""
    problems = check_range(first, last, today=today)
    for name, value in (("recipient", recipient), ("purpose", purpose), ("legal basis", legal_basis)):
        if not (value or "").strip():
            problems.append(f"Say the {name} of this disclosure.")
        elif len(value.strip()) > FIELD_LIMITS[name.replace(" ", "_")]:
            problems.append(f"The {name} is longer than {FIELD_LIMITS[name.replace(' ', '_')]} characters.")
    return problems


def check_range(first: date, last: date, *, today: date) -> list[str]:
    """Problems with the dates of service asked for (the part of a request an auditor chooses)."""
    problems = []
    if last < first:
        problems.append(f"The range ends ({last}) before it starts ({first}).")
    elif (last - first).days > MAX_RANGE_DAYS:
        problems.append(f"The range {first} to {last} spans more than 7 years; check the years.")
    if first > today:
        problems.append(f"The range starts in the future ({first}).")
    elif last > today:
        # The disclosure records the range asked for: one reaching past today would claim to
        # cover dates of service that have not happened (QA).
        problems.append(f"The range ends in the future ({last}); end it today ({today}) or earlier.")
    return problems


def legal_basis_text(value: str) -> str:
    """The words for a legal basis given as a key (``consent_2_31``) or as free text."""
    return LEGAL_BASES.get(value.strip(), value.strip())


def scope_explanation(legal_basis: str, consent_scope: str | None) -> str:
    """What the disclosure covers, said plainly (42 CFR 2.32(b): a copy of the consent or a
    clear explanation of its scope accompanies each disclosure made with consent)."""
    key = legal_basis.strip()
    if key not in SCOPE_BY_BASIS:
        low = key.lower()
        key = "audit_2_53" if "2.53" in low or "audit" in low else "consent_2_31" if "2.31" in low or "consent" in low else ""
    text = SCOPE_BY_BASIS.get(key, "This disclosure is limited to the archived records of the dates of service above, "
                                   "for the purpose and recipient named on the cover.")
    if key == "consent_2_31" and not (consent_scope or "").strip():
        text += " No consent text was recorded with this request: ask the program for the signed consent."
    return text


def accounting_window(today: date) -> tuple[date, date]:
    """The period an accounting covers: the last 3 years up to today (program-local)."""
    try:
        start = today.replace(year=today.year - ACCOUNTING_YEARS)
    except ValueError:  # 29 February
        start = today.replace(year=today.year - ACCOUNTING_YEARS, day=28)
    return start, today


def describe(n_whole: int, n_extracts: int, first: date, last: date, kinds: list[str]) -> str:
    """The accounting's description of what one audit file disclosed."""
    parts = []
    if n_whole:
        parts.append(f"{n_whole} archived document{'s' if n_whole != 1 else ''} in full")
    if n_extracts:
        parts.append(f"{n_extracts} one-patient extract{'s' if n_extracts != 1 else ''} of group documents")
    kinds_text = ", ".join(sorted(set(kinds)))
    return (f"Audit file: {' and '.join(parts) or 'no documents'} ({kinds_text}), "
            f"dates of service {first} to {last}")
