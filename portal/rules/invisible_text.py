"""Characters no typed value may carry: invisible in print, and some of them able to make a
signed document read differently from what it holds.

- C0 and C1 control characters other than tab, line feed and carriage return (a line break
  typed in a text area): invisible on paper, and PostgreSQL cannot store NUL.
- Unicode bidirectional controls (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI, LRM, RLM, ALM):
  an RLO (U+202E) makes "Smith" display as another name and reorders words in an archived note
  or a grant's purpose (Unicode TR#36 "Unicode Security Considerations" §2.3; CVE-2021-42574,
  "Trojan Source", Boucher and Anderson 2021).
- The byte-order mark (U+FEFF) inside a value, and lone surrogates (not characters at all).

Pure: used by the request guard (every form a page posts) and by importers (census), so the
same value is refused the same way wherever it is typed.
"""
from __future__ import annotations

import unicodedata

ALLOWED_CONTROLS = frozenset("\t\n\r")
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
OTHER_INVISIBLE = frozenset("\ufeff")


def is_invisible(ch: str) -> bool:
    if ch in ALLOWED_CONTROLS:
        return False
    return (ch in BIDI_CONTROLS or ch in OTHER_INVISIBLE
            or unicodedata.category(ch) in ("Cc", "Cs"))


def first_invisible(text: str) -> str | None:
    """The first character of ``text`` no typed value may carry, or None."""
    return next((ch for ch in text if is_invisible(ch)), None)


def describe(ch: str) -> str:
    """``U+202E (RIGHT-TO-LEFT OVERRIDE)``: how a message names the character."""
    name = unicodedata.name(ch, "")
    if not name and unicodedata.category(ch) == "Cc":
        name = "control character"
    return f"U+{ord(ch):04X}" + (f" ({name})" if name else "")
