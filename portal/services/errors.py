"""Errors a service raises; views turn them into a 4xx page or partial that says what to fix."""
from __future__ import annotations


class ServiceError(Exception):
    status = 400

    def __init__(self, message: str, *, field: str | None = None,
                 details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or []  # one item per thing to fix, shown as a list


class Invalid(ServiceError):
    """The input cannot be used as given (HTTP 422)."""
    status = 422


class Conflict(ServiceError):
    """The record's state forbids the action, e.g. the roster is closed (HTTP 409)."""
    status = 409


class NotFound(ServiceError):
    """An id does not name a record in this context (HTTP 404)."""
    status = 404


class Unavailable(ServiceError):
    """A resource the action needs is failing (the archive disk is full or read-only): nothing
    was saved, and trying again after the administrator fixes it will work (HTTP 503)."""
    status = 503
