"""National Provider Identifier check digit (45 CFR 162.406; CMS "NPI check digit" note).

An NPI is 10 digits whose last digit is a Luhn check digit computed over the card-issuer prefix
80840 followed by the first nine digits. A typo in an NPI makes every claim line of that
provider deny, so the setup file, the admin pages and the 837P check it the same way.
"""
from __future__ import annotations

import re

NPI_PREFIX = "80840"
_TEN_DIGITS = re.compile(r"[0-9]{10}")


def luhn_check_digit(digits: str) -> int:
    """The Luhn digit that makes ``digits`` + it valid."""
    total = 0
    # Double every second digit from the right of the payload (the check digit goes after it).
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def npi_problem(value: str) -> str | None:
    """None for a valid NPI, else a sentence saying what is wrong with ``value``."""
    if not _TEN_DIGITS.fullmatch(value or ""):
        return f'"{value}" is not an NPI (10 digits)'
    expected = luhn_check_digit(NPI_PREFIX + value[:9])
    if int(value[9]) != expected:
        return f'NPI {value} fails its check digit (expected {expected} as the last digit)'
    return None


def is_valid_npi(value: str) -> bool:
    return npi_problem(value) is None


__all__ = ["NPI_PREFIX", "is_valid_npi", "luhn_check_digit", "npi_problem"]
