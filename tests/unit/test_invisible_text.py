"""Which characters a typed value may not carry (portal.rules.invisible_text)."""
from __future__ import annotations

import pytest

from portal.rules.invisible_text import describe, first_invisible


@pytest.mark.parametrize("text, found", [
    ("Marisol Alvarez", None),
    ("line one\r\nline two\tindented", None),          # a text area's line breaks and tabs
    ("Ñandú — café, 李, 😀", None),                   # letters, dashes, emoji are text
    ("\u05e9\u05dc\u05d5\u05dd", None),               # right-to-left letters are text; only controls are not
    ("a\x00b", "\x00"), ("bell\x07", "\x07"), ("esc\x1b[31m", "\x1b"), ("del\x7f", "\x7f"),
    ("c1\x85", "\x85"),
    ("ecaf\u202eface", "\u202e"), ("\u202dLRO", "\u202d"), ("\u2066isolate\u2069", "\u2066"),
    ("mark\u200f", "\u200f"), ("arabic mark\u061c", "\u061c"),
    ("\ufeffbom", "\ufeff"),
    ("lone \ud800 surrogate", "\ud800"),
])
def test_first_invisible(text, found):
    assert first_invisible(text) == found


@pytest.mark.parametrize("ch, words", [
    ("\u202e", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ("\x00", "U+0000 (control character)"),
    ("\ufeff", "U+FEFF (ZERO WIDTH NO-BREAK SPACE)"),
])
def test_describe_names_the_character(ch, words):
    assert describe(ch) == words
