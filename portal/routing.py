"""URL converters. ``<int:...>`` is replaced app-wide by ``BoundedInt``: every route id is
ASCII digits only and fits the database's integer column (PostgreSQL ``integer``, 32 bits), so
``/sessions/99999999999999999999`` is a 404, never an OverflowError or a driver error.
New routes get this by writing ``<int:name>`` as usual; a route whose view checks the range
itself (the verification page answers "no such entry") writes ``<int(unbounded=True):name>``.
"""
from __future__ import annotations

from werkzeug.routing import IntegerConverter, ValidationError

ID_MAX = 2**31 - 1
MAX_DIGITS = 1000  # Python refuses str -> int beyond 4300 digits; no id comes near either


class BoundedInt(IntegerConverter):
    """Unsigned ASCII digits; at most ``ID_MAX`` unless ``max=`` or ``unbounded=True``."""

    regex = r"[0-9]+"

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False,  # noqa: A002
                 unbounded=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min,
                         max=None if unbounded else (ID_MAX if max is None else max), signed=False)

    def to_python(self, value: str) -> int:
        if len(value) > MAX_DIGITS:
            raise ValidationError()
        return super().to_python(value)
