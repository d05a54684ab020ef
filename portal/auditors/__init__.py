"""Auditor grants (42 CFR Part 2): scoped, expiring, revocable, read-only access for a payer's or
a reviewer's auditor. ``models`` (the grant), ``rules`` (pure: does a set of grants cover this
patient on this date of service, now?), ``service`` (the only writer; the interface other
features use), ``views`` (admin pages and the auditor's own access page).

Kept import-light on purpose: ``portal.models`` imports ``portal.auditors.models``."""
