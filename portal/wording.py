"""Words that follow a number: "1 day", "2 days" (QA #16 found "(in 1 days)")."""
from __future__ import annotations


def count_noun(n: int, word: str, words: str | None = None) -> str:
    """``count_noun(1, "day")`` -> "1 day"; ``count_noun(3, "day")`` -> "3 days";
    ``words`` for an irregular plural (``count_noun(2, "entry", "entries")``)."""
    return f"{n} {word if n == 1 else (words or word + 's')}"
