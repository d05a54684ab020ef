"""Audit files: a patient's archived documents for a DOS range as a verifiable binder, and the
accounting of disclosures they are recorded in (issue 14)."""
