"""The only code that writes: one function per user action, each one transaction.

Every service validates before it writes and raises a ``ServiceError`` subclass (carrying the
HTTP status and a message for the person) instead of leaving half a change behind.
"""
