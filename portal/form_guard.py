"""Refuse, before any view runs, a posted form whose values carry an invisible character
(portal.rules.invisible_text): a control character, a bidirectional override, a byte-order mark.
One guard for every form, so no page stores such a value silently or half-cleaned, and the
answer names the field and the character. Nothing is written (the view never runs)."""
from __future__ import annotations

from flask import request

from portal.errors import error_response
from portal.rules.invisible_text import describe, first_invisible

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def _field_label(key: str) -> str:
    return key.replace("_", " ").strip() or "a field"


def refuse_invisible_characters():
    """``before_request`` hook."""
    if request.method not in WRITE_METHODS or not request.form:
        return None
    for key, value in request.form.items(multi=True):
        bad = first_invisible(key) or first_invisible(value)
        if bad is not None:
            return error_response(422, (
                f"The field “{_field_label(key)}” contains the invisible character {describe(bad)}. "
                "Nothing was saved: go back (the Back button keeps what you typed), then retype the "
                "value or paste it as plain text."))
    return None
