"""Which passwords staff may choose: NIST SP 800-63B §5.1.1.2 (memorized secrets).

- at least 12 characters (800-63B asks for 8 minimum; we ask for 12, as the issue decided);
- not one of the commonly used passwords: the 30,000-entry list that ``zxcvbn`` (a maintained
  password-strength package) ships, compared case-insensitively;
- not the user's own email or name (800-63B: "context-specific words");
- no composition rules (no "one digit, one symbol") and no forced periodic change: 800-63B
  says verifiers SHOULD NOT impose either.
"""
from __future__ import annotations

from functools import lru_cache

MIN_LENGTH = 12
MAX_LENGTH = 200  # long passphrases welcome; the cap only bounds the hashing work


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.casefold() for p in FREQUENCY_LISTS["passwords"])


def password_problems(password: str, *, context: tuple[str, ...] = ()) -> list[str]:
    """Every reason ``password`` may not be used (empty list: it may). ``context`` holds the
    user's own words (email, name) that the password must not be."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"Use at least {MIN_LENGTH} characters (this one has {len(password)}). "
                        "A few unrelated words make a good one.")
    if len(password) > MAX_LENGTH:
        problems.append(f"Use at most {MAX_LENGTH} characters.")
    folded = password.casefold()
    if folded in common_passwords() or folded.strip() in common_passwords():
        problems.append("This password is on a list of commonly used passwords; choose another.")
    words = {w.casefold() for w in context if w}
    words |= {w.split("@")[0].casefold() for w in context if w and "@" in w}
    if folded in words or folded.replace(" ", "") in {w.replace(" ", "") for w in words}:
        problems.append("The password must not be your name or email.")
    return problems


__all__ = ["MIN_LENGTH", "MAX_LENGTH", "common_passwords", "password_problems"]
