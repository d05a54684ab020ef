"""Which claim values an 837P can carry, checked before a file is built.

X12 (005010 Appendix B "Character set") allows the basic character set (upper-case letters,
digits, space and ``! " & ' ( ) * + , - . / : ; ? =``) and the extended set (lower case and
``% @ [ ] _ { } \\ | < > # $``), minus whatever the interchange uses as separators: our
element ``*``, component ``:``, repetition ``^`` and segment terminator ``~``. A value holding a
separator splits its segment (``REF*G1*KC*455~30`` is a new segment "30"), so the whole
transaction is rejected. Identifiers (member ID, authorization, NPI, diagnosis, ZIP) are sent
exactly as recorded or not at all; names and addresses are transliterated to ASCII
("García" -> "GARCIA") because that changes nothing a payer matches on.

``field_problems(patient, authorization_number, program)`` lists (field label, problem) for
every value that cannot be sent; ``portal.rules.claim_lines`` turns each into a blocking
reason for billing naming the field, so a bad census value never reaches a file.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Callable

from portal.rules.facts import PatientFact

SEPARATORS = "*:^~"
_BASIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !\"&'()*+,-./:;?="
_EXTENDED = "abcdefghijklmnopqrstuvwxyz%@[]_{}\\|<>#$"
ALLOWED = frozenset(_BASIC + _EXTENDED) - frozenset(SEPARATORS)

SEX_CODES = {"F": "F", "FEMALE": "F", "M": "M", "MALE": "M"}


def dmg_sex(value: str | None) -> str:
    """DMG03: F, M or U (unknown). Anything else recorded ("Nonbinary", "X") is U: the 837P
    code list has no other value, and the first letter of a word is not a code."""
    return SEX_CODES.get((value or "").strip().upper(), "U")


def transliterate(value: str) -> str:
    """ASCII form of a name or address: accents dropped, whitespace collapsed, upper case."""
    ascii_ = unicodedata.normalize("NFKD", value or "").encode("ascii", "ignore").decode()
    return re.sub(r"\s+", " ", ascii_).strip().upper()


def problem(value: str | None, kind: str) -> str | None:
    """Why ``value`` cannot be sent as a ``kind`` ("id" or "text") element, or None."""
    if not value:
        return None
    text = value if kind == "id" else transliterate(value)
    if kind == "text" and not text and value.strip():
        return f"{value!r} has no letters the X12 character set can carry"
    seps = sorted({c for c in text if c in SEPARATORS})
    if seps:
        return f"{value!r} contains {', '.join(repr(c) for c in seps)}, an X12 separator"
    bad = sorted({c for c in text if c not in ALLOWED})
    if bad:
        shown = ", ".join(repr(c) if c.isprintable() else f"U+{ord(c):04X}" for c in bad)
        return f"{value!r} contains {shown}, outside the X12 character set"
    return None


#: (label, kind, getter) for every patient value that reaches 2010BA/2300.
PATIENT_FIELDS: tuple[tuple[str, str, Callable[[PatientFact], str | None]], ...] = (
    ("member ID", "id", lambda p: p.member_id),
    ("last name", "text", lambda p: p.last_name),
    ("first name", "text", lambda p: p.first_name),
    ("MRN (claim number)", "id", lambda p: p.mrn),
    ("address", "text", lambda p: p.address_line),
    ("address line 2", "text", lambda p: p.address_line2),
    ("city", "text", lambda p: p.city),
    ("state", "id", lambda p: p.state),
    ("ZIP", "id", lambda p: p.postal_code),
)


def field_problems(patient: PatientFact, authorization_number: str | None) -> list[tuple[str, str]]:
    out = []
    for label, kind, get in PATIENT_FIELDS:
        why = problem(get(patient), kind)
        if why:
            out.append((label, why))
    for i, dx in enumerate(patient.diagnoses):
        why = problem(dx, "id")
        if why:
            out.append((f"diagnosis {i + 1}", why))
    why = problem(authorization_number, "id")
    if why:
        out.append(("authorization number", why))
    return out


def address_missing(patient: PatientFact) -> list[str]:
    """Which parts of the subscriber address (2010BA N3/N4, required when SBR02 = 18) are
    missing or malformed."""
    out = []
    if not (patient.address_line or "").strip():
        out.append("street")
    if not (patient.city or "").strip():
        out.append("city")
    if not re.fullmatch(r"[A-Z]{2}", (patient.state or "").strip().upper()):
        out.append("state")
    if not re.fullmatch(r"\d{5}|\d{9}", (patient.postal_code or "").strip()):
        out.append("ZIP (5 or 9 digits)")
    return out
