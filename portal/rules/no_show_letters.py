"""The attendance letter's words, filled from plain values and checked before it is printed.

42 CFR Part 2 protects the fact that someone is a patient of a substance-use program: a letter
may be read by anyone in the household, and the envelope by anyone at all. So the sender line,
the envelope window and the body never name substance use, the program's kind, or anything
a reader could infer it from (``FORBIDDEN``), and every placeholder must be filled: a letter
that says "Dear {name}" is not sent.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass

#: Words that would disclose the nature of the program (checked as whole words, any case).
FORBIDDEN = ("substance", "substances", "alcohol", "alcoholic", "drug", "drugs", "addiction",
             "addict", "recovery", "rehab", "rehabilitation", "detox", "opioid", "opioids",
             "methadone", "suboxone", "buprenorphine", "sober", "sobriety", "IOP", "SUD",
             "intensive outpatient", "chemical dependency", "dependence", "abuse", "treatment")

BODY = (
    "Dear $first_name,\n\n"
    "We missed you at your scheduled appointments on $missed_dates. We care about how you are "
    "doing and would like to help you keep your schedule.\n\n"
    "Please call us at $phone by $reply_by so we can talk about what would help, "
    "or ask for $counselor.\n\n"
    "If you have already spoken with us, thank you, and please disregard this letter.\n\n"
    "Sincerely,\n$sender"
)
PLACEHOLDERS = tuple(sorted({m.group(1) or m.group(2) for m in
                             string.Template.pattern.finditer(BODY) if m.group(1) or m.group(2)}))


class LetterError(ValueError):
    """The letter cannot be sent as is; ``str(exc)`` says why."""


@dataclass(frozen=True)
class LetterText:
    sender: str
    return_address: tuple[str, ...]
    recipient: tuple[str, ...]
    body: str


def disclosing_words(text: str) -> list[str]:
    found = []
    for w in FORBIDDEN:
        if re.search(r"(?<![A-Za-z])" + re.escape(w) + r"(?![A-Za-z])", text, re.IGNORECASE):
            found.append(w)
    return found


def build_letter(values: dict[str, str], *, sender: str, return_address: tuple[str, ...],
                 recipient: tuple[str, ...]) -> LetterText:
    """Fill ``BODY`` with ``values`` (every placeholder, none empty) and check every part a
    reader could see. Raises ``LetterError`` naming the missing placeholders or the words."""
    missing = [k for k in PLACEHOLDERS if not str(values.get(k) or "").strip()]
    if missing:
        raise LetterError("The letter is missing: " + ", ".join(missing))
    body = string.Template(BODY).substitute({k: str(values[k]).strip() for k in PLACEHOLDERS})
    if "$" in body or "{" in body:
        raise LetterError("A placeholder was left in the letter")
    if not [line for line in recipient if line.strip()] or len(recipient) < 2:
        raise LetterError("The patient has no mailing address on file")
    for part, text in (("sender line", sender), ("return address", " ".join(return_address)),
                       ("address block", " ".join(recipient)), ("letter", body)):
        words = disclosing_words(text)
        if words:
            raise LetterError(f"The {part} would disclose the nature of the program "
                              f"({', '.join(words)}); 42 CFR Part 2 forbids that on mail.")
    return LetterText(sender, return_address, recipient, body)
